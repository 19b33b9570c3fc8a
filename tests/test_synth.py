"""The synth stage, measured like an audio engineer would: spectra, frequencies, levels, clicks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from audio_engine import chimes, synth
from audio_engine.model import SAMPLE_RATE, Binaural, Drone, Noise

SR = SAMPLE_RATE
ODD_BLOCKS = (1, 7, 333, 4097, 1000, 65537, 12345)
LOOP = synth._NOISE_LOOP_SAMPLES  # the noise period
TILE = synth._TILE_SAMPLES  # drone and binaural are made in tiles of this many samples


def _in_blocks(make, start: int, stop: int, sizes=ODD_BLOCKS) -> np.ndarray:
    """Concatenate make(a, b) over [start, stop) cut into blocks of the given (cycled) sizes."""
    parts, pos, k = [], start, 0
    while pos < stop:
        b = min(stop, pos + sizes[k % len(sizes)])
        parts.append(make(pos, b))
        pos, k = b, k + 1
    return np.concatenate(parts) if parts else make(start, start)


def _measured_frequency(x: np.ndarray, nominal_hz: float) -> float:
    """Frequency of the component near `nominal_hz`: slope of its demodulated phase over time."""
    ref_hz = nominal_hz + 0.37  # deliberately off, so the estimate cannot just echo the nominal
    n = np.arange(len(x))
    z = x * np.exp(-2j * np.pi * ref_hz * n / SR)
    hop = SR // 10
    m = len(z) // hop
    phasors = z[: m * hop].reshape(m, hop).mean(axis=1)
    phase = np.unwrap(np.angle(phasors))
    t_s = (np.arange(m) * hop + (hop - 1) / 2) / SR
    slope = np.polyfit(t_s, phase, 1)[0]
    return ref_hz + slope / (2 * np.pi)


def _slope_db_per_octave(x: np.ndarray) -> float:
    f, p = signal.welch(x, fs=SR, nperseg=16384)
    band = (f >= 50) & (f <= 10000)
    return float(np.polyfit(np.log2(f[band]), 10 * np.log10(p[band]), 1)[0])


# ---- random access ---------------------------------------------------------------------------

LAYERS = [
    Drone(frequency_hz=97.3, volume=0.8),
    Binaural(carrier_hz=210.0, beat_hz=6.5, volume=0.5),
    Noise(color="white", volume=1.0),
    Noise(color="pink", volume=0.3),
    Noise(color="brown", volume=0.7),
]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: type(layer).__name__)
@pytest.mark.parametrize("start", [0, 3 * TILE - 5000, LOOP - 5000, 4 * 3600 * SR - 777])
def test_layers_are_random_access(layer, start):
    stop = start + 90_000  # crosses a tile edge, the noise loop's wrap, tile edges hours in
    whole = synth.layer_block(layer, start, stop)
    pieces = _in_blocks(lambda a, b: synth.layer_block(layer, a, b), start, stop)
    assert whole.dtype == np.float32 and whole.shape == (stop - start, 2)
    np.testing.assert_array_equal(pieces, whole)
    # A block starting in the middle equals the same samples of the longer block.
    np.testing.assert_array_equal(
        synth.layer_block(layer, start + 4321, start + 9999), whole[4321:9999]
    )


def test_noise_random_access_does_not_depend_on_cache_state():
    layer = Noise(color="pink", volume=1.0)
    first = synth.layer_block(layer, LOOP - 100, LOOP + 100)
    synth._installed_loops.clear()
    synth.layer_block(Noise(color="white", volume=1.0), 0, 10)
    np.testing.assert_array_equal(synth.layer_block(layer, LOOP - 100, LOOP + 100), first)


@pytest.mark.parametrize("layer", LAYERS[:2], ids=lambda layer: type(layer).__name__)
def test_tones_do_not_depend_on_cache_state(layer):
    first = synth.layer_block(layer, 5 * TILE - 100, 5 * TILE + 100)
    synth._TILES.clear()
    # More tiles than the cache holds, of this layer and another: every buffer is recycled.
    other = Drone(frequency_hz=61.0, volume=1.0)
    for k in range(synth._TILES.size + 3):
        synth.layer_block(other if k % 2 else layer, (17 + k) * TILE, (17 + k) * TILE + 10)
    np.testing.assert_array_equal(synth.layer_block(layer, 5 * TILE - 100, 5 * TILE + 100), first)


def test_guide_tone_is_random_access():
    phases = (("inhale", 40_001), ("hold", 13_333), ("exhale", 50_003), ("rest", 9_999))
    total = sum(n for _, n in phases) * 3
    whole = synth.guide_tone(phases, 3, 0, total)
    for start in (0, 1, 40_000, 113_336):
        pieces = _in_blocks(lambda a, b: synth.guide_tone(phases, 3, a, b), start, total)
        np.testing.assert_array_equal(pieces, whole[start:])


def test_sound_block_loop_is_random_access():
    rng = np.random.default_rng(1)
    data = rng.uniform(-0.5, 0.5, (30_011, 2)).astype(np.float32)
    for loop in (True, False):
        whole = synth.sound_block(data, loop, 0, 200_000)
        for start in (0, 29_000, 55_555):
            pieces = _in_blocks(
                lambda a, b, lp=loop: synth.sound_block(data, lp, a, b), start, 200_000
            )
            np.testing.assert_array_equal(pieces, whole[start:])


def test_envelopes_are_random_access():
    intervals = ((10_000, 30_000), (31_000, 50_000), (90_000, 91_000), (150_000, 160_000))
    total = 200_000
    fade = synth.fade_gain(0, total, total, 44_100, 60_000)
    duck = synth.duck_gain(0, total, intervals, 0.6, 5_000)
    for start in (0, 9_999, 77_777):
        np.testing.assert_array_equal(
            _in_blocks(lambda a, b: synth.fade_gain(a, b, total, 44_100, 60_000), start, total),
            fade[start:],
        )
        np.testing.assert_array_equal(
            _in_blocks(lambda a, b: synth.duck_gain(a, b, intervals, 0.6, 5_000), start, total),
            duck[start:],
        )


# ---- noise -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("color", "slope", "tolerance"),
    [("white", 0.0, 0.5), ("pink", -3.0, 0.5), ("brown", -6.0, 0.7)],
)
def test_noise_colour_slope(color, slope, tolerance):
    x = synth.layer_block(Noise(color=color, volume=1.0), 0, 20 * SR)
    for channel in (0, 1):
        measured = _slope_db_per_octave(x[:, channel].astype(np.float64))
        assert abs(measured - slope) < tolerance, (color, channel, measured)


@pytest.mark.parametrize("color", ["white", "pink", "brown"])
def test_noise_has_no_dc_and_reaches_the_band_edges(color):
    x = synth.layer_block(Noise(color=color, volume=1.0), 0, 20 * SR)[:, 0].astype(np.float64)
    f, p = signal.welch(x, fs=SR, nperseg=65536)
    assert abs(x.mean()) < 0.01
    # Below 5 Hz far under the 20-40 Hz band (the highpass), and energy still there at 15 kHz
    # relative to what the colour predicts.
    lowest = p[(f > 0) & (f < 5)].mean()
    low_band = p[(f >= 20) & (f <= 40)].mean()
    assert lowest < low_band / 30
    exponent = {"white": 0, "pink": 1, "brown": 2}[color]
    mid = p[(f >= 900) & (f <= 1100)].mean()
    high = p[(f >= 14000) & (f <= 16000)].mean()
    expected_high_db = -10 * exponent * math.log10(15000 / 1000)
    assert abs(10 * math.log10(high / mid) - expected_high_db) < 1.5


def test_noise_is_seeded_and_stereo_decorrelated():
    layer = Noise(color="pink", volume=0.5)
    a = synth.layer_block(layer, 0, 3 * SR)
    synth._installed_loops.clear()
    b = synth.layer_block(layer, 0, 3 * SR)
    assert a.tobytes() == b.tobytes()
    for color in ("white", "pink", "brown"):
        x = synth.layer_block(Noise(color=color, volume=1.0), 0, 10 * SR).astype(np.float64)
        r = np.corrcoef(x[:, 0], x[:, 1])[0, 1]
        assert abs(r) < 0.05, (color, r)
    # Layers of different colours come from different streams: white vs the white-ish top of pink.
    white = synth.layer_block(Noise(color="white", volume=1.0), 0, 2 * SR)[:, 0].astype(np.float64)
    pink = synth.layer_block(Noise(color="pink", volume=1.0), 0, 2 * SR)[:, 0].astype(np.float64)
    assert abs(np.corrcoef(white, pink)[0, 1]) < 0.05


@pytest.mark.parametrize("color", ["white", "pink", "brown"])
def test_noise_loop_wraps_without_a_seam(color):
    layer = Noise(color=color, volume=1.0)
    # Random access is modulo the period: the same samples one and seven periods later.
    first = synth.layer_block(layer, 0, 5000)
    np.testing.assert_array_equal(synth.layer_block(layer, LOOP, LOOP + 5000), first)
    np.testing.assert_array_equal(synth.layer_block(layer, 7 * LOOP, 7 * LOOP + 5000), first)
    x = synth.layer_block(layer, LOOP - SR, LOOP + SR).astype(np.float64)
    # The step from the loop's last sample to its first is one the noise takes anyway. A spliced
    # loop would jump: brown noise moves ~0.08 RMS per sample, a splice ~1.4 RMS.
    steps = np.abs(np.diff(x, axis=0))
    step_rms = np.sqrt((steps**2).mean(axis=0))
    assert (steps[SR - 1] < 3 * step_rms).all(), (steps[SR - 1], step_rms)
    # No change of level or colour across the wrap: 0.25 s on either side against the whole loop.
    rms = math.sqrt(np.mean(x**2))
    for window in (x[SR - SR // 4 : SR], x[SR : SR + SR // 4]):
        assert abs(20 * math.log10(np.sqrt(np.mean(window**2)) / rms)) < 1.0
    assert rms == pytest.approx(synth.LAYER_RMS, rel=0.1)


@pytest.mark.parametrize("color", ["white", "pink", "brown"])
def test_noise_period_is_long_and_does_not_repeat_inside(color):
    assert LOOP >= 45 * SR
    x = synth.layer_block(Noise(color=color, volume=1.0), 0, LOOP)[:, 0].astype(np.float64)
    # Circular autocorrelation over the period: beyond 0.1 s no lag looks like the signal again.
    spectrum = np.fft.rfft(x)
    r = np.fft.irfft(np.abs(spectrum) ** 2, LOOP) / np.dot(x, x)
    assert np.abs(r[SR // 10 : LOOP - SR // 10]).max() < 0.1
    # Level: exact over the period.
    assert math.sqrt(np.mean(x**2)) == pytest.approx(synth.LAYER_RMS, rel=1e-4)


# ---- tones -----------------------------------------------------------------------------------


@pytest.mark.parametrize("start", [0, 4 * 3600 * SR])
def test_binaural_frequencies_are_exact(start):
    x = synth.layer_block(
        Binaural(carrier_hz=203.7, beat_hz=4.3, volume=1.0), start, start + 10 * SR
    )
    assert abs(_measured_frequency(x[:, 0], 203.7) - 203.7) < 0.01
    assert abs(_measured_frequency(x[:, 1], 208.0) - 208.0) < 0.01
    # Pure sines: nothing but the tone (residual after a sine fit is tiny).
    f, p = signal.welch(x[:, 0], fs=SR, nperseg=8192, window="blackmanharris", detrend=False)
    assert p[np.abs(f - 203.7) > 30].sum() < 1e-7 * p.sum()


@pytest.mark.parametrize("frequency_hz", [55.0, 97.3, 432.0, 1800.0])
def test_drone_fundamental_is_exact_in_both_channels(frequency_hz):
    start = 3 * 3600 * SR + 12_345  # hours in: no drift
    x = synth.layer_block(Drone(frequency_hz=frequency_hz, volume=1.0), start, start + 10 * SR)
    for channel in (0, 1):
        measured = _measured_frequency(x[:, channel].astype(np.float64), frequency_hz)
        assert abs(measured - frequency_hz) < 0.01, (channel, measured)


def test_drone_is_soft_slowly_moving_and_wide():
    x = synth.layer_block(Drone(frequency_hz=110.0, volume=1.0), 0, 20 * SR).astype(np.float64)
    f, p = signal.welch(x[:, 0], fs=SR, nperseg=16384)
    fundamental = p[np.abs(f - 110) < 5].sum()
    assert p[f > 1000].sum() < 1e-3 * fundamental  # only a few quiet low harmonics
    # Slow movement: the RMS of 1 s windows varies, but smoothly (< 0.2 Hz LFO).
    rms = np.sqrt((x[:, 0].reshape(20, SR) ** 2).mean(axis=1))
    assert rms.max() / rms.min() > 1.1
    assert np.abs(np.diff(rms)).max() < 0.06
    # Width: the two channels differ.
    assert 0.3 < np.corrcoef(x[:, 0], x[:, 1])[0, 1] < 0.95  # wide, yet sums well to mono


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: type(layer).__name__)
def test_layer_level_is_layer_rms_times_volume(layer):
    x = synth.layer_block(layer, 0, 20 * SR).astype(np.float64)  # a whole drone LFO period
    rms = np.sqrt((x**2).mean(axis=0))
    np.testing.assert_allclose(rms, synth.LAYER_RMS * layer.volume, rtol=0.03)


def test_the_usual_background_sits_well_under_the_voice():
    # The voice is ~0.1 RMS at volume 1 (docs/sound.md); a drone at 0.06 with pink noise at 0.03
    # is "soft tones underneath": 15-20 dB under it.
    mix = synth.layer_block(Drone(frequency_hz=110.0, volume=0.06), 0, 20 * SR)
    mix += synth.layer_block(Noise(color="pink", volume=0.03), 0, 20 * SR)
    rms = math.sqrt(np.mean(mix.astype(np.float64) ** 2))
    assert 15 < 20 * math.log10(0.1 / rms) < 20


def test_unknown_layer_and_colour_raise():
    with pytest.raises(ValueError, match="color"):
        synth.layer_block(Noise(color="purple", volume=1.0), 0, 10)
    with pytest.raises(TypeError):
        synth.layer_block(object(), 0, 10)


# ---- guide tone ------------------------------------------------------------------------------


def _upward_crossings(x: np.ndarray) -> np.ndarray:
    """Sub-sample times (in samples) of the upward zero crossings."""
    i = np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0))
    return i + x[i] / (x[i] - x[i + 1])


def _crossing_frequencies(x: np.ndarray):
    c = _upward_crossings(x)
    return (c[:-1] + c[1:]) / 2, SR / np.diff(c)


def _expected_hz(name: str, fraction: float) -> float:
    lo, hi = synth.GUIDE_TONE_LOW_HZ, synth.GUIDE_TONE_HIGH_HZ
    return {
        "inhale": lo * (hi / lo) ** fraction,
        "hold": hi,
        "exhale": hi * (lo / hi) ** fraction,
    }[name]


PHASES = (("inhale", 1 * SR), ("hold", SR // 2), ("exhale", 3 * SR // 2), ("rest", SR // 2))


def test_guide_tone_pitch_follows_the_breath():
    cycles = 2
    x = synth.guide_tone(PHASES, cycles, 0, 7 * SR).astype(np.float64)
    t, hz = _crossing_frequencies(x)
    pos = 0
    for _ in range(cycles):
        for name, n in PHASES:
            inside = (t > pos + 0.03 * SR) & (t < pos + n - 0.03 * SR)
            if name == "rest":
                silent = x[pos + synth.GUIDE_TONE_RAMP_SAMPLES : pos + n]
                assert np.abs(silent).max() < 1e-6
            else:
                expected = [_expected_hz(name, (ti - pos) / n) for ti in t[inside]]
                np.testing.assert_allclose(hz[inside], expected, atol=0.3)
                steps = np.diff(hz[inside])
                if name == "inhale":
                    assert (steps > 0).all()
                elif name == "exhale":
                    assert (steps < 0).all()
                else:
                    assert np.ptp(hz[inside]) < 0.2
            pos += n
    assert np.abs(x).max() <= synth.GUIDE_TONE_PEAK + 1e-6
    assert np.abs(x).max() > 0.95 * synth.GUIDE_TONE_PEAK


def _assert_no_clicks(x: np.ndarray):
    # A smooth 300 Hz tone at peak 0.25 moves at most ~0.015 per sample and its slope changes by
    # at most ~0.0008 per sample; any click or phase jump is far larger.
    assert np.abs(np.diff(x)).max() < 0.02
    assert np.abs(np.diff(x, 2)).max() < 0.0015


@pytest.mark.parametrize(
    "phases",
    [
        PHASES,
        (("inhale", 4 * SR), ("hold", 7 * SR), ("exhale", 8 * SR)),  # 4-7-8, no rest
        (("inhale", 1_001), ("exhale", 999)),  # short phases, no rest
        (("inhale", SR), ("exhale", SR), ("rest", 300)),  # rest shorter than the ramp
    ],
)
def test_guide_tone_has_no_clicks(phases):
    cycles = 3
    total = sum(n for _, n in phases) * cycles
    x = _in_blocks(lambda a, b: synth.guide_tone(phases, cycles, a, b), 0, total)
    x = x.astype(np.float64)
    _assert_no_clicks(np.concatenate([[0.0, 0.0], x, [0.0, 0.0]]))  # also into the silence around
    assert x[0] == 0.0 and abs(x[-1]) < 1e-4


def test_guide_tone_without_rest_is_continuous_between_cycles():
    phases = (("inhale", SR), ("exhale", SR))
    x = synth.guide_tone(phases, 2, 0, 4 * SR).astype(np.float64)
    t, hz = _crossing_frequencies(x)
    before = (t > 2 * SR - 0.05 * SR) & (t < 2 * SR)
    after = (t > 2 * SR) & (t < 2 * SR + 0.05 * SR)
    expected_before = [_expected_hz("exhale", (ti - SR) / SR) for ti in t[before]]
    expected_after = [_expected_hz("inhale", (ti - 2 * SR) / SR) for ti in t[after]]
    np.testing.assert_allclose(hz[before], expected_before, atol=0.3)
    np.testing.assert_allclose(hz[after], expected_after, atol=0.3)
    assert abs(hz[before][-1] - synth.GUIDE_TONE_LOW_HZ) < 1.0
    assert abs(hz[after][0] - synth.GUIDE_TONE_LOW_HZ) < 1.0
    # The amplitude stays up across the cycle boundary (no ramp there).
    around = x[2 * SR - 2000 : 2 * SR + 2000]
    assert np.abs(around).max() > 0.9 * synth.GUIDE_TONE_PEAK
    assert np.abs(x[2 * SR - 400 : 2 * SR + 400]).max() > 0.9 * synth.GUIDE_TONE_PEAK


def test_guide_tone_outside_the_step_is_silent():
    total = sum(n for _, n in PHASES)
    x = synth.guide_tone(PHASES, 1, total - 10, total + 100)
    assert len(x) == 110 and x.dtype == np.float32
    assert (x[10:] == 0).all()


# ---- chimes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bell", "bowl", "soft"])
@pytest.mark.parametrize("volume", [1.0, 0.5, 0.137])
def test_chime_peak_length_and_edges(name, volume):
    x = synth.chime(name, volume)
    assert x.dtype == np.float32 and x.ndim == 1
    assert np.abs(x).max() == np.float32(volume)
    assert len(x) == synth.chime_samples(name) <= 6 * SR
    assert x[0] == 0.0 and x[-1] == 0.0
    assert np.abs(x[:10]).max() < 0.01 * volume  # soft strike: no click
    assert np.abs(x[-20:]).max() < 0.01 * volume
    assert np.abs(np.diff(x[-2205:])).max() < 0.01 * volume


@pytest.mark.parametrize("name", ["bell", "bowl", "soft"])
def test_chime_decays_and_rings_out(name):
    x = synth.chime(name).astype(np.float64)
    win = SR // 2
    rms = np.sqrt((x[: len(x) // win * win].reshape(-1, win) ** 2).mean(axis=1))
    peak_window = int(np.argmax(rms))
    assert peak_window == 0
    # Decays: every window quieter than the one a second before (bowls beat, so not sample-wise).
    assert (rms[2:] < rms[:-2]).all()
    assert rms[-1] < 0.1 * rms[0]
    if len(x) < 6 * SR:  # ended because it rang out: 60 dB down before the final fade
        before_fade = x[-synth.CHIME_FADE_SAMPLES - 2000 : -synth.CHIME_FADE_SAMPLES]
        assert np.abs(before_fade).max() < 10 ** (-55 / 20)
    else:  # cut at 6 s: at least 40 dB down
        assert np.abs(x[-synth.CHIME_FADE_SAMPLES - 2000 :]).max() < 10 ** (-40 / 20)


def test_chime_character():
    lengths = {name: synth.chime_samples(name) for name in ("bell", "bowl", "soft")}
    assert lengths["bowl"] > lengths["bell"] > lengths["soft"]
    assert lengths["soft"] < 2 * SR
    pitches = {}
    for name in lengths:
        x = synth.chime(name).astype(np.float64)
        f, p = signal.welch(x, fs=SR, nperseg=16384)
        assert p[f > 2000].sum() < 1e-4 * p.sum(), name  # calm: no harsh high partials
        pitches[name] = f[np.argmax(p)]
    assert pitches["bowl"] < pitches["bell"] < pitches["soft"]


@pytest.mark.parametrize("name", ["bell", "bowl", "soft"])
def test_the_timeline_places_each_chime_at_the_length_synth_makes_it(name, monkeypatch):
    """`chimes.samples` finds the peak in plain Python (the timeline needs no numpy); the sound,
    made here afresh with numpy, is exactly that long."""
    chimes.samples.cache_clear()
    synth._unit_chime.cache_clear()
    synth.chime.cache_clear()
    # Not the chime another test installed from the tables cache: made here afresh.
    monkeypatch.setattr(synth, "_installed_chimes", {})
    try:
        assert chimes.samples(name) == len(synth.chime(name, 0.7)) == synth.chime_samples(name)
        with pytest.raises(ValueError, match="chime"):
            chimes.samples("gong")
    finally:  # later tests get the installed chimes again
        synth._unit_chime.cache_clear()
        synth.chime.cache_clear()


def test_chime_is_deterministic_and_cached():
    a = synth.chime("bell", 0.5)
    synth._unit_chime.cache_clear()
    synth.chime.cache_clear()
    assert synth.chime("bell", 0.5).tobytes() == a.tobytes()
    assert synth.chime("bell", 0.5) is synth.chime("bell", 0.5)
    with pytest.raises(ValueError, match="chime"):
        synth.chime("gong")


# ---- sound files -----------------------------------------------------------------------------


def test_sound_block_plays_once_then_silence():
    data = np.linspace(-1, 1, 2000, dtype=np.float32)[:, None].repeat(2, axis=1)
    x = synth.sound_block(data, False, 1500, 2600)
    np.testing.assert_array_equal(x[:500], data[1500:])
    assert (x[500:] == 0).all()


def test_sound_block_loop_seam_is_smooth_and_periodic():
    m = 3 * SR + 1234
    n = np.arange(m)
    tone = (0.5 * np.sin(2 * np.pi * 221.7 * n / SR)).astype(np.float32)  # not loop-aligned
    data = np.stack([tone, tone], axis=1)
    xf = synth.LOOP_CROSSFADE_SAMPLES
    period = m - xf
    x = synth.sound_block(data, True, 0, 3 * period + 100).astype(np.float64)
    np.testing.assert_array_equal(x[: m - xf], data[: m - xf])  # first pass untouched
    np.testing.assert_array_equal(x[period + xf : 2 * period], x[2 * period + xf : 3 * period])
    # Constant-power crossfade: a tonal loop may swell by up to sqrt(2) for the 100 ms, no more.
    step_limit = 0.5 * 2 * np.pi * 221.7 / SR * math.sqrt(2) * 1.01
    assert np.abs(np.diff(x[:, 0])).max() < step_limit  # the seam does not click
    plain = np.tile(tone, 2)
    assert np.abs(np.diff(plain)).max() > 10 * step_limit  # while plain tiling would


# ---- envelopes -------------------------------------------------------------------------------


def test_fade_gain_reaches_exact_values_at_documented_samples():
    total, fin, fout = 100_000, 30_000, 20_000
    g = synth.fade_gain(0, total, total, fin, fout).astype(np.float64)
    assert g[0] == 0.0 and g[fin] == 1.0 and g[fin - 100] < 1.0
    assert g[total - 1] == 0.0 and g[total - 1 - fout] == 1.0 and g[total - fout + 100] < 1.0
    assert (g[fin : total - 1 - fout + 1] == 1.0).all()
    assert (np.diff(g[: fin + 1]) >= 0).all() and (np.diff(g[total - 1 - fout :]) <= 0).all()
    assert abs(g[fin // 2] - 0.5) < 1e-4
    outside = synth.fade_gain(total - 5, total + 5, total, fin, fout)
    assert (outside[5:] == 0).all()


def test_envelopes_at_full_level_are_shared_read_only_ones():
    total, fin, fout = 2_000_000, 44_100, 60_000
    g = synth.fade_gain(100_000, 165_536, total, fin, fout)
    assert synth.is_unity(g) and len(g) == 65_536 and (g == 1.0).all()
    assert not g.flags.writeable
    # The last full-level sample is total - 1 - fout: a block ending there is still all ones,
    # one more sample and the fade has begun (computed, equal to the formula there).
    last_full = total - 1 - fout
    assert synth.is_unity(synth.fade_gain(last_full - 1000, last_full + 1, total, fin, fout))
    edge = synth.fade_gain(last_full - 1000, last_full + 2000, total, fin, fout)
    assert not synth.is_unity(edge) and edge[-1] < 1.0
    for k in (0, 1, 2, 1999):
        expected = math.sin(0.5 * math.pi * (fout - k) / fout) ** 2
        assert edge[1000 + k] == np.float32(expected)
    assert not synth.is_unity(synth.fade_gain(fin - 1, fin + 10, total, fin, fout))
    assert (synth.fade_gain(total, total + 10, total, fin, fout) == 0).all()
    # Ducking: a block before the ramp down or after the ramp up is ones.
    r = 11_025
    intervals = ((200_000, 300_000),)
    d = synth.duck_gain(0, 200_000 - r, intervals, 0.5, r)
    assert synth.is_unity(d) and (d == 1.0).all()
    d = synth.duck_gain(0, 200_000 - r + 100, intervals, 0.5, r)
    assert not synth.is_unity(d) and d[-100] == 1.0 and d[-1] < 1.0 and not d.flags.writeable
    assert synth.is_unity(synth.duck_gain(300_000 + r, 400_000, intervals, 0.5, r))
    assert not synth.is_unity(np.ones(10, dtype=np.float32))


def test_duck_gain_ramps_finish_at_the_interval_edges():
    r, depth = 11_025, 0.5
    g = synth.duck_gain(0, 100_000, ((40_000, 60_000),), depth, r).astype(np.float64)
    assert (g[: 40_000 - r + 1] == 1.0).all()
    assert g[40_000 - r + 100] < 1.0
    assert (g[40_000:60_001] == np.float32(1 - depth)).all()
    assert g[60_100] > 1 - depth
    assert (g[60_000 + r :] == 1.0).all()
    assert (np.diff(g[40_000 - r : 40_001]) <= 0).all()
    assert (np.diff(g[60_000 : 60_000 + r + 1]) >= 0).all()
    assert abs(g[40_000 - r // 2] - (1 - depth / 2)) < 1e-3


def test_duck_gain_merges_near_intervals_without_bumps():
    r, depth = 1_000, 0.8
    intervals = ((10_000, 20_000), (21_500, 30_000), (40_000, 50_000), (52_000, 60_000))
    g = synth.duck_gain(0, 70_000, intervals, depth, r).astype(np.float64)
    low = np.float32(1 - depth)
    assert (g[10_000:30_000] == low).all()  # gap 1500 < 2 * ramp: merged
    assert g[51_000] == 1.0  # gap 2000 == 2 * ramp: the gain just touches 1 between them
    assert (g[50_000:60_000] >= low).all()
    # Overlapping and nested intervals merge too.
    g2 = synth.duck_gain(
        0, 70_000, ((10_000, 30_000), (12_000, 15_000), (20_000, 40_000)), depth, r
    )
    assert (g2[10_000:40_000] == low).all() and g2[40_000 + r] == 1.0


def _naive_duck(start, stop, intervals, depth, r):
    n = np.arange(start, stop, dtype=np.float64)
    merged = []
    for s, e in intervals:
        if merged and s - merged[-1][1] < 2 * r:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    d = np.zeros(len(n))
    for s, e in merged:
        if s - r >= stop or e + r <= start:
            continue
        d = np.maximum(d, np.where((n >= s) & (n < e), 1.0, 0.0))
        down = (n >= s - r) & (n < s)
        d[down] = np.sin(0.5 * np.pi * (n[down] - (s - r)) / r) ** 2
        up = (n >= e) & (n < e + r)
        d[up] = np.cos(0.5 * np.pi * (n[up] - e) / r) ** 2
    return (1 - depth * d).astype(np.float32)


def test_duck_gain_with_thousands_of_intervals_matches_a_direct_computation():
    rng = np.random.default_rng(7)
    gaps = rng.integers(1_000, 60_000, 3000)
    lengths = rng.integers(2_000, 100_000, 3000)
    starts = np.cumsum(gaps + np.concatenate([[0], lengths[:-1]]))
    intervals = tuple(zip(starts.tolist(), (starts + lengths).tolist(), strict=True))
    r = 11_025
    for start in (0, int(starts[1500]) - 3000, int(starts[-1]) - 50_000):
        stop = start + 300_000
        np.testing.assert_allclose(
            synth.duck_gain(start, stop, intervals, 0.5, r),
            _naive_duck(start, stop, intervals, 0.5, r),
            atol=1e-6,
        )


# ---- properties ------------------------------------------------------------------------------

_phase_lengths = st.integers(min_value=1, max_value=30_000)


@settings(max_examples=25, deadline=None)
@given(
    inhale=_phase_lengths,
    hold=st.one_of(st.just(0), _phase_lengths),
    exhale=_phase_lengths,
    rest=st.one_of(st.just(0), _phase_lengths),
    cycles=st.integers(min_value=1, max_value=3),
    cuts=st.lists(st.integers(min_value=1, max_value=50_000), min_size=1, max_size=6).map(
        lambda sizes: [*sizes, 4099]
    ),
    start_fraction=st.floats(min_value=0.0, max_value=1.0),
)
def test_guide_tone_any_pattern_is_random_access_and_click_free(
    inhale, hold, exhale, rest, cycles, cuts, start_fraction
):
    phases = tuple(
        (name, n)
        for name, n in (("inhale", inhale), ("hold", hold), ("exhale", exhale), ("rest", rest))
        if n > 0
    )
    total = sum(n for _, n in phases) * cycles
    whole = synth.guide_tone(phases, cycles, 0, total)
    start = int(start_fraction * total)
    pieces = _in_blocks(lambda a, b: synth.guide_tone(phases, cycles, a, b), start, total, cuts)
    np.testing.assert_array_equal(pieces, whole[start:])
    # Ramps shorten to fit phases shorter than the 25 ms ramp (a 1-sample rest cannot fade).
    if min(inhale, exhale, rest or synth.GUIDE_TONE_RAMP_SAMPLES) >= synth.GUIDE_TONE_RAMP_SAMPLES:
        _assert_no_clicks(np.concatenate([[0.0, 0.0], whole.astype(np.float64), [0.0, 0.0]]))


@settings(max_examples=25, deadline=None)
@given(
    spans=st.lists(
        st.tuples(st.integers(0, 20_000), st.integers(1, 20_000)), min_size=1, max_size=30
    ),
    ramp=st.integers(0, 5_000),
    depth=st.floats(0.0, 1.0),
    start=st.integers(0, 200_000),
)
def test_duck_gain_matches_the_definition_for_any_intervals(spans, ramp, depth, start):
    intervals, pos = [], 0
    for gap, length in spans:  # sorted by start; may overlap (negative gaps via short gaps)
        pos += gap
        intervals.append((pos, pos + length))
    intervals = tuple(intervals)
    stop = start + 60_000
    got = synth.duck_gain(start, stop, intervals, depth, ramp)
    if ramp == 0:
        inside = np.zeros(stop - start, dtype=bool)
        n = np.arange(start, stop)
        for s, e in intervals:
            inside |= (n >= s) & (n < e)
        np.testing.assert_allclose(got, np.where(inside, 1 - depth, 1.0), atol=1e-6)
    else:
        np.testing.assert_allclose(got, _naive_duck(start, stop, intervals, depth, ramp), atol=1e-6)
    assert got.min() >= np.float32(1 - depth) - 1e-6 and got.max() <= 1.0


def test_duck_gain_is_its_formula_to_the_bit_in_any_block():
    # The ramps are made once and copied: the values stay the formula's, cast once to float32.
    depth, r = 0.55, 3_000
    intervals = ((10_000, 20_000), (40_000, 41_000))
    n = np.arange(60_000, dtype=np.float64)
    d = np.zeros_like(n)
    for s, e in intervals:
        down = (n >= s - r) & (n < s)
        d[down] = np.sin(0.5 * np.pi * (n[down] - (s - r)) / r) ** 2
        d[(n >= s) & (n < e)] = 1.0
        up = (n >= e) & (n < e + r)
        d[up] = np.cos(0.5 * np.pi * (n[up] - e) / r) ** 2
    expected = (1.0 - depth * d).astype(np.float32)
    for start, stop in ((0, 60_000), (8_123, 9_000), (18_500, 43_001)):
        got = synth.duck_gain(start, stop, intervals, depth, r)
        assert np.array_equal(got, expected[start:stop]), (start, stop)
