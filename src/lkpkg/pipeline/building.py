"""Building packages into the local cache — the seed's `make tag`.

Per package and platform: if the cache already has `ORG/IMAGE:TAG-ARCH` (and no `force`),
the builder is not called. Otherwise the builder writes an OCI layout into the cache's
scratch area; only after it succeeded are its blobs imported and the arch ref set. Last,
`ORG/IMAGE:TAG` is (re)written as an index of every arch image the cache holds for that tag.
A failed build therefore leaves the cache as it was. Progress is reported as typed events
(pipeline/events.py), never as text.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lkpkg import __version__
from lkpkg.attest.store import index_entries
from lkpkg.cache.layout import Cache
from lkpkg.cache.platform import image_platform
from lkpkg.errors import BuildError, InputError, LkpkgError
from lkpkg.oci.index import platform_index, sorted_images
from lkpkg.oci.model import Descriptor, ImageIndex, Platform
from lkpkg.package.model import Package, check_dockerfile_exists
from lkpkg.pipeline.dependencies import cached_labels, moved
from lkpkg.pipeline.events import (
    Attested,
    BuildStarted,
    Built,
    CacheHit,
    DependencyMoved,
    Emit,
    IndexWritten,
    ignore,
)
from lkpkg.platforms import DEFAULT_ARCHES, require_buildable
from lkpkg.reference import Reference

if TYPE_CHECKING:
    # Annotations only: lkpkg.attest.attach loads the SBOM scanners, which a build that
    # builds nothing (the common no-op rebuild) never needs; imported when an image is built.
    # So are the builders, the provenance and the layout import: a push or a build that
    # finds every image in the cache never loads them.
    from lkpkg.attest.attach import AttestOptions
    from lkpkg.attest.background import Preparation
    from lkpkg.attest.provenance import BuildFacts
    from lkpkg.builders.base import Builder, BuildRequest
    from lkpkg.builders.bases import UnresolvedBase

DEFAULT_SOURCE = "https://github.com/linuxkit/linuxkit"


@dataclass(frozen=True)
class PlatformResult:
    platform: Platform
    descriptor: Descriptor
    built: bool
    # Not built because the cache held the same build under another org: the arch ref it
    # was built as (pipeline/reuse.py).
    reused_from: Reference | None = None


@dataclass(frozen=True)
class PackageResult:
    package: Package
    reference: Reference
    index: Descriptor
    platforms: tuple[PlatformResult, ...]


def target_platforms(
    package: Package, requested: Sequence[Platform] | None, skip: Sequence[str] = ()
) -> list[Platform]:
    """The platforms to build, as linuxkit chooses them: the request as given (it overrides
    build.yml's arches), else every arch of build.yml (linuxkit's default amd64, arm64,
    riscv64 when it lists none) but those in `skip`. May be empty: nothing to build."""
    return choose_platforms(package, requested, skip).platforms


@dataclass(frozen=True)
class PlatformChoice:
    """The platforms to build for a package and why (`reason`, said to the user)."""

    platforms: list[Platform]
    reason: str


def choose_platforms(
    package: Package, requested: Sequence[Platform] | None, skip: Sequence[str] = ()
) -> PlatformChoice:
    """`target_platforms` with the reason: "--platforms", "build.yml arches", or "default
    arches" (build.yml lists none), then what `skip` left out."""
    if requested:
        return PlatformChoice(list(requested), "--platforms")
    # buildyml hands out DEFAULT_ARCHES itself when build.yml has no `arches` key.
    listed = package.spec.arches is not DEFAULT_ARCHES
    reason = "build.yml arches" if listed else "default arches: build.yml lists none"
    skipped = [a for a in package.spec.arches if a in skip]
    if skipped:
        reason += f", --skip-platforms {','.join(skipped)}"
    chosen = [Platform("linux", a) for a in package.spec.arches if a not in skip]
    return PlatformChoice(chosen, reason)


def build_args(package: Package, *, source_date_epoch: int | None = None) -> dict[str, str]:
    """What a package's Dockerfile sees as build args: linuxkit's automatic ones and
    build.yml's buildArgs (package/buildinfo, the one definition), then SOURCE_DATE_EPOCH
    unless buildArgs set it. Used by the build and by the FROM lines the graph reads.

    SOURCE_DATE_EPOCH is the user's (`source_date_epoch`, from the settings), else the commit
    time: what makes rebuilds of a commit identical.
    """
    from lkpkg.package.buildinfo import build_args as package_build_args

    args = package_build_args(package)
    epoch = _epoch(package, source_date_epoch)
    if epoch is not None:
        args.setdefault("SOURCE_DATE_EPOCH", str(epoch))
    return args


def _epoch(package: Package, source_date_epoch: int | None) -> int | None:
    if source_date_epoch is not None:
        return source_date_epoch
    return package.head.time if package.head is not None else None


def _labels(package: Package) -> dict[str, str]:
    from lkpkg.package.buildinfo import image_labels

    return image_labels(package, f"lkpkg-{__version__}")


def package_bases(
    package: Package,
    cache: Cache,
    source_date_epoch: int | None = None,
    platform: Platform | None = None,
) -> list[UnresolvedBase]:
    """Every FROM of `package` the cache cannot provide, for `platform` when given (what
    `doctor` reports; a build of it would stop on the first)."""
    from lkpkg.builders.bases import unresolved_bases

    dockerfile = package.directory / package.spec.dockerfile
    args = build_args(package, source_date_epoch=source_date_epoch)
    return unresolved_bases(cache, dockerfile, args, platform)


def _write_index(
    cache: Cache, package: Package, attestations: dict[str, Descriptor] | None = None
) -> tuple[Descriptor, list[Descriptor]]:
    """(Re)write `ORG/IMAGE:TAG` as an index over every arch image the cache has for TAG,
    then their attestation manifests (new ones, else the previous index's)."""
    entries: list[Descriptor] = []
    for arch in package.spec.arches:
        descriptor = cache.resolve(str(package.arch_reference(arch)))
        if descriptor is None:
            continue
        platform = image_platform(cache, descriptor.digest).platform
        entries.append(
            Descriptor(descriptor.media_type, descriptor.digest, descriptor.size, platform=platform)
        )
    entries = sorted_images(entries)
    previous_desc = cache.resolve(str(package.reference()))
    previous = cache.read_manifest(previous_desc.digest) if previous_desc is not None else None
    extra = index_entries(
        entries,
        attestations or {},
        previous if isinstance(previous, ImageIndex) else None,
    )
    index = cache.put_manifest(platform_index(entries, extra))
    if entries:  # every arch found in the registry and none pulled: no index to name here
        cache.set_ref(str(package.reference()), index)
    return index, entries


def rewrite_index(cache: Cache, package: Package) -> Descriptor:
    """Rewrite `ORG/IMAGE:TAG` in the cache over the arch images it now holds (after one of
    them was replaced by the registry's)."""
    with cache.lock():
        return _write_index(cache, package)[0]


def build_package(
    package: Package,
    *,
    cache: Cache,
    builder_for: Callable[[Platform], Builder],
    platforms: Sequence[Platform] | None = None,
    force: bool = False,
    verbose: bool = False,
    source_date_epoch: int | None = None,
    emit: Emit = ignore,
    attest: AttestOptions | None = None,
) -> PackageResult:
    """Build `package`'s missing platforms into the cache and rewrite its index; `attest`
    None attaches every attestation (SBOM and provenance)."""
    # An empty list is "nothing" (all found in the registry), not "build.yml's arches".
    targets = list(platforms) if platforms is not None else target_platforms(package, None)
    results: list[PlatformResult] = []
    attestations: dict[str, Descriptor] = {}
    # The attestation code, loaded, and the SBOM's source files, hashed once per package:
    # both alongside the first builder run (attest/background.py).
    prepared: Preparation | None = None
    for platform in targets:
        arch_ref = package.arch_reference(platform.architecture)
        existing = None if force else cached_image(cache, package, platform.architecture)
        if existing is not None:
            for change in moved(package, cached_labels(cache, existing.digest)):
                emit(DependencyMoved(arch_ref, platform.architecture, *change.fields()))
            emit(CacheHit(arch_ref, platform.architecture, existing.digest))
            results.append(PlatformResult(platform, existing, built=False))
            continue
        refuse_unsupported(package)
        builder = builder_for(platform)
        from lkpkg.pipeline import reuse  # only when the cache misses: a no-op build skips it

        inputs = reuse.build_inputs(
            package,
            platform,
            cache,
            builder,
            args=build_args(package, source_date_epoch=source_date_epoch),
            labels=_labels(package),
            timestamp=_epoch(package, source_date_epoch),
        )
        reused = None if force else reuse.reuse_other_org(cache, arch_ref, inputs, emit)
        if reused is not None:
            if reused.attestation is not None:
                attestations[reused.image.digest] = reused.attestation
            results.append(
                PlatformResult(platform, reused.image, built=False, reused_from=reused.built_as)
            )
            continue
        if not builder.remote:
            require_buildable(platform)
        emit(BuildStarted(arch_ref, platform.architecture, builder.name))
        if prepared is None and (attest is None or attest.any):
            from lkpkg.attest.background import Preparation

            prepared = Preparation(package, sources=attest is None or attest.sbom)
        built, facts = _build_one(
            package, platform, arch_ref, cache, builder, force, verbose, source_date_epoch, prepared
        )
        reuse.record_build_key(cache, arch_ref, built, inputs, facts)
        emit(Built(arch_ref, platform.architecture, built.digest))
        made = _attest(cache, package, platform, built, facts, attest, prepared)
        if made is not None:
            attestations[built.digest] = made
            emit(Attested(arch_ref, platform.architecture, made.digest))
        results.append(PlatformResult(platform, built, True))
    with cache.lock():
        index, _ = _write_index(cache, package, attestations)
    emit(IndexWritten(package.reference(), index.digest))
    return PackageResult(package, package.reference(), index, tuple(results))


def refuse_unsupported(package: Package) -> None:
    """A package without its Dockerfile (linuxkit checks it only when building; `arches:`
    null packages may have none until `--platforms` asks for a build) is refused in one line.
    What build.yml asks for and lkpkg does not do is refused before a build, never silently
    skipped: `depends.docker-images` (linuxkit pulls those images with its own docker
    and saves them into the package; lkpkg's builds see only its cache). show-tag is unaffected."""
    check_dockerfile_exists(package.directory, package.spec)
    depends = package.spec.depends
    if depends is not None and (depends.images or depends.from_file):
        raise InputError(
            f"{package.spec.display_path}: depends.docker-images is not supported by lkpkg",
            hint="save the images into the package directory before building (e.g. skopeo copy"
            " ... docker-archive:FILE), or build this package with linuxkit pkg build",
        )


def cached_image(cache: Cache, package: Package, arch: str) -> Descriptor | None:
    """The `arch` image the cache holds for `package`, every blob present: its TAG-ARCH ref,
    else the platform's entry of the index TAG (what linuxkit's cache holds after a pull; the
    arch ref is then written). None when neither, or when blobs were removed (`cache rm`):
    such an image is built or pulled again, not an error."""
    arch_ref = package.arch_reference(arch)
    candidates: list[Descriptor] = []
    direct = cache.resolve(str(arch_ref))
    if direct is not None:
        candidates.append(direct)
    index_desc = cache.resolve(str(package.reference()))
    if index_desc is not None and cache.has_blob(index_desc.digest):
        try:
            index = cache.read_manifest(index_desc.digest)
        except LkpkgError:
            index = None
        if isinstance(index, ImageIndex):
            candidates += [
                m for m in index.manifests if m.platform and m.platform.architecture == arch
            ]
    for candidate in candidates:
        try:
            cache.check_complete(candidate, str(arch_ref))
        except LkpkgError:
            continue
        if candidate is not direct:
            with cache.lock():
                cache.set_ref(
                    str(arch_ref),
                    Descriptor(candidate.media_type, candidate.digest, candidate.size),
                )
        return candidate
    return None


def _build_one(
    package: Package,
    platform: Platform,
    arch_ref: Reference,
    cache: Cache,
    builder: Builder,
    force: bool,
    verbose: bool,
    source_date_epoch: int | None,
    prepared: Preparation | None,
) -> tuple[Descriptor, BuildFacts]:
    from lkpkg.builders.base import LAYOUT_REF, BuildRequest, builder_store
    from lkpkg.builders.bases import base_images
    from lkpkg.cache.layout_import import import_layout

    with cache.scratch_dir("build") as scratch:
        context = _context(package, scratch)
        dockerfile = context / package.spec.dockerfile
        args = build_args(package, source_date_epoch=source_date_epoch)
        request = BuildRequest(
            context=context,
            dockerfile=dockerfile,
            platform=platform,
            local_name=str(arch_ref),
            build_args=args,
            labels=_labels(package),
            network=package.spec.network,
            use_layer_cache=not (package.spec.disable_cache or force),
            timestamp=_epoch(package, source_date_epoch),
            bases=base_images(cache, dockerfile, args, scratch, platform),
            store=builder_store(cache),
            verbose=verbose,
            started=prepared.start if prepared is not None else None,
        )
        out = scratch / "out"
        started = time.time()
        builder.build(request, out)
        finished = time.time()
        with cache.lock():
            descriptor = import_layout(cache, out, LAYOUT_REF, fresh_from_builder=True)
            built_platform = image_platform(cache, descriptor.digest).platform
            if built_platform.architecture != platform.architecture:
                raise BuildError(
                    f"{arch_ref.familiar()}: the builder produced {built_platform}, not {platform}"
                )
            cache.set_ref(str(arch_ref), descriptor)
        return descriptor, _facts(package, request, builder, started, finished)


def _attest(
    cache: Cache,
    package: Package,
    platform: Platform,
    built: Descriptor,
    facts: BuildFacts,
    attest: AttestOptions | None,
    prepared: Preparation | None,
) -> Descriptor | None:
    """The SBOM and provenance of a freshly built image, stored beside it (None: none asked)."""
    from lkpkg.attest.attach import EVERY_ATTESTATION, attest_image

    chosen = EVERY_ATTESTATION if attest is None else attest
    if not chosen.any:
        return None
    return attest_image(
        cache,
        package,
        platform,
        built,
        facts,
        chosen,
        default_source=DEFAULT_SOURCE,
        sources=prepared.result() if prepared is not None else None,
    )


def _facts(
    package: Package, request: BuildRequest, builder: Builder, started: float, finished: float
) -> BuildFacts:
    """What the provenance records of one build: inputs by digest, never secrets."""
    from lkpkg.attest.attach import file_digest, package_path
    from lkpkg.attest.provenance import BaseDigest, BuildFacts

    where = package_path(package)
    prefix = "" if where == "." else f"{where}/"
    bases = []
    for base in request.bases:
        instance = base.for_platform(request.platform)
        if instance is not None:
            bases.append(BaseDigest(base.name, instance.manifest_digest))
    build_yml = package.spec.path
    return BuildFacts(
        repository_uri=package.spec.gitrepo or DEFAULT_SOURCE,
        commit=package.head.commit if package.head is not None else None,
        package_path=where,
        tree_hash=package.hash,
        dirty=package.dirty,
        build_yml=file_digest(build_yml, prefix + build_yml.name)
        if build_yml is not None and build_yml.is_file()
        else None,
        dockerfile=file_digest(request.dockerfile, prefix + package.spec.dockerfile),
        build_args=request.build_args,
        bases=bases,
        builder=builder.name,
        builder_version=builder.version(),
        lkpkg_version=__version__,
        platform=request.platform,
        started=started,
        finished=finished,
    )


def _context(package: Package, scratch: Path) -> Path:
    """The build context: the package dir, plus extra sources copied in at their `dst`."""
    if not package.spec.extra_sources:
        return package.directory
    context = scratch / "context"
    shutil.copytree(package.directory, context, symlinks=True)
    for source in package.spec.extra_sources:
        src = Path(source.src)
        src = src if src.is_absolute() else package.directory / src
        dst = context / source.dst.lstrip("/")
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
    return context
