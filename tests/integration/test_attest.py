"""SBOM and provenance attestations of real builds, read back from the cache by other tools."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from tests.conftest import BASE_REF, copy_examples, git, lkpkg, run
from tests.integration.test_build import assert_image_valid

pytestmark = pytest.mark.integration

SPDX = "https://spdx.dev/Document"
SLSA = "https://slsa.dev/provenance/v1"

# Installs a package made on the spot (no network needed) and removes another, so dpkg's
# status holds an epoch version and a package that is no longer installed.
DEBBY_DOCKERFILE = """\
FROM localhost/debian:bookworm
RUN set -e; for p in lkpkg-demo lkpkg-gone; do \\
      mkdir -p /tmp/$p/DEBIAN /tmp/$p/usr/share/$p; \\
      printf '%s\\n' "Package: $p" "Version: 1:2.3-4" "Architecture: all" \\
        "Maintainer: T <t@example.com>" "Description: demo" > /tmp/$p/DEBIAN/control; \\
      echo hi > /tmp/$p/usr/share/$p/hi; \\
      dpkg-deb --root-owner-group --build /tmp/$p /tmp/$p.deb >/dev/null; \\
      dpkg -i /tmp/$p.deb >/dev/null; \\
    done; \\
    dpkg --purge lkpkg-gone >/dev/null; \\
    rm -rf /tmp/lkpkg-* /var/log/dpkg.log /var/log/alternatives.log /var/cache/ldconfig
"""


def index_refs(cache: Path) -> dict[str, str]:
    doc = json.loads((cache / "index.json").read_text())
    return {
        m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in doc["manifests"]
    }


def blob(cache: Path, digest: str) -> bytes:
    return (cache / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def attestations(cache: Path, index_digest: str, image_digest: str) -> dict[str, bytes]:
    """predicate type -> statement bytes, found the way linuxkit's cache reader finds them."""
    index = json.loads(blob(cache, index_digest))
    found = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("vnd.docker.reference.digest") == image_digest
    ]
    assert len(found) == 1
    entry = found[0]
    assert entry["platform"] == {"os": "unknown", "architecture": "unknown"}
    assert entry["annotations"]["vnd.docker.reference.type"] == "attestation-manifest"
    manifest = json.loads(blob(cache, entry["digest"]))
    out = {}
    for layer in manifest["layers"]:
        assert layer["mediaType"] == "application/vnd.in-toto+json"
        data = blob(cache, layer["digest"])
        statement = json.loads(data)
        assert statement["predicateType"] == layer["annotations"]["in-toto.io/predicate-type"]
        assert statement["subject"][0]["digest"] == {"sha256": image_digest.split(":")[1]}
        out[statement["predicateType"]] = data
    return out


def dpkg_status_from_layers(cache: Path, image_digest: str) -> dict[str, str]:
    """Installed packages, read straight from the last layer holding dpkg's status."""
    manifest = json.loads(blob(cache, image_digest))
    status = None
    for layer in manifest["layers"]:
        with tarfile.open(cache / "blobs" / "sha256" / layer["digest"].split(":")[1]) as archive:
            for member in archive.getmembers():
                if member.name.lstrip("./") == "var/lib/dpkg/status":
                    handle = archive.extractfile(member)
                    assert handle is not None
                    status = handle.read().decode()
    assert status is not None
    installed = {}
    for stanza in status.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Status", "").endswith(" installed"):
            installed[fields["Package"]] = fields["Version"]
    return installed


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = copy_examples(tmp_path / "repo", "hello")
    debby = repo / "debby"
    debby.mkdir()
    (debby / "Dockerfile").write_text(DEBBY_DOCKERFILE)
    (debby / "build.yml").write_text("image: debby\norg: wombat\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "debby")
    return repo


def test_sbom_and_provenance_of_a_debian_based_package(repo, base_cache, tmp_path, buildah_store):
    tree = git(repo, "rev-parse", "HEAD:debby")
    commit = git(repo, "rev-parse", "HEAD")
    ref = f"docker.io/wombat/debby:{tree}"
    sboms = []
    for attempt, flags in (("one", ()), ("two", ("--provenance=false",))):
        cache = tmp_path / attempt
        run(["cp", "-al", str(base_cache), str(cache)])
        lkpkg(
            "build",
            "--force",
            "--cache",
            str(cache),
            "--platforms",
            "linux/amd64",
            *flags,
            str(repo / "debby"),
        )
        refs = index_refs(cache)
        found = attestations(cache, refs[ref], refs[f"{ref}-amd64"])
        sboms.append(found[SPDX])
        if attempt == "two":
            assert list(found) == [SPDX]  # --provenance=false
            continue
        # Provenance names the commit, the package and the base by digest.
        provenance = json.loads(found[SLSA])["predicate"]
        source = provenance["buildDefinition"]["externalParameters"]["source"]
        assert (source["commit"], source["path"], source["treeHash"], source["dirty"]) == (
            commit,
            "debby",
            tree,
            False,
        )
        base_index = json.loads(blob(base_cache, index_refs(base_cache)[f"{BASE_REF}"]))
        base_amd64 = next(
            m["digest"] for m in base_index["manifests"] if m["platform"]["architecture"] == "amd64"
        )
        deps = provenance["buildDefinition"]["resolvedDependencies"]
        assert {"gitCommit": commit} in [d["digest"] for d in deps]
        assert {"sha256": base_amd64.split(":")[1]} in [d["digest"] for d in deps]
        dockerfile = provenance["buildDefinition"]["externalParameters"]["dockerfile"]
        assert (
            dockerfile["digest"]["sha256"]
            == hashlib.sha256((repo / "debby" / "Dockerfile").read_bytes()).hexdigest()
        )
        assert provenance["runDetails"]["builder"]["id"].endswith("buildah")
        # The builder's version, as buildah itself reports it (asked independently here).
        buildah_version = json.loads(run(["buildah", "version", "--json"]).stdout)["version"]
        assert provenance["runDetails"]["builder"]["version"]["buildah"] == buildah_version

        # The SBOM lists exactly what dpkg's status says is installed, with its version.
        document = json.loads(found[SPDX])["predicate"]
        listed = {
            p["name"]: p["versionInfo"]
            for p in document["packages"]
            if any(r["referenceLocator"].startswith("pkg:deb/") for r in p.get("externalRefs", []))
        }
        expected = dpkg_status_from_layers(cache, refs[f"{ref}-amd64"])
        assert listed == expected
        assert expected["lkpkg-demo"] == "1:2.3-4" and "lkpkg-gone" not in listed
        assert "gcc" in listed  # from the base image's layer
        path = tmp_path / "sbom.spdx.json"
        path.write_text(json.dumps(document))
        assert [
            m.validation_message for m in validate_full_spdx_document(parse_file(str(path)))
        ] == []

        # Independent readers see the attestation manifest beside the image.
        raw = json.loads(run(["skopeo", "inspect", "--raw", f"oci:{cache}:{ref}"]).stdout)
        assert sorted(m["platform"]["architecture"] for m in raw["manifests"]) == [
            "amd64",
            "unknown",
        ]
        # oci-image-tool 1.0.0-rc1 rejects the in-toto layer type (see test_build), so it
        # judges the image the attestation names.
        assert_image_valid(cache, refs[f"{ref}-amd64"])
    # Same commit, same image: the same SBOM, byte for byte.
    assert json.loads(sboms[0])["predicate"] == json.loads(sboms[1])["predicate"]
    assert sboms[0] == sboms[1]


LINUXKIT = Path("/opt/linuxkit/bin/linuxkit")


def test_static_binary_is_named_and_linuxkit_build_merges_the_sbom(
    repo, cache_dir, buildah_store, tmp_path
):
    tree = git(repo, "rev-parse", "HEAD:hello")
    ref = f"docker.io/wombat/hello:{tree}"
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
    refs = index_refs(cache_dir)
    # `lkpkg sbom` prints the one platform's document; it names the static binary by checksum.
    printed = json.loads(lkpkg("sbom", "--cache", str(cache_dir), f"wombat/hello:{tree}").stdout)
    manifest = json.loads(blob(cache_dir, refs[f"{ref}-amd64"]))
    with tarfile.open(
        cache_dir / "blobs" / "sha256" / manifest["layers"][-1]["digest"].split(":")[1]
    ) as archive:
        handle = archive.extractfile("hello")
        assert handle is not None
        binary = handle.read()
    (hello,) = [f for f in printed["files"] if f["fileName"] == "./hello"]
    assert {"algorithm": "SHA256", "checksumValue": hashlib.sha256(binary).hexdigest()} in hello[
        "checksums"
    ]
    if not LINUXKIT.exists():
        pytest.skip(f"{LINUXKIT} is not built here; linuxkit's merge is not checked")
    (tmp_path / "os.yml").write_text(f"onboot:\n  - name: hello\n    image: wombat/hello:{tree}\n")
    out = tmp_path / "os.tar"
    run(
        [
            str(LINUXKIT),
            "build",
            "--format",
            "tar",
            "--arch",
            "amd64",
            "--cache",
            str(cache_dir),
            "--o",
            str(out),
            str(tmp_path / "os.yml"),
        ],
        cwd=tmp_path,
    )
    with tarfile.open(out) as archive:
        handle = archive.extractfile("sbom.spdx.json")
        assert handle is not None
        merged = json.loads(handle.read())
    assert "docker.io/wombat/hello" in [p["name"] for p in merged["packages"]]
    assert "containers/onboot/000-hello/lower/hello" in [f["fileName"] for f in merged["files"]]


def is_attestation(entry: dict[str, Any]) -> bool:
    """An index entry that is an attestation manifest (BuildKit's layout), not an image."""
    return bool(
        entry.get("annotations", {}).get("vnd.docker.reference.type") == "attestation-manifest"
    )


def registry_raw(registry: Any, ref: str) -> dict[str, Any]:
    out = run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"]).stdout
    document: dict[str, Any] = json.loads(out)
    return document


def test_push_pairs_each_arch_with_its_attestations_and_a_repush_replaces_them(
    repo, cache_dir, buildah_store, registry_plain
):
    tree = git(repo, "rev-parse", "HEAD:hello")
    org = f"{registry_plain.host}/{registry_plain.repo('attest')}"
    name = f"{org}/hello"
    seen = []
    for flags in ((), ("--force", "--provenance=false")):
        lkpkg(
            "push",
            "--notrust",
            "--cache",
            str(cache_dir),
            "--org",
            org,
            "--platforms",
            "linux/amd64",
            *flags,
            str(repo / "hello"),
        )
        index = registry_raw(registry_plain, f"{name}:{tree}")
        image = registry_raw(registry_plain, f"{name}:{tree}-amd64")
        (entry,) = [m for m in index["manifests"] if not is_attestation(m)]
        (attestation,) = [m for m in index["manifests"] if is_attestation(m)]
        assert attestation["platform"] == {"os": "unknown", "architecture": "unknown"}
        assert attestation["annotations"]["vnd.docker.reference.digest"] == entry["digest"]
        # The attestation manifest has a tag of its own beside the arch tag.
        tagged = registry_raw(registry_plain, f"{name}:{tree}-amd64-attestations")
        types = [layer["annotations"]["in-toto.io/predicate-type"] for layer in tagged["layers"]]
        seen.append((entry["digest"], attestation["digest"], types))
        assert image["layers"]  # the arch image itself is unchanged and readable
    # Same image (a reproducible rebuild); its attestation was replaced, not added to.
    assert seen[0][0] == seen[1][0]
    assert seen[0][1] != seen[1][1]
    assert seen[0][2] == [SPDX, SLSA] and seen[1][2] == [SPDX]


def test_signed_attestations_verify_with_the_public_key(
    repo, cache_dir, buildah_store, registry_plain, tmp_path
):
    env = {"COSIGN_PASSWORD": "correct horse"}
    lkpkg("keygen", "--output-key-prefix", str(tmp_path / "cosign"), env=env)
    tree = git(repo, "rev-parse", "HEAD:hello")
    org = f"{registry_plain.host}/{registry_plain.repo('signed')}"
    lkpkg(
        "push",
        "--notrust",
        "--sign-key",
        str(tmp_path / "cosign.key"),
        "--cache",
        str(cache_dir),
        "--org",
        org,
        "--platforms",
        "linux/amd64",
        str(repo / "hello"),
        env=env,
    )
    image = registry_raw(registry_plain, f"{org}/hello:{tree}-amd64")
    assert image["layers"]
    verified = lkpkg(
        "verify",
        "--notrust",
        "--key",
        str(tmp_path / "cosign.pub"),
        "--attestations",
        f"{org}/hello:{tree}",
    )
    assert f"attestations of 1 images: {SLSA}, {SPDX}" in verified.stdout
    index = registry_raw(registry_plain, f"{org}/hello:{tree}")
    (entry,) = [m for m in index["manifests"] if not is_attestation(m)]
    att = registry_raw(registry_plain, f"{org}/hello:sha256-{entry['digest'].split(':')[1]}.att")
    assert [layer["mediaType"] for layer in att["layers"]] == [
        "application/vnd.dsse.envelope.v1+json"
    ] * 2
