"""End-to-end builds with the real builders into a real cache, checked by independent tools."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import copy_examples, git, lkpkg, run

pytestmark = pytest.mark.integration


def index_json(cache: Path) -> dict[str, str]:
    doc = json.loads((cache / "index.json").read_text())
    return {
        m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in doc["manifests"]
    }


def blob(cache: Path, digest: str) -> bytes:
    return (cache / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def image_config(cache: Path, manifest_digest: str) -> dict[str, object]:
    manifest = json.loads(blob(cache, manifest_digest))
    return json.loads(blob(cache, manifest["config"]["digest"]))  # type: ignore[no-any-return]


def platform_archs(index: dict[str, Any]) -> list[str]:
    """The architectures of an index's platform images; attestation manifests are left out
    (BuildKit's layout: platform unknown/unknown, one per image, naming its digest)."""
    images = [m for m in index["manifests"] if m["platform"]["architecture"] != "unknown"]
    attestations = [m for m in index["manifests"] if m["platform"]["architecture"] == "unknown"]
    assert sorted(a["annotations"]["vnd.docker.reference.digest"] for a in attestations) == sorted(
        m["digest"] for m in images
    )
    return sorted(m["platform"]["architecture"] for m in images)


def layer_files(cache: Path, manifest_digest: str) -> dict[str, bytes]:
    manifest = json.loads(blob(cache, manifest_digest))
    files: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        path = cache / "blobs" / "sha256" / layer["digest"].split(":", 1)[1]
        with tarfile.open(path, "r:*") as archive:
            for member in archive.getmembers():
                if member.isfile():
                    data = archive.extractfile(member)
                    assert data is not None
                    files[member.name.lstrip("./")] = data.read()
    return files


def assert_image_valid(cache: Path, digest: str) -> None:
    """oci-image-tool validates one image manifest of the cache, in a layout of its own that
    shares the cache's blobs (its `--ref name=` filter reports "not unique" on a full cache)."""
    view = cache.parent / f"view-{digest.split(':')[1][:12]}"
    view.mkdir(exist_ok=True)
    (view / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    if not (view / "blobs").exists():  # hard links: the tool refuses a symlinked blobs dir
        run(["cp", "-al", str(cache / "blobs"), str(view / "blobs")])
    size = (cache / "blobs" / "sha256" / digest.split(":")[1]).stat().st_size
    entry = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "size": size,
        "annotations": {"org.opencontainers.image.ref.name": "image"},
    }
    (view / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    validated = run(["oci-image-tool", "validate", "--type", "image", str(view)]).stdout
    assert "Validation succeeded" in validated


def assert_checkers_accept(cache: Path, ref: str) -> None:
    """oci-image-tool validates the layout and every arch image of `ref`; umoci lists `ref`.

    The index also holds BuildKit-style attestation manifests whose layers are
    `application/vnd.in-toto+json`; this oci-image-tool (1.0.0-rc1) rejects that media type,
    though the image-spec says an unknown one must not be an error. So the whole layout may
    fail on that alone, and each arch image is validated in full on its own.
    """
    whole = subprocess.run(
        ["oci-image-tool", "validate", "--type", "image", str(cache)],
        capture_output=True,
        text=True,
        check=False,
    )
    if whole.returncode != 0:
        assert "1 errors detected" in whole.stderr, whole.stderr
        assert 'invalid descriptor MediaType \\"application/vnd.in-toto+json\\"' in whole.stderr
    else:
        assert "Validation succeeded" in whole.stdout
    refs = index_json(cache)
    arch_refs = [name for name in refs if name.startswith(f"{ref}-")]
    assert arch_refs
    for name in arch_refs:
        assert_image_valid(cache, refs[name])
    assert ref in run(["umoci", "ls", "--layout", str(cache)]).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_examples(tmp_path / "repo")


def tree(repo: Path, name: str) -> str:
    return git(repo, "rev-parse", f"HEAD:{name}")


def test_buildah_builds_both_arches_into_a_linuxkit_shaped_cache(repo, cache_dir, buildah_store):
    result = lkpkg(
        "build",
        "--builder",
        "buildah",
        "--cache",
        str(cache_dir),
        "--org",
        "wombat",
        "--platforms",
        "linux/amd64,linux/arm64",
        str(repo / "hello"),
    )
    tag = tree(repo, "hello")
    refs = index_json(cache_dir)
    index_ref = f"docker.io/wombat/hello:{tag}"
    assert f"{index_ref}-amd64" in refs and f"{index_ref}-arm64" in refs
    index = json.loads(blob(cache_dir, refs[index_ref]))
    assert platform_archs(index) == ["amd64", "arm64"]
    assert f"wombat/hello:{tag}" in result.stdout

    # Multi-stage: the final image holds the static binary alone and is small.
    for arch in ("amd64", "arm64"):
        files = layer_files(cache_dir, refs[f"{index_ref}-{arch}"])
        assert list(files) == ["hello"]
        assert len(files["hello"]) < 1_000_000
        assert image_config(cache_dir, refs[f"{index_ref}-{arch}"])["architecture"] == arch

    # Independent checkers accept the layout.
    assert_checkers_accept(cache_dir, f"docker.io/wombat/hello:{tag}")
    inspected = json.loads(
        run(["skopeo", "inspect", "--raw", f"oci:{cache_dir}:{index_ref}"]).stdout
    )
    # Each arch image, then one attestation manifest (SBOM, provenance) per arch image.
    assert len(inspected["manifests"]) == 4
    assert platform_archs(inspected) == ["amd64", "arm64"]

    # The seed's "local image" is the cache itself (linuxkit's cache, which YAML files use):
    # any OCI tool runs ORG/IMAGE:HASH-ARCH from it by reference name. buildah writes its
    # output straight into the layout lkpkg imports, so the builder's store keeps no copy.
    conf = cache_dir.with_name(cache_dir.name + ".buildah") / "storage.conf"
    store = {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf)}
    listed = run(["buildah", "images", "--format", "{{.Name}}:{{.Tag}}"], env=store).stdout
    assert "wombat/hello" not in listed
    for arch in ("amd64", "arm64"):
        local = f"oci:{cache_dir}:docker.io/wombat/hello:{tag}-{arch}"
        ctr = run(["buildah", "from", "--quiet", local], env=store).stdout.strip()
        try:
            out = run(["buildah", "run", "--isolation", "chroot", ctr, "/hello"], env=store).stdout
        finally:
            run(["buildah", "rm", ctr], env=store)
        assert out.strip() == "hello from lkpkg"


def test_arch_neutral_content_still_gets_each_arch(repo, cache_dir, buildah_store):
    # motd's final image is the same text file on every arch: a builder cache that ignores the
    # platform would hand back the amd64 image for arm64.
    lkpkg(
        "build",
        "--cache",
        str(cache_dir),
        "--platforms",
        "linux/amd64,linux/arm64",
        str(repo / "motd"),
    )
    refs = index_json(cache_dir)
    combined = hashlib.sha1((tree(repo, "motd") + tree(repo, "shared")).encode()).hexdigest()
    for arch in ("amd64", "arm64"):
        config = image_config(cache_dir, refs[f"docker.io/examples/motd:{combined}-{arch}"])
        assert config["architecture"] == arch


def test_second_build_does_not_call_the_builder(repo, cache_dir, buildah_store, tmp_path):
    lkpkg(
        "build",
        "--cache",
        str(cache_dir),
        "--org",
        "wombat",
        "--platforms",
        "linux/amd64",
        str(repo / "hello"),
    )
    # Without any builder on PATH a builder call would fail: success proves it was skipped.
    bare_path = tmp_path / "bin"
    bare_path.mkdir()
    for tool in ("git",):
        (bare_path / tool).symlink_to(str(shutil.which(tool)))
    again = lkpkg(
        "build",
        "--cache",
        str(cache_dir),
        "--org",
        "wombat",
        "--platforms",
        "linux/amd64",
        str(repo / "hello"),
        env={"PATH": str(bare_path)},
    )
    assert "in cache, not rebuilt" in again.stderr
    assert "built=-" in again.stdout


def test_buildah_builds_are_reproducible(repo, base_cache, tmp_path, buildah_store):
    digests = []
    for attempt in ("one", "two"):
        cache = tmp_path / attempt
        run(["cp", "-al", str(base_cache), str(cache)])
        lkpkg(
            "build",
            "--force",
            "--cache",
            str(cache),
            "--org",
            "wombat",
            "--platforms",
            "linux/amd64",
            str(repo / "greeter"),
        )
        digests.append(index_json(cache)[f"docker.io/wombat/greeter:{tree(repo, 'greeter')}-amd64"])
    assert digests[0] == digests[1]


def test_labels_carry_source_revision_and_runtime_config(repo, cache_dir, buildah_store):
    lkpkg("build", "--cache", str(cache_dir), "--platforms", "linux/amd64", str(repo / "greeter"))
    ref = f"docker.io/examples/greeter:{tree(repo, 'greeter')}-amd64"
    config = image_config(cache_dir, index_json(cache_dir)[ref])
    labels = config["config"]["Labels"]  # type: ignore[index]
    assert labels["org.opencontainers.image.revision"] == git(repo, "rev-parse", "HEAD")
    assert labels["org.opencontainers.image.source"]
    runtime = json.loads(labels["org.mobyproject.config"])
    assert runtime["capabilities"] == ["CAP_NET_BIND_SERVICE"]
    assert runtime["runtime"] == {"mkdir": ["/var/run/greeter"]}


def test_dirty_package_has_no_revision_label_and_a_dirty_tag(repo, cache_dir, buildah_store):
    (repo / "greeter" / "NOTES").write_text("uncommitted\n")
    shown = lkpkg("show-tag", str(repo / "greeter")).stdout.strip()
    assert shown.endswith("-dirty")
    lkpkg("build", "--cache", str(cache_dir), "--platforms", "linux/amd64", str(repo / "greeter"))
    ref = "docker.io/" + shown + "-amd64"
    labels = image_config(cache_dir, index_json(cache_dir)[ref])["config"]["Labels"]  # type: ignore[index]
    assert "org.opencontainers.image.revision" not in labels


def test_extra_sources_and_build_args(repo, cache_dir, buildah_store):
    lkpkg("build", "--cache", str(cache_dir), "--platforms", "linux/amd64", str(repo / "motd"))
    combined = hashlib.sha1((tree(repo, "motd") + tree(repo, "shared")).encode()).hexdigest()
    ref = f"docker.io/examples/motd:{combined}-amd64"
    files = layer_files(cache_dir, index_json(cache_dir)[ref])
    assert (
        files["etc/motd"].decode()
        == "Welcome to a LinuxKit system built with lkpkg.\n(built by lkpkg)\n"
    )


def test_failed_build_reports_its_tail_and_leaves_the_cache_alone(repo, cache_dir, buildah_store):
    (repo / "hello" / "Dockerfile").write_text(
        "FROM localhost/debian:bookworm\nRUN echo the-compiler-broke && false\n"
    )
    before = (cache_dir / "index.json").read_bytes()
    blobs_before = set(os.listdir(cache_dir / "blobs" / "sha256"))
    result = lkpkg(
        "build",
        "--cache",
        str(cache_dir),
        "--platforms",
        "linux/amd64",
        str(repo / "hello"),
        check=False,
    )
    assert result.returncode == 1
    assert "the-compiler-broke" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("lkpkg: error: buildah build for linux/amd64 failed")
    assert "Traceback" not in result.stderr
    assert (cache_dir / "index.json").read_bytes() == before
    assert set(os.listdir(cache_dir / "blobs" / "sha256")) == blobs_before


def test_build_runs_without_network_unless_asked(repo, cache_dir, buildah_store):
    (repo / "hello" / "Dockerfile").write_text(
        "FROM localhost/debian:bookworm\nRUN (getent hosts deb.debian.org || true) > /resolved; "
        "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' > /ifaces\n"
    )
    git(repo, "commit", "-qam", "probe network")
    lkpkg("build", "--cache", str(cache_dir), "--platforms", "linux/amd64", str(repo / "hello"))
    ref = f"docker.io/examples/hello:{tree(repo, 'hello')}-amd64"
    files = layer_files(cache_dir, index_json(cache_dir)[ref])
    assert files["ifaces"].decode().split() == ["lo"]
    assert files["resolved"] == b""


def test_docker_builder_builds_both_arches_and_runs(repo, cache_dir, docker_engine):
    env = {"DOCKER_HOST": docker_engine}
    lkpkg(
        "build",
        "--builder",
        "docker",
        "--cache",
        str(cache_dir),
        "--org",
        "wombat",
        "--platforms",
        "linux/amd64,linux/arm64",
        str(repo / "hello"),
        str(repo / "greeter"),
        str(repo / "motd"),
        env=env,
    )
    tag = tree(repo, "hello")
    refs = index_json(cache_dir)
    index = json.loads(blob(cache_dir, refs[f"docker.io/wombat/hello:{tag}"]))
    assert platform_archs(index) == ["amd64", "arm64"]
    for arch in ("amd64", "arm64"):
        files = layer_files(cache_dir, refs[f"docker.io/wombat/hello:{tag}-{arch}"])
        assert list(files) == ["hello"]
    assert_checkers_accept(cache_dir, f"docker.io/wombat/hello:{tag}")
    # The engine's own store holds the arch image: docker run works on it.
    out = subprocess.run(
        ["/usr/bin/docker", "run", "--rm", "--network=none", f"wombat/hello:{tag}-amd64"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "hello from lkpkg"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "image: hello\narch: [amd64]\n",
            "build.yml:2: unknown key 'arch' (did you mean 'arches'?)",
        ),
        ("org: x\n", "build.yml:1: missing required key 'image'"),
        ("image: Hello\n", "build.yml:1: invalid image name 'Hello'"),
    ],
)
def test_bad_build_yml_is_one_line_exit_2_and_writes_nothing(repo, tmp_path, content, message):
    (repo / "hello" / "build.yml").write_text(content)
    cache = tmp_path / "fresh-cache"
    result = lkpkg("build", "--cache", str(cache), str(repo / "hello"), check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert message in result.stderr
    assert not cache.exists()


def test_bad_org_is_exit_2(repo):
    result = lkpkg("show-tag", "--org", "Wombat", str(repo / "hello"), check=False)
    assert result.returncode == 2
    assert "invalid org 'Wombat'" in result.stderr
    assert result.stderr.count("\n") == 1


def test_show_tag_prints_the_tree_id_in_argument_order(repo):
    out = lkpkg(
        "show-tag", "--org", "wombat", str(repo / "motd"), str(repo / "hello")
    ).stdout.split()
    combined = hashlib.sha1((tree(repo, "motd") + tree(repo, "shared")).encode()).hexdigest()
    assert out == [f"wombat/motd:{combined}", f"wombat/hello:{tree(repo, 'hello')}"]
    out = lkpkg("show-tag", "--org", "wombat", "--hash", "foo", str(repo / "hello")).stdout.split()
    assert out == ["wombat/hello:foo"]


def test_from_a_sibling_package_resolves_offline_through_lkt_build_args(
    repo, cache_dir, buildah_store
):
    lkpkg(
        "build",
        "--cache",
        str(cache_dir),
        "--platforms",
        "linux/amd64,linux/arm64",
        str(repo / "hello"),
    )
    sibling = repo / "wrapper"
    sibling.mkdir()
    (sibling / "build.yml").write_text(
        "image: wrapper\norg: examples\nbuildArgs:\n  - HELLO=@lkt:pkg:../hello\n"
    )
    (sibling / "Dockerfile").write_text(
        "ARG HELLO\nFROM ${HELLO}\nCOPY build.yml /etc/wrapper.yml\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "wrapper")
    lkpkg(
        "build", "--cache", str(cache_dir), "--platforms", "linux/amd64,linux/arm64", str(sibling)
    )
    refs = index_json(cache_dir)
    for arch in ("amd64", "arm64"):
        files = layer_files(
            cache_dir, refs[f"docker.io/examples/wrapper:{tree(repo, 'wrapper')}-{arch}"]
        )
        assert set(files) == {"hello", "etc/wrapper.yml"}
        assert (
            image_config(
                cache_dir, refs[f"docker.io/examples/wrapper:{tree(repo, 'wrapper')}-{arch}"]
            )["architecture"]
            == arch
        )


def test_cache_ls_lists_references_and_digests(repo, cache_dir, buildah_store):
    lkpkg("build", "--cache", str(cache_dir), "--platforms", "linux/amd64", str(repo / "hello"))
    listed = dict(
        line.split("\t")
        for line in lkpkg("cache", "ls", "--cache", str(cache_dir)).stdout.splitlines()
    )
    assert listed == index_json(cache_dir)
    assert f"docker.io/examples/hello:{tree(repo, 'hello')}-amd64" in listed
    assert "localhost/debian:bookworm" in listed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "--platforms", "linux/"], "--platforms:"),
        (["build", "--hash", "no/slashes"], "invalid --hash 'no/slashes'"),
        (["build", "--builder", "podman"], "Invalid value for '--builder'"),
        (["show-tag", "--org", "localhost:5000/Wombat"], "invalid org"),
    ],
)
def test_bad_flags_are_one_line_exit_2(repo, tmp_path, args, message):
    cache = tmp_path / "fresh-cache"
    result = (
        lkpkg(*args, "--cache", str(cache), str(repo / "hello"), check=False)
        if args[0] == "build"
        else lkpkg(*args, str(repo / "hello"), check=False)
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert not cache.exists()


def test_missing_package_dir_and_bad_import_are_exit_2(tmp_path):
    result = lkpkg("show-tag", str(tmp_path / "nope"), check=False)
    assert result.returncode == 2 and "no such package directory" in result.stderr
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive" * 100)
    cache = tmp_path / "cache"
    result = lkpkg("import", str(junk), "localhost/junk:1", "--cache", str(cache), check=False)
    assert result.returncode == 2 and "not a tar archive" in result.stderr
    assert result.stderr.count("\n") == 1
    result = lkpkg("import", str(junk), "Not A Ref", "--cache", str(cache), check=False)
    assert result.returncode == 2 and "invalid reference" in result.stderr
    assert not (cache / "index.json").exists()


def test_docker_config_without_config_json_does_not_break_buildah(
    repo, cache_dir, buildah_store, tmp_path
):
    # DOCKER_CONFIG pointing at a fresh directory (as for a trust-only setup) is normal.
    fresh = tmp_path / "docker-config"
    fresh.mkdir()
    lkpkg(
        "build",
        "--cache",
        str(cache_dir),
        "--platforms",
        "linux/amd64",
        str(repo / "hello"),
        env={"DOCKER_CONFIG": str(fresh)},
    )
    assert f"docker.io/examples/hello:{tree(repo, 'hello')}-amd64" in index_json(cache_dir)


def test_org_and_hash_overrides_reach_lkt_dependencies_in_the_same_run(
    tmp_path, cache_dir, buildah_store
):
    # make ORG=wombat NOTRUST=1 tag over a tree: toolbox builds FROM base through
    # @lkt:pkg:../base, and must find base under the org and hash this run gave it.
    repo = copy_examples(tmp_path / "repo", "base", "toolbox")
    result = lkpkg(
        "build",
        "--cache",
        str(cache_dir),
        "--org",
        "wombat",
        "--hash",
        "dev",
        "--platforms",
        "linux/amd64",
        str(repo / "toolbox"),
        str(repo / "base"),
    )
    refs = index_json(cache_dir)
    assert "docker.io/wombat/base:dev-amd64" in refs
    assert "docker.io/wombat/toolbox:dev-amd64" in refs
    assert "wombat/toolbox:dev" in result.stdout
