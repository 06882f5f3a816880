"""Before the first blob of a push: does the registry accept our credentials for push?

`check_push_access(session, repo)` costs the (shared, cached) ping and at most two requests:

- no challenge (an open registry): nothing to check, no request;
- Bearer: the token for `repository:NAME:pull,push` the push fetches anyway (cached, so the
  push reuses it); a refused token request is an `AuthError` already. When the token is a JWT
  whose `access` claim lists what it grants, push must be among it;
- Basic: `POST /v2/NAME/blobs/uploads/` (needs push rights), then `DELETE` of the session it
  opened, so nothing is left behind.

A refusal is an `AuthError` (exit 4) with a hint; secrets never appear in it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json

from lkpkg.errors import AuthError, LkpkgError
from lkpkg.registry.challenge import BASIC, BEARER
from lkpkg.registry.session import Session


def check_push_access(session: Session, repo: str) -> None:
    """Raise `AuthError` unless the registry lets our credentials push to `repo`."""
    session.ping()
    challenge = session.auth.challenge
    if challenge is None:
        return
    path = session.path(repo)
    scopes = (session.push_scope(path),)
    action = session.pushing(path)
    hint = _hint(session)
    if challenge.scheme == BEARER:
        try:
            used = session.auth.authorization(scopes, action)
        except AuthError as error:
            raise AuthError(error.message, hint=hint) from None
        granted = _granted_actions(used.header if used is not None else "", path)
        if granted is not None and "push" not in granted and "*" not in granted:
            raise AuthError(
                f"{action} refused: the token service granted"
                f" {','.join(sorted(granted)) or 'no access'} on {path}, not push;"
                f" credentials tried: {session.auth.sources_tried()}",
                hint=hint,
            )
        return
    if challenge.scheme != BASIC:
        return
    response = session.request(
        "POST",
        f"/v2/{path}/blobs/uploads/",
        headers={"Content-Length": "0"},
        scopes=scopes,
        action=action,
    )
    try:
        status = response.status_code
        if status in (401, 403):
            message = session.error_for(response, action, session.name(path)).message
            if status == 403:
                message = f"{action} refused: the registry denied push (403); credentials"
                message += f" tried: {session.auth.sources_tried()}"
            raise AuthError(message, hint=hint)
        if status != 202:
            raise session.error_for(response, action, session.name(path))
        location = session.location(response)
    finally:
        response.close()
    with contextlib.suppress(LkpkgError):
        session.request(
            "DELETE", location, scopes=scopes, action="cancel upload", idempotent=False
        ).close()


def _hint(session: Session) -> str:
    return (
        f"log in with push rights for {session.domain} (`docker login {session.domain}`,"
        " or the config in DOCKER_CONFIG), or push to an org you may write to"
    )


def _granted_actions(header: str, path: str) -> set[str] | None:
    """The actions a JWT bearer token grants on repository `path`, or None if it does not
    say (an opaque token)."""
    token = header.removeprefix("Bearer ")
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return None
    access = claims.get("access") if isinstance(claims, dict) else None
    if not isinstance(access, list):
        return None
    granted: set[str] = set()
    for entry in access:
        if not isinstance(entry, dict):
            continue
        if entry.get("type") == "repository" and entry.get("name") == path:
            actions = entry.get("actions")
            if isinstance(actions, list):
                granted.update(a for a in actions if isinstance(a, str))
    return granted
