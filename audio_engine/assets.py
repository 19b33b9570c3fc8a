"""Sound files for `sound:` background layers: decoded once, stereo float32 at the engine rate.

Entry point: `load_sound(path) -> np.ndarray` shaped (n, 2). The format is read from the file's
header (WAV, FLAC, OGG), never from its name; other rates are resampled with soxr.

A file is decoded block by block into the cache folder (`sounds/`, one file per source file and
version of it, with a checksum) and mapped from there, so the memory a session takes does not grow with its sound
files' length: the operating system pages the samples in as the render reaches them, and can drop
them again. The folder is kept under `CACHE_LIMIT_BYTES` (the oldest entries go first). Where the
cache cannot be written the file is decoded into memory for this run, still within
`MAX_SOUND_S`.

A file with NaN or infinite samples, or float samples beyond ±`MAX_SAMPLE`, is refused
(`AssetError`, said at the layer's `file:` value): such values would turn the mix into noise,
garbage or silence.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from audio_engine import fsio
from audio_engine.errors import RelaxError
from audio_engine.model import SAMPLE_RATE

MAX_SOUND_S = 30 * 60  # a background file may last this long; longer files are refused
MAX_SAMPLE = 1000.0  # a float file's largest sample (60 dB over full scale): more is damage
CACHE_LIMIT_BYTES = 2 << 30  # the decoded sounds kept in the cache folder, all together
CACHE_VERSION = 3
_MAGIC = b"RELAXSD2"
_HEAD = 24  # magic, the frame count (little-endian uint64), CRC-32 of the samples, 4 zero bytes
_BLOCK = 1 << 16  # frames decoded at a time


class AssetError(RelaxError):
    """A background sound file is missing, unreadable or too long."""


@lru_cache(maxsize=16)
def load_sound(path: Path) -> np.ndarray:
    """The file at `path` as read-only float32 (n, 2) at `SAMPLE_RATE` (mapped from the cache)."""
    import soundfile  # only sessions with sound files need these

    try:
        st = os.stat(path)
    except OSError as exc:
        raise AssetError(f"{path}: cannot read background sound: {fsio.describe(exc)}") from None
    if not stat.S_ISREG(st.st_mode):
        raise AssetError(
            f"{path}: cannot read background sound: it is {fsio.kind_of(st.st_mode)}, "
            "not a regular file"
        )
    cached = _cache_file(path, st)
    if cached is not None and (data := _read_cached(cached)) is not None:
        return data
    try:
        with soundfile.SoundFile(str(path)) as f:
            if f.frames > MAX_SOUND_S * f.samplerate:
                raise AssetError(
                    f"{path}: background sound lasts {f.frames / f.samplerate:.0f} s; "
                    f"the limit is {MAX_SOUND_S // 60} minutes (loop a shorter file instead)"
                )
            if f.frames == 0:
                raise AssetError(f"{path}: background sound is empty")
            if cached is not None:
                try:
                    fsio.atomic_write(cached, lambda out: _decode(f, path, out), fsync=False)
                except fsio.FsError:
                    f.seek(0)  # the cache cannot be written: decode into memory this once
                else:
                    _trim_cache(cached)
                    data = _read_cached(cached)
                    if data is not None:
                        return data
                    f.seek(0)
            chunks: list[np.ndarray] = []
            _decode(f, path, chunks)
            data = np.concatenate(chunks) if chunks else np.zeros((0, 2), np.float32)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
        if "format not recognised" in str(exc).casefold():  # whatever its name says
            raise AssetError(f"{path}: not a WAV, FLAC or OGG file") from None
        raise AssetError(f"{path}: cannot read background sound: {exc}") from None
    except MemoryError:
        raise AssetError(
            f"{path}: not enough memory to decode the background sound, and the cache folder "
            f"{fsio.cache_root()} cannot hold it; free some space there or loop a shorter file"
        ) from None
    if len(data) == 0:
        raise AssetError(f"{path}: background sound is empty")
    data.setflags(write=False)
    return data


def _decode(f, path: Path, out) -> None:
    """Decode the open soundfile `f` block by block, stereo at `SAMPLE_RATE`, into `out`: a
    binary file (header first) or a list of arrays. Raises `AssetError` at a non-finite sample."""
    import soxr

    to_file = not isinstance(out, list)
    if to_file:
        out.write(_MAGIC + bytes(_HEAD - len(_MAGIC)))
    crc = 0
    stream = None
    if f.samplerate != SAMPLE_RATE:
        stream = soxr.ResampleStream(f.samplerate, SAMPLE_RATE, 2, dtype="float32", quality="HQ")
    frames = 0
    read = 0
    while True:
        block = f.read(_BLOCK, dtype="float32", always_2d=True)
        last = len(block) < _BLOCK
        if len(block):
            bad = ~np.isfinite(block)
            if bad.any():
                at = (read + int(np.argmax(bad.any(axis=1)))) / f.samplerate
                raise AssetError(
                    f"{path}: the background sound has NaN or infinite samples (the first at "
                    f"{at:.3f} s); relax does not play them: export the file again from your "
                    "editor"
                )
            loud = np.abs(block) > MAX_SAMPLE
            if loud.any():
                at = (read + int(np.argmax(loud.any(axis=1)))) / f.samplerate
                raise AssetError(
                    f"{path}: the background sound has samples of {float(np.abs(block).max()):.3g}"
                    f" (the first at {at:.3f} s), far outside -1 to 1; relax plays float files up "
                    f"to ±{MAX_SAMPLE:g} (a damaged file? export it again from your editor)"
                )
            read += len(block)
        if block.shape[1] == 1:
            block = np.repeat(block, 2, axis=1)
        elif block.shape[1] > 2:
            block = block[:, :2]
        if stream is not None:
            block = stream.resample_chunk(np.ascontiguousarray(block), last=last)
        block = np.ascontiguousarray(block, dtype="<f4")
        if len(block):
            frames += len(block)
            if to_file:
                crc = zlib.crc32(block, crc)
                out.write(memoryview(block).cast("B"))
            else:
                out.append(block.astype(np.float32, copy=False))
        if last:
            break
    if to_file:
        out.seek(len(_MAGIC))
        out.write(frames.to_bytes(8, "little") + crc.to_bytes(4, "little"))


def _cache_file(path: Path, st: os.stat_result) -> Path | None:
    """Where the decoded `path` is kept: one entry per file and version of it."""
    try:
        real = str(Path(path).resolve())
    except (OSError, RuntimeError):
        return None
    what = (real, st.st_size, st.st_mtime_ns, st.st_ino, SAMPLE_RATE, CACHE_VERSION)
    key = hashlib.sha256(repr(what).encode()).hexdigest()
    return fsio.cache_root() / "sounds" / f"{key}.f32"


def _read_cached(cached: Path) -> np.ndarray | None:
    """The cached samples mapped read-only, or None when missing or damaged (wrong size or
    checksum: a damaged entry is decoded again, never played)."""
    try:
        f = fsio.open_checked(cached, follow=False)
    except fsio.FsError:
        return None  # missing, a link, a FIFO planted in the cache: decoded again, over it
    try:
        with f:
            st = os.fstat(f.fileno())
            head = f.read(_HEAD)
            if not stat.S_ISREG(st.st_mode) or len(head) != _HEAD or head[:8] != _MAGIC:
                return None
            frames = int.from_bytes(head[8:16], "little")
            if frames <= 0 or st.st_size != _HEAD + frames * 8:
                return None
            # Read through a small buffer, not the mapping: checking costs no memory.
            crc = 0
            buffer = bytearray(1 << 22)
            while n := f.readinto(buffer):
                crc = zlib.crc32(memoryview(buffer)[:n], crc)
            if crc != int.from_bytes(head[16:20], "little"):
                return None
            with contextlib.suppress(OSError):
                os.utime(f.fileno())  # recently used: trimmed last
            # The file checked is the file mapped: no second lookup of its name.
            return np.memmap(f, dtype="<f4", mode="r", offset=_HEAD, shape=(frames, 2))
    except (OSError, ValueError, MemoryError):
        return None


def _trim_cache(keep: Path) -> None:
    """Remove the least recently used decoded sounds until the folder is under the limit."""
    try:
        entries = [
            (e.stat().st_mtime_ns, e.stat().st_size, Path(e.path))
            for e in os.scandir(keep.parent)
            if e.name.endswith(".f32") and e.is_file(follow_symlinks=False)
        ]
    except OSError:
        return
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= CACHE_LIMIT_BYTES:
            break
        if path == keep:
            continue
        with contextlib.suppress(OSError):
            path.unlink()  # a mapping already open keeps its pages until it is closed
            total -= size
