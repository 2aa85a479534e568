"""One manager per work directory: an exclusive lock on ``<work>/.manager.lock`` for as long as it runs.

Why: a task only counts as running once its worker has written its usage file, so two managers on one work
directory would start every task twice (two RETURNN processes writing one ``models/``, two HDF writers deleting
each other's file). The lock is a kernel ``flock``: it is released when its holder dies, however it dies, so a
lock file left by a dead manager is simply taken over. The file names the holder (pid, host, start time) for the
message a second manager prints. ``flock`` is local to one machine, which is what the embedded engine serves.
"""
from __future__ import annotations

import fcntl
import os
import socket
import time
from typing import Optional


HOLDER_WAIT_S = 2.0  # how long a refused manager waits for the holder's line to name it


class WorkDirLocked(RuntimeError):
    """Another live manager holds the work directory; the message names it (pid, host)."""


class WorkDirLock:
    """``with WorkDirLock(work_dir): ...`` runs the block as the only manager of ``work_dir``."""

    FILE_NAME = ".manager.lock"

    def __init__(self, work_dir: str):
        self.work_dir = work_dir
        self.path = os.path.join(work_dir, self.FILE_NAME)
        self._fd: Optional[int] = None

    def acquire(self) -> None:
        os.makedirs(self.work_dir, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # the holder writes its line right after taking the lock; a manager started at the same moment can
            # look in between, so it waits a little for the line (a loaded machine deschedules the holder there)
            holder, deadline = _read(fd), time.monotonic() + HOLDER_WAIT_S
            while not holder and time.monotonic() < deadline:
                time.sleep(0.02)
                holder = _read(fd)
            os.close(fd)
            raise WorkDirLocked(
                f"another manager is running on {self.work_dir} ({holder or 'holder not yet recorded'}; lock file "
                f"{self.path}). Wait for it to finish or stop it; two managers would run every task twice.")
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # the file stays (removing it would race with a manager about to lock it)
            os.close(self._fd)  # closing releases the flock
            self._fd = None

    def __enter__(self) -> "WorkDirLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 1000, 0).decode(errors="replace").strip()
    except OSError:
        return ""
