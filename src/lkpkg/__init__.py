"""lkpkg: build, publish, sign and verify LinuxKit packages."""

import sys

__version__ = "0.1.0"

# httpx imports its own command-line client (`httpx._main`: rich's console and syntax
# highlighting, pygments' lexers) whenever those are installed, and rich is (for progress).
# lkpkg never runs that client; None in sys.modules makes the import fail, so httpx keeps
# its stub `main` and every command that talks to a registry starts faster (issue 12).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
