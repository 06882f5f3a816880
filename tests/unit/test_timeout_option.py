"""`--timeout SECONDS`: a Settings field, push's option, and the registry clients' deadline."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lkpkg.cli.main import cli
from lkpkg.errors import InputError
from lkpkg.pipeline.registries import RegistryPool
from lkpkg.registry.transport import TransportConfig
from lkpkg.settings import Settings, resolve_settings


def test_the_pool_gives_every_client_the_deadline(tmp_path: Path) -> None:
    with RegistryPool([], {"HOME": str(tmp_path)}, timeout=7.5) as pool:
        config = pool("127.0.0.1:5000").config
    assert config.deadline == 7.5
    assert config.read_timeout == config.write_timeout == 7.5
    assert config.connect_timeout == min(7.5, TransportConfig.connect_timeout)


def test_without_timeout_the_clients_keep_the_defaults(tmp_path: Path) -> None:
    with RegistryPool([], {"HOME": str(tmp_path)}) as pool:
        assert pool("127.0.0.1:5000").config.deadline == TransportConfig().deadline


def test_settings_carry_the_timeout_and_refuse_nonsense(tmp_path: Path) -> None:
    assert resolve_settings({}, cache_dir=tmp_path, timeout=3.0).timeout == 3.0
    with pytest.raises(InputError, match="--timeout"):
        Settings(cache_dir=tmp_path, timeout=0.0)


def test_push_takes_timeout_and_refuses_zero() -> None:
    runner = CliRunner()
    assert "--timeout" in runner.invoke(cli, ["push", "--help"]).output
    refused = runner.invoke(cli, ["push", "--timeout", "0", "."])
    assert refused.exit_code == 2
    assert "--timeout" in refused.output
