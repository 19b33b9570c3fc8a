"""The one writer and reader of relax's own files: private modes, no symlinks followed, no leaks."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from audio_engine import fsio


@pytest.fixture
def open_umask():
    old = os.umask(0)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_folders_and_files_are_private_under_an_open_umask(tmp_path, open_umask):
    target = tmp_path / "a" / "b" / "gain.json"
    fsio.atomic_write(target, b"{}")
    assert target.read_bytes() == b"{}"
    assert _mode(tmp_path / "a") == 0o700
    assert _mode(tmp_path / "a" / "b") == 0o700
    assert _mode(target) == 0o600
    fd = fsio.open_private(tmp_path / "a" / "lock")
    os.close(fd)
    assert _mode(tmp_path / "a" / "lock") == 0o600


def test_a_planted_symlink_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "gain.json").symlink_to(victim)
    fsio.atomic_write(folder / "gain.json", b"new")
    assert victim.read_bytes() == b"precious"
    assert not (folder / "gain.json").is_symlink()
    assert (folder / "gain.json").read_bytes() == b"new"
    (folder / "lock").symlink_to(victim)
    with pytest.raises(fsio.FsError, match="symbolic link"):
        fsio.open_private(folder / "lock")
    assert victim.read_bytes() == b"precious"
    (folder / "dangling").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(fsio.FsError):
        fsio.open_private(folder / "dangling")
    assert not (tmp_path / "elsewhere").exists()


def test_a_failed_write_leaves_neither_a_file_nor_a_temporary(tmp_path):
    def boom(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(fsio.FsError, match="the disk is full"):
        fsio.atomic_write(tmp_path / "x.bin", boom)
    assert list(tmp_path.iterdir()) == []


def test_a_file_where_the_folder_should_be_is_named(tmp_path):
    (tmp_path / "data").write_text("x")
    with pytest.raises(fsio.FsError, match="is a file, not a folder"):
        fsio.private_dir(tmp_path / "data" / "sub")


def test_reads_refuse_pipes_and_devices_without_waiting(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    done = []
    t = threading.Thread(target=lambda: done.append(_refused(fifo)), daemon=True)
    t.start()
    t.join(5)
    assert done == ["a pipe (FIFO)"]
    assert "a device" in _refused("/dev/zero")
    assert _refused(tmp_path) == "a folder"


def _refused(path) -> str:
    try:
        fsio.read_checked(path, 1024)
    except fsio.FsError as exc:
        return str(exc).split("it is ")[-1].split(", not")[0]
    return "read"


def test_reads_stop_at_the_limit(tmp_path):
    f = tmp_path / "big"
    f.write_bytes(b"x" * 101)
    assert fsio.read_checked(f, 101) == b"x" * 101
    with pytest.raises(fsio.FsError, match="larger than the limit of 100 bytes"):
        fsio.read_checked(f, 100)
    link = tmp_path / "link"
    link.symlink_to(f)
    assert fsio.read_checked(link, 200) == b"x" * 101
    with pytest.raises(fsio.FsError, match="symbolic link"):
        fsio.read_checked(link, 200, follow=False)
