"""An in-memory registry behind `httpx.MockTransport`, for unit tests of protocol logic.

It implements the part of distribution-spec v1.1 lkpkg speaks, strictly enough that a client
that skips a step fails here as it would against Distribution:

    GET  /v2/                                   ping (200, or 401 with the auth challenge)
    HEAD/GET /v2/<name>/blobs/<digest>          only blobs linked into <name>
    POST /v2/<name>/blobs/uploads/              session (202 + Location), or with
         ?mount=<digest>&from=<repo>            cross-repo mount (201), or 202 when it cannot
         ?digest=<digest> (with a body)         monolithic upload in one POST (201)
    PATCH <location>                            chunked upload (202 + Range)
    PUT  <location>?digest=<digest>             completes a session, checks the digest
    DELETE <location>                           cancels a session
    GET/HEAD/PUT /v2/<name>/manifests/<ref>     by tag or digest; PUT refuses a manifest whose
                                                blobs or child manifests are not in <name>
    GET  /v2/<name>/tags/list[?n=&last=]        sorted, paged with `Link: <...>; rel="next"`
    GET  /token                                 a token service for `auth="bearer"`

Auth: `auth=None` lets everyone in; `"basic"` wants `user`/`password` on every request;
`"bearer"` answers 401 with a Bearer challenge whose realm is `token_realm` and accepts only
tokens it issued for the scopes the request needs. Faults are injected with `fail()`.
Every request is logged in `requests` as (method, path, status).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

import httpx

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Fault:
    """Answer the next `times` requests matching `method` and `path_contains` with `status`
    (or let `respond` build the answer)."""

    method: str
    path_contains: str
    status: int = 503
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    respond: Callable[[httpx.Request], httpx.Response] | None = None


@dataclass
class _Upload:
    repo: str
    data: bytearray = field(default_factory=bytearray)


class FakeRegistry:
    """The registry's state and its request handler. Thread-safe (one lock)."""

    def __init__(
        self,
        host: str = "registry.test",
        *,
        auth: str | None = None,
        user: str = "wombat",
        password: str = "s3cret",
        token_realm: str | None = None,
        page_size: int | None = None,
    ) -> None:
        self.host = host
        self.auth = auth
        self.user = user
        self.password = password
        self.token_realm = token_realm or f"https://{host}/token"
        # Default page size of tags/list when the client does not ask (None: one page).
        self.page_size = page_size
        self.blobs: dict[str, bytes] = {}
        self.links: dict[str, set[str]] = {}  # repo -> digests of blobs linked into it
        self.manifests: dict[str, dict[str, tuple[bytes, str]]] = {}  # repo -> digest -> body
        self.tags: dict[str, dict[str, str]] = {}  # repo -> tag -> digest
        self.uploads: dict[str, _Upload] = {}
        self.tokens: dict[str, set[str]] = {}  # token -> "repository:NAME:ACTION" granted
        self.token_requests: list[httpx.Request] = []
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, int]] = []
        # The digest the registry reports for a stored manifest (None: the true one); a test
        # sets it to play a registry that lies.
        self.reported_digest: str | None = None
        # Answers requests to other hosts (a blob store a redirect points at), if set.
        self.elsewhere: Callable[[httpx.Request], httpx.Response] | None = None
        self._lock = threading.Lock()

    # -- test helpers -------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def fail(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def put_blob(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        with self._lock:
            self.blobs[digest] = data
            self.links.setdefault(repo, set()).add(digest)
        return digest

    def count(self, method: str, contains: str = "", *, exact: str | None = None) -> int:
        """Requests so far of `method` whose path contains `contains` (or is `exact`)."""
        with self._lock:
            return sum(
                1
                for m, p, _ in self.requests
                if m == method and contains in p and (exact is None or p == exact)
            )

    def serve(self, request: httpx.Request) -> httpx.Response:
        """The registry's own answer to `request` (for a fault that wraps it)."""
        return self._route(request, request.url.path)

    # -- the handler --------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        response = self._take_fault(request)
        if response is None and request.url.host != self.host and self.elsewhere is not None:
            response = self.elsewhere(request)
        if response is None:
            response = self._route(request, path)
        with self._lock:
            self.requests.append((request.method, path, response.status_code))
        if isinstance(response.stream, httpx.ByteStream):
            # A body as a socket delivers it: not yet read, so the client streams it.
            response = httpx.Response(
                response.status_code, headers=response.headers, stream=_Body(response.content)
            )
        return response

    def _take_fault(self, request: httpx.Request) -> httpx.Response | None:
        with self._lock:
            for fault in self.faults:
                if (
                    fault.times > 0
                    and fault.method == request.method
                    and fault.path_contains in str(request.url)
                ):
                    fault.times -= 1
                    break
            else:
                return None
        request.read()
        if fault.respond is not None:
            return fault.respond(request)
        return httpx.Response(fault.status, headers=fault.headers, content=fault.body)

    def _route(self, request: httpx.Request, path: str) -> httpx.Response:
        if path == "/token":
            return self._token(request)
        if not path.startswith("/v2/"):
            return _error(404, "NOT_FOUND", "no such endpoint")
        rest = path[len("/v2/") :]
        if rest == "":
            denied = self._authorize(request, ())
            return denied or httpx.Response(200, json={})
        for marker, handler in (
            ("/blobs/uploads/", self._uploads),
            ("/blobs/", self._blob),
            ("/manifests/", self._manifest),
            ("/tags/list", self._tag_list),
        ):
            name, found, arg = rest.partition(marker)
            if found and name:
                return handler(request, name, arg)
        return _error(404, "NAME_UNKNOWN", "no such endpoint")

    # -- auth ---------------------------------------------------------------------------------

    def _authorize(self, request: httpx.Request, scopes: tuple[str, ...]) -> httpx.Response | None:
        header = request.headers.get("Authorization", "")
        if self.auth is None:
            return None
        if self.auth == "basic":
            expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            if header == f"Basic {expected}":
                return None
            return _error(
                401,
                "UNAUTHORIZED",
                "authentication required",
                {"WWW-Authenticate": f'Basic realm="{self.host}"'},
            )
        token = header.removeprefix("Bearer ")
        granted = self.tokens.get(token) if header.startswith("Bearer ") else None
        if granted is not None and all(s in granted for s in scopes):
            return None
        challenge = f'Bearer realm="{self.token_realm}",service="{self.host}"'
        if scopes:
            names = sorted({s.rsplit(":", 1)[0] for s in scopes})
            wanted = []
            for name in names:
                actions = sorted(s.rsplit(":", 1)[1] for s in scopes if s.startswith(name + ":"))
                wanted.append(f"{name}:{','.join(actions)}")
            challenge += f',scope="{" ".join(wanted)}"'
        return _error(
            401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge}
        )

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests.append(request)
        header = request.headers.get("Authorization", "")
        expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if header != f"Basic {expected}":
            return _error(401, "UNAUTHORIZED", "bad credentials")
        granted: set[str] = set()
        for scope in request.url.params.get_list("scope"):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted.update(f"{kind}:{name}:{a}" for a in actions.split(","))
        token = secrets.token_hex(8)
        with self._lock:
            self.tokens[token] = granted
        return httpx.Response(200, json={"token": token, "expires_in": 300})

    # -- blobs --------------------------------------------------------------------------------

    def _blob(self, request: httpx.Request, name: str, digest: str) -> httpx.Response:
        if request.method not in ("GET", "HEAD"):
            return _error(405, "UNSUPPORTED", "method not allowed")
        denied = self._authorize(request, (f"repository:{name}:pull",))
        if denied:
            return denied
        with self._lock:
            data = self.blobs.get(digest) if digest in self.links.get(name, ()) else None
        if data is None:
            return _error(404, "BLOB_UNKNOWN", "blob unknown to registry")
        headers = {
            "Content-Length": str(len(data)),
            "Docker-Content-Digest": digest,
            "Content-Type": "application/octet-stream",
        }
        if request.method == "HEAD":
            return httpx.Response(200, headers=headers)
        return httpx.Response(200, headers=headers, content=data)

    def _uploads(self, request: httpx.Request, name: str, session: str) -> httpx.Response:
        scopes = [f"repository:{name}:pull", f"repository:{name}:push"]
        params = request.url.params
        source = params.get("from")
        if request.method == "POST" and params.get("mount") and source:
            scopes.append(f"repository:{source}:pull")
        denied = self._authorize(request, tuple(scopes))
        if denied:
            return denied
        body = request.read()
        if request.method == "POST":
            return self._start(name, params, body)
        with self._lock:
            upload = self.uploads.get(session)
        if upload is None or upload.repo != name:
            return _error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
        if request.method == "DELETE":
            with self._lock:
                self.uploads.pop(session, None)
            return httpx.Response(204)
        if request.method == "PATCH":
            content_range = request.headers.get("Content-Range")
            if content_range is not None:
                start = int(content_range.split("-")[0])
                if start != len(upload.data):
                    return _error(416, "BLOB_UPLOAD_INVALID", "range does not follow")
            upload.data += body
            return httpx.Response(202, headers=self._session_headers(name, session, upload))
        if request.method == "PUT":
            upload.data += body
            digest = params.get("digest")
            if not digest:
                return _error(400, "DIGEST_INVALID", "no digest")
            return self._complete(name, session, bytes(upload.data), digest)
        return _error(405, "UNSUPPORTED", "method not allowed")

    def _start(self, name: str, params: httpx.QueryParams, body: bytes) -> httpx.Response:
        mount, source = params.get("mount"), params.get("from")
        if mount and source:
            with self._lock:
                if mount in self.links.get(source, ()):
                    self.links.setdefault(name, set()).add(mount)
                    return httpx.Response(
                        201,
                        headers={
                            "Location": f"/v2/{name}/blobs/{mount}",
                            "Docker-Content-Digest": mount,
                        },
                    )
        digest = params.get("digest")
        if digest:
            return self._complete(name, None, body, digest)
        session = secrets.token_hex(8)
        upload = _Upload(name)
        with self._lock:
            self.uploads[session] = upload
        return httpx.Response(202, headers=self._session_headers(name, session, upload))

    @staticmethod
    def _session_headers(name: str, session: str, upload: _Upload) -> dict[str, str]:
        headers = {
            "Location": f"/v2/{name}/blobs/uploads/{session}?{urlencode({'_state': session})}",
            "Docker-Upload-UUID": session,
        }
        if upload.data:
            headers["Range"] = f"0-{len(upload.data) - 1}"
        return headers

    def _complete(self, name: str, session: str | None, data: bytes, digest: str) -> httpx.Response:
        if sha256(data) != digest:
            return _error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        with self._lock:
            if session is not None:
                self.uploads.pop(session, None)
            self.blobs[digest] = data
            self.links.setdefault(name, set()).add(digest)
        return httpx.Response(
            201, headers={"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest}
        )

    # -- manifests ----------------------------------------------------------------------------

    def _manifest(self, request: httpx.Request, name: str, ref: str) -> httpx.Response:
        if request.method in ("GET", "HEAD"):
            denied = self._authorize(request, (f"repository:{name}:pull",))
            if denied:
                return denied
            with self._lock:
                digest = self.tags.get(name, {}).get(ref, ref)
                found = self.manifests.get(name, {}).get(digest)
            if found is None:
                return _error(404, "MANIFEST_UNKNOWN", "manifest unknown")
            data, media_type = found
            headers = {
                "Content-Type": media_type,
                "Content-Length": str(len(data)),
                "Docker-Content-Digest": self.reported_digest or digest,
            }
            if request.method == "HEAD":
                return httpx.Response(200, headers=headers)
            return httpx.Response(200, headers=headers, content=data)
        if request.method != "PUT":
            return _error(405, "UNSUPPORTED", "method not allowed")
        denied = self._authorize(request, (f"repository:{name}:pull", f"repository:{name}:push"))
        if denied:
            return denied
        data = request.read()
        media_type = request.headers.get("Content-Type", "")
        digest = sha256(data)
        if ref.startswith("sha256:") and ref != digest:
            return _error(400, "DIGEST_INVALID", "manifest digest did not match")
        try:
            body = json.loads(data)
        except ValueError:
            return _error(400, "MANIFEST_INVALID", "manifest invalid")
        missing = self._missing_references(name, media_type, body)
        if missing:
            code = "MANIFEST_UNKNOWN" if media_type in INDEX_TYPES else "BLOB_UNKNOWN"
            return _error(400, "MANIFEST_BLOB_UNKNOWN", f"{code}: {missing}")
        with self._lock:
            self.manifests.setdefault(name, {})[digest] = (data, media_type)
            if not ref.startswith("sha256:"):
                self.tags.setdefault(name, {})[ref] = digest
        return httpx.Response(
            201,
            headers={
                "Location": f"/v2/{name}/manifests/{digest}",
                "Docker-Content-Digest": self.reported_digest or digest,
            },
        )

    def _missing_references(self, name: str, media_type: str, body: object) -> str | None:
        if not isinstance(body, dict):
            return "not an object"
        with self._lock:
            if media_type in INDEX_TYPES:
                have = set(self.manifests.get(name, {}))
                wanted = [m.get("digest") for m in body.get("manifests", [])]
            else:
                have = self.links.get(name, set())
                wanted = [body.get("config", {}).get("digest")]
                wanted += [layer.get("digest") for layer in body.get("layers", [])]
        for digest in wanted:
            if digest not in have:
                return str(digest)
        return None

    # -- tags ---------------------------------------------------------------------------------

    def _tag_list(self, request: httpx.Request, name: str, _: str) -> httpx.Response:
        denied = self._authorize(request, (f"repository:{name}:pull",))
        if denied:
            return denied
        with self._lock:
            if name not in self.tags and name not in self.links:
                return _error(404, "NAME_UNKNOWN", "repository name not known to registry")
            every = sorted(self.tags.get(name, {}))
        params = dict(parse_qsl(request.url.query.decode()))
        size = int(params["n"]) if "n" in params else self.page_size
        after = [t for t in every if t > params.get("last", "")]
        headers: dict[str, str] = {}
        if size is not None and len(after) > size:
            after = after[:size]
            query = urlencode({"n": size, "last": after[-1]})
            headers["Link"] = f'</v2/{name}/tags/list?{query}>; rel="next"'
        return httpx.Response(200, headers=headers, json={"name": name, "tags": after})


class _Body(httpx.SyncByteStream):
    def __init__(self, data: bytes) -> None:
        self._data = data

    def __iter__(self) -> Iterator[bytes]:
        if self._data:
            yield self._data


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"errors": [{"code": code, "message": message, "detail": None}]}
    return httpx.Response(status, headers=headers or {}, json=body)
