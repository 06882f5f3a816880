"""FROM scanning: which images a build reads, so the cache can provide them offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from lkpkg.builders.dockerfile import from_images


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
