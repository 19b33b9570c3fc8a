"""Loudness measurement, ITU-R BS.1770-4, streaming: feed blocks, read integrated LUFS.

Entry point: `Meter(sample_rate)`; `meter.feed(block)` with float blocks shaped (n, channels);
`meter.integrated_lufs()`; `meter.peak` (largest absolute sample seen). A signal measured in
pieces: each piece's `meter.step_energies`, joined in order, into `gated_lufs(steps)`.

Written here rather than taken from pyloudnorm because the renderer measures a whole session without
holding it in memory: pyloudnorm needs the full signal as one array. The tests check this meter
against pyloudnorm on the same audio (within 0.3 LU: pyloudnorm's filters are not pre-warped, so at
44.1 kHz it reads about 0.2 LU lower than the 48 kHz reference) and against BS.1770's sine.
"""

from __future__ import annotations

import functools
import importlib
import math
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0


def k_weighting(sample_rate: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The two biquads of the K-weighting filter (high shelf, then high pass) at `sample_rate`.

    Derived from the filters' analog parameters with a pre-warped bilinear transform (as
    libebur128 does), so the response matches BS.1770's 48 kHz coefficients at any rate: a full
    scale 997 Hz sine in one channel reads -3.01 LUFS at 44.1 kHz too.
    """
    # Stage 1: high shelf, +4 dB above ~1.7 kHz (the head's acoustic effect).
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sample_rate)
    vh = 10 ** (gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = (
        np.array(
            [(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0]
        ),
        np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]),
    )
    # Stage 2: high pass at ~38 Hz (RLB weighting).
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sample_rate)
    a0 = 1 + k / q + k * k
    highpass = (
        np.array([1.0, -2.0, 1.0]),
        np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]),
    )
    return shelf, highpass


@functools.lru_cache(maxsize=4)
def _sos(sample_rate: int) -> np.ndarray:
    """The K-weighting as second-order sections (b0 b1 b2 a0 a1 a2 per row), made once per rate
    (the loudness measure weighs thousands of short stretches). Shared: read, never written (the
    filter kernel takes it as a writable buffer, so it is not marked read-only)."""
    return np.array([np.concatenate(stage) for stage in k_weighting(sample_rate)])


def _biquads_reference(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Direct-form-II-transposed cascade, sample by sample: the check for `_filter_in_place`."""
    y = np.array(x, dtype=np.float64)
    for b0, b1, b2, _, a1, a2 in sos:
        s1 = s2 = 0.0
        for i, v in enumerate(y):
            out = b0 * v + s1
            s1 = b1 * v - a1 * out + s2
            s2 = b2 * v - a2 * out
            y[i] = out
    return y


_FILTER_LOCK = threading.Lock()
_FILTER: list = []


def _filter_in_place() -> Callable[[np.ndarray, np.ndarray, np.ndarray], None]:
    """`f(sos, rows, state)`: filter C-contiguous float64 rows (n_rows, n) in place.

    `state` is (n_rows, n_sections, 2), updated in place. This is scipy's own second-order-section
    kernel. Importing `scipy.signal` costs ~1 s and ~50 MB (it pulls in scipy.stats and linalg), so
    the kernel's extension module is loaded on its own when possible, checked against a reference
    on an impulse, and the public `scipy.signal.sosfilt` is used when anything about that differs.

    Loaded once, under a lock: the loading briefly puts a stand-in `scipy.signal` in
    `sys.modules`, and threads that load it at once (a player weighing clips while it measures
    the background) would take each other's stand-in away.
    """
    if not _FILTER:
        with _FILTER_LOCK:
            if not _FILTER:
                _FILTER.append(_load_filter())
    return _FILTER[0]


def _load_filter() -> Callable[[np.ndarray, np.ndarray, np.ndarray], None]:
    try:
        if "scipy.signal" not in sys.modules:
            import scipy

            folder = Path(scipy.__file__).parent / "signal"
            stub = types.ModuleType("scipy.signal")
            stub.__path__ = [str(folder)]
            sys.modules["scipy.signal"] = stub  # the package without its __init__
            try:
                kernel = importlib.import_module("scipy.signal._sosfilt")._sosfilt
            finally:
                del sys.modules["scipy.signal"]
                sys.modules.pop("scipy.signal._sosfilt", None)
            sos = np.array([np.r_[b, a] for b, a in k_weighting(44100)])
            unit = np.zeros(64)
            unit[0] = 1.0
            rows = unit[None, :].copy()
            kernel(sos, rows, np.zeros((1, len(sos), 2)))
            if np.allclose(rows[0], _biquads_reference(sos, unit), rtol=1e-12, atol=1e-15):
                return kernel
    except (ImportError, AttributeError, TypeError, ValueError, OSError):
        pass
    from scipy.signal import sosfilt

    def public(sos, rows, state):
        out, zi = sosfilt(sos, rows, axis=-1, zi=np.moveaxis(state, 1, 0))
        rows[...] = out
        state[...] = np.moveaxis(zi, 0, 1)

    return public


class Meter:
    """Integrated loudness (gated, BS.1770-4) of a stream of blocks, in constant memory per hour.

    Mean squares are kept per 100 ms step (36,000 floats an hour); the 400 ms gating blocks with
    75 % overlap are built from four consecutive steps at the end.
    """

    def __init__(self, sample_rate: int, channels: int = 2):
        self.sample_rate = sample_rate
        self.channels = channels
        # Both stages as second-order sections, run along contiguous channel rows: an order of
        # magnitude faster than filtering the interleaved (n, channels) layout.
        self._sos = _sos(sample_rate)
        self._state = np.zeros((channels, len(self._sos), 2))  # zero: the stream starts silent
        self._step = sample_rate // 10  # 100 ms
        self._partial = 0.0  # sum over channels of squares in the unfinished 100 ms step
        self._partial_n = 0  # samples in it
        self._step_energy: list[float] = []  # sum over channels of mean squares per 100 ms
        self.peak = 0.0

    def feed(self, block: np.ndarray) -> None:
        block = np.asarray(block)
        if block.ndim == 1:
            block = block[:, None]
        if block.shape[0] == 0:
            return
        self.peak = max(self.peak, float(np.max(np.abs(block))))
        weighted = np.array(block.T, dtype=np.float64, order="C")  # a copy: filtered in place
        _filter_in_place()(self._sos, weighted, self._state)
        squares = np.square(weighted, out=weighted).sum(axis=0)  # channels summed, per sample
        at = min(self._step - self._partial_n, len(squares))
        self._partial += float(squares[:at].sum())
        self._partial_n += at
        if self._partial_n < self._step:
            return
        self._step_energy.append(self._partial / self._step)
        rest = squares[at:]
        whole = (len(rest) // self._step) * self._step
        if whole:
            steps = rest[:whole].reshape(-1, self._step).mean(axis=1)
            self._step_energy.extend(steps.tolist())
        self._partial = float(rest[whole:].sum())
        self._partial_n = len(rest) - whole

    def restart_steps(self) -> None:
        """Forget the steps measured so far but keep the filters' state (after a pre-roll).

        Call it on a step boundary (after a whole number of 100 ms steps).
        """
        if self._partial_n:
            raise ValueError("restart_steps() between 100 ms steps only")
        self._step_energy = []

    @property
    def step_energies(self) -> list[float]:
        """Sum over channels of the mean squares of every complete 100 ms step so far."""
        return list(self._step_energy)

    def integrated_lufs(self) -> float:
        """Gated integrated loudness in LUFS; -inf for silence (or less than 400 ms of audio)."""
        return gated_lufs(self._step_energy)


def k_weighted(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """The K-weighted signal, filters from rest: float64 rows (channels, n), C-contiguous.

    `signal` is (n,) or (n, channels)."""
    rows = np.array(np.asarray(signal).reshape(len(signal), -1).T, dtype=np.float64, order="C")
    sos = _sos(sample_rate)
    state = np.zeros((rows.shape[0], len(sos), 2))
    _filter_in_place()(sos, rows, state)
    return rows


def k_weighted_squares(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """Per sample, the sum over channels of the K-weighted signal squared (filters from rest).

    `signal` is (n,) or (n, channels); the result is float64 (n,). Its mean over a 100 ms step is
    that step's energy as `Meter` reads it (when the filters start from rest there).
    """
    rows = k_weighted(signal, sample_rate)
    return np.square(rows, out=rows).sum(axis=0)


ENERGY_HOP = 44  # samples between the points of an `energy_profile` (1 ms)


def energy_profile(signal: np.ndarray, sample_rate: int, hop: int = ENERGY_HOP) -> np.ndarray:
    """The cumulative K-weighted energy of `signal` at samples 0, hop, 2*hop, ... and its end.

    float64 (ceil(n / hop) + 1,): small enough to keep for every clip of a long session, and
    exact at the points (between them `energy_between` interpolates).
    """
    squares = k_weighted_squares(signal, sample_rate)
    cs = np.concatenate([[0.0], np.cumsum(squares)])
    points = np.minimum(np.arange(0, len(squares) + hop, hop), len(squares))
    return cs[points]


def energy_profile_scaled(
    signal: np.ndarray,
    sample_rate: int,
    scale: float,
    hop: int = ENERGY_HOP,
    block: int = 1 << 16,
) -> np.ndarray:
    """`energy_profile(signal * np.float32(scale))`, the same values, in blocks: the memory it
    takes does not grow with the signal's length (a long sound file mapped from the cache)."""
    n = len(signal)
    sos = _sos(sample_rate)
    channels = int(np.prod(np.shape(signal)[1:], dtype=np.int64)) or 1
    state = np.zeros((channels, len(sos), 2))
    points = np.minimum(np.arange(0, n + hop, hop), n)
    out = np.empty(len(points))
    out[0] = 0.0
    running = 0.0
    filled = 1  # points found so far (point 0 is 0)
    block -= block % hop  # blocks start on the profile's points
    for start in range(0, n, block):
        part = np.asarray(signal[start : start + block]) * np.float32(scale)
        rows = np.array(part.reshape(len(part), -1).T, dtype=np.float64, order="C")
        _filter_in_place()(sos, rows, state)
        squares = np.square(rows, out=rows).sum(axis=0)
        # One running sum from the start, as np.cumsum over the whole signal adds them.
        cs = np.cumsum(np.concatenate([[running], squares]))
        running = float(cs[-1])
        end = start + len(part)
        stop = int(np.searchsorted(points, end, side="right"))
        out[filled:stop] = cs[points[filled:stop] - start]
        filled = stop
    return out


def energy_between(profile: np.ndarray, length: int, edges: np.ndarray, hop: int = ENERGY_HOP):
    """Cumulative energy of a signal with `profile` (`energy_profile`, `length` samples) at the
    sample positions `edges`, the signal repeating end to end past its length."""
    edges = np.asarray(edges, dtype=np.int64)
    if length <= 0 or len(profile) < 2:
        return np.zeros(len(edges))
    whole, rest = np.divmod(edges, length)
    i = np.minimum(rest // hop, len(profile) - 2)  # the profile's points around each position
    lo = i * hop
    span = np.maximum(np.minimum(lo + hop, length) - lo, 1)
    below = profile[i]
    return whole * profile[-1] + below + (profile[i + 1] - below) * ((rest - lo) / span)


def gated_lufs(step_energies) -> float:
    """Gated integrated loudness (LUFS) from consecutive 100 ms step energies (`Meter`'s)."""
    steps = np.asarray(step_energies, dtype=np.float64)
    if len(steps) < 4:
        return -math.inf
    return gated_lufs_of_blocks((steps[:-3] + steps[1:-2] + steps[2:-1] + steps[3:]) / 4)


def gated_lufs_of_blocks(block_energies) -> float:
    """Gated loudness (LUFS) from the mean energies of 400 ms blocks (any selection of them)."""
    blocks = np.asarray(block_energies, dtype=np.float64)
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10 * np.log10(blocks)
    gated = blocks[block_lufs > ABSOLUTE_GATE_LUFS]
    if len(gated) == 0:
        return -math.inf
    relative = -0.691 + 10 * math.log10(gated.mean()) + RELATIVE_GATE_LU
    with np.errstate(divide="ignore"):
        gated_lufs = -0.691 + 10 * np.log10(gated)
    final = gated[gated_lufs > relative]
    if len(final) == 0:
        return -math.inf
    return -0.691 + 10 * math.log10(final.mean())


def integrated_lufs(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness of a whole signal (n,) or (n, channels)."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim == 1:
        audio = audio[:, None]
    meter = Meter(sample_rate, audio.shape[1])
    meter.feed(audio)
    return meter.integrated_lufs()
