"""Run a command, SIGKILL it after a delay, and report which of its descendants outlived it.

Usage: python _killer.py DELAY_SECONDS GRACE_SECONDS -- ARGV...

This process makes itself a child subreaper (PR_SET_CHILD_SUBREAPER), so every descendant of
the command that outlives it is re-parented here rather than to init, and can be seen and
cleaned up. Prints one JSON object: {"finished": bool, "survivors": [cmdline, ...]}, where
`finished` means the command ended before the kill and `survivors` lists the descendants still
running GRACE_SECONDS after the kill (not zombies, and not processes already inside exit(),
whose memory is gone: /proc shows them with an empty command line).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36


EXITING: list[int] = []


def children() -> dict[int, str]:
    """Our living (non-zombie) children: pid → command line."""
    found: dict[int, str] = {}
    EXITING.clear()
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            state, ppid = fields[0], int(fields[1])
            if ppid != me or state == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, ValueError, IndexError):
            continue
        if not cmdline:
            # No user memory left: the process is inside exit() (its memory already freed,
            # e.g. while the kernel tears down an overlay mount); it runs no more user code.
            EXITING.append(int(entry.name))
            continue
        found[int(entry.name)] = cmdline
    return found


def reap_all() -> None:
    for pid in children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


def main() -> None:
    delay, grace = float(sys.argv[1]), float(sys.argv[2])
    argv = sys.argv[sys.argv.index("--") + 1 :]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit("prctl(PR_SET_CHILD_SUBREAPER) failed")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
        finished = True
    except subprocess.TimeoutExpired:
        finished = False
        proc.kill()
        proc.wait()
    time.sleep(grace)
    survivors = [] if finished else sorted(children().values())
    exiting = len(EXITING)
    reap_all()
    print(json.dumps({"finished": finished, "survivors": survivors, "exiting": exiting}))


if __name__ == "__main__":
    main()
