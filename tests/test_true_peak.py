"""The true-peak ceiling: every format reads at most -1 dBTP on ffmpeg's true-peak meter, with no
flat tops; the limiter gives the same samples whatever the blocks and the start, and leaves alone
what it does not need to touch. (The whole library in every format is measured the same way in tests/test_export_library.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from audio_engine import export, pipeline, render
from tests import _ffmpeg

# The session that read -0.9 dBTP as FLAC, with seven samples flat on the old ceiling at 43.615 s.
HOTTEST = "sleep-wind-down"


@pytest.fixture(scope="module")
def hottest():
    return pipeline.prepare(pipeline.load(HOTTEST, "en"))


def _flat_runs(samples: np.ndarray, level: float) -> int:
    """Runs of three or more equal samples at or above `level` (of full scale), in any channel."""
    found = 0
    for channel in np.atleast_2d(samples.T):
        loud = np.abs(channel.astype(np.int32)) >= level * 32767
        same = (channel[1:] == channel[:-1]) & loud[1:] & loud[:-1]
        found += int(np.sum(same[1:] & same[:-1]))
    return found


@pytest.mark.parametrize("name", sorted(export.FORMATS))
def test_a_builtin_session_reads_at_most_minus_1_dbtp_in_every_format(hottest, tmp_path, name):
    form = export.FORMATS[name]
    gain = pipeline.gain(hottest, lossy_quality=export.lossy_quality(form))
    path = export.export(hottest, tmp_path / f"out.{name}", gain=gain, transcript=False)
    lufs, peak = _ffmpeg.r128(path)
    assert peak <= render.TRUE_PEAK_DBTP, f"{peak:.2f} dBTP"
    assert lufs == pytest.approx(-16.0, abs=0.1)
    if not form.lossy:
        data, _ = soundfile.read(path, dtype="int16")
        top = 20 * np.log10(np.abs(data.astype(np.int32)).max() / 32767)
        assert top <= render.LIMIT_DBTP + 0.001  # (16-bit rounding)
        # No flat tops: nothing sits on the ceiling for three samples (the old soft ceiling held
        # seven there at 43.615 s, an audible tick).
        assert _flat_runs(data, 10 ** ((render.LIMIT_DBTP - 1.0) / 20)) == 0


def _render(prepared, gain, **kw) -> np.ndarray:
    return np.concatenate(list(render.blocks(prepared.timeline, prepared.sources, gain=gain, **kw)))


def _true_peak(block: np.ndarray) -> float:
    """4x oversampled peak of a whole signal, by another interpolator than the limiter's (an
    FFT's: band-limited, exact for a periodic signal; here the edges are silent)."""
    n = len(block)
    spectrum = np.fft.rfft(block.astype(np.float64), axis=0)
    up = np.fft.irfft(spectrum, 4 * n, axis=0) * 4
    return float(np.abs(up).max())


def test_the_limiter_gives_the_same_samples_whatever_the_blocks_and_the_start(hottest):
    gain = pipeline.gain(hottest) * 2  # 6 dB hotter: the limiter works on every line
    stop = 60 * 44100
    whole = _render(hottest, gain, stop_sample=stop)
    free = _render(hottest, gain, stop_sample=stop, ceiling_dbtp=40.0)
    assert np.sum(np.any(whole != free, axis=1)) > 10000  # it did work
    for block, start in ((1000, 0), (8192, 123457), (4410, 1_323_001), (65536, 44100 * 43)):
        part = _render(hottest, gain, start_sample=start, block_samples=block, stop_sample=stop)
        assert np.array_equal(part, whole[start:]), (block, start)


def test_the_limiter_holds_the_ceiling_without_flattening_the_peaks(hottest):
    gain = pipeline.gain(hottest) * 2
    window = slice(40 * 44100, 50 * 44100)
    out = _render(hottest, gain, stop_sample=window.stop)[window]
    free = _render(hottest, gain, stop_sample=window.stop, ceiling_dbtp=40.0)[window]
    ceiling = 10 ** (render.LIMIT_DBTP / 20)
    assert _true_peak(free) > 1.3 * ceiling  # 2.3 dB over before the limiter
    assert _true_peak(out) <= ceiling * 10 ** (0.05 / 20)  # another interpolator: within 0.05 dB
    # The peaks keep their shape: the gain moves smoothly (at most a 1/128th of its dip from one
    # sample to the next), it is never above 1, and the output never sits flat on the ceiling.
    loud = np.abs(free).max(axis=1) > 1e-3
    ratio = np.max(np.abs(out[loud]), axis=1) / np.max(np.abs(free[loud]), axis=1)
    assert ratio.max() <= 1.0 + 1e-6
    steps = np.abs(np.diff(ratio))
    assert steps.max() <= (1 - ratio.min()) / 100
    assert _flat_runs(render.to_int16(out), 10 ** ((render.LIMIT_DBTP - 1.0) / 20)) == 0


def test_samples_the_limiter_does_not_need_pass_as_they_are(hottest):
    # Under the ceiling by more than the interpolator can overshoot: the gained mix, bit for bit
    # (so a session that never comes near the ceiling renders as it did before the limiter).
    gain = pipeline.gain(hottest) / 2
    out = _render(hottest, gain, stop_sample=30 * 44100)
    mixed = np.concatenate(
        list(render.mixed_blocks(hottest.timeline, hottest.sources, 0, 30 * 44100, 4096))
    )
    assert np.array_equal(out, mixed * np.float32(gain))
