"""Push benchmark: `lkpkg push PKG` against `skopeo copy`, whole processes, in the same run.

For each image, rounds alternate which tool goes first; every push goes to a fresh
Distribution registry (new storage, same loopback port) from the same OCI layout (lkpkg's
cache). lkpkg is timed as users run it: `lkpkg push --notrust --platforms linux/amd64 PKG`
of a committed package whose image is already in the cache (so: start-up, package loading,
git, the arch image, the index), against `skopeo copy --preserve-digests` of that arch image.
A second, labelled line times the library call alone (`push_image` in bench/_lkpkg_push.py,
without start-up or the index). The no-op re-push (the registry already has everything) is
timed as a whole process too. Medians. A third line gives the user+sys CPU of each (what a
loaded machine changes least) and the load average at the end.

    .venv/bin/python bench/push.py [--rounds N] [--big-gib G] [--quick]

Images: one 256 MiB incompressible layer; 20 layers of 16 MiB; and (RSS only) one layer of
--big-gib GiB. Targets (issue 12): single layer <= 1.0x skopeo, 20 layers <= 0.8x, re-push
<= 0.15 s whole process, peak RSS <= 100 MiB even for a 2 GiB layer.
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

from _common import LKPKG, PYTHON, ROOT, floor_argv, free_port

from lkpkg.cache.layout import Cache
from lkpkg.oci import mediatypes
from lkpkg.oci.model import Descriptor, ImageManifest, canonical_bytes

# As a user runs it: with byte-code caches (a session may set PYTHONDONTWRITEBYTECODE, which
# makes every start-up compile lkpkg's sources again, ~0.4 s).
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
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


@contextmanager
def fresh_registry(root: Path, port: int) -> Iterator[str]:
    """A new docker-registry with empty storage on `port`; yields its host:port."""
    storage = Path(tempfile.mkdtemp(dir=root, prefix="registry-"))
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


def make_package(root: Path, name: str) -> Path:
    """A committed package directory `name` in a git repository under `root`."""
    repo = root / "packages"
    directory = repo / name
    directory.mkdir(parents=True)
    (directory / "build.yml").write_text(f"image: {name}\narches:\n  - amd64\n")
    (directory / "Dockerfile").write_text("FROM scratch\n")
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    if not (repo / ".git").exists():
        subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run(["git", "-C", str(repo), "add", name], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), *ident, "commit", "-qm", name], check=True, env=env)
    return directory


def show_tag(package: Path, org: str) -> str:
    done = subprocess.run(
        [LKPKG, "show-tag", "--org", org, str(package)], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


class Run(NamedTuple):
    """One child process: wall seconds, user+sys CPU seconds, peak RSS in MiB, stdout."""

    wall: float
    cpu: float
    rss: float
    out: str


def run_measured(argv: list[str]) -> Run:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=CHILD_ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {err.strip()[-500:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out)


def lkpkg_cli_push(cache: Path, package: Path, org: str) -> Run:
    """`lkpkg push` of the package, as a user runs it."""
    return run_measured(
        [
            LKPKG,
            "push",
            "--notrust",
            "--progress",
            "plain",
            "--cache",
            str(cache),
            "--org",
            org,
            "--platforms",
            "linux/amd64",
            str(package),
        ]
    )


def lkpkg_library_push(layout: Path, ref: str, host: str, repo: str, tag: str) -> float:
    """Seconds of the library call alone (bench/_lkpkg_push.py: push_image, no index)."""
    run = run_measured(
        [PYTHON, str(ROOT / "bench" / "_lkpkg_push.py"), str(layout), ref, host, repo, tag]
    )
    return float(run.out.strip())


def skopeo_push(layout: Path, ref: str, host: str, tag: str) -> Run:
    return run_measured(
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


@dataclass(frozen=True)
class Subject:
    """One benchmarked image: its package, and its arch image in the cache."""

    name: str
    package: Path
    org: str
    arch_ref: str  # 127.0.0.1:PORT/bench/NAME:TAG-amd64, as lkpkg's cache names it
    repo: str  # bench/NAME
    arch_tag: str  # TAG-amd64


def bench_image(
    subject: Subject, cache: Cache, rounds: int, root: Path, port: int
) -> dict[str, object]:
    lk: list[Run] = []
    sk: list[Run] = []
    lib: list[float] = []
    floor: list[float] = []
    tools = ("lkpkg", "skopeo", "library", "floor")
    for number in range(rounds):
        order = tools[number % 4 :] + tools[: number % 4]
        for tool in order:
            if tool == "floor":
                # As lkpkg loads them: `lkpkg` first (it keeps httpx's own command-line
                # client, rich and pygments, from loading), httpcore as a client loads it.
                modules = ("lkpkg", "click", "ruamel.yaml", "httpx", "httpcore")
                floor.append(run_measured(floor_argv(*modules)).wall)
                continue
            with fresh_registry(root, port) as host:
                if tool == "lkpkg":
                    lk.append(lkpkg_cli_push(cache.root, subject.package, subject.org))
                elif tool == "skopeo":
                    sk.append(skopeo_push(cache.root, subject.arch_ref, host, subject.arch_tag))
                else:
                    lib.append(
                        lkpkg_library_push(
                            cache.root, subject.arch_ref, host, subject.repo, subject.arch_tag
                        )
                    )
    # Re-push: the registry already holds everything; the whole `lkpkg push` process counts.
    with fresh_registry(root, port):
        lkpkg_cli_push(cache.root, subject.package, subject.org)
        repush = [lkpkg_cli_push(cache.root, subject.package, subject.org) for _ in range(5)]
    median = statistics.median
    result = {
        "image": subject.name,
        "lkpkg_push_median_s": median(r.wall for r in lk),
        "skopeo_median_s": median(r.wall for r in sk),
        "ratio": median(r.wall for r in lk) / median(r.wall for r in sk),
        "library_push_image_median_s": median(lib),
        "library_ratio": median(lib) / median(r.wall for r in sk),
        # The least a Python command loading click, ruamel.yaml and httpx costs before its
        # first request; with the library call, the best ratio such a tool can reach.
        "floor_s": median(floor),
        "best_possible_ratio": (median(lib) + median(floor)) / median(r.wall for r in sk),
        "lkpkg_peak_rss_mib": max(r.rss for r in lk),
        "repush_process_s": median(r.wall for r in repush),
        "lkpkg_cpu_median_s": median(r.cpu for r in lk),
        "skopeo_cpu_median_s": median(r.cpu for r in sk),
        "repush_cpu_median_s": median(r.cpu for r in repush),
        "load_average": os.getloadavg()[0],
    }
    print(
        f"{subject.name:>16}: lkpkg push {result['lkpkg_push_median_s']:.2f}s  "
        f"skopeo {result['skopeo_median_s']:.2f}s  ratio {result['ratio']:.2f}  "
        f"peak RSS {result['lkpkg_peak_rss_mib']:.0f} MiB  "
        f"re-push {result['repush_process_s']:.3f}s (whole process)\n"
        f"{'':>16}  library push_image only (no start-up, no index): "
        f"{result['library_push_image_median_s']:.2f}s, ratio {result['library_ratio']:.2f}\n"
        f"{'':>16}  floor: python + import click, ruamel, httpx(core) {result['floor_s']:.3f}s; "
        f"best possible ratio (library + floor) {result['best_possible_ratio']:.2f}\n"
        f"{'':>16}  user+sys CPU: lkpkg push {result['lkpkg_cpu_median_s']:.3f}s  "
        f"skopeo {result['skopeo_cpu_median_s']:.3f}s  "
        f"re-push {result['repush_cpu_median_s']:.3f}s  "
        f"(load average {result['load_average']:.1f})",
        flush=True,
    )
    return result


def subject_for(
    name: str, sizes: list[int], cache: Cache, root: Path, port: int, scratch: Path
) -> Subject:
    org = f"127.0.0.1:{port}/bench"
    package = make_package(root, name)
    reference = show_tag(package, org)
    arch_ref = f"{reference}-amd64"
    make_image(cache, arch_ref, sizes, scratch)
    tag = reference.rsplit(":", 1)[1]
    return Subject(name, package, org, arch_ref, f"bench/{name}", f"{tag}-amd64")


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
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(ROOT / "src")], check=True)
    with tempfile.TemporaryDirectory(prefix="lkpkg-bench-") as tmp:
        root = Path(tmp)
        cache = Cache(root / "cache")
        scratch = root / "scratch"
        scratch.mkdir()
        # One port for every fresh registry: the cache names images by registry host.
        port = free_port()
        single = subject_for("single", [256 * MiB // scale], cache, root, port, scratch)
        twenty = subject_for("twenty", [16 * MiB // scale] * 20, cache, root, port, scratch)
        print(f"rounds: {rounds}, rotating order, fresh loopback registry per push", flush=True)
        results = [
            bench_image(
                replace(single, name="1 x 256 MiB" if scale == 1 else "1 layer (quick)"),
                cache,
                rounds,
                root,
                port,
            ),
            bench_image(
                replace(twenty, name="20 x 16 MiB" if scale == 1 else "20 layers (quick)"),
                cache,
                rounds,
                root,
                port,
            ),
        ]
        big_size = int(args.big_gib * 1024 * MiB) // scale
        big = subject_for("big", [big_size], cache, root, port, scratch)
        with fresh_registry(root, port):
            run = lkpkg_cli_push(cache.root, big.package, big.org)
        print(
            f"{big_size / MiB / 1024:>12.2f} GiB: lkpkg push {run.wall:.2f}s  "
            f"peak RSS {run.rss:.0f} MiB",
            flush=True,
        )
        results.append(
            {
                "image": f"{big_size / MiB / 1024:.2f} GiB",
                "lkpkg_push_s": run.wall,
                "lkpkg_peak_rss_mib": run.rss,
            }
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
