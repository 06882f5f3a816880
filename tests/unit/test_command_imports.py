"""What the everyday commands import, run as users run them (issue 12: start-up is most of a
no-op build, a re-push and a show-tag): each command, in a fresh interpreter, must not have
loaded the modules listed for it, which serve work it does not do. Deterministic: it checks
`sys.modules` after the command, never a time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from lkpkg.cache.layout import Cache
from lkpkg.errors import EXIT_ENVIRONMENT
from lkpkg.oci import mediatypes
from lkpkg.oci.model import ImageManifest, canonical_bytes
from lkpkg.package.model import load_packages
from tests.conftest import git

# No everyday command needs these before it builds or signs (each was on a path before).
NOT_NEEDED = (
    "rich",
    "cryptography",
    "lkpkg.trust",
    "lkpkg.pipeline.sign",
    "lkpkg.pipeline.reuse",
    "lkpkg.builders.select",
    "lkpkg.builders.buildah",
    "lkpkg.builders.docker",
    "tarfile",
    "ctypes",
)
# What only building an image needs: a run that finds every image in the cache loads none.
BUILD_ONLY = (
    "lkpkg.attest.provenance",
    "lkpkg.attest.attach",
    "lkpkg.builders.bases",
    "lkpkg.builders.dockerfile",
    "lkpkg.cache.layout_import",
    "lkpkg.cache.pull",
    "lkpkg.proc",  # the supervisor of the builders' (and trust tools') processes
    "lkpkg.builders.base",  # the builder interface (its settings are builders/engines.py)
)
# What only a push needs.
PUSH_ONLY = ("lkpkg.pipeline.push", "lkpkg.pipeline.publish")
# What only talking to a registry needs.
REGISTRY_ONLY = ("httpx", "ssl", "lkpkg.registry", "lkpkg.auth")

PROBE = """
import json, sys
from lkpkg.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
else:
    code = 0
# A None entry is a module blocked from loading (lkpkg blocks httpx._main), not loaded.
modules = [m for m, module in sys.modules.items() if module is not None]
loaded = sorted({m for m in modules for n in NAMES if m == n or m.startswith(n + ".")})
print(json.dumps({"code": code, "loaded": loaded}), file=sys.__stdout__)
"""


def built_package(tmp_path: Path, org: str) -> tuple[Path, Path]:
    """A committed package and a cache holding its amd64 image, as a build leaves them."""
    repo = tmp_path / "repo"
    package = repo / "hello"
    package.mkdir(parents=True)
    (package / "build.yml").write_text("image: hello\narches:\n  - amd64\n")
    (package / "Dockerfile").write_text("FROM scratch\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "hello")
    cache = Cache(tmp_path / "cache")
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}
    config_desc = cache.write_blob(canonical_bytes(config), mediatypes.OCI_CONFIG)
    arch_ref = load_packages([package], org=org)[0].arch_reference("amd64")
    with cache.lock():
        manifest = cache.put_manifest(ImageManifest(config=config_desc, layers=()))
        cache.set_ref(str(arch_ref), manifest)
    return package, cache.root


def run_probe(
    not_loaded: tuple[str, ...], *argv: str, path: str | None = None
) -> dict[str, object]:
    """Run `lkpkg ARGV` in a fresh interpreter; its exit code and which of `not_loaded` (or
    their submodules) it loaded."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    if path is not None:
        env["PATH"] = path
    done = subprocess.run(
        [sys.executable, "-c", f"NAMES = {not_loaded!r}\n{PROBE}", *argv],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def git_only_path(tmp_path: Path) -> str:
    """A PATH holding git alone: no builder can be found on it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    found = shutil.which("git")
    assert found is not None
    (bin_dir / "git").symlink_to(found)
    return str(bin_dir)


def test_a_no_op_build_loads_no_display_builder_or_trust_code(tmp_path):
    package, cache = built_package(tmp_path, "example.org/t")
    # --progress auto with stderr a pipe, as in CI: plain lines.
    found = run_probe(
        (*NOT_NEEDED, *BUILD_ONLY, *PUSH_ONLY, *REGISTRY_ONLY),
        *("build", "--cache", str(cache), "--org", "example.org/t", str(package)),
    )
    assert found == {"code": 0, "loaded": []}


def test_a_no_op_build_of_a_registry_org_loads_no_registry_client(tmp_path):
    # The org names a registry (nothing listens on port 1): an arch the cache holds is never
    # looked up there, so the build succeeds without loading httpx or TLS.
    org = "127.0.0.1:1/t"
    package, cache = built_package(tmp_path, org)
    argv = ("build", "--cache", str(cache), "--org", org, str(package))
    found = run_probe((*NOT_NEEDED, *BUILD_ONLY, *PUSH_ONLY, *REGISTRY_ONLY), *argv)
    assert found == {"code": 0, "loaded": []}


def test_an_unsigned_push_loads_no_display_builder_or_trust_code(tmp_path):
    # Nothing listens on port 1: the push fails at the registry (exit 3), after everything
    # it imports before its first request.
    org = "127.0.0.1:1/t"
    package, cache = built_package(tmp_path, org)
    argv = ("push", "--notrust", "--cache", str(cache), "--org", org, str(package))
    # No registry asked for credentials: no keychain, config.json reader or helpers.
    credentials = ("lkpkg.auth.keychain", "lkpkg.auth.helpers", "lkpkg.auth.dockerconfig")
    found = run_probe((*NOT_NEEDED, *BUILD_ONLY, "lkpkg.cli.showtag", *credentials), *argv)
    assert found == {"code": 3, "loaded": []}


def test_show_tag_loads_no_cache_registry_pipeline_or_builder_code(tmp_path):
    package, _ = built_package(tmp_path, "example.org/t")
    not_loaded = (*NOT_NEEDED, *BUILD_ONLY, *REGISTRY_ONLY, "lkpkg.cache", "lkpkg.pipeline")
    found = run_probe(
        (*not_loaded, "lkpkg.builders", "lkpkg.oci.model", "hashlib", "difflib"),
        *("show-tag", "--org", "example.org/t", str(package)),
    )
    assert found == {"code": 0, "loaded": []}


def test_a_forced_build_loads_only_the_builder_it_asks_for(tmp_path):
    # buildah is not on PATH: the build stops where it asks for its builder ("no usable
    # builder", exit 3), after everything it imports before the builder would start.
    package, cache = built_package(tmp_path, "example.org/t")
    argv = ("build", "--force", "--builder", "buildah", "--cache", str(cache))
    not_loaded = ("rich", "cryptography", "lkpkg.trust", "lkpkg.pipeline.sign")
    found = run_probe(
        (*not_loaded, "lkpkg.builders.docker", "tarfile", "lkpkg.cache.pull", *REGISTRY_ONLY),
        *(*argv, "--org", "example.org/t", str(package)),
        path=git_only_path(tmp_path),
    )
    assert found == {"code": EXIT_ENVIRONMENT, "loaded": []}


HTTP_WITHOUT_ANYIO = """
import http.server, sys, threading
from lkpkg.cli.main import _block_async_backends
_block_async_backends()
import httpx
server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
with httpx.Client(transport=httpx.HTTPTransport()) as client:
    status = client.head(f"http://127.0.0.1:{server.server_port}/").status_code
print(status, sys.modules["anyio"])
"""


def test_the_lkpkg_process_speaks_http_without_anyio(tmp_path):
    # The `lkpkg` process blocks anyio (httpcore's async backends); its synchronous client
    # must work exactly as with anyio loaded.
    done = subprocess.run(
        [sys.executable, "-c", HTTP_WITHOUT_ANYIO],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert done.stdout.split() == ["200", "None"]
