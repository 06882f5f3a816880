"""Many packages at once: `run_build` and `run_push` — planning, scheduling, failure policy.

What `lkpkg build` and `lkpkg push` do, as library calls a script or a test makes without the
CLI (ko's `cmd/` is a skin over its publisher; so is lkpkg's):

1. plan: order the packages by what they need (pipeline/graph), decide each one's
   platforms — before any work, so bad input costs nothing; a push also checks that every
   package can be signed (passphrases, keys, trust server) and that the registry accepts
   our credentials for push on every repository before the first blob moves;
2. run: independent packages at once on `options.jobs` threads (pipeline/schedule), each
   after everything it builds FROM succeeded; a failure blocks its dependents and nothing
   else;
3. report: a `RunReport` with every package's end state, in the order given.

Progress goes to `on_event(position, event)` as typed events (pipeline/events.py): `Planned`
first (position -1), then each package's `Started`, its work, and `Finished`, `Failed` or
`Blocked`. Where to work (cache, builder, registries, signing) comes from `Settings`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from lkpkg import startup
from lkpkg.cache.layout import Cache
from lkpkg.errors import BuildError, LkpkgError
from lkpkg.oci.model import Platform
from lkpkg.oci.tagged import Tagged
from lkpkg.package.git import tags_at
from lkpkg.package.model import Package
from lkpkg.pipeline import events
from lkpkg.pipeline.building import (
    PackageResult,
    build_package,
)
from lkpkg.pipeline.planning import Plan as Plan
from lkpkg.pipeline.planning import RunOptions as RunOptions
from lkpkg.pipeline.planning import plan_run as plan_run
from lkpkg.pipeline.remote import left_to_build, names_registry
from lkpkg.pipeline.report import PackageReport, PlatformReport, RunReport
from lkpkg.pipeline.schedule import Blocked, Failed, Outcome, Succeeded, run_graph
from lkpkg.reference import Reference
from lkpkg.settings import Settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    from lkpkg.builders.base import Builder
    from lkpkg.pipeline.push import PushResult, Sign

    # Annotations only: importing lkpkg.registry would load httpx, which `build` never needs.
    from lkpkg.pipeline.registries import RegistryPool
    from lkpkg.pipeline.sign import SigningPlan
    from lkpkg.registry.protocol import Registry

R = TypeVar("R")


def _image(package: Package) -> str:
    reference = package.reference()
    return Reference(reference.domain, reference.path).familiar()


def _stopped(also: Callable[[], None] | None) -> None:
    """Ctrl-C or SIGTERM in a run: the builders' process groups die now, so their jobs end
    (failed) instead of finishing a build nobody wants; then `also` (a push closes its
    registry connections, so an upload in flight ends too). Each job's `finally` cleans up
    after it."""
    # Imported here: a run that starts no child (a no-op build, a re-push) never loads proc.
    from lkpkg.proc import stop_children

    stop_children()
    if also is not None:
        also()


def _familiar(reference: Reference | None) -> str | None:
    return reference.familiar() if reference is not None else None


def execute(
    plan: Plan,
    work: Callable[[int, events.Emit], R],
    *,
    jobs: int,
    on_event: events.OnEvent,
    push: bool = False,
    on_interrupt: Callable[[], None] | None = None,
) -> list[Outcome[R]]:
    """Run `work(position, emit)` for every package in dependency order; the outcomes, in
    the plan's order. The failure policy is run_graph's: a failure blocks its dependents.
    Interrupted (Ctrl-C, SIGTERM), it stops the builders' processes and calls `on_interrupt`
    before it waits for the jobs (`_stopped`)."""
    startup.resume()  # the work may run long: the cyclic collector is back (lkpkg.startup)
    for package in plan.skipped:
        on_event(-1, events.Skipped(package.reference()))
    on_event(
        -1,
        events.Planned(
            tuple(
                events.PlannedPackage(
                    p.reference().familiar(),
                    _image(p),
                    tuple(x.architecture for x in plan.platforms[number]),
                )
                for number, p in enumerate(plan.packages)
            ),
            push,
        ),
    )

    def attempt(number: int) -> R:
        package = plan.packages[number]
        arches = tuple(p.architecture for p in plan.platforms[number])
        reason = plan.reasons[number] if plan.reasons else ""
        on_event(number, events.PlatformsChosen(package.reference(), arches, reason))
        result = work(number, lambda event: on_event(number, event))
        on_event(number, events.Finished())
        return result

    def failed(number: int, error: Exception) -> None:
        if isinstance(error, LkpkgError):
            tail = tuple(error.tail) if isinstance(error, BuildError) else ()
            on_event(number, events.Failed(error.message, tail, error.hint, error))
        else:  # a bug: the display keeps its traceback
            on_event(number, events.Failed(repr(error), (), None, error))

    return run_graph(
        [plan.graph.needs(i) for i in range(len(plan.packages))],
        attempt,
        jobs=jobs,
        on_start=lambda number: on_event(number, events.Started()),
        on_failed=failed,
        on_blocked=lambda number, by: on_event(number, events.Blocked(by)),
        on_interrupt=lambda: _stopped(on_interrupt),
    )


def builders_for(settings: Settings) -> Callable[[Platform], Builder]:
    """The builder per platform, safe to ask from several threads (each made and checked once).

    The builders' modules are imported on the first call: a run with everything cached
    (a no-op build, a re-push) never loads them. `--builder-host` is checked now."""
    hosts: dict[str, str] = {}
    if settings.builder_hosts:
        from lkpkg.builders.select import parse_builder_hosts

        hosts = parse_builder_hosts(settings.builder_hosts)  # bad input fails before any work
    lock = threading.Lock()
    chosen: list[Callable[[Platform], Builder]] = []

    def builder_for(platform: Platform) -> Builder:
        with lock:
            if not chosen:
                from lkpkg.builders.engines import EngineSettings
                from lkpkg.builders.select import builders

                engines = EngineSettings(
                    environ=settings.env,
                    docker_host=settings.docker_host,
                    docker_client=settings.docker_client,
                )
                chosen.append(builders(settings.builder, hosts, engines))
            return chosen[0](platform)

    return builder_for


def _ignore(_: int, __: events.Event) -> None:
    return None


def _registry_pool(settings: Settings) -> RegistryPool:
    from lkpkg.pipeline.registries import RegistryPool  # httpx only when a registry is used

    return RegistryPool(settings.insecure_registries, settings.env, timeout=settings.timeout)


def _report(
    kind: str, plan: Plan, outcomes: Sequence[Outcome[Any]], summarise: Callable[..., Any]
) -> RunReport:
    return RunReport(
        kind,
        tuple(
            summarise(plan, n, o.value) if isinstance(o, Succeeded) else _unfinished(plan, n, o)
            for n, o in enumerate(outcomes)
        ),
    )


def run_build(
    packages: Sequence[Package],
    options: RunOptions,
    settings: Settings,
    *,
    on_event: events.OnEvent = _ignore,
    labels: Sequence[str] | None = None,
    builder_for: Callable[[Platform], Builder] | None = None,
    registries: Callable[[str], Registry] | None = None,
) -> RunReport:
    """Build `packages` into the cache (`settings.cache_dir`), in dependency order. An arch
    the registry of a package's org holds as TAG-ARCH is not built (pipeline/remote):
    reported, or pulled with `options.pull`."""
    plan = plan_run(packages, options, labels)
    cache = Cache(settings.cache_dir)
    builder_for = builder_for or builders_for(settings)
    wanted = registries is None and any(names_registry(p) for p in plan.packages)
    pool = _registry_pool(settings) if wanted else None
    registries = registries or pool

    def work(number: int, emit: events.Emit) -> PackageResult:
        package = plan.packages[number]
        platforms: Sequence[Platform] = plan.platforms[number]
        if registries is not None and names_registry(package) and not options.force:
            client_for, domain = registries, package.reference().domain
            platforms = left_to_build(
                package,
                platforms,
                cache=cache,
                registry=lambda: client_for(domain),
                pull=options.pull,
                emit=emit,
            )
        return build_package(
            package,
            cache=cache,
            builder_for=builder_for,
            platforms=platforms,
            force=options.force,
            verbose=options.verbose,
            source_date_epoch=settings.source_date_epoch,
            emit=emit,
            attest=options.attest,
        )

    try:
        outcomes = execute(plan, work, jobs=options.jobs, on_event=on_event)
    finally:
        if pool is not None:
            pool.close()
    return _report("build", plan, outcomes, _built)


def run_push(
    packages: Sequence[Package],
    options: RunOptions,
    settings: Settings,
    *,
    on_event: events.OnEvent = _ignore,
    labels: Sequence[str] | None = None,
    builder_for: Callable[[Platform], Builder] | None = None,
    registries: Callable[[str], Registry] | None = None,
) -> RunReport:
    """Build what is missing and push `packages` in dependency order, signing as `settings`
    say (Docker Content Trust unless `notrust` or the package disables it; cosign with
    `sign_key`). Every package's signing is checked before anything is pushed.

    `registries` gives the client for a registry host (default: a `RegistryPool` over
    `settings`, closed at the end).
    """
    from lkpkg.pipeline.push import push_package  # and publish: a build never loads them

    plan = plan_run(packages, options, labels)
    cache = Cache(settings.cache_dir)
    builder_for = builder_for or builders_for(settings)
    signing, attest_key = _plan_signing(plan, settings)
    # Every package of a repository asks for the same commit's tags: git runs once per commit.
    git_tags = functools.lru_cache(maxsize=None)(tags_at)
    pool = None
    if registries is None:
        registries = pool = _registry_pool(settings)

    def work(number: int, emit: events.Emit) -> PushResult:
        package = plan.packages[number]
        assert registries is not None
        registry = registries(package.reference().domain)
        return push_package(
            package,
            cache=cache,
            registry=registry,
            builder_for=builder_for,
            platforms=plan.platforms[number],
            force=options.force,
            allow_dirty=options.allow_dirty,
            hash_given=options.hash_given,
            releases=options.releases,
            verbose=options.verbose,
            source_date_epoch=settings.source_date_epoch,
            emit=emit,
            sign=_signer(signing[number], registry, package, cache, attest_key),
            attest=options.attest,
            git_tags=git_tags,
        )

    try:
        _check_push_access(plan, registries)
        outcomes = execute(
            plan,
            work,
            jobs=options.jobs,
            on_event=on_event,
            push=True,
            on_interrupt=pool.close if pool is not None else None,
        )
    finally:
        if pool is not None:
            pool.close()
    return _report("push", plan, outcomes, _pushed)


def _check_push_access(plan: Plan, registries: Callable[[str], Registry]) -> None:
    """Before the first blob: the registry accepts our credentials for push on every
    repository the run pushes to (`AuthError`, exit 4, otherwise). Once per repository."""
    repositories = dict.fromkeys((p.reference().domain, p.reference().path) for p in plan.packages)
    for domain, path in repositories:
        registries(domain).check_push_access(path)


def _plan_signing(
    plan: Plan, settings: Settings
) -> tuple[list[SigningPlan | None], ec.EllipticCurvePrivateKey | None]:
    """Each package's signing plan (None: nothing to sign) and the cosign key for
    attestations, every signature checked ready before anything is pushed."""
    dct_wanted = not settings.notrust and any(
        not package.spec.disable_content_trust for package in plan.packages
    )
    if not dct_wanted and settings.sign_key is None:
        # Nothing signs (`--notrust`): the trust code, notary's and cryptography's, is not
        # even imported (about a fifth of a re-push's start-up).
        return [None] * len(plan.packages), None
    from lkpkg.pipeline.sign import plan_signing
    from lkpkg.trust.config import DCTSettings
    from lkpkg.trust.cosign import PASSPHRASE_ENV as COSIGN_PASSWORD

    dct = DCTSettings.from_environment(settings.env)
    signing: list[SigningPlan | None] = [
        plan_signing(
            package.reference(),
            dct=None if settings.notrust or package.spec.disable_content_trust else dct,
            sign_key=settings.sign_key,
            cosign_passphrase=settings.env.get(COSIGN_PASSWORD),
            trust_ca=settings.trust_ca,
        )
        for package in plan.packages
    ]
    # The cosign key also signs each arch's attestations (`cosign attest`'s layout).
    attest_key = None
    if settings.sign_key is not None:
        from lkpkg.trust.cosign import load_private_key

        attest_key = load_private_key(settings.sign_key, settings.env.get(COSIGN_PASSWORD))
    return signing, attest_key


def _signer(
    plan: SigningPlan | None,
    registry: Registry,
    package: Package,
    cache: Cache,
    attest_key: ec.EllipticCurvePrivateKey | None,
) -> Sign | None:
    if plan is None:
        return None

    def sign(written: Sequence[Tagged]) -> tuple[str, ...]:
        from lkpkg.pipeline.sign import sign_items

        sign_items(plan, registry, package.reference(), list(written))
        if attest_key is not None:
            from lkpkg.attest.dsse import sign_package_attestations

            digests = [item.digest for item in written]
            sign_package_attestations(registry, cache, package.reference(), digests, attest_key)
        return plan.kinds

    return sign


# -- results → reports ----------------------------------------------------------------------


def _needs(plan: Plan, number: int) -> tuple[str, ...]:
    return tuple(plan.graph.labels[n] for n in sorted(plan.graph.needs(number)))


def _unfinished(plan: Plan, number: int, outcome: Failed | Blocked) -> PackageReport:
    """The report of a package that failed or was never attempted."""
    package = plan.packages[number]
    labels = plan.graph.labels
    platforms = tuple(
        PlatformReport(str(p), str(package.arch_reference(p.architecture)), None, False)
        for p in plan.platforms[number]
    )
    error = outcome.error if isinstance(outcome, Failed) else None
    causes = outcome.by if isinstance(outcome, Blocked) else ()
    return PackageReport(
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
        needs=_needs(plan, number),
        exception=error,
    )


def _built(plan: Plan, number: int, result: PackageResult) -> PackageReport:
    package = plan.packages[number]
    return PackageReport(
        directory=plan.graph.labels[number],
        image=_image(package),
        reference=str(result.reference),
        tag=package.tag,
        status="built" if any(p.built for p in result.platforms) else "skipped",
        platforms=tuple(
            PlatformReport(
                str(p.platform),
                str(package.arch_reference(p.platform.architecture)),
                p.descriptor.digest,
                p.built,
                reused_from=_familiar(p.reused_from),
            )
            for p in result.platforms
        ),
        index=result.index.digest,
        needs=_needs(plan, number),
    )


def _pushed(plan: Plan, number: int, result: PushResult) -> PackageReport:
    package = plan.packages[number]
    arches = {a.arch: a for a in result.arches}
    platforms = []
    for platform in plan.platforms[number]:
        pushed = arches.get(platform.architecture)
        platforms.append(
            PlatformReport(
                str(platform),
                str(package.arch_reference(platform.architecture)),
                pushed.image.digest if pushed is not None else None,
                platform.architecture in result.built,
                pushed.uploaded if pushed is not None else False,
                reused_from=_familiar(result.reused.get(platform.architecture)),
            )
        )
    return PackageReport(
        directory=plan.graph.labels[number],
        image=_image(package),
        reference=result.reference,
        tag=package.tag,
        status="built" if result.built else "skipped",
        platforms=tuple(platforms),
        index=result.index.digest,
        signed=result.signed,
        needs=_needs(plan, number),
    )
