"""Running external tools (builders, git) with bounded output capture.

Invariants:
- argv never carries a secret: callers pass secrets through the environment or stdin.
- A child sees only the variables its tool needs: `child_environment` builds its environment
  from an allow-list over the environment the caller resolved (never from `os.environ` here),
  and the passphrases of the trust tools are refused even when an allow-list names them.
- Output is kept only as a bounded tail (the last lines a user needs to see a failure), so a
  chatty multi-gigabyte build log never sits in memory.
- A missing executable is an `EnvironmentProblem` naming the tool, never a traceback.
"""

from __future__ import annotations

import collections
import fnmatch
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lkpkg.errors import BuildError, EnvironmentProblem

TAIL_LINES = 25


@dataclass(frozen=True)
class Result:
    returncode: int
    tail: list[str]


# A PATH for tools when the caller has no environment to give (e.g. a bare doctor probe).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# What every tool may see: where programs are, the locale, where temporary files go, proxies.
COMMON_VARIABLES = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
    "TERM",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
)

# Secrets only the trust tools may see: never passed to any other child, whatever its list says.
SECRET_VARIABLES = (
    "COSIGN_PASSWORD",
    "COSIGN_PRIVATE_KEY",
    "DOCKER_CONTENT_TRUST*",
    "NOTARY_*",
)


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def child_environment(
    parent: Mapping[str, str],
    allow: Iterable[str],
    *,
    overrides: Mapping[str, str] | None = None,
    secrets_allowed: Iterable[str] = (),
) -> dict[str, str]:
    """The environment of a child: the `parent` variables named by `allow` (glob patterns,
    plus `COMMON_VARIABLES`), then `overrides`. Variables in `SECRET_VARIABLES` pass only when
    `secrets_allowed` names them (a trust tool asking for its own passphrases)."""
    patterns = (*COMMON_VARIABLES, *allow)
    allowed_secrets = tuple(secrets_allowed)
    env = {
        name: value
        for name, value in parent.items()
        if _matches(name, patterns)
        and (not _matches(name, SECRET_VARIABLES) or _matches(name, allowed_secrets))
    }
    env.update(overrides or {})
    env.setdefault("PATH", DEFAULT_PATH)
    return env


def run_logged(
    argv: Sequence[str],
    *,
    what: str,
    env: Mapping[str, str],
    cwd: Path | None = None,
    echo: bool = False,
    check: bool = True,
) -> Result:
    """Run a command, merging stdout and stderr, keeping the last lines.

    `echo` streams each line to our stderr as it comes (verbose builds). On failure with
    `check`, raises `BuildError` whose `tail` carries the last lines.
    """
    try:
        proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
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
    env: Mapping[str, str],
    timeout: float | None = 60,
) -> subprocess.CompletedProcess[str]:
    """Run a short query command and return its output; never raises on a non-zero exit."""
    try:
        return subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            env=dict(env),
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        return subprocess.CompletedProcess(list(argv), 127, "", f"{argv[0]}: not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(argv), 124, "", f"{argv[0]}: timed out")
