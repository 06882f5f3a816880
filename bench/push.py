"""Push benchmark: lkpkg against skopeo, measured in the same run on the same machine.

For each image, rounds alternate which tool goes first; every single push goes to a fresh
Distribution registry on a loopback port (nothing to deduplicate against), from the same
OCI layout. Prints per-image medians, the ratio lkpkg/skopeo, and lkpkg's peak RSS; a
re-push of an unchanged image (the registry already has it) is timed too.

    .venv/bin/python bench/push.py [--rounds N] [--big-gib G] [--quick]

Images: one 512 MiB incompressible layer; 20 layers of 16 MiB; and (RSS only) one layer of
--big-gib GiB. Targets (issue: publish): single layer <= 1.0x skopeo, 20 layers <= 0.7x,
peak RSS <= 100 MiB even for a 2 GiB layer, re-push <= 0.15 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lkpkg.cache.layout import Cache
from lkpkg.oci import mediatypes
from lkpkg.oci.model import Descriptor, ImageManifest, canonical_bytes

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
MiB = 1 << 20


def random_gzip_layer(dest: Path, size: int) -> Path:
    """A valid gzip stream of incompressible bytes (stored blocks: fast to make)."""
    compressor = zlib.compressobj(0, zlib.DEFLATED, 31)
    with dest.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(left, 4 * MiB))
            out.write(compressor.compress(chunk))
            left -= len(chunk)
        out.write(compressor.flush())
    return dest


def make_image(cache: Cache, ref: str, layer_sizes: list[int], scratch: Path) -> None:
    layers = []
    for number, size in enumerate(layer_sizes):
        path = random_gzip_layer(scratch / f"layer{number}", size)
        digest, length = cache.ingest_file(path, move=True)
        layers.append(Descriptor(mediatypes.OCI_LAYER_GZIP, digest, length))
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    config_desc = cache.write_blob(canonical_bytes(config), mediatypes.OCI_CONFIG)
    with cache.lock():
        manifest = cache.put_manifest(ImageManifest(config=config_desc, layers=tuple(layers)))
        cache.set_ref(ref, manifest)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fresh_registry(root: Path) -> Iterator[str]:
    """A new docker-registry with empty storage; yields its host:port."""
    storage = Path(tempfile.mkdtemp(dir=root, prefix="registry-"))
    port = free_port()
    config = storage / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {storage}/data\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield host
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(storage, ignore_errors=True)


def run_measured(argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MiB, and stdout of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {err.strip()[-500:]}")
    return wall, usage.ru_maxrss / 1024, out


def lkpkg_push(layout: Path, ref: str, host: str, tag: str) -> tuple[float, float, float]:
    wall, rss, out = run_measured(
        [PYTHON, str(ROOT / "bench" / "_lkpkg_push.py"), str(layout), ref, host, "bench/image", tag]
    )
    return wall, rss, float(out.strip())


def skopeo_push(layout: Path, ref: str, host: str, tag: str) -> float:
    wall, _, _ = run_measured(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
            f"oci:{layout}:{ref}",
            f"docker://{host}/bench/image:{tag}",
        ]
    )
    return wall


def bench_image(name: str, layout: Path, ref: str, rounds: int, root: Path) -> dict[str, object]:
    lk: list[float] = []
    sk: list[float] = []
    rss: list[float] = []
    for number in range(rounds):
        order = ("lkpkg", "skopeo") if number % 2 == 0 else ("skopeo", "lkpkg")
        for tool in order:
            with fresh_registry(root) as host:
                if tool == "lkpkg":
                    wall, peak, _ = lkpkg_push(layout, ref, host, "t")
                    lk.append(wall)
                    rss.append(peak)
                else:
                    sk.append(skopeo_push(layout, ref, host, "t"))
    # Re-push: the registry already holds the image; only lkpkg's own push time counts.
    with fresh_registry(root) as host:
        lkpkg_push(layout, ref, host, "t")
        repush = [lkpkg_push(layout, ref, host, "t") for _ in range(5)]
    result = {
        "image": name,
        "lkpkg_median_s": statistics.median(lk),
        "skopeo_median_s": statistics.median(sk),
        "ratio": statistics.median(lk) / statistics.median(sk),
        "lkpkg_peak_rss_mib": max(rss),
        "repush_push_s": statistics.median(r[2] for r in repush),
        "repush_process_s": statistics.median(r[0] for r in repush),
    }
    print(
        f"{name:>16}: lkpkg {result['lkpkg_median_s']:.2f}s  "
        f"skopeo {result['skopeo_median_s']:.2f}s  "
        f"ratio {result['ratio']:.2f}  peak RSS {result['lkpkg_peak_rss_mib']:.0f} MiB  "
        f"re-push {result['repush_push_s']:.3f}s (process {result['repush_process_s']:.2f}s)",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--big-gib", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true", help="small images, 2 rounds: a smoke run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    scale = 16 if args.quick else 1
    rounds = 2 if args.quick else args.rounds
    with tempfile.TemporaryDirectory(prefix="lkpkg-bench-") as tmp:
        root = Path(tmp)
        cache = Cache(root / "layout")
        scratch = root / "scratch"
        scratch.mkdir()
        make_image(cache, "docker.io/bench/single:1", [512 * MiB // scale], scratch)
        make_image(cache, "docker.io/bench/twenty:1", [16 * MiB // scale] * 20, scratch)
        print(f"rounds: {rounds}, alternating order, fresh loopback registry per push", flush=True)
        results = [
            bench_image(
                "1 x 512 MiB" if scale == 1 else "1 layer (quick)",
                cache.root,
                "docker.io/bench/single:1",
                rounds,
                root,
            ),
            bench_image(
                "20 x 16 MiB" if scale == 1 else "20 layers (quick)",
                cache.root,
                "docker.io/bench/twenty:1",
                rounds,
                root,
            ),
        ]
        big = int(args.big_gib * 1024 * MiB) // scale
        make_image(cache, "docker.io/bench/big:1", [big], scratch)
        with fresh_registry(root) as host:
            wall, peak, _ = lkpkg_push(cache.root, "docker.io/bench/big:1", host, "t")
        print(
            f"{big / MiB / 1024:>12.2f} GiB: lkpkg {wall:.2f}s  peak RSS {peak:.0f} MiB", flush=True
        )
        results.append(
            {"image": f"{big / MiB / 1024:.2f} GiB", "lkpkg_s": wall, "lkpkg_peak_rss_mib": peak}
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
