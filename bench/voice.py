"""How the voices speak: words per minute, pitch, level and speed, and spectrograms to look at.

    .venv/bin/python bench/voice.py [--lines N] [--look DIR]

For the distinct English lines of the built-in sessions (the first N, default all) and each voice
(the neural voice as relax speaks it, the same model with hibari's own delivery, espeak-ng), at
the sessions' 140 wpm, prints a table: words per minute measured (words / seconds of trimmed
speech), median pitch and pitch range (5th to 95th percentile of voiced frames, in semitones:
an autocorrelation pitch tracker over 40 ms frames), RMS level, spectral level above 4 kHz
relative to 0-4 kHz, and clips per second. Then words per minute measured at `rate:` 100, 125,
140, 160 and 200 for the neural voice. With `--look DIR` it writes a spectrogram PNG per voice of
one line (0-8 kHz, linear) to DIR. Each run synthesizes in a fresh cache folder.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from audio_engine import model, script, timeline, tts  # noqa: E402
from audio_engine.speech import engine as speech_engine  # noqa: E402
from audio_engine.speech import neural  # noqa: E402

RATE = model.SAMPLE_RATE
LOOK_TEXT = "Bring your attention to your chest. Feel it move gently with your breath."


def english_lines() -> list[str]:
    texts: list[str] = []
    for path in sorted(glob.glob(str(ROOT / "sessions" / "*.en.yaml"))):
        for u in timeline.speech_order(script.load(path)):
            if u.text not in texts:
                texts.append(u.text)
    return texts


def words(text: str) -> int:
    return len(re.findall(r"\w+", text))


def pitch_track(x: np.ndarray, rate: int = RATE) -> np.ndarray:
    """Pitch in Hz of the voiced 40 ms frames (hop 10 ms) of `x`: normalized autocorrelation,
    70-500 Hz, a frame voiced when its best peak is over 0.6 and it is within 30 dB of the top."""
    frame, hop = int(0.04 * rate), int(0.01 * rate)
    if x.size < frame:
        return np.zeros(0)
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), frame)[::hop]
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = (frames**2).sum(axis=1)
    loud = energy > energy.max() * 10 ** (-30 / 10)
    size = 1 << int(np.ceil(np.log2(2 * frame)))
    spec = np.fft.rfft(frames * np.hanning(frame), size, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, size, axis=1)[:, :frame]
    ac /= np.maximum(ac[:, :1], 1e-12)
    lo, hi = int(rate / 500), int(rate / 70)
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    peak = ac[np.arange(len(lag)), lag]
    voiced = loud & (peak > 0.6)
    return rate / lag[voiced]


def hf_ratio_db(clips) -> float:
    """Energy above 4 kHz relative to 0-4 kHz, dB, over all clips."""
    lo = hi = 0.0
    for c in clips:
        p = np.abs(np.fft.rfft(c.astype(np.float64))) ** 2
        f = np.fft.rfftfreq(c.size, 1 / RATE)
        lo += p[f < 4000].sum()
        hi += p[f >= 4000].sum()
    return 10 * np.log10(hi / lo)


def raw_hibari(text: str, rate_wpm: int) -> np.ndarray:
    """hibari's own delivery (no pitch change, no shelf, no level), trimmed, at 44.1 kHz."""
    import soxr

    engine = neural.load()
    audio = engine(text, speed=neural.speed_for(rate_wpm), seed=neural.SEED)
    return speech_engine.trim_and_ramp(soxr.resample(audio, 24000, RATE, quality="HQ"))


def measure(name: str, texts, make) -> tuple[list[np.ndarray], str]:
    t0 = time.perf_counter()
    clips = [make(t) for t in texts]
    elapsed = time.perf_counter() - t0
    speech_s = sum(c.size for c in clips) / RATE
    f0 = np.concatenate([pitch_track(c) for c in clips])
    p5, p50, p95 = np.percentile(f0, [5, 50, 95])
    level = np.sqrt(
        sum(float((c.astype(np.float64) ** 2).sum()) for c in clips) / (speech_s * RATE)
    )
    row = (
        f"{name:<22} {len(texts):>5} {sum(map(words, texts)) / speech_s * 60:>7.1f} "
        f"{p50:>8.0f} {12 * np.log2(p95 / p5):>9.1f} {level:>7.3f} {hf_ratio_db(clips):>9.1f} "
        f"{len(texts) / elapsed:>8.1f}"
    )
    return clips, row


def spectrogram_png(path: Path, x: np.ndarray, height: int = 300, fmax: float = 8000.0) -> None:
    from synth import _colour, write_png

    n, hop = 1024, 220
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), n)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)) ** 2 + 1e-14
    keep = int(fmax / (RATE / n))
    db = 10 * np.log10(power[:, :keep]).T[::-1]
    rows = np.linspace(0, db.shape[0] - 1, height).astype(int)
    db = db[rows]
    top = db.max()
    write_png(path, _colour((db - (top - 80.0)) / 80.0))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=0, help="only the first N lines")
    parser.add_argument("--look", type=Path, metavar="DIR", help="write spectrogram PNGs here")
    args = parser.parse_args(argv)
    os.environ["RELAX_CACHE_DIR"] = tempfile.mkdtemp(prefix="relax-bench-voice-")
    texts = english_lines()
    if args.lines:
        texts = texts[: args.lines]
    neural.load()
    tts.engine_version()

    def relax_voice(engine):
        def make(text):
            voice = model.Voice(rate_wpm=140, volume=1.0, engine=engine)
            return tts.synthesize(model.Utterance(text, "en", voice))

        return make

    voices = (
        ("neural (relax)", relax_voice("neural")),
        ("neural (hibari's own)", lambda t: raw_hibari(t, 140)),
        ("espeak", relax_voice("espeak")),
    )
    print(f"{len(texts)} English lines at rate 140 wpm")
    print(
        f"{'voice':<22} {'lines':>5} {'wpm':>7} {'pitch Hz':>8} {'range st':>9} {'RMS':>7} "
        f"{'>4kHz dB':>9} {'clips/s':>8}"
    )
    for name, make in voices:
        _, row = measure(name, texts, make)
        print(row)
    print("\nneural voice, words per minute measured at each rate:")
    for rate in (100, 125, 140, 160, 200):
        clips = [
            tts.synthesize(model.Utterance(t, "en", model.Voice(rate_wpm=rate, volume=1.0)))
            for t in texts
        ]
        wpm = sum(map(words, texts)) / (sum(c.size for c in clips) / RATE) * 60
        print(f"  rate {rate:>3}: {wpm:6.1f} wpm")
    if args.look:
        args.look.mkdir(parents=True, exist_ok=True)
        for name, make in voices:
            path = args.look / f"voice-{re.sub(r'[^a-z]+', '-', name.lower()).strip('-')}.png"
            spectrogram_png(path, make(LOOK_TEXT))
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
