"""Attestation manifests in the cache (BuildKit's layout), provenance content, and the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from lkpkg.attest import provenance
from lkpkg.attest.intoto import Statement, parse_statement
from lkpkg.attest.read import predicates
from lkpkg.attest.store import (
    ATTESTATION_MANIFEST,
    PREDICATE_TYPE,
    REFERENCE_DIGEST,
    REFERENCE_TYPE,
    index_entries,
    read_attestations,
    write_attestation_manifest,
)
from lkpkg.cache.layout import Cache
from lkpkg.cli.main import cli
from lkpkg.errors import InputError
from lkpkg.oci import mediatypes
from lkpkg.oci.model import Descriptor, ImageIndex, Platform
from tests.unit.attest_layers import Member, image, layer

SPDX = "https://spdx.dev/Document"
AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")


def platform_image(cache: Cache, content: bytes, arch: str) -> Descriptor:
    desc, _ = image(cache, layer(Member("f", content)), arch=arch)
    return Descriptor(desc.media_type, desc.digest, desc.size, platform=Platform("linux", arch))


def sbom_of(desc: Descriptor, name: str) -> Statement:
    return Statement(f"pkg:docker/x@t?platform={name}", desc.digest, SPDX, {"name": name})


def test_attestation_manifest_has_buildkits_shape(tmp_path):
    cache = Cache(tmp_path)
    amd = platform_image(cache, b"a", "amd64")
    entry = write_attestation_manifest(cache, amd, [sbom_of(amd, "amd64")])
    assert entry.platform == Platform("unknown", "unknown")
    assert entry.annotations == {
        REFERENCE_TYPE: ATTESTATION_MANIFEST,
        REFERENCE_DIGEST: amd.digest,
    }
    manifest = json.loads(cache.read_blob(entry.digest))
    assert manifest["mediaType"] == mediatypes.OCI_MANIFEST
    (only,) = manifest["layers"]
    assert only["mediaType"] == "application/vnd.in-toto+json"
    assert only["annotations"] == {PREDICATE_TYPE: SPDX}
    config = json.loads(cache.read_blob(manifest["config"]["digest"]))
    assert (config["os"], config["architecture"]) == ("unknown", "unknown")
    statement = json.loads(cache.read_blob(only["digest"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"][0]["digest"] == {"sha256": amd.digest.split(":")[1]}
    (back,) = read_attestations(cache, entry.digest)
    assert back.statement.predicate == {"name": "amd64"}


def test_rebuilding_one_arch_replaces_only_its_own_attestation(tmp_path):
    cache = Cache(tmp_path)
    amd, arm = platform_image(cache, b"a", "amd64"), platform_image(cache, b"b", "arm64")
    att_amd = write_attestation_manifest(cache, amd, [sbom_of(amd, "amd64")])
    att_arm = write_attestation_manifest(cache, arm, [sbom_of(arm, "arm64")])
    first = ImageIndex(
        (amd, arm, *index_entries([amd, arm], {amd.digest: att_amd, arm.digest: att_arm}, None))
    )
    # arm64 rebuilt with new content: its new attestation replaces the old; amd64's stays.
    arm2 = platform_image(cache, b"c", "arm64")
    att_arm2 = write_attestation_manifest(cache, arm2, [sbom_of(arm2, "arm64")])
    entries = index_entries([amd, arm2], {arm2.digest: att_arm2}, first)
    assert [e.digest for e in entries] == [att_amd.digest, att_arm2.digest]
    # An image no longer listed takes its attestation with it.
    assert index_entries([amd], {}, first) == [att_amd]


def test_predicates_per_platform_and_the_errors_that_name_the_reference(tmp_path):
    cache = Cache(tmp_path)
    amd, arm = platform_image(cache, b"a", "amd64"), platform_image(cache, b"b", "arm64")
    entries = {
        amd.digest: write_attestation_manifest(cache, amd, [sbom_of(amd, "amd64")]),
        # A statement whose subject is another image is never reported as this one's.
        arm.digest: write_attestation_manifest(cache, arm, [sbom_of(amd, "stray")]),
    }
    index = cache.put_manifest(ImageIndex((amd, arm, *index_entries([amd, arm], entries, None))))
    found = predicates(cache, index.digest, SPDX, where="x")
    assert [(f.platform, f.predicate["name"]) for f in found] == [(AMD64, "amd64")]
    with pytest.raises(
        InputError, match=r"x: no https://spdx\.dev/Document attestation for linux/arm64"
    ):
        predicates(cache, index.digest, SPDX, [ARM64], where="x")


def test_provenance_records_inputs_and_never_secret_values():
    facts = provenance.BuildFacts(
        repository_uri="https://example.com/repo",
        commit="c" * 40,
        package_path="pkg/hello",
        tree_hash="t" * 40,
        dirty=False,
        build_yml=provenance.FileDigest("pkg/hello/build.yml", "1" * 64),
        dockerfile=provenance.FileDigest("pkg/hello/Dockerfile", "2" * 64),
        build_args={
            "SOURCE": "https://example.com/repo",
            "NPM_TOKEN": "hunter2",
            "db_password": "x",
        },
        bases=[provenance.BaseDigest("localhost/debian:bookworm", "sha256:" + "3" * 64)],
        builder="buildah",
        builder_version=None,
        lkpkg_version="0.1.0",
        platform=AMD64,
        started=1_700_000_000,
        finished=1_700_000_042,
    )
    predicate = provenance.predicate(facts)
    text = json.dumps(predicate)
    assert "hunter2" not in text and '"db_password": "<redacted>"' in text
    definition = predicate["buildDefinition"]
    assert definition["externalParameters"]["source"]["commit"] == "c" * 40
    assert {"sha256": "3" * 64} in [d["digest"] for d in definition["resolvedDependencies"]]
    assert predicate["runDetails"]["metadata"] == {
        "startedOn": "2023-11-14T22:13:20Z",
        "finishedOn": "2023-11-14T22:14:02Z",
    }


def test_parse_statement_refuses_what_is_not_a_statement():
    with pytest.raises(Exception, match="blob: not an in-toto statement"):
        parse_statement(b'{"_type": "other"}', "blob")


def test_sbom_command_prints_one_platform_or_writes_one_file_each(tmp_path):
    root = tmp_path / "cache"
    cache = Cache(root)
    amd, arm = platform_image(cache, b"a", "amd64"), platform_image(cache, b"b", "arm64")
    entries = {
        d.digest: write_attestation_manifest(cache, d, [sbom_of(d, d.platform.architecture)])  # type: ignore[union-attr]
        for d in (amd, arm)
    }
    index = cache.put_manifest(ImageIndex((amd, arm, *index_entries([amd, arm], entries, None))))
    cache.set_ref("docker.io/wombat/x:t", index)
    runner = CliRunner()
    one = runner.invoke(cli, ["sbom", "--cache", str(root), "--platforms", "arm64", "wombat/x:t"])
    assert one.exit_code == 0, one.output
    assert json.loads(one.output) == {"name": "arm64"}
    out = tmp_path / "x.spdx.json"
    both = runner.invoke(cli, ["sbom", "--cache", str(root), "-o", str(out), "wombat/x:t"])
    assert both.exit_code == 0, both.output
    assert json.loads((tmp_path / "x-amd64.spdx.json").read_text()) == {"name": "amd64"}
    assert json.loads((tmp_path / "x-arm64.spdx.json").read_text()) == {"name": "arm64"}
    missing = runner.invoke(cli, ["provenance", "--cache", str(root), "wombat/x:t"])
    assert isinstance(missing.exception, InputError)  # exit 2, through main's one mapping
    assert "wombat/x:t: no https://slsa.dev/provenance/v1 attestation" in str(missing.exception)
