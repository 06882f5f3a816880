"""No-op rebuild benchmark: what `lkpkg build` costs when every package is already built.

The examples tree is copied into a fresh git repository and committed (the usual CI case: a
clean checkout), built once for real into a copy of a cache holding the Debian base, then
rebuilt `--rounds` times with nothing changed. Each rebuild runs with a PATH holding git
alone: a builder call would fail the run, so a passing round proves nothing was built.

Printed: lkpkg's wall time and user+sys CPU (its own and its children's, git included) per
rebuild — median, min and max — beside the same for a bare `import lkpkg.cli.main`, which
is what any lkpkg command pays before it does anything; and the processes a rebuild spawns.

    .venv/bin/python bench/rebuild.py [--cache DIR] [--platforms P,...] [--rounds N] [--json F]

--cache must hold localhost/debian:bookworm for the platforms (scripts/mkbase makes it);
default $LINUXKIT_CACHE, else .lkpkg-work/cache. Target (issue: many packages): a no-op
rebuild of the whole tree in well under a second.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _common import GIT_ENV, LKPKG, PYTHON, ROOT, stats


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run `argv` to completion; (wall seconds, user+sys CPU seconds of it and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:2])} failed ({result.returncode}):\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def show(label: str, wall: list[float], cpu: list[float]) -> None:
    w, c = stats(wall), stats(cpu)
    print(
        f"{label:<28} wall {w['median']:.3f}s (min {w['min']:.3f}, max {w['max']:.3f})   "
        f"user+sys {c['median']:.3f}s (min {c['min']:.3f}, max {c['max']:.3f})",
        flush=True,
    )


def bare_path(directory: Path, log: Path | None = None) -> str:
    """A PATH with git only (optionally a git that logs each call): no builder, no unshare."""
    directory.mkdir(parents=True, exist_ok=True)
    git = shutil.which("git")
    if git is None:
        raise SystemExit("git is not installed")
    target = directory / "git"
    if log is None:
        target.symlink_to(git)
    else:
        target.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {git} "$@"\n')
        target.chmod(0o755)
    return str(directory)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_cache = os.environ.get("LINUXKIT_CACHE") or str(ROOT / ".lkpkg-work" / "cache")
    parser.add_argument("--cache", type=Path, default=Path(default_cache))
    parser.add_argument("--platforms", default=f"linux/{host_arch()}")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if not (args.cache / "index.json").is_file():
        raise SystemExit(f"{args.cache}: no cache here; run scripts/mkbase first")

    with tempfile.TemporaryDirectory(prefix="lkpkg-bench-rebuild-") as tmp:
        work = Path(tmp)
        repo = work / "examples"
        shutil.copytree(ROOT / "examples", repo)
        git_env = {**os.environ, **GIT_ENV}
        for git_args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "x"]):
            subprocess.run(["git", "-C", str(repo), *git_args], env=git_env, check=True)
        packages = sorted(str(p.parent) for p in repo.glob("*/build.yml"))
        cache = work / "cache"
        subprocess.run(["cp", "-al", str(args.cache), str(cache)], check=True)
        command = [LKPKG, "build", "--cache", str(cache), "--platforms", args.platforms]
        command += ["--progress", "plain", *packages]

        print(f"{len(packages)} packages, {args.platforms}, {args.rounds} rounds", flush=True)
        first_wall, first_cpu = timed(command, dict(os.environ))
        print(f"{'first build (real)':<28} wall {first_wall:.1f}s   user+sys {first_cpu:.1f}s")

        env = {**os.environ, "PATH": bare_path(work / "bin")}
        rebuild_wall: list[float] = []
        rebuild_cpu: list[float] = []
        import_wall: list[float] = []
        import_cpu: list[float] = []
        for _ in range(args.rounds):
            wall, cpu = timed(command, env)
            rebuild_wall.append(wall)
            rebuild_cpu.append(cpu)
            wall, cpu = timed([PYTHON, "-c", "import lkpkg.cli.main"], env)
            import_wall.append(wall)
            import_cpu.append(cpu)
        show("no-op rebuild", rebuild_wall, rebuild_cpu)
        show("python + import lkpkg only", import_wall, import_cpu)
        own = statistics.median(rebuild_wall) - statistics.median(import_wall)
        print(f"{'the rebuild itself':<28} wall {own:.3f}s (median difference)")

        log = work / "git.log"
        counted = {**os.environ, "PATH": bare_path(work / "counted-bin", log)}
        timed(command, counted)
        calls = [subcommand(line.split()) for line in log.read_text().splitlines()]
        print(f"processes per rebuild: {len(calls)} ({', '.join(calls)}); no builder ran")

    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "packages": len(packages),
                    "platforms": args.platforms,
                    "rebuild_wall": stats(rebuild_wall),
                    "rebuild_cpu": stats(rebuild_cpu),
                    "import_wall": stats(import_wall),
                    "import_cpu": stats(import_cpu),
                    "processes": calls,
                },
                indent=2,
            )
        )


def subcommand(argv: list[str]) -> str:
    """`git -C DIR -c K=V log …` → `git log`: the word after git's own options."""
    words = iter(argv)
    for word in words:
        if word in ("-C", "-c"):
            next(words, None)
        elif not word.startswith("-"):
            return f"git {word}"
    return "git"


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


if __name__ == "__main__":
    main()
