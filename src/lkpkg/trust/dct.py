"""Docker Content Trust signing through Debian's `notary` CLI, without a TTY.

The trust data is kept where docker keeps it (`$DOCKER_CONFIG/trust`: keys in `private/`,
trusted metadata in `tuf/<gun>/metadata/`), and repositories are laid out as `docker push` with
DOCKER_CONTENT_TRUST=1 lays them out, so docker and lkpkg can take turns signing one repository
and `docker pull` / `docker trust inspect` see what lkpkg signed. See README.md for the
invariants; docker's behaviour quoted below is docker/cli's `cli/trust` and
`cli/command/image/trust.go` (20.10).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from lkpkg.errors import (
    EnvironmentProblem,
    LkpkgError,
    ReferenceError_,
    TrustConfigError,
    TrustError,
    TrustKeyError,
    TrustPassphraseMissing,
    TrustServerUnreachable,
)
from lkpkg.oci.digest import SHA256, invalid_digest_reason
from lkpkg.reference import DOCKER_HUB, DOCKER_HUB_LEGACY, Reference, is_valid_tag

# Names of environment variables, not secrets.
ROOT_PASSPHRASE = "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE"  # noqa: S105
REPOSITORY_PASSPHRASE = "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE"  # noqa: S105
SERVER_VARIABLE = "DOCKER_CONTENT_TRUST_SERVER"
# notary's own way to answer a trust server's basic-auth challenge without a prompt.
NOTARY_AUTH = "NOTARY_AUTH"
DOCKER_HUB_NOTARY = "https://notary.docker.io"
NOTARY = "notary"
NOTARY_TIMEOUT = 120.0

TARGETS_ROLE = "targets"
RELEASES_ROLE = "targets/releases"

# docker's passphrase retriever answers root from the ROOT variable and every other role
# (targets, snapshot, and any delegation key, which docker files under the signer's name) from
# the REPOSITORY variable. The notary CLI asks per alias; this maps its aliases onto docker's.
NOTARY_PASSPHRASE_ENV: Mapping[str, str] = {
    "NOTARY_ROOT_PASSPHRASE": ROOT_PASSPHRASE,
    "NOTARY_TARGETS_PASSPHRASE": REPOSITORY_PASSPHRASE,
    "NOTARY_SNAPSHOT_PASSPHRASE": REPOSITORY_PASSPHRASE,
    "NOTARY_DELEGATION_PASSPHRASE": REPOSITORY_PASSPHRASE,
}
# Never inherited by notary: a stray NOTARY_*_PASSPHRASE in the caller's environment would make
# notary use a key docker would not, and the DOCKER_* ones are no business of the child.
_NOT_INHERITED = frozenset({*NOTARY_PASSPHRASE_ENV, ROOT_PASSPHRASE, REPOSITORY_PASSPHRASE})

_HEX64 = re.compile(r"\b[0-9a-f]{64}\b")
_FATAL = "* fatal: "
_UNREACHABLE = re.compile(r'could not reach \S+: (?:Get "[^"]*": )?(?P<why>[^"\n]+)')
_HTTP_401 = re.compile(r"\b401\b|unauthorized", re.IGNORECASE)
_REDACTED = "<redacted>"


# -- values ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One signed tag: the manifest (or index) digest and byte size `docker pull` checks."""

    tag: str
    digest: str
    size: int

    def __post_init__(self) -> None:
        if not is_valid_tag(self.tag):
            raise ReferenceError_(f"invalid tag '{self.tag}' to sign")
        reason = invalid_digest_reason(self.digest)
        if reason is None and not self.digest.startswith(f"{SHA256}:"):
            # docker pull only accepts a target by its sha256 (`convertTarget`).
            reason = "Docker Content Trust signs sha256 digests only"
        if reason is not None:
            raise ReferenceError_(f"invalid digest '{self.digest}' for tag '{self.tag}': {reason}")
        if self.size < 0:
            raise ValueError(f"negative size {self.size} for tag '{self.tag}'")

    @property
    def hex(self) -> str:
        return self.digest.partition(":")[2]


@dataclass(frozen=True)
class TrustConfig:
    """Where the trust server is and where the trust data and its CA live, as docker finds them."""

    server: str
    trust_dir: Path
    ca_cert: Path | None = None

    @classmethod
    def for_registry(
        cls,
        registry_domain: str,
        env: Mapping[str, str] | None = None,
        ca_cert: Path | None = None,
    ) -> TrustConfig:
        """docker's choice for a registry (`trust.Server`, `certificateDirectory`).

        The server is $DOCKER_CONTENT_TRUST_SERVER, else notary.docker.io for Docker Hub, else
        `https://<registry host[:port]>`: docker looks for a registry's notary at the registry's
        own address, not on notary's conventional port 4443. The CA, unless given, is
        `<docker config dir>/tls/<server host:port>/ca.crt` when that file exists; otherwise
        the system's roots apply.
        """
        env = os.environ if env is None else env
        server = env.get(SERVER_VARIABLE, "")
        if server:
            parts = urlsplit(server)
            if parts.scheme != "https" or not parts.netloc:
                raise TrustConfigError(f"{SERVER_VARIABLE} must be an https:// URL, got '{server}'")
        elif registry_domain in (DOCKER_HUB, DOCKER_HUB_LEGACY):
            server = DOCKER_HUB_NOTARY
        else:
            server = f"https://{registry_domain}"
        server = server.rstrip("/")
        config_dir = _docker_config_dir(env)
        if ca_cert is None:
            candidate = config_dir / "tls" / _url_host(server) / "ca.crt"
            if candidate.is_file():
                ca_cert = candidate
        return cls(server=server, trust_dir=config_dir / "trust", ca_cert=ca_cert)

    @property
    def server_host(self) -> str:
        """`host[:port]` of the server, as notary names it in its messages."""
        return _url_host(self.server)


@dataclass(frozen=True)
class Delegation:
    """A delegation role as `notary delegation list` shows it (key IDs are canonical, so they
    match the file names of private keys even for x509-certificate delegations)."""

    role: str
    paths: tuple[str, ...]
    key_ids: frozenset[str]

    def covers(self, tag: str) -> bool:
        """Whether the role may sign `tag`: TUF paths are name prefixes; "" covers all."""
        return any(tag.startswith(path) for path in self.paths)

    @property
    def is_direct_child(self) -> bool:
        # docker signs only into children of `targets`; deeper roles need their parent's key.
        return self.role.rpartition("/")[0] == TARGETS_ROLE


@dataclass(frozen=True)
class ListedTarget:
    """One row of `notary list`."""

    name: str
    sha256_hex: str
    size: int
    role: str


# -- passphrases ----------------------------------------------------------------------------


def check_passphrases(env: Mapping[str, str], *, may_need_root: bool) -> None:
    """Raise `TrustPassphraseMissing` (exit 2) if a passphrase signing may need is not set.

    Meant to be called before anything is pushed, so a missing variable costs nothing.
    `may_need_root`: the repository may have to be initialised on the trust server, which
    needs the root key. An empty value counts as unset, as it does for docker.
    """
    missing = [REPOSITORY_PASSPHRASE] if not env.get(REPOSITORY_PASSPHRASE) else []
    if may_need_root and not env.get(ROOT_PASSPHRASE):
        missing.insert(0, ROOT_PASSPHRASE)
    if not missing:
        return
    why = (
        "a repository not yet on the trust server is initialised with the root key"
        if missing == [ROOT_PASSPHRASE]
        else "signing with Docker Content Trust needs it"
    )
    verb = "is" if len(missing) == 1 else "are"
    raise TrustPassphraseMissing(
        f"{' and '.join(missing)} {verb} not set: {why};"
        " set it, or NOTRUST=1 / --notrust to push without signing"
    )


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each non-empty secret replaced by `<redacted>`.

    Longer secrets go first, so a secret that contains a shorter one is hidden whole.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, _REDACTED)
    return text


def secret_values(env: Mapping[str, str]) -> list[str]:
    """Every value in `env` that must never be shown: the passphrases, and NOTARY_AUTH both as
    given and decoded (`user:password`) together with its password alone."""
    values = [env.get(ROOT_PASSPHRASE, ""), env.get(REPOSITORY_PASSPHRASE, "")]
    auth = env.get(NOTARY_AUTH, "")
    if auth:
        values.append(auth)
        try:
            plain = base64.b64decode(auth, validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            plain = ""
        values += [plain, plain.partition(":")[2]]
    return [v for v in values if v]


def notary_environment(env: Mapping[str, str], base: Mapping[str, str]) -> dict[str, str]:
    """The environment for notary: `base` without any passphrase variable, plus docker's
    passphrases from `env` under the names the notary CLI reads (and NOTARY_AUTH if set)."""
    child = {k: v for k, v in base.items() if k not in _NOT_INHERITED and k != NOTARY_AUTH}
    for notary_name, docker_name in NOTARY_PASSPHRASE_ENV.items():
        value = env.get(docker_name, "")
        if value:
            child[notary_name] = value
    if env.get(NOTARY_AUTH):
        child[NOTARY_AUTH] = env[NOTARY_AUTH]
    return child


# -- notary's output ------------------------------------------------------------------------


def _table_rows(output: str, first_column: str) -> tuple[str, list[str]] | None:
    """(header, rows) of the tabwriter table whose header starts with `first_column`."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(first_column + " "):
            rows: list[str] = []
            for row in lines[index + 2 :]:  # skip the "----" underline
                if not row.strip():
                    break
                rows.append(row)
            return line, rows
    return None


def parse_delegation_list(output: str) -> list[Delegation]:
    """The roles in `notary delegation list` output ([] for "No delegations present").

    Rows are cut at the header's column offsets: Go's tabwriter aligns every row of the table
    to them, paths may contain spaces, and a role with several paths or keys continues on rows
    whose ROLE cell is empty.
    """
    table = _table_rows(output, "ROLE")
    if table is None:
        return []
    header, rows = table
    paths_at, keys_at, threshold_at = (
        header.find("PATHS"),
        header.find("KEY IDS"),
        header.find("THRESHOLD"),
    )
    if min(paths_at, keys_at, threshold_at) < 0:
        raise TrustError(f"unexpected `notary delegation list` header: {header.strip()}")
    found: list[tuple[str, list[str], set[str]]] = []
    for row in rows:
        role = row[:paths_at].strip()
        path = row[paths_at:keys_at].strip()
        key = row[keys_at:threshold_at].strip()
        if role:
            found.append((role, [], set()))
        elif not found:
            continue
        if path:
            # notary spells the empty ("all paths") prefix this way.
            found[-1][1].append("" if path == '"" <all paths>' else path)
        if key:
            found[-1][2].add(key)
    return [Delegation(role, tuple(paths), frozenset(keys)) for role, paths, keys in found]


def parse_target_list(output: str) -> list[ListedTarget]:
    """The rows of `notary list` output ([] for "No targets present")."""
    table = _table_rows(output, "NAME")
    if table is None:
        return []
    listed: list[ListedTarget] = []
    for row in table[1]:
        fields = row.split()
        # A target not named like a tag (notary allows any name) cannot be a docker tag.
        if len(fields) != 4 or not _HEX64.fullmatch(fields[1]) or not fields[2].isdigit():
            continue
        listed.append(ListedTarget(fields[0], fields[1], int(fields[2]), fields[3]))
    return listed


def parse_key_ids(output: str) -> set[str]:
    """Key IDs in `notary key list` output (its GUN column is truncated, so only IDs count)."""
    return set(_HEX64.findall(output))


def _fatal(output: str) -> str:
    """notary's one-line reason: its last `* fatal:` line, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(_FATAL):
            return line[len(_FATAL) :]
    return lines[-1] if lines else "no output"


# -- the signer -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    returncode: int
    output: str  # stdout (where notary prints `* fatal:`) then stderr (its log lines)

    @property
    def fatal(self) -> str:
        return _fatal(self.output)


class _Notary:
    """One configured notary CLI: fixed flags, child environment, and error wording."""

    def __init__(
        self,
        executable: str,
        config: TrustConfig,
        child_env: Mapping[str, str],
        secrets: Sequence[str],
        config_file: Path,
        timeout: float,
    ) -> None:
        self._executable = executable
        self.config = config
        self._child_env = dict(child_env)
        self._secrets = list(secrets)
        # `-c`: an empty config of our own, so a ~/.notary/config.json (trust pinning, another
        # server) cannot make notary trust differently from docker, which never reads it.
        self._prefix = [
            executable,
            "-c",
            str(config_file),
            "-s",
            config.server,
            "-d",
            str(config.trust_dir),
        ]
        if config.ca_cert is not None:
            self._prefix += ["--tlscacert", str(config.ca_cert)]
        self._timeout = timeout

    def run(self, *args: str) -> _Run:
        try:
            done = subprocess.run(
                [*self._prefix, *args],
                # A prompt (a passphrase we did not provide, a username for the server) reads
                # EOF and fails at once instead of waiting for a TTY that is not there.
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=self._child_env,
                timeout=self._timeout,
                check=False,
            )
        except FileNotFoundError:
            raise EnvironmentProblem(
                f"{self._executable}: not found; signing with Docker Content Trust needs the"
                " notary CLI (apt-get install notary)"
            ) from None
        except subprocess.TimeoutExpired:
            raise TrustServerUnreachable(
                f"trust server {self.config.server} unreachable: `notary {args[0]}` did not"
                f" finish in {self._timeout:g}s"
            ) from None
        output = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
        return _Run(done.returncode, output)

    def checked(self, what: str, *args: str, passphrase: str | None = None) -> str:
        """Run; on failure raise the error notary's output calls for. `passphrase` names the
        variable whose key this step unlocks, for a "password invalid"."""
        result = self.run(*args)
        if result.returncode != 0:
            raise self.failure(what, result, passphrase=passphrase)
        return result.output

    def scrubbed(self, text: str) -> str:
        return scrub(text, self._secrets)

    def failure(self, what: str, result: _Run, *, passphrase: str | None = None) -> LkpkgError:
        """The one-line error for a failed notary run; notary's words are scrubbed first."""
        fatal = self.scrubbed(result.fatal)
        server = self.config.server
        if fatal == "client is offline" or "could not reach" in result.output:
            # notary's log line quotes its message, so the inner quotes arrive escaped.
            match = _UNREACHABLE.search(result.output.replace('\\"', '"'))
            why = self.scrubbed(match.group("why").strip()) if match else fatal
            hint = ""
            if "x509:" in why or "certificate" in why:
                ca = self.config.ca_cert or "the system's CA roots"
                hint = (
                    f" (CA used: {ca}; docker reads it from"
                    f" $DOCKER_CONFIG/tls/{self.config.server_host}/ca.crt)"
                )
            return TrustServerUnreachable(f"trust server {server} unreachable: {why}{hint}")
        if "password invalid" in fatal or "passphrase attempts exceeded" in fatal:
            variable = passphrase or REPOSITORY_PASSPHRASE
            return TrustKeyError(
                f"{what}: {variable} does not unlock the key in"
                f" {self.config.trust_dir / 'private'} (notary: {fatal})"
            )
        if "not authorized" in fatal or _HTTP_401.search(fatal):
            return TrustKeyError(
                f"{what}: trust server {server} refused us: {fatal} (notary sends the"
                f" credentials in {NOTARY_AUTH}, base64 of user:password)"
            )
        return TrustError(f"{what} at {server} failed: {fatal}")


class DCTSigner:
    """Signs tags of a repository (a GUN such as `docker.io/linuxkit/init`) with Docker
    Content Trust, as `docker push` with DOCKER_CONTENT_TRUST=1 would."""

    def __init__(
        self,
        config: TrustConfig,
        env: Mapping[str, str] | None = None,
        *,
        notary: str = NOTARY,
        timeout: float = NOTARY_TIMEOUT,
    ) -> None:
        self.config = config
        self._env = dict(os.environ if env is None else env)
        self._executable = notary
        self._timeout = timeout
        if config.ca_cert is not None and not config.ca_cert.is_file():
            raise TrustConfigError(
                f"{config.ca_cert}: CA certificate for trust server {config.server} not found"
            )

    def __repr__(self) -> str:
        return f"DCTSigner({self.config!r})"

    # -- public --------------------------------------------------------------------------

    def sign(self, gun: str, targets: Sequence[Target]) -> None:
        """Sign every target into `gun` and publish them together in one `notary publish`.

        Initialises the repository on the trust server first if it is not there (root key
        from the trust dir or a new one; targets key local; snapshot key server-managed, as
        docker does). Into `targets/releases` (and any other direct delegation this trust dir
        holds a key for, as docker does) when the repository has that delegation, else into
        `targets`. Afterwards the trust server is asked again, and a tag it does not list with
        the signed digest and size is an error.
        """
        gun = _check_gun(gun)
        wanted = _check_targets(targets)
        if not wanted:
            return
        check_passphrases(self._env, may_need_root=False)
        with self._notary() as notary, _locked(self.config.trust_dir):
            if self._exists(notary, gun):
                roles = self._signing_roles(notary, gun, wanted)
            else:
                check_passphrases(self._env, may_need_root=True)
                self._initialise(notary, gun)
                roles = {target.tag: () for target in wanted}
            self._publish(notary, gun, wanted, roles)
            listed = self._list(notary, gun)
        for target in wanted:
            seen = listed.get(target.tag)
            if seen != target:
                shown = f"{seen.digest} ({seen.size} bytes)" if seen else "nothing"
                raise TrustError(
                    f"signed {gun}:{target.tag} at {self.config.server}, but it now lists"
                    f" {shown} for it instead of {target.digest} ({target.size} bytes)"
                )

    def list_targets(self, gun: str) -> dict[str, Target]:
        """The tags the trust server says are signed, by tag, as `docker pull` reads them:
        `targets/releases` first, then `targets`. {} for a repository it does not know."""
        gun = _check_gun(gun)
        with self._notary() as notary:
            return self._list(notary, gun)

    def repository_exists(self, gun: str) -> bool:
        """Whether the trust server has trust data for `gun` (if not, signing initialises it,
        which needs the root passphrase: see `check_passphrases`)."""
        gun = _check_gun(gun)
        with self._notary() as notary:
            return self._exists(notary, gun)

    # -- steps ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _notary(self) -> Iterator[_Notary]:
        with tempfile.TemporaryDirectory(prefix="lkpkg-notary-") as scratch:
            config_file = Path(scratch) / "config.json"
            config_file.write_text("{}\n")
            yield _Notary(
                self._executable,
                self.config,
                notary_environment(self._env, os.environ),
                secret_values(self._env),
                config_file,
                self._timeout,
            )

    def _exists(self, notary: _Notary, gun: str) -> bool:
        # `notary list` is online (offline it fails "client is offline") and also takes the
        # root on first use (TOFU), as docker does.
        result = notary.run("list", gun)
        if result.returncode == 0:
            return True
        if "does not have trust data" in result.fatal:
            return False
        raise notary.failure(f"reading trust data of {gun}", result)

    def _list(self, notary: _Notary, gun: str) -> dict[str, Target]:
        result = notary.run("list", gun, "--roles", RELEASES_ROLE, "--roles", TARGETS_ROLE)
        if result.returncode != 0:
            if "does not have trust data" in result.fatal:
                return {}
            raise notary.failure(f"reading trust data of {gun}", result)
        found: dict[str, Target] = {}
        for row in parse_target_list(result.output):
            # Walking `targets` also visits its other delegations; docker pull ignores a tag
            # found only there (`t.Role != ReleasesRole && t.Role != CanonicalTargetsRole`).
            if row.role in (RELEASES_ROLE, TARGETS_ROLE) and is_valid_tag(row.name):
                found.setdefault(row.name, Target(row.name, f"sha256:{row.sha256_hex}", row.size))
        return found

    def _initialise(self, notary: _Notary, gun: str) -> None:
        """Create `gun` on the trust server as docker's first signed push does.

        docker initialises with the snapshot key server-managed; the notary CLI cannot, so the
        local snapshot key `notary init` makes is rotated to the server at once (notary then
        deletes it). Only root and targets keys stay local, as with docker; root.json is at
        version 2 instead of 1, which clients follow like any root rotation.
        """
        private = self.config.trust_dir / "private"
        before = _key_files(private)
        what = f"initialising {gun}"
        try:
            notary.checked(what, "init", gun, passphrase=ROOT_PASSPHRASE)
            notary.checked(what, "key", "rotate", gun, "snapshot", "-r", passphrase=ROOT_PASSPHRASE)
        except LkpkgError:
            # A retry runs `init` again, which makes new keys: drop this attempt's so no
            # orphans pile up. Root keys stay: docker and notary reuse any root key they find.
            for path in _key_files(private) - before:
                header = _key_header(path)
                if header.get("gun") == gun and header.get("role") != "root":
                    path.unlink(missing_ok=True)
            raise

    def _signing_roles(
        self, notary: _Notary, gun: str, targets: Sequence[Target]
    ) -> dict[str, tuple[str, ...]]:
        """The delegation roles each tag goes into; () means the `targets` role itself.

        docker (`GetSignableRoles`) signs into `targets` when there are no delegations, else
        into every direct child of `targets` whose paths cover the tag and whose key it holds.
        docker pull reads only `targets/releases` then `targets`, so with a releases
        delegation a signature outside it would be invisible: that is an error here.
        """
        what = f"reading delegations of {gun}"
        delegations = parse_delegation_list(notary.checked(what, "delegation", "list", gun))
        releases = next((d for d in delegations if d.role == RELEASES_ROLE), None)
        if releases is None:
            return {target.tag: () for target in targets}
        local = parse_key_ids(notary.checked("listing local keys", "key", "list"))
        roles: dict[str, tuple[str, ...]] = {}
        for target in targets:
            usable = [
                d.role
                for d in delegations
                if d.is_direct_child and d.covers(target.tag) and d.key_ids & local
            ]
            if RELEASES_ROLE not in usable:
                keys = ", ".join(sorted(k[:12] for k in releases.key_ids))
                raise TrustKeyError(
                    f"cannot sign {gun}:{target.tag}: it is signed through {RELEASES_ROLE},"
                    f" and no key of that role that may sign this tag ({keys}) is in"
                    f" {self.config.trust_dir / 'private'}; a repository admin adds yours"
                    " with `docker trust signer add`"
                )
            roles[target.tag] = tuple(sorted(usable, key=lambda role: role != RELEASES_ROLE))
        return roles

    def _publish(
        self,
        notary: _Notary,
        gun: str,
        targets: Sequence[Target],
        roles: Mapping[str, tuple[str, ...]],
    ) -> None:
        what = f"signing {gun}"
        # notary stages changes in tuf/<gun>/changelist and publishes everything staged; a
        # change left there by an interrupted run (or by hand) would be signed with ours.
        notary.checked(what, "reset", gun, "--all")
        try:
            for target in targets:
                args = ["addhash", gun, target.tag, str(target.size), "--sha256", target.hex]
                for role in roles[target.tag]:
                    args += ["--roles", role]
                notary.checked(what, *args)
            result = notary.run("publish", gun)
            if result.returncode != 0:
                raise self._publish_failure(notary, what, result)
        except BaseException:
            notary.run("reset", gun, "--all")
            raise

    def _publish_failure(self, notary: _Notary, what: str, result: _Run) -> LkpkgError:
        fatal = result.fatal
        if "could not find necessary signing keys" not in fatal:
            return notary.failure(what, result, passphrase=REPOSITORY_PASSPHRASE)
        # notary says the same whether the key is absent or its passphrase wrong (a key it
        # cannot decrypt is skipped); which it is shows in the local key list.
        needed = set(_HEX64.findall(fatal))
        local = parse_key_ids(notary.run("key", "list").output)
        private = self.config.trust_dir / "private"
        held = sorted(needed & local)
        if held:
            return TrustKeyError(
                f"{what}: {REPOSITORY_PASSPHRASE} does not unlock signing key {held[0][:12]}"
                f" in {private}"
            )
        keys = ", ".join(sorted(k[:12] for k in needed)) or "?"
        return TrustKeyError(f"{what}: none of the keys that may sign it ({keys}) is in {private}")


# -- helpers --------------------------------------------------------------------------------


def _docker_config_dir(env: Mapping[str, str]) -> Path:
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"])
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".docker"


def _url_host(url: str) -> str:
    # Go's url.Host: host[:port] without any user info.
    return urlsplit(url).netloc.rpartition("@")[2]


def _check_gun(gun: str) -> str:
    """A GUN is a fully qualified repository (`docker.io/library/alpine`), which is also what
    keeps it from ever reading as a notary option."""
    ref = Reference.parse(gun)
    if ref.name != gun:
        raise ReferenceError_(
            f"invalid trust repository '{gun}': expected the fully qualified name '{ref.name}'"
        )
    return gun


def _check_targets(targets: Sequence[Target]) -> list[Target]:
    by_tag: dict[str, Target] = {}
    for target in targets:
        other = by_tag.setdefault(target.tag, target)
        if other != target:
            raise ReferenceError_(
                f"tag '{target.tag}' to be signed twice, as {other.digest} and {target.digest}"
            )
    return list(by_tag.values())


def _key_files(private: Path) -> set[Path]:
    return set(private.rglob("*.key")) if private.is_dir() else set()


def _key_header(path: Path) -> dict[str, str]:
    """The `role:`/`gun:` headers notary writes into a private key's PEM block."""
    headers: dict[str, str] = {}
    try:
        lines = path.read_text("ascii", "replace").splitlines()
    except OSError:
        return headers
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or " " in name:
            break
        headers[name.strip()] = value.strip()
    return headers


@contextlib.contextmanager
def _locked(trust_dir: Path) -> Iterator[None]:
    """Serialise lkpkg's signers on one trust dir: each resets and publishes the changelist of
    the GUN it signs, which would drop another signer's staged changes."""
    trust_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with (trust_dir / ".lkpkg.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
