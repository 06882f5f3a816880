"""The run's registry pool: one client per host, and credentials read only when a registry asks
for them (its keychain is made on demand, so an anonymous registry loads no credential code)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

from lkpkg.auth.keychain import Keychain
from lkpkg.pipeline.registries import RegistryPool

HOST = "127.0.0.1:5000"


def docker_config(tmp_path: Path) -> dict[str, str]:
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    auth = base64.b64encode(b"alice:s3cret").decode()
    (config_dir / "config.json").write_text(json.dumps({"auths": {HOST: {"auth": auth}}}))
    return {"DOCKER_CONFIG": str(config_dir), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}


def test_the_keychain_on_demand_answers_as_the_keychain(tmp_path):
    env = docker_config(tmp_path)
    with RegistryPool([], env) as pool:
        client = pool(HOST)
        assert pool(HOST) is client  # one client per host
        on_demand = pool._keychain
        credential = on_demand.resolve(HOST)
        assert credential == Keychain(env=env).resolve(HOST)
        assert credential is not None and credential.username == "alice"
        assert on_demand.sources_tried(HOST) == Keychain(env=env).sources_tried(HOST)
        assert on_demand.resolve("other.example:5000") is None


PROBE = """
import sys
from lkpkg.pipeline.registries import RegistryPool
pool = RegistryPool([], {"HOME": sys.argv[1]})
pool("127.0.0.1:5000")
print(sorted(m for m in sys.modules if m in ("lkpkg.auth.keychain", "lkpkg.auth.helpers",
      "lkpkg.auth.dockerconfig")))
"""


def test_a_client_is_made_without_the_credential_code(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
