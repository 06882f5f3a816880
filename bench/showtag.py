"""`lkpkg show-tag` of linuxkit's own package tree against `linuxkit pkg show-tag` (issue 12).

Usage: .venv/bin/python bench/showtag.py [--rounds 5]
The tree is linuxkit's `pkg/` (from the mirror at /work/.mirror/linuxkit+linuxkit/repo),
committed in a scratch git repository; both tools run as whole processes, alternating, and
the medians and their ratio are printed. Needs /opt/linuxkit/bin/linuxkit (never committed).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LINUXKIT = Path("/opt/linuxkit/bin/linuxkit")
MIRROR = Path("/work/.mirror/linuxkit+linuxkit/repo")
LKPKG = Path(sys.executable).with_name("lkpkg")


def make_tree(root: Path) -> list[str]:
    archive = subprocess.run(
        ["git", "-C", str(MIRROR), "archive", "HEAD", "pkg"], capture_output=True, check=False
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    git = ["git", "-C", str(root), "-c", "user.email=b@b", "-c", "user.name=bench"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "tree"], check=True)
    return sorted(str(p.parent.relative_to(root)) for p in root.glob("pkg/*/build.yml"))


def timed(argv: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    if not LINUXKIT.exists():
        sys.exit(f"{LINUXKIT} is missing: build linuxkit from its source first")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        packages = make_tree(root)
        ours: list[float] = []
        theirs: list[float] = []
        for i in range(rounds):
            runs = [("lkpkg", [str(LKPKG), "show-tag", *packages])]
            runs.append(("linuxkit", [str(LINUXKIT), "pkg", "show-tag", *packages]))
            outputs = {}
            for name, argv in runs if i % 2 == 0 else reversed(runs):
                seconds, outputs[name] = timed(argv, root)
                (ours if name == "lkpkg" else theirs).append(seconds)
            if outputs["lkpkg"] != outputs["linuxkit"]:
                sys.exit("the two tools disagree on the tags")
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"show-tag of {len(packages)} packages: lkpkg {a:.2f} s, linuxkit {b:.2f} s")
        print(f"ratio {a / b:.2f} (target <= 0.4)")


if __name__ == "__main__":
    main()
