"""`lkpkg doctor`'s check of registry credentials: where they come from, never what they are."""

from __future__ import annotations

from lkpkg.auth.keychain import Keychain
from lkpkg.checks import CheckResult
from lkpkg.errors import AuthConfigError, CredentialHelperError


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
