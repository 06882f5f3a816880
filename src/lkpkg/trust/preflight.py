"""Before the first blob of a signed push: can Docker Content Trust sign this repository?

`check_ready(signer, gun)` answers without writing anything and without running notary
where HTTP and the key files suffice, and raises the error the signing would raise later,
with a hint:

1. the repository passphrase is set (`TrustPassphraseMissing`, exit 2);
2. the trust server answers over TLS with the configured CA (`TrustServerUnreachable`,
   exit 3; a 5xx from its health check is a `TrustError`);
3. for a repository the server holds: a key that may sign it (its targets key, or a
   delegation key) is in the trust dir and the repository passphrase unlocks one
   (`TrustKeyError`, exit 4);
4. for a new repository: the root passphrase is set and unlocks the root key the trust dir
   holds, if any (`notary init` reuses it; with none, a new one is made).

Which delegation must sign is decided by the server's metadata at signing time; a key that
unlocks but belongs to a role that may not sign this tag is still reported then.
"""

from __future__ import annotations

from lkpkg.errors import TrustKeyError
from lkpkg.trust.config import TrustConfig
from lkpkg.trust.dct import DCTSigner
from lkpkg.trust.keys import LocalKey, local_keys, unlocks
from lkpkg.trust.passphrases import (
    NOTRUST_HINT,
    REPOSITORY_PASSPHRASE,
    ROOT_PASSPHRASE,
    DCTPassphrases,
    check_passphrases,
)
from lkpkg.trust.server import TrustServer

# Roles notary names in key headers that are not delegations.
_CANONICAL = frozenset({"root", "targets", "snapshot", "timestamp"})


def check_ready(signer: DCTSigner, gun: str, *, timeout: float | None = None) -> bool:
    """Raise what signing `gun` would fail with; True if the repository exists already."""
    passphrases = signer.settings.passphrases
    check_passphrases(passphrases, may_need_root=False)
    extra = {} if timeout is None else {"timeout": timeout}
    with TrustServer(
        signer.config, config_dir=signer.settings.docker_config_dir, **extra
    ) as server:
        server.health(strict=False)
    exists = signer.repository_exists(gun)
    if not exists:
        check_passphrases(passphrases, may_need_root=True)
    problem = key_problem(signer.config, gun, passphrases, exists=exists)
    if problem is not None:
        raise problem
    return exists


def key_problem(
    config: TrustConfig, gun: str, passphrases: DCTPassphrases, *, exists: bool
) -> TrustKeyError | None:
    """Why the trust dir's keys cannot sign `gun` with these passphrases, or None.

    `exists`: the trust server holds `gun`, so a key that may sign it (its targets key or a
    delegation key) must be here and unlock with the repository passphrase; else the root
    passphrase must unlock the root key the trust dir holds, if any (`notary init` reuses it;
    with none, a new one is made).
    """
    keys = local_keys(config.trust_dir)
    private = config.trust_dir / "private"
    if not exists:
        roots = [k for k in keys if k.role == "root"]
        if roots and not _any_unlocks(roots, passphrases.root):
            return TrustKeyError(
                f"{gun} is new on {config.server} and is initialised with the root key, but"
                f" {ROOT_PASSPHRASE} unlocks no root key in {private}",
                hint=f"set {ROOT_PASSPHRASE} to the root key's passphrase, or {NOTRUST_HINT}",
            )
        return None
    signing = signing_keys(keys, gun)
    if not signing:
        return TrustKeyError(
            f"{gun} is on {config.server}, but no key that may sign it (its targets key or a"
            f" delegation key) is in {private}",
            hint="sign where the repository's keys are, or have an admin add yours with"
            f" `docker trust signer add`; or {NOTRUST_HINT}",
        )
    if not _any_unlocks(signing, passphrases.repository):
        names = ", ".join(sorted(f"{k.key_id[:12]} ({k.role})" for k in signing))
        return TrustKeyError(
            f"{REPOSITORY_PASSPHRASE} unlocks none of the keys that may sign {gun} in"
            f" {private}: {names}",
            hint=f"set {REPOSITORY_PASSPHRASE} to the passphrase of the repository's key",
        )
    return None


def signing_keys(keys: list[LocalKey], gun: str) -> list[LocalKey]:
    """The keys that may sign `gun`: its targets key, and delegation keys (docker files
    those under the signer's name, with no GUN)."""
    return [k for k in keys if (k.role == "targets" and k.gun == gun) or k.role not in _CANONICAL]


def _any_unlocks(keys: list[LocalKey], passphrase: str) -> bool:
    """True if some key unlocks with `passphrase`, or some key's format cannot be judged here
    (notary then judges at signing time)."""
    return any(unlocks(key.path, passphrase) is not False for key in keys)
