"""What a run over many packages ends with: one `PackageReport` per package, as values.

The CLI renders a `RunReport` as a table, aligned text, JSON or one line per package
(progress/summary.py); a script reads it directly. Each package's `error` is its message;
`exception` keeps the error itself (for its exit code, builder tail and hint).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PlatformReport:
    platform: str
    reference: str
    digest: str | None
    built: bool
    # None for a build; for a push, whether this run uploaded the image (False: the registry
    # had it already).
    pushed: bool | None = None
    # Not built: the cache held the same build under another org, as this arch reference.
    reused_from: str | None = None


@dataclass(frozen=True)
class PackageReport:
    """One package's end state: `status` is built, skipped (nothing built), failed or
    blocked (not attempted, because something it needs failed)."""

    directory: str
    image: str
    reference: str
    tag: str
    status: str
    platforms: tuple[PlatformReport, ...]
    index: str | None = None
    signed: tuple[str, ...] = ()
    error: str | None = None
    # Other packages by directory (unique, for machines) and, for blocked_by, by ORG/IMAGE
    # (for people, as the PACKAGE column names them).
    blocked_by: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    blocked_by_images: tuple[str, ...] = ()
    exception: Exception | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.status in ("built", "skipped")

    def pushed_text(self) -> str:
        pushed = [p.platform.split("/")[-1] for p in self.platforms if p.pushed]
        if pushed:
            return ",".join(pushed)
        return "unchanged" if self.ok else "-"

    def note(self) -> str:
        if self.status == "blocked":
            return f"needs {', '.join(self.blocked_by_images)}, which failed"
        if self.error:
            return self.error
        reused = [p for p in self.platforms if p.reused_from is not None]
        if reused:
            sources = sorted({_org_image(p.reused_from or "") for p in reused})
            arches = ",".join(p.platform.split("/")[-1] for p in reused)
            return f"{arches} reused from {', '.join(sources)}"
        return ""


def _org_image(arch_reference: str) -> str:
    """ORG/IMAGE of an `ORG/IMAGE:TAG-ARCH` (the tag is the package's own)."""
    return arch_reference.rpartition(":")[0]


@dataclass(frozen=True)
class RunReport:
    """Every package of a `run_build` or `run_push`, in the order the run was given them."""

    command: str
    packages: tuple[PackageReport, ...]

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.packages)

    @property
    def failed(self) -> tuple[PackageReport, ...]:
        return tuple(p for p in self.packages if not p.ok)
