"""Pushing packages — the seed's `make push`, without manifest-tool: build what neither the
cache nor the registry has, publish each arch image and the index (pipeline/publish.py),
push release tags that never move, and hand everything written to the signer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lkpkg.attest.attach import EVERY_ATTESTATION, AttestOptions
from lkpkg.builders.base import Builder
from lkpkg.cache.layout import Cache
from lkpkg.errors import InputError
from lkpkg.oci.model import Descriptor, Platform, parse_manifest_bytes
from lkpkg.package.git import repository_top, tags_at
from lkpkg.package.model import Package
from lkpkg.pipeline.build import build_package, target_platforms
from lkpkg.pipeline.publish import (
    ArchPush,
    PlatformOf,
    publish_index,
    push_image,
    release_guard,
)
from lkpkg.reference import is_valid_tag
from lkpkg.registry.protocol import Registry

# Re-signing rounds when other hosts keep changing the index (see _sign_until_settled).
MAX_SIGN_ROUNDS = 20


@dataclass(frozen=True)
class PushResult:
    reference: str
    index: Descriptor
    arches: tuple[ArchPush, ...]
    built: tuple[str, ...]
    releases: tuple[str, ...]
    signed: tuple[str, ...] = ()


def push_package(
    package: Package,
    *,
    cache: Cache,
    registry: Registry,
    builder_for: Callable[[Platform], Builder],
    platforms: Sequence[Platform] | None = None,
    force: bool = False,
    allow_dirty: bool = False,
    hash_given: bool = False,
    releases: Sequence[str] | None = None,
    verbose: bool = False,
    report: Callable[[str], None] = lambda _: None,
    sign: Callable[[Sequence[tuple[str, str, int]]], tuple[str, ...]] | None = None,
    on_blob: Callable[[str, str, int], None] | None = None,
    attest: AttestOptions = EVERY_ATTESTATION,
) -> PushResult:
    """Build what is missing (cache, then registry, then builder), push, index, release, sign.

    `sign` receives every (tag, digest, size) this push wrote — the arch tags, the index and
    release tags — once they are all in the registry, and returns the kinds it signed with.
    `on_blob(arch, digest, size)` is told of each blob of an arch image once the registry
    has it (progress displays).
    """
    reference = package.reference()
    if package.dirty and not (allow_dirty or hash_given):
        raise InputError(
            f"{package.directory}: refusing to push a dirty package ({package.tag}); "
            "commit first, or pass --allow-dirty or --hash"
        )
    release_tags = list(releases) if releases is not None else _tags_at_head(package)
    if release_tags and package.dirty:
        raise InputError(f"{package.directory}: cannot release a dirty package")
    for release in release_tags:
        if not is_valid_tag(release):
            raise InputError(f"invalid release tag '{release}'")
    repo = reference.path
    targets = target_platforms(package, platforms)

    built: list[str] = []
    missing = []
    for platform in targets:
        arch_ref = str(package.arch_reference(platform.architecture))
        in_cache = cache.resolve(arch_ref) is not None
        if force or (
            not in_cache
            and registry.head_manifest(repo, f"{package.tag}-{platform.architecture}") is None
        ):
            missing.append(platform)
    if missing:
        result = build_package(
            package,
            cache=cache,
            builder_for=builder_for,
            platforms=missing,
            force=force,
            verbose=verbose,
            report=report,
            attest=attest,
        )
        built = [p.platform.architecture for p in result.platforms if p.built]

    pushed: list[ArchPush] = []
    for platform in targets:
        arch = platform.architecture
        local = cache.resolve(str(package.arch_reference(arch)))
        if local is None:
            report(f"{reference.familiar()}-{arch}: already in the registry")
            continue
        uploaded = push_image(
            registry,
            repo,
            f"{package.tag}-{arch}",
            cache,
            local,
            on_blob=None if on_blob is None else functools.partial(on_blob, arch),
        )
        report(
            f"{reference.familiar()}-{arch}: {'pushed' if uploaded else 'unchanged'} {local.digest}"
        )
        pushed.append(ArchPush(arch, local.digest, local.size, uploaded))

    platform_of = PlatformOf(registry, repo, cache)
    index = publish_index(registry, repo, package.tag, platform_of=platform_of)
    report(f"{reference.familiar()}: index {index.digest}")

    written = [(f"{package.tag}-{p.arch}", p.digest, p.size) for p in pushed]
    written.append((package.tag, index.digest, index.size))

    for release in release_tags:
        for arch_push in pushed:
            _release_arch(registry, repo, release, arch_push, cache)
            written.append((f"{release}-{arch_push.arch}", arch_push.digest, arch_push.size))
        released = publish_index(
            registry, repo, release, platform_of=platform_of, guard=release_guard(repo, release)
        )
        written.append((release, released.digest, released.size))
        report(f"{reference.with_tag(release).familiar()}: released")
    signed = sign(written) if sign is not None else ()
    if signed and sign is not None:
        report(f"{reference.familiar()}: signed {len(written)} tags ({', '.join(signed)})")
        index = _sign_until_settled(registry, repo, package.tag, index, platform_of, sign, report)
    return PushResult(
        str(reference), index, tuple(pushed), tuple(built), tuple(release_tags), signed
    )


def _sign_until_settled(
    registry: Registry,
    repo: str,
    tag: str,
    signed: Descriptor,
    platform_of: PlatformOf,
    sign: Callable[[Sequence[tuple[str, str, int]]], tuple[str, ...]],
    report: Callable[[str], None],
) -> Descriptor:
    """Make the signed index the one the registry serves, under concurrent pushers.

    Another host pushing another arch of the same hash rewrites the index; if its signature
    landed before ours, the trust data would name our older index. So after signing we look
    again: while the registry's index is not the one we signed, derive it from the arch tags
    once more and sign that. Whoever signs last has checked after signing, so the last
    signature always names what the registry serves.
    """
    for _ in range(MAX_SIGN_ROUNDS):
        current = registry.head_manifest(repo, tag)
        if current is None or current[0] == signed.digest:
            return signed
        signed = publish_index(registry, repo, tag, platform_of=platform_of)
        sign([(tag, signed.digest, signed.size)])
        report(f"{repo}:{tag}: index changed under a concurrent push; signed {signed.digest}")
    return signed


def _release_arch(
    registry: Registry, repo: str, release: str, arch_push: ArchPush, cache: Cache
) -> None:
    tag = f"{release}-{arch_push.arch}"
    current = registry.head_manifest(repo, tag)
    if current is not None:
        if current[0] != arch_push.digest:
            raise InputError(
                f"release {repo}:{tag} already points at {current[0]}; "
                f"refusing to move it to {arch_push.digest}"
            )
        return
    body = cache.read_blob(arch_push.digest)
    registry.put_manifest(repo, tag, body, parse_manifest_bytes(body).media_type)


def _tags_at_head(package: Package) -> list[str]:
    """Git tags on HEAD of the package's repository: linuxkit's default release names."""
    if package.head is None or package.dirty:
        return []
    top = repository_top(package.directory)
    return list(_tags_at(top or package.directory, package.head.commit))


# Every package of a repository asks the same question: one git process per commit.
_tags_at = functools.lru_cache(maxsize=64)(tags_at)
