"""Descriptors, manifests, indexes and platforms as immutable values (OCI image-spec v1.1).

Reading is strict about the shape of the fields lkpkg uses (a wrong type is a `FormatError`,
never a silent default) and lenient about fields it does not know, as the spec requires
(manifest.md: implementations MUST ignore unknown properties). Because unknown fields are
dropped, re-serialising a parsed foreign manifest need not reproduce its bytes: a manifest's
digest is always taken from the bytes that were stored or received, never recomputed from a
model that was parsed. Models lkpkg creates serialise deterministically through
`canonical_bytes`, so their digest is a pure function of their value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Self

from lkpkg.errors import FormatError, InputError
from lkpkg.oci import mediatypes
from lkpkg.oci.digest import invalid_digest_reason

SCHEMA_VERSION = 2

# Spellings of one architecture/variant that runtimes treat as the same platform; the left-hand
# side is what `uname -m`, Debian and Go's GOARCH variously call it.
_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "i386": "386",
    "i686": "386",
    "armhf": "arm",
    "armel": "arm",
}
_ALIAS_VARIANT = {"armhf": "v7", "armel": "v6"}
# Variants that only restate an architecture's baseline, and so name no distinct platform.
_BASELINE_VARIANTS = {"arm64": ("8", "v8", "v8.0"), "amd64": ("v1",)}


def _normal_arch_variant(architecture: str, variant: str | None) -> tuple[str, str | None]:
    """Map an (architecture, variant) pair to the one spelling images are published under.

    arm64's only variant in practice is v8 and amd64's baseline is v1, so those are dropped;
    32-bit arm without a variant means v7 (what `docker buildx` publishes as linux/arm).
    """
    arch = architecture.lower()
    var = variant.lower() if variant else None
    if arch in _ALIAS_VARIANT:
        var = _ALIAS_VARIANT[arch]
    arch = _ARCH_ALIASES.get(arch, arch)
    if var in _BASELINE_VARIANTS.get(arch, ()):
        var = None
    elif arch == "arm":
        if var is None or var == "7":
            var = "v7"
        elif var in ("5", "6", "8"):
            var = f"v{var}"
    elif arch == "386":
        var = None
    return arch, var


@dataclass(frozen=True)
class Platform:
    """Where an image runs: `os/architecture[/variant]` (image-index.md "platform")."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.os or not self.architecture:
            raise FormatError(f"platform needs an os and an architecture, got '{self}'")
        object.__setattr__(self, "os_features", tuple(self.os_features))

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse `os/arch[/variant]` as given on a command line, normalised (`linux/arm64/v8`
        is `linux/arm64`)."""
        parts = text.strip().split("/")
        if not 2 <= len(parts) <= 3 or not all(parts) or any(" " in p for p in parts):
            raise InputError(f"invalid platform '{text}': expected os/architecture[/variant]")
        arch, variant = _normal_arch_variant(parts[1], parts[2] if len(parts) == 3 else None)
        return cls(os=parts[0].lower(), architecture=arch, variant=variant)

    @classmethod
    def from_arch(cls, arch: str) -> Self:
        """The Linux platform for a linuxkit architecture name (`amd64`, `arm64`, `x86_64`)."""
        if not arch or "/" in arch or " " in arch:
            raise InputError(f"invalid architecture '{arch}'")
        normal, _ = _normal_arch_variant(arch, None)
        return cls(os="linux", architecture=normal)

    def normalized(self) -> Platform:
        """This platform under its canonical spelling, for comparison."""
        arch, variant = _normal_arch_variant(self.architecture, self.variant)
        return Platform(
            self.os.lower(),
            arch,
            variant,
            os_version=self.os_version,
            os_features=self.os_features,
        )

    def matches(self, want: Platform, *, exact: bool = False) -> bool:
        """Whether an image for this platform satisfies a request for `want`.

        OS and architecture must agree after normalisation. The variant must agree too when
        `want` names one or `exact` is set; otherwise any variant will do, as linuxkit matches
        (it asks for `linux/arm64` and accepts an `arm64/v8` entry).
        """
        mine, theirs = self.normalized(), want.normalized()
        if (mine.os, mine.architecture) != (theirs.os, theirs.architecture):
            return False
        if exact or want.variant is not None:
            return mine.variant == theirs.variant
        return True

    @property
    def arch_tag(self) -> str:
        """The suffix linuxkit appends to per-architecture tags (`abc123-amd64`)."""
        return _normal_arch_variant(self.architecture, None)[0]

    def __str__(self) -> str:
        parts = [self.os, self.architecture]
        if self.variant:
            parts.append(self.variant)
        return "/".join(parts)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"os": self.os, "architecture": self.architecture}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        return out

    @classmethod
    def from_json(cls, d: Any) -> Self:
        return cls._from_json(d, "platform")

    @classmethod
    def _from_json(cls, d: Any, where: str) -> Self:
        obj = _object(d, where)
        features = obj.get("os.features")
        if features is not None and not (
            isinstance(features, list) and all(isinstance(f, str) for f in features)
        ):
            raise FormatError(f"{where}: 'os.features' must be a list of strings")
        return cls(
            os=_required_str(obj, "os", where),
            architecture=_required_str(obj, "architecture", where),
            variant=_optional_str(obj, "variant", where) or None,
            os_version=_optional_str(obj, "os.version", where) or None,
            os_features=tuple(features or ()),
        )


@dataclass(frozen=True)
class Descriptor:
    """A typed pointer to content: media type, digest and size (descriptor.md).

    `annotations` is stored read-only and an empty mapping is stored as None, so two
    descriptors that serialise the same compare equal. It is left out of the hash because a
    mapping is not hashable; equal descriptors still hash equal.
    """

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.media_type, str) or not self.media_type:
            raise FormatError("descriptor: 'mediaType' must be a non-empty string")
        reason = invalid_digest_reason(self.digest) if isinstance(self.digest, str) else "not text"
        if reason is not None:
            raise FormatError(f"descriptor: invalid digest '{self.digest}': {reason}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise FormatError(f"descriptor {self.digest}: 'size' must be a non-negative integer")
        object.__setattr__(self, "annotations", _frozen_annotations(self.annotations))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, d: Any) -> Self:
        return cls._from_json(d, "descriptor")

    @classmethod
    def _from_json(cls, d: Any, where: str) -> Self:
        obj = _object(d, where)
        size = obj.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise FormatError(f"{where}: 'size' must be a non-negative integer")
        digest = _required_str(obj, "digest", where)
        reason = invalid_digest_reason(digest)
        if reason is not None:
            raise FormatError(f"{where}: invalid digest '{digest}': {reason}")
        platform = obj.get("platform")
        return cls(
            media_type=_required_str(obj, "mediaType", where),
            digest=digest,
            size=size,
            platform=None
            if platform is None
            else Platform._from_json(platform, f"{where}.platform"),
            annotations=_annotations(obj, where),
        )


@dataclass(frozen=True)
class ImageManifest:
    """One platform's image: a config blob and its layers, bottom first (manifest.md)."""

    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = mediatypes.OCI_MANIFEST
    annotations: Mapping[str, str] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.media_type not in mediatypes.MANIFEST_TYPES:
            raise FormatError(f"image manifest: unsupported mediaType '{self.media_type}'")
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "annotations", _frozen_annotations(self.annotations))

    def children(self) -> tuple[Descriptor, ...]:
        """Every descriptor this manifest names: the config, then the layers."""
        return (self.config, *self.layers)

    def to_json(self) -> dict[str, Any]:
        # schemaVersion and mediaType lead so that a reader can dispatch on the first bytes;
        # the remaining keys follow the field order. The order is part of the digest.
        out: dict[str, Any] = {
            "schemaVersion": SCHEMA_VERSION,
            "mediaType": self.media_type,
            "config": self.config.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, d: Any) -> Self:
        where = "image manifest"
        obj = _object(d, where)
        _check_schema_version(obj, where)
        media_type = _optional_str(obj, "mediaType", where) or mediatypes.OCI_MANIFEST
        if media_type not in mediatypes.MANIFEST_TYPES:
            raise FormatError(f"{where}: mediaType '{media_type}' is not an image manifest")
        layers = obj.get("layers")
        if not isinstance(layers, list):
            raise FormatError(f"{where}: 'layers' must be a list")
        return cls(
            config=Descriptor._from_json(obj.get("config"), f"{where}: config"),
            layers=tuple(
                Descriptor._from_json(layer, f"{where}: layers[{i}]")
                for i, layer in enumerate(layers)
            ),
            media_type=media_type,
            annotations=_annotations(obj, where),
        )


@dataclass(frozen=True)
class ImageIndex:
    """A list of manifests, usually one per platform (image-index.md)."""

    manifests: tuple[Descriptor, ...]
    media_type: str = mediatypes.OCI_INDEX
    annotations: Mapping[str, str] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.media_type not in mediatypes.INDEX_TYPES:
            raise FormatError(f"image index: unsupported mediaType '{self.media_type}'")
        object.__setattr__(self, "manifests", tuple(self.manifests))
        object.__setattr__(self, "annotations", _frozen_annotations(self.annotations))

    def children(self) -> tuple[Descriptor, ...]:
        """Every descriptor this index names."""
        return self.manifests

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": SCHEMA_VERSION,
            "mediaType": self.media_type,
            "manifests": [m.to_json() for m in self.manifests],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, d: Any) -> Self:
        where = "image index"
        obj = _object(d, where)
        _check_schema_version(obj, where)
        media_type = _optional_str(obj, "mediaType", where) or mediatypes.OCI_INDEX
        if media_type not in mediatypes.INDEX_TYPES:
            raise FormatError(f"{where}: mediaType '{media_type}' is not an image index")
        manifests = obj.get("manifests")
        if not isinstance(manifests, list):
            raise FormatError(f"{where}: 'manifests' must be a list")
        return cls(
            manifests=tuple(
                Descriptor._from_json(m, f"{where}: manifests[{i}]")
                for i, m in enumerate(manifests)
            ),
            media_type=media_type,
            annotations=_annotations(obj, where),
        )


def canonical_bytes(obj_json: Mapping[str, Any]) -> bytes:
    """The exact bytes lkpkg stores for a JSON document, and so the bytes its digest names.

    Keys keep the order the `to_json` methods build them in (no sorting), separators carry no
    whitespace, and text is UTF-8 without escaping: the same value always gives the same bytes.
    """
    text = json.dumps(obj_json, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def parse_manifest_bytes(data: bytes) -> ImageManifest | ImageIndex:
    """Parse a manifest or an index, dispatching on its `mediaType`.

    Docker schema2 manifests and manifest lists are accepted. Without a `mediaType` (it is
    optional in OCI) the shape decides: `manifests` makes an index, `config`/`layers` a
    manifest. Anything else, including Docker schema1, is a `FormatError`.
    """
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as e:
        raise FormatError(f"manifest is not valid JSON: {e}") from None
    obj = _object(doc, "manifest")
    media_type = obj.get("mediaType")
    if media_type is not None and not isinstance(media_type, str):
        raise FormatError(f"manifest: 'mediaType' must be a string, got {_json_type(media_type)}")
    if media_type is None:
        has_index_shape = "manifests" in obj
        has_manifest_shape = "config" in obj or "layers" in obj
        if has_index_shape == has_manifest_shape:
            raise FormatError(
                "manifest has no mediaType and is not recognisably a manifest or an index"
            )
        media_type = mediatypes.OCI_INDEX if has_index_shape else mediatypes.OCI_MANIFEST
    if media_type in mediatypes.MANIFEST_TYPES:
        return ImageManifest.from_json(obj)
    if media_type in mediatypes.INDEX_TYPES:
        return ImageIndex.from_json(obj)
    raise FormatError(f"unsupported manifest mediaType '{media_type}'")


def config_platform(cfg: Mapping[str, Any]) -> Platform:
    """The platform an image config declares (config.md: `os`, `architecture`, `variant`)."""
    return Platform._from_json(cfg, "image config")


def config_labels(cfg: Mapping[str, Any]) -> dict[str, str]:
    """The `config.Labels` of an image config; empty when absent or null."""
    inner = cfg.get("config")
    if inner is None:
        return {}
    inner = _object(inner, "image config: config")
    labels = inner.get("Labels")
    if labels is None:
        return {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise FormatError("image config: 'config.Labels' must map strings to strings")
    return dict(labels)


def _object(d: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise FormatError(f"{where}: expected a JSON object, got {_json_type(d)}")
    return d


def _required_str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        got = "nothing" if key not in obj else _json_type(value)
        raise FormatError(f"{where}: '{key}' must be a non-empty string, got {got}")
    return value


def _optional_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise FormatError(f"{where}: '{key}' must be a string, got {_json_type(value)}")
    return value


def _annotations(obj: Mapping[str, Any], where: str) -> Mapping[str, str] | None:
    value = obj.get("annotations")
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise FormatError(f"{where}: 'annotations' must map strings to strings")
    return value


def _frozen_annotations(value: Mapping[str, str] | None) -> Mapping[str, str] | None:
    return MappingProxyType(dict(value)) if value else None


def _check_schema_version(obj: Mapping[str, Any], where: str) -> None:
    version = obj.get("schemaVersion")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise FormatError(f"{where}: 'schemaVersion' must be 2, got {_show(version)}")


def _show(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _json_type(value: Any) -> str:
    names: Sequence[tuple[type, str]] = (
        (bool, "a boolean"),
        (int, "a number"),
        (float, "a number"),
        (str, "a string"),
        (list, "a list"),
        (dict, "an object"),
    )
    if value is None:
        return "null"
    for kind, name in names:
        if isinstance(value, kind):
            return name
    return type(value).__name__
