"""The builders' versions for the provenance: parsed from the engines' own outputs, asked once."""

from __future__ import annotations

import stat

import pytest

from lkpkg.builders.base import EngineSettings
from lkpkg.builders.buildah import BuildahBuilder, parse_version
from lkpkg.builders.docker import parse_server_version
from lkpkg.proc import DEFAULT_PATH

# `buildah version --json` of Debian 12's buildah 1.28.2, as it prints it.
BUILDAH_JSON = """{
    "version": "1.28.2",
    "goVersion": "go1.19.8",
    "imageSpec": "1.1.0-rc2",
    "runtimeSpec": "1.0.2-dev",
    "cniSpec": "1.0.0",
    "libcniVersion": "",
    "imageVersion": "5.23.1",
    "gitCommit": "",
    "built": "Thu Jan  1 00:00:00 1970",
    "osArch": "linux/amd64",
    "buildPlatform": "linux/amd64"
}
"""
BUILDAH_TEXT = "buildah version 1.28.2 (image-spec 1.1.0-rc2, runtime-spec 1.0.2-dev)\n"


def test_buildah_version_from_json():
    assert parse_version(BUILDAH_JSON) == "1.28.2"


def test_buildah_version_from_text_when_json_says_nothing():
    assert parse_version("", BUILDAH_TEXT) == "1.28.2"
    assert parse_version("Error: unknown flag: --json", BUILDAH_TEXT) == "1.28.2"
    assert parse_version('{"goVersion": "go1.19.8"}', BUILDAH_TEXT) == "1.28.2"


@pytest.mark.parametrize("json_output, text", [("", ""), ("[]", "buildah: command not found")])
def test_buildah_version_unknown(json_output, text):
    assert parse_version(json_output, text) is None


@pytest.mark.parametrize(
    "output, expected",
    [
        ("20.10.24+dfsg1\n", "20.10.24+dfsg1"),
        ("27.3.1\n", "27.3.1"),
        ("", None),  # the client reached no engine
        ("\n", None),
        ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n", None),
    ],
)
def test_docker_server_version(output, expected):
    assert parse_server_version(output) == expected


def test_buildah_is_asked_once_per_builder(tmp_path):
    calls = tmp_path / "calls"
    fake = tmp_path / "buildah"
    fake.write_text(
        f"#!/bin/sh\necho \"$@\" >> {calls}\ncat <<'END'\n{BUILDAH_JSON}END\n", encoding="utf-8"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    settings = EngineSettings(environ={"PATH": f"{tmp_path}:{DEFAULT_PATH}"})
    builder = BuildahBuilder(str(fake), settings=settings)
    assert [builder.version() for _ in range(3)] == ["1.28.2"] * 3
    assert calls.read_text().splitlines() == ["version --json"]
