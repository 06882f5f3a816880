"""Build benchmark: `lkpkg build --force` as a user runs it, beside raw buildah doing the same.

Two packages, each in a fresh git repository:
- `tiny`: the examples' `hello` (a static C binary compiled in a Debian stage, FROM scratch);
- `big`: `FROM scratch` + `COPY` of one 256 MiB file of random bytes.

Per round and package, alternating (order reversed on odd rounds):
- lkpkg: the whole `lkpkg build --force --platforms linux/amd64 PKG` process (imports, git,
  base provision, build, export, import into the cache, SBOM and provenance, index);
- lkpkg bare: the same with `--sbom=false --provenance=false` (what raw buildah also does);
- raw buildah: `buildah build` with the flags lkpkg passes (chroot isolation, --no-cache,
  --timestamp, no network through `unshare --net`) + `buildah push IMAGE oci:DIR:REF` into a
  fresh directory: the builder's own work, with the image as an OCI layout at the end.
Both use the cache's own buildah store (bases loaded once before timing), so neither pays for
loading the base. Printed: medians (and min/max) of wall time, and the ratio lkpkg/raw.

    .venv/bin/python bench/build.py [--cache DIR] [--rounds N] [--json F]

--cache must hold localhost/debian:bookworm (scripts/mkbase makes it); it is copied (hard
links), never changed. Target (issue 12): lkpkg <= 1.05x raw buildah for both packages.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LKPKG = str(ROOT / ".venv" / "bin" / "lkpkg")
BASE_REF = "localhost/debian:bookworm"
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}
EPOCH = "1767225600"  # the commit time above: what lkpkg passes as --timestamp


def sh(argv: list[str], env: dict[str, str] | None = None) -> str:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    sh(argv, env)
    return time.perf_counter() - start


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


def raw_buildah(package: Path, store_env: dict[str, str], out: Path) -> float:
    """buildah build + push oci: as lkpkg runs them, timed together."""
    if out.exists():
        shutil.rmtree(out)
    build = ["unshare", "--net", "buildah", "build", "--isolation", "chroot"]
    build += ["--platform", "linux/amd64", "--file", str(package / "Dockerfile")]
    build += ["--tag", "bench/raw:latest", "--pull=never", "--no-cache", "--timestamp", EPOCH]
    build.append(str(package))
    push = ["buildah", "push", "--quiet", "bench/raw:latest", f"oci:{out}:raw"]
    start = time.perf_counter()
    sh(build, store_env)
    sh(push, store_env)
    return time.perf_counter() - start


def stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


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
        kinds = ("lkpkg", "lkpkg-bare", "buildah")
        results: dict[str, dict[str, list[float]]] = {
            name: {kind: [] for kind in kinds} for name in packages
        }
        for round_ in range(args.rounds):
            for name, package in packages.items():
                order = kinds if round_ % 2 == 0 else tuple(reversed(kinds))
                for which in order:
                    if which == "lkpkg":
                        seconds = timed([*lkpkg, str(package)], env)
                    elif which == "lkpkg-bare":
                        seconds = timed([*bare, str(package)], env)
                    else:
                        seconds = raw_buildah(package, store_env, work / "raw-out")
                    results[name][which].append(seconds)
            print(f"round {round_ + 1}/{args.rounds} done", flush=True)
        summary: dict[str, dict[str, object]] = {}
        for name, timings in results.items():
            raw = stats(timings["buildah"])
            summary[name] = {"buildah": raw}
            print(
                f"{name:<5} buildah build+push oci: {raw['median']:.2f}s "
                f"(min {raw['min']:.2f}, max {raw['max']:.2f})",
                flush=True,
            )
            for kind, label in (
                ("lkpkg", "lkpkg build --force"),
                ("lkpkg-bare", "  ... --sbom=false --provenance=false"),
            ):
                ours = stats(timings[kind])
                ratio = ours["median"] / raw["median"]
                summary[name][kind] = {**ours, "ratio": ratio}
                print(
                    f"{name:<5} {label:<38} {ours['median']:.2f}s "
                    f"(min {ours['min']:.2f}, max {ours['max']:.2f})   ratio {ratio:.2f}x",
                    flush=True,
                )
        sh(["buildah", "rmi", "--force", "bench/raw:latest"], store_env)
        if args.json:
            args.json.write_text(json.dumps({"rounds": args.rounds, **summary}, indent=2))


if __name__ == "__main__":
    main()
