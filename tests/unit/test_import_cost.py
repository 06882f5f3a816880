"""What a command imports: httpx's own command-line client is never loaded (issue 12)."""

from __future__ import annotations

import subprocess
import sys


def test_the_registry_client_does_not_load_httpx_cli_rich_console_or_pygments():
    probe = (
        "import sys, lkpkg.registry.client, httpx; "
        "print(sorted(m for m in sys.modules if m == 'httpx._main' and sys.modules[m] "
        "or m.split('.')[0] == 'pygments' or m in ('rich.console', 'rich.syntax')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "[]"
    # httpx still works: its fallback `main` stands in for the client it did not import.
    import httpx

    assert callable(httpx.main)
