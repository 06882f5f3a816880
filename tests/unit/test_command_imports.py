"""What the everyday commands import, run as users run them (issue 12: start-up is most of a
no-op build and of a re-push): a run with nothing to build and nothing to sign, shown as
plain lines, loads no live display (rich), no builder module, no trust code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lkpkg.cache.layout import Cache
from lkpkg.oci import mediatypes
from lkpkg.oci.model import ImageManifest, canonical_bytes
from lkpkg.package.model import load_packages
from tests.conftest import git

# Modules a no-op build or an unsigned push must not load (each was on the path before).
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

PROBE = """
import json, sys
from lkpkg.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
else:
    code = 0
loaded = sorted({m for m in sys.modules for n in NAMES if m == n or m.startswith(n + ".")})
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


def run_probe(*argv: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    done = subprocess.run(
        [sys.executable, "-c", f"NAMES = {NOT_NEEDED!r}\n{PROBE}", *argv],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_no_op_build_loads_no_display_builder_or_trust_code(tmp_path):
    package, cache = built_package(tmp_path, "example.org/t")
    # --progress auto with stderr a pipe, as in CI: plain lines.
    found = run_probe("build", "--cache", str(cache), "--org", "example.org/t", str(package))
    assert found == {"code": 0, "loaded": []}


def test_an_unsigned_push_loads_no_display_builder_or_trust_code(tmp_path):
    # Nothing listens on port 1: the push fails at the registry (exit 3), after everything
    # it imports before its first request.
    org = "127.0.0.1:1/t"
    package, cache = built_package(tmp_path, org)
    argv = ("push", "--notrust", "--cache", str(cache), "--org", org, str(package))
    found = run_probe(*argv)
    assert found == {"code": 3, "loaded": []}
