"""One writer per run directory: an exclusive OS lock held for the life of the command.

The lock is `flock` on RUN/.lock, so the kernel releases it when the process ends however it
ends (kill -9 included): there is never a stale lock to clear by hand. The holder writes its pid
into the file so a second writer can say who holds the run.
"""

from __future__ import annotations

import os
from pathlib import Path

from genzoo.errors import GenzooError

LOCK_FILE = ".lock"

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are unguarded against a second writer
    fcntl = None


class RunLock:
    """`with RunLock(run_dir):` holds the run; a second holder gets a GenzooError naming the first."""

    def __init__(self, run_dir: str | Path, flag: str = "--out"):
        self.path = Path(run_dir) / LOCK_FILE
        self.flag = flag  # the option the user would change to use another folder
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        # No O_TRUNC: opening must not wipe the holder's pid before we know we hold the lock.
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(self.fd)
                self.fd = None
                raise GenzooError(
                    f"'{self.path.parent}' is in use by another genzoo process (pid {holder}); "
                    f"wait for it to finish or choose another {self.flag}"
                ) from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None
