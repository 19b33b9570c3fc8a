"""The synth stage: every sound the engine makes itself, as pure numpy.

Entry points (all float32, all at `model.SAMPLE_RATE`):

- `chime(name, volume) -> (n,)` and `chime_samples(name)`: a struck bell, `bell`, `bowl` or `soft`.
- `guide_tone(phases, cycles, start, stop) -> (n,)`: the breathing guide tone of one `breathe` step.
- `layer_block(layer, start, stop) -> (n, 2)`: a `Drone`, `Binaural` or `Noise` background layer.
- `sound_block(data, loop, start, stop) -> (n, 2)`: a decoded sound file, looped or not.
- `fade_gain(...)`, `duck_gain(...) -> (n,)`: the fade and ducking envelopes the renderer applies;
  `is_unity(gain)` says (by identity, no scan) that one came back as all ones.

Every generator is random access: the samples of the absolute range [start, stop) are the same
however the range is cut into blocks, because each sample depends only on its own index.
Oscillator phases come from the absolute sample index in float64; drone and binaural are made in
cached tiles that start at fixed multiples of 65 536 samples; noise is read, index modulo the
period, from a seamless 47.5 s loop per colour made once. Levels: every background layer at
volume v has an RMS of ``LAYER_RMS * v`` = 0.2 v per channel, about twice the voice's RMS at
v = 1 (see `docs/sound.md`). No files, no devices, no scipy: numpy only (it imports fast).
"""

from __future__ import annotations

import bisect
import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from audio_engine.chimes import (  # noqa: F401 (part of this module's interface)
    _CHIMES,
    CHIME_FADE_SAMPLES,
    CHIME_MAX_SAMPLES,
    CHIME_NAMES,
    CHIME_VERSION,
    length_after_peak,
)
from audio_engine.model import SAMPLE_RATE, Binaural, Drone, Noise

# RMS per channel of a background layer at volume 1.0: about twice the voice's RMS (~0.1 at
# volume 1), so the usual drone 0.06 / noise 0.03 sit about 18 dB under the voice.
LAYER_RMS = 0.2
GUIDE_TONE_PEAK = 0.1  # RMS ~0.07: a little under the voice (~0.1 RMS), never over it
GUIDE_TONE_LOW_HZ = 196.0  # G3: where the inhale starts and the exhale ends
GUIDE_TONE_HIGH_HZ = 293.66  # D4: the top of the inhale, held through the hold
GUIDE_TONE_RAMP_SAMPLES = round(0.025 * SAMPLE_RATE)
_GUIDE_TONE_H2 = 0.08  # 2nd harmonic relative to the fundamental: a touch of warmth


LOOP_CROSSFADE_SAMPLES = round(0.1 * SAMPLE_RATE)

_NOISE_SEED = 0x5EED_2E1A


# ---- chimes -----------------------------------------------------------------------------------


_installed_chimes: dict[str, np.ndarray] = {}


def unit_chime(name: str) -> np.ndarray:
    """The chime `name` at peak 1, float32 (n,), read-only; made once per process.

    The edge may keep it on disk and hand it back with `install_chime` (making one takes
    10-35 ms, reading it well under 1 ms).
    """
    return _unit_chime(name)


def install_chime(name: str, unit: np.ndarray) -> None:
    """Use `unit` (a saved `unit_chime(name)`) instead of making it again."""
    if name not in _CHIMES:
        raise ValueError(f"unknown chime {name!r}; expected one of {list(CHIME_NAMES)}")
    unit = np.asarray(unit)
    if (
        unit.ndim != 1
        or unit.dtype != np.float32
        or not 0 < len(unit) <= CHIME_MAX_SAMPLES
        or unit[-1] != 0.0
        or float(np.max(np.abs(unit))) != 1.0
    ):
        raise ValueError("a chime is float32 (n,), peak 1, ending on 0")
    unit.flags.writeable = False
    _installed_chimes[name] = unit
    _unit_chime.cache_clear()
    chime.cache_clear()


@functools.lru_cache(maxsize=len(_CHIMES))
def _unit_chime(name: str) -> np.ndarray:
    installed = _installed_chimes.get(name)
    if installed is not None:
        return installed
    try:
        spec = _CHIMES[name]
    except KeyError:
        raise ValueError(f"unknown chime {name!r}; expected one of {list(CHIME_NAMES)}") from None
    n_max = CHIME_MAX_SAMPLES
    x = np.zeros(n_max, dtype=np.float64)
    for p in spec.partials:
        f_hz = spec.fundamental_hz * p.ratio
        if p.beat_hz:
            # Two twins 0.8 : 0.2 instead of one partial; same envelope bound.
            x += (0.8 * p.amplitude) * _damped_sine(f_hz, p.t60_s, n_max)
            x += (0.2 * p.amplitude) * _damped_sine(f_hz + p.beat_hz, p.t60_s, n_max)
        else:
            x += p.amplitude * _damped_sine(f_hz, p.t60_s, n_max)
    attack = round(spec.attack_s * SAMPLE_RATE)
    x[:attack] *= np.sin(0.5 * np.pi * np.arange(attack) / attack) ** 2
    peak = float(np.max(np.abs(x)))

    n = length_after_peak(spec, peak)
    x = x[:n]
    fade = min(CHIME_FADE_SAMPLES, n)
    # cos^2 from 1 to exactly 0 on the last sample.
    x[n - fade :] *= np.cos(0.5 * np.pi * np.arange(1, fade + 1) / fade) ** 2
    x[-1] = 0.0
    x /= np.max(np.abs(x))
    out = x.astype(np.float32)
    out.flags.writeable = False
    return out


_LN1000 = math.log(1000.0)
_DAMPED_BLOCK = 4096


def _damped_sine(f_hz: float, t60_s: float, n: int) -> np.ndarray:
    """exp(-ln(1000) t / t60) sin(2 pi f t) at t = i / SAMPLE_RATE, i < n: a partial that falls
    60 dB in `t60_s`. One complex exponential per sample of the first block, then each block is
    the one before times a constant (exact to ~1e-13, a few times faster than sin and exp)."""
    rate = complex(-_LN1000 / (t60_s * SAMPLE_RATE), 2 * math.pi * f_hz / SAMPLE_RATE)
    block = np.exp(rate * np.arange(min(_DAMPED_BLOCK, n)))
    step = np.exp(rate * _DAMPED_BLOCK)
    out = np.empty(n, dtype=np.float64)
    for at in range(0, n, _DAMPED_BLOCK):
        m = min(_DAMPED_BLOCK, n - at)
        out[at : at + m] = block.imag[:m]
        block *= step
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


_GLIDE_TABLE_MAX_SAMPLES = 30 * SAMPLE_RATE  # longer phases are computed as they play


@functools.lru_cache(maxsize=16)
def _glide_full_table(f0_hz: float, f1_hz: float, length: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(length, dtype=np.float64)
    cycles = _glide_cycles(f0_hz, f1_hz, length, t)
    theta = (cycles - np.floor(cycles)) * (2 * np.pi)
    sin_g, cos_g = np.sin(theta).astype(np.float32), np.cos(theta).astype(np.float32)
    sin_g.flags.writeable = False
    cos_g.flags.writeable = False
    return sin_g, cos_g


def _glide_table(f0_hz: float, f1_hz: float, length: int, ta: int, tb: int):
    """sin and cos of 2 pi x the glide's cycles for samples [ta, tb) of a phase, float32."""
    if length <= _GLIDE_TABLE_MAX_SAMPLES:
        sin_g, cos_g = _glide_full_table(f0_hz, f1_hz, length)
        return sin_g[ta:tb], cos_g[ta:tb]
    cycles = _glide_cycles(f0_hz, f1_hz, length, np.arange(ta, tb, dtype=np.float64))
    theta = (cycles - np.floor(cycles)) * (2 * np.pi)
    return np.sin(theta).astype(np.float32), np.cos(theta).astype(np.float32)


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


def guide_tone(
    phases: Sequence[tuple[str, int]],
    cycles: int,
    start: int,
    stop: int,
    cycle_lengths: Sequence[Sequence[int]] = (),
) -> np.ndarray:
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
    cycle_lengths : when the phases ramp, every cycle's phase lengths in samples (one tuple per
        cycle, in the order of `phases`' names); each cycle glides over its own lengths.

    Returns
    -------
    np.ndarray
        float32 (stop - start,), peak at most `GUIDE_TONE_PEAK`.
    """
    if cycle_lengths:
        return _guide_tone_varying(
            tuple(str(name) for name, _ in phases),
            tuple(tuple(int(n) for n in lengths) for lengths in cycle_lengths),
            start,
            stop,
        )
    phases = tuple((str(name), int(length)) for name, length in phases if int(length) > 0)
    n = max(0, stop - start)
    out = np.zeros(n, dtype=np.float32)
    if not phases or cycles <= 0 or n == 0:
        return out
    starts, start_cycles, rows, cycle_samples, cycle_cycles = _guide_plan(phases)
    lo, hi = max(start, 0), min(stop, cycle_samples * cycles)
    if lo >= hi:
        return out
    # One contiguous stretch per (cycle, phase) the block touches; silent stretches stay zeros.
    for cycle in range(lo // cycle_samples, (hi - 1) // cycle_samples + 1):
        # Whole cycles contribute only their fractional part, so the phase stays small and exact.
        whole = (cycle * math.modf(cycle_cycles)[0]) % 1.0
        _guide_cycle(
            out, start, lo, hi, cycle * cycle_samples, (starts, start_cycles, rows), whole,
            first=cycle == 0, final=cycle == cycles - 1,
        )  # fmt: skip
    return out


@functools.lru_cache(maxsize=8)
def _varying_plan(names: tuple[str, ...], cycle_lengths: tuple[tuple[int, ...], ...]):
    """Per cycle of a ramped step: its first sample, its oscillator offset (cycles, mod 1) and
    its phase plan; plus the step's length."""
    cycle_starts, offsets, plans = [], [], []
    position, offset = 0, 0.0
    for lengths in cycle_lengths:
        starts, start_cycles, rows, cycle_samples, cycle_cycles = _guide_plan(
            tuple(zip(names, lengths, strict=True))
        )
        cycle_starts.append(position)
        offsets.append(offset)
        plans.append((starts, start_cycles, rows))
        position += cycle_samples
        offset = (offset + math.modf(cycle_cycles)[0]) % 1.0
    return cycle_starts, offsets, plans, position


def _guide_tone_varying(names, cycle_lengths, start: int, stop: int) -> np.ndarray:
    n = max(0, stop - start)
    out = np.zeros(n, dtype=np.float32)
    if not names or not cycle_lengths or n == 0:
        return out
    cycle_starts, offsets, plans, total = _varying_plan(names, cycle_lengths)
    lo, hi = max(start, 0), min(stop, total)
    if lo >= hi:
        return out
    last = len(cycle_lengths) - 1
    first = bisect.bisect_right(cycle_starts, lo) - 1
    for cycle in range(first, bisect.bisect_left(cycle_starts, hi)):
        _guide_cycle(
            out, start, lo, hi, cycle_starts[cycle], plans[cycle], offsets[cycle],
            first=cycle == 0, final=cycle == last,
        )  # fmt: skip
    return out


def _guide_cycle(out, start, lo, hi, cycle_start, plan, whole, *, first, final) -> None:
    """Write one cycle's part of the guide tone in [lo, hi) into `out` (which starts at `start`).

    `plan` is the cycle's `_guide_plan` (starts, start cycles, rows); `whole` the oscillator's
    offset at the cycle's start (cycles, mod 1); `first`/`final`: the step's first/last cycle.
    """
    starts, start_cycles, rows = plan
    last = len(rows) - 1
    peak = GUIDE_TONE_PEAK / _guide_wave_peak()
    for k, (f0, f1, length, audible) in enumerate(rows):
        seg = cycle_start + int(starts[k])
        ta, tb = max(lo, seg) - seg, min(hi, seg + length) - seg
        if ta >= tb:
            continue
        r = min(GUIDE_TONE_RAMP_SAMPLES, length)
        if not audible:
            previous_audible = rows[k - 1][3] if k > 0 else rows[last][3]
            if not previous_audible or ta >= r:
                continue
            tb = min(tb, r)  # fade out over the start of the rest, then exact silence
        # sin(2 pi (offset + glide)): the glide's own sine and cosine come from a table per
        # phase shape, the cycle's offset is two scalars (a rotation).
        offset = 2 * math.pi * ((whole + start_cycles[k]) % 1.0)
        a_s, a_c = np.float32(math.sin(offset)), np.float32(math.cos(offset))
        sin_g, cos_g = _glide_table(f0, f1, length, ta, tb)
        # wave = sin1 * (1 + 2 h2 cos1) (+ h2 sin(2 theta)), with sin1 = a_s cos_g + a_c sin_g
        # and cos1 = a_c cos_g - a_s sin_g, in three arrays rather than seven: the same float steps.
        wave = np.multiply(cos_g, a_s)
        term = np.multiply(sin_g, a_c)
        wave += term
        cos1 = np.multiply(cos_g, a_c)
        np.multiply(sin_g, a_s, out=term)
        cos1 -= term
        cos1 *= np.float32(2 * _GUIDE_TONE_H2)
        cos1 += np.float32(1)
        wave *= cos1
        wave *= np.float32(peak)
        if audible:
            # Sound starts after silence: the step's first sample, or a phase after a rest.
            after_silence = (first or not rows[last][3]) if k == 0 else not rows[k - 1][3]
            if after_silence and ta < r:
                m = min(tb, r) - ta
                t = np.arange(ta, ta + m, dtype=np.float64)
                wave[:m] *= (np.sin(0.5 * np.pi * t / r) ** 2).astype(np.float32)
            if k == last and final and tb > length - r:
                # The step ends in sound: fall to 0 on its final sample.
                m = max(ta, length - r) - ta
                tail = length - np.arange(ta + m, tb, dtype=np.float64)  # 1 on the final one
                fade = np.cos(0.5 * np.pi * np.clip((r - tail + 1) / r, 0.0, 1.0)) ** 2
                wave[m:] *= fade.astype(np.float32)
        else:
            t = np.arange(ta, tb, dtype=np.float64)
            wave *= (np.cos(0.5 * np.pi * t / r) ** 2).astype(np.float32)
        a = seg + ta - start
        out[a : a + len(wave)] = wave


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
        float32 (stop - start, 2), a new array. RMS per channel is ``LAYER_RMS * layer.volume``
        (the drone's over a whole 20 s swell period; binaural exactly; noise exactly over its
        47.5 s loop).

    Examples
    --------
    >>> x = layer_block(Noise(color="pink", volume=0.5), 0, 44100)
    >>> x.shape, x.dtype
    ((44100, 2), dtype('float32'))
    """
    if start < 0 or stop < start:
        raise ValueError(f"bad sample range [{start}, {stop})")
    if isinstance(layer, Drone):
        return _from_tiles(_drone_bank(float(layer.frequency_hz)), layer.volume, start, stop)
    if isinstance(layer, Binaural):
        bank = _binaural_bank(float(layer.carrier_hz), float(layer.beat_hz))
        return _from_tiles(bank, layer.volume, start, stop)
    if isinstance(layer, Noise):
        return _noise(layer.color, layer.volume, start, stop)
    raise TypeError(f"layer_block cannot generate {type(layer).__name__}")


# Oscillator banks. A drone or binaural layer is a sum of sines per channel, optionally under a
# slow swell. It is made in tiles of _TILE_SAMPLES that start at multiples of _TILE_SAMPLES on the
# session clock, and each tile is a pure function of its index, so any block is the same however
# the session is cut. Inside a tile, every _GRID_SAMPLES-sample stretch starts from phases computed
# in float64 from its absolute first index (exact frequencies, no drift over hours) and advances
# by exact rotation: sin(phase + w j) = sin(phase) cos(w j) + cos(phase) sin(w j), with the
# cos(w j), sin(w j) rows tabulated once. The swell is evaluated on the same grid and linearly
# interpolated inside each stretch. That makes a tile one small matrix product
# (stretches x rows) @ (rows x samples): a few float operations per sample instead of sines.
_TILE_SAMPLES = 1 << 16
_GRID_SAMPLES = 256
_TILE_GRID = _TILE_SAMPLES // _GRID_SAMPLES
# Products are cut into batches small enough that OpenBLAS runs each on one thread (it starts
# threads above m*n*k = 2**18), which is faster here and does not fight other work for cores.
_BLAS_ONE_THREAD = 1 << 18


@dataclass(frozen=True)
class _Bank:
    """Per channel: sum_i amplitudes[c][i] * sin(2 pi (frequencies_hz[i] * n / SR + phases[c][i])),
    times ``1 + swell_depth * sin(2 pi (swell_hz * n / SR + swell_phases[c]))`` if swell_depth."""

    frequencies_hz: tuple[float, ...]
    amplitudes: tuple[tuple[float, ...], ...]
    phases_cycles: tuple[tuple[float, ...], ...]
    swell_hz: float = 0.0
    swell_depth: float = 0.0
    swell_phases_cycles: tuple[float, ...] = (0.0, 0.0)


def _from_tiles(bank: _Bank, volume: float, start: int, stop: int) -> np.ndarray:
    out = np.empty((stop - start, 2), dtype=np.float32)
    gain = np.float32(volume)
    pos = start
    while pos < stop:
        index, offset = divmod(pos, _TILE_SAMPLES)
        take = min(_TILE_SAMPLES - offset, stop - pos)
        with _TILES.lock:  # a recycled buffer must not be rewritten while it is read
            tile = _TILES.get(bank, index)
            for channel in (0, 1):
                np.multiply(
                    tile[channel, offset : offset + take],
                    gain,
                    out=out[pos - start : pos - start + take, channel],
                )
        pos += take
    return out


class _TileCache:
    """The last few tiles, planar float32 (2, T), their buffers recycled.

    Recycling matters: a fresh 512 KB array costs more in page faults than computing the tile.
    Tiles never leave this module (blocks are copies), so a buffer can be reused once evicted.
    """

    def __init__(self, size: int):
        self.size = size
        self.lock = threading.Lock()
        self._tiles: OrderedDict[tuple[_Bank, int], np.ndarray] = OrderedDict()

    def get(self, bank: _Bank, index: int) -> np.ndarray:
        key = (bank, index)
        tile = self._tiles.get(key)
        if tile is not None:
            self._tiles.move_to_end(key)
            return tile
        channels = len(bank.amplitudes)
        if len(self._tiles) >= self.size:
            _, tile = self._tiles.popitem(last=False)
        if tile is None or tile.shape[0] != channels:
            tile = np.empty((channels, _TILE_SAMPLES), dtype=np.float32)
        _bank_tile(bank, index, tile)
        self._tiles[key] = tile
        return tile

    def clear(self) -> None:
        with self.lock:
            self._tiles.clear()


_TILES = _TileCache(8)


@functools.lru_cache(maxsize=8)
def _bank_tables(bank: _Bank) -> np.ndarray:
    """The rows every stretch combines: cos(w j), sin(w j) per sine (then j/G times them)."""
    j = np.arange(_GRID_SAMPLES, dtype=np.float64)
    w = 2 * np.pi * np.array(bank.frequencies_hz)[:, None] / SAMPLE_RATE
    rows = np.concatenate([np.cos(w * j), np.sin(w * j)])
    if bank.swell_depth:
        rows = np.concatenate([rows, rows * (j / _GRID_SAMPLES)])
    return rows.astype(np.float32)


def _angles(cycles: np.ndarray) -> np.ndarray:
    # Fraction by x - floor(x) (np.mod is slow), then float32 for the sines: a phase computed in
    # float64 from the absolute index is exact to ~1e-7 cycle.
    return ((cycles - np.floor(cycles)) * (2 * np.pi)).astype(np.float32)


def _bank_tile(bank: _Bank, index: int, out: np.ndarray) -> None:
    """Samples [index * T, (index + 1) * T) of the bank at volume 1 into `out`, planar (2, T)."""
    channels, sines = len(bank.amplitudes), len(bank.frequencies_hz)
    grid = index * _TILE_SAMPLES + _GRID_SAMPLES * np.arange(_TILE_GRID + 1, dtype=np.float64)
    tables = _bank_tables(bank)
    rows = tables.shape[0]
    # weights[channel, stretch]: the cos(w j) rows' weights, then the sin(w j) rows'.
    weights = np.empty((channels, _TILE_GRID, rows), dtype=np.float32)
    cycles = grid[:-1, None] * (np.array(bank.frequencies_hz) / SAMPLE_RATE)
    angle = _angles(cycles + np.array(bank.phases_cycles)[:, None, :])
    amplitudes = np.array(bank.amplitudes, dtype=np.float32)[:, None, :]
    np.multiply(np.sin(angle), amplitudes, out=weights[..., :sines])
    np.multiply(np.cos(angle), amplitudes, out=weights[..., sines : 2 * sines])
    if bank.swell_depth:
        swell_cycles = grid * (bank.swell_hz / SAMPLE_RATE)
        angle = _angles(swell_cycles + np.array(bank.swell_phases_cycles)[:, None])
        swell = 1 + np.float32(bank.swell_depth) * np.sin(angle)  # (channel, grid + 1)
        step = swell[:, 1:] - swell[:, :-1]
        np.multiply(weights[..., : 2 * sines], step[..., None], out=weights[..., 2 * sines :])
        weights[..., : 2 * sines] *= swell[:, :-1, None]
    batch = _TILE_GRID
    while batch > 1 and batch * _GRID_SAMPLES * rows > _BLAS_ONE_THREAD:
        batch //= 2
    np.matmul(weights.reshape(-1, batch, rows), tables, out=out.reshape(-1, batch, _GRID_SAMPLES))


@functools.lru_cache(maxsize=8)
def _binaural_bank(carrier_hz: float, beat_hz: float) -> _Bank:
    amp = LAYER_RMS * math.sqrt(2.0)
    return _Bank(
        frequencies_hz=(carrier_hz, carrier_hz + beat_hz),
        amplitudes=((amp, 0.0), (0.0, amp)),
        phases_cycles=((0.0, 0.0), (0.0, 0.0)),
    )


_DRONE_LFO_HZ = 0.05  # slow swell, one breath-like rise and fall every 20 s
_DRONE_LFO_DEPTH = 0.15
_DRONE_PARTNER_HZ = 0.11  # the octave partner's detune: a slow 9 s beat, opposite per channel
# (harmonic, amplitude, phase in cycles); harmonic 2 also has a detuned partner of its own.
_DRONE_HARMONICS = ((1, 1.0, 0.0), (2, 0.28, 0.1), (3, 0.12, 0.2), (4, 0.05, 0.6))
_DRONE_PARTNER = (0.18, 0.35)  # amplitude, phase in cycles
_DRONE_SOFT_HZ = 1500.0  # upper partials above this roll off (1/f^2) so a high drone stays soft
# The right channel runs an eighth of a cycle ahead, its swell a quarter period: width that still
# sums well to mono (fundamental 45 degrees apart, correlation ~0.7).
_DRONE_RIGHT_SHIFT_CYCLES = 0.125
_DRONE_RIGHT_SWELL_CYCLES = 0.25


def _drone_amplitudes(frequency_hz: float) -> tuple[list[float], float]:
    def soft(k: int, a: float) -> float:
        f = k * frequency_hz
        return a * (_DRONE_SOFT_HZ / f) ** 2 if k > 1 and f > _DRONE_SOFT_HZ else a

    return [soft(k, a) for k, a, _ in _DRONE_HARMONICS], soft(2, _DRONE_PARTNER[0])


@functools.lru_cache(maxsize=8)
def _drone_bank(frequency_hz: float) -> _Bank:
    amps, partner_amp = _drone_amplitudes(frequency_hz)
    mean_square = (sum(a * a for a in amps) + partner_amp**2) / 2 * (1 + _DRONE_LFO_DEPTH**2 / 2)
    scale = LAYER_RMS / math.sqrt(mean_square)
    # Sines: the harmonics, then the partner of harmonic 2 detuned up (left) and down (right).
    frequencies = [k * frequency_hz for k, _, _ in _DRONE_HARMONICS]
    frequencies += [2 * frequency_hz + _DRONE_PARTNER_HZ, 2 * frequency_hz - _DRONE_PARTNER_HZ]
    amplitudes, phases = [], []
    for channel, (up, down) in enumerate(((1.0, 0.0), (0.0, 1.0))):
        shift = _DRONE_RIGHT_SHIFT_CYCLES * channel
        amplitudes.append(
            tuple(scale * a for a in amps) + (scale * partner_amp * up, scale * partner_amp * down)
        )
        harmonic_phases = tuple(p + k * shift for k, _, p in _DRONE_HARMONICS)
        phases.append(harmonic_phases + (_DRONE_PARTNER[1] + 2 * shift,) * 2)
    return _Bank(
        frequencies_hz=tuple(frequencies),
        amplitudes=tuple(amplitudes),
        phases_cycles=tuple(phases),
        swell_hz=_DRONE_LFO_HZ,
        swell_depth=_DRONE_LFO_DEPTH,
        swell_phases_cycles=(0.0, _DRONE_RIGHT_SWELL_CYCLES),
    )


# Noise: one seamless loop per colour, long enough that its repeat is not heard. The loop is the
# spectrum of seeded white Gaussian noise (drawn directly in the frequency domain: independent
# complex Gaussian bins), shaped to the colour and brought back by one inverse FFT. An inverse FFT
# is periodic, so the loop joins itself without a seam by construction; reading it is an index
# modulo the period. Left and right, and every colour, have their own seeds.
_NOISE_LOOP_SAMPLES = 1 << 21  # 47.55 s
_NOISE_EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # power spectrum ~ 1 / f**exponent
_NOISE_LOW_HZ = 20.0
_NOISE_HIGH_HZ = 20000.0


def _noise_magnitude(
    exponent: float, frequencies_hz: np.ndarray, has_dc: bool = True
) -> np.ndarray:
    """Amplitude response: 4th-order high-pass at 20 Hz, 8th-order roll-off at 20 kHz, f**(-e/2).

    `frequencies_hz[0]` is DC (response 0) when `has_dc`; otherwise every entry is above 0 Hz.
    """
    if not has_dc:
        return _noise_magnitude(exponent, np.r_[0.0, frequencies_hz])[1:]
    # Products rather than float powers: this runs over a million bins when a colour is first used.
    f = frequencies_hz[1:]
    low = f * (1 / _NOISE_LOW_HZ)
    low *= low
    low *= low  # (f / 20 Hz)^4
    high = f * (1 / _NOISE_HIGH_HZ)
    high *= high
    high *= high
    high *= high  # (f / 20 kHz)^8
    mag = np.zeros_like(frequencies_hz)
    mag[1:] = low / np.sqrt((1 + low * low) * (1 + high))
    if exponent == 1.0:
        mag[1:] /= np.sqrt(f * (1 / 1000.0))
    elif exponent == 2.0:
        mag[1:] *= 1000.0 / f
    elif exponent:
        mag[1:] *= (f / 1000.0) ** (-exponent / 2)
    return mag


NOISE_LOOP_VERSION = 1  # bump when anything changes what a noise loop contains


def noise_loop(color: str) -> np.ndarray:
    """One period of the colour's noise, float32 (P, 2), read-only; made once per process.

    The edge may keep it on disk and hand it back with `install_noise_loop` (making one takes
    ~0.15 s, reading it ~10 ms).
    """
    return _noise_loop(color)


def install_noise_loop(color: str, loop: np.ndarray) -> None:
    """Use `loop` (a saved `noise_loop(color)`) instead of making it again."""
    if color not in _NOISE_EXPONENT:
        raise ValueError(f"unknown noise color {color!r}")
    loop = np.asarray(loop)
    if loop.shape != (_NOISE_LOOP_SAMPLES, 2) or loop.dtype != np.float32:
        raise ValueError(f"a noise loop is float32 ({_NOISE_LOOP_SAMPLES}, 2)")
    loop.flags.writeable = False
    _installed_loops[color] = loop


_installed_loops: dict[str, np.ndarray] = {}


def _noise_loop(color: str) -> np.ndarray:
    loop = _installed_loops.get(color)
    if loop is None:
        loop = _installed_loops[color] = _make_noise_loop(color)
    return loop


def _make_noise_loop(color: str) -> np.ndarray:
    """One period of the colour's noise, float32 (P, 2), read-only, RMS exactly 1 per channel."""
    p = _NOISE_LOOP_SAMPLES
    # Made once per colour; kept lean (float32, temporaries freed as soon as possible) because
    # this is the largest allocation of a render.
    n_bins = p // 2 + 1
    loop = np.empty((p, 2), dtype=np.float32)
    for channel in (0, 1):
        rng = np.random.default_rng([_NOISE_SEED, list(_NOISE_EXPONENT).index(color), channel])
        # Pairs of standard normals read as complex numbers: the bins of white Gaussian noise.
        # Single precision throughout: its ~1e-7 relative error is far below hearing.
        bins = rng.standard_normal(2 * n_bins, dtype=np.float32).view(np.complex64)
        for lo in range(0, n_bins, 1 << 16):  # the response in slices: small temporaries
            k = np.arange(lo, min(lo + (1 << 16), n_bins), dtype=np.float64)
            bins[lo : lo + len(k)] *= _noise_magnitude(
                _NOISE_EXPONENT[color], k * (SAMPLE_RATE / p), has_dc=lo == 0
            ).astype(np.float32)
        x = np.fft.irfft(bins, p)
        del bins
        total = 0.0
        for part in np.array_split(x, 16):  # float64 sum without a full-size temporary
            total += float(np.square(part, dtype=np.float64).sum())
        rms = math.sqrt(total / p)
        np.multiply(x, np.float32(1 / rms), out=loop[:, channel])
        del x
    loop.flags.writeable = False
    return loop


def _noise(color, volume, start, stop) -> np.ndarray:
    if color not in _NOISE_EXPONENT:
        raise ValueError(f"unknown noise color {color!r}; expected one of {list(_NOISE_EXPONENT)}")
    loop = _noise_loop(color)
    p = len(loop)
    out = np.empty((stop - start, 2), dtype=np.float32)
    gain = np.float32(LAYER_RMS * volume)
    pos = start
    while pos < stop:
        offset = pos % p
        take = min(p - offset, stop - pos)
        np.multiply(loop[offset : offset + take], gain, out=out[pos - start : pos - start + take])
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

_UNITY_SAMPLES = 1 << 18
_UNITY = np.ones(_UNITY_SAMPLES, dtype=np.float32)
_UNITY.flags.writeable = False


def _ones(n: int) -> np.ndarray:
    if n <= _UNITY_SAMPLES:
        return _UNITY[:n]
    g = np.ones(n, dtype=np.float32)
    g.flags.writeable = False
    return g


def is_unity(gain: np.ndarray) -> bool:
    """True if `gain` is a gain that `fade_gain` or `duck_gain` returned as all ones.

    A cheap identity check (no scan of the samples), so a mixer can skip multiplying by 1.0. A
    False answer says nothing: the gain may still be all ones.
    """
    return gain is _UNITY or gain.base is _UNITY


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
        float32 (stop - start,), read-only (a block at full level is a shared array of ones:
        see `is_unity`).
    """
    n_samples = max(0, stop - start)
    # Where the gain is exactly 1: past the fade in, up to the last sample before the fade out.
    full_lo = max(0, fade_in_samples)
    full_hi = total_samples - max(0, fade_out_samples)  # exclusive
    if full_lo <= start and stop <= full_hi:
        return _ones(n_samples)
    g = np.ones(n_samples, dtype=np.float32)
    # Only the samples outside the full-level stretch need the formula.
    for lo, hi in ((start, min(stop, full_lo)), (max(start, full_hi), stop)):
        if lo >= hi:
            continue
        n = np.arange(lo, hi, dtype=np.float64)
        part = np.ones(len(n))
        if fade_in_samples > 0:
            x = np.clip(n / fade_in_samples, 0.0, 1.0)
            part *= np.sin(0.5 * np.pi * x) ** 2
        if fade_out_samples > 0:
            x = np.clip((total_samples - 1 - n) / fade_out_samples, 0.0, 1.0)
            part *= np.sin(0.5 * np.pi * x) ** 2
        part[(n < 0) | (n >= total_samples)] = 0.0
        g[lo - start : hi - start] = part
    g.flags.writeable = False
    return g


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
        float32 (stop - start,), read-only (a block with no interval within reach is a shared
        array of ones: see `is_unity`).
    """
    n = max(0, stop - start)
    if n == 0 or depth == 0 or not intervals:
        return _ones(n)
    r = max(0, int(ramp_samples))
    starts, ends = _merged_intervals(intervals, r)
    # Merged groups with their ramps are disjoint and sorted: bisect to the ones touching the block.
    i0 = int(np.searchsorted(ends, start - r, "right"))
    i1 = int(np.searchsorted(starts, stop + r, "left"))
    if i0 >= i1:
        return _ones(n)
    g = np.ones(n, dtype=np.float32)
    low = np.float32(1.0 - depth * 1.0)
    down = up = None
    for s, e in zip(starts[i0:i1].tolist(), ends[i0:i1].tolist(), strict=True):
        lo, hi = max(start, s - r), min(stop, e + r)
        a, b = max(lo, s), min(hi, e)
        if a < b:
            g[a - start : b - start] = low
        if lo < min(hi, s):  # the ramp down (only when r > 0)
            down = _duck_ramps(float(depth), r)[0] if down is None else down
            g[lo - start : min(hi, s) - start] = down[lo - (s - r) : min(hi, s) - (s - r)]
        if max(lo, e) < hi:  # the ramp up
            up = _duck_ramps(float(depth), r)[1] if up is None else up
            g[max(lo, e) - start : hi - start] = up[max(lo, e) - e : hi - e]
    g.flags.writeable = False
    return g


@functools.lru_cache(maxsize=8)
def _duck_ramps(depth: float, r: int) -> tuple[np.ndarray, np.ndarray]:
    """The ducking gain down over the `r` samples before speech and up over the `r` after it:
    every ramp is the same, made once (float32, as `duck_gain` stores it)."""
    j = np.arange(r, dtype=np.float64)
    down = (1.0 - depth * np.sin(0.5 * np.pi * j / r) ** 2).astype(np.float32)
    up = (1.0 - depth * np.cos(0.5 * np.pi * j / r) ** 2).astype(np.float32)
    down.flags.writeable = False
    up.flags.writeable = False
    return down, up
