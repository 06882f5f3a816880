"""Docker Content Trust passphrases: which variables hold them, when each is needed, and how
they are kept out of every message.

They are read once, at the CLI's edge (`DCTPassphrases.from_environment` of the process
environment), and travel as a value from there: no library module reads the environment.
The value's `repr` says only which are set.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lkpkg.errors import TrustPassphraseMissing

# Names of environment variables, not secrets.
ROOT_PASSPHRASE = "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE"  # noqa: S105
REPOSITORY_PASSPHRASE = "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE"  # noqa: S105
# notary's own way to answer a trust server's basic-auth challenge without a prompt.
NOTARY_AUTH = "NOTARY_AUTH"
NOTRUST_HINT = "NOTRUST=1 / --notrust to push unsigned"

_REDACTED = "<redacted>"


@dataclass(frozen=True, repr=False)
class DCTPassphrases:
    """The root and repository passphrases (docker's variables), and NOTARY_AUTH. An empty
    string is unset, as it is for docker."""

    root: str = ""
    repository: str = ""
    notary_auth: str = ""

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> DCTPassphrases:
        return cls(
            root=env.get(ROOT_PASSPHRASE, ""),
            repository=env.get(REPOSITORY_PASSPHRASE, ""),
            notary_auth=env.get(NOTARY_AUTH, ""),
        )

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={'set' if value else 'unset'}"
            for name, value in (
                ("root", self.root),
                ("repository", self.repository),
                ("notary_auth", self.notary_auth),
            )
        )
        return f"DCTPassphrases({shown})"

    def secrets(self) -> list[str]:
        """Every value that must never be shown: the passphrases, and NOTARY_AUTH both as
        given and decoded (`user:password`) together with its password alone."""
        values = [self.root, self.repository]
        if self.notary_auth:
            values.append(self.notary_auth)
            try:
                plain = base64.b64decode(self.notary_auth, validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                plain = ""
            values += [plain, plain.partition(":")[2]]
        return [v for v in values if v]


def check_passphrases(passphrases: DCTPassphrases, *, may_need_root: bool) -> None:
    """Raise `TrustPassphraseMissing` (exit 2) if a passphrase signing may need is not set.

    Meant to be called before anything is pushed, so a missing variable costs nothing.
    `may_need_root`: the repository may have to be initialised on the trust server, which
    needs the root key.
    """
    missing = [REPOSITORY_PASSPHRASE] if not passphrases.repository else []
    if may_need_root and not passphrases.root:
        missing.insert(0, ROOT_PASSPHRASE)
    if not missing:
        return
    why = (
        "a repository not yet on the trust server is initialised with the root key"
        if missing == [ROOT_PASSPHRASE]
        else "signing with Docker Content Trust needs it"
    )
    verb = "is" if len(missing) == 1 else "are"
    raise TrustPassphraseMissing(
        f"{' and '.join(missing)} {verb} not set: {why}",
        hint=f"export {missing[0]}=..., or {NOTRUST_HINT}",
    )


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each non-empty secret replaced by `<redacted>`.

    Longer secrets go first, so a secret that contains a shorter one is hidden whole.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, _REDACTED)
    return text
