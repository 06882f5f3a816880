"""lkpkg push signs; Docker's own client (DCT) and skopeo + openssl (cosign) judge the
signatures; lkpkg verify catches unsigned and re-pointed tags; secrets never reach argv or
error text."""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from lkpkg.oci.model import Platform
from lkpkg.proc import COMMON_VARIABLES
from lkpkg.trust.config import NOTARY_VARIABLES
from tests.conftest import git, lkpkg, run
from tests.fixtures.notary import NotaryInfo
from tests.fixtures.registry import RegistryInfo, TestPKI
from tests.integration.test_attest import is_attestation
from tests.integration.test_push import make_tiny

pytestmark = pytest.mark.integration

DOCKER = "/usr/bin/docker"


class World:
    """A registry, a trust server, a maintainer's DOCKER_CONFIG and a consumer's docker."""

    def __init__(
        self, tmp_path: Path, registry: RegistryInfo, notary: NotaryInfo, docker_host: str
    ) -> None:
        self.registry = registry
        self.notary = notary
        self.docker_host = docker_host
        self.maintainer = tmp_path / "maintainer"
        self.consumer = tmp_path / "consumer"
        for config in (self.maintainer, self.consumer):
            config.mkdir()
            notary.install_ca(config)
        self.root_pass = "root-" + secrets.token_urlsafe(12)
        self.repo_pass = "repo-" + secrets.token_urlsafe(12)
        self.cosign_pass = "cosign-" + secrets.token_urlsafe(12)
        self.org = f"{registry.host}/{registry.repo('sig')}"
        self.repo = tmp_path / "repo"
        self.package = make_tiny(self.repo)
        self.cache = tmp_path / "cache"

    @property
    def secrets(self) -> list[str]:
        return [self.root_pass, self.repo_pass, self.cosign_pass]

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "DOCKER_CONFIG": str(self.maintainer),
            "DOCKER_CONTENT_TRUST_SERVER": self.notary.url,
            "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": self.root_pass,
            "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": self.repo_pass,
            "COSIGN_PASSWORD": self.cosign_pass,
            **extra,
        }

    def push(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return lkpkg(
            "push",
            "--cache",
            str(self.cache),
            "--org",
            self.org,
            "--platforms",
            "linux/amd64,linux/arm64",
            *args,
            str(self.package),
            env=env or self.env(),
            check=check,
        )

    def tag(self) -> str:
        return git(self.repo, "rev-parse", "HEAD:tiny")

    def ref(self, tag: str) -> str:
        return f"{self.org}/tiny:{tag}"

    def docker(self, *args: str, trust: bool) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "DOCKER_HOST": self.docker_host,
            "DOCKER_CONFIG": str(self.consumer),
            "DOCKER_CONTENT_TRUST": "1" if trust else "0",
            "DOCKER_CONTENT_TRUST_SERVER": self.notary.url,
        }
        return subprocess.run(
            [DOCKER, *args], env=env, capture_output=True, text=True, check=False, timeout=300
        )

    def registry_tags(self) -> list[str]:
        """The tags of the package's repository ([] when it does not exist)."""
        listing = subprocess.run(
            ["skopeo", "list-tags", "--tls-verify=false", f"docker://{self.org}/tiny"],
            capture_output=True,
            text=True,
            check=False,
        )
        return sorted(json.loads(listing.stdout)["Tags"]) if listing.returncode == 0 else []

    def registry_digest(self, tag: str) -> str:
        raw = run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{self.ref(tag)}"]
        ).stdout
        import hashlib

        return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


@pytest.fixture
def world(tmp_path, registry_plain, notary_server, docker_engine, buildah_store) -> World:
    return World(tmp_path, registry_plain, notary_server, docker_engine)


def test_push_signs_every_arch_and_the_index_and_docker_pulls_them_with_trust(world):
    out = world.push().stdout
    assert "signed=dct" in out
    tag = world.tag()
    for name in (tag, f"{tag}-amd64", f"{tag}-arm64"):
        pulled = world.docker("pull", world.ref(name), trust=True)
        assert pulled.returncode == 0, pulled.stderr
    # notary's own view: the targets lkpkg signed, with the registry's digests and sizes.
    inspected = json.loads(
        world.docker("trust", "inspect", f"{world.org}/tiny", trust=False).stdout
    )[0]
    signed = {s["SignedTag"]: s["Digest"] for s in inspected["SignedTags"]}
    for name in (tag, f"{tag}-amd64", f"{tag}-arm64"):
        assert "sha256:" + signed[name] == world.registry_digest(name)
    assert "verified" in lkpkg("verify", world.ref(tag), env=world.env()).stdout


def test_an_unsigned_tag_is_refused_by_docker_and_by_verify(world):
    world.push("--notrust", "--hash", "unsigned")
    assert world.docker("pull", world.ref("unsigned-amd64"), trust=True).returncode != 0
    result = lkpkg("verify", world.ref("unsigned"), env=world.env(), check=False)
    assert result.returncode == 1
    assert "not signed" in result.stderr and result.stderr.count("\n") == 1


def test_a_repointed_tag_fails_verify_while_docker_still_gets_the_signed_image(world, tmp_path):
    world.push()
    tag = world.tag()
    signed_digest = world.registry_digest(f"{tag}-amd64")
    # Someone re-points the amd64 tag at other content after signing.
    other = make_tiny(tmp_path / "other", name="tiny")
    (other / "msg").write_text("substitute\n")
    git(tmp_path / "other", "commit", "-qam", "substitute")
    lkpkg(
        "push",
        "--notrust",
        "--cache",
        str(tmp_path / "other-cache"),
        "--org",
        world.org,
        "--hash",
        "evil",
        "--platforms",
        "linux/amd64",
        str(other),
        env=world.env(),
    )
    run(
        [
            "skopeo",
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--preserve-digests",
            f"docker://{world.ref('evil-amd64')}",
            f"docker://{world.ref(tag + '-amd64')}",
        ]
    )
    found = world.registry_digest(f"{tag}-amd64")
    assert found != signed_digest
    result = lkpkg("verify", world.ref(f"{tag}-amd64"), env=world.env(), check=False)
    assert result.returncode == 1
    assert found in result.stderr and signed_digest in result.stderr
    # docker pull with DCT resolves the tag through the trust data, so it fetches the signed image.
    pulled = world.docker("pull", world.ref(f"{tag}-amd64"), trust=True)
    assert pulled.returncode == 0, pulled.stderr
    assert signed_digest in pulled.stdout + pulled.stderr


def test_missing_passphrase_is_reported_before_anything_is_pushed(world):
    env = world.env()
    del env["DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE"]
    result = world.push(env=env, check=False)
    assert result.returncode == 2
    assert (
        "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE" in result.stderr
        and "NOTRUST=1" in result.stderr
    )
    assert_one_error(result.stderr)
    assert world.registry_tags() == []


def assert_one_error(stderr: str) -> None:
    """One `lkpkg: error:` line, and at most the `lkpkg: hint:` line that goes with it."""
    lines = stderr.splitlines()
    assert lines and lines[0].startswith("lkpkg: error: "), stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("lkpkg: hint: ")), stderr


# -- preflight: everything signing needs is checked before the first blob --------------------


def test_an_unreachable_trust_server_stops_the_push_before_anything_is_pushed(world):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        server = f"https://127.0.0.1:{closed.getsockname()[1]}"
        result = world.push(env=world.env(DOCKER_CONTENT_TRUST_SERVER=server), check=False)
    assert result.returncode == 3, result.stderr
    assert f"trust server {server} unreachable: connection refused" in result.stderr
    assert "lkpkg: hint: start the notary server" in result.stderr
    assert_one_error(result.stderr)
    assert world.registry_tags() == []


def test_a_trust_server_with_another_ca_stops_the_push(world, tmp_path):
    (tmp_path / "other").mkdir()
    other = TestPKI.create(tmp_path / "other").ca_path
    result = world.push("--trust-ca", str(other), check=False)
    assert result.returncode == 3, result.stderr
    assert "certificate verify failed" in result.stderr and str(other) in result.stderr
    assert world.registry_tags() == []


def test_a_wrong_repository_passphrase_stops_the_push_before_anything_is_pushed(world):
    world.push("--hash", "first")  # the repository and its targets key now exist
    tags = world.registry_tags()
    wrong = "wrong-" + secrets.token_urlsafe(8)
    result = world.push(
        "--hash",
        "second",
        env=world.env(DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=wrong),
        check=False,
    )
    assert result.returncode == 4, result.stderr
    assert "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE unlocks none of the keys" in result.stderr
    assert wrong not in result.stderr + result.stdout
    assert_one_error(result.stderr)
    assert world.registry_tags() == tags  # nothing of "second" was pushed


def test_a_wrong_root_passphrase_stops_the_first_push_of_a_repository(world):
    world.push("--hash", "first")  # a root key now exists in the trust dir
    other = World.__new__(World)
    other.__dict__.update(world.__dict__)
    other.org = f"{world.registry.host}/{world.registry.repo('sig-root')}"
    wrong = "wrong-" + secrets.token_urlsafe(8)
    result = other.push(env=world.env(DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE=wrong), check=False)
    assert result.returncode == 4, result.stderr
    assert "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE unlocks no root key" in result.stderr
    assert wrong not in result.stderr + result.stdout
    assert other.registry_tags() == []


def test_a_locked_cosign_key_stops_the_push_before_anything_is_pushed(world, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    lkpkg("keygen", "--output-key-prefix", str(keys / "cosign"), env=world.env())
    result = world.push(
        "--sign-key",
        str(keys / "cosign.key"),
        env=world.env(COSIGN_PASSWORD="wrong-" + world.cosign_pass),
        check=False,
    )
    assert result.returncode == 2 and "wrong COSIGN_PASSWORD" in result.stderr
    assert world.registry_tags() == []


# -- signed means every arch ----------------------------------------------------------------


def test_a_signed_push_signs_the_arches_an_unsigned_push_put_in_the_index(world):
    """amd64 is pushed with NOTRUST=1, then arm64 with trust: the index lists both, so both
    arch tags must be signed, and verify (and docker) accept the index and each arch."""
    world.push("--notrust", "--platforms", "linux/amd64")
    out = world.push("--platforms", "linux/arm64").stdout
    assert "signed=dct" in out
    tag = world.tag()
    result = lkpkg("verify", world.ref(tag), env=world.env(), check=False)
    assert result.returncode == 0, result.stderr
    assert "index of 2 images" in result.stdout
    for name in (tag, f"{tag}-amd64", f"{tag}-arm64"):
        assert lkpkg("verify", world.ref(name), env=world.env()).returncode == 0
    assert world.docker("pull", world.ref(f"{tag}-amd64"), trust=True).returncode == 0


# -- child environments ---------------------------------------------------------------------


def test_notary_runs_with_its_own_variables_only(world, tmp_path):
    """A PATH shim records the environment every notary child starts with (what
    /proc/<pid>/environ shows): notary's passphrases, nothing of cosign or docker's."""
    shim = tmp_path / "shim"
    shim.mkdir()
    seen = tmp_path / "environs"
    seen.mkdir()
    real = shutil.which("notary")
    assert real is not None
    (shim / "notary").write_text(
        f'#!/bin/sh\ncat /proc/$$/environ > "{seen}/$$"\nexec {real} "$@"\n'
    )
    (shim / "notary").chmod(0o755)
    keys = tmp_path / "keys"
    keys.mkdir()
    lkpkg("keygen", "--output-key-prefix", str(keys / "cosign"), env=world.env())
    env = world.env(
        PATH=f"{shim}:{os.environ['PATH']}", REGISTRY_TOKEN="registry-" + world.cosign_pass
    )
    world.push("--sign-key", str(keys / "cosign.key"), env=env)
    environs = [
        dict(item.split("=", 1) for item in path.read_text().split("\0") if "=" in item)
        for path in seen.iterdir()
    ]
    assert environs, "notary never ran"
    for child in environs:
        assert world.cosign_pass not in "".join(child.values())
        assert not {"COSIGN_PASSWORD", "REGISTRY_TOKEN", "DOCKER_CONFIG"} & child.keys()
        assert not [name for name in child if name.startswith("DOCKER_CONTENT_TRUST")]
        own = {
            "NOTARY_ROOT_PASSPHRASE",
            "NOTARY_TARGETS_PASSPHRASE",
            "NOTARY_SNAPSHOT_PASSPHRASE",
            "NOTARY_DELEGATION_PASSPHRASE",
            "PWD",  # set by the shim's shell
        }
        patterns = (*COMMON_VARIABLES, *NOTARY_VARIABLES)
        foreign = [
            name
            for name in set(child) - own
            if not any(fnmatch.fnmatchcase(name, p) for p in patterns)
        ]
        assert foreign == []
    assert any(child.get("NOTARY_TARGETS_PASSPHRASE") == world.repo_pass for child in environs)


def cosign_judge(world: World, ref: str, public_key: Path, scratch: Path) -> bool:
    """cosign's key-based verification, done by independent tools.

    Debian 12's skopeo and podman are built with sigstore disabled ("Debian-local change:
    sigstore disabled"), and no cosign is packaged, so skopeo's `sigstoreSigned` policy cannot
    judge here. The same steps cosign takes are done with skopeo as the registry reader and
    openssl as the ECDSA verifier: the manifest's digest, its `sha256-HEX.sig` manifest, each
    simple-signing payload's signature, and the digest and repository the payload names.
    """
    raw = run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"]
    ).stdout.encode()
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    repository = ref.rsplit(":", 1)[0]
    sig_ref = f"{repository}:{digest.replace(':', '-')}.sig"
    scratch.mkdir(parents=True, exist_ok=True)
    fetched = scratch / digest.split(":")[1]
    copy = subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--preserve-digests",
            f"docker://{sig_ref}",
            f"dir:{fetched}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if copy.returncode != 0:
        return False  # no signature manifest at all
    manifest = json.loads((fetched / "manifest.json").read_text())
    for layer in manifest["layers"]:
        if layer["mediaType"] != "application/vnd.dev.cosign.simplesigning.v1+json":
            continue
        payload = fetched / layer["digest"].split(":")[1]
        signature = fetched / "signature.der"
        signature.write_bytes(
            base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
        )
        checked = subprocess.run(
            [
                "openssl",
                "dgst",
                "-sha256",
                "-verify",
                str(public_key),
                "-signature",
                str(signature),
                str(payload),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        critical = json.loads(payload.read_text())["critical"]
        if (
            checked.returncode == 0
            and critical["image"]["docker-manifest-digest"] == digest
            and critical["identity"]["docker-reference"] == repository
            and critical["type"] == "cosign container image signature"
        ):
            return True
    return False


def test_cosign_signatures_verify_independently_and_tampering_does_not(world, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    lkpkg("keygen", "--output-key-prefix", str(keys / "cosign"), env=world.env())
    assert "signed=cosign" in world.push("--notrust", "--sign-key", str(keys / "cosign.key")).stdout
    tag = world.tag()
    for name in (tag, f"{tag}-amd64", f"{tag}-arm64"):
        assert cosign_judge(world, world.ref(name), keys / "cosign.pub", tmp_path / "judge")
    summary = lkpkg(
        "verify", "--notrust", "--key", str(keys / "cosign.pub"), world.ref(tag), env=world.env()
    ).stdout
    assert "cosign" in summary and "index of 2 images" in summary
    # Another key's public half does not verify.
    other = tmp_path / "other"
    other.mkdir()
    lkpkg("keygen", "--output-key-prefix", str(other / "cosign"), env=world.env())
    assert not cosign_judge(world, world.ref(tag), other / "cosign.pub", tmp_path / "judge-other")
    bad_key = lkpkg(
        "verify",
        "--notrust",
        "--key",
        str(other / "cosign.pub"),
        world.ref(tag),
        env=world.env(),
        check=False,
    )
    assert bad_key.returncode == 1 and "does not verify" in bad_key.stderr
    # Unsigned content (different bytes: signatures follow digests) re-pointed under a
    # signed tag: refused by the judge and by verify.
    (world.package / "msg").write_text("unsigned content\n")
    world.push("--notrust", "--hash", "plain")
    assert not cosign_judge(
        world, world.ref("plain-amd64"), keys / "cosign.pub", tmp_path / "judge-plain"
    )
    run(
        [
            "skopeo",
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--preserve-digests",
            f"docker://{world.ref('plain-amd64')}",
            f"docker://{world.ref(tag + '-amd64')}",
        ]
    )
    assert not cosign_judge(
        world, world.ref(f"{tag}-amd64"), keys / "cosign.pub", tmp_path / "judge-tampered"
    )
    result = lkpkg(
        "verify",
        "--notrust",
        "--key",
        str(keys / "cosign.pub"),
        world.ref(f"{tag}-amd64"),
        env=world.env(),
        check=False,
    )
    assert result.returncode == 1 and "no cosign signature" in result.stderr


def test_sign_signs_what_the_registry_already_holds(world):
    world.push("--notrust", "--hash", "later")
    assert lkpkg("verify", world.ref("later"), env=world.env(), check=False).returncode == 1
    signed = lkpkg("sign", world.ref("later"), env=world.env()).stdout
    assert "3 manifests" in signed
    assert "index of 2 images" in lkpkg("verify", world.ref("later"), env=world.env()).stdout
    assert world.docker("pull", world.ref("later-arm64"), trust=True).returncode == 0


def test_no_secret_in_any_argv_log_or_error(world, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    lkpkg("keygen", "--output-key-prefix", str(keys / "cosign"), env=world.env())
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    with contextlib.suppress(OSError):
                        seen.append(
                            Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                        )
            stop.wait(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        ok = world.push("--sign-key", str(keys / "cosign.key"))
        wrong = world.env(
            COSIGN_PASSWORD="wrong-" + world.cosign_pass,
            DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE="wrong-" + world.repo_pass,
        )
        failed = world.push(
            "--hash", "wrong", "--sign-key", str(keys / "cosign.key"), env=wrong, check=False
        )
    finally:
        stop.set()
        watcher.join()
    assert failed.returncode in (2, 4)
    assert any("notary" in line for line in seen), "the watcher saw no signing process"
    texts = [*seen, ok.stdout, ok.stderr, failed.stdout, failed.stderr]
    for secret in world.secrets:
        for text in texts:
            assert secret not in text


def test_a_late_signature_never_leaves_a_stale_index_signed(world, monkeypatch):
    """Host A's signature lands after host B pushed another arch and rewrote the index: the
    trust data must still end up naming the index the registry serves."""
    from lkpkg.auth import tls
    from lkpkg.builders.select import builders
    from lkpkg.cache.layout import Cache
    from lkpkg.package.model import load_packages
    from lkpkg.pipeline.push import push_package
    from lkpkg.pipeline.sign import plan_signing, sign_items
    from lkpkg.registry.client import RegistryClient
    from lkpkg.trust.backend import DCTBackend
    from lkpkg.trust.config import DCTSettings

    for key, value in world.env().items():
        monkeypatch.setenv(key, value)
    lkpkg(
        "build",
        "--cache",
        str(world.cache),
        "--org",
        world.org,
        "--platforms",
        "linux/amd64,linux/arm64",
        str(world.package),
        env=world.env(),
    )
    (package,) = load_packages([world.package], org=world.org)
    cache = Cache(world.cache)
    plan = plan_signing(
        package.reference(), dct=DCTSettings.from_environment(os.environ), sign_key=None
    )
    registry = RegistryClient(world.registry.host, keychain=None, tls=tls)
    host_b_pushed: list[bool] = []

    def late_sign(written):
        if not host_b_pushed:
            # Host B pushes arm64 (and its index) while host A is about to sign.
            push_package(
                package,
                cache=cache,
                registry=registry,
                builder_for=builders("buildah"),
                platforms=[Platform("linux", "arm64")],
            )
            host_b_pushed.append(True)
        sign_items(plan, registry, package.reference(), list(written))
        return plan.kinds

    push_package(
        package,
        cache=cache,
        registry=registry,
        builder_for=builders("buildah"),
        platforms=[Platform("linux", "amd64")],
        sign=late_sign,
    )
    served = registry.head_manifest(package.reference().path, package.tag)
    assert served is not None
    index = json.loads(registry.get_manifest(package.reference().path, package.tag).data)
    assert sorted(
        m["platform"]["architecture"] for m in index["manifests"] if not is_attestation(m)
    ) == ["amd64", "arm64"]
    (dct,) = plan.backends
    assert isinstance(dct, DCTBackend)
    assert dct.signer.list_targets(package.reference().name)[package.tag].digest == served.digest
    registry.close()
