"""The platform of an image in the cache: the one place that reads it from a manifest's config.

An image manifest has no platform field of its own; its config's `os`/`architecture`/`variant`
say what it runs on (an index states it again per entry, but only the config is the image's
own word). Every caller that needs the platform of a cached manifest asks here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from lkpkg.cache.layout import Cache
from lkpkg.errors import CacheError, FormatError
from lkpkg.oci.model import ImageManifest, Platform, config_platform


@dataclass(frozen=True)
class ImagePlatform:
    """What a cached image manifest runs on, and the config that says so."""

    platform: Platform
    config_digest: str


def image_platform(cache: Cache, manifest_digest: str) -> ImagePlatform:
    """The platform of the image manifest `manifest_digest`; `CacheError` if either the
    manifest or its config is absent, corrupt, or not an image's."""
    manifest = cache.read_manifest(manifest_digest)
    if not isinstance(manifest, ImageManifest):
        raise CacheError(
            f"{manifest_digest} in {cache.root}: expected an image manifest, not an index"
        )
    config_digest = manifest.config.digest
    try:
        config = json.loads(cache.read_blob(config_digest))
    except (UnicodeDecodeError, ValueError) as e:
        raise CacheError(f"config {config_digest} in {cache.root}: not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise CacheError(f"config {config_digest} in {cache.root}: expected a JSON object")
    try:
        platform = config_platform(config)
    except FormatError as e:
        raise CacheError(f"config {config_digest} in {cache.root}: {e}") from None
    return ImagePlatform(platform, config_digest)


def cached_image_platform(cache: Cache, manifest_digest: str) -> ImagePlatform | None:
    """Like `image_platform`, but None when the manifest or its config is not in the cache
    (for callers that can ask elsewhere, e.g. the registry)."""
    if not cache.has_blob(manifest_digest):
        return None
    manifest = cache.read_manifest(manifest_digest)
    if not isinstance(manifest, ImageManifest) or not cache.has_blob(manifest.config.digest):
        return None
    return image_platform(cache, manifest_digest)
