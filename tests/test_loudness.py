"""The streaming loudness meter agrees with pyloudnorm (BS.1770-4) and does not depend on blocks."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest

from audio_engine import loudness

SR = 44100


def _signal(seconds=12.0, seed=3):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 0.2 * t) > 0)  # gated bursts
    noise = 0.02 * rng.standard_normal(len(t))
    left = tone + noise
    right = 0.5 * tone + noise
    return np.stack([left, right], axis=1)


@pytest.mark.parametrize("block", [1000, 4410, 65536])
def test_meter_matches_pyloudnorm_for_any_block_size(block):
    audio = _signal()
    expected = pyloudnorm.Meter(SR).integrated_loudness(audio)
    meter = loudness.Meter(SR, 2)
    for i in range(0, len(audio), block):
        meter.feed(audio[i : i + block])
    assert meter.integrated_lufs() == pytest.approx(expected, abs=0.3)
    assert meter.peak == pytest.approx(np.abs(audio).max())


def test_full_scale_1khz_sine_reads_minus_3_lufs():
    t = np.arange(10 * SR) / SR
    sine = np.sin(2 * np.pi * 997 * t)
    # BS.1770: a 0 dBFS 1 kHz sine in one channel of a stereo pair reads -3.01 LKFS.
    audio = np.stack([sine, np.zeros_like(sine)], axis=1)
    assert loudness.integrated_lufs(audio, SR) == pytest.approx(-3.01, abs=0.05)


def test_silence_is_minus_infinity():
    assert loudness.integrated_lufs(np.zeros((SR * 2, 2)), SR) == -np.inf


def test_the_light_filter_kernel_equals_scipys_public_sosfilt():
    from scipy.signal import sosfilt

    sos = np.array([np.r_[b, a] for b, a in loudness.k_weighting(SR)])
    rows = np.random.default_rng(5).standard_normal((2, 5000))
    state = np.zeros((2, len(sos), 2))
    filtered = rows.copy()
    loudness._filter_in_place()(sos, filtered, state)
    expected, zi = sosfilt(sos, rows, axis=-1, zi=np.zeros((len(sos), 2, 2)))
    assert np.allclose(filtered, expected, rtol=1e-12, atol=1e-12)
    assert np.allclose(state, np.moveaxis(zi, 0, 1))
    # And the reference the light kernel is checked against at first use agrees too.
    assert np.allclose(loudness._biquads_reference(sos, rows[0]), expected[0], atol=1e-12)


_RACE = """
import sys, threading
sys.path.insert(0, sys.argv[1])
from audio_engine import loudness
barrier = threading.Barrier(8)
got, failed = [], []
def load():
    barrier.wait()
    try:
        got.append(loudness._filter_in_place())
    except BaseException as exc:
        failed.append(repr(exc))
threads = [threading.Thread(target=load) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(failed), len({id(f) for f in got}), "scipy.signal" in sys.modules)
"""


def test_the_filter_loads_once_when_threads_ask_at_once():
    # The player weighs clips in one thread while another measures the background: the kernel
    # is loaded once, never the whole of scipy.signal (a second-long import) and never an error.
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    for _ in range(4):
        done = subprocess.run(
            [sys.executable, "-c", _RACE, root], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["0", "1", "False"], done.stdout + done.stderr
