"""The build cache across `--org`: an image built under one org is reused under another when
it was built from the same inputs, instead of being rebuilt.

An image's bytes do not depend on the org it is tagged under, unless the org reaches the
build: through a build arg the Dockerfile reads (`PKG_IMAGE`, an `@lkt:pkg:` dependency's
`ORG/IMAGE:TAG`), a label (lkpkg's dependencies label), or a FROM name. So every build lkpkg
makes records a **build key** — sha256 over the canonical JSON of its inputs (`BuildInputs`)
— as the annotation `org.mobyproject.lkpkg.build-key` on the cache's `index.json` entry of
`ORG/IMAGE:TAG-ARCH`. When a build misses its own ref, the entry of another ref with the
same key names an image built from the same inputs: the ref is pointed at it (the blobs are
shared, nothing is copied), its attestation manifest is carried over, and the builder is
not run.

"Same inputs", strictly: the lkpkg version; the image name, tag and content hash (the hash
covers the package directory and its extra-sources); the extra-sources' `src`/`dst`; the
platform; the Dockerfile's path and bytes; the build args the Dockerfile can read (those
whose name appears in it as a word, and the proxy args every builder passes to RUN
undeclared); every label; `network`; the timestamp (SOURCE_DATE_EPOCH); the build platform
(`$BUILDPLATFORM`); each FROM as named and the digests of every platform image of it the
builder is given; the builder's name and version.
Not in it: `verbose` and the layer cache, which change how long a build takes, not what
it makes. A build arg the Dockerfile never names cannot reach the image: buildah and docker
drop it (and warn). One input is beyond the key: ONBUILD triggers of a base image declaring
an ARG; a base's digest is in the key, but not what its triggers read.

The key is read from `index.json`, which every lookup reads anyway (no manifest is opened
to find a candidate), and written under the cache lock by an atomic rewrite of the entry,
only while it names the image built (or reused) from those inputs: a crash leaves either no
key or a key beside the image it describes. Refs written by a pull,
an import or another tool carry no key and are never candidates; a `--force` build rebuilds
and records its own key. A candidate some of whose blobs are gone (`cache rm`, a partial
copy) is skipped.

Attestations are carried as they are: the SBOM and the provenance describe the build that
made these bytes, under the name it was built as (`a/IMAGE`, its build args with
`PKG_IMAGE=a/IMAGE` when the Dockerfile does not read it). They name the image by digest,
which is the same; re-subjecting them to the new org would make the provenance claim a
build that never ran.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lkpkg import __version__
from lkpkg.attest.provenance import BuildFacts
from lkpkg.attest.store import attestation_for, is_attestation
from lkpkg.builders.base import Builder
from lkpkg.builders.dockerfile import from_stages
from lkpkg.cache.layout import Cache
from lkpkg.errors import LkpkgError
from lkpkg.oci import mediatypes
from lkpkg.oci.model import Descriptor, ImageIndex, Platform, canonical_bytes
from lkpkg.package.model import Package
from lkpkg.pipeline.events import Emit, ReusedFromOrg
from lkpkg.platforms import host_platform
from lkpkg.reference import Reference

BUILD_KEY_ANNOTATION = "org.mobyproject.lkpkg.build-key"
# Bumped whenever what the key covers changes, so that older keys never match.
KEY_SCHEMA = "lkpkg-build-key/1"
# Docker's predefined args: passed to RUN without an ARG line (buildah does the same).
PROXY_ARGS = frozenset(
    name
    for base in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
    for name in (base, base.lower())
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class BuildInputs:
    """Everything a build's image can depend on (see the module docstring), as values."""

    image: str
    tag: str
    hash: str
    platform: Platform
    build_platform: Platform  # $BUILDPLATFORM: what a stage's --platform= may name
    dockerfile: str
    dockerfile_sha256: str
    build_args: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, str], ...]
    network: bool
    timestamp: int | None
    extra_sources: tuple[tuple[str, str], ...]
    bases: tuple[tuple[str, tuple[str, ...]], ...]
    builder: str
    builder_version: str | None
    lkpkg_version: str = __version__

    def key(self) -> str:
        """sha256 over the canonical JSON of the inputs: equal keys, equal inputs."""
        document = {
            "schema": KEY_SCHEMA,
            "lkpkg": self.lkpkg_version,
            "image": self.image,
            "tag": self.tag,
            "hash": self.hash,
            "platform": str(self.platform),
            "buildPlatform": str(self.build_platform),
            "dockerfile": [self.dockerfile, self.dockerfile_sha256],
            "buildArgs": dict(self.build_args),
            "labels": dict(self.labels),
            "network": self.network,
            "timestamp": self.timestamp,
            "extraSources": [list(pair) for pair in self.extra_sources],
            "bases": [[name, list(digests)] for name, digests in self.bases],
            "builder": [self.builder, self.builder_version],
        }
        return "sha256:" + hashlib.sha256(canonical_bytes(document)).hexdigest()


def read_args(dockerfile_text: str, args: Mapping[str, str]) -> dict[str, str]:
    """The build args a Dockerfile can read: those whose name appears in it as a word (an
    ARG line names every arg a stage reads; a word elsewhere only makes this wider), and
    the proxy args builders pass undeclared."""
    words = set(_WORD.findall(dockerfile_text))
    return {k: v for k, v in args.items() if k in words or k in PROXY_ARGS}


def build_inputs(
    package: Package,
    platform: Platform,
    cache: Cache,
    builder: Builder,
    *,
    args: Mapping[str, str],
    labels: Mapping[str, str],
    timestamp: int | None,
) -> BuildInputs | None:
    """The inputs of building `package` for `platform` now; None when they cannot be known
    (an unreadable Dockerfile, a FROM the cache cannot provide: the build itself will say
    so, in its own words)."""
    dockerfile = package.directory / package.spec.dockerfile
    build = host_platform()
    try:
        data = dockerfile.read_bytes()
        stages = from_stages(dockerfile, args, target=platform, build=build)
    except (OSError, LkpkgError):
        return None
    names = dict.fromkeys(stage.name for stage in stages)
    bases = base_digests(cache, list(names))
    if bases is None:
        return None
    return BuildInputs(
        image=package.spec.image,
        tag=package.tag,
        hash=package.hash,
        platform=platform,
        build_platform=build,
        dockerfile=package.spec.dockerfile,
        dockerfile_sha256=hashlib.sha256(data).hexdigest(),
        build_args=tuple(sorted(read_args(data.decode("utf-8", "replace"), args).items())),
        labels=tuple(sorted(labels.items())),
        network=package.spec.network,
        timestamp=timestamp,
        extra_sources=tuple((s.src, s.dst) for s in package.spec.extra_sources),
        bases=tuple(bases),
        builder=builder.name,
        builder_version=builder.version(),
    )


def base_digests(cache: Cache, names: Sequence[str]) -> list[tuple[str, tuple[str, ...]]] | None:
    """(FROM reference, digest of every platform image of it the cache holds) for each FROM:
    all that the builder is given (`builders/bases.py` exposes every platform; a stage's
    `--platform=` picks another than the target's), so a change to any of them changes the
    key. None if the cache lacks one (the build will say so)."""
    out: list[tuple[str, tuple[str, ...]]] = []
    try:
        for name in names:
            qualified = str(Reference.parse(name))
            descriptor = cache.resolve(qualified)
            if descriptor is None:
                return None
            top = cache.read_manifest(descriptor.digest)
            digests = (
                [
                    m.digest
                    for m in top.manifests
                    if m.media_type in mediatypes.MANIFEST_TYPES and not is_attestation(m)
                ]
                if isinstance(top, ImageIndex)
                else [descriptor.digest]
            )
            out.append((qualified, tuple(d for d in digests if cache.has_blob(d))))
    except LkpkgError:
        return None
    return out


@dataclass(frozen=True)
class Reused:
    """An image found under another org with the same build key, now also `arch_ref`'s."""

    image: Descriptor
    attestation: Descriptor | None
    built_as: Reference


def reuse_other_org(
    cache: Cache, arch_ref: Reference, inputs: BuildInputs | None, emit: Emit
) -> Reused | None:
    """If another ref of the cache holds an image built from `inputs` (same build key) with
    every blob present, point `arch_ref` at it, emit `ReusedFromOrg`, and return it with its
    attestation manifest (for the package's index); None to build."""
    if inputs is None:
        return None
    key = inputs.key()
    wanted = str(arch_ref)
    for name, descriptor in cache.refs():
        if name == wanted or (descriptor.annotations or {}).get(BUILD_KEY_ANNOTATION) != key:
            continue
        image = Descriptor(descriptor.media_type, descriptor.digest, descriptor.size)
        try:
            cache.check_complete(image, f"{name} names")
            built_as = Reference.parse(name)
            with cache.lock():
                cache.set_ref(arch_ref, _keyed(image, key))
        except LkpkgError:
            continue  # a removed blob, an unparsable name: not a candidate
        reused = Reused(image, _attestation(cache, built_as, inputs.platform, image), built_as)
        emit(ReusedFromOrg(arch_ref, inputs.platform.architecture, image.digest, built_as))
        return reused
    return None


def record_build_key(
    cache: Cache,
    arch_ref: Reference,
    built: Descriptor,
    inputs: BuildInputs | None,
    facts: BuildFacts,
) -> None:
    """Annotate `arch_ref`'s entry, which the build just set to `built`, with the key of
    `inputs` — only if the build saw what the key was computed from (a base ref moved or the
    Dockerfile changed meanwhile: no key, the image is simply never a candidate)."""
    if inputs is None:
        return
    if (facts.dockerfile.sha256, facts.builder_version) != (
        inputs.dockerfile_sha256,
        inputs.builder_version,
    ):
        return
    offered = dict(inputs.bases)
    if any(b.digest not in offered.get(b.name, ()) for b in facts.bases):
        return
    if base_digests(cache, list(offered)) != list(inputs.bases):
        return  # a base ref moved while building: what the builder saw is not known
    with cache.lock():
        current = cache.resolve(arch_ref)
        if current is None or current.digest != built.digest:
            return  # replaced meanwhile by another run: its own key, if any, stands
        cache.set_ref(arch_ref, _keyed(current, inputs.key()))


def _keyed(image: Descriptor, key: str) -> Descriptor:
    annotations = {**(image.annotations or {}), BUILD_KEY_ANNOTATION: key}
    return Descriptor(image.media_type, image.digest, image.size, annotations=annotations)


def _attestation(
    cache: Cache, built_as: Reference, platform: Platform, image: Descriptor
) -> Descriptor | None:
    """The attestation manifest the index of `built_as`'s tag holds for `image`, complete;
    None when it has none (built without attestations) or lost a blob."""
    tag = built_as.tag or ""
    suffix = f"-{platform.architecture}"
    if not tag.endswith(suffix):
        return None
    try:
        index_desc = cache.resolve(built_as.with_tag(tag[: -len(suffix)]))
        if index_desc is None:
            return None
        index = cache.read_manifest(index_desc.digest)
        if not isinstance(index, ImageIndex):
            return None
        entry = attestation_for(index, image.digest)
        if entry is not None:
            cache.check_complete(entry, f"{built_as} attestation")
        return entry
    except LkpkgError:
        return None
