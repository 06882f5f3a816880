"""Tags: `GET /v2/<name>/tags/list`, following `Link: <...>; rel="next"` pages."""

from __future__ import annotations

import json

from lkpkg.errors import RegistryError
from lkpkg.registry.session import Session


def list_tags(session: Session, repo: str, *, page_size: int | None = None) -> list[str]:
    """Every tag of `repo`, following `Link: <...>; rel="next"` pages (RFC 8288)."""
    path = session.path(repo)
    size = page_size if page_size is not None else session.config.tag_page_size
    action = f"list tags of {session.name(path)}"
    url: str | None = f"/v2/{path}/tags/list" + (f"?n={size}" if size else "")
    seen: set[str] = set()
    tags: list[str] = []
    while url is not None and url not in seen:
        seen.add(url)
        response = session.request("GET", url, scopes=(session.pull_scope(path),), action=action)
        if response.status_code != 200:
            raise session.error_for(response, action, session.name(path))
        try:
            body = json.loads(response.content)
            page = body.get("tags") or []
        except (ValueError, AttributeError):
            raise RegistryError(f"{action}: the registry did not answer a tag list") from None
        if not isinstance(page, list) or not all(isinstance(t, str) for t in page):
            raise RegistryError(f"{action}: the registry's tag list is not a list of names")
        tags.extend(page)
        link = next_link(response.headers.get_list("Link"))
        url = str(response.url.join(link)) if link is not None else None
    return tags


def next_link(values: list[str]) -> str | None:
    """The target of the `rel="next"` link in `Link` header values (RFC 8288 section 3)."""
    for value in values:
        pos = 0
        while True:
            start = value.find("<", pos)
            if start < 0:
                break
            end = value.find(">", start)
            if end < 0:
                break
            target = value[start + 1 : end]
            following = value.find("<", end)
            params = value[end + 1 : following if following >= 0 else len(value)]
            for param in params.split(";"):
                name, _, raw = param.partition("=")
                if name.strip().lower() == "rel":
                    rels = raw.strip().strip(",").strip().strip('"').lower().split()
                    if "next" in rels:
                        return target
            pos = end + 1
    return None
