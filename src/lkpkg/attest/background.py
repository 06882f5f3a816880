"""The attestations' share of a build that overlaps the builder.

Started just before the builder, in a thread: it loads the attestation code (`attest.attach`
and the SBOM's scanners, ~20 ms of imports that would otherwise follow the builder) and, when
an SBOM is asked for, hashes the package's source files — the files the builder reads, so the
page cache serves both. The builder runs in another process and its thread waits with the GIL
released, so this work takes nothing from the build's own time. Started any earlier, it would
hold the GIL while the build's own preparation (bases, build args) wants it. This module
imports none of the attestation code itself: importing it is free.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lkpkg.attest.spdx import SourceFile
    from lkpkg.package.model import Package


class Preparation:
    """Once per package: `start()` before each builder run (only the first starts the
    thread), `result()` after the build; a failed build never asks and never waits."""

    def __init__(self, package: Package, *, sources: bool) -> None:
        self._package = package
        self._sources = sources
        self._future: Future[list[SourceFile] | None] | None = None

    def start(self) -> None:
        if self._future is not None:
            return
        future: Future[list[SourceFile] | None] = Future()
        self._future = future
        package, sources = self._package, self._sources

        def work() -> None:
            try:
                from lkpkg.attest.attach import source_files

                future.set_result(source_files(package) if sources else None)
            except BaseException as error:  # handed to whoever asks for the result
                future.set_exception(error)

        threading.Thread(target=work, name="lkpkg-attest-prep", daemon=True).start()

    def result(self) -> list[SourceFile] | None:
        """The package's source files (None when no SBOM is asked for); raises what hashing
        them raised."""
        self.start()
        assert self._future is not None
        return self._future.result()
