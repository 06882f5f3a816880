"""The build engines' settings, as the edge resolves them: builders never read the process
environment themselves (builders/README.md). Apart from builders/base.py's interface, so that
resolving a command's settings (every build and push) does not load the builder types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


def _default_environ() -> dict[str, str]:
    # proc is imported by the first child a builder starts; a command that resolves settings
    # and builds nothing (a re-push) never loads it.
    from lkpkg.proc import DEFAULT_PATH

    return {"PATH": DEFAULT_PATH}


@dataclass(frozen=True)
class EngineSettings:
    """What the edge (the CLI's settings) resolves from flags and the environment for the build
    engines; builders never read the process environment themselves.

    `environ` is the environment children's allow-lists pick from (`proc.child_environment`).
    """

    environ: Mapping[str, str] = field(default_factory=_default_environ)
    docker_host: str | None = None
    docker_client: str | None = None

    @property
    def memo_dir(self) -> Path | None:
        """Where builders remember what a tool said about itself across runs (its version,
        keyed by the executable's identity): `$XDG_CACHE_HOME/lkpkg`, else `$HOME/.cache/lkpkg`;
        None when `environ` names neither."""
        base = self.environ.get("XDG_CACHE_HOME") or ""
        if not base and self.environ.get("HOME"):
            base = str(Path(self.environ["HOME"]) / ".cache")
        return Path(base) / "lkpkg" if base else None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> EngineSettings:
        """`DOCKER_HOST` and `LKPKG_DOCKER_CLIENT` of `environ`, and `environ` for children."""
        return cls(
            environ=dict(environ),
            docker_host=environ.get("DOCKER_HOST") or None,
            docker_client=environ.get("LKPKG_DOCKER_CLIENT") or None,
        )
