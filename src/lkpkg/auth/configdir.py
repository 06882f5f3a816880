"""Where docker's client configuration lives, apart from reading it (dockerconfig.py): every
registry client needs the directory (its `tls/` and `certs.d/` material), while config.json
is read only when a registry asks for credentials."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def default_config_dir(env: Mapping[str, str]) -> Path:
    """`$DOCKER_CONFIG`, else `~/.docker` (`$HOME` from `env`), as the docker CLI decides.

    `env` is the caller's (the CLI resolves it once); the library never reads the process's."""
    configured = env.get("DOCKER_CONFIG")
    if configured:
        return Path(configured)
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".docker"
