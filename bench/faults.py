"""Reliability figures: pushes through a fault-injecting proxy, and a stalled registry.

Slow (minutes) and not part of CI; tests/integration/test_faults.py is the bounded version.
Starts one Distribution registry on a loopback port, puts tests/fixtures/faultproxy.py in
front of it, and pushes a small image (3 layers of 48 KiB, arch tag then index) N times per
fault rate, each to a new repository, with lkpkg's default TransportConfig (real backoffs).
Every push is judged independently (skopeo reads the manifests, every blob is hashed); a
failed push is re-run without faults and must then complete. Then `lkpkg manifest` is run
against a server that accepts connections and never answers, with the default deadline.

    PYTHONPATH=. .venv/bin/python bench/faults.py [--pushes 100] [--rates 0.1,0.3]

Prints a Markdown table for docs/reliability.md.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, start_registry
from tests.fixtures.faultproxy import FaultMix, FaultProxy, StalledServer
from tests.fixtures.faultpush import attempt, client_for, judge, small_image

from lkpkg.cache.layout import Cache
from lkpkg.registry import TransportConfig


def run_rate(
    proxy: FaultProxy,
    registry: str,
    cache: Cache,
    rate: float,
    pushes: int,
    config: TransportConfig,
) -> dict[str, object]:
    proxy.counts.clear()
    states: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    recovered = 0
    seconds: list[float] = []
    for i in range(pushes):
        repo = f"bench/fault{int(rate * 100)}-{i}-{time.time_ns()}"
        image = small_image(cache, int(rate * 1000) * 10000 + i)
        proxy.mix = FaultMix(rate=rate)
        started = time.monotonic()
        with client_for(proxy.host, config) as client:
            error = attempt(client, repo, cache, image)
        seconds.append(time.monotonic() - started)
        proxy.mix = FaultMix()
        states[judge(registry, repo, cache, image)] += 1  # raises on anything corrupt
        if error is not None:
            failures.append(error)
            with client_for(proxy.host, config) as client:
                if attempt(client, repo, cache, image) is None:
                    recovered += 1
            assert judge(registry, repo, cache, image) == "complete"
    seconds.sort()
    return {
        "rate": rate,
        "pushes": pushes,
        "complete": pushes - len(failures),
        "failures": failures,
        "recovered": recovered,
        "states": dict(states),
        "faults": dict(proxy.counts),
        "requests": proxy.requests,
        "median_s": seconds[len(seconds) // 2],
        "max_s": seconds[-1],
    }


def stalled_cli() -> tuple[int, float, str]:
    server = StalledServer()
    try:
        started = time.monotonic()
        done = subprocess.run(
            [str(ROOT / ".venv/bin/lkpkg"), "manifest", f"{server.host}/bench/stalled:t"],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.returncode, time.monotonic() - started, done.stderr.strip()
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=100)
    parser.add_argument("--rates", default="0.1,0.3")
    parser.add_argument("--no-stall", action="store_true")
    args = parser.parse_args()
    if shutil.which("skopeo") is None or shutil.which("docker-registry") is None:
        raise SystemExit("needs skopeo and docker-registry")
    config = TransportConfig(use_env_proxies=False)
    with tempfile.TemporaryDirectory(prefix="lkpkg-faults-") as tmp:
        root = Path(tmp)
        proc, registry = start_registry(root)
        proxy = FaultProxy(registry, seed=2026)
        cache = Cache(root / "cache")
        cache.ensure_layout()
        try:
            results = [
                run_rate(proxy, registry, cache, float(rate), args.pushes, config)
                for rate in args.rates.split(",")
            ]
        finally:
            proxy.close()
            proc.terminate()
            proc.wait()
    print(
        "| fault rate | pushes | complete | failed (one line each) | recovered by next run |"
        " corrupt | faults injected | requests | median / max push |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        failures = r["failures"]
        assert isinstance(failures, list)
        faults = ", ".join(f"{k} {v}" for k, v in sorted(r["faults"].items()))  # type: ignore[attr-defined]
        print(
            f"| {r['rate']:.0%} | {r['pushes']} | {r['complete']} | {len(failures)} |"
            f" {r['recovered']}/{len(failures)} | 0 | {faults} | {r['requests']} |"
            f" {r['median_s']:.2f} s / {r['max_s']:.2f} s |"
        )
    for r in results:
        for line in r["failures"]:  # type: ignore[attr-defined]
            print(f"- {r['rate']:.0%}: `{line}`")
    if not args.no_stall:
        code, seconds, stderr = stalled_cli()
        print(f"\nstalled registry: `lkpkg manifest` exit {code} after {seconds:.1f} s: `{stderr}`")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
