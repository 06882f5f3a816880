"""The one error hierarchy of lkpkg, and the one place that maps it to exit codes.

Every failure a user can cause or meet is raised as a subclass of `LkpkgError`. The CLI catches
`LkpkgError` only; anything else is a bug and keeps its traceback. Messages are single lines
that say what went wrong and where (file:line, reference, host); they never carry secrets.
How to fix it, when lkpkg knows, goes in the structured `hint` (one line too), which the CLI
prints on a line of its own (`lkpkg: hint: ...`) and nobody has to parse out of the message.

Exit codes (documented in docs/reference.md):

    0  success
    1  the operation failed (a build failed, a registry refused, a verification failed)
    2  bad input: usage, build.yml, reference, missing passphrase, a malformed docker
       config.json or certificate file — nothing was done
    3  an environment problem: a tool or service lkpkg needs (such as a docker credential
       helper, or a registry) is missing, fails or is unreachable
    4  a registry or token service refused our credentials, or wants some we do not have
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 3
EXIT_AUTH = 4


class LkpkgError(Exception):
    """Base of every error lkpkg reports to a user."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        # One line: multi-line builder output goes through `BuildError.tail` instead.
        super().__init__(" ".join(message.splitlines()))
        self.hint = " ".join(hint.splitlines()) if hint else None

    @property
    def message(self) -> str:
        return str(self.args[0])


class InputError(LkpkgError):
    """The user's input is wrong (flags, build.yml, a reference); nothing was done."""

    exit_code = EXIT_BAD_INPUT


class BuildYmlError(InputError):
    """A build.yml is malformed; the message starts with `path:line:`."""

    def __init__(
        self, path: str, line: int | None, message: str, *, hint: str | None = None
    ) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}", hint=hint)
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

    def __init__(
        self, message: str, tail: list[str] | None = None, *, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
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


class AuthConfigError(InputError):
    """A docker config.json is malformed; the message names the file (and line:col for bad JSON),
    never a credential in it."""


class CredentialHelperError(EnvironmentProblem):
    """A `docker-credential-<name>` helper is missing, failed or timed out; the message names the
    helper and the registry, never a secret."""


class TLSConfigError(InputError):
    """A CA or client certificate file (certs.d, or one the user named) cannot be read or used;
    the message names the file."""


class RegistryError(LkpkgError):
    """A registry answered with an error lkpkg cannot work around (a 5xx after retries, an
    answer that breaks the distribution spec). Subclasses name the cases a caller may handle."""


class RegistryUnreachable(RegistryError, EnvironmentProblem):
    """No HTTP answer from a registry or its token service: refused, reset, timed out, DNS, or
    a TLS handshake that failed (`registry 127.0.0.1:5000 unreachable: connection refused`)."""

    exit_code = EXIT_ENVIRONMENT


class AuthError(RegistryError):
    """The registry or its token realm wants credentials lkpkg does not have or that it refused.
    The message names where the credentials came from (`credentials tried: ...`), never them."""

    exit_code = EXIT_AUTH


class NameUnknown(RegistryError):
    """The registry does not know the repository, or the tag, manifest or blob asked for in it
    (NAME_UNKNOWN, MANIFEST_UNKNOWN, BLOB_UNKNOWN, or a bare 404)."""


class RegistryRefused(RegistryError):
    """The registry understood the request and refused it: access denied (403 DENIED), a quota
    or size limit (413, TOOMANYREQUESTS after retries), or an invalid manifest or digest (400)."""


class TrustError(LkpkgError):
    """Signing with Docker Content Trust, or reading what a trust server says is signed, failed
    (the notary server refused a publish, or answered something unusable). Messages name the
    GUN and the trust server; notary's own words appear only with every passphrase scrubbed."""


class TrustConfigError(InputError):
    """The trust setup is unusable before anything is signed: DOCKER_CONTENT_TRUST_SERVER is not
    an https:// URL, or the trust server's CA file cannot be read. Nothing was pushed or signed."""


class TrustPassphraseMissing(TrustConfigError):
    """A passphrase signing needs is not in the environment; the message names the variable to
    set (or NOTRUST=1 / --notrust to push unsigned), never a value."""


class TrustServerUnreachable(TrustError, EnvironmentProblem):
    """No usable answer from the notary server: refused, timed out, DNS, or a TLS handshake that
    failed (`trust server https://notary.example:4443 unreachable: connection refused`)."""

    exit_code = EXIT_ENVIRONMENT


class TrustKeyError(TrustError):
    """A signing key is missing or locked: no local key for the role that must sign, a
    passphrase variable that does not unlock it (named, never shown), or a trust server that
    refused our credentials."""

    exit_code = EXIT_AUTH


class VerificationFailed(LkpkgError):
    """A signature check failed: a tag is unsigned, a signed digest differs from what the
    registry serves, or no signature verifies with the given key. Names the first mismatch."""


class DoctorFailed(LkpkgError):
    """`lkpkg doctor` found a check that failed; each failing check printed its own fix above
    the summary."""


class PackagesFailed(LkpkgError):
    """A run over several packages finished with some of them failed, or blocked because a
    package they need failed. The summary before it names each one and why; the message is
    `N of M packages failed: …`. The packages that did not fail were built or pushed."""
