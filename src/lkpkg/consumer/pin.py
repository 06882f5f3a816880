"""Pinning the images of LinuxKit YAML files to verified digests (`lkpkg pin`).

For each image reference (see `yamlrefs`), in one of three modes:

- **pin**: resolve the tag in the registry to a digest, verify that exact digest (the trust
  policy of `consumer.verify`), and rewrite the reference as `NAME:TAG@sha256:<digest>`,
  which linuxkit accepts. An already pinned reference is verified as it stands and kept; if
  its tag now names another digest it is refused (not silently moved). `IMAGE@sha256:...`
  with no tag is verified and kept.
- **check** (`--check`): change nothing; a reference fails when it is not pinned, when its
  tag now names another digest, or when its signature does not verify.
- **update** (`--update PKGDIR...`, with either): a reference to one of the packages'
  repositories first takes the package's current tag (what `show-tag` prints), replacing
  the sed script that bumps hashes, then is pinned (or, with `--check`, fails as stale).

A reference that fails is left as written and reported on one line; the others are still
pinned, so one bad image does not hold back the rest. The same reference written several
times is resolved and verified once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from lkpkg.cache.pull import PullRegistry, resolve, with_default_tag
from lkpkg.consumer.yamlrefs import (
    Site,
    find_references,
    read_text,
    rewrite,
    split_written,
    write_atomically,
)
from lkpkg.errors import LkpkgError
from lkpkg.reference import Reference


class Status(Enum):
    PINNED = "pinned"  # was a tag, is now TAG@digest
    UPDATED = "updated"  # took a package's new tag (and was pinned)
    OK = "ok"  # already pinned, still what the tag names, verified
    FAILED = "failed"  # refused (pin) or not as required (check); `reason` says why

    @property
    def good(self) -> bool:
        return self is not Status.FAILED


@dataclass(frozen=True)
class RefResult:
    file: Path
    site: Site
    status: Status
    new: str | None = None  # the text written (or that would be) when it changes
    digest: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "file": str(self.file),
            "line": self.site.line,
            "where": self.site.where,
            "old": self.site.text,
            "new": self.new if self.new is not None else self.site.text,
            "status": self.status.value,
            "digest": self.digest,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class FileResult:
    file: Path
    results: tuple[RefResult, ...]
    written: bool

    @property
    def ok(self) -> bool:
        return all(r.status.good for r in self.results)


@dataclass
class Pinner:
    """Resolves and verifies references; one answer per distinct reference per run."""

    registry_for: Callable[[str], PullRegistry]
    verify: Callable[[Reference], object]
    check: bool = False
    updates: Mapping[str, Reference] = field(default_factory=dict)  # repository name → ref
    _seen: dict[str, tuple[Status, str | None, str | None, str | None]] = field(
        default_factory=dict
    )

    def pin_file(self, path: Path) -> FileResult:
        text = read_text(path)
        sites = find_references(path, text)
        results = [self._one(path, site) for site in sites]
        changes = {r.site: r.new for r in results if r.new is not None and r.status.good}
        written = False
        if changes and not self.check:
            write_atomically(path, rewrite(text, changes))
            written = True
        return FileResult(path, tuple(results), written)

    def _one(self, path: Path, site: Site) -> RefResult:
        if site.text not in self._seen:
            self._seen[site.text] = self._decide(site.text)
        status, new, digest, reason = self._seen[site.text]
        return RefResult(path, site, status, new, digest, reason)

    def _decide(self, text: str) -> tuple[Status, str | None, str | None, str | None]:
        try:
            ref = Reference.parse(text)
        except LkpkgError as e:
            return Status.FAILED, None, None, e.message
        written_name, tag, digest = split_written(text)
        bumped = self.updates.get(ref.name)
        if bumped is not None and bumped.tag != ref.tag:
            if self.check:
                return Status.FAILED, None, digest, f"stale: the package's tag is now {bumped.tag}"
            moved = Reference(ref.domain, ref.path, bumped.tag or "latest")
            return self._pin(written_name, moved, Status.UPDATED)
        if digest is None:
            if self.check:
                return Status.FAILED, None, None, "not pinned (no @sha256: digest)"
            return self._pin(written_name, with_default_tag(ref), Status.PINNED)
        try:
            if tag is not None:
                current = resolve(
                    self.registry_for(ref.domain), Reference(ref.domain, ref.path, tag)
                )
                if current.digest != digest:
                    return (
                        Status.FAILED,
                        None,
                        digest,
                        f"tag {tag} now names {current.digest}, not the pinned {digest}"
                        " (to take it: drop the @sha256 part and pin again)",
                    )
            self.verify(ref)
        except LkpkgError as e:
            return Status.FAILED, None, digest, e.message
        return Status.OK, None, digest, None

    def _pin(
        self, written_name: str, ref: Reference, status: Status
    ) -> tuple[Status, str | None, str | None, str | None]:
        try:
            pinned = resolve(self.registry_for(ref.domain), ref)
            self.verify(pinned)
        except LkpkgError as e:
            return Status.FAILED, None, None, e.message
        assert pinned.digest is not None
        return status, f"{written_name}:{pinned.tag}@{pinned.digest}", pinned.digest, None


def pin_files(pinner: Pinner, files: Sequence[Path]) -> list[FileResult]:
    return [pinner.pin_file(path) for path in files]
