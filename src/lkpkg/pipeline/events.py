"""What a run did, as typed values: the pipeline emits them, the displays render them.

The pipeline never formats progress for people, and a display never parses text: the live
table, the plain lines and the end-of-run summary decide everything from an event's type
and fields (as go-containerregistry reports progress as `v1.Update` values). `describe`
gives the one line of text the plain display prints and the live table shows as a status;
rewording it changes no state anywhere.

Events of one package's work (`CacheHit` … `IndexResigned`) name the reference they are
about: the arch image `ORG/IMAGE:TAG-ARCH` or the package's `ORG/IMAGE:TAG`. A run over
many packages (pipeline/run.py) delivers each with the package's position in the run, and
adds the run's own: `Planned` first, then `Started`, `Finished`, `Failed` or `Blocked` per
package. Every event is frozen; callbacks may be called from several threads at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lkpkg.reference import Reference


@dataclass(frozen=True)
class Event:
    """Base of every event."""


# -- one package's work ---------------------------------------------------------------------


@dataclass(frozen=True)
class WorkEvent(Event):
    """An event of one package's work, about `reference`: the arch image ORG/IMAGE:TAG-ARCH
    or the package's ORG/IMAGE:TAG."""

    reference: Reference


@dataclass(frozen=True)
class ArchEvent(WorkEvent):
    """An event about one arch image of the package; `reference` is its TAG-ARCH."""

    arch: str


@dataclass(frozen=True)
class PlatformsChosen(WorkEvent):
    """The package's work is for `arches`, because of `reason` ("--platforms", "build.yml
    arches", "default arches: build.yml lists none", and what --skip-platforms left out)."""

    arches: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class CacheHit(ArchEvent):
    """The cache holds `reference` (TAG-ARCH): not rebuilt."""

    digest: str


@dataclass(frozen=True)
class ReusedFromOrg(CacheHit):
    """`reference` (TAG-ARCH) was missing, but the cache held an image built from the same
    inputs as `built_as` (another org's TAG-ARCH, pipeline/reuse.py): the ref now names it,
    `digest`; not rebuilt. A `CacheHit` for every display that does not tell them apart."""

    built_as: Reference


@dataclass(frozen=True)
class DependencyMoved(ArchEvent):
    """`reference` (TAG-ARCH) was built on `built_on`; its dependency `dependency` (ORG/IMAGE)
    is now `now`: the image is stale, though its own tag has not changed."""

    dependency: str
    built_on: str
    now: str


@dataclass(frozen=True)
class BuildStarted(ArchEvent):
    builder: str


@dataclass(frozen=True)
class Built(ArchEvent):
    digest: str


@dataclass(frozen=True)
class Attested(ArchEvent):
    """The image's SBOM and provenance are stored beside it, as the manifest `digest`."""

    digest: str


@dataclass(frozen=True)
class IndexWritten(WorkEvent):
    """`reference` (ORG/IMAGE:TAG) is now the index `digest`, in the cache or the registry."""

    digest: str


@dataclass(frozen=True)
class FoundInRegistry(ArchEvent):
    """Neither built nor pushed: the registry already holds `reference` (TAG-ARCH) and the
    cache does not."""


@dataclass(frozen=True)
class PulledFromRegistry(ArchEvent):
    """Not built: the registry held `reference` (TAG-ARCH); `--pull` brought it, verified
    blob by blob, into the cache as the image `digest`."""

    digest: str


@dataclass(frozen=True)
class BlobProgress(ArchEvent):
    """One more blob of `reference`'s image is in the registry; `blobs` and `total` are the
    image's blob count and bytes (layers and config)."""

    digest: str
    size: int
    blobs: int
    total: int


@dataclass(frozen=True)
class ImagePushed(ArchEvent):
    """`reference` (TAG-ARCH) names `digest` in the registry; `uploaded` is False when it did
    already."""

    digest: str
    uploaded: bool


@dataclass(frozen=True)
class RegistryKept(ArchEvent):
    """The registry already holds `reference` (TAG-ARCH) as another image, `registry`, than
    this cache's `local` (a rebuild elsewhere: other commit time, other SOURCE_DATE_EPOCH).
    A pushed tag never moves: the registry's image was kept and brought into the cache in
    place of `local`; `--force` replaces it instead."""

    registry: str
    local: str


@dataclass(frozen=True)
class Released(WorkEvent):
    """The release `reference` (ORG/IMAGE:RELEASE, and its -ARCH tags) is in the registry."""


@dataclass(frozen=True)
class Signed(WorkEvent):
    count: int
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class IndexResigned(WorkEvent):
    """Another pusher changed the index after it was signed; the new one was signed."""

    digest: str


# -- a run over many packages ---------------------------------------------------------------


@dataclass(frozen=True)
class PlannedPackage:
    """One package of a run as displays name it: `subject` is ORG/IMAGE:TAG, `name` ORG/IMAGE."""

    subject: str
    name: str
    arches: tuple[str, ...]


@dataclass(frozen=True)
class Planned(Event):
    """Emitted once, before any work: the run's packages, in the positions events use."""

    packages: tuple[PlannedPackage, ...]
    push: bool


@dataclass(frozen=True)
class Skipped(Event):
    """Left out of the run before planning: build.yml lists no arches (linuxkit skips it
    too) and no platforms were asked for. Emitted before `Planned`, at position -1."""

    reference: Reference


@dataclass(frozen=True)
class Started(Event):
    """The package's work began (everything it needs succeeded)."""


@dataclass(frozen=True)
class Finished(Event):
    """The package's work succeeded."""


@dataclass(frozen=True)
class Failed(Event):
    """The package's work failed: `message` (one line), the builder's last lines, the error's
    hint; `error` is the exception itself (a bug's traceback is worth keeping)."""

    message: str
    tail: tuple[str, ...] = ()
    hint: str | None = None
    error: Exception | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Blocked(Event):
    """Not attempted: the packages at positions `by`, which it needs, failed."""

    by: tuple[int, ...]


Emit = Callable[[Event], None]
# A run's callback: the package's position in `Planned.packages` (-1 for `Planned`), the event.
OnEvent = Callable[[int, Event], None]


def ignore(_: Event) -> None:
    return None


# -- the words -------------------------------------------------------------------------------


# What each event of one package's work says after its subject: the one place the words are
# chosen. `describe` and the displays look here; nothing else formats an event.
TEXT: dict[type[WorkEvent], Callable[[Any], str]] = {
    PlatformsChosen: lambda e: f"platforms {', '.join(e.arches)} ({e.reason})",
    CacheHit: lambda e: "in cache, not rebuilt",
    ReusedFromOrg: lambda e: f"in cache (built as {e.built_as.familiar()}), not rebuilt",
    DependencyMoved: lambda e: (
        f"was built on {e.built_on}; {e.dependency} is now {e.now} (rebuild it with --force)"
    ),
    BuildStarted: lambda e: f"building with {e.builder}",
    Built: lambda e: f"built {e.digest}",
    Attested: lambda e: f"attestations {e.digest}",
    IndexWritten: lambda e: f"index {e.digest}",
    FoundInRegistry: lambda e: "found in registry",
    PulledFromRegistry: lambda e: f"found in registry, pulled {e.digest}",
    BlobProgress: lambda e: f"blob {e.digest} ({e.size} bytes)",
    ImagePushed: lambda e: f"{'pushed' if e.uploaded else 'unchanged'} {e.digest}",
    RegistryKept: lambda e: (
        f"kept the registry's {e.registry}, not this cache's {e.local} "
        "(a pushed tag never moves; --force replaces it)"
    ),
    Released: lambda e: "released",
    Signed: lambda e: f"signed {e.count} tags ({', '.join(e.kinds)})",
    IndexResigned: lambda e: f"index changed under a concurrent push; signed {e.digest}",
}


def subject(event: WorkEvent) -> str:
    """Who an event is about, as its line starts: the reference, familiar."""
    if isinstance(event, IndexResigned):
        return f"{event.reference.path}:{event.reference.tag}"
    return event.reference.familiar()


def skipped_text(event: Skipped) -> str:
    """linuxkit's own words for a package with no arches."""
    return f"Skipping {event.reference.familiar()} with no architectures to build"


def describe(event: WorkEvent) -> str:
    """`SUBJECT: what` for an event of one package's work (the plain display's line)."""
    return f"{subject(event)}: {TEXT[type(event)](event)}"
