"""The one way lkpkg makes an image index over arch images (the cache's ORG/IMAGE:TAG, a
base's manifest list, an imported rootfs, the registry's index).

Entries are sorted by platform, then digest, so the same arch images always give the same
index bytes and digest, wherever it is written and in whatever order the images were found:
the index a build writes to the cache is the one a push writes to the registry.
"""

from __future__ import annotations

from collections.abc import Iterable

from lkpkg.oci.model import Descriptor, ImageIndex


def sorted_images(images: Iterable[Descriptor]) -> list[Descriptor]:
    """`images` in index order: by platform, then digest."""
    return sorted(images, key=lambda d: (str(d.platform), d.digest))


def platform_index(images: Iterable[Descriptor], attached: Iterable[Descriptor] = ()) -> ImageIndex:
    """An index naming `images`, each a manifest descriptor that carries its platform, then
    the `attached` manifests (attestations, BuildKit's layout) in the order given."""
    return ImageIndex(manifests=(*sorted_images(images), *attached))
