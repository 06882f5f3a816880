"""Docker Content Trust signing against a real notary server, judged by Docker's own client.

Images are pushed with `/usr/bin/docker push` (DCT off) to a plain registry on 127.0.0.1,
signed with `DCTSigner`, and then `docker pull` with DOCKER_CONTENT_TRUST=1, `docker trust
inspect` and the `notary` CLI must see what was signed, from a DOCKER_CONFIG of their own.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import secrets
import socket
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from lkpkg.errors import (
    EXIT_AUTH,
    EXIT_BAD_INPUT,
    EXIT_ENVIRONMENT,
    TrustKeyError,
    TrustPassphraseMissing,
    TrustServerUnreachable,
)
from lkpkg.trust.config import SERVER_VARIABLE, DCTSettings, TrustConfig
from lkpkg.trust.dct import DCTSigner, Target
from lkpkg.trust.passphrases import (
    REPOSITORY_PASSPHRASE,
    ROOT_PASSPHRASE,
    DCTPassphrases,
    check_passphrases,
)
from tests.fixtures.notary import NotaryInfo
from tests.fixtures.registry import RegistryInfo, unique_repository_name

pytestmark = pytest.mark.integration

DOCKER = "/usr/bin/docker"  # Debian's 20.10 client, the one that matches dockerd here
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


# -- a docker client of our own ------------------------------------------------------------


@dataclass
class Docker:
    host: str
    config: Path
    notary: NotaryInfo

    def run(
        self, *args: str, trust: bool = False, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        full = {
            **os.environ,
            "DOCKER_HOST": self.host,
            "DOCKER_CONFIG": str(self.config),
            "DOCKER_CONTENT_TRUST": "1" if trust else "0",
            SERVER_VARIABLE: self.notary.url,
            **(env or {}),
        }
        for name in (ROOT_PASSPHRASE, REPOSITORY_PASSPHRASE):
            if env is None or name not in env:
                full.pop(name, None)
        result = subprocess.run(
            [DOCKER, *args],
            env=full,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {result.stdout}{result.stderr}")
        return result

    def trusted_pull(self, ref: str) -> subprocess.CompletedProcess[str]:
        return self.run("pull", ref, trust=True, check=False)

    def inspect(self, gun: str) -> dict[str, object]:
        out = self.run("trust", "inspect", gun).stdout
        data = json.loads(out)
        assert isinstance(data, list) and len(data) == 1
        return data[0]  # type: ignore[no-any-return]


def new_config(tmp_path: Path, name: str, notary: NotaryInfo) -> Path:
    config = tmp_path / name
    config.mkdir()
    notary.install_ca(config)
    return config


@pytest.fixture
def verifier(docker_engine: str, notary_server: NotaryInfo, tmp_path: Path) -> Docker:
    """A docker client with no keys and an empty trust store: it trusts on first use only
    what the trust server serves."""
    return Docker(docker_engine, new_config(tmp_path, "verifier", notary_server), notary_server)


def tiny_image(content: str) -> bytes:
    """A one-layer image as a `docker load` archive (the docker-archive format)."""

    def tar(files: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    layer = tar({"hello.txt": content.encode()})
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": None, "Layers": ["layer/layer.tar"]}]
    return tar(
        {
            config_name: config,
            "layer/layer.tar": layer,
            "manifest.json": json.dumps(manifest).encode(),
        }
    )


def push(docker: Docker, registry: RegistryInfo, repo: str, tag: str, tmp_path: Path) -> Target:
    """Push a fresh tiny image as `repo:tag` with DCT off; its manifest digest and size as
    the registry serves them."""
    archive = tmp_path / f"{tag}.tar"
    archive.write_bytes(tiny_image(f"{repo}:{tag} {secrets.token_hex(8)}\n"))
    loaded = docker.run("load", "-i", str(archive)).stdout
    image_id = re.search(r"Loaded image ID: (sha256:[0-9a-f]{64})", loaded)
    assert image_id, loaded
    ref = f"{registry.host}/{repo}:{tag}"
    docker.run("tag", image_id.group(1), ref)
    out = docker.run("push", ref).stdout
    pushed = re.search(rf"{re.escape(tag)}: digest: (sha256:[0-9a-f]{{64}}) size: (\d+)", out)
    assert pushed, out
    answer = httpx.get(f"{registry.url}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_V2})
    answer.raise_for_status()
    assert answer.headers["Docker-Content-Digest"] == pushed.group(1)
    assert len(answer.content) == int(pushed.group(2))
    docker.run("rmi", "-f", image_id.group(1))
    return Target(tag, pushed.group(1), int(pushed.group(2)))


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening, for the block."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def passphrases() -> dict[str, str]:
    return {
        ROOT_PASSPHRASE: "root-" + secrets.token_urlsafe(12),
        REPOSITORY_PASSPHRASE: "repo-" + secrets.token_urlsafe(12),
    }


def signer_env(config: Path, notary: NotaryInfo, **values: str) -> dict[str, str]:
    return {"DOCKER_CONFIG": str(config), SERVER_VARIABLE: notary.url, **values}


def settings(env: dict[str, str]) -> DCTSettings:
    """What the CLI would read from `env` (with this process's PATH, to find notary)."""
    return DCTSettings.from_environment({"PATH": os.environ["PATH"], **env})


def signer_for(registry: RegistryInfo, env: dict[str, str]) -> DCTSigner:
    return DCTSigner(TrustConfig.for_registry(registry.host, settings(env)), settings(env))


def notary_cli(notary: NotaryInfo, trust_dir: Path, *args: str) -> str:
    result = subprocess.run(
        [
            "notary",
            "-s",
            notary.url,
            "--tlscacert",
            str(notary.ca_cert),
            "-d",
            str(trust_dir),
            *args,
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def notary_rows(output: str) -> dict[str, tuple[str, int, str]]:
    rows: dict[str, tuple[str, int, str]] = {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) == 4 and re.fullmatch(r"[0-9a-f]{64}", fields[1]):
            rows[fields[0]] = (fields[1], int(fields[2]), fields[3])
    return rows


def key_roles(trust_dir: Path) -> list[tuple[str, str]]:
    """(role, gun) of every private key file, from the PEM headers notary writes."""
    found = []
    for path in sorted((trust_dir / "private").rglob("*.key")):
        headers = dict(
            line.split(": ", 1) for line in path.read_text().splitlines() if ": " in line
        )
        found.append((headers.get("role", ""), headers.get("gun", "")))
    return found


def signed_tags(inspected: dict[str, object]) -> dict[str, tuple[str, list[str]]]:
    tags = inspected["SignedTags"]
    assert isinstance(tags, list)
    return {t["SignedTag"]: (t["Digest"], sorted(t["Signers"])) for t in tags}


def metadata_version(trust_dir: Path, gun: str, role: str) -> int:
    path = trust_dir / "tuf" / gun / "metadata" / f"{role}.json"
    return int(json.loads(path.read_text())["signed"]["version"])


@pytest.fixture
def setup(
    docker_engine: str, registry_plain: RegistryInfo, notary_server: NotaryInfo, tmp_path: Path
) -> Iterator[tuple[Docker, RegistryInfo, NotaryInfo]]:
    pusher = Docker(docker_engine, new_config(tmp_path, "pusher", notary_server), notary_server)
    yield pusher, registry_plain, notary_server


# -- tests ---------------------------------------------------------------------------------


def test_first_signature_initialises_the_repository_as_docker_does(setup, verifier, tmp_path):
    pusher, registry, notary = setup
    repo = unique_repository_name("first")
    gun = f"{registry.host}/{repo}"
    signed = push(pusher, registry, repo, "signed", tmp_path)
    unsigned = push(pusher, registry, repo, "unsigned", tmp_path)
    admin = new_config(tmp_path, "admin", notary)
    env = signer_env(admin, notary, **passphrases())
    config = TrustConfig.for_registry(registry.host, settings(env))
    assert config.server == notary.url
    assert config.trust_dir == admin / "trust"
    assert config.ca_cert == admin / "tls" / notary.host / "ca.crt"
    signer = DCTSigner(config, settings(env))

    assert not signer.repository_exists(gun)
    signer.sign(gun, [signed])

    assert signer.repository_exists(gun)
    assert signer.list_targets(gun) == {"signed": signed}
    # docker keeps root and targets keys locally and lets the server hold the snapshot key.
    assert sorted(key_roles(admin / "trust")) == [("root", ""), ("targets", gun)]
    root = json.loads((admin / "trust" / "tuf" / gun / "metadata" / "root.json").read_text())
    snapshot_keys = set(root["signed"]["roles"]["snapshot"]["keyids"])
    assert snapshot_keys and not any(
        (admin / "trust" / "private" / f"{key}.key").exists() for key in snapshot_keys
    )

    listed = notary_rows(notary_cli(notary, tmp_path / "notary-trust", "list", gun))
    assert listed == {"signed": (signed.hex, signed.size, "targets")}

    assert signed_tags(verifier.inspect(gun)) == {"signed": (signed.hex, ["Repo Admin"])}
    pulled = verifier.trusted_pull(f"{gun}:signed")
    assert pulled.returncode == 0, pulled.stderr
    assert f"@{signed.digest}" in pulled.stdout
    refused = verifier.trusted_pull(f"{gun}:{unsigned.tag}")
    assert refused.returncode != 0
    assert "trust data" in refused.stderr


def test_several_tags_go_out_in_one_publish(setup, verifier, tmp_path):
    pusher, registry, notary = setup
    repo = unique_repository_name("several")
    gun = f"{registry.host}/{repo}"
    first = push(pusher, registry, repo, "v1-amd64", tmp_path)
    arch = push(pusher, registry, repo, "v2-amd64", tmp_path)
    index = push(pusher, registry, repo, "v2", tmp_path)
    admin = new_config(tmp_path, "admin", notary)
    signer = signer_for(registry, signer_env(admin, notary, **passphrases()))
    signer.sign(gun, [first])
    before = metadata_version(admin / "trust", gun, "targets")

    signer.sign(gun, [arch, index])

    assert metadata_version(admin / "trust", gun, "targets") == before + 1
    assert signer.list_targets(gun) == {"v1-amd64": first, "v2-amd64": arch, "v2": index}
    assert "No unpublished changes" in notary_cli(notary, admin / "trust", "status", gun)
    assert signed_tags(verifier.inspect(gun)) == {
        t.tag: (t.hex, ["Repo Admin"]) for t in (first, arch, index)
    }
    for tag in ("v2", "v2-amd64"):
        assert verifier.trusted_pull(f"{gun}:{tag}").returncode == 0


def test_a_repository_docker_initialised_takes_our_signatures(setup, verifier, tmp_path):
    pusher, registry, notary = setup
    repo = unique_repository_name("docker-first")
    gun = f"{registry.host}/{repo}"
    words = passphrases()
    by_docker = push(pusher, registry, repo, "by-docker", tmp_path)
    ours = push(pusher, registry, repo, "by-lkpkg", tmp_path)
    admin = new_config(tmp_path, "admin", notary)
    admin_docker = Docker(pusher.host, admin, notary)
    # docker signs on push: it initialises the repository and signs the tag.
    image = f"{gun}:{by_docker.tag}"
    admin_docker.run("pull", image)
    admin_docker.run("push", image, trust=True, env=words)
    assert signed_tags(verifier.inspect(gun)) == {"by-docker": (by_docker.hex, ["Repo Admin"])}

    signer_for(registry, signer_env(admin, notary, **words)).sign(gun, [ours])

    assert signed_tags(verifier.inspect(gun)) == {
        "by-docker": (by_docker.hex, ["Repo Admin"]),
        "by-lkpkg": (ours.hex, ["Repo Admin"]),
    }
    assert verifier.trusted_pull(f"{gun}:by-lkpkg").returncode == 0


def test_maintainer_signs_through_the_releases_delegation(setup, verifier, tmp_path):
    pusher, registry, notary = setup
    repo = unique_repository_name("maintainer")
    gun = f"{registry.host}/{repo}"
    base = push(pusher, registry, repo, "base", tmp_path)
    release = push(pusher, registry, repo, "release", tmp_path)
    other = push(pusher, registry, repo, "other", tmp_path)
    admin_words = passphrases()
    admin = new_config(tmp_path, "admin", notary)
    signer_for(registry, signer_env(admin, notary, **admin_words)).sign(gun, [base])

    # The maintainer setup LinuxKit uses: a key of the maintainer's own, made by docker and
    # protected by the repository passphrase, that an admin adds as a signer.
    maintainer = new_config(tmp_path, "maintainer", notary)
    maintainer_word = "maint-" + secrets.token_urlsafe(12)
    maintainer_docker = Docker(pusher.host, maintainer, notary)
    keys = tmp_path / "keys"
    keys.mkdir()
    maintainer_docker.run(
        "trust",
        "key",
        "generate",
        "maint",
        "--dir",
        str(keys),
        env={REPOSITORY_PASSPHRASE: maintainer_word},
    )
    Docker(pusher.host, admin, notary).run(
        "trust", "signer", "add", "--key", str(keys / "maint.pub"), "maint", gun, env=admin_words
    )

    env = signer_env(maintainer, notary, **{REPOSITORY_PASSPHRASE: maintainer_word})
    check_passphrases(DCTPassphrases.from_environment(env), may_need_root=False)
    signer_for(registry, env).sign(gun, [release])

    by_role = notary_rows(
        notary_cli(notary, tmp_path / "nt", "list", gun, "--roles", "targets/releases")
    )
    assert by_role["release"] == (release.hex, release.size, "targets/releases")
    assert signed_tags(verifier.inspect(gun)) == {
        "base": (base.hex, ["Repo Admin"]),
        "release": (release.hex, ["maint"]),
    }
    pulled = verifier.trusted_pull(f"{gun}:release")
    assert pulled.returncode == 0, pulled.stderr

    # A wrong passphrase: named, never shown, and nothing left staged.
    wrong = "wrong-" + secrets.token_urlsafe(12)
    with pytest.raises(TrustKeyError) as caught:
        signer_for(registry, signer_env(maintainer, notary, **{REPOSITORY_PASSPHRASE: wrong})).sign(
            gun, [other]
        )
    assert caught.value.exit_code == EXIT_AUTH
    assert REPOSITORY_PASSPHRASE in caught.value.message
    assert wrong not in str(caught.value) and maintainer_word not in str(caught.value)
    status = notary_cli(notary, maintainer / "trust", "status", gun)
    assert "No unpublished changes" in status

    # Without a key of targets/releases, docker refuses too (GetSignableRoles): the admin
    # holds only the targets key now that the repository signs through the delegation.
    for config, words in ((admin, admin_words), (new_config(tmp_path, "stranger", notary), {})):
        env = signer_env(config, notary, **{REPOSITORY_PASSPHRASE: "x" * 12, **words})
        with pytest.raises(TrustKeyError, match="targets/releases"):
            signer_for(registry, env).sign(gun, [other])
    assert "other" not in signed_tags(verifier.inspect(gun))


def test_missing_root_passphrase_for_a_new_repository(setup, tmp_path):
    _, registry, notary = setup
    gun = f"{registry.host}/{unique_repository_name('noroot')}"
    config = new_config(tmp_path, "admin", notary)
    env = signer_env(config, notary, **{REPOSITORY_PASSPHRASE: "only-the-repository"})
    signer = signer_for(registry, env)
    target = Target("t", "sha256:" + "a" * 64, 10)

    with pytest.raises(TrustPassphraseMissing) as caught:
        signer.sign(gun, [target])

    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert ROOT_PASSPHRASE in caught.value.message
    assert REPOSITORY_PASSPHRASE not in caught.value.message
    assert not signer.repository_exists(gun)
    assert key_roles(config / "trust") == []


def test_wrong_root_passphrase_leaves_no_orphan_keys(setup, tmp_path):
    _, registry, notary = setup
    config = new_config(tmp_path, "admin", notary)
    words = passphrases()
    target = Target("t", "sha256:" + "b" * 64, 10)
    signer_for(registry, signer_env(config, notary, **words)).sign(
        f"{registry.host}/{unique_repository_name('root-ok')}", [target]
    )
    keys_before = key_roles(config / "trust")
    gun = f"{registry.host}/{unique_repository_name('root-wrong')}"
    wrong = "wrong-" + secrets.token_urlsafe(12)

    with pytest.raises(TrustKeyError) as caught:
        signer_for(registry, signer_env(config, notary, **{**words, ROOT_PASSPHRASE: wrong})).sign(
            gun, [target]
        )

    assert ROOT_PASSPHRASE in caught.value.message
    assert wrong not in str(caught.value)
    assert key_roles(config / "trust") == keys_before
    signer = signer_for(registry, signer_env(config, notary, **words))
    signer.sign(gun, [target])
    assert signer.list_targets(gun) == {"t": target}


def test_an_unreachable_trust_server_is_an_environment_problem(registry_plain, tmp_path):
    with closed_port() as port:
        server = f"https://127.0.0.1:{port}"
        env = {"DOCKER_CONFIG": str(tmp_path), SERVER_VARIABLE: server, **passphrases()}
        with pytest.raises(TrustServerUnreachable) as caught:
            signer_for(registry_plain, env).sign(
                f"{registry_plain.host}/x/y", [Target("t", "sha256:" + "c" * 64, 1)]
            )
    assert caught.value.exit_code == EXIT_ENVIRONMENT
    assert server in caught.value.message
    assert "connection refused" in caught.value.message


def test_a_trust_server_with_an_unknown_ca_is_unreachable(registry_plain, notary_server, tmp_path):
    env = {"DOCKER_CONFIG": str(tmp_path), SERVER_VARIABLE: notary_server.url, **passphrases()}
    config = TrustConfig.for_registry(registry_plain.host, settings(env))
    assert config.ca_cert is None
    with pytest.raises(TrustServerUnreachable) as caught:
        DCTSigner(config, settings(env)).list_targets(f"{registry_plain.host}/x/y")
    assert notary_server.url in caught.value.message
    assert "x509" in caught.value.message
    assert f"tls/{notary_server.host}/ca.crt" in (caught.value.hint or "")


def test_passphrases_never_reach_argv_or_error_text(setup, tmp_path):
    _, registry, notary = setup
    config = new_config(tmp_path, "admin", notary)
    words = passphrases()
    gun = f"{registry.host}/{unique_repository_name('argv')}"
    seen: list[bytes] = []
    environs: list[bytes] = []
    stop = threading.Event()
    wrong = {
        ROOT_PASSPHRASE: "wrong-root-" + secrets.token_urlsafe(8),
        REPOSITORY_PASSPHRASE: "wrong-repo-" + secrets.token_urlsafe(8),
    }

    def sample() -> None:
        own = str(os.getpid())
        while not stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit() or entry.name == own:
                    continue
                try:
                    cmdline = Path(entry.path, "cmdline").read_bytes()
                    if b"notary" in cmdline:
                        environs.append(Path(entry.path, "environ").read_bytes())
                except OSError:
                    continue
                seen.append(cmdline)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        signer_for(registry, signer_env(config, notary, **words)).sign(
            gun, [Target("t", "sha256:" + "d" * 64, 10)]
        )
        with pytest.raises(TrustKeyError) as caught:
            signer_for(registry, signer_env(config, notary, **wrong)).sign(
                gun, [Target("u", "sha256:" + "e" * 64, 10)]
            )
    finally:
        stop.set()
        sampler.join()

    notary_runs = [c for c in seen if b"notary" in c and b"notary-server" not in c]
    assert notary_runs, "the sampler never saw a notary process"
    for value in (*words.values(), *wrong.values()):
        assert not any(value.encode() in cmdline for cmdline in seen)
        assert value not in str(caught.value) and value not in repr(caught.value)
    # ... because they went through notary's environment instead.
    assert any(
        f"NOTARY_TARGETS_PASSPHRASE={words[REPOSITORY_PASSPHRASE]}".encode() in e for e in environs
    )
