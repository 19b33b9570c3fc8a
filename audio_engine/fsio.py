"""relax's own folders, and the one way files are written in them and read back.

- `cache_root()`, `data_dir()`, `settings_dir()`: the three per-user folders (each can be set by an
  environment variable: `RELAX_CACHE_DIR`, `RELAX_DATA_DIR`, `RELAX_SETTINGS_DIR`).
- `private_dir(path)`: makes a folder (and any missing parents) that only its owner can read:
  0700 whatever the umask. A path that exists and is not a folder is an `FsError`.
- `atomic_write(path, data)`: writes a file whole or not at all: a temporary file in the same
  folder (created with `O_EXCL | O_NOFOLLOW`, mode 0600), flushed to disk, then renamed over the
  target. A rename replaces a planted symlink instead of writing through it, and the temporary
  file is removed on any failure (a full disk leaves nothing behind).
- `open_private(path, flags)`: opens (creating, mode 0600) a file in relax's folders without
  following a symlink: for lock files and the like that are not replaced whole.
- `open_checked(path)`: opens a regular file for reading, refusing the rest as `read_checked`.
- `read_checked(path, limit)`: reads a regular file of at most `limit` bytes; a FIFO, a device or a
  folder is refused before anything is read (opening does not wait for a writer), and no more than
  `limit + 1` bytes are ever read, whatever the file's size claims.
- `describe(exc, path)`: an `OSError` as a short phrase for a one-line message ("the disk is
  full", "permission denied", ...).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from audio_engine.errors import RelaxError

FOLDER_MODE = 0o700
FILE_MODE = 0o600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class FsError(RelaxError):
    """A file or folder of relax's could not be made, written or read.

    `reason` is the message without the file's name ("the disk is full", "it is a pipe (FIFO),
    not a regular file"), for callers that say the name their own way."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason or message


# ---- where things are --------------------------------------------------------------------------


def cache_root() -> Path:
    """The project's cache folder: `$RELAX_CACHE_DIR`, else the per-user cache dir of relax."""
    env = os.environ.get("RELAX_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("relax"))


def data_dir() -> Path:
    """The user's data folder for relax: RELAX_DATA_DIR, else platformdirs' user data dir."""
    env = os.environ.get("RELAX_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("relax"))


def settings_dir() -> Path:
    """The folder for small per-user settings: RELAX_SETTINGS_DIR, else the config folder."""
    env = os.environ.get("RELAX_SETTINGS_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("relax"))


# ---- messages ----------------------------------------------------------------------------------

_PHRASES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENOENT: "no such file or folder",
    errno.ELOOP: "it is a symbolic link, which relax does not follow in its own folders",
    errno.EEXIST: "something else is in the way",
    errno.ENAMETOOLONG: "the name is too long",
}


def describe(exc: OSError) -> str:
    """A short phrase for an OSError, for a one-line message."""
    return _PHRASES.get(exc.errno or 0) or (exc.strerror or str(exc)).rstrip(".")


# ---- folders -----------------------------------------------------------------------------------


def private_dir(path: Path | str) -> Path:
    """`path` as a folder, made with its missing parents at mode 0700 (whatever the umask).

    Folders that already exist keep their mode. A path that exists but is not a folder, or that
    cannot be made, is an `FsError` naming it."""
    path = Path(path)
    missing: list[Path] = []
    p = path
    while True:
        try:
            st = os.stat(p)
        except (FileNotFoundError, NotADirectoryError):
            missing.append(p)
            if p.parent == p:
                break
            p = p.parent
            continue
        except OSError as exc:
            raise FsError(f"cannot use the folder {p}: {describe(exc)}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise FsError(f"cannot use the folder {path}: {p} is a file, not a folder") from None
        break
    for folder in reversed(missing):
        try:
            os.mkdir(folder, FOLDER_MODE)
        except FileExistsError:
            if not folder.is_dir():
                raise FsError(f"cannot use the folder {path}: {folder} is not a folder") from None
        except OSError as exc:
            raise FsError(f"cannot make the folder {folder}: {describe(exc)}") from None
        else:
            # mkdir's mode is masked by the umask, which may take bits away but never adds them.
            os.chmod(folder, FOLDER_MODE)
    return path


# ---- writing -----------------------------------------------------------------------------------


def atomic_write(
    path: Path | str,
    data: bytes | Callable[[BinaryIO], object],
    *,
    make_folder: bool = True,
    fsync: bool = True,
    mode: int = FILE_MODE,
) -> Path:
    """Write `data` (bytes, or a function that writes to the open binary file) to `path` whole.

    The file appears complete or not at all, with mode 0600 (a wider `mode`, for a file that is
    the user's rather than relax's, is narrowed by the umask as usual); a symlink at `path` is
    replaced, not followed. Raises `FsError` (the disk is full, ...) naming the file; nothing is
    left behind."""
    path = Path(path)
    if make_folder:
        private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY | _CLOEXEC
    try:
        fd = os.open(tmp, flags, mode)
    except OSError as exc:
        raise FsError(f"cannot write {path}: {describe(exc)}", describe(exc)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise FsError(f"cannot write {path}: {describe(exc)}", describe(exc)) from None
        raise
    return path


def open_private(path: Path | str, flags: int = os.O_RDWR | os.O_CREAT) -> int:
    """A descriptor for `path`, created at mode 0600 if missing, never through a symlink.

    Raises `FsError` for a symlink, a non-regular file or any other failure."""
    path = Path(path)
    try:
        fd = os.open(path, flags | _NOFOLLOW | _NONBLOCK | _CLOEXEC, FILE_MODE)
    except OSError as exc:
        reason = describe(exc)
        if exc.errno == errno.ENXIO:  # a FIFO opened for writing with no reader, a device
            with contextlib.suppress(OSError):
                reason = f"it is {kind_of(os.lstat(path).st_mode)}, not a regular file"
        raise FsError(f"cannot open {path}: {reason}", reason) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            reason = f"it is {kind_of(mode)}, not a regular file"
            raise FsError(f"cannot open {path}: {reason}", reason)
        if _NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


# ---- reading -----------------------------------------------------------------------------------


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_checked(path: Path | str, *, follow: bool = True) -> BinaryIO:
    """`path` opened for reading, if it is a regular file.

    A FIFO, device, socket or folder is refused before reading (and opening never waits for a
    writer). With `follow=False` a symlink is refused too. Raises `FsError`."""
    path = Path(path)
    flags = os.O_RDONLY | _NONBLOCK | _BINARY | _CLOEXEC | (0 if follow else _NOFOLLOW)

    def fail(reason: str) -> FsError:
        return FsError(f"cannot read {path}: {reason}", reason)

    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise fail(describe(exc)) from None
    try:
        mode = os.fstat(fd).st_mode  # (before fdopen, which refuses a folder with its own error)
        if not stat.S_ISREG(mode):
            raise fail(f"it is {kind_of(mode)}, not a regular file")
        if _NONBLOCK:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_checked(path: Path | str, limit: int, *, follow: bool = True) -> bytes:
    """The bytes of a regular file of at most `limit` bytes.

    A FIFO, device, socket or folder is refused before reading (`open_checked`); at most
    `limit + 1` bytes are read, so a file that grows or lies about its size cannot take more
    memory. With `follow=False` a symlink is refused too. Raises `FsError`."""
    path = Path(path)

    def fail(reason: str) -> FsError:
        return FsError(f"cannot read {path}: {reason}", reason)

    with open_checked(path, follow=follow) as f:
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise fail(describe(exc)) from None
    if len(data) > limit:
        raise fail(f"it is larger than the limit of {limit:,} bytes")
    return data
