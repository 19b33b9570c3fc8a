"""How fast the synth stage generates each layer, and what each one looks like.

    .venv/bin/python bench/synth.py               # speed table: x real time, 4096 and 65536 blocks
    .venv/bin/python bench/synth.py --look DIR    # also write spectrogram / spectrum PNGs to DIR

The PNGs are for a person to look at (no matplotlib here: a small numpy spectrogram and a
zlib PNG writer). They are not part of the package and are not committed.
"""

from __future__ import annotations

import argparse
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audio_engine import synth  # noqa: E402
from audio_engine.model import SAMPLE_RATE, Binaural, Drone, Noise  # noqa: E402

SR = SAMPLE_RATE
BLOCKS = (4096, 65536)
SECONDS = 60
ROOT = Path(__file__).resolve().parent.parent

BREATH_478 = (("inhale", 4 * SR), ("hold", 7 * SR), ("exhale", 8 * SR))
BREATH_BOX = (("inhale", 4 * SR), ("hold", 2 * SR), ("exhale", 4 * SR), ("rest", 2 * SR))


def _clear_caches() -> None:
    """Forget generated tiles (they are part of the cost); keep the noise loops (made once)."""
    synth._TILES.clear()


def _kinds():
    rng = np.random.default_rng(0)
    loop = rng.uniform(-0.3, 0.3, (7 * SR + 123, 2)).astype(np.float32)
    intervals = tuple((k * 3 * SR, k * 3 * SR + 2 * SR) for k in range(SECONDS))
    total = SECONDS * SR
    return {
        "drone 110 Hz": lambda a, b: synth.layer_block(Drone(110.0, 1.0), a, b),
        "binaural 200+6 Hz": lambda a, b: synth.layer_block(Binaural(200.0, 6.0, 1.0), a, b),
        "noise white": lambda a, b: synth.layer_block(Noise("white", 1.0), a, b),
        "noise pink": lambda a, b: synth.layer_block(Noise("pink", 1.0), a, b),
        "noise brown": lambda a, b: synth.layer_block(Noise("brown", 1.0), a, b),
        "guide tone 4-7-8": lambda a, b: synth.guide_tone(BREATH_478, 4, a, b),
        "sound loop 7 s": lambda a, b: synth.sound_block(loop, True, a, b),
        "fade_gain": lambda a, b: synth.fade_gain(a, b, total, 3 * SR, 5 * SR),
        "duck_gain": lambda a, b: synth.duck_gain(a, b, intervals, 0.5, SR // 4),
        "chime bowl (cached slice)": lambda a, b: synth.chime("bowl", 0.5)[a % 1000 : a % 1000 + 1],
    }


def import_seconds(module: str = "audio_engine.synth") -> float:
    """Wall time of `import module` in a fresh interpreter (numpy included)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    return min(runs)


def speed_table() -> None:
    print(
        f"import audio_engine.synth: {import_seconds() * 1000:.0f} ms, of which numpy alone"
        f" {import_seconds('numpy') * 1000:.0f} ms (fresh interpreter, best of 3)"
    )
    synth._installed_loops.clear()
    for color in ("white", "pink", "brown"):
        t0 = time.perf_counter()
        synth._noise_loop(color)
        print(f"noise loop {color}: made in {time.perf_counter() - t0:.3f} s (once per colour)")
    header = "".join(f"{f'{b} blocks':>14}" for b in BLOCKS)
    print(f"{'x real time, ' + str(SECONDS) + ' s':<28}{header}")
    for name, make in _kinds().items():
        cells = []
        for block in BLOCKS:
            _clear_caches()
            t0 = time.perf_counter()
            for a in range(0, SECONDS * SR, block):
                make(a, min(a + block, SECONDS * SR))
            cells.append(SECONDS / (time.perf_counter() - t0))
        print(f"{name:<28}" + "".join(f"{c:>14.0f}" for c in cells))
    t0 = time.perf_counter()
    for name in ("bell", "bowl", "soft"):
        synth._unit_chime.cache_clear()
        synth.chime.cache_clear()
        synth.chime(name)
    print(f"{'3 chimes, uncached':<28} {time.perf_counter() - t0:>13.3f}s")


# ---- pictures ----------------------------------------------------------------------------------


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an (h, w, 3) uint8 image as an 8-bit RGB PNG."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
    path.write_bytes(png + chunk(b"IEND", b""))


def _colour(v: np.ndarray) -> np.ndarray:
    """0..1 -> a dark-blue / magenta / yellow ramp (like 'inferno', roughly)."""
    v = np.clip(v, 0, 1)[..., None]
    stops = np.array(
        [
            [0, 0, 4],
            [40, 11, 84],
            [101, 21, 110],
            [159, 42, 99],
            [212, 72, 66],
            [245, 125, 21],
            [250, 193, 39],
            [252, 255, 164],
        ],
        dtype=np.float64,
    )
    pos = v * (len(stops) - 1)
    i = np.minimum(pos.astype(int), len(stops) - 2)
    frac = pos - i
    return (stops[i[..., 0]] * (1 - frac) + stops[i[..., 0] + 1] * frac).astype(np.uint8)


def spectrogram_png(
    path: Path,
    x: np.ndarray,
    fmin: float,
    fmax: float,
    height: int = 360,
    width: int = 900,
    floor_db: float = 90.0,
) -> None:
    """Log-frequency spectrogram (rows fmin..fmax, bottom to top) with octave lines at A notes."""
    x = np.asarray(x, dtype=np.float64)
    nper = 8192
    hop = max(1, (len(x) - nper) // width)
    f, t, z = signal.stft(x, fs=SR, nperseg=nper, noverlap=nper - hop, boundary=None, padded=False)
    power = np.abs(z) ** 2 + 1e-20
    rows = np.geomspace(fmin, fmax, height)[::-1]
    img_db = np.empty((height, power.shape[1]))
    for r, fr in enumerate(rows):
        k = int(round(fr / (SR / nper)))
        img_db[r] = 10 * np.log10(power[max(k - 1, 0) : k + 2].max(axis=0))
    top = img_db.max()
    rgb = _colour((img_db - (top - floor_db)) / floor_db)
    for ref in (27.5 * 2**k for k in range(11)):  # A0..A10 lines
        if fmin < ref < fmax:
            r = int(np.argmin(np.abs(rows - ref)))
            rgb[r, ::4] = (90, 90, 90)
    write_png(path, rgb)


def spectrum_png(
    path: Path, x: np.ndarray, slope_db: float, width: int = 800, height: int = 400
) -> None:
    """Welch PSD on log-log axes (20 Hz - 22 kHz, 100 dB tall) with the ideal slope in green."""
    f, p = signal.welch(np.asarray(x, np.float64), fs=SR, nperseg=65536)
    keep = f >= 10
    f, db = f[keep], 10 * np.log10(p[keep] + 1e-30)
    lo, hi = np.log2(10), np.log2(22050)
    col = ((np.log2(f) - lo) / (hi - lo) * (width - 1)).astype(int)
    ref_db = db[np.argmin(np.abs(f - 1000))]
    top = ref_db + 50
    rgb = np.full((height, width, 3), 255, np.uint8)
    for ref in (20, 50, 100, 1000, 10000, 20000):
        c = int((np.log2(ref) - lo) / (hi - lo) * (width - 1))
        rgb[:, c] = (210, 210, 210)
    for c in range(width):  # the ideal slope through the 1 kHz level
        fc = 2 ** (lo + c / (width - 1) * (hi - lo))
        r = int((top - (ref_db + slope_db * np.log2(fc / 1000))) / 100 * (height - 1))
        if 0 <= r < height:
            rgb[r, c] = (0, 160, 0)
    rows = ((top - db) / 100 * (height - 1)).astype(int)
    ok = (rows >= 0) & (rows < height)
    rgb[rows[ok], col[ok]] = (0, 0, 0)
    write_png(path, rgb)


def envelope_png(path: Path, x: np.ndarray, width: int = 900, height: int = 240) -> None:
    """Peak envelope in dB (0 to -80 dB of the peak), left to right over the whole signal."""
    x = np.abs(np.asarray(x, np.float64))
    per = max(1, len(x) // width)
    peaks = x[: per * (len(x) // per)].reshape(-1, per).max(axis=1)
    db = 20 * np.log10(peaks / x.max() + 1e-12)
    rgb = np.full((height, len(peaks), 3), 255, np.uint8)
    for level in (-20, -40, -60):
        rgb[int(-level / 80 * (height - 1)), :] = (210, 210, 210)
    for c, d in enumerate(db):
        r = int(np.clip(-d / 80 * (height - 1), 0, height - 1))
        rgb[r:, c] = (40, 40, 140)
    write_png(path, rgb)


def look(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    n = 30 * SR
    drone = synth.layer_block(Drone(110.0, 1.0), 0, n)
    spectrogram_png(out / "drone-110.png", drone[:, 0], 40, 2000)
    envelope_png(out / "drone-110-envelope.png", drone[:, 0])
    binaural = synth.layer_block(Binaural(200.0, 6.0, 1.0), 0, 10 * SR)
    spectrogram_png(out / "binaural-200-6-right.png", binaural[:, 1], 40, 2000)
    for color, slope in (("white", 0.0), ("pink", -3.0), ("brown", -6.0)):
        x = synth.layer_block(Noise(color, 1.0), 0, n)
        spectrogram_png(out / f"noise-{color}.png", x[: 10 * SR, 0], 10, 22000)
        spectrum_png(out / f"noise-{color}-psd.png", x[:, 0], slope)
    for name, phases, cycles in (("478", BREATH_478, 2), ("box", BREATH_BOX, 3)):
        total = sum(k for _, k in phases) * cycles
        tone = synth.guide_tone(phases, cycles, 0, total)
        spectrogram_png(out / f"guide-tone-{name}.png", tone, 150, 700)
        envelope_png(out / f"guide-tone-{name}-envelope.png", tone)
    for name in ("bell", "bowl", "soft"):
        x = synth.chime(name)
        padded = np.concatenate([np.zeros(SR // 4), x, np.zeros(SR // 4)])
        spectrogram_png(out / f"chime-{name}.png", padded, 50, 8000)
        envelope_png(out / f"chime-{name}-envelope.png", x)
    print(f"pictures in {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--look", type=Path, help="write spectrogram PNGs to this folder")
    args = parser.parse_args()
    speed_table()
    if args.look:
        look(args.look)


if __name__ == "__main__":
    main()
