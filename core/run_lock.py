"""One writer per run folder: a run (or a scoring) holds ``<run folder>/run.lock`` while it
writes there, and a second one on the same folder refuses at once, naming the holder's process.

The lock is an OS file lock (:mod:`filelock`; ``flock`` on POSIX), which the kernel releases
when its process ends in any way, killed included: a lock left by a killed run is simply taken
by the next run. ``run.lock.pid`` beside it names the holder (pid, host, command) for the
refusal message; it is rewritten by each new holder, so a stale one never blocks anything.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from thbench.core import atomic

LOCK_FILE = "run.lock"
HOLDER_FILE = "run.lock.pid"


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder."""


def holder(folder: Path) -> str:
    """Who holds ``folder``'s lock, as its holder file says."""
    try:
        text = (folder / HOLDER_FILE).read_text().strip()
    except OSError:
        return "another process (it has not written its pid yet)"
    pid, _, rest = text.partition(" ")
    return f"process {pid}" + (f" ({rest})" if rest else "")


@contextmanager
def run_folder_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder`` (created if needed) for this process, or raise :class:`RunFolderBusy`."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunFolderBusy(f"{folder}: run folder in use by {holder(folder)}; wait for it to "
                            "finish, or write elsewhere (--output-dir)") from None
    try:
        command = " ".join(["thbench", *sys.argv[1:]])[:200]
        atomic.write_text(folder / HOLDER_FILE, f"{os.getpid()} on {socket.gethostname()}: "
                                                f"{command}\n")
        yield
    finally:
        (folder / HOLDER_FILE).unlink(missing_ok=True)
        lock.release()
