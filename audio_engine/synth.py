"""The synth stage: every sound the engine makes itself, as pure numpy.

Entry points (all float32, all at `model.SAMPLE_RATE`):

- `chime(name, volume) -> (n,)` and `chime_samples(name)`: a struck bell, `bell`, `bowl` or `soft`.
- `guide_tone(phases, cycles, start, stop) -> (n,)`: the breathing guide tone of one `breathe` step.
- `layer_block(layer, start, stop) -> (n, 2)`: a `Drone`, `Binaural` or `Noise` background layer.
- `sound_block(data, loop, start, stop) -> (n, 2)`: a decoded sound file, looped or not.
- `fade_gain(...)`, `duck_gain(...) -> (n,)`: the fade and ducking envelopes the renderer applies.

Every generator is random access: the samples of the absolute range [start, stop) are the same
however the range is cut into blocks, because each sample is computed from its own index
(oscillator phases from the absolute sample index in float64, noise from seeded chunks filtered
by an exact FIR convolution). Levels: every background layer at volume v has an RMS of 0.5 * v
per channel (see `docs/sound.md`). No files, no devices: numpy and scipy.signal only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import signal

from audio_engine.model import SAMPLE_RATE, Binaural, Drone, Noise

LAYER_RMS = 0.5  # RMS per channel of a background layer at volume 1.0
GUIDE_TONE_PEAK = 0.25
GUIDE_TONE_LOW_HZ = 196.0  # G3: where the inhale starts and the exhale ends
GUIDE_TONE_HIGH_HZ = 293.66  # D4: the top of the inhale, held through the hold
GUIDE_TONE_RAMP_SAMPLES = round(0.025 * SAMPLE_RATE)
_GUIDE_TONE_H2 = 0.08  # 2nd harmonic relative to the fundamental: a touch of warmth

CHIME_MAX_SAMPLES = 6 * SAMPLE_RATE
CHIME_FADE_SAMPLES = round(0.05 * SAMPLE_RATE)
_CHIME_FLOOR = 1e-3  # -60 dB of peak: the chime has rung out

LOOP_CROSSFADE_SAMPLES = round(0.1 * SAMPLE_RATE)

_NOISE_SEED = 0x5EED_2E1A
_NOISE_CHUNK_SAMPLES = 65536
_NOISE_KERNEL_SAMPLES = 16384
_NOISE_EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # power spectrum ~ 1 / f**exponent
_NOISE_LOW_HZ = 20.0
_NOISE_HIGH_HZ = 20000.0


# ---- chimes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Partial:
    ratio: float  # frequency / the chime's fundamental
    amplitude: float
    t60_s: float  # time to decay by 60 dB
    beat_hz: float = 0.0  # a slightly detuned twin (real bells and bowls are not symmetric)


@dataclass(frozen=True)
class _Bell:
    fundamental_hz: float
    attack_s: float
    partials: tuple[_Partial, ...]


# Partial ratios: `bell` a small tuned church/temple bell (hum, prime, minor-third tierce, quint,
# nominal and a quiet upper cluster); `bowl` a Himalayan singing bowl (1 : 2.76 : 5.2 : 8.3, with
# the beating doublets bowls are known for); `soft` a felt-mallet bar (1 : 2 : 3.93), short.
# High partials are quiet and die fast so nothing is harsh.
_CHIMES: dict[str, _Bell] = {
    "bell": _Bell(
        fundamental_hz=440.0,
        attack_s=0.004,
        partials=(
            _Partial(0.5, 0.30, 5.5, 0.4),
            _Partial(1.0, 1.00, 4.5, 0.7),
            _Partial(1.19, 0.40, 3.5),
            _Partial(1.5, 0.16, 2.5),
            _Partial(2.0, 0.40, 3.0, 1.1),
            _Partial(2.51, 0.10, 1.6),
            _Partial(2.66, 0.08, 1.4),
            _Partial(3.01, 0.05, 1.0),
        ),
    ),
    "bowl": _Bell(
        fundamental_hz=196.0,
        attack_s=0.012,
        partials=(
            _Partial(1.0, 1.00, 7.5, 0.9),
            _Partial(2.76, 0.45, 5.5, 1.6),
            _Partial(5.2, 0.14, 3.0, 2.3),
            _Partial(8.3, 0.04, 1.6),
        ),
    ),
    "soft": _Bell(
        fundamental_hz=659.26,
        attack_s=0.006,
        partials=(
            _Partial(1.0, 1.00, 1.3),
            _Partial(2.0, 0.12, 0.8),
            _Partial(3.93, 0.05, 0.35),
        ),
    ),
}


@functools.lru_cache(maxsize=len(_CHIMES))
def _unit_chime(name: str) -> np.ndarray:
    try:
        spec = _CHIMES[name]
    except KeyError:
        raise ValueError(f"unknown chime {name!r}; expected one of {sorted(_CHIMES)}") from None
    t_s = np.arange(CHIME_MAX_SAMPLES, dtype=np.float64) / SAMPLE_RATE
    x = np.zeros_like(t_s)
    bound = np.zeros_like(t_s)  # upper bound of |x|: the sum of the partials' envelopes
    for p in spec.partials:
        env = p.amplitude * np.exp(-math.log(1000.0) * t_s / p.t60_s)
        f_hz = spec.fundamental_hz * p.ratio
        if p.beat_hz:
            # Two twins 0.8 : 0.2 instead of one partial; same envelope bound.
            tone = 0.8 * np.sin(2 * np.pi * f_hz * t_s)
            tone += 0.2 * np.sin(2 * np.pi * (f_hz + p.beat_hz) * t_s)
        else:
            tone = np.sin(2 * np.pi * f_hz * t_s)
        x += env * tone
        bound += env
    attack = round(spec.attack_s * SAMPLE_RATE)
    x[:attack] *= np.sin(0.5 * np.pi * np.arange(attack) / attack) ** 2
    peak = float(np.max(np.abs(x)))
    below = np.flatnonzero(bound < _CHIME_FLOOR * peak)
    n = min(int(below[0]) + 1, CHIME_MAX_SAMPLES) if below.size else CHIME_MAX_SAMPLES
    x = x[:n]
    fade = min(CHIME_FADE_SAMPLES, n)
    # cos^2 from 1 to exactly 0 on the last sample.
    x[n - fade :] *= np.cos(0.5 * np.pi * np.arange(1, fade + 1) / fade) ** 2
    x[-1] = 0.0
    x /= np.max(np.abs(x))
    out = x.astype(np.float32)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=32)
def chime(name: str, volume: float = 1.0) -> np.ndarray:
    """A synthesized struck bell, mono, peak exactly `volume`.

    Parameters
    ----------
    name : ``"bell"``, ``"bowl"`` or ``"soft"``.
    volume : the peak sample value (0-1).

    Returns
    -------
    np.ndarray
        float32 (n,), read-only, ``n == chime_samples(name)``: until the partials have decayed
        60 dB below the peak (at most 6 s); the last 50 ms fade to exactly 0.

    Examples
    --------
    >>> x = chime("bowl", 0.5)
    >>> float(abs(x).max())
    0.5
    """
    unit = _unit_chime(name)
    out = (unit * np.float32(volume)).astype(np.float32)
    out.flags.writeable = False
    return out


def chime_samples(name: str) -> int:
    """The length of `chime(name)` in samples."""
    return len(_unit_chime(name))


# ---- breathing guide tone -----------------------------------------------------------------------

_PHASE_PITCH = {  # (start Hz, end Hz, audible)
    "inhale": (GUIDE_TONE_LOW_HZ, GUIDE_TONE_HIGH_HZ, True),
    "hold": (GUIDE_TONE_HIGH_HZ, GUIDE_TONE_HIGH_HZ, True),
    "exhale": (GUIDE_TONE_HIGH_HZ, GUIDE_TONE_LOW_HZ, True),
    "rest": (GUIDE_TONE_LOW_HZ, GUIDE_TONE_LOW_HZ, False),
}


def _glide_cycles(f0_hz: float, f1_hz: float, length_samples: int, t_samples: np.ndarray):
    """Oscillator cycles after `t_samples` of a glide linear in log-frequency from f0 to f1."""
    if f0_hz == f1_hz or length_samples <= 0:
        return f0_hz * t_samples / SAMPLE_RATE
    log_ratio = math.log(f1_hz / f0_hz)
    scale = f0_hz * length_samples / (SAMPLE_RATE * log_ratio)
    return scale * np.expm1(log_ratio * t_samples / length_samples)


@functools.lru_cache(maxsize=64)
def _guide_plan(phases: tuple[tuple[str, int], ...]):
    """Per phase of one cycle: start sample, start cycles, pitch path, audibility."""
    starts, start_cycles, rows = [], [], []
    position, cycles = 0, 0.0
    for name, length in phases:
        f0, f1, audible = _PHASE_PITCH[name]
        starts.append(position)
        start_cycles.append(cycles)
        rows.append((f0, f1, int(length), audible))
        cycles += float(_glide_cycles(f0, f1, int(length), np.float64(length)))
        position += int(length)
    return np.array(starts, dtype=np.int64), np.array(start_cycles), tuple(rows), position, cycles


def guide_tone(phases: Sequence[tuple[str, int]], cycles: int, start: int, stop: int) -> np.ndarray:
    """The breathing guide tone of one `breathe` step, samples [start, stop) of the step.

    Pitch glides up (196 -> 293.66 Hz, linear in log-frequency) through each inhale, stays at the
    top through the hold, glides down through the exhale and is silent in the rest. The oscillator
    phase is the closed-form integral of that pitch path, so it is continuous across phases and
    exact from any start. Amplitude: a 25 ms raised-cosine ramp in where the tone starts (the
    step's first sample, each inhale after a rest), a 25 ms ramp out at the start of each rest and
    over the last 25 ms of the step if it does not end in a rest; constant otherwise.

    Parameters
    ----------
    phases : one cycle's non-zero phases as (name, length_samples), names from
        inhale/hold/exhale/rest in that order.
    cycles : how many times the pattern repeats.
    start, stop : the sample range, counted from the step's first sample. Samples outside the
        step are silent.

    Returns
    -------
    np.ndarray
        float32 (stop - start,), peak at most `GUIDE_TONE_PEAK`.
    """
    phases = tuple((str(name), int(length)) for name, length in phases if int(length) > 0)
    n = max(0, stop - start)
    out = np.zeros(n, dtype=np.float32)
    if not phases or cycles <= 0 or n == 0:
        return out
    starts, start_cycles, rows, cycle_samples, cycle_cycles = _guide_plan(phases)
    total = cycle_samples * cycles
    lo, hi = max(start, 0), min(stop, total)
    if lo >= hi:
        return out
    idx = np.arange(lo, hi, dtype=np.int64)
    cycle_index, offset = np.divmod(idx, cycle_samples)
    seg = np.searchsorted(starts, offset, side="right") - 1
    t = (offset - starts[seg]).astype(np.float64)
    # Whole cycles contribute only their fractional part, so the phase stays small and exact.
    whole = np.mod(cycle_index * math.modf(cycle_cycles)[0], 1.0)
    phase = whole + start_cycles[seg]
    gain = np.zeros(len(idx))
    last = len(rows) - 1
    for k, (f0, f1, length, audible) in enumerate(rows):
        mask = seg == k
        if not mask.any():
            continue
        tk = t[mask]
        phase[mask] += _glide_cycles(f0, f1, length, tk)
        r = min(GUIDE_TONE_RAMP_SAMPLES, length)
        if audible:
            g = np.ones(len(tk))
            # Sound starts after silence: the step's first sample, or a phase after a rest.
            if k == 0:
                after_silence = (cycle_index[mask] == 0) | (not rows[last][3])
            else:
                after_silence = np.full(len(tk), not rows[k - 1][3])
            g = np.where(after_silence & (tk < r), np.sin(0.5 * np.pi * tk / r) ** 2, g)
            if k == last:  # the step ends in sound: fall to 0 on its final sample
                tail = length - tk  # 1 on the final sample
                fade = np.cos(0.5 * np.pi * np.clip((r - tail + 1) / r, 0.0, 1.0)) ** 2
                g = np.where((cycle_index[mask] == cycles - 1) & (tail <= r), g * fade, g)
            gain[mask] = g
        else:
            previous_audible = rows[k - 1][3] if k > 0 else rows[last][3]
            if previous_audible:  # fade out over the start of the rest
                gain[mask] = np.where(tk < r, np.cos(0.5 * np.pi * tk / r) ** 2, 0.0)
    theta = 2 * np.pi * np.mod(phase, 1.0)
    wave = np.sin(theta) + _GUIDE_TONE_H2 * np.sin(2 * theta)
    out[lo - start : hi - start] = (GUIDE_TONE_PEAK / _guide_wave_peak() * gain * wave).astype(
        np.float32
    )
    return out


@functools.lru_cache(maxsize=1)
def _guide_wave_peak() -> float:
    theta = np.linspace(0, 2 * np.pi, 1 << 16, endpoint=False)
    return float(np.max(np.abs(np.sin(theta) + _GUIDE_TONE_H2 * np.sin(2 * theta))))


# ---- background layers --------------------------------------------------------------------------


def layer_block(layer: Drone | Binaural | Noise, start: int, stop: int) -> np.ndarray:
    """Samples [start, stop) of a background layer, stereo, before fades and ducking.

    Parameters
    ----------
    layer : a `model.Drone`, `model.Binaural` or `model.Noise`.
    start, stop : absolute sample indices (the session's clock), ``0 <= start <= stop``.

    Returns
    -------
    np.ndarray
        float32 (stop - start, 2). RMS per channel is ``0.5 * layer.volume`` (the drone's over a
        whole 20 s movement period; binaural exactly; noise in expectation).
    """
    if start < 0 or stop < start:
        raise ValueError(f"bad sample range [{start}, {stop})")
    if isinstance(layer, Drone):
        return _drone(layer.frequency_hz, layer.volume, start, stop)
    if isinstance(layer, Binaural):
        return _binaural(layer.carrier_hz, layer.beat_hz, layer.volume, start, stop)
    if isinstance(layer, Noise):
        return _noise(layer.color, layer.volume, start, stop)
    raise TypeError(f"layer_block cannot generate {type(layer).__name__}")


def _sine_at(frequency_hz: float, idx: np.ndarray, phase_cycles: float = 0.0) -> np.ndarray:
    # float64 cycles from the absolute index: exact frequency, no drift over hours.
    cycles = idx * (frequency_hz / SAMPLE_RATE) + phase_cycles
    return np.sin(2 * np.pi * np.mod(cycles, 1.0))


def _binaural(carrier_hz, beat_hz, volume, start, stop) -> np.ndarray:
    idx = np.arange(start, stop, dtype=np.float64)
    amp = LAYER_RMS * math.sqrt(2.0) * volume
    out = np.empty((len(idx), 2), dtype=np.float32)
    out[:, 0] = amp * _sine_at(carrier_hz, idx)
    out[:, 1] = amp * _sine_at(carrier_hz + beat_hz, idx)
    return out


_DRONE_LFO_HZ = 0.05  # slow swell, one breath-like rise and fall every 20 s
_DRONE_LFO_DEPTH = 0.15
_DRONE_PARTNER_HZ = 0.11  # the octave partner's detune: a slow 9 s beat, opposite per channel
# (harmonic, amplitude, phase in cycles); harmonic 2 also has a detuned partner of its own.
_DRONE_HARMONICS = ((1, 1.0, 0.0), (2, 0.28, 0.1), (3, 0.12, 0.2), (4, 0.05, 0.6))
_DRONE_PARTNER = (0.18, 0.35)  # amplitude, phase in cycles
_DRONE_SOFT_HZ = 1500.0  # upper partials above this roll off (1/f^2) so a high drone stays soft


def _drone_amplitudes(frequency_hz: float) -> tuple[list[float], float]:
    def soft(k: int, a: float) -> float:
        f = k * frequency_hz
        return a * (_DRONE_SOFT_HZ / f) ** 2 if k > 1 and f > _DRONE_SOFT_HZ else a

    return [soft(k, a) for k, a, _ in _DRONE_HARMONICS], soft(2, _DRONE_PARTNER[0])


def _drone(frequency_hz, volume, start, stop) -> np.ndarray:
    idx = np.arange(start, stop, dtype=np.float64)
    # Three oscillators from the absolute index; harmonics by angle multiplication (exact
    # multiples, and 4 transcendental calls per sample instead of 12).
    theta = 2 * np.pi * np.mod(idx * (frequency_hz / SAMPLE_RATE), 1.0)
    detune = 2 * np.pi * np.mod(idx * (_DRONE_PARTNER_HZ / SAMPLE_RATE), 1.0)
    lfo = 2 * np.pi * np.mod(idx * (_DRONE_LFO_HZ / SAMPLE_RATE), 1.0)
    sin1, cos1 = np.sin(theta), np.cos(theta)
    sin_d, cos_d = np.sin(detune), np.cos(detune)
    amps, partner_amp = _drone_amplitudes(frequency_hz)
    mean_square = (sum(a * a for a in amps) + partner_amp**2) / 2 * (1 + _DRONE_LFO_DEPTH**2 / 2)
    scale = LAYER_RMS * volume / math.sqrt(mean_square)
    out = np.empty((len(idx), 2), dtype=np.float32)
    for channel in (0, 1):
        # The right channel runs an eighth of a cycle ahead, its LFO a quarter period: width
        # that still sums well to mono (fundamental 45 degrees apart, correlation ~0.7).
        shift = 0.25 * np.pi * channel
        s1 = math.cos(shift) * sin1 + math.sin(shift) * cos1
        c1 = math.cos(shift) * cos1 - math.sin(shift) * sin1
        s2, c2 = 2 * s1 * c1, 1 - 2 * s1 * s1
        s3, c3 = s1 * (3 - 4 * s1 * s1), c1 * (4 * c1 * c1 - 3)
        s4, c4 = 2 * s2 * c2, 1 - 2 * s2 * s2
        x = np.zeros(len(idx))
        for (_, _, p), a, (s, c) in zip(
            _DRONE_HARMONICS, amps, ((s1, c1), (s2, c2), (s3, c3), (s4, c4)), strict=True
        ):
            x += a * (math.cos(2 * np.pi * p) * s + math.sin(2 * np.pi * p) * c)
        # Partner: sin(2 theta + p +/- detune), opposite detune per channel.
        p = 2 * np.pi * _DRONE_PARTNER[1]
        s2p, c2p = math.cos(p) * s2 + math.sin(p) * c2, math.cos(p) * c2 - math.sin(p) * s2
        sign = 1.0 if channel == 0 else -1.0
        x += partner_amp * (s2p * cos_d + sign * c2p * sin_d)
        swell = 1.0 + _DRONE_LFO_DEPTH * np.sin(lfo + 0.5 * np.pi * channel)
        out[:, channel] = scale * swell * x
    return out


@functools.lru_cache(maxsize=len(_NOISE_EXPONENT))
def _noise_kernel(color: str) -> np.ndarray:
    """A linear-phase FIR whose power response is 1/f**exponent over 20 Hz-20 kHz, sum h^2 = 1."""
    exponent = _NOISE_EXPONENT[color]
    k = _NOISE_KERNEL_SAMPLES
    f = np.fft.rfftfreq(k, 1.0 / SAMPLE_RATE)
    mag = np.zeros_like(f)
    f1 = f[1:]
    highpass = (f1 / _NOISE_LOW_HZ) ** 4 / np.sqrt(1 + (f1 / _NOISE_LOW_HZ) ** 8)
    lowpass = 1 / np.sqrt(1 + (f1 / _NOISE_HIGH_HZ) ** 8)
    mag[1:] = highpass * lowpass * (f1 / 1000.0) ** (-exponent / 2)
    h = np.roll(np.fft.irfft(mag, k), k // 2) * np.blackman(k)
    h /= np.sqrt(np.sum(h * h))
    return h


@functools.lru_cache(maxsize=12)
def _white_chunk(stream: int, index: int) -> np.ndarray:
    # index >= -1; every chunk has its own seed, so any chunk can be made on its own.
    rng = np.random.default_rng([_NOISE_SEED, stream, index + 1])
    return rng.standard_normal(_NOISE_CHUNK_SAMPLES)


@functools.lru_cache(maxsize=12)
def _noise_chunk(color: str, channel: int, index: int) -> np.ndarray:
    """Filtered noise for samples [index*C, (index+1)*C): exact FIR of the seeded white stream."""
    c, k = _NOISE_CHUNK_SAMPLES, _NOISE_KERNEL_SAMPLES
    # Its own white stream per colour and channel: two noise layers of different colours are
    # independent, and so are left and right.
    stream = 2 * list(_NOISE_EXPONENT).index(color) + channel
    history = _white_chunk(stream, index - 1)[c - k + 1 :]
    x = np.concatenate([history, _white_chunk(stream, index)])
    y = signal.fftconvolve(x, _noise_kernel(color), mode="valid")
    out = y.astype(np.float32)
    out.flags.writeable = False
    return out


def _noise(color, volume, start, stop) -> np.ndarray:
    if color not in _NOISE_EXPONENT:
        raise ValueError(f"unknown noise color {color!r}; expected one of {list(_NOISE_EXPONENT)}")
    c = _NOISE_CHUNK_SAMPLES
    out = np.empty((stop - start, 2), dtype=np.float32)
    gain = np.float32(LAYER_RMS * volume)
    for channel in (0, 1):
        pos = start
        while pos < stop:
            index, offset = divmod(pos, c)
            take = min(c - offset, stop - pos)
            chunk = _noise_chunk(color, channel, index)
            out[pos - start : pos - start + take, channel] = chunk[offset : offset + take] * gain
            pos += take
    return out


# ---- sound files --------------------------------------------------------------------------------


def sound_block(data: np.ndarray, loop: bool, start: int, stop: int) -> np.ndarray:
    """Samples [start, stop) of a decoded sound file, looped or played once.

    Looping: the file plays from its first sample; each later pass starts with a 100 ms
    constant-power crossfade from the file's last 100 ms into its first 100 ms (shorter for
    short files), so the loop period is ``len(data) - crossfade`` and the seam does not click.
    Once: silence after the end.

    Parameters
    ----------
    data : float32 (m, 2), already at `SAMPLE_RATE`.
    loop : tile the file end to end.
    start, stop : absolute sample indices.

    Returns
    -------
    np.ndarray
        float32 (stop - start, 2).
    """
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 1:
        data = np.repeat(data[:, None], 2, axis=1)
    m = len(data)
    n = max(0, stop - start)
    out = np.zeros((n, data.shape[1]), dtype=np.float32)
    if m == 0 or n == 0:
        return out
    if not loop:
        lo, hi = max(start, 0), min(stop, m)
        if lo < hi:
            out[lo - start : hi - start] = data[lo:hi]
        return out
    xf = min(LOOP_CROSSFADE_SAMPLES, m // 4)
    period = m - xf
    idx = np.arange(start, stop, dtype=np.int64)
    first = idx < xf  # the very first pass starts clean, with nothing to fade from
    pos = np.where(first, idx, np.mod(idx, period))
    out[:] = data[pos]
    if xf > 0:
        seam = (~first) & (pos < xf)
        if seam.any():
            p = pos[seam]
            w = (0.5 * np.pi * (p + 0.5) / xf)[:, None]
            out[seam] = (data[p] * np.sin(w) + data[period + p] * np.cos(w)).astype(np.float32)
    return out


# ---- envelopes ----------------------------------------------------------------------------------


def fade_gain(
    start: int, stop: int, total_samples: int, fade_in_samples: int, fade_out_samples: int
) -> np.ndarray:
    """The fade envelope of a background layer, samples [start, stop).

    Fade in: ``sin^2(pi/2 * n / fade_in_samples)`` for ``0 <= n < fade_in_samples``, so sample 0
    is 0 and sample `fade_in_samples` is the first at 1. Fade out, its mirror image:
    ``sin^2(pi/2 * (total_samples - 1 - n) / fade_out_samples)``, so sample ``total_samples - 1``
    is 0 and sample ``total_samples - 1 - fade_out_samples`` is the last at 1. Overlapping fades
    multiply; outside [0, total_samples) the gain is 0.

    Returns
    -------
    np.ndarray
        float32 (stop - start,).
    """
    n = np.arange(start, stop, dtype=np.float64)
    g = np.ones(len(n))
    if fade_in_samples > 0:
        x = np.clip(n / fade_in_samples, 0.0, 1.0)
        g *= np.sin(0.5 * np.pi * x) ** 2
    if fade_out_samples > 0:
        x = np.clip((total_samples - 1 - n) / fade_out_samples, 0.0, 1.0)
        g *= np.sin(0.5 * np.pi * x) ** 2
    g[(n < 0) | (n >= total_samples)] = 0.0
    return g.astype(np.float32)


_duck_cache: dict[int, tuple[object, int, int, np.ndarray, np.ndarray]] = {}


def _merged_intervals(intervals: Sequence[tuple[int, int]], ramp_samples: int):
    """Intervals merged where their ramps would meet; cached by the sequence's identity."""
    key = id(intervals)
    hit = _duck_cache.get(key)
    if (
        hit is not None
        and hit[0] is intervals
        and hit[1] == ramp_samples
        and hit[2] == len(intervals)
    ):
        return hit[3], hit[4]
    starts: list[int] = []
    ends: list[int] = []
    for s, e in intervals:
        s, e = int(s), int(e)
        if e <= s:
            continue
        if starts and s - ends[-1] < 2 * ramp_samples:
            ends[-1] = max(ends[-1], e)
        else:
            starts.append(s)
            ends.append(e)
    result = (np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64))
    if len(_duck_cache) >= 8:
        _duck_cache.clear()
    _duck_cache[key] = (intervals, ramp_samples, len(intervals), *result)
    return result


def duck_gain(
    start: int,
    stop: int,
    intervals: Sequence[tuple[int, int]],
    depth: float,
    ramp_samples: int,
) -> np.ndarray:
    """The ducking envelope under speech, samples [start, stop).

    1.0 normally, ``1 - depth`` inside every interval [start_sample, end_sample). The gain lowers
    along ``1 - depth * sin^2`` over the `ramp_samples` before an interval (1.0 at
    ``start_sample - ramp_samples``, ``1 - depth`` at `start_sample`) and rises along the mirror
    image after it (``1 - depth`` at `end_sample`, 1.0 at ``end_sample + ramp_samples``).
    Intervals closer than ``2 * ramp_samples`` merge: the gain stays down between them.

    Parameters
    ----------
    intervals : sorted by start. Merging is cached by the object's identity, so pass the same
        (immutable) tuple for every block: a block then costs O(log N + block).
    depth : 0-1.
    ramp_samples : length of each ramp.

    Returns
    -------
    np.ndarray
        float32 (stop - start,).
    """
    n = max(0, stop - start)
    g = np.ones(n, dtype=np.float64)
    if n == 0 or depth == 0 or not intervals:
        return g.astype(np.float32)
    r = max(0, int(ramp_samples))
    starts, ends = _merged_intervals(intervals, r)
    # Merged groups with their ramps are disjoint and sorted: bisect to the ones touching the block.
    i0 = int(np.searchsorted(ends, start - r, "right"))
    i1 = int(np.searchsorted(starts, stop + r, "left"))
    for s, e in zip(starts[i0:i1].tolist(), ends[i0:i1].tolist(), strict=True):
        lo, hi = max(start, s - r), min(stop, e + r)
        idx = np.arange(lo, hi, dtype=np.float64)
        d = np.ones(len(idx))
        if r > 0:
            down = idx < s
            d[down] = np.sin(0.5 * np.pi * (idx[down] - (s - r)) / r) ** 2
            up = idx >= e
            d[up] = np.cos(0.5 * np.pi * (idx[up] - e) / r) ** 2
        g[lo - start : hi - start] = 1.0 - depth * d
    return g.astype(np.float32)
