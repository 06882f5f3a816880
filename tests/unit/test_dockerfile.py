"""FROM scanning: which images a build reads, so the cache can provide them offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lkpkg.builders.dockerfile import from_images, from_stages
from lkpkg.oci.model import Platform


def scan(tmp_path: Path, text: str, args: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    return from_images(path, args or {})


def test_stage_names_and_scratch_are_not_images(tmp_path):
    text = (
        "FROM localhost/debian:bookworm AS build\n"
        "RUN true\n"
        "FROM build AS second\n"
        "FROM scratch\n"
        "COPY --from=build /x /x\n"
    )
    assert scan(tmp_path, text) == ["localhost/debian:bookworm"]


def test_arg_defaults_and_overrides(tmp_path):
    text = "ARG BASE=debian\nARG TAG=bookworm\nFROM ${BASE}:${TAG}\nFROM $BASE:slim\n"
    assert scan(tmp_path, text) == ["debian:bookworm", "debian:slim"]
    assert scan(tmp_path, text, {"TAG": "trixie"}) == ["debian:trixie", "debian:slim"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("FROM ${MISSING:-fallback/img:1}\n", ["fallback/img:1"]),
        ("ARG SET=x\nFROM img${SET:+-suffixed}\n", ["img-suffixed"]),
        ("FROM --platform=$BUILDPLATFORM img:1 AS b\n", ["img:1"]),
        ("# comment\n\nfrom lower:case\n", ["lower:case"]),
        ("FROM \\\n  continued:line\n", ["continued:line"]),
    ],
)
def test_forms(tmp_path, line, expected):
    assert scan(tmp_path, line) == expected


def test_a_stage_named_like_a_later_image_is_not_confused(tmp_path):
    text = "FROM base:1 AS base\nFROM base\n"
    assert scan(tmp_path, text) == ["base:1"]


RISCV = Platform("linux", "riscv64")
AMD = Platform("linux", "amd64")


def stages(tmp_path: Path, text: str, **kwargs: Any) -> list[tuple[str, str | None]]:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    found = from_stages(path, kwargs.pop("args", {}), **kwargs)
    return [(f.name, str(f.platform) if f.platform else None) for f in found]


def test_each_from_reads_the_target_platform_unless_its_platform_flag_says(tmp_path):
    text = (
        "FROM --platform=$BUILDPLATFORM base:1 AS tools\n"
        "FROM --platform=linux/arm64/v8 base:1 AS arm\n"
        "FROM base:1\n"
        "FROM --platform=${TARGETPLATFORM} other:2\n"
    )
    assert stages(tmp_path, text, target=RISCV, build=AMD) == [
        ("base:1", "linux/amd64"),
        ("base:1", "linux/arm64"),
        ("base:1", "linux/riscv64"),
        ("other:2", "linux/riscv64"),
    ]


def test_platform_args_reach_image_names_and_arg_defaults(tmp_path):
    text = (
        "ARG FLAVOUR=${TARGETARCH}-slim\n"
        "FROM --platform=linux/$BUILDARCH img:$FLAVOUR AS b\n"
        "FROM img:${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-v}\n"
    )
    assert stages(tmp_path, text, target=RISCV, build=AMD) == [
        ("img:riscv64-slim", "linux/amd64"),
        ("img:linux-riscv64", "linux/riscv64"),
    ]


def test_without_a_target_platforms_stay_unknown_and_names_are_as_before(tmp_path):
    text = "FROM --platform=$BUILDPLATFORM base:1 AS b\nFROM --platform=linux/arm64 base:1\n"
    assert stages(tmp_path, text) == [("base:1", None), ("base:1", "linux/arm64")]
    assert scan(tmp_path, text) == ["base:1"]


def test_a_platform_flag_the_builder_will_refuse_falls_back_to_the_target(tmp_path):
    assert stages(tmp_path, "FROM --platform=nonsense base:1\n", target=RISCV) == [
        ("base:1", "linux/riscv64")
    ]
