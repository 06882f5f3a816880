"""One lkpkg push of an image from an OCI layout, for bench/push.py to time and measure.

Usage: _lkpkg_push.py LAYOUT REF HOST REPO TAG  — prints the seconds the push itself took.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lkpkg.auth import tls
from lkpkg.cache.layout import Cache
from lkpkg.pipeline.publish import push_image
from lkpkg.registry.client import RegistryClient


def main() -> None:
    layout, ref, host, repo, tag = sys.argv[1:6]
    cache = Cache(Path(layout))
    descriptor = cache.resolve(ref)
    if descriptor is None:
        raise SystemExit(f"{ref} not in {layout}")
    start = time.perf_counter()
    with RegistryClient(host, keychain=None, tls=tls) as client:
        push_image(client, repo, tag, cache, descriptor)
    print(f"{time.perf_counter() - start:.4f}")


if __name__ == "__main__":
    main()
