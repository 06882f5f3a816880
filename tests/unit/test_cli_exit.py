"""`lkpkg` as a process ends without the interpreter's teardown (cli/main `_end_process`):
what it printed still arrives whole, its exit code is the command's, and no child it
started outlives it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from lkpkg.errors import EXIT_BAD_INPUT
from tests.conftest import git

ENTRY = "from lkpkg.cli.main import main; main()"


def lkpkg(*argv: str) -> subprocess.CompletedProcess[str]:
    """The command as its console script runs it: `main()` reading the process's argv."""
    return subprocess.run(
        [sys.executable, "-c", ENTRY, *argv], capture_output=True, text=True, check=False
    )


def packages(tmp_path: Path, count: int) -> list[str]:
    repo = tmp_path / "repo"
    for number in range(count):
        package = repo / f"p{number}"
        package.mkdir(parents=True)
        (package / "build.yml").write_text(f"image: p{number}\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "packages")
    return [str(repo / f"p{number}") for number in range(count)]


def test_every_line_printed_arrives_and_the_code_is_zero(tmp_path):
    # About 6 KiB: all of it still in the stdout buffer (8 KiB on a pipe) when the command returns.
    dirs = packages(tmp_path, 100)
    done = lkpkg("show-tag", "--org", "example.org/t", *dirs)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 100
    assert all(line.startswith(f"example.org/t/p{n}:") for n, line in enumerate(lines))


def test_an_error_keeps_its_line_and_its_exit_code(tmp_path):
    done = lkpkg("show-tag", str(tmp_path / "absent"))
    assert done.returncode == EXIT_BAD_INPUT
    assert done.stderr.splitlines()[-1].startswith("lkpkg: error: ")


def test_a_child_still_running_is_killed_with_its_group(tmp_path):
    marker = tmp_path / "child.pid"
    # A tool started through lkpkg.proc, left running when the command "returns": the
    # process group must be gone once lkpkg has exited. Without PR_SET_PDEATHSIG (as where
    # prctl is missing), so that only the reaping at the end can kill it.
    code = (
        "import sys, threading\n"
        "from lkpkg import proc\n"
        "proc._prctl_loaded = True\n"
        "from lkpkg.cli import main as cli_main\n"
        "def command(**_):\n"
        "    threading.Thread(target=proc.run_quiet, daemon=True, args=(\n"
        f"        ['sh', '-c', 'echo $$ > {marker}; exec sleep 60'],),\n"
        "        kwargs={'env': {'PATH': '/usr/bin:/bin'}}).start()\n"
        "    import time\n"
        f"    while not __import__('os').path.exists({str(marker)!r}): time.sleep(0.01)\n"
        "cli_main.cli.main = command\n"
        "cli_main.main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    pid = int(marker.read_text())
    # SIGKILL was sent before lkpkg exited; the kernel finishes the kill on its own time.
    deadline = time.monotonic() + 10
    while _state(pid) not in ("gone", "Z") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _state(pid) in ("gone", "Z")


def _state(pid: int) -> str:
    """The state letter of `pid` (`Z`: a zombie, dead), or "gone"."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"
