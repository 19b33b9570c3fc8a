"""The export sink: the render stream written to an audio file, block by block.

Entry point: `export(prepared, path, *, gain, float32=False, progress=None) -> Path`.

The file is written under a temporary name in the target folder and renamed at the end, so an
interrupted or failed export leaves neither a partial file nor the temporary one behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import soundfile

from audio_engine import render
from audio_engine.errors import ExportError

EXPORT_BLOCK_SAMPLES = 1 << 16

FORMATS = {".wav": "WAV"}


def export(
    prepared,
    path: Path | str,
    *,
    gain: float,
    float32: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write the session to `path` (16-bit, or 32-bit float with `float32`), stereo, 44.1 kHz.

    `progress(done_samples, total_samples)` is called after every block.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ExportError(f"{path}: unknown audio format '{path.suffix}' (supported: .wav)")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"{path}: folder {folder} does not exist")
    timeline = prepared.timeline
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the export is an ordinary file
    try:
        subtype = "FLOAT" if float32 else "PCM_16"
        with soundfile.SoundFile(
            tmp, "w", samplerate=timeline.sample_rate, channels=2, format=fmt, subtype=subtype
        ) as out:
            done = 0
            for block in render.blocks(
                timeline, prepared.sources, block_samples=EXPORT_BLOCK_SAMPLES, gain=gain
            ):
                out.write(block if float32 else render.to_int16(block))
                done += len(block)
                if progress:
                    progress(done, timeline.total_samples)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path
