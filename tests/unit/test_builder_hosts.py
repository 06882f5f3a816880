"""--builder-host PLATFORM=URL parsing."""

from __future__ import annotations

import pytest

from lkpkg.builders.select import parse_builder_hosts
from lkpkg.errors import InputError


def test_platforms_are_normalised_and_urls_kept():
    hosts = parse_builder_hosts(
        ["linux/arm64=ssh://me@pi", "arm=tcp://10.0.0.2:2376", "linux/amd64=unix:///s"]
    )
    assert hosts == {
        "linux/arm64": "ssh://me@pi",
        "linux/arm/v7": "tcp://10.0.0.2:2376",
        "linux/amd64": "unix:///s",
    }


@pytest.mark.parametrize(
    "value", ["linux/arm64", "=ssh://x", "linux/arm64=host:22", "linux/arm64=http://x"]
)
def test_bad_values_are_input_errors(value):
    with pytest.raises(InputError, match="--builder-host"):
        parse_builder_hosts([value])
