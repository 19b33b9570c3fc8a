"""The recorded voice: a person's recordings, one per distinct spoken line, in a folder.

A script says `voice: {engine: recorded, folder: PATH, fallback: neural | espeak | none}`. Each
line the session speaks (every say, cue, count, countdown number, scan prompt and stretch
instruction) is looked for in the folder as `<key>.wav`, `<key>.flac` or `<key>.ogg`, where
`line_key(text, language)` is a stable key of the text (its words, spaced once) and the
language's primary subtag: the same line in another script, or at another rate, is the same
recording. `voice.yaml` in the folder (`read_manifest`, `write_manifest`) records per key the
text, the language, the speaker's name and the licence, so that the folder can be shared with
its script.

Every recording is processed here, once, the same way (`process`):

- mixed to mono and resampled to `model.SAMPLE_RATE` (soxr);
- a high-pass filter at `HIGHPASS_HZ` (hum, rumble, handling noise);
- leading and trailing silence trimmed (10 ms frames quieter than `SILENCE_BELOW_DB` under the
  loudest frame, or than `FLOOR_DBFS`), with `FADE_S` raised-cosine fades;
- levelled to the RMS the engines speak at (`LEVEL_RMS`, as espeak-ng's speech and the neural
  voice's), its peak kept under `PEAK_LIMIT`;
- never stretched: the line lasts as long as it was said, and the script's timing checks use that
  length (a cue that runs over its beat is an error at the script's line, as with the engines).

A recording's clip is kept in the clip cache like an engine's, under a key that holds the
recording's SHA-256 (`recording_voice`): a new recording of a line is a new clip.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from audio_engine import fsio, model
from audio_engine.errors import TTSError
from audio_engine.speech.engine import ClipRejected, Running, VoiceInfo, raised_cosine, scaled

if TYPE_CHECKING:  # numpy where a clip is made: choosing a voice needs none
    import numpy as np

NAME = model.RECORDED
PROCESSING_VERSION = 1  # bump when `process` changes what a clip sounds like
EXTENSIONS = (".wav", ".flac", ".ogg")
MANIFEST = "voice.yaml"
HIGHPASS_HZ = 80.0
HIGHPASS_ORDER = 4  # Butterworth: 24 dB an octave below
FRAME_S = 0.010
SILENCE_BELOW_DB = 40.0  # a frame this far under the loudest one is silence
FLOOR_DBFS = -60.0  # and any frame under this
FADE_S = 0.010
LEVEL_RMS = 0.1  # the engines' speech level (espeak-ng as it comes; the neural voice x LEVEL)
PEAK_LIMIT = 0.95
MAX_RECORDING_BYTES = 200 * 1024 * 1024
# A line's recording lasts at most this long (the longest text, 2,000 characters, said slowly
# takes about 4 minutes), at a rate of at most MAX_RECORDING_RATE: its samples stay under about
# 0.5 GB however long the file or whatever its header claims.
MAX_RECORDING_S = 6 * 60
MAX_RECORDING_RATE = 192_000
_BLOCK_FRAMES = 1 << 16


def line_key(text: str, language: str) -> str:
    """The stable key of a spoken line: its words (spaced once) and the language's primary
    subtag, hashed; 12 hex digits."""
    words = " ".join(text.split())
    data = json.dumps([model.primary_language(language), words], ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:12]


def find(folder: Path, key: str) -> Path | None:
    """The recording of `key` in `folder` (WAV, FLAC or OGG), or None."""
    for extension in EXTENSIONS:
        path = Path(folder) / f"{key}{extension}"
        if path.is_file():
            return path
    return None


_digests: dict[tuple, str] = {}
_digest_lock = threading.Lock()


def _digest(path: Path) -> str:
    """The SHA-256 of a recording (remembered per path, size and modification time)."""
    st = os.stat(path)
    memo = (str(path), st.st_size, st.st_mtime_ns)
    with _digest_lock:
        found = _digests.get(memo)
    if found is None:
        found = hashlib.sha256(fsio.read_checked(path, MAX_RECORDING_BYTES)).hexdigest()
        with _digest_lock:
            _digests[memo] = found
    return found


def recording_voice(utterance: model.Utterance) -> VoiceInfo | None:
    """The voice of `utterance`'s recording in its voice's folder, or None when there is none:
    the id holds the recording's SHA-256, the name its path."""
    folder = utterance.voice.folder
    if folder is None:
        return None
    path = find(folder, line_key(utterance.text, utterance.language))
    if path is None:
        return None
    try:
        digest = _digest(path)
    except (OSError, fsio.FsError) as exc:
        raise TTSError(f"cannot read the recording {path}: {exc}") from None
    return VoiceInfo(
        id=f"recorded/{digest[:24]}", name=str(path), languages=(utterance.language,), engine=NAME
    )


def process(signal: np.ndarray, rate_hz: int) -> np.ndarray:
    """A recording (samples x channels, or mono) as a clip: see the module's description.

    Raises `ClipRejected` when it holds only silence."""
    import numpy as np
    import soxr
    from scipy.signal import butter, sosfilt, sosfilt_zi

    data = np.asarray(signal, dtype=np.float64)
    mono = data.mean(axis=1) if data.ndim == 2 else data
    if mono.size < round(FRAME_S * rate_hz):
        raise ClipRejected("the recording is shorter than 10 ms")
    if not np.all(np.isfinite(mono)):
        raise ClipRejected("the recording holds samples that are not numbers")
    if rate_hz != model.SAMPLE_RATE:
        mono = soxr.resample(mono, rate_hz, model.SAMPLE_RATE, quality="HQ")
    # The offset taken out first, and the filter started as if the recording had always been
    # there: no step at its start for the filter to ring on.
    mono = mono - float(np.mean(mono))
    sos = butter(HIGHPASS_ORDER, HIGHPASS_HZ, btype="highpass", fs=model.SAMPLE_RATE, output="sos")
    filtered, _state = sosfilt(sos, mono, zi=sosfilt_zi(sos) * mono[0])
    frame = round(FRAME_S * model.SAMPLE_RATE)
    n_frames = filtered.size // frame
    if n_frames == 0:
        raise ClipRejected("the recording is shorter than 10 ms")
    frames = filtered[: n_frames * frame].reshape(n_frames, frame)
    level = np.sqrt(np.mean(frames * frames, axis=1))
    loudest = float(level.max())
    threshold = max(loudest * 10.0 ** (-SILENCE_BELOW_DB / 20.0), 10.0 ** (FLOOR_DBFS / 20.0))
    loud = np.flatnonzero(level > threshold)
    if loud.size == 0:
        raise ClipRejected("the recording holds only silence")
    fade = round(FADE_S * model.SAMPLE_RATE)
    start = max(0, int(loud[0]) * frame - fade)
    stop = min(filtered.size, (int(loud[-1]) + 1) * frame + fade)
    clip = filtered[start:stop].copy()
    ramp = raised_cosine(min(fade, clip.size // 2)).astype(np.float64)
    if ramp.size:
        clip[: ramp.size] *= ramp
        clip[-ramp.size :] *= ramp[::-1]
    rms = float(np.sqrt(np.mean(clip * clip)))
    gain = LEVEL_RMS / rms
    peak = float(np.max(np.abs(clip))) * gain
    if peak > PEAK_LIMIT:
        gain *= PEAK_LIMIT / peak
    return (clip * gain).astype(np.float32)


def decode(path: Path) -> tuple[np.ndarray, int]:
    """A recording's samples mixed to mono (float64, as `process` mixes them), and its rate.

    Read in blocks and bounded (`MAX_RECORDING_S`, `MAX_RECORDING_RATE`): a longer file is
    `ClipRejected`, one that cannot be decoded a `soundfile.LibsndfileError`, `RuntimeError` or
    `OSError`."""
    import numpy as np
    import soundfile

    with soundfile.SoundFile(str(path)) as f:
        rate_hz = f.samplerate
        if rate_hz > MAX_RECORDING_RATE:
            raise ClipRejected(
                f"its sample rate is {rate_hz:,} Hz; the limit is {MAX_RECORDING_RATE:,} Hz"
            )
        limit = MAX_RECORDING_S * rate_hz
        parts = []
        frames = 0
        for block in f.blocks(_BLOCK_FRAMES, dtype="float64", always_2d=True):
            frames += len(block)
            if frames > limit:
                raise ClipRejected(
                    f"it lasts more than {MAX_RECORDING_S // 60} minutes, the limit for one line"
                )
            parts.append(block.mean(axis=1))
    return (np.concatenate(parts) if parts else np.zeros(0)), rate_hz


def read(path: Path) -> np.ndarray:
    """A recording file, processed (`process`). Raises `TTSError` naming it."""
    import soundfile

    try:
        return process(*decode(path))
    except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
        raise TTSError(f"cannot read the recording {path}: {exc}") from None
    except ClipRejected as exc:  # too long, too fast a rate, no sound
        raise TTSError(f"the recording {path} cannot be used: {exc}") from None


class Recorded:
    """The recorded voice as a speech engine (`engine.Engine`): a clip is a recording, processed.

    Its voices are the recordings themselves (`recording_voice`); `voice_for` gives only a stand-in
    for a session's voice checks (which recording speaks is known per line)."""

    name = NAME
    in_process = False  # nothing to load, a clip is read in moments
    pauses_in_lines = True  # a person pauses inside a line
    synthetic = False  # its voices are its recordings: their ids belong in every cache key

    def available(self) -> bool:
        return True

    def voices(self) -> list[VoiceInfo]:
        return []

    def voice_for(self, language: str, name: str | None, *, explicit: bool) -> VoiceInfo:
        return VoiceInfo(id=NAME, name="recorded voice", languages=(language,), engine=NAME)

    def version(self) -> str:
        return f"recorded {PROCESSING_VERSION}"

    def load(self, voice: VoiceInfo) -> None:
        """Nothing to load."""

    def loaded(self) -> bool:
        return True

    def make_clip(
        self, utterance: model.Utterance, voice: VoiceInfo, running: Running | None = None
    ) -> np.ndarray:
        return scaled(read(Path(voice.name)), utterance)


# ---- the manifest ------------------------------------------------------------------------------


def read_manifest(folder: Path) -> dict[str, dict]:
    """`voice.yaml` of `folder`: key -> {text, language, speaker, licence}; empty when missing."""
    import yaml

    path = Path(folder) / MANIFEST
    try:
        loaded = yaml.safe_load(fsio.read_checked(path, 4 * 1024 * 1024))
    except fsio.FsError:
        if not path.exists():
            return {}
        raise TTSError(f"cannot read {path}") from None
    except yaml.YAMLError as exc:
        raise TTSError(f"{path} is not valid YAML: {exc}") from None
    lines = (loaded or {}).get("lines", {}) if isinstance(loaded, dict) else {}
    return {str(k): dict(v) for k, v in lines.items() if isinstance(v, dict)}


def write_manifest(folder: Path, lines: dict[str, dict]) -> Path:
    """Write `voice.yaml` in `folder` (atomically), keys in order."""
    import yaml

    text = (
        "# The recordings of this folder: a relax recorded voice (`relax record`).\n"
        "# One file per line, named by its key (.wav, .flac or .ogg).\n"
        + yaml.safe_dump(
            {"lines": {k: lines[k] for k in sorted(lines)}}, allow_unicode=True, sort_keys=False
        )
    )
    return fsio.atomic_write(Path(folder) / MANIFEST, text.encode("utf-8"), fsync=False)


_SAFE = re.compile(r"[0-9a-f]{12}")


def is_key(name: str) -> bool:
    return bool(_SAFE.fullmatch(name))
