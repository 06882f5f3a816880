"""The docker-credential-helpers protocol, client side, `get` action only.

docker runs `docker-credential-<name> get`, writes the server URL (no newline) to its stdin,
and reads `{"ServerURL": ..., "Username": ..., "Secret": ...}` from its stdout. A helper that
has nothing for the URL exits non-zero and prints exactly
`credentials not found in native keychain` on stdout; any other non-zero exit is a failure,
whose message the helper also prints on stdout. A `Username` of `<token>` means `Secret` is an
identity token (an OAuth2 refresh token), not a password.

The secret only ever travels helper stdout -> this process: argv is `[helper, "get"]`, stdin is
the server URL, and no output a helper prints is ever repeated in an error if it could be a
credential.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

from lkpkg.auth.dockerconfig import json_field
from lkpkg.errors import CredentialHelperError

HELPER_PREFIX = "docker-credential-"
NOT_FOUND_MESSAGE = "credentials not found in native keychain"
TOKEN_USERNAME = "<token>"  # noqa: S105 - the protocol's marker, not a password
DEFAULT_TIMEOUT = 30.0
# Enough of a helper's complaint to diagnose it; helpers print one line.
_MAX_DIAGNOSTIC = 200


@dataclass(frozen=True)
class HelperReply:
    """What a helper returned; `secret` is left out of `repr`."""

    username: str
    secret: str = field(repr=False)

    @property
    def is_identity_token(self) -> bool:
        return self.username == TOKEN_USERNAME


def helper_executable(name: str) -> str:
    """The executable docker runs for helper `name`."""
    return HELPER_PREFIX + name


def helper_get(
    name: str,
    server_url: str,
    *,
    env: Mapping[str, str],
    timeout: float = DEFAULT_TIMEOUT,
    context: str = "",
) -> HelperReply | None:
    """Ask helper `name` for `server_url`'s credential; None when it has none.

    `env` is the environment the helper is found with (its PATH) and runs in; helpers such as
    `pass` and `secretservice` need the user's full environment (HOME, GNUPGHOME, DBus).
    `context` says where the helper was configured, for error messages. Raises
    `CredentialHelperError` when the helper is missing, cannot run, fails, times out or
    answers something that is not the protocol.
    """
    program = helper_executable(name)
    where = f" ({context})" if context else ""
    executable = shutil.which(program, path=env.get("PATH", os.defpath))
    if executable is None:
        raise CredentialHelperError(
            f"{program}: not found on PATH; it is configured{where} to hold the credentials"
            f" for {server_url}"
        )
    try:
        done = subprocess.run(
            [executable, "get"],
            input=server_url.encode(),
            capture_output=True,
            env=dict(env),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CredentialHelperError(
            f"{program} get for {server_url}{where} did not answer within {timeout:g} s"
        ) from None
    except OSError as e:
        raise CredentialHelperError(
            f"{program}: cannot run {executable}{where}: {e.strerror or e}"
        ) from None
    stdout = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0:
        if _says_not_found(stdout) or _says_not_found(done.stderr.decode("utf-8", "replace")):
            return None
        diagnostic = _diagnostic(stdout) or _diagnostic(done.stderr.decode("utf-8", "replace"))
        raise CredentialHelperError(
            f"{program} get for {server_url}{where} failed (exit {done.returncode})"
            + (f": {diagnostic}" if diagnostic else "")
        )
    return _parse_reply(program, server_url, where, stdout)


def _says_not_found(output: str) -> bool:
    # docker compares the trimmed stdout for equality; a line match also accepts helpers that
    # add a log line before it.
    return any(line.strip() == NOT_FOUND_MESSAGE for line in output.splitlines())


def _diagnostic(output: str) -> str:
    """The last line of a failing helper's output, unless it might carry a credential."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1]
    # A helper that printed its JSON answer and then failed would otherwise leak the secret.
    if "{" in line:
        return ""
    return line if len(line) <= _MAX_DIAGNOSTIC else line[:_MAX_DIAGNOSTIC] + "..."


def _parse_reply(program: str, server_url: str, where: str, stdout: str) -> HelperReply | None:
    bad = f"{program} get for {server_url}{where} answered something that is not"
    try:
        # Like Go's json.Decoder, read the first value and ignore whatever follows it.
        document, _ = json.JSONDecoder().raw_decode(stdout.lstrip())
    except json.JSONDecodeError:
        # Not even a line of it in the message: it may hold the secret.
        raise CredentialHelperError(f"{bad} JSON") from None
    if not isinstance(document, dict):
        raise CredentialHelperError(f"{bad} a JSON object")
    username = json_field(document, "Username")
    secret = json_field(document, "Secret")
    if not isinstance(username, str | None) or not isinstance(secret, str | None):
        raise CredentialHelperError(f"{bad} string Username and Secret")
    # An empty secret is what some stores return for a placeholder: docker then goes anonymous.
    if not secret:
        return None
    return HelperReply(username or "", secret)
