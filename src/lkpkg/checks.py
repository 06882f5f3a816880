"""A health check's verdict, the vocabulary every subsystem's checks speak (`lkpkg doctor`).

Each subsystem keeps its own checks beside it (`build/checks.py`, `registry/checks.py`,
`auth/checks.py`, `trust/checks.py`); `lkpkg.doctor` only picks which to run and renders them.
A check never raises for what it finds: an error lkpkg would raise during a build or push
becomes a FAIL carrying that error's message, and its `hint` as the fix.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from lkpkg.errors import LkpkgError


class Status(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict. `detail` and `fix` are single lines (newlines are folded)."""

    name: str
    status: Status
    detail: str
    fix: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "detail", one_line(self.detail))
        if self.fix is not None:
            object.__setattr__(self, "fix", one_line(self.fix))
        if self.status is not Status.OK and not self.fix:
            raise ValueError(f"check '{self.name}' is {self.status.value} without a fix")

    @classmethod
    def ok(cls, name: str, detail: str) -> CheckResult:
        return cls(name, Status.OK, detail)

    @classmethod
    def warn(cls, name: str, detail: str, fix: str) -> CheckResult:
        return cls(name, Status.WARN, detail, fix)

    @classmethod
    def fail(cls, name: str, detail: str, fix: str) -> CheckResult:
        return cls(name, Status.FAIL, detail, fix)

    @classmethod
    def failed(cls, name: str, error: LkpkgError, fallback_fix: str) -> CheckResult:
        """A FAIL from an error: its message, and its hint (else `fallback_fix`) as the fix."""
        return cls(name, Status.FAIL, error.message, error.hint or fallback_fix)


def one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())
