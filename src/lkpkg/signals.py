"""SIGTERM, as CI cancels a job, stops a command the way Ctrl-C does.

Python's default for SIGTERM ends the process at once: no `finally` runs, so scratch
directories stay for the next run to sweep and the builder is left to the kernel's
parent-death signal. The process entry (`cli.main`) installs `install()`: SIGTERM then raises
`Terminated` in the main thread, like SIGINT's KeyboardInterrupt, and the run stops the same
way (pipeline/run.py): the builders' process groups are killed, the workers' `finally`
blocks remove what they made, the cache keeps only what was complete. Exit 143 (128 + 15).
A library caller keeps its own signal handling: nothing here runs unless installed.
"""

from __future__ import annotations

import signal
from types import FrameType

EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException, as KeyboardInterrupt is: no `except Exception`
    mistakes it for a failure of one package."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def install() -> None:
    """SIGTERM raises `Terminated` in the main thread (unless SIGTERM is ignored, as a
    parent may ask: then it stays ignored)."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
        signal.signal(signal.SIGTERM, _raise_terminated)
