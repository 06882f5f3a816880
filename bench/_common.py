"""What the whole-process benches share: paths, a deterministic git, a loopback registry,
and the summary of a series of timings. Benches run as scripts (`python bench/NAME.py`), so
their own directory is on sys.path and `from _common import …` finds this module."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LKPKG = str(ROOT / ".venv" / "bin" / "lkpkg")
PYTHON = str(ROOT / ".venv" / "bin" / "python")
BASE_REF = "localhost/debian:bookworm"
# Commits made by a bench: no user or system git configuration, fixed names and dates.
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


def stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def load() -> str:
    """The load average (1, 5, 15 minutes), printed beside wall times."""
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_registry(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A Distribution registry on a free loopback port, storing under `root`; (process, host)."""
    port = free_port()
    config = root / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'registry'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (root / "registry.log").open("wb")
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=log)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("docker-registry did not start")


def floor_argv(*modules: str) -> list[str]:
    """A Python process that only imports `modules` — the libraries a command must load
    before it can do anything (click for its options, ruamel.yaml for build.yml, httpx for a
    registry): the least any Python command built on them can cost. Benches time it in the
    same run as the command, to print the best ratio a Python tool could reach."""
    return [PYTHON, "-c", f"import {', '.join(modules)}"]
