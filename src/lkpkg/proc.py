"""Running external tools (builders, git) with bounded output capture.

Invariants:
- argv never carries a secret: callers pass secrets through the environment or stdin.
- A child sees only the variables its tool needs: `child_environment` builds its environment
  from an allow-list over the environment the caller resolved (never from `os.environ` here),
  and the passphrases of the trust tools are refused even when an allow-list names them.
- Output is kept only as a bounded tail (the last lines a user needs to see a failure), so a
  chatty multi-gigabyte build log never sits in memory.
- A missing executable is an `EnvironmentProblem` naming the tool, never a traceback.
- A child never outlives lkpkg: it runs in its own process group with `PR_SET_PDEATHSIG`
  (SIGKILL when the thread that started it dies, even by SIGKILL), and every exit path that
  leaves it running (an exception, Ctrl-C, interpreter exit) kills its whole group.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import fnmatch
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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


_PR_SET_PDEATHSIG = 1
_live: set[int] = set()  # process groups of children still running
_live_lock = threading.Lock()
# Set by `stop_children`: the run is being stopped, and a child started now is killed too.
_stopping = False
# Verbose builds of parallel packages echo from several threads: one lock, one write per line.
_echo_lock = threading.Lock()


def _load_prctl() -> Callable[..., int] | None:
    import ctypes  # here: most commands never start a tool (ctypes costs ~1 ms to import)

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    prctl: Callable[..., int] | None = getattr(libc, "prctl", None)
    return prctl


# Looked up once, by the parent before its first fork (`_popen`): the child must only call
# it, never load anything.
_prctl: Callable[..., int] | None = None
_prctl_loaded = False
_prctl_lock = threading.Lock()


def _ensure_prctl() -> None:
    global _prctl, _prctl_loaded
    with _prctl_lock:
        if not _prctl_loaded:
            _prctl = _load_prctl()
            _prctl_loaded = True


# PR_SET_PDEATHSIG reaches only the process it is set on, and a tool's own children (buildah's
# RUN steps, its copier) would outlive it. So the direct child is a shell that waits for the
# tool and, told by the kernel that lkpkg died (SIGTERM), kills its whole process group.
_SUPERVISOR = 'trap "kill -KILL 0" TERM; "$@" & wait $!'


def _in_own_group_dying_with_us() -> None:
    """preexec_fn: a process group of the child's own, and SIGTERM when its parent dies."""
    os.setpgid(0, 0)
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def stop_children() -> None:
    """An interrupted run (Ctrl-C, SIGTERM): kill the process group of every child running
    now and of any work (`run_logged`) started from now on, so the jobs waiting on them end
    at once; their clean-up (`run_quiet`) still runs."""
    global _stopping
    with _live_lock:
        _stopping = True
        groups = list(_live)
    for pgid in groups:
        _kill_group(pgid)


@atexit.register
def kill_live_groups() -> None:
    """Kill the process group of every child still running (at exit: none may outlive us;
    `lkpkg.cli.main` calls it before it ends the process without the atexit hooks)."""
    with _live_lock:
        groups = list(_live)
    for pgid in groups:
        _kill_group(pgid)


@contextlib.contextmanager
def _supervised(
    proc: subprocess.Popen[bytes] | subprocess.Popen[str], *, work: bool = False
) -> Iterator[None]:
    """Track `proc`'s group while it runs; kill the group if we leave before it was reaped.

    The group is only signalled while `proc` is unreaped: its pid (the group's id) cannot be
    reused by another process before that. `work` (a build, a load: `run_logged`) started
    while the run is being stopped (`stop_children`) is stopped at once; a short query or
    clean-up (`run_quiet`, e.g. the builder's sweep of what the stopped build left) runs.
    """
    with _live_lock:
        _live.add(proc.pid)
        stopping = _stopping
    if stopping and work:
        _kill_group(proc.pid)
    try:
        yield
    finally:
        if proc.returncode is None:
            _kill_group(proc.pid)
            proc.wait()
        with _live_lock:
            _live.discard(proc.pid)


def _reap_with_group(proc: subprocess.Popen[bytes]) -> int:
    """Wait for `proc`, then kill what is left of its group (a builder's helpers), then reap."""
    with contextlib.suppress(ChildProcessError):
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    _kill_group(proc.pid)
    return proc.wait()


def _popen(
    argv: Sequence[str], env: Mapping[str, str], **kwargs: object
) -> subprocess.Popen[bytes]:
    if shutil.which(argv[0], path=env.get("PATH")) is None:
        raise FileNotFoundError(argv[0])
    _ensure_prctl()
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        ["/bin/sh", "-c", _SUPERVISOR, "lkpkg-child", *argv],
        stdin=subprocess.DEVNULL,
        env=dict(env),
        preexec_fn=_in_own_group_dying_with_us,
        **kwargs,
    )


def live_children() -> int:
    """How many children started here are still running (for tests and diagnostics)."""
    with _live_lock:
        return len(_live)


def run_logged(
    argv: Sequence[str],
    *,
    what: str,
    env: Mapping[str, str],
    cwd: Path | None = None,
    echo: bool = False,
    check: bool = True,
    echo_prefix: str = "",
    started: Callable[[], None] | None = None,
) -> Result:
    """Run a command, merging stdout and stderr, keeping the last lines.

    `echo` streams each line to our stderr as it comes (verbose builds), after
    `echo_prefix` (the image being built: parallel builds interleave). `started` is called
    once the command runs. On failure with `check`, raises `BuildError` whose `tail` carries
    the last lines.
    """
    try:
        proc = _popen(argv, env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd)
    except FileNotFoundError as exc:
        raise EnvironmentProblem(f"{argv[0]}: not found; {what} needs it installed") from exc
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    with _supervised(proc, work=True):
        if started is not None:
            started()
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            tail.append(line)
            if echo:
                _echo_line(f"{echo_prefix}{line}\n")
        proc.stdout.close()
        code = _reap_with_group(proc)
    if check and code != 0:
        raise BuildError(f"{what} failed (exit {code})", tail=list(tail))
    return Result(code, list(tail))


def _echo_line(text: str) -> None:
    """Write one whole line to stderr. `print` writes the text and its newline in two calls,
    so two builds echoing at once could join their lines ("A | xB | y" then two newlines)."""
    with _echo_lock:
        sys.stderr.write(text)
        sys.stderr.flush()


def run_quiet(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float | None = 60,
) -> subprocess.CompletedProcess[str]:
    """Run a short query command and return its output; never raises on a non-zero exit."""
    try:
        proc = _popen(argv, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        return subprocess.CompletedProcess(list(argv), 127, "", f"{argv[0]}: not found")
    with _supervised(proc):
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(list(argv), 124, "", f"{argv[0]}: timed out")
    text = (out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
    return subprocess.CompletedProcess(list(argv), proc.returncode, *text)
