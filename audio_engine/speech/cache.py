"""The speech clip cache: one file per clip, named by a key of everything that decides its sound.

Folder: `$RELAX_CACHE_DIR` itself, else the `speech` folder of relax's per-user cache folder
(`fsio.cache_root()`). A clip is at `<folder>/<key[:2]>/<key>.f32`: a header (magic, sample count,
SHA-256 of the samples) and the samples, float32 little-endian. Files are written whole or not at
all through `fsio.atomic_write`; a truncated or corrupt file reads as missing (the clip is made
again). The key (`key`): SHA-256 of the text, the voice's id, the rate, the volume, the engine's
version and `PROCESSING_VERSION`; unchanged since the first release of the cache, so upgrading
relax re-makes no clip whose engine did not change.

Where the folder cannot be written (read-only, a file in its place, a full disk), clips are kept
in memory for the rest of the run, and relax says so once on stderr.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from audio_engine import fsio, model
from audio_engine.i18n import _

if TYPE_CHECKING:  # numpy only where a clip is read or kept: a length needs none (`relax list`)
    import numpy as np

PROCESSING_VERSION = 2  # bump when anything changes what a clip sounds like (2: no lost rate)
_MAGIC = b"RELAXSP1"
_HEADER = struct.Struct("<8sQ32s")  # magic, sample count, sha256 of the samples
MAX_CLIP_SAMPLES = 30 * 60 * model.SAMPLE_RATE  # a longer file is no clip of ours (made again)

_memory: dict[Path, np.ndarray] = {}  # clips whose file could not be written, for this run
_memory_lock = threading.Lock()
_warned = False


def cache_root() -> Path:
    """The project's cache folder (`fsio.cache_root`)."""
    return fsio.cache_root()


def cache_dir() -> Path:
    """The speech cache folder: `$RELAX_CACHE_DIR`, else the user cache dir's `speech` folder."""
    root = fsio.cache_root()
    return root if os.environ.get("RELAX_CACHE_DIR") else root / "speech"


def key(utterance: model.Utterance, voice_id: str, engine_version: str) -> str:
    """The clip's key: what decides its sound."""
    fields = [
        utterance.text,
        voice_id,
        int(utterance.voice.rate_wpm),
        float(utterance.voice.volume),
        engine_version,
        PROCESSING_VERSION,
    ]
    return hashlib.sha256(json.dumps(fields).encode("utf-8")).hexdigest()


def path_of(clip_key: str) -> Path:
    return cache_dir() / clip_key[:2] / f"{clip_key}.f32"


def load(path: Path) -> np.ndarray | None:
    """The cached clip, or None when missing, truncated or corrupt."""
    with _memory_lock:
        kept = _memory.get(path)
    if kept is not None:
        return kept.copy()
    try:
        data = fsio.read_checked(path, _HEADER.size + 4 * MAX_CLIP_SAMPLES)
    except fsio.FsError:  # (missing, a FIFO or a device in its place, too large: made again)
        return None
    if len(data) < _HEADER.size:
        return None
    magic, n_samples, digest = _HEADER.unpack_from(data)
    payload = data[_HEADER.size :]
    if magic != _MAGIC or len(payload) != 4 * n_samples or n_samples == 0:
        return None
    if hashlib.sha256(payload).digest() != digest:
        return None
    import numpy as np

    return np.frombuffer(payload, dtype="<f4").astype(np.float32)


def length(path: Path) -> int | None:
    """The sample count a cache file declares, from its header alone (its size must agree)."""
    with _memory_lock:
        kept = _memory.get(path)
    if kept is not None:
        return int(kept.size)
    try:
        with fsio.open_checked(path) as f:
            header = f.read(_HEADER.size)
            size = os.fstat(f.fileno()).st_size
    except (OSError, fsio.FsError):
        return None
    if len(header) < _HEADER.size:
        return None
    magic, n_samples, _digest = _HEADER.unpack_from(header)
    if magic != _MAGIC or n_samples == 0 or size != _HEADER.size + 4 * n_samples:
        return None
    return int(n_samples)


def store(path: Path, clip: np.ndarray) -> None:
    """Keep `clip` at `path`; in memory for this run where the folder cannot be written."""
    import numpy as np

    payload = np.ascontiguousarray(clip, dtype="<f4").tobytes()
    header = _HEADER.pack(_MAGIC, clip.size, hashlib.sha256(payload).digest())

    def write(f) -> None:
        f.write(header)
        f.write(payload)

    try:
        fsio.atomic_write(path, write, fsync=False)
    except fsio.FsError as exc:
        with _memory_lock:
            _memory[path] = np.array(clip, dtype=np.float32)
        _say_once(str(exc))


def kept_in_memory() -> tuple[dict[Path, np.ndarray], bool]:
    """The clips kept in memory because the folder could not be written, and whether that has
    been said on stderr (a process apart hands them to the one that renders: `apart.py`)."""
    with _memory_lock:
        return dict(_memory), _warned


def adopt(clips: dict[Path, np.ndarray], said: bool) -> None:
    """Keep `clips` (another process's `kept_in_memory`) as if made here; `said`: that process
    has said the folder cannot be written, so it is not said again."""
    global _warned
    with _memory_lock:
        _memory.update(clips)
        _warned = _warned or said


def _say_once(problem: str) -> None:
    global _warned
    with _memory_lock:
        if _warned:
            return
        _warned = True
    message = _(
        "relax: the speech cache cannot be kept ({problem}); speech is made in memory for this "
        "run only. To keep it, free or fix {folder}, or set RELAX_CACHE_DIR to another folder."
    ).format(problem=problem, folder=cache_dir())
    with contextlib.suppress(OSError, ValueError):  # no stderr: the run goes on regardless
        print(message, file=sys.stderr, flush=True)


def remember(name: str, value: dict) -> None:
    """Keep a small JSON answer (an engine's version, ...) in the cache folder; a folder that
    cannot be written only means it is asked again next time."""
    with contextlib.suppress(fsio.FsError, ValueError):
        fsio.atomic_write(cache_dir() / name, json.dumps(value).encode("utf-8"), fsync=False)


def recall(name: str) -> dict | None:
    """What `remember` kept under `name`, or None."""
    try:
        value = json.loads(fsio.read_checked(cache_dir() / name, 1 << 20))
    except (fsio.FsError, ValueError):
        return None
    return value if isinstance(value, dict) else None
