"""Generated bad inputs for build.yml and show-tag's reference flags, many more than CI runs.

Runs the property of tests/unit/test_buildyml_property.py ("exit 0 with one line, or exit 2
with one error line; never a traceback, never a hang") over N build.yml documents and N/2
org/hash/tag triples, in-process, and prints the counts per exit code and the time taken.

Usage: .venv/bin/python bench/buildyml_inputs.py [N]   (default 2000)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.unit import test_buildyml_property as prop


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    exits: dict[int, int] = {}
    slowest = 0.0

    def judged(argv: list[str]) -> None:
        nonlocal slowest
        started = time.monotonic()
        code, out, err = prop.run(argv)
        slowest = max(slowest, time.monotonic() - started)
        prop.check(code, out, err)
        exits[code] = exits.get(code, 0) + 1

    with tempfile.TemporaryDirectory(prefix="lkpkg-inputs-") as name:
        work = Path(name)
        (work / "pkg").mkdir()
        (work / "ref").mkdir()
        (work / "ref" / "build.yml").write_text("image: foo\n")
        quiet = list(HealthCheck)

        @settings(max_examples=count, deadline=5000, suppress_health_check=quiet, database=None)
        @given(text=prop.document)
        def documents(text: str) -> None:
            path = work / "pkg" / "build.yml"
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            judged(["show-tag", str(work / "pkg")])

        @settings(
            max_examples=count // 2, deadline=5000, suppress_health_check=quiet, database=None
        )
        @given(org=prop.flag_text, hash_=prop.flag_text, tag=prop.flag_text)
        def references(org: str, hash_: str, tag: str) -> None:
            judged(["show-tag", "--org", org, "--hash", hash_, "--tag", tag, str(work / "ref")])

        started = time.monotonic()
        documents()
        references()
        took = time.monotonic() - started
    total = sum(exits.values())
    print(
        f"{total} inputs in {took:.1f} s: "
        + ", ".join(f"exit {code}: {n}" for code, n in sorted(exits.items()))
        + f"; 0 tracebacks; slowest {slowest * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
