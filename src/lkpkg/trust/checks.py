"""`lkpkg doctor`'s checks of signing: the trust server (healthy with the configured CA; which
repositories it holds), the notary CLI, the DCT passphrases (set or not, never shown) and the
cosign key. Nothing is written: the trust server is asked over HTTP (`TrustServer`); only a
server that wants a login even to read (Docker Hub's) is asked through the notary CLI, as
`lkpkg push` asks it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lkpkg.checks import CheckResult
from lkpkg.errors import LkpkgError, TrustConfigError
from lkpkg.trust.config import DCTSettings, TrustConfig
from lkpkg.trust.cosign import PASSPHRASE_ENV as COSIGN_PASSWORD
from lkpkg.trust.cosign import load_private_key
from lkpkg.trust.dct import DCTSigner
from lkpkg.trust.notary import NOTARY
from lkpkg.trust.passphrases import (
    NOTRUST_HINT,
    REPOSITORY_PASSPHRASE,
    ROOT_PASSPHRASE,
    DCTPassphrases,
)
from lkpkg.trust.preflight import key_problem
from lkpkg.trust.server import TrustServer


@dataclass(frozen=True)
class TrustProbe:
    """The trust server's health, and per GUN whether it holds trust data (None: unknown)."""

    result: CheckResult
    exists: Mapping[str, bool | None]
    unknown_because: str | None = None
    config: TrustConfig | None = None


def trust_probe(
    domain: str,
    guns: Sequence[str],
    *,
    settings: DCTSettings,
    trust_ca: Path | None = None,
    timeout: float,
) -> TrustProbe:
    """Ask the trust server for `domain` its health and, for each GUN, whether it exists."""
    try:
        config = TrustConfig.for_registry(domain, settings, trust_ca)
    except TrustConfigError as error:
        return TrustProbe(CheckResult.failed("trust server", error, NOTRUST_HINT), {})
    name = f"trust server {config.server}"
    unknown = {gun: None for gun in guns}
    failed = "the trust server check failed"
    try:
        with TrustServer(config, config_dir=settings.docker_config_dir, timeout=timeout) as server:
            server.health()
            trusting = server.trusting
    except LkpkgError as error:
        detail = error.message.removeprefix(f"trust server {config.server} ")
        fix = error.hint or NOTRUST_HINT
        return TrustProbe(CheckResult.fail(name, detail, fix), unknown, failed)
    exists: dict[str, bool | None] = {}
    because: str | None = None
    signer = DCTSigner(config, settings, timeout=max(timeout * 3, 10.0), http_timeout=timeout)
    for gun in guns:
        if because is not None:
            exists[gun] = None  # one failure to ask is enough to report
            continue
        try:
            exists[gun] = signer.repository_exists(gun)
        except LkpkgError as error:
            exists[gun], because = None, error.message
    return TrustProbe(CheckResult.ok(name, f"healthy ({trusting})"), exists, because, config)


def signing_key_checks(
    config: TrustConfig, exists: Mapping[str, bool | None], passphrases: DCTPassphrases
) -> list[CheckResult]:
    """Per repository whose existence is known, whether the trust dir's keys can sign it with
    the passphrases set (the push preflight's rule, `preflight.key_problem`). Skipped for a
    passphrase that is not set: `passphrase_checks` reports that."""
    results = []
    for gun, known in exists.items():
        needed = passphrases.repository if known else passphrases.root
        if known is None or not needed:
            continue
        name = f"signing keys {gun}"
        problem = key_problem(config, gun, passphrases, exists=known)
        if problem is not None:
            results.append(CheckResult.failed(name, problem, NOTRUST_HINT))
        elif known:
            results.append(CheckResult.ok(name, "a key that may sign it unlocks"))
        else:
            results.append(
                CheckResult.ok(name, "new on the trust server; the root key can initialise it")
            )
    return results


def notary_cli_check(path: str | None) -> CheckResult:
    """Whether the notary CLI is on `path` (the PATH signing runs it with)."""
    found = shutil.which(NOTARY, path=path or os.defpath)
    if found is None:
        return CheckResult.fail(
            "notary CLI",
            "not found on PATH; signing with Docker Content Trust runs it",
            f"apt-get install notary, or {NOTRUST_HINT}",
        )
    return CheckResult.ok("notary CLI", found)


def passphrase_checks(
    passphrases: DCTPassphrases,
    exists: Mapping[str, bool | None],
    unknown_because: str | None = None,
) -> list[CheckResult]:
    """Whether the passphrases DCT signing needs are set (`check_passphrases`' rule: empty is
    unset). ROOT is needed only for a repository not yet on the trust server: `exists` says
    which are (None: could not ask). Values are never read beyond "set or not"."""
    results: list[CheckResult] = []
    repo_name = f"passphrase {REPOSITORY_PASSPHRASE}"
    if passphrases.repository:
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
    if passphrases.root:
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


def cosign_key_check(path: Path, passphrase: str | None) -> CheckResult:
    """Whether the cosign signing key loads with `passphrase` ($COSIGN_PASSWORD; None: unset)."""
    name = f"cosign key {path}"
    try:
        key = load_private_key(path, passphrase)
    except LkpkgError as error:
        if not path.is_file():
            fix = (
                "check --sign-key / LKPKG_SIGN_KEY, or make a key pair: "
                f"{COSIGN_PASSWORD}=... lkpkg keygen"
            )
        elif passphrase is None:
            fix = f"export {COSIGN_PASSWORD}=<the passphrase the key was made with>"
        else:
            fix = (
                f"set {COSIGN_PASSWORD} to the passphrase the key was made with, or make a new "
                "pair with lkpkg keygen"
            )
        return CheckResult.fail(name, error.message.removeprefix(f"{path}: "), fix)
    return CheckResult.ok(name, f"ECDSA {key.curve.name} private key loads")
