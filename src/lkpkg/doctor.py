"""`lkpkg doctor`: can this host build, push and sign? Each answer comes with its fix.

This module only decides which checks the options call for, runs them (network checks at
once) and counts them; each check lives beside its subsystem and returns a
`lkpkg.checks.CheckResult`: `build/checks.py` (builder, builder hosts, platforms),
`registry/checks.py` (registry answers), `auth/checks.py` (credentials), `trust/checks.py`
(trust server, notary, passphrases, cosign key). The CLI renders them.

Invariants:
- No secret is ever shown. A credential is reported by where it came from (`Credential.source`)
  and its user name; a passphrase only as set or not set.
- Nothing waits without a bound: every network step has an explicit timeout (`timeout`,
  seconds), a registry is pinged once without retries, and independent checks run at once.
- Nothing is written (see `trust/checks.py` for the trust server).
- The environment is read by the CLI, never here: `DoctorOptions.env` is a value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from lkpkg.auth import tls
from lkpkg.auth.checks import credentials_check
from lkpkg.auth.dockerconfig import default_config_dir
from lkpkg.auth.keychain import Keychain
from lkpkg.builders.base import EngineSettings
from lkpkg.builders.checks import builder_check, builder_host_check, platform_check, probe_builders
from lkpkg.builders.docker import DockerBuilder
from lkpkg.cache.layout import Cache, default_cache_dir
from lkpkg.checks import CheckResult, Status
from lkpkg.errors import LkpkgError
from lkpkg.oci.model import Platform
from lkpkg.package.model import Package, TagMode, load_packages
from lkpkg.pipeline.building import package_bases
from lkpkg.platforms import BINFMT_DIR, host_platform
from lkpkg.reference import DOCKER_HUB, Reference, validate_org
from lkpkg.registry.checks import registry_check
from lkpkg.trust.checks import (
    TrustProbe,
    cosign_key_check,
    notary_cli_check,
    passphrase_checks,
    signing_key_checks,
    trust_probe,
)
from lkpkg.trust.config import DCTSettings
from lkpkg.trust.cosign import PASSPHRASE_ENV as COSIGN_PASSWORD
from lkpkg.trust.passphrases import NOTRUST_HINT

# Seconds a network step may take: connect, TLS, one answer. Short on purpose: a healthy
# registry or trust server answers `GET /v2/` or its health check in milliseconds.
DEFAULT_TIMEOUT = 5.0
# Checks that run at once (registries, trust servers, builder engines).
MAX_WORKERS = 8
BINFMT_DIR_VARIABLE = "LKPKG_BINFMT_DIR"


@dataclass(frozen=True)
class DoctorOptions:
    """What to check, as `lkpkg doctor`'s flags say it; `env` is the environment the CLI
    read (docker config, trust server, passphrases, PATH), passed as a value."""

    org: str | None = None
    platforms: Sequence[Platform] | None = None
    builder: str = "auto"
    builder_hosts: Mapping[str, str] = field(default_factory=dict)
    notrust: bool = False
    sign_key: Path | None = None
    trust_ca: Path | None = None
    insecure: Sequence[str] = ()
    directories: Sequence[Path] = ()
    binfmt_dir: Path = BINFMT_DIR
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    # The cache every FROM of the packages must resolve in (None: $LINUXKIT_CACHE's default).
    cache_dir: Path | None = None
    # How the packages' tags (and so the `@lkt:pkg:` bases they build FROM) are computed.
    tag_mode: TagMode = TagMode.TREE


@dataclass(frozen=True)
class Targets:
    """What the options point at: platforms to build, and per registry domain the
    repositories (GUNs) that would be signed with Docker Content Trust."""

    platforms: tuple[Platform, ...]
    registries: tuple[str, ...]
    signed: Mapping[str, tuple[str, ...]]
    packages: tuple[Package, ...] = ()


def resolve_targets(options: DoctorOptions) -> Targets:
    """Platforms and registries from the flags and the packages; raises `InputError` for a bad
    flag or build.yml, as every command does."""
    packages = (
        load_packages(list(options.directories), org=options.org, tag_mode=options.tag_mode)
        if options.directories
        else []
    )
    if packages:
        registries = list(dict.fromkeys(p.reference().domain for p in packages))
        signed: dict[str, list[str]] = {}
        for package in packages:
            if not package.spec.disable_content_trust:
                signed.setdefault(package.reference().domain, []).append(package.reference().name)
    else:
        domain = org_domain(options.org) if options.org else DOCKER_HUB
        registries = [domain]
        signed = {domain: []}
    if options.platforms:
        wanted = list(options.platforms)
    else:
        wanted = [host_platform()]
        wanted += [Platform.from_arch(arch) for p in packages for arch in p.spec.arches]
    unique = tuple({str(p): p for p in wanted}.values())
    return Targets(
        platforms=unique,
        registries=tuple(registries),
        signed={domain: tuple(dict.fromkeys(guns)) for domain, guns in signed.items()},
        packages=tuple(packages),
    )


def org_domain(org: str) -> str:
    """The registry an org pushes to: `localhost:5000/wombat` → `localhost:5000`, `wombat` →
    `docker.io`."""
    validate_org(org)
    return Reference.parse(f"{org}/doctor").domain


def _guarded(name: str, check: Callable[[], CheckResult]) -> CheckResult:
    """Run a check; an lkpkg error it did not expect still becomes one FAIL line."""
    try:
        return check()
    except LkpkgError as error:
        return CheckResult.failed(name, error, "lkpkg build/push would stop here too")


def run_checks(options: DoctorOptions) -> Iterator[CheckResult]:
    """Every check the options call for, in a fixed order; network checks run concurrently and
    each result is yielded as soon as it and those before it are known.

    Raises `InputError` (before any check) for a bad flag, org or build.yml.
    """
    env = dict(options.env)
    settings = DCTSettings.from_environment(env)
    config_dir = default_config_dir(env)
    engines = EngineSettings.from_environ(env)
    targets = resolve_targets(options)
    keychain = Keychain(env=env)
    keychain.helper_timeout = max(options.timeout * 2, 10.0)
    insecure = [h for item in options.insecure for h in item.split(",") if h]
    # Only registries some package signs on (with no DIRs: the one --org names) need trust.
    signed = {} if options.notrust else dict(targets.signed)

    with ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="lkpkg-doctor") as pool:
        ordered: list[Future[CheckResult]] = []

        def submit(name: str, check: Callable[[], CheckResult]) -> None:
            ordered.append(pool.submit(_guarded, name, check))

        submit("builder", partial(_builder_now, options.builder, engines))
        for platform, url in options.builder_hosts.items():
            submit(f"builder host {platform}", partial(_builder_host_now, platform, url, engines))
        for target in targets.platforms:
            submit(
                f"platform {target}",
                partial(
                    platform_check,
                    target,
                    builder_hosts=options.builder_hosts,
                    binfmt_dir=options.binfmt_dir,
                ),
            )
        if targets.packages:
            cache = Cache(options.cache_dir or default_cache_dir(env))
            for package in targets.packages:
                wanted = options.platforms or [Platform.from_arch(a) for a in package.spec.arches]
                submit(f"bases {package.repository}", partial(bases_check, package, cache, wanted))
        for domain in targets.registries:
            submit(
                f"registry {domain}",
                partial(
                    registry_check,
                    domain,
                    config_dir=config_dir,
                    tls=tls,
                    insecure=insecure,
                    timeout=options.timeout,
                ),
            )
            submit(f"credentials {domain}", partial(credentials_check, domain, keychain))
        probes = [
            pool.submit(
                _guarded_probe,
                domain,
                guns,
                settings=settings,
                trust_ca=options.trust_ca,
                timeout=options.timeout,
            )
            for domain, guns in signed.items()
        ]
        cosign: Future[CheckResult] | None = None
        if options.sign_key is not None:
            key = options.sign_key
            check = partial(cosign_key_check, key, env.get(COSIGN_PASSWORD))
            cosign = pool.submit(_guarded, f"cosign key {key}", check)

        for future in ordered:
            yield future.result()
        if probes:
            exists: dict[str, bool | None] = {}
            because: str | None = None
            key_checks: list[CheckResult] = []
            for probe_future in probes:
                probe = probe_future.result()
                yield probe.result
                exists.update(probe.exists)
                because = because or probe.unknown_because
                if probe.config is not None:
                    key_checks += signing_key_checks(
                        probe.config, probe.exists, settings.passphrases
                    )
            yield notary_cli_check(env.get("PATH"))
            yield from passphrase_checks(settings.passphrases, exists, because)
            yield from key_checks
        if cosign is not None:
            yield cosign.result()


def bases_check(package: Package, cache: Cache, platforms: Sequence[Platform]) -> CheckResult:
    """Every FROM of `package` resolves in the cache for each platform it would build (what
    the build checks before the builder runs, builders/bases.py)."""
    name = f"bases {package.repository}"
    dockerfile = package.directory / package.spec.dockerfile
    if not dockerfile.is_file():
        return CheckResult.ok(name, "no Dockerfile: nothing to build")
    problems = [p for platform in platforms for p in package_bases(package, cache, None, platform)]
    if not problems:
        shown = ", ".join(str(p) for p in platforms) or "no platform"
        return CheckResult.ok(name, f"every FROM is in the cache ({cache.root}) for {shown}")
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    detail = f"{first.dockerfile}: FROM {first.name}: {first.reason}{more}"
    return CheckResult.fail(name, detail, first.fix or "lkpkg build would stop here too")


def _guarded_probe(
    domain: str,
    guns: Sequence[str],
    *,
    settings: DCTSettings,
    trust_ca: Path | None,
    timeout: float,
) -> TrustProbe:
    try:
        return trust_probe(domain, guns, settings=settings, trust_ca=trust_ca, timeout=timeout)
    except LkpkgError as error:
        fix = f"lkpkg push would stop here too; or {NOTRUST_HINT}"
        return TrustProbe(CheckResult.fail(f"trust for {domain}", error.message, fix), {})


def _builder_now(choice: str, engines: EngineSettings) -> CheckResult:
    return builder_check(choice, probe_builders(engines))


def _builder_host_now(platform: str, url: str, engines: EngineSettings) -> CheckResult:
    remote = DockerBuilder(host=url, remote=True, settings=engines)
    return builder_host_check(platform, url, remote.problem())


@dataclass(frozen=True)
class Summary:
    ok: int
    warnings: int
    failed: int

    @classmethod
    def of(cls, results: Sequence[CheckResult]) -> Summary:
        count = {status: 0 for status in Status}
        for result in results:
            count[result.status] += 1
        return cls(count[Status.OK], count[Status.WARN], count[Status.FAIL])

    @property
    def total(self) -> int:
        return self.ok + self.warnings + self.failed

    def __str__(self) -> str:
        warnings = "warning" if self.warnings == 1 else "warnings"
        return (
            f"{self.total} checks: {self.ok} ok, {self.warnings} {warnings}, {self.failed} failed"
        )
