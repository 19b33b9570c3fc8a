"""The render stage: a `Timeline` and its sources -> fixed-size stereo float32 PCM blocks.

Entry points:

- `blocks(timeline, sources, start_sample=0, block_samples=BLOCK_SAMPLES, gain=1.0,
  ceiling_dbtp=LIMIT_DBTP)`: a generator of float32 arrays shaped (n, 2), every one
  `block_samples` long but the last, from any start sample to the end. Live playback and export
  both consume it (one render path). The loudness gain is `gain`'s (its own edge module).
- `lossy_ceiling(quality) -> float`: the lower ceiling an MP3 or OGG encoder is given.
- `final_until(partial) -> int`: how far a `timeline.Partial` already renders as the complete
  session will.
- `to_int16(block)`: the one float -> 16-bit conversion, shared by the player and the exporter.

Every sample is a pure function of its index: speech clips and chimes are placed at integer
samples, and background generators are random access (see `synth`). So the output does not depend
on the block size or the start position, and the same session and voice render the same bytes.

Mix, per block: speech (mono, centred) + chimes + the breathing guide tone + the background layers,
each layer shaped by its fades and ducked under speech with smooth ramps; then the loudness gain;
then a true-peak limiter that keeps the 4x-oversampled signal under `LIMIT_DBTP` (`limit`: a
look-ahead limiter without state, so it keeps every sample a function of its index).
"""

from __future__ import annotations

import bisect
import itertools
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audio_engine import synth
from audio_engine.model import SoundFile, Utterance
from audio_engine.timeline import CHIME, SPEECH, TONE, Timeline

BLOCK_SAMPLES = 16384
TRUE_PEAK_DBTP = -1.0  # the promise: no file reads higher on a true-peak meter
LIMIT_DBTP = -1.2  # what the limiter holds its own 4x reading to (room for other meters)
DUCK_RAMP_S = 0.25

# The true-peak limiter (see `limit`): 4x oversampling by a 16-tap-per-phase Kaiser-windowed
# sinc (beta 8; flat to 15 kHz), phases at 1/4, 1/2 and 3/4 of a sample (the samples themselves
# are the fourth). Coefficients written out so that no CPU's sin or exp enters them.
_QUARTER = (
    -0.00048527735180304513, 0.002281606008485075, -0.006969168193591431, 0.017004801029672785,
    -0.03640580899426267, 0.07399389683567138, -0.16426348677947128, 0.897048995760828,
    0.2903844101347005, -0.10731958646977413, 0.051934270296060216, -0.025173997938088395,
    0.011119479021164563, -0.004134832482144661, 0.0011378611821670844, -0.00015316205961397726,
)  # fmt: skip
_HALF = (
    -0.00040742461260341096, 0.0023134312537471517, -0.007650904232903501, 0.019536803083894275,
    -0.04291323601276519, 0.08759559042989884, -0.18585303666839503, 0.6273787767591269,
    0.6273787767591269, -0.18585303666839503, 0.08759559042989884, -0.04291323601276519,
    0.019536803083894275, -0.007650904232903501, 0.0023134312537471517, -0.00040742461260341096,
)  # fmt: skip
_PHASES = np.array([_QUARTER, _HALF, _QUARTER[::-1]])  # output k + p/4 from x[k-7 .. k+8]
_TAPS = _PHASES.shape[1]
_LIMIT_CHUNK = 512  # the interpolator runs on the stretches of this many samples that need it
# No oversampled value exceeds the largest sample near it times this (the phases' largest sum
# of absolute taps): where every sample is under ceiling / LIMIT_OVERSHOOT the limiter does nothing.
LIMIT_OVERSHOOT = float(np.abs(_PHASES).sum(axis=1).max())
LIMIT_SMOOTH = 64  # the gain is smoothed by two moving averages of 2 * 64 + 1 samples
LIMIT_ATTACK = 2 * LIMIT_SMOOTH + _TAPS  # held down this long before a peak (3.3 ms) ...
LIMIT_RELEASE = 882  # ... and this long after it (20 ms), then back up over 5.8 ms
# Output sample n depends on the gained mix from n - LIMIT_BEHIND to n + LIMIT_AHEAD.
LIMIT_AHEAD = LIMIT_ATTACK + 2 * LIMIT_SMOOTH + _TAPS // 2
LIMIT_BEHIND = LIMIT_RELEASE + 2 * LIMIT_SMOOTH + _TAPS // 2
_UNIT = 1 << 24  # gains are counted in 2^-24 steps: exact integer sums, whatever the block


@dataclass(frozen=True)
class Sources:
    """The audio the timeline refers to: speech clips by utterance, sound files by path.

    Both are float32 at the engine rate: speech mono (n,), sound files stereo (n, 2). The speech
    mapping may be lazy (the player's synthesizer blocks until a clip is ready).
    """

    speech: Mapping[Utterance, np.ndarray] = field(default_factory=dict)
    sounds: Mapping[Path, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Mix:
    """Listener settings applied in the mix (the player changes them; export uses the defaults)."""

    background_gain: float = 1.0


def blocks(
    timeline: Timeline,
    sources: Sources,
    start_sample: int = 0,
    block_samples: int = BLOCK_SAMPLES,
    gain: float = 1.0,
    mix: Mix = Mix(),  # noqa: B008 - frozen value
    stop_sample: int | None = None,
    ceiling_dbtp: float = LIMIT_DBTP,
) -> Iterator[np.ndarray]:
    """Yield the session from `start_sample` to the end as (n, 2) float32 blocks, each a new
    array the caller owns (changing it changes nothing after it). The mix is made a few blocks
    ahead in a thread when there are more than a couple of blocks.

    Parameters
    ----------
    timeline : the compiled session.
    sources : the speech clips and sound files it refers to.
    start_sample : where to begin (a chapter start, a seek position); 0 is the beginning.
    block_samples : frames per block (every block but the last has exactly this many).
    gain : linear gain for the loudness target (`gain.measure_gain`, `pipeline.gain`).
    mix : listener settings (background level).
    stop_sample : where to end (default: the end of the session).
    ceiling_dbtp : the true-peak limiter's ceiling (lower for lossy encoders: `lossy_ceiling`).

    Example
    -------
    >>> for block in blocks(timeline, sources, start_sample=44100, gain=gain):
    ...     sink.write(block)
    """
    total = timeline.total_samples
    stop = total if stop_sample is None else min(stop_sample, total)
    start = max(0, int(start_sample))
    if block_samples <= 0:
        raise ValueError("block_samples must be positive")
    if start >= stop:
        return
    ceiling = 10 ** (ceiling_dbtp / 20)
    threshold = ceiling / LIMIT_OVERSHOOT
    # The limiter reads the gained mix around each block: rendered from LIMIT_BEHIND before the
    # start to LIMIT_AHEAD past the stop (silence outside the session), in pieces that match the
    # blocks, so that a block the limiter leaves alone is its piece as it is.
    lo, hi = max(0, start - LIMIT_BEHIND), min(total, stop + LIMIT_AHEAD)
    edges = [*range(start, stop, block_samples), stop]
    spans = [(lo, start), *zip(edges[:-1], edges[1:], strict=True), (stop, hi)]
    pieces = _gained_pieces(
        Mixer(timeline, sources, mix), [s for s in spans if s[1] > s[0]], np.float32(gain)
    )
    try:
        held: list[tuple[int, np.ndarray]] = []  # (first sample, gained mix), in order
        held_to = lo
        for position, end in zip(edges[:-1], edges[1:], strict=True):
            keep, reach = max(lo, position - LIMIT_BEHIND), min(hi, end + LIMIT_AHEAD)
            while held_to < reach:
                piece = next(pieces)
                held.append((held_to, piece))
                held_to += len(piece)
            held = [(a, x) for a, x in held if a + len(x) > keep]
            near = [x[max(0, keep - a) : reach - a] for a, x in held]
            if _quiet(near, threshold):
                whole = [x for a, x in held if a == position and len(x) == end - position]
                out = whole[0] if whole else _joined(held, position, end)
            else:
                out = _limit_window(np.concatenate(near), keep, position, end, ceiling)
            # What later blocks read of this one is kept apart: the caller owns `out`.
            after = max(lo, end - LIMIT_BEHIND)
            held = [
                (max(a, after), x[max(0, after - a) :].copy() if a < after or x is out else x)
                for a, x in held
                if a + len(x) > after
            ]
            yield out
    finally:
        pieces.close()


def _quiet(parts, threshold: float) -> bool:
    """True if no sample of `parts` is over `threshold` in size (the limiter has nothing to do)."""
    for part in parts:  # (written so that a NaN counts as loud, as it always has)
        if len(part) and not max(float(part.max()), -float(part.min())) <= threshold:
            return False
    return True


def _joined(held, start: int, stop: int) -> np.ndarray:
    return np.concatenate([x[max(0, start - a) : max(0, stop - a)] for a, x in held])


MIXING_THREADS = 1  # threads that mix pieces ahead of the limiter (a second one gained nothing)
_AHEAD_PIECES = 3  # pieces asked for before they are read


def _gained_pieces(mixer, spans, gain: np.float32) -> Iterator[np.ndarray]:
    """The mix of each [a, b) of `spans` times `gain`, in order. With more than a few spans they
    are mixed ahead in threads (numpy and BLAS let go of the interpreter while they work), so
    the limiter and whatever consumes the blocks run beside the mixing: the same samples."""

    def make(a: int, b: int) -> np.ndarray:
        piece = mixer(a, b)  # a new array
        piece *= gain
        return piece

    if len(spans) <= 4 or MIXING_THREADS < 1:
        for a, b in spans:
            yield make(a, b)
        return
    todo = iter(spans)
    pool = ThreadPoolExecutor(MIXING_THREADS, thread_name_prefix="relax-mix")
    pending: deque = deque()
    try:
        for a, b in itertools.islice(todo, _AHEAD_PIECES):
            pending.append(pool.submit(make, a, b))
        while pending:
            piece = pending.popleft().result()
            for a, b in itertools.islice(todo, 1):
                pending.append(pool.submit(make, a, b))
            yield piece
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)


DEFAULT_LOSSY_QUALITY = 5.0  # an MP3 or OGG file's quality unless another is asked for


def lossy_ceiling(quality: float) -> float:
    """The limiter's ceiling (dBTP) for what an MP3 or OGG encoder is given at `quality` (0-10).

    A lossy encoder's output overshoots the peaks it was given, the more so the lower its
    quality (measured: up to ~0.6 dB at 5, ~2 dB at 0 on pure tones), so what it is given must
    stay that much lower for the decoded file to stay under `TRUE_PEAK_DBTP`: 1.5 dB lower at
    quality 5 and above, and 0.4 dB more per step below.
    """
    return LIMIT_DBTP - (1.5 + 0.4 * max(0.0, 5.0 - quality))


def final_until(partial) -> int:
    """The first sample that may still change as a `timeline.Partial` gets its missing clips.

    Everything before it renders exactly as it will from the complete timeline: it lies before
    the reach of the first unknown clip (its ducking ramp, which can join the ramp of the line
    before it: two ramps) and before the latest the background's fade out can begin.
    """
    tl = partial.timeline
    if partial.complete:
        return tl.total_samples
    ramp = int(DUCK_RAMP_S * tl.sample_rate)
    fade_out = max((int(layer.fade_out_s * tl.sample_rate) for layer in tl.background), default=0)
    until = min(partial.first_unknown - 2 * ramp - 1, partial.total_at_least - fade_out - 1)
    return max(0, until - LIMIT_AHEAD)  # the limiter looks that far ahead


def envelope_at(points, total, fade_in, fade_out, depth, timeline, ramp) -> np.ndarray:
    """A layer group's fade x ducking gain at sample positions `points` (`synth`'s formulas)."""
    gain = np.ones_like(points)
    if fade_in > 0:
        gain *= np.sin(0.5 * np.pi * np.clip(points / fade_in, 0.0, 1.0)) ** 2
    if fade_out > 0:
        gain *= np.sin(0.5 * np.pi * np.clip((total - 1 - points) / fade_out, 0.0, 1.0)) ** 2
    if depth > 0 and timeline.speech_intervals and ramp > 0:
        starts, ends = synth._merged_intervals(timeline.speech_intervals, ramp)
        before = np.searchsorted(starts, points, "right") - 1  # the last group begun by then
        duck = np.zeros_like(points)
        has = before >= 0
        s = np.where(has, starts[np.maximum(before, 0)], 0)
        e = np.where(has, ends[np.maximum(before, 0)], 0)
        inside = has & (points < e)
        after = has & (points >= e) & (points < e + ramp)
        duck[inside] = 1.0
        duck[after] = np.cos(0.5 * np.pi * (points[after] - e[after]) / ramp) ** 2
        following = before + 1
        has_next = following < len(starts)
        s = np.where(has_next, starts[np.minimum(following, len(starts) - 1)], 0)
        coming = has_next & (points >= s - ramp) & (points < s)
        duck[coming] = np.maximum(
            duck[coming], np.sin(0.5 * np.pi * (points[coming] - (s[coming] - ramp)) / ramp) ** 2
        )
        gain *= 1.0 - depth * duck
    return gain


def to_int16(block: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] to 16-bit PCM, rounding to nearest (no dither: deterministic).
    A non-finite value is never cast (that gives an undefined integer): NaN is silence, an
    infinity the full scale of its sign."""
    x = np.clip(block, -1.0, 1.0)  # an infinity becomes the full scale; NaN stays
    x *= np.float32(32767.0)
    if np.isnan(x.min(initial=0.0)):  # the least of the samples is NaN if any is
        x[np.isnan(x)] = 0.0
    out = np.empty(x.shape, dtype=np.int16)
    np.rint(x, out=out, casting="unsafe")
    return out


# ---- internals ---------------------------------------------------------------------------------


# The three phases from the pairs of taps around the middle (i, 15 - i): the half phase is
# symmetric, the quarter and three-quarter phases mirror each other: sums s and differences d
# of the pairs give both (quarter = E + O, three-quarter = E - O).
_PAIR_HALF = np.array([_HALF[i] for i in range(_TAPS // 2)], dtype=np.float32)
_PAIR_EVEN = np.array(
    [(_QUARTER[i] + _QUARTER[_TAPS - 1 - i]) / 2 for i in range(_TAPS // 2)], dtype=np.float32
)
_PAIR_ODD = np.array(
    [(_QUARTER[i] - _QUARTER[_TAPS - 1 - i]) / 2 for i in range(_TAPS // 2)], dtype=np.float32
)


def _interpolated_peak(x: np.ndarray, first: int, n: int) -> np.ndarray:
    """The largest absolute interpolated value (at 1/4, 1/2 and 3/4 of a sample) after each of n
    samples of `x` (channels as rows), for the samples whose taps begin at `first`: float32 (n,).
    Element by element in a fixed order: the same bits wherever the stretch falls."""
    pairs = (
        (x[:, first + i : first + i + n], x[:, first + _TAPS - 1 - i : first + _TAPS - 1 - i + n])
        for i in range(_TAPS // 2)
    )
    return _peak_of_taps(x.shape[0], n, pairs)


_SPARSE = 4  # candidates under 1 in this many samples are interpolated one by one
_GATHER = 4096  # ... gathered this many at a time (their taps: 0.5 MiB)


def _interpolated_peak_at(x: np.ndarray, at: np.ndarray) -> np.ndarray:
    """`_interpolated_peak` after each sample k of `at` (each at least `_TAPS` // 2 from the
    edges): the same arithmetic, value by value, on the taps gathered around each k."""
    if len(at) > _GATHER:  # a bounded gather: the same values, piece by piece
        return np.concatenate(
            [_interpolated_peak_at(x, at[i : i + _GATHER]) for i in range(0, len(at), _GATHER)]
        )
    rows, n = x.shape[0], len(at)
    half = _TAPS // 2
    first = at - (half - 1)  # k's values read x[k - half + 1 .. k + half]
    # Every tap of every k in one gather, (rows, _TAPS, n); then each step of `_peak_of_taps`
    # for all the pairs (i, _TAPS - 1 - i) at once, the sums still taken pair by pair in order.
    taps = np.take(x, first + np.arange(_TAPS)[:, None], axis=1)
    a, b = taps[:, :half], taps[:, : half - 1 : -1]
    pair = a + b
    odd = a - b
    even = pair * _PAIR_EVEN[:, None]
    pair *= _PAIR_HALF[:, None]
    odd *= _PAIR_ODD[:, None]
    return _peak_of_terms(rows, n, ((even[:, i], pair[:, i], odd[:, i]) for i in range(half)))


def _peak_of_taps(rows: int, n: int, pairs) -> np.ndarray:
    """The interpolator's largest absolute value over its three points, from `pairs`: for each
    tap i of the first half, the (rows, n) values at tap i and at its mirror `_TAPS - 1 - i`."""
    pair = np.empty((rows, n), dtype=np.float32)
    even, mid, odd = (np.empty((rows, n), dtype=np.float32) for _ in range(3))

    def terms():
        for i, (a, b) in enumerate(pairs):
            np.add(a, b, out=pair)
            np.multiply(pair, _PAIR_EVEN[i], out=even)
            np.multiply(pair, _PAIR_HALF[i], out=mid)
            np.subtract(a, b, out=pair)
            np.multiply(pair, _PAIR_ODD[i], out=odd)
            yield even, mid, odd

    return _peak_of_terms(rows, n, terms())


def _peak_of_terms(rows: int, n: int, terms) -> np.ndarray:
    """`_peak_of_taps` from each pair's three products (with the even, the half and the odd
    phase's coefficient), (rows, n) each: summed in pair order, from 0."""
    even = np.zeros((rows, n), dtype=np.float32)
    odd = np.zeros((rows, n), dtype=np.float32)
    mid = np.zeros((rows, n), dtype=np.float32)
    for even_term, mid_term, odd_term in terms:
        even += even_term
        mid += mid_term
        odd += odd_term
    pair = np.empty((rows, n), dtype=np.float32)
    np.abs(mid, out=mid)
    np.add(even, odd, out=pair)
    np.abs(pair, out=pair)
    np.maximum(mid, pair, out=mid)
    np.subtract(even, odd, out=pair)
    np.abs(pair, out=pair)
    np.maximum(mid, pair, out=mid)
    return mid.max(axis=0)


def _oversampled(x: np.ndarray, loud: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Per sample k of `x` (channels as rows): at the `candidate`s, the largest of |x[k]| and the
    three interpolated values after it, over both channels; elsewhere `loud` (|x| at k), or 0
    within reach of the edges. Computed in slices over the stretches of _LIMIT_CHUNK samples that
    hold a candidate (the same arithmetic, value by value, however the stretches fall)."""
    size = x.shape[1]
    half = _TAPS // 2  # k's interpolated values read x[k - half + 1 .. k + half]
    peak = np.zeros(size, dtype=np.float32)
    chunks = np.flatnonzero(np.add.reduceat(candidate, np.arange(0, size, _LIMIT_CHUNK)))
    if len(chunks):
        breaks = np.flatnonzero(np.diff(chunks) > 1)
        for first_chunk, last_chunk in zip(
            np.r_[chunks[0], chunks[breaks + 1]], np.r_[chunks[breaks], chunks[-1]], strict=True
        ):
            k0 = max(half, first_chunk * _LIMIT_CHUNK)
            k1 = min(size - half, (last_chunk + 1) * _LIMIT_CHUNK)
            top = loud[k0:k1].copy()
            np.maximum(top, _interpolated_peak(x, k0 - half + 1, k1 - k0), out=top)
            peak[k0:k1] = top
    return peak


def true_peaks(x: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(at, peak): the samples k of `x` (float32, channels as rows) within reach of one over
    `threshold` in size (each at least `_TAPS` // 2 from the edges), and at each the largest of
    |x[k]| and the three interpolated values after it, over both channels (float32). Every k
    whose true peak is over `threshold` * `LIMIT_OVERSHOOT` is among them."""
    size = x.shape[1]
    half = _TAPS // 2  # k's interpolated values read x[k - half + 1 .. k + half]
    loud = np.abs(x[0])
    np.maximum(loud, np.abs(x[1]), out=loud)
    # reach[j]: a loud sample in [j, j + _TAPS), by doubling (1, 2, 4, 8 ... wide).
    reach = loud > threshold
    width = 1
    while width < 2 * half:
        shift = min(width, 2 * half - width)
        reach[:-shift] |= reach[shift:]
        width += shift
    candidate = np.zeros(size, dtype=bool)  # a loud sample within reach of k's values
    candidate[half : size - half] = reach[1 : size - 2 * half + 1]
    at = np.flatnonzero(candidate)
    if len(at) * _SPARSE < size:  # few: the candidates' own taps
        peak = np.maximum(loud[at], _interpolated_peak_at(x, at))
    else:  # many: the stretches that hold them, whole
        peak = _oversampled(x, loud, candidate)[at]
    return at, peak


def limit(mixed: np.ndarray, mixed_from: int, start: int, stop: int, ceiling: float):
    """Samples [start, stop) of the gained mix `mixed` (which holds [mixed_from, ...): at least
    `LIMIT_BEHIND` before `start` and `LIMIT_AHEAD` past `stop` where the session has them),
    under the true-peak ceiling.

    A look-ahead limiter with no state: each output sample is a function of the input around it
    only, in exact steps, so it does not depend on the blocks or where rendering began.

    1. The true peak around each sample k: the largest of its own value and the three values
       between it and the next that a 4x oversampling interpolator gives (BS.1770-4 annex 2),
       over both channels. Where it is over the ceiling, the gain k needs is ceiling / peak.
    2. The gain at n is the least that any sample from `LIMIT_ATTACK` after it to
       `LIMIT_RELEASE` before it needs (so the gain is down before a peak and held after it;
       counted in integer steps of 2^-24, rounded down),
    3. smoothed by two moving averages of 2 * `LIMIT_SMOOTH` + 1 samples (integer sums): shorter
       than the holds, so every sample still gets at most the gain its own peak needs, and the
       gain moves as a smooth S-curve rather than clipping a peak's shape: no flat tops.

    The gain is the same on both channels (the stereo image stays). Where no sample near the
    block is over ceiling / `LIMIT_OVERSHOOT` nothing is computed: the samples pass as they are.
    """
    lo, hi = start - LIMIT_BEHIND, stop + LIMIT_AHEAD
    near = mixed[max(0, lo - mixed_from) : max(0, hi - mixed_from)]
    if _quiet([near], ceiling / LIMIT_OVERSHOOT):
        return mixed[start - mixed_from : stop - mixed_from].copy()
    return _limit_window(mixed, mixed_from, start, stop, ceiling)


def _limit_window(mixed: np.ndarray, mixed_from: int, start: int, stop: int, ceiling: float):
    """`limit` past its first test (some sample near the block may need turning down)."""
    n = len(mixed)
    here = mixed[start - mixed_from : stop - mixed_from]
    lo, hi = start - LIMIT_BEHIND, stop + LIMIT_AHEAD
    threshold = ceiling / LIMIT_OVERSHOOT
    # The window [lo, hi), silence where the session has no samples; channels as rows.
    size = hi - lo
    x = np.empty((2, size), dtype=np.float32)
    a = max(lo, mixed_from)
    b = min(hi, mixed_from + n)
    x[:, : a - lo] = 0.0
    x[:, a - lo : b - lo] = mixed[a - mixed_from : b - mixed_from].T
    x[:, b - lo :] = 0.0
    at, peak = true_peaks(x, threshold)
    return limit_peaks(here, start, stop, at + lo, peak, ceiling)


def limit_peaks(here, start: int, stop: int, at: np.ndarray, peak: np.ndarray, ceiling: float):
    """The limiter's second half: samples [start, stop) of the gained mix (`here`) turned down
    where the true peaks `peak` at the session's samples `at` (ascending; `true_peaks`, every
    one from `LIMIT_BEHIND` before `start` to `LIMIT_AHEAD` after `stop` that may be over)
    need it. Any others are left out of account."""
    hit = peak > ceiling
    over = at[hit]
    if not len(over):
        return here.copy()
    # Only [n0, n1) can be turned down: the reach of the first and the last sample over.
    n0 = max(start, int(over[0]) - LIMIT_ATTACK - 2 * LIMIT_SMOOTH)
    n1 = min(stop, int(over[-1]) + LIMIT_RELEASE + 2 * LIMIT_SMOOTH + 1)
    out = here.copy()
    if n0 >= n1:
        return out
    # The least over [m - LIMIT_RELEASE, m + LIMIT_ATTACK] of what each sample needs, for m from
    # n0 - 2 * smooth to n1 + 2 * smooth, by van Herk/Gil-Werman (prefix and suffix minima in
    # window-long runs).
    width = LIMIT_RELEASE + LIMIT_ATTACK + 1
    first = n0 - 2 * LIMIT_SMOOTH - LIMIT_RELEASE  # the window of the first m
    runs = -(-((n1 - n0) + 4 * LIMIT_SMOOTH + width - 1) // width)
    padded = np.full(runs * width, _UNIT, dtype=np.int64)
    a, b = np.searchsorted(over, [first, first + (n1 - n0) + 4 * LIMIT_SMOOTH + width - 1])
    need = ceiling / peak[hit][a:b].astype(np.float64) * _UNIT
    padded[over[a:b] - first] = np.floor(need).astype(np.int64)
    cells = padded.reshape(runs, width)
    ahead = np.minimum.accumulate(cells, axis=1).ravel()
    behind = np.minimum.accumulate(cells[:, ::-1], axis=1)[:, ::-1].ravel()
    m = np.arange((n1 - n0) + 4 * LIMIT_SMOOTH)
    held = np.minimum(behind[m], ahead[m + width - 1])
    for _ in range(2):  # two moving averages, as integer sums
        sums = np.concatenate([[0], np.cumsum(held)])
        held = sums[2 * LIMIT_SMOOTH + 1 :] - sums[: -2 * LIMIT_SMOOTH - 1]
    full = (2 * LIMIT_SMOOTH + 1) ** 2 * _UNIT
    down = np.flatnonzero(held < full)
    part = out[n0 - start : n1 - start]
    part[down] = (part[down] * (held[down] / full)[:, None]).astype(np.float32)
    return out


class _EventIndex:
    """Finds the events overlapping a block.

    Speech and chimes are short: found by bisecting their starts back by the longest of them. A
    guide tone spans a whole breathe step (minutes), so tones are kept apart, or one long step
    would make every block scan everything that started during it. Events come back in timeline
    order (the order they are mixed in).
    """

    def __init__(self, timeline: Timeline):
        events = [e for e in timeline.events if e.kind in (SPEECH, CHIME, TONE)]
        self.short = [(i, e) for i, e in enumerate(events) if e.kind != TONE]
        self.tones = [(i, e) for i, e in enumerate(events) if e.kind == TONE]
        self.starts = [e.start_sample for _, e in self.short]
        self.longest = max((e.duration_samples for _, e in self.short), default=0)

    def overlapping(self, start: int, stop: int):
        lo = bisect.bisect_left(self.starts, start - self.longest)
        hi = bisect.bisect_left(self.starts, stop)
        found = [(i, e) for i, e in self.short[lo:hi] if e.end_sample > start]
        found += [(i, e) for i, e in self.tones if e.start_sample < stop and e.end_sample > start]
        return [e for _, e in sorted(found, key=lambda item: item[0])]


class Mixer:
    """The mix of any [start, stop) before the gain and the limiter (what `gain` measures); its
    event index and background made once, for as many ranges as are asked."""

    def __init__(self, timeline: Timeline, sources: Sources, mix: Mix = Mix()):  # noqa: B008
        self.timeline = timeline
        self._sources = sources
        self._index = _EventIndex(timeline)
        self._background = _Background(timeline, sources, mix)

    def __call__(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) (clipped to the session), float32 (n, 2)."""
        start = max(0, int(start))
        stop = max(start, min(stop, self.timeline.total_samples))
        mono = _foreground(self._sources, self._index, start, stop)
        return self._background.under(mono, start, stop)


def mixed_blocks(
    timeline: Timeline,
    sources: Sources,
    start: int,
    stop: int,
    block_samples: int | None = None,
    mix: Mix = Mix(),  # noqa: B008 - frozen value
) -> Iterator[np.ndarray]:
    """The mix of [start, stop) before the gain and the limiter, in blocks of `block_samples`
    (default: one block)."""
    stop = min(stop, timeline.total_samples)
    block_samples = block_samples or max(1, stop - start)
    if block_samples <= 0:
        raise ValueError("block_samples must be positive")
    mixer = Mixer(timeline, sources, mix)
    position = max(0, int(start))
    while position < stop:
        end = min(position + block_samples, stop)
        yield mixer(position, end)
        position = end


def background_groups(timeline: Timeline) -> dict[tuple[int, int, float], list]:
    """The background layers by the envelope they share: (fade in, fade out, duck depth)."""
    background = _Background(timeline, Sources(), Mix())
    groups: dict[tuple[int, int, float], list] = {}
    for layer in background.layers:
        groups.setdefault(background._envelope_key(layer), []).append(layer)
    return groups


def _foreground(sources, index, start, stop) -> np.ndarray:
    """Speech, chimes and the guide tone of [start, stop): mono, centred."""
    mono = np.zeros(stop - start, dtype=np.float32)
    for event in index.overlapping(start, stop):
        a = max(start, event.start_sample)
        b = min(stop, event.end_sample)
        if event.kind == SPEECH:
            clip = sources.speech[event.utterance]
            seg = clip[a - event.start_sample : b - event.start_sample]
        elif event.kind == CHIME:
            clip = synth.chime(event.chime, event.volume)
            seg = clip[a - event.start_sample : b - event.start_sample]
        else:
            seg = synth.guide_tone(
                event.tone.phases,
                event.tone.cycles,
                a - event.start_sample,
                b - event.start_sample,
                event.tone.cycle_lengths,
            )
        mono[a - start : a - start + len(seg)] += seg
    return mono


def _columns(ufunc, stereo: np.ndarray, mono: np.ndarray) -> None:
    """`stereo` (n, 2) op= `mono` (n,) in place, channel by channel: the same values as
    broadcasting `mono[:, None]`, several times faster (numpy's loop would run 2 long)."""
    for channel in (0, 1):
        column = stereo[:, channel]
        ufunc(column, mono, out=column)


class _Background:
    """The background layers, each shaped by its fades and ducked under speech.

    Most blocks lie in the middle of a session, away from speech: there the envelope is exactly 1
    and is skipped (the result is the same, bit for bit, as multiplying by 1).
    """

    def __init__(self, timeline: Timeline, sources: Sources, mix: Mix):
        self.timeline = timeline
        self.sources = sources
        self.gain = np.float32(mix.background_gain)
        self.layers = timeline.background if mix.background_gain > 0 else ()
        self.ramp = int(DUCK_RAMP_S * timeline.sample_rate)
        self.intervals = timeline.speech_intervals
        self.starts = [s for s, _ in self.intervals]
        self.ends = [e for _, e in self.intervals]

    def _near_speech(self, start: int, stop: int) -> bool:
        # Ducking reaches `ramp` samples before each interval and after it.
        i = bisect.bisect_left(self.ends, start - self.ramp)
        return i < len(self.starts) and self.starts[i] - self.ramp < stop

    def under(self, mono: np.ndarray, start: int, stop: int) -> np.ndarray:
        """The block: the background layers with the centred foreground `mono` on top."""
        # Layers with the same fades and ducking share one envelope: summed first, shaped once.
        groups: dict[tuple[int, int, float], np.ndarray] = {}
        for layer in self.layers:
            sound = self._sound(layer, start, stop)  # a new array: changed in place below
            key = self._envelope_key(layer)
            if key in groups:
                groups[key] += sound
            else:
                groups[key] = sound
        total = self.timeline.total_samples
        out = None
        for (fade_in, fade_out, duck_depth), sound in groups.items():
            shape = None
            if start < fade_in or stop > total - 1 - fade_out:
                shape = synth.fade_gain(start, stop, total, fade_in, fade_out)
            if duck_depth > 0 and self._near_speech(start, stop):
                duck = synth.duck_gain(start, stop, self.intervals, duck_depth, self.ramp)
                shape = duck if shape is None else shape * duck
            if shape is not None:  # (times a gain of 1: the same samples)
                _columns(np.multiply, sound, shape if self.gain == 1 else shape * self.gain)
            elif self.gain != 1:
                sound *= self.gain
            if out is None:
                out = sound
            else:
                out += sound
        if out is None:
            out = np.empty((len(mono), 2), dtype=np.float32)
            out[:, 0] = mono
            out[:, 1] = mono
            return out
        _columns(np.add, out, mono)
        return out

    def _envelope_key(self, layer) -> tuple[int, int, float]:
        rate = self.timeline.sample_rate
        return int(layer.fade_in_s * rate), int(layer.fade_out_s * rate), float(layer.duck)

    def _sound(self, layer, start: int, stop: int) -> np.ndarray:
        if isinstance(layer, SoundFile):
            # A file plays at its own level times `volume` (1.0: as recorded).
            sound = synth.sound_block(self.sources.sounds[layer.path], layer.loop, start, stop)
            sound *= np.float32(layer.volume)
            return sound
        return synth.layer_block(layer, start, stop)


def layer_gain_at(timeline: Timeline, layer, points) -> np.ndarray:
    """A background layer's fade x ducking gain at sample positions `points`, the envelope the
    mix applies (1.0 = the layer at its own level); for pictures of a mix (`relax info --plot`)."""
    rate = timeline.sample_rate
    return envelope_at(
        np.asarray(points, dtype=np.float64),
        timeline.total_samples,
        int(layer.fade_in_s * rate),
        int(layer.fade_out_s * rate),
        float(layer.duck),
        timeline,
        int(DUCK_RAMP_S * rate),
    )
