"""Pushes through a fault-injecting proxy in front of the real Distribution registry.

Bounded for CI (20 small pushes per rate); bench/faults.py runs the full figures (100 pushes
at 10% and at 30%) recorded in docs/reliability.md. The judge (tests/fixtures/faultpush.py)
reads the registry directly with skopeo and hashes every blob.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lkpkg.cache.layout import Cache
from lkpkg.errors import RegistryUnreachable
from lkpkg.oci.model import Descriptor
from lkpkg.registry import TransportConfig
from tests.conftest import lkpkg
from tests.fixtures.faultproxy import FaultMix, FaultProxy, StalledServer
from tests.fixtures.faultpush import attempt, client_for, judge, small_image
from tests.fixtures.registry import RegistryInfo, unique_repository_name

PUSHES = 20
# The defaults, but backoff in tenths of seconds so that the test stays short.
CONFIG = TransportConfig(backoff_initial=0.05, backoff_max=0.4, use_env_proxies=False)
QUICK = FaultMix(stall_seconds=0.3)


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    made = Cache(tmp_path / "cache")
    made.ensure_layout()
    return made


@pytest.fixture
def proxy(registry_plain: RegistryInfo) -> Iterator[FaultProxy]:
    front = FaultProxy(registry_plain.host, seed=11)
    yield front
    front.close()


def run_pushes(
    proxy: FaultProxy, registry: RegistryInfo, cache: Cache, rate: float, seed: int
) -> list[tuple[str, Descriptor, str | None, str]]:
    """PUSHES pushes at `rate`, each to a new repository; (repo, image, error, state) each."""
    results = []
    for i in range(PUSHES):
        proxy.mix = FaultMix(rate=rate, stall_seconds=QUICK.stall_seconds)
        repo = unique_repository_name(f"fault{int(rate * 100)}")
        image = small_image(cache, seed * 1000 + i)
        with client_for(proxy.host, CONFIG) as client:
            error = attempt(client, repo, cache, image)
        proxy.mix = FaultMix()
        # skopeo judges every fifth push; the others are read back over plain HTTP (faster).
        state = judge(registry.host, repo, cache, image, skopeo=i % 5 == 0)
        results.append((repo, image, error, state))
    return results


def test_pushes_at_10_percent_faults_complete(proxy, registry_plain, cache):
    results = run_pushes(proxy, registry_plain, cache, 0.10, seed=1)
    assert sum(proxy.counts.values()) > 0, "no fault was injected"
    failed = [(repo, error) for repo, _, error, _ in results if error is not None]
    assert failed == []
    assert {state for *_, state in results} == {"complete"}


def test_pushes_at_30_percent_faults_never_corrupt_and_fail_in_one_line(
    proxy, registry_plain, cache
):
    results = run_pushes(proxy, registry_plain, cache, 0.30, seed=2)
    assert len(proxy.counts) >= 4, f"too few kinds of fault injected: {proxy.counts}"
    # judge() raised for anything corrupt; what remains is complete, or a failure in one line
    # that the next run (no faults) recovers from.
    for repo, image, error, state in results:
        if error is None:
            assert state == "complete"
            continue
        assert error.count("\n") == 0 and ": " in error
        with client_for(proxy.host, CONFIG) as client:
            assert attempt(client, repo, cache, image) is None
        assert judge(registry_plain.host, repo, cache, image) == "complete"


def test_a_stalled_registry_fails_within_the_deadline_with_the_right_words(
    stalled_registry: StalledServer, cache
):
    deadline = 3.0
    config = TransportConfig.with_deadline(deadline, backoff_initial=0.05, use_env_proxies=False)
    image = small_image(cache, 99)
    started = time.monotonic()
    with (
        client_for(stalled_registry.host, config) as client,
        pytest.raises(RegistryUnreachable) as caught,
    ):
        client.head_manifest(unique_repository_name("stalled"), "t")
    elapsed = time.monotonic() - started
    assert caught.value.message == (
        f"no answer from registry {stalled_registry.host} in {deadline:.0f} s"
    )
    # The deadline bounds the whole step (https try, then plain http, with retries). Without
    # it each of the 4 tries would wait the full 3 s read timeout (12 s and more); the margin
    # is for a loaded machine, not for another try.
    assert elapsed < 2 * deadline
    assert image.size > 0


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (["cache", "pull", "--notrust", "--insecure", "--cache", "{cache}", "{host}/s/i:t"], 3),
        (["pin", "--notrust", "--insecure", "{yaml}"], 1),
        (["manifest", "--cache", "{cache}", "{host}/s/image:t"], 3),
        (["remote-tag", "{host}/s/image:a", "{host}/s/image:b"], 3),
        (["verify", "--notrust", "--key", "{key}", "{host}/s/image:t"], 3),
    ],
    ids=["cache-pull", "pin", "manifest", "remote-tag", "verify"],
)
def test_every_registry_command_takes_timeout(
    stalled_registry: StalledServer, tmp_path: Path, command: list[str], code: int
):
    # Each command that talks to a registry honours --timeout as build and push do: against
    # a registry that accepts and never answers, one line naming it and the deadline.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    yaml = tmp_path / "linuxkit.yml"
    yaml.write_text(f"init:\n  - {stalled_registry.host}/s/image:t\n")
    key = tmp_path / "cosign.pub"
    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    fill = {"host": stalled_registry.host, "yaml": yaml, "key": key, "cache": tmp_path / "c"}
    argv = [part.format(**fill) for part in command]
    started = time.monotonic()
    result = lkpkg(*argv, "--timeout", "2", check=False)
    elapsed = time.monotonic() - started
    assert f"no answer from registry {stalled_registry.host} in 2 s" in result.stderr, result.stderr
    # 3: unreachable. pin names each reference it could not pin and exits 1 (reference.md).
    assert result.returncode == code, result.stderr
    # The margin is for a loaded machine (and the interpreter's start), not another try.
    assert elapsed < 2 * 2 + 3
