"""Running external tools (builders, git) with bounded output capture.

Invariants:
- argv never carries a secret: callers pass secrets through the environment or stdin.
- Output is kept only as a bounded tail (the last lines a user needs to see a failure), so a
  chatty multi-gigabyte build log never sits in memory.
- A missing executable is an `EnvironmentProblem` naming the tool, never a traceback.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lkpkg.errors import BuildError, EnvironmentProblem

TAIL_LINES = 25


@dataclass(frozen=True)
class Result:
    returncode: int
    tail: list[str]


def _environment(env: Mapping[str, str | None] | None) -> dict[str, str]:
    """Our environment with `env` applied; a None value removes that variable."""
    full = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    return full


def run_logged(
    argv: Sequence[str],
    *,
    what: str,
    env: Mapping[str, str | None] | None = None,
    cwd: Path | None = None,
    echo: bool = False,
    check: bool = True,
) -> Result:
    """Run a command, merging stdout and stderr, keeping the last lines.

    `echo` streams each line to our stderr as it comes (verbose builds). On failure with
    `check`, raises `BuildError` whose `tail` carries the last lines.
    """
    full_env = _environment(env)
    try:
        proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd,
        )
    except FileNotFoundError as exc:
        raise EnvironmentProblem(f"{argv[0]}: not found; {what} needs it installed") from exc
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        tail.append(line)
        if echo:
            print(line, file=sys.stderr, flush=True)
    code = proc.wait()
    if check and code != 0:
        raise BuildError(f"{what} failed (exit {code})", tail=list(tail))
    return Result(code, list(tail))


def run_quiet(
    argv: Sequence[str],
    *,
    env: Mapping[str, str | None] | None = None,
    timeout: float | None = 60,
) -> subprocess.CompletedProcess[str]:
    """Run a short query command and return its output; never raises on a non-zero exit."""
    full_env = _environment(env)
    try:
        return subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        return subprocess.CompletedProcess(list(argv), 127, "", f"{argv[0]}: not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(argv), 124, "", f"{argv[0]}: timed out")
