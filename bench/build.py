"""Build benchmark: `lkpkg build --force` as a user runs it, beside raw buildah doing the same.

Two packages, each in a fresh git repository:
- `tiny`: the examples' `hello` (a static C binary compiled in a Debian stage, FROM scratch);
- `big`: `FROM scratch` + `COPY` of one 256 MiB file of random bytes.

Per round and package, alternating (order reversed on odd rounds):
- lkpkg: the whole `lkpkg build --force --platforms linux/amd64 PKG` process (imports, git,
  base provision, build, export, import into the cache, SBOM and provenance, index);
- lkpkg bare: the same with `--sbom=false --provenance=false` (what raw buildah also does);
- raw buildah build+push (issue 12's peer): `buildah build` with the flags lkpkg passes
  (chroot isolation, --no-cache, --timestamp, no network through `unshare --net`) into the
  store, then `buildah push IMAGE oci:DIR:REF` into a fresh directory: the builder's own work
  as a user would script it, with the image as an OCI layout at the end;
- raw buildah direct: the same `buildah build` writing the layout itself (`--tag oci:DIR:REF
  --disable-compression=false`, as lkpkg now does): the fastest raw buildah there is for
  this result, so the ratio against it is lkpkg's own overhead.
All use the cache's own buildah store (bases loaded once before timing), so none pays for
loading the base. Printed: medians (and min/max) of wall time, the ratios lkpkg/raw against
both peers, the load average before and after, and the CPU time (user+sys of the process and
its children) of each kind, which load does not change.

    .venv/bin/python bench/build.py [--cache DIR] [--rounds N] [--json F]

--cache must hold localhost/debian:bookworm (scripts/mkbase makes it); it is copied (hard
links), never changed. Target (issue 12): lkpkg <= 1.05x raw buildah (build + export to an OCI
layout) for both packages.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _common import BASE_REF, GIT_ENV, LKPKG, ROOT, floor_argv, load, stats

EPOCH = "1767225600"  # the commit time above: what lkpkg passes as --timestamp


def sh(argv: list[str], env: dict[str, str] | None = None) -> str:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children)."""
    cpu = children_cpu()
    start = time.perf_counter()
    sh(argv, env)
    return time.perf_counter() - start, children_cpu() - cpu


def make_repo(root: Path) -> dict[str, Path]:
    env = {**os.environ, **GIT_ENV}
    tiny = root / "tiny"
    shutil.copytree(ROOT / "examples" / "hello", tiny)
    (tiny / "build.yml").write_text("image: tiny\norg: bench\n")
    big = root / "big"
    big.mkdir()
    with (big / "blob").open("wb") as out:
        for _ in range(256):
            out.write(os.urandom(1024 * 1024))
    (big / "Dockerfile").write_text("FROM scratch\nCOPY blob /blob\n")
    (big / "build.yml").write_text("image: big\norg: bench\n")
    sh(["git", "-C", str(root), "init", "-q", "-b", "main"], env)
    sh(["git", "-C", str(root), "add", "-A"], env)
    sh(["git", "-C", str(root), "commit", "-q", "-m", "bench"], env)
    return {"tiny": tiny, "big": big}


def raw_build_argv(package: Path, tag: str) -> list[str]:
    """`buildah build` with the flags lkpkg passes, tagged `tag`."""
    build = ["unshare", "--net", "buildah", "build", "--isolation", "chroot"]
    build += ["--platform", "linux/amd64", "--file", str(package / "Dockerfile")]
    build += ["--tag", tag, "--pull=never", "--no-cache", "--timestamp", EPOCH]
    return [*build, str(package)]


def raw_buildah(package: Path, store_env: dict[str, str], out: Path) -> tuple[float, float]:
    """buildah build into the store + push oci:, timed together (issue 12's peer)."""
    if out.exists():
        shutil.rmtree(out)
    push = ["buildah", "push", "--quiet", "bench/raw:latest", f"oci:{out}:raw"]
    cpu = children_cpu()
    start = time.perf_counter()
    sh(raw_build_argv(package, "bench/raw:latest"), store_env)
    sh(push, store_env)
    return time.perf_counter() - start, children_cpu() - cpu


def raw_direct(package: Path, store_env: dict[str, str], out: Path) -> tuple[float, float]:
    """buildah build writing the OCI layout itself, gzip layers (what lkpkg runs)."""
    if out.exists():
        shutil.rmtree(out)
    argv = raw_build_argv(package, f"oci:{out}:raw")
    return timed([*argv[:-1], "--disable-compression=false", argv[-1]], store_env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    source = args.cache or Path(os.environ.get("LINUXKIT_CACHE") or ROOT / ".lkpkg-work" / "cache")
    if not (source / "index.json").is_file() or BASE_REF not in (source / "index.json").read_text():
        raise SystemExit(f"{source} lacks {BASE_REF}: run scripts/mkbase amd64")
    with tempfile.TemporaryDirectory(prefix="lkpkg-bench-build-") as tmp:
        work = Path(tmp)
        cache = work / "cache"
        sh(["cp", "-al", str(source), str(cache)])
        packages = make_repo(work / "repo")
        env = {**os.environ, "LINUXKIT_CACHE": str(cache)}
        lkpkg = [LKPKG, "build", "--force", "--platforms", "linux/amd64"]
        for package in packages.values():  # warm up: loads the base into the cache's store
            sh([*lkpkg, str(package)], env)
        store = cache.with_name(cache.name + ".buildah")
        store_env = {
            **os.environ,
            "CONTAINERS_STORAGE_CONF": str(store / "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(store / "registries.conf"),
        }
        bare = [*lkpkg, "--sbom=false", "--provenance=false"]
        kinds = ("lkpkg", "lkpkg-bare", "buildah", "direct", "floor")
        results: dict[str, dict[str, list[float]]] = {
            name: {kind: [] for kind in kinds} for name in packages
        }
        cpu: dict[str, dict[str, list[float]]] = {
            name: {kind: [] for kind in kinds} for name in packages
        }
        load_before = load()
        for round_ in range(args.rounds):
            for name, package in packages.items():
                order = kinds if round_ % 2 == 0 else tuple(reversed(kinds))
                for which in order:
                    if which == "lkpkg":
                        seconds, used = timed([*lkpkg, str(package)], env)
                    elif which == "lkpkg-bare":
                        seconds, used = timed([*bare, str(package)], env)
                    elif which == "floor":
                        # Not per package, but timed in the same rotation as the others.
                        seconds, used = timed(floor_argv("click", "ruamel.yaml"), env)
                    elif which == "buildah":
                        seconds, used = raw_buildah(package, store_env, work / "raw-out")
                    else:
                        seconds, used = raw_direct(package, store_env, work / "raw-direct")
                    results[name][which].append(seconds)
                    cpu[name][which].append(used)
            print(f"round {round_ + 1}/{args.rounds} done", flush=True)
        print(f"load average (1/5/15 min): before {load_before}, after {load()}")
        summary: dict[str, dict[str, object]] = {}
        for name, timings in results.items():
            peers = {"buildah": stats(timings["buildah"]), "direct": stats(timings["direct"])}
            summary[name] = {kind: {**peers[kind], "cpu": stats(cpu[name][kind])} for kind in peers}
            for kind, label in (
                ("buildah", "buildah build + push oci:"),
                ("direct", "buildah build -t oci: (direct)"),
            ):
                raw = peers[kind]
                used = stats(cpu[name][kind])["median"]
                print(
                    f"{name:<5} {label:<38} {raw['median']:.2f}s "
                    f"(min {raw['min']:.2f}, max {raw['max']:.2f})   cpu {used:.2f}s",
                    flush=True,
                )
            for kind, label in (
                ("lkpkg", "lkpkg build --force"),
                ("lkpkg-bare", "  ... --sbom=false --provenance=false"),
            ):
                ours = stats(timings[kind])
                used = stats(cpu[name][kind])["median"]
                ratio = ours["median"] / peers["buildah"]["median"]
                direct = ours["median"] / peers["direct"]["median"]
                summary[name][kind] = {
                    **ours,
                    "cpu": stats(cpu[name][kind]),
                    "ratio": ratio,
                    "ratio_direct": direct,
                }
                print(
                    f"{name:<5} {label:<38} {ours['median']:.2f}s "
                    f"(min {ours['min']:.2f}, max {ours['max']:.2f})   cpu {used:.2f}s   "
                    f"ratio {ratio:.2f}x build+push, {direct:.2f}x direct",
                    flush=True,
                )
            # The least a Python command that parses options (click) and build.yml
            # (ruamel.yaml) costs before it can start the builder: with the builder's own
            # time, the best ratio any such tool reaches (git and the cache come on top).
            floor = stats(timings["floor"])["median"]
            best = (peers["direct"]["median"] + floor) / peers["buildah"]["median"]
            summary[name]["floor"] = {"seconds": floor, "best_ratio": best}
            print(
                f"{name:<5} {'floor: python + import click, ruamel':<38} {floor:.3f}s"
                f"   best possible ratio (direct + floor) {best:.2f}x build+push",
                flush=True,
            )
        sh(["buildah", "rmi", "--force", "bench/raw:latest"], store_env)
        if args.json:
            document = {"rounds": args.rounds, "load": [load_before, load()], **summary}
            args.json.write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
