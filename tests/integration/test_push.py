"""lkpkg push against real Distribution registries, checked by skopeo and a Docker engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lkpkg.cache.layout import Cache
from tests.conftest import ROOT, copy_examples, git, lkpkg, run
from tests.fixtures.registry import RegistryInfo
from tests.integration.test_attest import is_attestation

pytestmark = pytest.mark.integration

TINY_ARCHES = ("amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le")


def make_tiny(repo: Path, name: str = "tiny", arches: tuple[str, ...] = ("amd64", "arm64")) -> Path:
    """A COPY-only package: builds in a second for any arch (no RUN, nothing to emulate)."""
    package = repo / name
    package.mkdir(parents=True)
    (package / "msg").write_text(f"{name}\n")
    (package / "Dockerfile").write_text("FROM scratch\nCOPY msg /msg\n")
    (package / "build.yml").write_text(f"image: {name}\narches: [{', '.join(arches)}]\n")
    if not (repo / ".git").exists():
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", name)
    return package


def skopeo_raw(info: RegistryInfo, ref: str) -> dict[str, Any]:
    args = ["skopeo", "inspect", "--raw"]
    args += ["--tls-verify=false"] if info.ca_cert is None else ["--cert-dir", str(info.cert_dir)]
    if info.username:
        args += ["--creds", f"{info.username}:{info.password}"]
    done = subprocess.run([*args, f"docker://{ref}"], capture_output=True, text=True, check=False)
    issuer = info.token_issuer
    assert done.returncode == 0, done.stderr + (issuer.diagnosis() if issuer else "")
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def env_for(info: RegistryInfo) -> dict[str, str]:
    return {"DOCKER_CONFIG": str(info.docker_config)}


def request_count(info: RegistryInfo) -> int:
    # Distribution logs one "response completed" line per request it answered.
    return info.log.read_text(errors="replace").count("response completed")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return tmp_path / "repo"


def test_push_both_arches_then_index_readable_by_skopeo(
    repo, tmp_path, registry_plain, buildah_store
):
    package = make_tiny(repo)
    org = f"{registry_plain.host}/{registry_plain.repo('push')}"
    cache = tmp_path / "cache"
    result = lkpkg(
        "push",
        "--notrust",
        "--cache",
        str(cache),
        "--org",
        org,
        "--platforms",
        "linux/amd64,linux/arm64",
        str(package),
    )
    tag = git(repo, "rev-parse", "HEAD:tiny")
    index = skopeo_raw(registry_plain, f"{org}/tiny:{tag}")
    assert sorted(
        m["platform"]["architecture"] for m in index["manifests"] if not is_attestation(m)
    ) == ["amd64", "arm64"]
    for arch in ("amd64", "arm64"):
        single = skopeo_raw(registry_plain, f"{org}/tiny:{tag}-{arch}")
        assert single["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert f"{org}/tiny:{tag}" in result.stdout
    # skopeo copies it out as a real client would.
    run(
        [
            "skopeo",
            "copy",
            "--src-tls-verify=false",
            f"docker://{org}/tiny:{tag}-arm64",
            f"oci:{tmp_path}/out:x",
        ]
    )


def test_repush_of_an_unchanged_package_sends_a_few_small_requests(
    repo, tmp_path, registry_plain, buildah_store
):
    package = make_tiny(repo)
    org = f"{registry_plain.host}/{registry_plain.repo('repush')}"
    cache = tmp_path / "cache"
    first_before = request_count(registry_plain)
    lkpkg(
        "push",
        "--notrust",
        "--cache",
        str(cache),
        "--org",
        org,
        "--platforms",
        "linux/amd64",
        str(package),
    )
    before = request_count(registry_plain)
    # The log must show the first push's requests, or counting the second proves nothing.
    assert before - first_before > 5, before - first_before
    again = lkpkg(
        "push",
        "--notrust",
        "--cache",
        str(cache),
        "--org",
        org,
        "--platforms",
        "linux/amd64",
        str(package),
    )
    sent = request_count(registry_plain) - before
    assert "unchanged" in again.stderr
    assert sent > 0
    # Ping, HEAD of the arch tag and of its attestations' tag; the index: one tag list and one
    # HEAD of the index, the arch tags just asked for being taken as read (5 measured; was 7
    # with those asked again, up to 14 with a HEAD per known arch).
    assert sent <= 5, sent


def test_seed_developer_flow_hash_override_and_dirty_rules(
    repo, tmp_path, registry_plain, buildah_store
):
    package = make_tiny(repo)
    org = f"{registry_plain.host}/{registry_plain.repo('wombat')}"
    cache = tmp_path / "cache"
    (package / "msg").write_text("changed\n")
    refused = lkpkg(
        "push", "--notrust", "--cache", str(cache), "--org", org, str(package), check=False
    )
    assert refused.returncode == 2
    assert "refusing to push a dirty package" in refused.stderr
    assert refused.stderr.count("\n") == 1
    # make ORG=wombat NOTRUST=1 HASH=foo push: the user named the tag, so it goes.
    lkpkg(
        "push",
        "--notrust",
        "--cache",
        str(cache),
        "--org",
        org,
        "--hash",
        "foo",
        "--platforms",
        "linux/amd64",
        str(package),
    )
    assert skopeo_raw(registry_plain, f"{org}/tiny:foo")["manifests"]
    assert skopeo_raw(registry_plain, f"{org}/tiny:foo-amd64")["layers"]


def test_releases_are_pushed_and_never_moved(repo, tmp_path, registry_plain, buildah_store):
    package = make_tiny(repo)
    org = f"{registry_plain.host}/{registry_plain.repo('rel')}"
    cache = tmp_path / "cache"
    git(repo, "tag", "v1.0")
    lkpkg(
        "push",
        "--notrust",
        "--cache",
        str(cache),
        "--org",
        org,
        "--platforms",
        "linux/amd64",
        str(package),
    )
    released = skopeo_raw(registry_plain, f"{org}/tiny:v1.0-amd64")
    assert released["layers"]
    assert skopeo_raw(registry_plain, f"{org}/tiny:v1.0")["manifests"]
    # New content under the same release name is refused, and v1.0 still names the old image.
    (package / "msg").write_text("other\n")
    git(repo, "commit", "-qam", "other")
    moved = lkpkg(
        "push",
        "--notrust",
        "--cache",
        str(cache),
        "--org",
        org,
        "--platforms",
        "linux/amd64",
        "--release",
        "v1.0",
        str(package),
        check=False,
    )
    assert moved.returncode == 2
    assert "refusing to move it" in moved.stderr
    assert skopeo_raw(registry_plain, f"{org}/tiny:v1.0-amd64") == released


def test_push_with_basic_auth_and_refused_credentials(
    repo, tmp_path, registry_basic, buildah_store
):
    package = make_tiny(repo)
    org = f"{registry_basic.host}/{registry_basic.repo('basic')}"
    cache = tmp_path / "cache"
    lkpkg(
        "push",
        "--notrust",
        "--cache",
        str(cache),
        "--org",
        org,
        "--platforms",
        "linux/amd64",
        str(package),
        env=env_for(registry_basic),
    )
    tag = git(repo, "rev-parse", "HEAD:tiny")
    assert skopeo_raw(registry_basic, f"{org}/tiny:{tag}")["manifests"]
    # A wrong password: exit 4, one line, naming where the credentials came from, not them.
    bad = tmp_path / "bad-config"
    run(["cp", "-r", str(registry_basic.docker_config), str(bad)])
    config = json.loads((bad / "config.json").read_text())
    wrong = "wrong-password-that-must-not-leak"
    import base64

    config["auths"][registry_basic.host]["auth"] = base64.b64encode(
        f"{registry_basic.username}:{wrong}".encode()
    ).decode()
    (bad / "config.json").write_text(json.dumps(config))
    refused = lkpkg(
        "push",
        "--notrust",
        "--cache",
        str(cache),
        "--org",
        org,
        "--hash",
        "bad",
        "--platforms",
        "linux/amd64",
        str(package),
        env={"DOCKER_CONFIG": str(bad)},
        check=False,
    )
    assert refused.returncode == 4, refused.stderr
    assert wrong not in refused.stderr
    assert "config.json" in refused.stderr
    # One line, and the hint on its own line.
    assert refused.stderr.count("\n") == 2, refused.stderr
    assert refused.stderr.splitlines()[1].startswith("lkpkg: hint: "), refused.stderr


def test_wrong_credentials_fail_the_push_before_any_blob_is_sent(
    repo, tmp_path, registry_basic, buildah_store
):
    package = make_tiny(repo)
    repository = registry_basic.repo("credcheck")
    org = f"{registry_basic.host}/{repository}"
    bad = tmp_path / "bad-config"
    run(["cp", "-r", str(registry_basic.docker_config), str(bad)])
    config = json.loads((bad / "config.json").read_text())
    wrong = "another-wrong-password"
    import base64

    config["auths"][registry_basic.host]["auth"] = base64.b64encode(
        f"{registry_basic.username}:{wrong}".encode()
    ).decode()
    (bad / "config.json").write_text(json.dumps(config))
    refused = lkpkg(
        "push",
        "--notrust",
        "--cache",
        str(tmp_path / "cache"),
        "--org",
        org,
        "--platforms",
        "linux/amd64",
        str(package),
        env={"DOCKER_CONFIG": str(bad)},
        check=False,
    )
    assert refused.returncode == 4, refused.stderr
    lines = refused.stderr.splitlines()
    assert len(lines) == 2, refused.stderr
    assert f"push to {org}/tiny refused" in lines[0], refused.stderr
    assert lines[1].startswith("lkpkg: hint: ") and "docker login" in lines[1]
    assert wrong not in refused.stderr
    # Refused before anything was built or sent: the registry holds nothing of it.
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("index.json"))
    stored = registry_basic.storage / "docker" / "registry" / "v2" / "repositories" / repository
    assert not stored.exists()


def test_push_through_a_token_service(repo, tmp_path, registry_token, buildah_store):
    package = make_tiny(repo)
    org = f"{registry_token.host}/{registry_token.repo('token')}"
    lkpkg(
        "push",
        "--notrust",
        "--cache",
        str(tmp_path / "cache"),
        "--org",
        org,
        "--platforms",
        "linux/amd64,linux/arm64",
        str(package),
        env=env_for(registry_token),
    )
    tag = git(repo, "rev-parse", "HEAD:tiny")
    index = skopeo_raw(registry_token, f"{org}/tiny:{tag}")
    assert len([m for m in index["manifests"] if not is_attestation(m)]) == 2


def test_registry_down_is_exit_3_and_one_line(repo, tmp_path, buildah_store):
    package = make_tiny(repo)
    result = lkpkg(
        "push",
        "--notrust",
        "--cache",
        str(tmp_path / "cache"),
        "--org",
        "127.0.0.1:9/wombat",
        "--platforms",
        "linux/amd64",
        str(package),
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert "127.0.0.1:9" in result.stderr and "unreachable" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("lkpkg: error:")
    assert "Traceback" not in result.stderr


def test_manifest_rebuilds_the_index_from_arch_tags(repo, tmp_path, registry_plain, buildah_store):
    package = make_tiny(repo)
    org = f"{registry_plain.host}/{registry_plain.repo('mf')}"
    lkpkg(
        "push",
        "--notrust",
        "--cache",
        str(tmp_path / "cache"),
        "--org",
        org,
        "--hash",
        "h1",
        "--platforms",
        "linux/amd64,linux/arm64",
        str(package),
    )
    # Damage the index as a stale host might: h1 now names the amd64 image alone.
    run(
        [
            "skopeo",
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--preserve-digests",
            f"docker://{org}/tiny:h1-amd64",
            f"docker://{org}/tiny:h1",
        ]
    )
    assert "manifests" not in skopeo_raw(registry_plain, f"{org}/tiny:h1")
    out = lkpkg("manifest", f"{org}/tiny:h1").stdout
    assert f"{org}/tiny:h1 sha256:" in out
    index = skopeo_raw(registry_plain, f"{org}/tiny:h1")
    assert sorted(
        m["platform"]["architecture"] for m in index["manifests"] if not is_attestation(m)
    ) == ["amd64", "arm64"]


def test_pulled_and_run_by_a_docker_engine(
    tmp_path, registry_plain, cache_dir, buildah_store, docker_engine
):
    repo = copy_examples(tmp_path / "repo", "hello")
    org = f"{registry_plain.host}/{registry_plain.repo('run')}"
    lkpkg(
        "push",
        "--notrust",
        "--cache",
        str(cache_dir),
        "--org",
        org,
        "--platforms",
        "linux/amd64,linux/arm64",
        str(repo / "hello"),
    )
    tag = git(repo, "rev-parse", "HEAD:hello")
    env = {**os.environ, "DOCKER_HOST": docker_engine}
    out = subprocess.run(
        ["/usr/bin/docker", "run", "--rm", "--network=none", f"{org}/hello:{tag}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "hello from lkpkg"


PARALLEL_SCRIPT = """
import sys
from lkpkg.cache.layout import Cache
from lkpkg.oci.model import Descriptor
cache = Cache(__import__("pathlib").Path(sys.argv[1]))
with cache.lock():
    for ref, desc in zip(sys.argv[2::2], sys.argv[3::2]):
        cache.set_ref(ref, Descriptor.from_json(__import__("json").loads(desc)))
"""


def test_eight_hosts_pushing_eight_arches_at_once_end_with_all_in_the_index(
    repo, tmp_path, registry_plain, buildah_store
):
    package = make_tiny(repo, arches=TINY_ARCHES)
    org = f"{registry_plain.host}/{registry_plain.repo('par')}"
    template = tmp_path / "template"
    # One image per arch, built once; each round, each "host" has its arch under that round's tag.
    lkpkg(
        "build",
        "--cache",
        str(template),
        "--org",
        org,
        "--hash",
        "t",
        "--platforms",
        ",".join(f"linux/{a}" for a in TINY_ARCHES),
        str(package),
    )
    built = Cache(template)
    images = {arch: built.resolve(f"{org}/tiny:t-{arch}") for arch in TINY_ARCHES}
    # The build's index also holds each arch's attestations; each host has it under the round's
    # tag, so each pushes its own arch's attestations beside its image.
    with_attestations = built.resolve(f"{org}/tiny:t")
    assert with_attestations is not None
    caches = {}
    for arch in TINY_ARCHES:
        caches[arch] = tmp_path / f"host-{arch}"
        run(["cp", "-al", str(template), str(caches[arch])])
    lkpkg_exe = str(ROOT / ".venv" / "bin" / "lkpkg")
    for round_number in range(20):
        tag = f"round{round_number}"
        for arch in TINY_ARCHES:
            descriptor = images[arch]
            assert descriptor is not None
            run(
                [
                    sys.executable,
                    "-c",
                    PARALLEL_SCRIPT,
                    str(caches[arch]),
                    f"{org}/tiny:{tag}-{arch}",
                    json.dumps(descriptor.to_json()),
                    f"{org}/tiny:{tag}",
                    json.dumps(with_attestations.to_json()),
                ]
            )
        procs = [
            subprocess.Popen(
                [
                    lkpkg_exe,
                    "push",
                    "--notrust",
                    "--cache",
                    str(caches[arch]),
                    "--org",
                    org,
                    "--hash",
                    tag,
                    "--platforms",
                    f"linux/{arch}",
                    str(package),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for arch in TINY_ARCHES
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
        index = skopeo_raw(registry_plain, f"{org}/tiny:{tag}")
        arches = sorted(
            m["platform"]["architecture"] for m in index["manifests"] if not is_attestation(m)
        )
        assert arches == sorted(TINY_ARCHES), (round_number, arches)
        # Every arch is paired with its own attestations, and nothing else is.
        attested = sorted(
            m["annotations"]["vnd.docker.reference.digest"]
            for m in index["manifests"]
            if is_attestation(m)
        )
        assert attested == sorted(
            m["digest"] for m in index["manifests"] if not is_attestation(m)
        ), round_number


def test_amd64_here_and_arm64_on_another_engine_end_in_one_index(
    tmp_path, registry_plain, cache_dir, buildah_store, docker_engine
):
    repo = copy_examples(tmp_path / "repo", "hello")
    org = f"{registry_plain.host}/{registry_plain.repo('remote')}"
    result = lkpkg(
        "push",
        "--notrust",
        "--cache",
        str(cache_dir),
        "--org",
        org,
        "--platforms",
        "linux/amd64,linux/arm64",
        "--builder-host",
        f"linux/arm64={docker_engine}",
        str(repo / "hello"),
    )
    assert f"building with docker@{docker_engine}" in result.stderr
    assert "-amd64: building with buildah" in result.stderr
    tag = git(repo, "rev-parse", "HEAD:hello")
    index = skopeo_raw(registry_plain, f"{org}/hello:{tag}")
    assert sorted(
        m["platform"]["architecture"] for m in index["manifests"] if not is_attestation(m)
    ) == ["amd64", "arm64"]
    # The arm64 image was built by (and stays in) the other engine's store.
    inspected = subprocess.run(
        [
            "/usr/bin/docker",
            "image",
            "inspect",
            "--format",
            "{{.Architecture}}",
            f"{org}/hello:{tag}-arm64",
        ],
        env={**os.environ, "DOCKER_HOST": docker_engine},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert inspected == "arm64"


def test_a_layer_already_in_another_repository_is_mounted_not_uploaded(
    repo, tmp_path, registry_plain, buildah_store
):
    one = make_tiny(repo, name="first")
    two = make_tiny(repo, name="second")
    # Same bytes in both images' only layer: the second push can link it from the first.
    (two / "msg").write_text("first\n")
    git(repo, "commit", "-qam", "same layer")
    org = f"{registry_plain.host}/{registry_plain.repo('mount')}"
    log_before = registry_plain.log.read_text(errors="replace")
    lkpkg(
        "push",
        "--notrust",
        "--cache",
        str(tmp_path / "cache"),
        "--org",
        org,
        "--platforms",
        "linux/amd64",
        str(one),
        str(two),
    )
    new_lines = registry_plain.log.read_text(errors="replace")[len(log_before) :]
    mounts = [
        line for line in new_lines.splitlines() if "mount=sha256" in line and "second" in line
    ]
    assert mounts, "the shared layer was uploaded again instead of mounted"
    assert skopeo_raw(
        registry_plain, f"{org}/second:{git(repo, 'rev-parse', 'HEAD:second')}-amd64"
    )["layers"]
