"""The one error hierarchy of lkpkg, and the one place that maps it to exit codes.

Every failure a user can cause or meet is raised as a subclass of `LkpkgError`. The CLI catches
`LkpkgError` only; anything else is a bug and keeps its traceback. Messages are single lines
that say what went wrong and where (file:line, reference, host); they never carry secrets.

Exit codes (documented in docs/reference.md):

    0  success
    1  the operation failed (a build failed, a registry refused, a verification failed)
    2  bad input: usage, build.yml, reference, missing passphrase — nothing was done
    3  an environment problem: a tool or service lkpkg needs is missing or unreachable
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 3


class LkpkgError(Exception):
    """Base of every error lkpkg reports to a user."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str) -> None:
        # One line: callers may pass multi-line builder output through `detail` instead.
        super().__init__(" ".join(message.splitlines()))

    @property
    def message(self) -> str:
        return str(self.args[0])


class InputError(LkpkgError):
    """The user's input is wrong (flags, build.yml, a reference); nothing was done."""

    exit_code = EXIT_BAD_INPUT


class BuildYmlError(InputError):
    """A build.yml is malformed; the message starts with `path:line:`."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class ReferenceError_(InputError):
    """An image reference, repository name, tag or digest is invalid."""


class EnvironmentProblem(LkpkgError):
    """A tool or service lkpkg relies on is missing or does not answer."""

    exit_code = EXIT_ENVIRONMENT


class GitError(LkpkgError):
    """git failed while lkpkg computed a package's content hash."""


class BuildError(LkpkgError):
    """A builder ran and failed. `tail` holds its last output lines, printed before the error."""

    def __init__(self, message: str, tail: list[str] | None = None) -> None:
        super().__init__(message)
        self.tail = tail or []


class CacheError(LkpkgError):
    """The local OCI cache is unreadable, or a blob did not match its digest."""


class DigestMismatch(CacheError):
    """Content read or written did not hash to the digest that names it."""


def exit_code_for(error: BaseException) -> int:
    """The process exit code for an error; the only mapping from errors to codes."""
    if isinstance(error, LkpkgError):
        return error.exit_code
    return EXIT_FAILED


class FormatError(LkpkgError):
    """An OCI manifest, index, descriptor or image config has the wrong shape or is not JSON."""
