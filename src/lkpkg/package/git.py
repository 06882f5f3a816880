"""Running git: the one place lkpkg starts a git process, with a clean environment.

Used by the content hash (treehash, which also reads HEAD's commit and time while it is at
it), the package model (HEAD of a repository treehash did not read) and the push pipeline
(tags on HEAD, linuxkit's default release names).

Invariants: git runs with `LC_ALL=C`, no pager, no prompts and `GIT_OPTIONAL_LOCKS=0` (so
nothing refreshes the user's index); inherited `GIT_*` variables that could point it at
another repository are dropped; a missing git is an `EnvironmentProblem`, never a traceback.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lkpkg.errors import EnvironmentProblem

# Inherited GIT_* variables can point git at another repository, index or object store than
# the one we located (inside a git hook, GIT_DIR and GIT_INDEX_FILE are set) or change how it
# reads pathspecs, so all are dropped except these, which only pick configuration files or
# turn on tracing.
_KEPT_GIT_VARIABLES = frozenset(
    {
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_SYSTEM",
        "GIT_CONFIG_NOSYSTEM",
        "GIT_EXEC_PATH",
        "GIT_TRACE",
        "GIT_TRACE2",
        "GIT_TRACE2_EVENT",
        "GIT_TRACE2_PERF",
    }
)

# Paths are passed and read as exact bytes: no globbing or magic in pathspecs (a package may
# be named "p*"), no quoting of names in output.
GIT_OPTIONS: tuple[bytes, ...] = (
    b"--no-pager",
    b"--literal-pathspecs",
    b"-c",
    b"core.quotepath=off",
)


def repository_top(directory: Path) -> Path | None:
    """The nearest enclosing directory holding a `.git` entry (a directory, or the file a
    worktree or submodule has), or None outside any repository."""
    for candidate in (directory, *directory.parents):
        dot_git = candidate / ".git"
        if dot_git.is_symlink() or dot_git.exists():
            return candidate
    return None


def _not_started(exc: OSError, cwd: Path) -> EnvironmentProblem:
    """The one-line error for a git process that could not be started."""
    if isinstance(exc, FileNotFoundError):
        return EnvironmentProblem(
            "git: not found; computing a package's content hash needs it installed"
        )
    return EnvironmentProblem(f"cannot run git in {cwd}: {exc.strerror or exc}")


def spawn(
    argv: Sequence[bytes | str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run one git process (argv[0] is `git`) and capture its output."""
    try:
        return subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else git_environment(),
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    except OSError as exc:
        raise _not_started(exc, cwd) from exc


def spawn_together(
    commands: Sequence[tuple[Sequence[bytes | str], bytes | None]],
    *,
    cwd: Path,
    env: Mapping[str, str],
) -> list[subprocess.CompletedProcess[bytes]]:
    """Run independent git processes at the same time: each `(argv, stdin)` is started
    before any is waited for, so their wall times overlap. Results in the same order."""
    started: list[tuple[subprocess.Popen[bytes], bytes | None]] = []
    try:
        for argv, stdin in commands:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            started.append((proc, stdin))
        done = []
        for proc, stdin in started:
            # One at a time is enough: the others run on meanwhile, and none waits for another.
            out, err = proc.communicate(stdin)
            done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        return done
    except OSError as exc:
        raise _not_started(exc, cwd) from exc
    finally:
        for proc, _ in started:
            if proc.returncode is None:
                proc.kill()
                proc.wait()


def git_environment() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("GIT_") or name in _KEPT_GIT_VARIABLES
    }
    env.update(
        {
            "LC_ALL": "C",
            "GIT_PAGER": "cat",
            "PAGER": "cat",
            "GIT_OPTIONAL_LOCKS": "0",
            "GIT_TERMINAL_PROMPT": "0",
        }
    )
    return env


@dataclass(frozen=True)
class GitHead:
    """A repository's HEAD commit and its commit time (seconds since the epoch)."""

    commit: str
    time: int

    @classmethod
    def from_commit_object(cls, commit: str, body: bytes) -> GitHead | None:
        """From the raw commit object (`git cat-file commit`): its committer time, which is
        what `git log --format=%ct` prints. None if the object has no committer line."""
        for line in body.split(b"\n"):
            if not line:
                break  # the headers end at the first empty line; the message follows
            if line.startswith(b"committer "):
                when = line.rsplit(b" ", 2)[-2]
                return cls(commit, int(when)) if when.isdigit() else None
        return None


def head(top: Path) -> GitHead | None:
    """HEAD of the repository at `top`, or None when HEAD has no commit yet."""
    done = spawn(["git", "-C", str(top), "log", "-1", "--format=%H %ct", "HEAD"], cwd=top)
    if done.returncode != 0:
        return None
    commit, _, when = done.stdout.decode("ascii", "replace").strip().partition(" ")
    return GitHead(commit, int(when)) if when.isdigit() else None


def tags_at(top: Path, commit: str) -> tuple[str, ...]:
    """The tags pointing at `commit` in the repository at `top` (none when git fails).

    A repository that surely has no tag at all is not asked (`_may_have_tags`): every push
    asks for linuxkit's default release names, and most repositories have no tag on HEAD."""
    if not _may_have_tags(top):
        return ()
    done = spawn(["git", "-C", str(top), "tag", "--points-at", commit], cwd=top)
    if done.returncode != 0:
        return ()
    return tuple(t for t in done.stdout.decode("utf-8", "replace").split() if t)


def _may_have_tags(top: Path) -> bool:
    """False only where the repository at `top` surely has no tag: a plain `.git` directory
    (no worktree or submodule indirection, no reftable) whose `refs/tags` is empty or absent
    and whose `packed-refs` names no tag. Anything else, unreadable included: True (ask git)."""
    git_dir = top / ".git"
    if not git_dir.is_dir() or (git_dir / "reftable").exists():
        return True
    try:
        if any((git_dir / "refs" / "tags").iterdir()):
            return True
    except FileNotFoundError:
        pass
    except OSError:
        return True
    try:
        packed = (git_dir / "packed-refs").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return b" refs/tags/" in packed


def resolve_commit(top: Path, commit: str) -> str | None:
    """The full id of `commit` (a name git understands) in the repository at `top`, or None."""
    done = spawn(
        ["git", "-C", str(top), "rev-parse", "--verify", "-q", f"{commit}^{{commit}}"], cwd=top
    )
    return done.stdout.decode("ascii", "replace").strip() if done.returncode == 0 else None
