"""Choosing a builder: `--builder auto|buildah|docker`, or `LKPKG_BUILDER`."""

from __future__ import annotations

import os

from lkpkg.build.base import Builder
from lkpkg.build.buildah import BuildahBuilder
from lkpkg.build.docker import DockerBuilder
from lkpkg.errors import EnvironmentProblem, InputError

BUILDER_NAMES = ("auto", "buildah", "docker")


def select_builder(name: str | None = None) -> Builder:
    """The builder to use: `auto` prefers buildah (daemonless), else a Docker engine."""
    choice = (name or os.environ.get("LKPKG_BUILDER") or "auto").lower()
    if choice not in BUILDER_NAMES:
        raise InputError(f"unknown builder '{choice}': choose one of {', '.join(BUILDER_NAMES)}")
    candidates: list[Builder] = []
    if choice in ("auto", "buildah"):
        candidates.append(BuildahBuilder())
    if choice in ("auto", "docker"):
        candidates.append(DockerBuilder())
    problems: list[str] = []
    for builder in candidates:
        problem = builder.problem()
        if problem is None:
            return builder
        problems.append(f"{builder.name}: {problem}")
    raise EnvironmentProblem("no usable builder: " + "; ".join(problems))
