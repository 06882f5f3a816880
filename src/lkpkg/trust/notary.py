"""Running Debian's `notary` CLI: fixed flags, its own environment, no terminal, a timeout,
and notary's failures turned into lkpkg's errors with every secret scrubbed.

The child's environment is built, not inherited: the variables notary needs to run
(`DCTSettings.tool_env`: PATH, HOME, locale, proxies, CA overrides) plus its own
`NOTARY_*` passphrases. No other tool's secret (COSIGN_PASSWORD, registry passwords) and
none of docker's passphrase variables reach it.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from lkpkg.errors import (
    EnvironmentProblem,
    LkpkgError,
    TrustError,
    TrustKeyError,
    TrustServerUnreachable,
)
from lkpkg.proc import child_environment
from lkpkg.trust.config import NOTARY_VARIABLES, DCTSettings, TrustConfig, docker_ca_path
from lkpkg.trust.notary_output import fatal_reason
from lkpkg.trust.passphrases import (
    NOTARY_AUTH,
    NOTRUST_HINT,
    REPOSITORY_PASSPHRASE,
    ROOT_PASSPHRASE,
    DCTPassphrases,
    scrub,
)

NOTARY = "notary"
NOTARY_TIMEOUT = 120.0

# docker's passphrase retriever answers root from the ROOT variable and every other role
# (targets, snapshot, and any delegation key, which docker files under the signer's name) from
# the REPOSITORY variable. The notary CLI asks per alias; this maps its aliases onto docker's.
NOTARY_PASSPHRASE_ENV: Mapping[str, str] = {
    "NOTARY_ROOT_PASSPHRASE": ROOT_PASSPHRASE,
    "NOTARY_TARGETS_PASSPHRASE": REPOSITORY_PASSPHRASE,
    "NOTARY_SNAPSHOT_PASSPHRASE": REPOSITORY_PASSPHRASE,
    "NOTARY_DELEGATION_PASSPHRASE": REPOSITORY_PASSPHRASE,
}

_UNREACHABLE = re.compile(r'could not reach \S+: (?:Get "[^"]*": )?(?P<why>[^"\n]+)')
_HTTP_401 = re.compile(r"\b401\b|unauthorized", re.IGNORECASE)


def notary_environment(passphrases: DCTPassphrases, tool_env: Mapping[str, str]) -> dict[str, str]:
    """The whole environment notary runs with: what it needs to run from `tool_env`
    (`proc.child_environment`, which drops every secret variable, a stray NOTARY_* one too),
    docker's passphrases under the names the notary CLI reads, and NOTARY_AUTH if set."""
    values = {ROOT_PASSPHRASE: passphrases.root, REPOSITORY_PASSPHRASE: passphrases.repository}
    own = {
        notary_name: values[docker_name]
        for notary_name, docker_name in NOTARY_PASSPHRASE_ENV.items()
        if values[docker_name]
    }
    if passphrases.notary_auth:
        own[NOTARY_AUTH] = passphrases.notary_auth
    return child_environment(tool_env, NOTARY_VARIABLES, overrides=own)


@dataclass(frozen=True)
class NotaryRun:
    returncode: int
    output: str  # stdout (where notary prints `* fatal:`) then stderr (its log lines)

    @property
    def fatal(self) -> str:
        return fatal_reason(self.output)


class NotaryCLI:
    """One configured notary CLI: fixed flags, child environment, and error wording."""

    def __init__(
        self,
        executable: str,
        config: TrustConfig,
        settings: DCTSettings,
        config_file: Path,
        timeout: float,
    ) -> None:
        self._executable = executable
        self.config = config
        self._child_env = notary_environment(settings.passphrases, settings.tool_env)
        self._secrets = settings.passphrases.secrets()
        self._config_dir = settings.docker_config_dir
        # `-c`: an empty config of our own, so a ~/.notary/config.json (trust pinning, another
        # server) cannot make notary trust differently from docker, which never reads it.
        self._prefix = [
            executable,
            "-c",
            str(config_file),
            "-s",
            config.server,
            "-d",
            str(config.trust_dir),
        ]
        if config.ca_cert is not None:
            self._prefix += ["--tlscacert", str(config.ca_cert)]
        self._timeout = timeout

    def run(self, *args: str) -> NotaryRun:
        try:
            done = subprocess.run(
                [*self._prefix, *args],
                # A prompt (a passphrase we did not provide, a username for the server) reads
                # EOF and fails at once instead of waiting for a TTY that is not there.
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=self._child_env,
                timeout=self._timeout,
                check=False,
            )
        except FileNotFoundError:
            raise EnvironmentProblem(
                f"{self._executable}: not found; signing with Docker Content Trust needs the"
                " notary CLI",
                hint=f"apt-get install notary, or {NOTRUST_HINT}",
            ) from None
        except subprocess.TimeoutExpired:
            raise TrustServerUnreachable(
                f"trust server {self.config.server} unreachable: `notary {args[0]}` did not"
                f" finish in {self._timeout:g}s"
            ) from None
        output = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
        return NotaryRun(done.returncode, output)

    def checked(self, what: str, *args: str, passphrase: str | None = None) -> str:
        """Run; on failure raise the error notary's output calls for. `passphrase` names the
        variable whose key this step unlocks, for a "password invalid"."""
        result = self.run(*args)
        if result.returncode != 0:
            raise self.failure(what, result, passphrase=passphrase)
        return result.output

    def scrubbed(self, text: str) -> str:
        return scrub(text, self._secrets)

    def failure(self, what: str, result: NotaryRun, *, passphrase: str | None = None) -> LkpkgError:
        """The one-line error for a failed notary run; notary's words are scrubbed first."""
        fatal = self.scrubbed(result.fatal)
        server = self.config.server
        if fatal == "client is offline" or "could not reach" in result.output:
            # notary's log line quotes its message, so the inner quotes arrive escaped.
            match = _UNREACHABLE.search(result.output.replace('\\"', '"'))
            why = self.scrubbed(match.group("why").strip()) if match else fatal
            return TrustServerUnreachable(
                f"trust server {server} unreachable: {why}", hint=self.unreachable_hint(why)
            )
        if "password invalid" in fatal or "passphrase attempts exceeded" in fatal:
            variable = passphrase or REPOSITORY_PASSPHRASE
            return TrustKeyError(
                f"{what}: {variable} does not unlock the key in"
                f" {self.config.trust_dir / 'private'} (notary: {fatal})",
                hint=f"set {variable} to the passphrase the key was made with",
            )
        if "not authorized" in fatal or _HTTP_401.search(fatal):
            return TrustKeyError(
                f"{what}: trust server {server} refused us: {fatal}",
                hint=f"notary sends the credentials in {NOTARY_AUTH}, base64 of user:password",
            )
        return TrustError(f"{what} at {server} failed: {fatal}")

    def unreachable_hint(self, why: str) -> str | None:
        if "x509:" in why or "certificate" in why:
            ca = self.config.ca_cert or "the system's CA roots"
            where = docker_ca_path(self._config_dir, self.config.server_host)
            return f"CA used: {ca}; docker reads it from {where} (or pass --trust-ca FILE)"
        return None


@contextlib.contextmanager
def notary_cli(
    config: TrustConfig,
    settings: DCTSettings,
    *,
    executable: str = NOTARY,
    timeout: float = NOTARY_TIMEOUT,
) -> Iterator[NotaryCLI]:
    """A `NotaryCLI` with an empty configuration file of ours, for the block."""
    with tempfile.TemporaryDirectory(prefix="lkpkg-notary-") as scratch:
        config_file = Path(scratch) / "config.json"
        config_file.write_text("{}\n")
        yield NotaryCLI(executable, config, settings, config_file, timeout)
