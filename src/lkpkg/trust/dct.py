"""Docker Content Trust signing through Debian's `notary` CLI, without a TTY.

The trust data is kept where docker keeps it (`$DOCKER_CONFIG/trust`: keys in `private/`,
trusted metadata in `tuf/<gun>/metadata/`), and repositories are laid out as `docker push` with
DOCKER_CONTENT_TRUST=1 lays them out, so docker and lkpkg can take turns signing one repository
and `docker pull` / `docker trust inspect` see what lkpkg signed. See README.md for the
invariants; docker's behaviour quoted below is docker/cli's `cli/trust` and
`cli/command/image/trust.go` (20.10). Running notary is `notary.py`'s, reading its output
`notary_output.py`'s, asking the server over HTTP `server.py`'s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lkpkg.errors import LkpkgError, ReferenceError_, TrustError, TrustKeyError
from lkpkg.fsutil import locked
from lkpkg.oci.digest import SHA256, invalid_digest_reason
from lkpkg.oci.tagged import Tagged
from lkpkg.reference import Reference, is_valid_tag
from lkpkg.trust.config import DCTSettings, TrustConfig
from lkpkg.trust.keys import key_files, key_header
from lkpkg.trust.notary import NOTARY, NOTARY_TIMEOUT, NotaryCLI, NotaryRun, notary_cli
from lkpkg.trust.notary_output import (
    HEX64,
    RELEASES_ROLE,
    TARGETS_ROLE,
    parse_delegation_list,
    parse_key_ids,
    parse_target_list,
)
from lkpkg.trust.passphrases import REPOSITORY_PASSPHRASE, ROOT_PASSPHRASE, check_passphrases
from lkpkg.trust.server import TrustServer


@dataclass(frozen=True)
class Target(Tagged):
    """One signed tag: the manifest (or index) digest and byte size `docker pull` checks."""

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


class DCTSigner:
    """Signs tags of a repository (a GUN such as `docker.io/linuxkit/init`) with Docker
    Content Trust, as `docker push` with DOCKER_CONTENT_TRUST=1 would."""

    def __init__(
        self,
        config: TrustConfig,
        settings: DCTSettings,
        *,
        notary: str = NOTARY,
        timeout: float = NOTARY_TIMEOUT,
        http_timeout: float | None = None,
    ) -> None:
        config.check_ca()
        self.config = config
        self.settings = settings
        self._executable = notary
        self._timeout = timeout
        self._http_timeout = http_timeout

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
        check_passphrases(self.settings.passphrases, may_need_root=False)
        with self._notary() as notary, _locked(self.config.trust_dir):
            if self._exists(gun, notary):
                roles = self._signing_roles(notary, gun, wanted)
            else:
                check_passphrases(self.settings.passphrases, may_need_root=True)
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
        which needs the root passphrase: see `check_passphrases`).

        Asked over HTTP, read-only (`TrustServer.has_repository`); only a server that wants a
        login to answer (Docker Hub's) is asked through the notary CLI, which can log in.
        """
        return self._exists(_check_gun(gun), None)

    # -- steps ---------------------------------------------------------------------------

    def _notary(self) -> contextlib.AbstractContextManager[NotaryCLI]:
        return notary_cli(
            self.config, self.settings, executable=self._executable, timeout=self._timeout
        )

    def _exists(self, gun: str, notary: NotaryCLI | None) -> bool:
        timeout = {} if self._http_timeout is None else {"timeout": self._http_timeout}
        with TrustServer(
            self.config, config_dir=self.settings.docker_config_dir, **timeout
        ) as server:
            known = server.has_repository(gun)
        if known is not None:
            return known
        if notary is None:
            with self._notary() as cli:
                return self._exists_by_cli(cli, gun)
        return self._exists_by_cli(notary, gun)

    @staticmethod
    def _exists_by_cli(notary: NotaryCLI, gun: str) -> bool:
        # `notary list` is online and can answer the server's login challenge (NOTARY_AUTH).
        result = notary.run("list", gun)
        if result.returncode == 0:
            return True
        if "does not have trust data" in result.fatal:
            return False
        raise notary.failure(f"reading trust data of {gun}", result)

    def _list(self, notary: NotaryCLI, gun: str) -> dict[str, Target]:
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

    def _initialise(self, notary: NotaryCLI, gun: str) -> None:
        """Create `gun` on the trust server as docker's first signed push does.

        docker initialises with the snapshot key server-managed; the notary CLI cannot, so the
        local snapshot key `notary init` makes is rotated to the server at once (notary then
        deletes it). Only root and targets keys stay local, as with docker; root.json is at
        version 2 instead of 1, which clients follow like any root rotation.
        """
        private = self.config.trust_dir / "private"
        before = key_files(private)
        what = f"initialising {gun}"
        try:
            notary.checked(what, "init", gun, passphrase=ROOT_PASSPHRASE)
            notary.checked(what, "key", "rotate", gun, "snapshot", "-r", passphrase=ROOT_PASSPHRASE)
        except LkpkgError:
            # A retry runs `init` again, which makes new keys: drop this attempt's so no
            # orphans pile up. Root keys stay: docker and notary reuse any root key they find.
            for path in key_files(private) - before:
                header = key_header(path)
                if header.get("gun") == gun and header.get("role") != "root":
                    path.unlink(missing_ok=True)
            raise

    def _signing_roles(
        self, notary: NotaryCLI, gun: str, targets: Sequence[Target]
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
        notary: NotaryCLI,
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

    def _publish_failure(self, notary: NotaryCLI, what: str, result: NotaryRun) -> LkpkgError:
        fatal = result.fatal
        if "could not find necessary signing keys" not in fatal:
            return notary.failure(what, result, passphrase=REPOSITORY_PASSPHRASE)
        # notary says the same whether the key is absent or its passphrase wrong (a key it
        # cannot decrypt is skipped); which it is shows in the local key list.
        needed = set(HEX64.findall(fatal))
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


@contextlib.contextmanager
def _locked(trust_dir: Path) -> Iterator[None]:
    """Serialise lkpkg's signers on one trust dir: each resets and publishes the changelist of
    the GUN it signs, which would drop another signer's staged changes."""
    trust_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with locked(trust_dir / ".lkpkg.lock"):
        yield
