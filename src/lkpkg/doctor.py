"""`lkpkg doctor`: can this host build, push and sign? Each answer comes with its fix.

Every check gives a `CheckResult`: a name, a status (ok, warn, FAIL), one line of detail and,
when it is not ok, one line saying how to fix it. A check never raises for what it finds: an
error lkpkg would raise during a build or push becomes a FAIL carrying that error's words.

Invariants:
- No secret is ever shown. A credential is reported by where it came from (`Credential.source`)
  and its user name; a passphrase only as set or not set.
- Nothing waits without a bound: every network step has an explicit timeout (`timeout`,
  seconds), a registry is pinged once without retries, and independent checks run at once.
- Nothing is written. The trust server is asked over HTTP (read-only) whether a repository
  exists; only a server that wants a login for that (Docker Hub's) is asked through the
  notary CLI, as `lkpkg push` asks it, which records the server's root on first use in
  `$DOCKER_CONFIG/trust` as `docker pull` does.
"""

from __future__ import annotations

import enum
import os
import shutil
import ssl
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import quote

import httpx

from lkpkg.auth import tls
from lkpkg.auth.dockerconfig import default_config_dir
from lkpkg.auth.keychain import Keychain
from lkpkg.builders.buildah import BuildahBuilder
from lkpkg.builders.docker import DockerBuilder
from lkpkg.errors import (
    AuthConfigError,
    CredentialHelperError,
    LkpkgError,
    RegistryError,
    RegistryUnreachable,
    TLSConfigError,
    TrustConfigError,
)
from lkpkg.oci.model import Platform
from lkpkg.package.model import load_packages
from lkpkg.platforms import BINFMT_DIR, emulation_problem, host_platform
from lkpkg.reference import DOCKER_HUB, DOCKER_HUB_LEGACY, Reference, validate_org
from lkpkg.registry.client import RegistryClient
from lkpkg.registry.transport import TransportConfig, describe_transport_error
from lkpkg.trust.cosign import PASSPHRASE_ENV as COSIGN_PASSWORD
from lkpkg.trust.cosign import load_private_key
from lkpkg.trust.dct import (
    NOTARY,
    REPOSITORY_PASSPHRASE,
    ROOT_PASSPHRASE,
    SERVER_VARIABLE,
    DCTSigner,
    TrustConfig,
)

# Seconds a network step may take: connect, TLS, one answer. Short on purpose: a healthy
# registry or trust server answers `GET /v2/` or its health check in milliseconds.
DEFAULT_TIMEOUT = 5.0
# Checks that run at once (registries, trust servers, builder engines).
MAX_WORKERS = 8
HEALTH_PATH = "/_notary_server/health"
# The fix for a missing qemu-user handler; the test suite and docs name it too.
QEMU_PACKAGES = "apt-get install qemu-user-static binfmt-support"
NOTRUST_HINT = "NOTRUST=1 / --notrust to push unsigned"
BINFMT_DIR_VARIABLE = "LKPKG_BINFMT_DIR"


class Status(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict. `detail` and `fix` are single lines (newlines are folded)."""

    name: str
    status: Status
    detail: str
    fix: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "detail", _one_line(self.detail))
        if self.fix is not None:
            object.__setattr__(self, "fix", _one_line(self.fix))
        if self.status is not Status.OK and not self.fix:
            raise ValueError(f"check '{self.name}' is {self.status.value} without a fix")

    @classmethod
    def ok(cls, name: str, detail: str) -> CheckResult:
        return cls(name, Status.OK, detail)

    @classmethod
    def warn(cls, name: str, detail: str, fix: str) -> CheckResult:
        return cls(name, Status.WARN, detail, fix)

    @classmethod
    def fail(cls, name: str, detail: str, fix: str) -> CheckResult:
        return cls(name, Status.FAIL, detail, fix)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


@dataclass(frozen=True)
class DoctorOptions:
    """What to check, as `lkpkg doctor`'s flags say it. `env` defaults to `os.environ`."""

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
    env: Mapping[str, str] | None = None
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class Targets:
    """What the options point at: platforms to build, and per registry domain the
    repositories (GUNs) that would be signed with Docker Content Trust."""

    platforms: tuple[Platform, ...]
    registries: tuple[str, ...]
    signed: Mapping[str, tuple[str, ...]]


def resolve_targets(options: DoctorOptions) -> Targets:
    """Platforms and registries from the flags and the packages; raises `InputError` for a bad
    flag or build.yml, as every command does."""
    packages = (
        load_packages(list(options.directories), org=options.org) if options.directories else []
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
    )


def org_domain(org: str) -> str:
    """The registry an org pushes to: `localhost:5000/wombat` → `localhost:5000`, `wombat` →
    `docker.io`."""
    validate_org(org)
    return Reference.parse(f"{org}/doctor").domain


# -- builders ---------------------------------------------------------------------------------

_BUILDER_ORDER = ("buildah", "docker")


def builder_candidates(choice: str) -> tuple[str, ...]:
    """The builders `--builder choice` tries, in order (as `select_builder` does)."""
    return _BUILDER_ORDER if choice == "auto" else (choice,)


def builder_check(choice: str, problems: Mapping[str, str | None]) -> CheckResult:
    """What `--builder choice` picks given each builder's `problem()` (None: usable)."""
    name = f"builder ({choice})"
    candidates = builder_candidates(choice)
    picked = next((b for b in candidates if problems.get(b, "") is None), None)
    if picked is not None:
        others = "; ".join(
            f"{b}: {problems[b] or 'usable too'}"
            for b in _BUILDER_ORDER
            if b != picked and b in problems
        )
        return CheckResult.ok(name, f"picks {picked}" + (f"; {others}" if others else ""))
    why = "; ".join(f"{b}: {problems.get(b) or 'not checked'}" for b in candidates)
    if choice == "buildah":
        fix = "apt-get install buildah"
    elif choice == "docker":
        fix = _docker_fix(problems.get("docker") or "")
    else:
        fix = (
            "apt-get install buildah (daemonless, preferred), or apt-get install docker.io and "
            "start dockerd (or point DOCKER_HOST at a running engine)"
        )
    usable = [b for b in _BUILDER_ORDER if b not in candidates and problems.get(b, "") is None]
    if usable:
        fix += f", or --builder {usable[0]} (usable here)"
    return CheckResult.fail(name, f"no usable builder: {why}", fix)


def _docker_fix(problem: str) -> str:
    if "client" in problem:
        return (
            "apt-get install docker.io (a client with buildx, or one older than 23.0), "
            "or set LKPKG_DOCKER_CLIENT to such a client"
        )
    return "start dockerd (systemctl start docker), or point DOCKER_HOST at a running engine"


def probe_builders() -> dict[str, str | None]:
    """Each builder's `problem()` here: every one, so the report says why the others cannot."""
    return {"buildah": BuildahBuilder().problem(), "docker": DockerBuilder().problem()}


def builder_host_check(platform: str, url: str, problem: str | None) -> CheckResult:
    """The verdict on one `--builder-host PLATFORM=URL` engine from its `problem()`."""
    name = f"builder host {platform}"
    if problem is None:
        return CheckResult.ok(name, f"the Docker engine at {url} answers")
    if "client" in problem:
        fix = _docker_fix(problem)
    else:
        ssh = " (ssh:// also needs a key ssh-agent offers)" if url.startswith("ssh://") else ""
        fix = (
            f"start dockerd where {url} points and check it is reachable from here{ssh}, "
            f"or drop --builder-host {platform}={url}"
        )
    # The builder's own hint ("set DOCKER_HOST") is for the local engine: not shown here.
    return CheckResult.fail(name, split_fix(problem)[0], fix)


# -- platforms --------------------------------------------------------------------------------


def platform_check(
    platform: Platform, *, builder_hosts: Mapping[str, str], binfmt_dir: Path = BINFMT_DIR
) -> CheckResult:
    """Whether `platform` builds here: natively, on a builder host, or under qemu-user."""
    name = f"platform {platform}"
    url = builder_hosts.get(str(platform))
    if url is not None:
        return CheckResult.ok(name, f"built natively on the builder host {url}")
    host = host_platform()
    problem = emulation_problem(platform, binfmt_dir)
    if problem is None:
        # Asked again without any handler: None means the CPU runs it (amd64 runs 386 too).
        if emulation_problem(platform, binfmt_dir / "lkpkg-doctor-no-handlers") is None:
            return CheckResult.ok(name, f"native on this {host} host")
        return CheckResult.ok(
            name, f"emulated: its qemu-user binfmt handler in {binfmt_dir} is enabled"
        )
    detail, fix = split_fix(problem)
    remote = f"--builder-host {platform}=ssh://user@a-{platform.architecture}-host"
    if fix is None:
        return CheckResult.fail(
            name, detail, f"build it on a {platform.architecture} machine: {remote}"
        )
    if not binfmt_dir.is_dir():
        fix = f"mount -t binfmt_misc binfmt_misc {binfmt_dir}, then {fix}"
    return CheckResult.fail(name, detail, f"{fix}, or {remote}")


def split_fix(message: str) -> tuple[str, str | None]:
    """`what went wrong (how to fix it)` → (what went wrong, how to fix it)."""
    text = message.strip()
    if text.endswith(")") and " (" in text:
        head, _, tail = text.rpartition(" (")
        return head, tail[:-1]
    return text, None


# -- registries -------------------------------------------------------------------------------


def transport_config(timeout: float) -> TransportConfig:
    """One try, every socket step bounded by `timeout`."""
    return TransportConfig(
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
        pool_timeout=timeout,
        attempts=1,
    )


def registry_check(
    domain: str,
    *,
    insecure: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> CheckResult:
    """`GET /v2/` at the registry, https first (plain http where docker would allow it)."""
    name = f"registry {domain}"
    config_dir = default_config_dir(os.environ if env is None else env)
    client = RegistryClient(
        domain,
        keychain=None,
        tls=tls,
        insecure=insecure,
        config=transport_config(timeout),
        config_dir=config_dir,
    )
    try:
        base = client.ping()
    except RegistryUnreachable as error:
        reason = describe_transport_error(error)
        plain = tls.plain_http_allowed(client.host, insecure)
        detail = error.message.removeprefix(f"registry {domain} ")
        fix = unreachable_fix(
            client.host,
            reason,
            plain_http_allowed=plain,
            config_dir=config_dir,
            public=domain == DOCKER_HUB,
        )
        return CheckResult.fail(name, detail, fix)
    except TLSConfigError as error:
        return CheckResult.fail(
            name, error.message, "fix or remove that file (docker reads it too)"
        )
    except RegistryError as error:
        return CheckResult.fail(
            name,
            error.message,
            "check the org (--org or build.yml `org`): its first part names the registry host",
        )
    finally:
        client.close()
    return CheckResult.ok(name, f"answers at {base}/v2/")


def unreachable_fix(
    host: str, reason: str, *, plain_http_allowed: bool, config_dir: Path, public: bool = False
) -> str:
    """How to fix "registry HOST unreachable: REASON". `public`: a registry the user does not
    run (Docker Hub), so only this host's network can be at fault."""
    if "certificate" in reason:
        return (
            f"trust the registry's CA: copy it to {config_dir}/certs.d/{host}/ca.crt "
            f"(or /etc/docker/certs.d/{host}/ca.crt)"
        )
    if "TLS" in reason and not plain_http_allowed:
        return f"a registry that speaks plain http needs --insecure-registry {host}"
    if public:
        return f"check this host's DNS and internet access to {host} (HTTPS_PROXY/NO_PROXY)"
    if "resolve" in reason:
        return f"check the host name '{host}' in the org (--org or build.yml `org`), and DNS"
    if "timed out" in reason:
        return (
            f"check that {host} is reachable from here (firewall, HTTPS_PROXY/NO_PROXY), "
            "or raise --timeout"
        )
    return (
        f"start the registry at {host}, or correct the host and port in the org "
        "(--org or build.yml `org`)"
    )


def trust_unreachable_fix(
    server_host: str, reason: str, *, ca_path: Path, guessed: bool = False
) -> str:
    """How to fix "trust server https://HOST unreachable: REASON". `guessed`: no
    DOCKER_CONTENT_TRUST_SERVER, so HOST is docker's guess, the registry's own address."""
    if "certificate" in reason:
        return f"put the trust server's CA at {ca_path}, or pass --trust-ca FILE"
    if guessed:
        return _guessed_server_fix(server_host)
    if "TLS" in reason:
        where = f"{server_host} does not speak https: point {SERVER_VARIABLE} at the notary server"
        return f"{where}, or {NOTRUST_HINT}"
    if "refused" in reason:
        where = f"start the notary server at {server_host}"
    else:
        where = f"check that {server_host} resolves and is reachable (DNS, firewall, HTTPS_PROXY)"
    return f"{where}, set {SERVER_VARIABLE} to your trust server, or {NOTRUST_HINT}"


def _guessed_server_fix(server_host: str) -> str:
    return (
        f"set {SERVER_VARIABLE}=https://NOTARY-HOST:PORT (unset, docker and lkpkg look for the "
        f"trust server at the registry's own address {server_host}), or {NOTRUST_HINT}"
    )


def credentials_check(domain: str, keychain: Keychain) -> CheckResult:
    """Whether the docker config holds credentials for `domain`: where from, never what."""
    name = f"credentials {domain}"
    try:
        credential = keychain.resolve(domain)
    except AuthConfigError as error:
        return CheckResult.fail(
            name, error.message, "correct that file (docker login rewrites it), or move it away"
        )
    except CredentialHelperError as error:
        return CheckResult.fail(
            name,
            error.message,
            "install that docker-credential helper, or remove it from credsStore/credHelpers",
        )
    if credential is None:
        return CheckResult.warn(
            name,
            f"none in {keychain.sources_tried(domain)}: pulls are anonymous, and a registry"
            " that wants a login refuses pushes",
            f"docker login {domain}",
        )
    if credential.identity_token:
        who = "an identity token"
    elif credential.username:
        who = f"user '{credential.username}'"
    else:
        who = "a password"
    return CheckResult.ok(name, f"{who} from {credential.source}")


# -- Docker Content Trust ---------------------------------------------------------------------


@dataclass(frozen=True)
class TrustProbe:
    """The trust server's health, and per GUN whether it holds trust data (None: unknown)."""

    result: CheckResult
    exists: Mapping[str, bool | None]
    unknown_because: str | None = None


def trust_probe(
    domain: str,
    guns: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    trust_ca: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> TrustProbe:
    """Ask the trust server for `domain` its health and, for each GUN, whether it exists."""
    env = os.environ if env is None else env
    try:
        config = TrustConfig.for_registry(domain, env, trust_ca)
    except TrustConfigError as error:
        return TrustProbe(
            CheckResult.fail(
                "trust server",
                error.message,
                f"set {SERVER_VARIABLE}=https://HOST[:PORT], or {NOTRUST_HINT}",
            ),
            {},
        )
    name = f"trust server {config.server}"
    guessed = not env.get(SERVER_VARIABLE) and domain not in (DOCKER_HUB, DOCKER_HUB_LEGACY)
    unknown = {gun: None for gun in guns}
    failed = "the trust server check failed"
    ca_file = config.ca_cert
    ca_path = default_config_dir(env) / "tls" / config.server_host / "ca.crt"
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as error:
        return TrustProbe(
            CheckResult.fail(
                name,
                f"CA {ca_file} for the trust server is unusable: {_os_reason(error)}",
                f"give a PEM CA certificate with --trust-ca, or put it at {ca_path}",
            ),
            unknown,
            failed,
        )
    ca_said = f"CA {ca_file}" if ca_file else "the system's CA roots"
    with httpx.Client(verify=context, timeout=timeout, follow_redirects=False) as client:
        try:
            answer = client.get(config.server + HEALTH_PATH)
        except httpx.TransportError as error:
            reason = describe_transport_error(error)
            fix = trust_unreachable_fix(
                config.server_host, reason, ca_path=ca_path, guessed=guessed
            )
            detail = f"unreachable: {reason}"
            if "certificate" in reason:
                detail += f" (trusting {ca_said})"
            return TrustProbe(CheckResult.fail(name, detail, fix), unknown, failed)
        if answer.status_code != 200:
            return TrustProbe(
                CheckResult.fail(
                    name,
                    f"{HEALTH_PATH} answered {answer.status_code} {answer.reason_phrase}",
                    _guessed_server_fix(config.server_host)
                    if guessed
                    else f"check the notary server's logs (its storage and signer), set "
                    f"{SERVER_VARIABLE} to a healthy one, or {NOTRUST_HINT}",
                ),
                unknown,
                failed,
            )
        exists: dict[str, bool | None] = {}
        because: str | None = None
        # Only the root passphrase depends on the answer: with it set, nothing to ask.
        if not env.get(ROOT_PASSPHRASE):
            for gun in guns:
                if because is not None:
                    exists[gun] = None  # one failure to ask is enough to report
                    continue
                exists[gun], because = _repository_exists(client, config, gun, env, timeout)
    result = CheckResult.ok(name, f"healthy ({ca_said})")
    return TrustProbe(result, exists, because)


def _os_reason(error: OSError) -> str:
    if isinstance(error, ssl.SSLError):
        return str(error.reason or error)
    return error.strerror or str(error)


def _repository_exists(
    client: httpx.Client,
    config: TrustConfig,
    gun: str,
    env: Mapping[str, str],
    timeout: float,
) -> tuple[bool | None, str | None]:
    """Whether the trust server holds `gun` (its root.json), read-only; with a reason when it
    cannot tell."""
    url = f"{config.server}/v2/{quote(gun, safe='/:')}/_trust/tuf/root.json"
    try:
        answer = client.get(url)
    except httpx.TransportError as error:
        return None, describe_transport_error(error)
    if answer.status_code == 200:
        return True, None
    if answer.status_code == 404:
        return False, None
    if answer.status_code == 401 and shutil.which(NOTARY, path=env.get("PATH", os.defpath)):
        # A server that wants a login to read (Docker Hub's): the notary CLI can answer its
        # token challenge, as `lkpkg push` would ask it.
        try:
            signer = DCTSigner(config, env, timeout=max(timeout * 3, 10.0))
            return signer.repository_exists(gun), None
        except LkpkgError as error:
            return None, error.message
    return None, f"{url} answered {answer.status_code}"


def notary_cli_check(env: Mapping[str, str] | None = None) -> CheckResult:
    env = os.environ if env is None else env
    found = shutil.which(NOTARY, path=env.get("PATH", os.defpath))
    if found is None:
        return CheckResult.fail(
            "notary CLI",
            "not found on PATH; signing with Docker Content Trust runs it",
            f"apt-get install notary, or {NOTRUST_HINT}",
        )
    return CheckResult.ok("notary CLI", found)


def passphrase_checks(
    env: Mapping[str, str],
    exists: Mapping[str, bool | None],
    unknown_because: str | None = None,
) -> list[CheckResult]:
    """Whether the passphrases DCT signing needs are set (`check_passphrases`' rule: empty is
    unset). ROOT is needed only for a repository not yet on the trust server: `exists` says
    which are (None: could not ask). Values are never read beyond "set or not"."""
    results: list[CheckResult] = []
    repo_name = f"passphrase {REPOSITORY_PASSPHRASE}"
    if env.get(REPOSITORY_PASSPHRASE):
        results.append(CheckResult.ok(repo_name, "set"))
    else:
        results.append(
            CheckResult.fail(
                repo_name,
                "not set: signing with Docker Content Trust needs it for the targets key",
                f"export {REPOSITORY_PASSPHRASE}=..., or {NOTRUST_HINT}",
            )
        )
    root_name = f"passphrase {ROOT_PASSPHRASE}"
    if env.get(ROOT_PASSPHRASE):
        results.append(CheckResult.ok(root_name, "set"))
        return results
    new = [gun for gun, known in exists.items() if known is False]
    unknown = [gun for gun, known in exists.items() if known is None]
    root_fix = f"export {ROOT_PASSPHRASE}=..., or {NOTRUST_HINT}"
    if new:
        more = f" (and {len(new) - 1} more)" if len(new) > 1 else ""
        results.append(
            CheckResult.fail(
                root_name,
                f"not set: {new[0]}{more} is not on the trust server yet, and its first "
                "signing initialises it with the root key",
                root_fix,
            )
        )
    elif unknown:
        results.append(
            CheckResult.warn(
                root_name,
                f"not set; could not ask whether {unknown[0]} is on the trust server yet "
                f"({unknown_because or 'no answer'}): a new repository needs it",
                f"export {ROOT_PASSPHRASE}=... before the first signed push of a new repository",
            )
        )
    elif not exists:
        results.append(
            CheckResult.warn(
                root_name,
                "not set: needed to sign a repository that is not on the trust server yet "
                "(give package DIRs to ask)",
                f"export {ROOT_PASSPHRASE}=... before the first signed push of a new repository",
            )
        )
    else:
        results.append(
            CheckResult.ok(
                root_name, "not set, not needed: every repository is on the trust server"
            )
        )
    return results


# -- cosign -----------------------------------------------------------------------------------


def cosign_key_check(path: Path, env: Mapping[str, str] | None = None) -> CheckResult:
    """Whether the cosign signing key loads with $COSIGN_PASSWORD."""
    env = os.environ if env is None else env
    name = f"cosign key {path}"
    try:
        key = load_private_key(path, env)
    except LkpkgError as error:
        if not path.is_file():
            fix = (
                "check --sign-key / LKPKG_SIGN_KEY, or make a key pair: "
                f"{COSIGN_PASSWORD}=... lkpkg keygen"
            )
        elif COSIGN_PASSWORD not in env:
            fix = f"export {COSIGN_PASSWORD}=<the passphrase the key was made with>"
        else:
            fix = (
                f"set {COSIGN_PASSWORD} to the passphrase the key was made with, or make a new "
                "pair with lkpkg keygen"
            )
        return CheckResult.fail(name, error.message.removeprefix(f"{path}: "), fix)
    return CheckResult.ok(name, f"ECDSA {key.curve.name} private key loads")


# -- all of it --------------------------------------------------------------------------------


def _guarded(name: str, check: Callable[[], CheckResult]) -> CheckResult:
    """Run a check; an lkpkg error it did not expect still becomes one FAIL line."""
    try:
        return check()
    except LkpkgError as error:
        return CheckResult.fail(name, error.message, "lkpkg build/push would stop here too")


def run_checks(options: DoctorOptions) -> Iterator[CheckResult]:
    """Every check the options call for, in a fixed order; network checks run concurrently and
    each result is yielded as soon as it and those before it are known.

    Raises `InputError` (before any check) for a bad flag, org or build.yml.
    """
    env: dict[str, str] = dict(os.environ if options.env is None else options.env)
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

        submit("builder", partial(_builder_now, options.builder))
        for platform, url in options.builder_hosts.items():
            submit(f"builder host {platform}", partial(_builder_host_now, platform, url))
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
        for domain in targets.registries:
            submit(
                f"registry {domain}",
                partial(
                    registry_check, domain, insecure=insecure, env=env, timeout=options.timeout
                ),
            )
            submit(f"credentials {domain}", partial(credentials_check, domain, keychain))
        probes = [
            pool.submit(
                _guarded_probe,
                domain,
                guns,
                env=env,
                trust_ca=options.trust_ca,
                timeout=options.timeout,
            )
            for domain, guns in signed.items()
        ]
        cosign: Future[CheckResult] | None = None
        if options.sign_key is not None:
            key = options.sign_key
            cosign = pool.submit(_guarded, f"cosign key {key}", partial(cosign_key_check, key, env))

        for future in ordered:
            yield future.result()
        if probes:
            exists: dict[str, bool | None] = {}
            because: str | None = None
            for probe_future in probes:
                probe = probe_future.result()
                yield probe.result
                exists.update(probe.exists)
                because = because or probe.unknown_because
            yield notary_cli_check(env)
            yield from passphrase_checks(env, exists, because)
        if cosign is not None:
            yield cosign.result()


def _guarded_probe(
    domain: str,
    guns: Sequence[str],
    *,
    env: Mapping[str, str],
    trust_ca: Path | None,
    timeout: float,
) -> TrustProbe:
    try:
        return trust_probe(domain, guns, env=env, trust_ca=trust_ca, timeout=timeout)
    except LkpkgError as error:
        fix = f"lkpkg push would stop here too; or {NOTRUST_HINT}"
        return TrustProbe(CheckResult.fail(f"trust for {domain}", error.message, fix), {})


def _builder_now(choice: str) -> CheckResult:
    return builder_check(choice, probe_builders())


def _builder_host_now(platform: str, url: str) -> CheckResult:
    return builder_host_check(platform, url, DockerBuilder(host=url, remote=True).problem())


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
