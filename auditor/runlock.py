"""The single-instance lock of `drauditor schedule`: two schedulers would write the same run folders twice.

An advisory ``flock`` on a lock file, which the kernel releases when the process ends however it ends, so a crashed
scheduler never leaves a stale lock behind. The holder writes its PID into the file for the refusal message; the
file itself is never deleted (deleting a flock'ed file lets a third process lock a new inode while a second still
holds the old one).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from auditor.errors import InputError


class LockHeld(InputError):
    """Another process holds the lock."""


@contextmanager
def instance_lock(path: Path) -> Iterator[None]:
    """Holds ``path``'s lock for the block; LockHeld, naming the holder's PID, when another process has it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children (O_CLOEXEC by default)
    except OSError as exc:
        raise InputError(f"{path}: cannot open the lock file ({exc.strerror})") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            raise LockHeld(f"{path}: another drauditor schedule (PID {holder}) holds this lock") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # no PID of a process that no longer holds it
    finally:
        os.close(fd)  # closing the descriptor releases the flock
