"""Build cache across --org: `make ORG=b NOTRUST=1 push` after `make ORG=a NOTRUST=1 tag`.

Two packages, each in a fresh git repository, tagged once under org `a` into one cache:
- `hello`: the examples' package (a static C binary compiled in a Debian stage, FROM scratch);
- `copy`: `FROM scratch` + `COPY` of one small file.

Then, per round and package, alternating (order reversed on odd rounds), the whole
`make ORG=<fresh org> NOTRUST=1 push` process against a loopback Distribution registry:
- reuse: as lkpkg is now — the cache holds the image built as `a/IMAGE:TAG-ARCH` with its
  build key, so nothing is built (pipeline/reuse.py);
- rebuild: as lkpkg was before the build key — the same cache with every build key removed
  from index.json first (an atomic rewrite), so the miss under the new org is built again
  (buildah with --no-cache, as lkpkg always runs it; the base already in the cache's store).
Each push goes to an org no earlier push used, so the registry never holds its blobs.
Printed: medians (min, max) of wall time and of user+sys CPU of the whole process tree
(make, lkpkg, buildah), the builds seen, the ratio rebuild/reuse and the load average.

    .venv/bin/python bench/orgswitch.py [--cache DIR] [--rounds N] [--json F]

--cache must hold localhost/debian:bookworm (scripts/mkbase makes it; without one, mkbase is
run into a scratch cache, which costs an import when /var/cache/lkpkg/rootfs has the tar).
It is copied (hard links), never changed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _common import BASE_REF, GIT_ENV, ROOT, start_registry, stats

VENV_BIN = ROOT / ".venv" / "bin"
KEY = "org.mobyproject.lkpkg.build-key"
KINDS = ("reuse", "rebuild")


def sh(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout + result.stderr


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, user+sys CPU of the process tree, its output)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    output = sh(argv, env, cwd)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, output


def make_repo(root: Path) -> dict[str, Path]:
    env = {**os.environ, **GIT_ENV, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    packages: dict[str, Path] = {}
    for name in ("hello", "copy"):
        package = root / name
        sh([str(VENV_BIN / "lkpkg"), "init", str(package)], env)
        if name == "hello":
            for file in ("Dockerfile", "hello.c"):
                shutil.copy(ROOT / "examples" / "hello" / file, package / file)
        else:
            (package / "msg").write_text("copy\n")
            (package / "Dockerfile").write_text("FROM scratch\nCOPY msg /msg\n")
        packages[name] = package
    sh(["git", "-C", str(root), "init", "-q", "-b", "main"], env)
    sh(["git", "-C", str(root), "add", "-A"], env)
    sh(["git", "-C", str(root), "commit", "-q", "-m", "bench"], env)
    return packages


def write_index(cache: Path, index: dict[str, object], *, keys: bool) -> None:
    """Put back the index.json the `tag` left (`keys`: as it is; else without any build key,
    as lkpkg wrote it before the build key), atomically: a new inode, so the source cache,
    hard-linked, keeps its own."""
    document = json.loads(json.dumps(index))
    if not keys:
        for entry in document["manifests"]:
            entry.get("annotations", {}).pop(KEY, None)
    tmp = cache / "index.json.bench"
    tmp.write_text(json.dumps(document))
    tmp.replace(cache / "index.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lkpkg-bench-orgswitch-") as tmp:
        work = Path(tmp)
        cache = work / "cache"
        source = args.cache or Path(os.environ.get("LINUXKIT_CACHE") or work / "base")
        if (
            not (source / "index.json").is_file()
            or BASE_REF not in (source / "index.json").read_text()
        ):
            if args.cache is not None:
                raise SystemExit(f"{source} lacks {BASE_REF}: run scripts/mkbase amd64")
            print(f"making {BASE_REF} with scripts/mkbase amd64 in {source}", flush=True)
            sh(
                [str(ROOT / "scripts" / "mkbase"), "amd64"],
                {**os.environ, "LINUXKIT_CACHE": str(source)},
                ROOT,
            )
        sh(["cp", "-al", str(source), str(cache)])
        packages = make_repo(work / "repo")
        registry, host = start_registry(work)
        env = {
            **os.environ,
            "LINUXKIT_CACHE": str(cache),
            "DOCKER_CONFIG": str(work / "docker"),
            "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        }
        env.pop("MAKEFLAGS", None)
        try:
            for package in packages.values():
                sh(["make", f"ORG={host}/a", "NOTRUST=1", "tag"], env, package)
            tagged = json.loads((cache / "index.json").read_bytes())
            results: dict[str, dict[str, dict[str, list[float]]]] = {
                n: {k: {"wall": [], "cpu": []} for k in KINDS} for n in packages
            }
            builds = {n: {k: 0 for k in KINDS} for n in packages}
            serial = 0
            for round_ in range(args.rounds):
                for name, package in packages.items():
                    order = KINDS if round_ % 2 == 0 else tuple(reversed(KINDS))
                    for kind in order:
                        write_index(cache, tagged, keys=kind == "reuse")
                        serial += 1
                        org = f"{host}/o{serial}"
                        wall, cpu, output = timed(
                            ["make", f"ORG={org}", "NOTRUST=1", "push"], env, package
                        )
                        builds[name][kind] += output.count(": building with ")
                        results[name][kind]["wall"].append(wall)
                        results[name][kind]["cpu"].append(cpu)
                print(f"round {round_ + 1}/{args.rounds} done", flush=True)
        finally:
            registry.terminate()
            registry.wait()
        load = os.getloadavg()
        summary: dict[str, object] = {"rounds": args.rounds, "load": load}
        for name in packages:
            row: dict[str, object] = {}
            for kind in KINDS:
                times = stats(results[name][kind]["wall"])
                cpus = stats(results[name][kind]["cpu"])
                row[kind] = {"wall": times, "cpu": cpus, "builds": builds[name][kind]}
                print(
                    f"{name:<5} {kind:<8} make push, new org: wall {times['median']:.2f}s"
                    f" (min {times['min']:.2f}, max {times['max']:.2f})   user+sys "
                    f"{cpus['median']:.2f}s   builds {builds[name][kind]}/{args.rounds}",
                    flush=True,
                )
            w = {k: statistics.median(results[name][k]["wall"]) for k in KINDS}
            c = {k: statistics.median(results[name][k]["cpu"]) for k in KINDS}
            row["ratio"] = {"wall": w["rebuild"] / w["reuse"], "cpu": c["rebuild"] / c["reuse"]}
            print(
                f"{name:<5} ratio rebuild/reuse: wall {w['rebuild'] / w['reuse']:.2f}x, "
                f"user+sys {c['rebuild'] / c['reuse']:.2f}x",
                flush=True,
            )
            summary[name] = row
        print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
        store = cache.with_name(cache.name + ".buildah")
        subprocess.run(
            ["buildah", "rm", "--all"],
            env={**os.environ, "CONTAINERS_STORAGE_CONF": str(store / "storage.conf")},
            capture_output=True,
            check=False,
        )
        subprocess.run(["umount", "-R", str(store)], capture_output=True, check=False)
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
