"""The neural English voice: hibari-tts (an ONNX model inside its wheel, run by onnxruntime).

The second speech engine beside pyttsx3 (`tts.py`), used by `tts` behind the same clip interface.
Entry points:

- `available()`: hibari-tts and onnxruntime are installed and the voice's model is in the wheel.
- `VOICES`: the voices (only those whose model ships inside the package: nothing is downloaded).
- `version()`: the versions that decide a clip's sound (hibari-tts, onnxruntime, the model file's
  SHA-256, `DELIVERY_VERSION`); part of every neural clip's cache key.
- `speech(text, rate_wpm, voice_id)`: the raw clip, float32 mono at `model.SAMPLE_RATE`, before
  `tts` trims, ramps and scales it.
- `load()`: load the model now (a player warms it while it reads the script).

A clip depends only on its text, voice and rate: the model runs with one onnxruntime thread (the
same arithmetic in every process; parallelism comes from clips made at once on several threads)
and the vocoder's noise from a generator seeded with `SEED` for every clip. Loading takes about
1 s (onnxruntime, scipy.fft and the pronunciation lexicons); a line then takes about 1/100 of its
length on one core of this machine. Runs in the calling process: unlike espeak-ng, hibari keeps
no state from one clip to the next (tested), and onnxruntime with one thread starts none of its
own, so the process can still fork.

Delivery (`speech`): `rate_wpm` is mapped to hibari's `speed` through `RATE_TABLE`, measured on
the 111 distinct English lines of the built-in sessions (words per minute of trimmed speech), so
that 140 wpm measures about 140 wpm. The model's pitch curve is lowered by `PITCH_FACTOR` (about
1.4 semitones) and its excursions around the line's median are narrowed to `PITCH_RANGE` of
their size before the vocoder runs: a calmer, less lilting voice whose formants stay where they
are (the vocoder is source-filter: the spectral envelope comes from the network, the pulses from
the pitch curve). The sentences of a line are joined with `SENTENCE_PAUSE_S` of silence
(hibari leaves about 1.05 s of its own: 0.4 s before and 0.65 s after each). Then a gentle high
shelf (`SHELF_DB` above `SHELF_HZ`) takes the edge off
sibilants, and `LEVEL` brings speech to about the RMS espeak-ng speaks at (0.1), so the mix with
the background stays as documented.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio_engine import model

ENGINE = "neural"
SEED = 0
LANGUAGE = "en"  # the primary language the neural voices speak
DELIVERY_VERSION = 1  # bump when anything below changes what a clip sounds like

# (words per minute measured, hibari speed): trimmed speech of the built-in English lines.
RATE_TABLE = (
    (81.2, 0.4),
    (101.3, 0.5),
    (122.0, 0.6),
    (143.6, 0.7),
    (163.9, 0.8),
    (193.6, 0.9),
    (203.4, 1.0),
    (225.7, 1.2),
    (307.4, 1.4),
)
PITCH_FACTOR = 0.92  # x the model's pitch: 192 Hz median -> about 177 Hz
PITCH_RANGE = 0.7  # x the model's excursions around the median (in semitones)
SHELF_HZ = 4000.0
SHELF_DB = -4.0
LEVEL = 2.0  # fixed gain: 0.05 RMS (hibari, measured) to about espeak-ng's 0.1
SENTENCE_PAUSE_S = 0.6  # silence between two sentences of a line (hibari's own: about 1.05 s)
EDGE_S = 0.01  # kept around each sentence's sound
VOICED_HZ = 40.0  # hibari's own voicing threshold


@dataclass(frozen=True)
class NeuralVoice:
    id: str
    name: str
    languages: tuple[str, ...]
    hibari_name: str


VOICES = (
    NeuralVoice(
        id="hibari/heart",
        name="Heart (neural, American English, female)",
        languages=("en-us", "en"),
        hibari_name="heart",
    ),
)


@functools.cache
def _spec_origin(package: str) -> str | None:
    # Remembered: asked for every line of a session (where the packages are does not change
    # while a process runs; an install or upgrade takes a new process).
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec and spec.origin else None


@functools.cache
def _model_file(voice: NeuralVoice) -> Path | None:
    origin = _spec_origin("hibari")
    if origin is None:
        return None
    path = Path(origin).parent / "assets" / "hibari.onnx"
    return path if voice.hibari_name == "heart" and path.is_file() else None


def available() -> bool:
    """hibari-tts and onnxruntime are installed, with the voice's model in the package."""
    if os.environ.get("RELAX_NEURAL", "").lower() == "off":  # a test hook: as if not installed
        return False
    return _spec_origin("onnxruntime") is not None and _model_file(VOICES[0]) is not None


def speaks(language: str) -> bool:
    return model.primary_language(language) == LANGUAGE


def speed_for(rate_wpm: float) -> float:
    """hibari's `speed` for `rate_wpm` (linear between the measured points of `RATE_TABLE`)."""
    wpm = [w for w, _ in RATE_TABLE]
    speeds = [s for _, s in RATE_TABLE]
    if rate_wpm <= wpm[0]:
        return speeds[0] * rate_wpm / wpm[0]
    if rate_wpm >= wpm[-1]:
        return speeds[-1] * rate_wpm / wpm[-1]
    return float(np.interp(rate_wpm, wpm, speeds))


# ---- versions ----------------------------------------------------------------------------------

_version_lock = threading.Lock()
_version: str | None = None


def package_stamp(package: str) -> list:
    """Where `package` is installed and when its files were written (an upgrade rewrites them):
    a cheap stand-in for its version (importlib.metadata costs ~50 ms of every start)."""
    origin = _spec_origin(package)
    try:
        stat = os.stat(origin) if origin else None
    except OSError:
        stat = None
    return [package, origin, stat and stat.st_mtime_ns, stat and stat.st_size]


def _fingerprint() -> str:
    parts: list = [DELIVERY_VERSION]
    parts += [package_stamp(package) for package in ("hibari", "onnxruntime", "soxr")]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]


def version(cache_folder: Path) -> str:
    """e.g. ``"hibari-tts 0.2.1; onnxruntime 1.32.0; model 5f70741d4e90; delivery 1"``.

    Found once (package metadata and a hash of the model file) and kept in the cache folder under
    a fingerprint of the installed packages, like espeak-ng's answer in `tts` (`cache_folder`).
    """
    global _version
    with _version_lock:
        if _version is not None:
            return _version
        remembered = Path(cache_folder) / f"neural-{_fingerprint()}.json"
        try:
            _version = str(json.loads(remembered.read_text(encoding="utf-8"))["version"])
            return _version
        except (OSError, ValueError, KeyError, TypeError):
            pass
        from importlib.metadata import version as dist_version

        digest = hashlib.sha256(_model_file(VOICES[0]).read_bytes()).hexdigest()[:12]
        found = (
            f"hibari-tts {dist_version('hibari-tts')}; onnxruntime {dist_version('onnxruntime')}; "
            f"soxr {dist_version('soxr')}; model {digest}; delivery {DELIVERY_VERSION}"
        )
        with contextlib.suppress(OSError):
            remembered.parent.mkdir(parents=True, exist_ok=True)
            tmp = remembered.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"version": found}), encoding="utf-8")
            os.replace(tmp, remembered)
        _version = found
        return found


# ---- the model ---------------------------------------------------------------------------------

_load_lock = threading.Lock()
_g2p_lock = threading.Lock()  # the pronunciation stage is plain Python with caches: one at a time
_engines: dict[str, object] = {}


def load(voice: NeuralVoice = VOICES[0]):
    """The loaded hibari model and pronunciation stage for `voice` (loaded once per process)."""
    with _load_lock:
        engine = _engines.get(voice.id)
        if engine is None:
            from hibari import Hibari

            engine = Hibari(voice=voice.hibari_name, model=str(_model_file(voice)), threads=1)
            with _g2p_lock:
                _ = engine.g2p  # the lexicons: most of the load time
            _engines[voice.id] = engine
        return engine


def _voice(voice_id: str) -> NeuralVoice:
    for voice in VOICES:
        if voice.id == voice_id:
            return voice
    raise KeyError(voice_id)


def _calm_pitch(f0: np.ndarray) -> np.ndarray:
    """Lower the pitch curve and narrow its excursions around the line's median (in log pitch)."""
    voiced = f0 > VOICED_HZ
    if not voiced.any():
        return f0
    median = float(np.median(f0[voiced]))
    out = f0.astype(np.float64, copy=True)
    ratio = out[voiced] / median
    out[voiced] = PITCH_FACTOR * median * np.power(ratio, PITCH_RANGE)
    return out.astype(np.float32)


def _trimmed(sentence: np.ndarray, rate_hz: int) -> np.ndarray:
    """One sentence without the model's silence around it (under -60 dBFS after `LEVEL`), with
    `EDGE_S` kept and 4 ms raised-cosine ramps."""
    threshold = 10.0 ** (-60.0 / 20.0) / LEVEL
    loud = np.flatnonzero(np.abs(sentence) > threshold)
    if loud.size == 0:
        return sentence[:0]
    margin = round(EDGE_S * rate_hz)
    piece = sentence[max(0, loud[0] - margin) : loud[-1] + 1 + margin].copy()
    ramp_n = min(round(0.004 * rate_hz), piece.size // 2)
    if ramp_n:
        ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp_n) + 0.5) / ramp_n)).astype(np.float32)
        piece[:ramp_n] *= ramp
        piece[-ramp_n:] *= ramp[::-1]
    return piece


def _soften(signal: np.ndarray, rate_hz: int) -> np.ndarray:
    """A gentle high shelf: `SHELF_DB` above `SHELF_HZ`, smooth (raised-cosine) over an octave."""
    n = signal.size
    if n == 0:
        return signal
    size = 1 << int(np.ceil(np.log2(max(2, n))))
    spectrum = np.fft.rfft(signal.astype(np.float64), size)
    freqs = np.fft.rfftfreq(size, 1.0 / rate_hz)
    position = np.clip(np.log2(np.maximum(freqs, 1.0) / (SHELF_HZ / np.sqrt(2.0))), 0.0, 1.0)
    shelf = 0.5 - 0.5 * np.cos(np.pi * position)
    spectrum *= 10.0 ** (SHELF_DB * shelf / 20.0)
    return np.fft.irfft(spectrum, size)[:n].astype(np.float32)


def speech(text: str, rate_wpm: int, voice_id: str = VOICES[0].id) -> np.ndarray:
    """`text` spoken at `rate_wpm`: float32 mono at `model.SAMPLE_RATE`, untrimmed, unscaled."""
    import soxr
    from hibari import dsp

    engine = load(_voice(voice_id))
    speed = np.asarray([speed_for(rate_wpm)], np.float32)
    with _g2p_lock:
        phonemes = engine.phonemize(text)
    rng = np.random.default_rng(SEED)  # one generator per clip, as hibari's own call does
    parts = []
    pause = np.zeros(round(SENTENCE_PAUSE_S * dsp.SR), np.float32)
    for ps in phonemes:
        ids = engine.ids(ps)
        if len(ids) < 3:
            continue
        out = engine.sess.run(None, {"ids": np.asarray([ids], np.int64), "speed": speed})
        lh, th, ln, lr, phi, f0 = (o[0] for o in out)
        sentence = _trimmed(dsp.synth(lh, th, ln, lr, phi, _calm_pitch(f0), rng), dsp.SR)
        if sentence.size:
            parts += [pause, sentence] if parts else [sentence]
    if not parts:
        return np.zeros(0, np.float32)
    raw = np.concatenate(parts)
    soft = _soften(raw, dsp.SR)
    clip = soxr.resample(soft, dsp.SR, model.SAMPLE_RATE, quality="HQ")
    return (np.asarray(clip, dtype=np.float32) * np.float32(LEVEL)).astype(np.float32)
