"""Commands on packages: build, push, manifest (show-tag is in cli/showtag).

`build` and `push` take any number of packages. They run in dependency order (what a package
builds FROM first, see pipeline/graph), independent ones at once (`-j`), with a live display
or greppable lines on stderr (`--progress`), and end with a summary: a table on stderr when
there is more than one package, JSON on stdout with `--json`. A run of one package ends as
it always did: its line on stdout, or its own error (and exit code) as the last line.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from lkpkg.attest.attach import AttestOptions
from lkpkg.cache.layout import Cache
from lkpkg.cli.common import (
    PushOptions,
    Registries,
    build_options,
    builders_for,
    cache_option,
    default_jobs,
    dirs_argument,
    echo_err,
    insecure_option,
    open_cache,
    package_options,
    parse_platforms,
    push_options,
    run_options,
)
from lkpkg.errors import BuildError, InputError, LkpkgError, PackagesFailed
from lkpkg.oci.model import ImageManifest, Platform
from lkpkg.package.model import Package, load_packages
from lkpkg.pipeline.build import PackageResult, build_package, target_platforms
from lkpkg.pipeline.graph import PackageGraph, package_graph
from lkpkg.pipeline.publish import PlatformOf, publish_index
from lkpkg.pipeline.push import PushResult, push_package
from lkpkg.pipeline.schedule import Blocked, Failed, Outcome, Succeeded, run_graph
from lkpkg.progress import (
    Item,
    PackageSummary,
    PlatformSummary,
    Progress,
    choose_mode,
    make_progress,
    summary_json,
    summary_table,
    summary_text,
)
from lkpkg.reference import Reference

if TYPE_CHECKING:
    from lkpkg.pipeline.sign import SigningPlan
    from lkpkg.registry.client import RegistryClient

R = TypeVar("R")


@dataclass(frozen=True)
class Plan:
    """What a build or push run works on: the packages in their graph, each one's platforms."""

    graph: PackageGraph
    platforms: tuple[tuple[Platform, ...], ...]
    requested: list[Platform] | None

    @property
    def packages(self) -> tuple[Package, ...]:
        return self.graph.packages


def plan_run(options: PushOptions, directories: Sequence[Path]) -> Plan:
    """Load, order and check every package before any work: bad input costs nothing."""
    packages = load_packages(list(directories), org=options.org, hash_override=options.hash_)
    labels = [os.path.normpath(d) for d in directories]
    requested = parse_platforms(options.platforms)
    if requested is None:
        # build.yml `arches:` null or []: nothing to build, not an error (as in linuxkit).
        for package in (p for p in packages if not p.spec.arches):
            echo_err(f"Skipping {package.reference().familiar()} with no architectures to build")
        kept = [(p, label) for p, label in zip(packages, labels, strict=True) if p.spec.arches]
        packages, labels = [p for p, _ in kept], [label for _, label in kept]
    graph = package_graph(packages, labels)
    platforms = tuple(tuple(target_platforms(p, requested)) for p in graph.packages)
    return Plan(graph, platforms, requested)


def execute(
    options: PushOptions,
    plan: Plan,
    work: Callable[[int, Progress], R],
    *,
    push: bool = False,
) -> tuple[list[Outcome[R]], str]:
    """Run `work` for every package in dependency order under a progress display.

    Returns the outcomes and the display mode used (the summary follows the same choice).
    """
    items = [
        Item(
            p.reference().familiar(),
            tuple(x.architecture for x in plan.platforms[number]),
            _image(p),
        )
        for number, p in enumerate(plan.packages)
    ]
    single = len(items) == 1
    mode = choose_mode(options.progress)
    # With one package the live table is its own summary and stays; with several, the
    # summary table replaces it.
    progress = make_progress(
        mode, items, announce_failures=not single, transient=not single, push=push
    )

    def attempt(item: int) -> R:
        result = work(item, progress)
        progress.finished(item)
        return result

    def failed(item: int, error: Exception) -> None:
        if not isinstance(error, LkpkgError):
            # Not a user-facing failure but a bug: keep its traceback, as main does for one.
            traceback.print_exception(error, file=sys.stderr)
        message = error.message if isinstance(error, LkpkgError) else repr(error)
        progress.failed(item, message, error.tail if isinstance(error, BuildError) else [])

    with progress:
        outcomes = run_graph(
            [plan.graph.needs(i) for i in range(len(items))],
            attempt,
            jobs=options.jobs or default_jobs(),
            on_start=progress.started,
            on_failed=failed,
            on_blocked=progress.blocked,
        )
    return outcomes, mode


def _image(package: Package) -> str:
    reference = package.reference()
    return Reference(reference.domain, reference.path).familiar()


def _unfinished(plan: Plan, number: int, outcome: Outcome[Any]) -> PackageSummary:
    """The summary of a package that failed or was never attempted."""
    package = plan.packages[number]
    labels = plan.graph.labels
    platforms = tuple(
        PlatformSummary(str(p), str(package.arch_reference(p.architecture)), None, False)
        for p in plan.platforms[number]
    )
    error = outcome.error if isinstance(outcome, Failed) else None
    causes = outcome.by if isinstance(outcome, Blocked) else ()
    return PackageSummary(
        directory=labels[number],
        image=_image(package),
        reference=str(package.reference()),
        tag=package.tag,
        status="failed" if isinstance(outcome, Failed) else "blocked",
        platforms=platforms,
        error=None
        if error is None
        else (error.message if isinstance(error, LkpkgError) else repr(error)),
        blocked_by=tuple(labels[c] for c in causes),
        blocked_by_images=tuple(_image(plan.packages[c]) for c in causes),
        needs=tuple(labels[n] for n in sorted(plan.graph.needs(number))),
    )


def _built(plan: Plan, number: int, result: PackageResult) -> PackageSummary:
    package = plan.packages[number]
    return PackageSummary(
        directory=plan.graph.labels[number],
        image=_image(package),
        reference=str(result.reference),
        tag=package.tag,
        status="built" if any(p.built for p in result.platforms) else "skipped",
        platforms=tuple(
            PlatformSummary(
                str(p.platform),
                str(package.arch_reference(p.platform.architecture)),
                p.descriptor.digest,
                p.built,
            )
            for p in result.platforms
        ),
        index=result.index.digest,
        needs=tuple(plan.graph.labels[n] for n in sorted(plan.graph.needs(number))),
    )


def _pushed(plan: Plan, number: int, result: PushResult) -> PackageSummary:
    package = plan.packages[number]
    arches = {a.arch: a for a in result.arches}
    platforms = []
    for platform in plan.platforms[number]:
        pushed = arches.get(platform.architecture)
        platforms.append(
            PlatformSummary(
                str(platform),
                str(package.arch_reference(platform.architecture)),
                pushed.digest if pushed is not None else None,
                platform.architecture in result.built,
                pushed.uploaded if pushed is not None else False,
            )
        )
    return PackageSummary(
        directory=plan.graph.labels[number],
        image=_image(package),
        reference=result.reference,
        tag=package.tag,
        status="built" if result.built else "skipped",
        platforms=tuple(platforms),
        index=result.index.digest,
        signed=result.signed,
        needs=tuple(plan.graph.labels[n] for n in sorted(plan.graph.needs(number))),
    )


def finish(
    options: PushOptions,
    outcomes: Sequence[Outcome[Any]],
    summaries: Sequence[PackageSummary],
    lines: Sequence[str | None],
    *,
    mode: str,
    command: str,
) -> None:
    """Print the results and the summary; raise if any package did not make it."""
    if options.json_output:
        click.echo(json.dumps(summary_json(summaries, command=command), indent=2))
    else:
        for line in lines:
            if line is not None:
                click.echo(line)
    if len(summaries) > 1:
        push = command == "push"
        if mode == "rich":
            Console(stderr=True).print(summary_table(summaries, push=push))
        else:
            click.echo(summary_text(summaries, push=push), err=True)
    errors = [o.error for o in outcomes if isinstance(o, Failed)]
    for error in errors:
        if not isinstance(error, LkpkgError):
            raise error  # a bug: keep its traceback
    if len(summaries) == 1 and errors:
        raise errors[0]  # as before: its own message, tail and exit code
    failed = [s for s in summaries if not s.ok]
    if failed:
        reasons = "; ".join(f"{s.image}: {s.note()}" for s in failed)
        raise PackagesFailed(f"{len(failed)} of {len(summaries)} packages failed: {reasons}")


def build_packages(options: PushOptions, directories: Sequence[Path]) -> None:
    plan = plan_run(options, directories)
    if not plan.packages:
        return
    cache = open_cache(options.cache_dir)
    builder_for = builders_for(options)

    def work(number: int, progress: Progress) -> PackageResult:
        return build_package(
            plan.packages[number],
            cache=cache,
            builder_for=builder_for,
            platforms=plan.requested,
            force=options.force,
            verbose=options.verbose,
            report=progress.reporter(number),
            attest=AttestOptions(options.sbom, options.provenance),
        )

    outcomes, mode = execute(options, plan, work)
    summaries: list[PackageSummary] = []
    lines: list[str | None] = []
    for number, outcome in enumerate(outcomes):
        if isinstance(outcome, Succeeded):
            result = outcome.value
            summaries.append(_built(plan, number, result))
            built = ",".join(p.platform.architecture for p in result.platforms if p.built) or "-"
            lines.append(f"{result.reference.familiar()} {result.index.digest} built={built}")
        else:
            summaries.append(_unfinished(plan, number, outcome))
            lines.append(None)
    finish(options, outcomes, summaries, lines, mode=mode, command="build")


class BlobMeter:
    """Turns a push's per-blob callbacks into progress against the image's totals."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache
        self._totals: dict[tuple[int, str], tuple[int, int]] = {}
        self._lock = threading.Lock()

    def _total(self, number: int, package: Package, arch: str) -> tuple[int, int]:
        with self._lock:
            if (number, arch) not in self._totals:
                total = (0, 0)
                descriptor = self._cache.resolve(str(package.arch_reference(arch)))
                if descriptor is not None:
                    manifest = self._cache.read_manifest(descriptor.digest)
                    if isinstance(manifest, ImageManifest):
                        blobs = [*manifest.layers, manifest.config]
                        total = (len(blobs), sum(b.size for b in blobs))
                self._totals[(number, arch)] = total
            return self._totals[(number, arch)]

    def for_package(
        self, number: int, package: Package, progress: Progress
    ) -> Callable[[str, str, int], None]:
        def on_blob(arch: str, digest: str, size: int) -> None:
            progress.blob(number, arch, size, self._total(number, package, arch))

        return on_blob


def push_packages(options: PushOptions, directories: Sequence[Path]) -> None:
    # Imported here: signing pulls in cryptography and notary code that build never needs.
    from lkpkg.pipeline.sign import plan_signing
    from lkpkg.trust.config import DCTSettings
    from lkpkg.trust.cosign import PASSPHRASE_ENV as COSIGN_PASSWORD

    plan = plan_run(options, directories)
    if not plan.packages:
        return
    cache = open_cache(options.cache_dir)
    builder_for = builders_for(options)
    # Every package's signing is checked (passphrases, keys, trust server) before any push.
    dct = DCTSettings.from_environment(os.environ)
    plans = [
        plan_signing(
            package.reference(),
            dct=None if options.notrust or package.spec.disable_content_trust else dct,
            sign_key=options.sign_key,
            cosign_passphrase=os.environ.get(COSIGN_PASSWORD),
            trust_ca=options.trust_ca,
        )
        for package in plan.packages
    ]
    registries = Registries(options.insecure)
    meter = BlobMeter(cache)

    def work(number: int, progress: Progress) -> PushResult:
        package = plan.packages[number]
        registry = registries(package.reference().domain)
        return push_package(
            package,
            cache=cache,
            registry=registry,
            builder_for=builder_for,
            platforms=plan.requested,
            force=options.force,
            allow_dirty=options.allow_dirty,
            hash_given=options.hash_ is not None,
            releases=list(options.releases) or None,
            verbose=options.verbose,
            report=progress.reporter(number),
            sign=signer(plans[number], registry, package),
            on_blob=meter.for_package(number, package, progress),
            attest=AttestOptions(options.sbom, options.provenance),
        )

    try:
        outcomes, mode = execute(options, plan, work, push=True)
    finally:
        registries.close()
    summaries: list[PackageSummary] = []
    lines: list[str | None] = []
    for number, outcome in enumerate(outcomes):
        if isinstance(outcome, Succeeded):
            result = outcome.value
            summaries.append(_pushed(plan, number, result))
            arches = ",".join(a.arch for a in result.arches) or "-"
            signed = ",".join(result.signed) or "-"
            reference = plan.packages[number].reference().familiar()
            lines.append(f"{reference} {result.index.digest} pushed={arches} signed={signed}")
        else:
            summaries.append(_unfinished(plan, number, outcome))
            lines.append(None)
    finish(options, outcomes, summaries, lines, mode=mode, command="push")


Written = Sequence[tuple[str, str, int]]


def signer(
    plan: SigningPlan, registry: RegistryClient, package: Package
) -> Callable[[Written], tuple[str, ...]]:
    def sign(written: Written) -> tuple[str, ...]:
        from lkpkg.oci.tagged import Tagged
        from lkpkg.pipeline.sign import sign_items

        sign_items(plan, registry, package.reference(), [Tagged(*item) for item in written])
        return plan.kinds

    return sign


@click.command()
@package_options
@build_options
@click.option("--push", "then_push", is_flag=True, help="Push afterwards, as `lkpkg push` does.")
@push_options
@run_options
@cache_option
@dirs_argument
def build(then_push: bool, directories: Sequence[Path], **kwargs: Any) -> None:
    """Build packages into the local cache as ORG/IMAGE:HASH-ARCH and ORG/IMAGE:HASH.

    \b
    The image also lands in the builder's own store (buildah/podman or docker) as
    ORG/IMAGE:HASH-ARCH, so you can run it there. A platform already in the cache is not
    rebuilt unless --force. With --push, continues as `lkpkg push`.

    \b
    Packages are built after the packages of the same run they need: a build.yml buildArgs
    value @lkt:pkg:PATH, or a FROM naming another package's ORG/IMAGE. Independent packages
    build at once (-j); a failure stops only the packages that need it.

    \b
    Examples (the seed's `make tag`):
      lkpkg build --org wombat pkg/hello                   # make ORG=wombat NOTRUST=1 tag
      lkpkg build --org wombat --hash foo pkg/hello        # ... HASH=foo tag
      lkpkg build --platforms linux/amd64,linux/arm64 -j 2 pkg/*
    """
    options = PushOptions(**kwargs)
    if then_push:
        push_packages(options, directories)
        return
    build_packages(options, directories)


@click.command()
@package_options
@build_options
@push_options
@run_options
@cache_option
@dirs_argument
def push(directories: Sequence[Path], **kwargs: Any) -> None:
    """Build what is missing, push ORG/IMAGE:HASH-ARCH, then the index ORG/IMAGE:HASH; sign.

    \b
    The index covers every architecture the registry holds for HASH, including those other
    hosts pushed — even at the same moment: arches need not be built in sequence.
    Signing with Docker Content Trust is on by default (passphrases from
    DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE, and _ROOT_ for a new repository), for every
    arch tag and the index; --sign-key adds cosign-compatible signatures. Packages go in
    dependency order, independent ones at once (-j), as for build.

    \b
    Examples (the seed's workflows):
      DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=... lkpkg push pkg/hello
      lkpkg push --org localhost:5000/wombat --notrust pkg/hello
      lkpkg push --org localhost:5000/wombat --notrust --hash foo pkg/hello
    """
    push_packages(PushOptions(**kwargs), directories)


@click.command()
@insecure_option
@cache_option
@click.argument("reference")
def manifest(insecure: Sequence[str], cache_dir: Path | None, reference: str) -> None:
    """Rebuild the index REFERENCE (ORG/IMAGE:HASH) from the HASH-ARCH tags in the registry.

    \b
    Architectures without a HASH-ARCH tag are left out (manifest-tool's --ignore-missing).
    Example: lkpkg manifest localhost:5000/wombat/hello:4b825dc6
    """
    ref = Reference.parse(reference)
    if ref.tag is None or ref.digest is not None:
        raise InputError(f"manifest: '{reference}' must name a tag (ORG/IMAGE:HASH)")
    registries = Registries(insecure)
    try:
        client = registries(ref.domain)
        platform_of = PlatformOf(client, ref.path, open_cache(cache_dir))
        index = publish_index(client, ref.path, ref.tag, platform_of=platform_of)
    finally:
        registries.close()
    click.echo(f"{ref.familiar()} {index.digest}")
