"""One `relax remind` at a time: an exclusive lock on a file in the data folder.

The operating system drops the lock when the process ends, however it ends, so a crash never
leaves a stale lock behind. The file holds the pid of the holder, for the message.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from audio_engine import fsio
from audio_engine.errors import RelaxError

LOCK_NAME = "remind.lock"


class AlreadyRunning(RelaxError):
    """Another `relax remind` holds the lock."""


class InstanceLock:
    def __init__(self, path: Path):
        self.path = path
        self.file = None

    def acquire(self) -> bool:
        """Take the lock; False when another process holds it."""
        # Never through a symlink planted there: truncating it would empty the file it points to.
        fsio.private_dir(self.path.parent)
        f = os.fdopen(fsio.open_private(self.path), "r+", encoding="utf-8")
        try:
            _lock(f)
        except OSError:
            f.close()
            return False
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self.file = f
        return True

    def holder(self) -> str:
        try:
            return fsio.read_checked(self.path, 64, follow=False).decode("utf-8").strip() or "?"
        except (fsio.FsError, UnicodeDecodeError):
            return "?"

    def release(self) -> None:
        if self.file is not None:
            try:
                self.file.seek(0)
                self.file.truncate()
            except OSError:
                pass
            self.file.close()  # closing drops the lock
            self.file = None


def _lock(f) -> None:
    if sys.platform == "win32":
        import msvcrt

        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def is_running(path: Path) -> bool:
    """Whether some process holds the lock now (tried without keeping it)."""
    if not path.exists():
        return False
    try:
        f = os.fdopen(fsio.open_private(path, os.O_RDWR), "r+", encoding="utf-8")
    except fsio.FsError:
        return False
    try:
        _lock(f)
    except OSError:
        return True
    finally:
        f.close()
    return False
