"""Digests, media types, and the manifest/index/descriptor/platform models."""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from lkpkg.errors import FormatError, InputError, ReferenceError_
from lkpkg.oci import mediatypes as mt
from lkpkg.oci.digest import (
    DigestingWriter,
    algorithm_of,
    digest_of,
    digest_stream,
    hex_of,
    invalid_digest_reason,
    sha256_digest,
    validate_digest,
)
from lkpkg.oci.model import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    Platform,
    canonical_bytes,
    config_labels,
    config_platform,
    parse_manifest_bytes,
)

EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def d(n: int) -> str:
    return "sha256:" + f"{n:064x}"


# -- digests --------------------------------------------------------------------------------


def test_sha256_digest_and_parts():
    assert sha256_digest(b"") == EMPTY_SHA256
    assert hex_of(EMPTY_SHA256) == EMPTY_SHA256[7:]
    assert algorithm_of(EMPTY_SHA256) == "sha256"
    assert digest_of(b"x", "sha512") == "sha512:" + hashlib.sha512(b"x").hexdigest()
    assert validate_digest(EMPTY_SHA256) is EMPTY_SHA256


@pytest.mark.parametrize(
    ("digest", "reason"),
    [
        ("sha256", "'algorithm:hex'"),
        ("sha256:" + "a" * 63, "this one has 63"),
        ("sha256:" + "A" * 64, "lowercase"),
        ("sha256:" + "g" * 64, "lowercase"),
        ("sha512:" + "a" * 64, "a sha512 digest has 128"),
        ("md5:" + "a" * 32, "unsupported digest algorithm 'md5'"),
        ("SHA256:" + "a" * 64, "malformed digest algorithm"),
        (":" + "a" * 64, "malformed digest algorithm"),
    ],
)
def test_invalid_digests(digest, reason):
    why = invalid_digest_reason(digest)
    assert why is not None
    assert reason in why
    with pytest.raises(ReferenceError_, match=f"^invalid digest '{digest}': "):
        validate_digest(digest)
    with pytest.raises(ReferenceError_):
        hex_of(digest)


def test_digesting_writer_hashes_what_it_writes():
    sink = io.BytesIO()
    writer = DigestingWriter(sink)
    for chunk in (b"hello ", bytearray(b"wor"), memoryview(b"ld")):
        writer.write(chunk)
    assert sink.getvalue() == b"hello world"
    assert writer.digest == sha256_digest(b"hello world")
    assert writer.size == 11
    assert digest_stream(io.BytesIO(b"hello world")) == (writer.digest, 11)


def test_digesting_writer_counts_partial_writes():
    class Short:
        def write(self, data: memoryview) -> int:
            return min(len(data), 3)

    writer = DigestingWriter(Short())
    assert writer.write(b"abcdef") == 3
    assert writer.size == 3
    assert writer.digest == sha256_digest(b"abc")


def test_digesting_writer_without_sink_only_hashes():
    writer = DigestingWriter(None, "sha512")
    writer.write(b"x")
    assert writer.digest == digest_of(b"x", "sha512")
    with pytest.raises(ReferenceError_):
        DigestingWriter(None, "md5")


def test_media_type_sets():
    assert {mt.OCI_MANIFEST, mt.DOCKER_MANIFEST} == mt.MANIFEST_TYPES
    assert {mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST} == mt.INDEX_TYPES
    assert not mt.MANIFEST_TYPES & mt.INDEX_TYPES
    assert mt.OCI_LAYER_ZSTD.endswith("tar+zstd")


# -- platforms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "string"),
    [
        ("linux/amd64", Platform("linux", "amd64"), "linux/amd64"),
        ("linux/arm64/v8", Platform("linux", "arm64"), "linux/arm64"),
        ("linux/aarch64", Platform("linux", "arm64"), "linux/arm64"),
        ("linux/x86_64", Platform("linux", "amd64"), "linux/amd64"),
        ("linux/arm", Platform("linux", "arm", "v7"), "linux/arm/v7"),
        ("linux/arm/6", Platform("linux", "arm", "v6"), "linux/arm/v6"),
        ("Linux/RISCV64", Platform("linux", "riscv64"), "linux/riscv64"),
        ("linux/s390x", Platform("linux", "s390x"), "linux/s390x"),
    ],
)
def test_platform_parse(text, expected, string):
    platform = Platform.parse(text)
    assert platform == expected
    assert str(platform) == string


@pytest.mark.parametrize("text", ["", "linux", "linux/", "/amd64", "a/b/c/d", "linux/am d64"])
def test_platform_parse_rejects(text):
    with pytest.raises(InputError, match="invalid platform"):
        Platform.parse(text)


def test_platform_from_arch_and_arch_tag():
    assert Platform.from_arch("arm64") == Platform("linux", "arm64")
    assert Platform.from_arch("x86_64") == Platform("linux", "amd64")
    assert Platform.parse("linux/arm64/v8").arch_tag == "arm64"
    assert Platform("linux", "aarch64", "v8").arch_tag == "arm64"
    with pytest.raises(InputError):
        Platform.from_arch("")


def test_platform_matching():
    arm64_v8 = Platform("linux", "arm64", "v8")
    assert arm64_v8.matches(Platform("linux", "arm64"))
    assert arm64_v8.matches(Platform("linux", "arm64"), exact=True)
    assert Platform("linux", "arm", "v6").matches(Platform("linux", "arm"))
    assert not Platform("linux", "arm", "v6").matches(Platform("linux", "arm"), exact=True)
    assert not Platform("linux", "arm", "v6").matches(Platform("linux", "arm", "v7"))
    assert Platform("linux", "amd64", "v3").matches(Platform("linux", "amd64"))
    assert not Platform("linux", "amd64").matches(Platform("linux", "arm64"))
    assert not Platform("windows", "amd64").matches(Platform("linux", "amd64"))


def test_platform_json_round_trip():
    raw = {
        "os": "windows",
        "architecture": "amd64",
        "os.version": "10.0.17763.1",
        "os.features": ["win32k"],
        "unknown": True,
    }
    platform = Platform.from_json(raw)
    assert platform.os_version == "10.0.17763.1"
    assert platform.os_features == ("win32k",)
    assert Platform.from_json(platform.to_json()) == platform
    assert "unknown" not in platform.to_json()
    with pytest.raises(FormatError, match="'architecture' must be a non-empty string"):
        Platform.from_json({"os": "linux"})
    with pytest.raises(FormatError, match=r"'os\.features' must be a list of strings"):
        Platform.from_json({"os": "linux", "architecture": "x", "os.features": "a"})


# -- descriptors ----------------------------------------------------------------------------


def test_descriptor_json_omits_empty_fields():
    desc = Descriptor(mt.OCI_LAYER_GZIP, d(1), 42, annotations={})
    assert desc.to_json() == {"mediaType": mt.OCI_LAYER_GZIP, "digest": d(1), "size": 42}
    assert desc.annotations is None
    full = Descriptor(mt.OCI_MANIFEST, d(2), 7, Platform("linux", "arm64", "v8"), {"a": "b"})
    assert list(full.to_json()) == ["mediaType", "digest", "size", "platform", "annotations"]
    assert Descriptor.from_json(full.to_json()) == full


def test_descriptor_is_immutable_and_hashable():
    source = {"k": "v"}
    desc = Descriptor(mt.OCI_CONFIG, d(3), 1, annotations=source)
    source["k"] = "changed"
    assert desc.annotations == {"k": "v"}
    with pytest.raises(TypeError):
        desc.annotations["k"] = "x"  # type: ignore[index]
    same = Descriptor(mt.OCI_CONFIG, d(3), 1, annotations={"k": "v"})
    assert desc == same
    assert hash(desc) == hash(same)
    assert desc != Descriptor(mt.OCI_CONFIG, d(3), 1, annotations={"k": "w"})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "expected a JSON object, got a list"),
        ({"digest": d(1), "size": 1}, "'mediaType' must be a non-empty string, got nothing"),
        ({"mediaType": 3, "digest": d(1), "size": 1}, "'mediaType' must be a non-empty string"),
        ({"mediaType": "x", "digest": "sha256:zz", "size": 1}, "invalid digest 'sha256:zz'"),
        ({"mediaType": "x", "digest": d(1), "size": -1}, "'size' must be a non-negative"),
        ({"mediaType": "x", "digest": d(1), "size": "1"}, "'size' must be a non-negative"),
        ({"mediaType": "x", "digest": d(1), "size": True}, "'size' must be a non-negative"),
        ({"mediaType": "x", "digest": d(1), "size": 1, "annotations": {"a": 1}}, "annotations"),
        ({"mediaType": "x", "digest": d(1), "size": 1, "platform": "linux"}, "platform"),
    ],
)
def test_descriptor_from_json_is_strict(raw, message):
    with pytest.raises(FormatError, match=message) as info:
        Descriptor.from_json(raw)
    assert "\n" not in str(info.value)


def test_descriptor_constructor_validates():
    with pytest.raises(FormatError, match="invalid digest"):
        Descriptor(mt.OCI_CONFIG, "sha256:nothex", 1)
    with pytest.raises(FormatError, match="size"):
        Descriptor(mt.OCI_CONFIG, d(1), -5)


# -- manifests and indexes ------------------------------------------------------------------


def sample_manifest() -> ImageManifest:
    return ImageManifest(
        config=Descriptor(mt.OCI_CONFIG, d(10), 100),
        layers=(Descriptor(mt.OCI_LAYER_GZIP, d(11), 1000),),
        annotations={"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    )


def sample_index() -> ImageIndex:
    return ImageIndex(
        manifests=(
            Descriptor(mt.OCI_MANIFEST, d(20), 500, Platform("linux", "amd64")),
            Descriptor(mt.OCI_MANIFEST, d(21), 501, Platform("linux", "arm64", "v8")),
        )
    )


def test_manifest_round_trip_through_canonical_bytes():
    manifest = sample_manifest()
    data = canonical_bytes(manifest.to_json())
    assert data.startswith(b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest')
    assert b" " not in data
    parsed = parse_manifest_bytes(data)
    assert parsed == manifest
    # Deterministic: the same value always gives the same bytes, hence the same digest.
    assert canonical_bytes(parsed.to_json()) == data
    assert manifest.children() == (manifest.config, *manifest.layers)


def test_index_round_trip():
    index = sample_index()
    data = canonical_bytes(index.to_json())
    assert parse_manifest_bytes(data) == index
    assert canonical_bytes(parse_manifest_bytes(data).to_json()) == data
    assert index.children() == index.manifests


def test_canonical_bytes_keeps_unicode_and_order():
    assert canonical_bytes({"b": "é", "a": [1]}) == '{"b":"é","a":[1]}'.encode()
    with pytest.raises(ValueError):
        canonical_bytes({"x": float("nan")})


def test_parse_docker_schema2_types():
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST,
        "config": {"mediaType": mt.DOCKER_CONFIG, "digest": d(1), "size": 1},
        "layers": [{"mediaType": mt.DOCKER_LAYER_GZIP, "digest": d(2), "size": 2}],
    }
    parsed = parse_manifest_bytes(json.dumps(manifest).encode())
    assert isinstance(parsed, ImageManifest)
    assert parsed.media_type == mt.DOCKER_MANIFEST
    listing = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST_LIST,
        "manifests": [
            {
                "mediaType": mt.DOCKER_MANIFEST,
                "digest": d(3),
                "size": 3,
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
    parsed_list = parse_manifest_bytes(json.dumps(listing).encode())
    assert isinstance(parsed_list, ImageIndex)
    assert parsed_list.manifests[0].platform == Platform("linux", "amd64")


def test_parse_infers_type_without_media_type():
    manifest = sample_manifest().to_json()
    del manifest["mediaType"]
    assert isinstance(parse_manifest_bytes(json.dumps(manifest).encode()), ImageManifest)
    index = sample_index().to_json()
    del index["mediaType"]
    assert isinstance(parse_manifest_bytes(json.dumps(index).encode()), ImageIndex)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"schemaVersion":2}', "not recognisably a manifest or an index"),
        (b'{"schemaVersion":2,"manifests":[],"layers":[]}', "not recognisably"),
        (b'{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+json"}',
         "unsupported manifest mediaType"),
        (b'{"mediaType":5}', "'mediaType' must be a string"),
        (b'{"schemaVersion":1,"manifests":[]}', "'schemaVersion' must be 2, got 1"),
        (b'{"schemaVersion":true,"manifests":[]}', "'schemaVersion' must be 2, got true"),
        (b'{"schemaVersion":2,"manifests":{}}', "'manifests' must be a list"),
        (b'{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:00","size":1},'
         b'"layers":[]}', "image manifest: config: invalid digest"),
        (b'{"schemaVersion":2,"manifests":[{"mediaType":"x","size":1}]}',
         "image index: manifests\\[0\\]: 'digest' must be a non-empty string"),
        (b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
         b'"config":{"mediaType":"x","digest":"' + d(1).encode() + b'","size":1}}',
         "'layers' must be a list"),
    ],
)  # fmt: skip
def test_parse_rejects(data, message):
    with pytest.raises(FormatError, match=message):
        parse_manifest_bytes(data)


def test_media_type_must_fit_the_model():
    with pytest.raises(FormatError, match="unsupported mediaType"):
        ImageManifest(Descriptor(mt.OCI_CONFIG, d(1), 1), (), media_type=mt.OCI_INDEX)
    with pytest.raises(FormatError, match="is not an image index"):
        ImageIndex.from_json({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "manifests": []})


def test_unknown_fields_are_ignored():
    raw = sample_index().to_json()
    raw["subject"] = {"whatever": 1}
    raw["manifests"][0]["urls"] = ["https://example.com"]
    assert ImageIndex.from_json(raw) == sample_index()


# -- image configs --------------------------------------------------------------------------


def test_config_helpers():
    cfg = {
        "architecture": "arm64",
        "os": "linux",
        "variant": "v8",
        "config": {"Labels": {"org.mobyproject.config": "{}"}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    assert config_platform(cfg) == Platform("linux", "arm64", "v8")
    assert config_labels(cfg) == {"org.mobyproject.config": "{}"}
    assert config_labels({"config": {"Labels": None}}) == {}
    assert config_labels({}) == {}
    with pytest.raises(FormatError, match="image config: 'os'"):
        config_platform({"architecture": "amd64"})
    with pytest.raises(FormatError, match="Labels"):
        config_labels({"config": {"Labels": {"a": 1}}})
    with pytest.raises(FormatError, match="expected a JSON object"):
        config_labels({"config": []})
