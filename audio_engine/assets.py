"""Sound files for `sound:` background layers: decoded once, stereo float32 at the engine rate.

Entry point: `load_sound(path) -> np.ndarray` shaped (n, 2). The format is read from the file's
header (WAV, FLAC, OGG), never from its name; other rates are resampled once with soxr.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from audio_engine.errors import RelaxError
from audio_engine.model import SAMPLE_RATE

MAX_SOUND_S = 30 * 60  # a background file is held in memory; longer files are refused


class AssetError(RelaxError):
    """A background sound file is missing, unreadable or too long."""


@lru_cache(maxsize=16)
def load_sound(path: Path) -> np.ndarray:
    import soundfile  # only sessions with sound files need these
    import soxr

    try:
        info = soundfile.info(str(path))
        if info.frames > MAX_SOUND_S * info.samplerate:
            raise AssetError(
                f"{path}: background sound lasts {info.frames / info.samplerate:.0f} s; "
                f"the limit is {MAX_SOUND_S // 60} minutes (loop a shorter file instead)"
            )
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
        if "format not recognised" in str(exc).casefold():  # whatever its name says
            raise AssetError(f"{path}: not a WAV, FLAC or OGG file") from None
        raise AssetError(f"{path}: cannot read background sound: {exc}") from None
    if data.shape[0] == 0:
        raise AssetError(f"{path}: background sound is empty")
    if data.shape[1] == 1:
        data = np.repeat(data, 2, axis=1)
    elif data.shape[1] > 2:
        data = data[:, :2]
    if rate != SAMPLE_RATE:
        data = soxr.resample(data, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    data.setflags(write=False)
    return data
