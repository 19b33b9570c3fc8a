"""The loudness gain: the edge between the render stage and the files it is kept in.

Entry points:

- `measure_gains(timeline, sources, ceilings, progress=None, jobs=None) -> {ceiling: gain}`: the
  linear gain that puts what `render.blocks` makes at `TARGET_LUFS`, for each limiter ceiling
  (`render.LIMIT_DBTP` for the player, WAV and FLAC; `render.lossy_ceiling(q)` for MP3 and
  OGG), all from one pass over the session. `measure_gain(...)` for one of them.
- `estimate_gain(timeline, sources, speech_energy=None) -> float`: that gain from the parts,
  without rendering (milliseconds; the player's cold start; the limiter's share left out).
- `layer_level`, `tone_profile`, `tone_cycle_profiles`: the pieces of the estimate, cached.

The measure streams (memory does not grow with session length) and is shared out over the CPUs
in forked processes, a pipe to each, where that is safe (`_map`).
"""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from audio_engine import loudness, render, synth
from audio_engine.model import SAMPLE_RATE, SoundFile
from audio_engine.timeline import CHIME, SPEECH, TONE, Timeline

TARGET_LUFS = -16.0
MEASURE_PIECE_STEPS = 300  # the loudness pass measures the session in 30 s pieces
MEASURE_PREROLL_STEPS = 5  # each piece's filters settle on the 0.5 s before it
MEASURE_BLOCK = 1 << 16  # samples rendered and weighted at once
MEASURE_OVERSHOOT_DB = 3.0  # the limiter's share is looked for in the steps whose largest sample
# is this close to the ceiling: a peak between samples is rarely 1 dB over the samples beside it
# (3 dB only near the Nyquist frequency; the interpolator's bound, `render.LIMIT_OVERSHOOT`, is
# 5.8 dB, which would take in every step of a loud hum); a step missed would move the loudness by
# far less than the tolerance.
# The ceilings measured together whenever one of them is asked: the player's (WAV, FLAC) and MP3
# and OGG files' at the default quality.
STANDARD_CEILINGS = (render.LIMIT_DBTP, render.lossy_ceiling(render.DEFAULT_LOSSY_QUALITY))
# The gains tried at once for each ceiling, in dB above the first pass's (where the limiter
# takes loudness, more gain puts it back), and around a later guess when the target lies past.
CEILING_TRIES_DB = (0.0, 0.25, 0.6)
CEILING_RETRIES_DB = (-0.2, 0.0, 0.2)
CEILING_PREROLL_STEPS = 1  # the weighting settles within 0.1 s, ...
_RING = 512  # ... and what the limiter changes rings out after 12 ms (counted this long: the
# energy it takes is then found to 1e-8 on loud tones, tested)
CEILING_TOLERANCE_LU = 0.01  # the limiter's output is this close to the target (tested)
CEILING_MAX_PASSES = 4  # passes over what the limiter touches, at most
# Where another dB of gain adds less loudness than this (LU), the limiter takes back nearly all
# of it: a target still above is out of the ceiling's reach (a session of loud low hum), and
# the gain stops there rather than push the fades and quiet parts into the limiter too.
CEILING_MIN_SLOPE = 0.05
CEILING_MAX_STEP_DB = 3.0  # a pass goes at most this much further up than the last one tried
_REACH_MARGIN = 0.999  # what may be over the ceiling is looked for with a little to spare
_LIMIT_JOIN = 2048  # stretches the limiter may turn down closer than this are limited together
_LIMITED_CHUNK = 1 << 17  # the second pass takes a hot run this many samples at a time
# Hot runs closer than this many steps are one: the limiter's reach and the ringing of what it
# changes (0.13 s on either side) never reach across.
_RUN_GAP_STEPS = 3


def measure_gain(
    timeline: Timeline,
    sources: render.Sources,
    progress=None,
    jobs: int | None = None,
    ceiling_dbtp: float = render.LIMIT_DBTP,
) -> float:
    """`measure_gains` for one ceiling (the same value as for it among others)."""
    return measure_gains(timeline, sources, (ceiling_dbtp,), progress, jobs)[ceiling_dbtp]


def measure_gains(
    timeline: Timeline,
    sources: render.Sources,
    ceilings: Sequence[float] = (render.LIMIT_DBTP,),
    progress: Callable[[int, int], None] | None = None,
    jobs: int | None = None,
) -> dict[float, float]:
    """Linear gain that brings the session, as `render.blocks` renders it with the limiter at
    each of `ceilings` (dBTP), to `TARGET_LUFS` integrated: {ceiling: gain}.

    First pass: the mix is measured before the gain and the limiter, in 30 s pieces. Each
    piece's K-weighting filters first run over the 0.5 s before it (their state has then settled
    to the last bit), and the pieces' 100 ms steps are joined in order, so the answer is the same
    however the pieces are shared out. That gives the gain for a linear path, and each step's
    largest sample.

    The limiter is not linear: where it turns a peak down it takes a little loudness. A second
    pass goes over the steps where it can act (a sample within `MEASURE_OVERSHOOT_DB`
    of the ceiling, at the gains tried) and finds, for several gains at once
    (`CEILING_TRIES_DB` above the first pass's, for every ceiling), what the limiter takes from
    each step: the K-weighting is linear, so the limiter's output weighs as the mix's weighted
    signal times the gain less the weighted difference the limiter makes, which is zero but
    for the few milliseconds around each peak it turns down (the mix is weighted once; only
    those milliseconds once per gain). The gain is then read off between the two gains tried on
    either side of the target (the loudness is smooth in the gain: within
    `CEILING_TOLERANCE_LU`); when the target lies past them (a session the limiter works hard
    on), the pass is made again around the gain the last two predict (at most
    `CEILING_MAX_STEP_DB` higher), at most `CEILING_MAX_PASSES` times. When another dB adds
    less than `CEILING_MIN_SLOPE` LU below the target, the target is out of the ceiling's
    reach: the gain stops at the highest tried.

    On Linux, when the process has a single thread, `jobs` forked processes (default: the CPU
    count) share the work; otherwise it is done here, one piece after another.
    `progress(done, total)`, if given, is called from the calling thread as pieces finish (the
    first pass counts for three quarters, the rest for the last quarter).
    """
    rate = timeline.sample_rate
    total = timeline.total_samples
    piece = rate // 10 * MEASURE_PIECE_STEPS
    spans = [(a, min(a + piece, total)) for a in range(0, total, piece)]
    jobs = max(1, jobs or os.cpu_count() or 1)
    ceilings = tuple(dict.fromkeys(ceilings))

    def report(fraction: float) -> None:
        if progress is not None:
            progress(int(fraction * total), total)

    preroll = rate // 10 * MEASURE_PREROLL_STEPS
    first = _measure_spans(
        timeline,
        sources,
        spans,
        lambda mixer, a, b: _measure_span(mixer, a, b, preroll),
        jobs,
        lambda f: report(0.75 * f),
    )
    raw = np.concatenate([first[i][0] for i in range(len(spans))] or [[]])
    peaks = np.concatenate([first[i][1] for i in range(len(spans))] or [[]])
    lufs = loudness.gated_lufs(raw)
    if not np.isfinite(lufs):
        report(1.0)
        return dict.fromkeys(ceilings, 1.0)
    first_gain = float(10 ** ((TARGET_LUFS - lufs) / 20))
    # The player's and the default lossy ceiling are corrected together (the hot steps of
    # either measured once); any other alone: a ceiling's gain never depends on what else was
    # asked.
    standard = [c for c in STANDARD_CEILINGS if any(c == asked for asked in ceilings)]
    if standard:
        standard = list(STANDARD_CEILINGS)
    groups = ([standard] if standard else []) + [[c] for c in ceilings if c not in standard]
    gains: dict[float, float] = {}
    for g, group in enumerate(groups):
        share = 0.25 / len(groups)

        def part(f: float, g=g, share=share) -> None:
            report(0.75 + share * (g + f))

        gains.update(_corrected(timeline, sources, raw, peaks, first_gain, group, jobs, part))
    report(1.0)
    return gains


def _corrected(timeline, sources, raw, peaks, first_gain, ceilings, jobs, progress):
    """{ceiling: gain} for `ceilings`, from the first pass's step energies and peaks and its
    gain, corrected for the limiter (see `measure_gains`); `progress(fraction)` follows.
    """
    base = dict.fromkeys(ceilings, first_gain)
    tries = dict.fromkeys(ceilings, CEILING_TRIES_DB)
    gains: dict[float, float] = {}
    active = list(ceilings)
    for n in range(CEILING_MAX_PASSES):
        outputs = [(base[c] * 10 ** (d / 20), c) for c in active for d in tries[c]]
        hot = np.zeros(len(peaks), dtype=bool)
        for gain, c in outputs:
            hot |= peaks * gain > 10 ** ((c - MEASURE_OVERSHOOT_DB) / 20)
        if not hot.any():  # the limiter does nothing at any gain tried: the linear path holds
            for c in active:
                gains[c] = first_gain
            return gains
        steps = _limited_energies(
            timeline,
            sources,
            raw,
            hot,
            outputs,
            jobs,
            lambda f, a=1 - 0.5**n, b=0.5 ** (n + 1): progress(a + b * f),
        )
        levels = [loudness.gated_lufs(s) for s in steps]
        at = 0
        for c in list(active):
            ds = np.asarray(tries[c], dtype=np.float64)
            ls = np.asarray(levels[at : at + len(ds)])
            at += len(ds)
            if not np.all(np.isfinite(ls)):
                gains[c] = base[c]
                active.remove(c)
                continue
            root = _between(ds, ls, TARGET_LUFS)
            if root is not None:
                gains[c] = base[c] * 10 ** (root / 20)
                active.remove(c)
                continue
            # The target lies past the gains tried: go on from the nearer end, by the slope
            # there (1 LU per dB where the limiter does nothing, less where it works).
            k = len(ds) - 1 if ls[-1] < TARGET_LUFS else 0
            j = k - 1 if k else 1
            slope = (ls[k] - ls[j]) / (ds[k] - ds[j]) if ds[k] != ds[j] else 1.0
            if k and slope < CEILING_MIN_SLOPE:  # out of reach: as loud as this ceiling gets
                gains[c] = base[c] * 10 ** (ds[k] / 20)
                active.remove(c)
                continue
            further = (TARGET_LUFS - ls[k]) / min(1.0, max(0.1, slope))
            if k:  # up by small steps: where the slope falls, the target may be out of reach
                further = min(further, CEILING_MAX_STEP_DB)
            base[c] *= 10 ** ((ds[k] + further) / 20)
            tries[c] = CEILING_RETRIES_DB
    for c in active:  # after the last pass: where the last two tries point
        gains[c] = base[c]
    return gains


def _limited_energies(timeline, sources, raw, hot, outputs, jobs, fraction) -> list[np.ndarray]:
    """For each (gain, ceiling dBTP) of `outputs`, the step energies of what `render.blocks`
    makes at that gain and ceiling: the first pass's `raw` energies times the gain squared, and
    what the limiter takes (`_limited_steps`) over the runs of `hot` steps (every step holding
    a sample the limiter can find over the ceiling at any of the gains)."""
    step = timeline.sample_rate // 10
    runs = _hot_runs(hot)
    found = _measure_spans(
        timeline,
        sources,
        [(a * step, b * step) for a, b in runs],
        lambda mixer, a, b: _limited_steps(mixer, a, b, outputs),
        jobs,
        fraction,
    )
    energies = []
    for j, (gain, _) in enumerate(outputs):
        steps = raw * gain**2
        for first_step, deltas in found.values():
            part = deltas[j][: max(0, len(steps) - first_step)]
            steps[first_step : first_step + len(part)] += part
        energies.append(steps)
    return energies


def _between(ds: np.ndarray, ls: np.ndarray, target: float) -> float | None:
    """The gain offset (dB) at which the loudness `ls` measured at offsets `ds` (ascending)
    reaches `target`, by linear interpolation between the two tries around it; None when the
    target is not between two of them."""
    for k in range(1, len(ds)):
        lo, hi = ls[k - 1], ls[k]
        if lo <= target <= hi:
            if hi == lo:
                return float(ds[k - 1])
            return float(ds[k - 1] + (target - lo) * (ds[k] - ds[k - 1]) / (hi - lo))
    return None


def _hot_runs(hot: np.ndarray) -> list[tuple[int, int]]:
    """[a, b) runs of the hot steps, runs fewer than `_RUN_GAP_STEPS` apart joined: what the
    limiter changes around one run, and the weighting's ringing after it, never reach the
    next (each run costs a pre-roll)."""
    at = np.flatnonzero(hot)
    if len(at) == 0:
        return []
    breaks = np.flatnonzero(np.diff(at) > _RUN_GAP_STEPS)
    starts = np.r_[at[0], at[breaks + 1]]
    ends = np.r_[at[breaks], at[-1]] + 1
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def _measure_spans(timeline, sources, spans, how, jobs, fraction):
    """{index: how(mixer, start, stop)} for each [start, stop) span, with a `render.Mixer` of
    the session made once (forked workers inherit it). `fraction(done)` follows."""
    total = sum(b - a for a, b in spans) or 1
    done = 0
    results: dict[int, object] = {}

    lean = getattr(sources.speech, "lean", None)  # `pipeline.ClipStore.lean`
    if lean is not None and jobs > 1 and len(spans) > 1 and _can_fork():
        sources = render.Sources(speech=lean(), sounds=sources.sounds)
    mixer = render.Mixer(timeline, sources)  # made once: the workers inherit it

    def measure(index: int):
        return how(mixer, *spans[index])

    def finished(index: int, values) -> None:
        nonlocal done
        results[index] = values
        done += spans[index][1] - spans[index][0]
        fraction(done / total)

    _map(measure, len(spans), jobs, finished)
    return results


def _measure_span(mixer, start, stop, preroll):
    """(step energies, step peaks) of the raw mix over [start, stop), its filters first run
    over the `preroll` samples before."""
    timeline = mixer.timeline
    rate = timeline.sample_rate
    step = rate // 10
    begin = max(0, start - preroll)
    meter = loudness.Meter(rate, 2)
    # Each step's largest sample, kept as the blocks go (a step can straddle two blocks).
    peaks = np.zeros(-(-(stop - start) // step), dtype=np.float32)
    # The blocks the meter is fed (the pre-roll's, then the span's: the step sums depend on
    # them), rendered up to two blocks' worth at a time (the pre-roll with the first block: one
    # mix fewer for every span; the samples do not depend on it).
    feeds = [(a, min(a + MEASURE_BLOCK, start)) for a in range(begin, start, MEASURE_BLOCK)]
    feeds += [(a, min(a + MEASURE_BLOCK, stop)) for a in range(start, stop, MEASURE_BLOCK)]
    chunks: list[list[tuple[int, int]]] = []
    for a, b in feeds:
        if chunks and b - chunks[-1][0][0] <= 2 * MEASURE_BLOCK:
            chunks[-1].append((a, b))
        else:
            chunks.append([(a, b)])
    for chunk in chunks:
        c0 = chunk[0][0]
        mixed = mixer(c0, chunk[-1][1])
        for a, b in chunk:
            if a == start:
                meter.restart_steps()
            block = mixed[a - c0 : b - c0]
            meter.feed(block)
            if a < start:
                continue
            loud = np.abs(block[:, 0])
            np.maximum(loud, np.abs(block[:, 1]), out=loud)
            first = (a - start) // step
            edges = np.arange(first, -(-(b - start) // step)) * step
            edges += start - a
            edges[0] = 0
            top = np.maximum.reduceat(loud, edges)
            into = peaks[first : first + len(top)]
            np.maximum(into, top, out=into)
    energies = np.asarray(meter.step_energies, dtype="<f8")
    return energies, peaks[: len(energies)].astype("<f8")


def _limited_steps(mixer, start, stop, outputs):
    """What the limiter does to the loudness around [start, stop), for each (gain, ceiling dBTP)
    of `outputs`: (the first step it covers, float64 (len(outputs), steps): each step's energy
    after the gain and the limiter less its energy after the gain alone).

    Only the true peaks of [start, stop) count (and a few samples around it, within the
    interpolator's reach): the loud samples of neighbouring spans must lie further apart than
    the limiter's reach and the ringing (`_hot_runs`). The samples it can change are taken in
    stretches of at most `_LIMITED_CHUNK` (memory does not grow with a long loud run); see
    `_limited_chunk`."""
    timeline = mixer.timeline
    step = timeline.sample_rate // 10
    total = timeline.total_samples
    ahead, behind = render.LIMIT_AHEAD, render.LIMIT_BEHIND
    first_out = max(0, start - 2 * ahead)  # the first sample they can change
    last_out = min(total, stop + ahead + behind + _RING)  # ... and past the last, ringing
    first = first_out // step
    deltas = np.zeros((len(outputs), -(-last_out // step) - first))
    for c0 in range(first_out, last_out, _LIMITED_CHUNK):
        c1 = min(c0 + _LIMITED_CHUNK, last_out)
        _limited_chunk(mixer, (start - ahead, stop + ahead), c0, c1, outputs, deltas, first)
    return first, deltas


def _limited_chunk(mixer, own, c0, c1, outputs, deltas, first) -> None:
    """Add to `deltas` (rows: `outputs`; columns: steps from `first`) what the limiter changes
    in each step's energy over the samples [c0, c1), from the true peaks at the samples `own`
    (start, stop) holds.

    The true peaks of the mix are found once (`render.true_peaks`; the interpolator is linear,
    so at a gain they scale with it, to the float's last bits). For each ceiling, the stretches
    within the limiter's reach of a sample over it at the largest of its gains are limited at
    each of them as `render.limit` does it (`render.limit_peaks`), from 0.1 s before c0. The
    difference d that makes is K-weighted from rest there (what came before has rung out by
    c0), with the `_RING` samples after each stretch of it where the weighting rings out; with
    w the weighted mix (settled by then), a step gains sum((gain * w - d)^2) - sum((gain *
    w)^2) over its samples in [c0, c1)."""
    timeline = mixer.timeline
    rate = timeline.sample_rate
    step = rate // 10
    total = timeline.total_samples
    ahead, behind = render.LIMIT_AHEAD, render.LIMIT_BEHIND
    # The differences are found from 0.1 s before c0 (what they were before has rung out by c0),
    # the weighted mix from 0.1 s before that (settled by then).
    lead = step * CEILING_PREROLL_STEPS
    d0 = max(0, c0 - lead)
    m0 = max(0, d0 - max(lead, behind))
    m1 = min(total, c1 + ahead)
    mixed = mixer(m0, m1)
    # The window the limiter of [d0, c1) reads, silence where the session has no samples.
    x0 = d0 - behind
    x = np.zeros((2, c1 + ahead - x0), dtype=np.float32)
    x[:, max(m0, x0) - x0 : m1 - x0] = mixed[max(m0, x0) - m0 :].T
    lowest = min(10 ** (c / 20) / g for g, c in outputs)
    at, peak = render.true_peaks(x, lowest / render.LIMIT_OVERSHOOT * _REACH_MARGIN)
    at += x0
    inside = (at >= own[0]) & (at < own[1])
    at, peak = at[inside], peak[inside]
    weighted = None
    for ceiling_dbtp in dict.fromkeys(c for _, c in outputs):
        ceiling = 10 ** (ceiling_dbtp / 20)
        rows = [j for j, (_, c) in enumerate(outputs) if c == ceiling_dbtp]
        gains = [outputs[j][0] for j in rows]
        hit = peak * max(gains) > ceiling * _REACH_MARGIN
        over, over_peak = at[hit], peak[hit]
        if not len(over):
            continue
        # The samples each one over can turn down, in [d0, c1), stretches close together joined.
        a = np.clip(over - (render.LIMIT_ATTACK + 2 * render.LIMIT_SMOOTH), d0, c1)
        b = np.clip(over + (render.LIMIT_RELEASE + 2 * render.LIMIT_SMOOTH + 1), d0, c1)
        breaks = np.flatnonzero(a[1:] > b[:-1] + _LIMIT_JOIN)
        pieces = []
        for lo, hi in zip(a[np.r_[0, breaks + 1]], b[np.r_[breaks, len(b) - 1]], strict=True):
            if lo >= hi:
                continue
            k0, k1 = np.searchsorted(over, [lo - behind, hi + ahead])
            diff = np.zeros((hi - lo, 2 * len(gains)), dtype=np.float32)
            for k, gain in enumerate(gains):
                level = np.float32(gain)
                here = mixed[lo - m0 : hi - m0] * level
                out = render.limit_peaks(
                    here, lo, hi, over[k0:k1], over_peak[k0:k1] * level, ceiling
                )
                diff[:, 2 * k : 2 * k + 2] = here - out
            moved = np.flatnonzero(np.any(diff != 0, axis=1))
            if len(moved):
                pieces.append((lo + moved[0], lo + moved[-1] + 1, diff[moved[0] : moved[-1] + 1]))
        if not pieces:
            continue
        if weighted is None:
            weighted = loudness.k_weighted(mixed, rate)  # settled by c0
        for group in _ringing_groups(pieces, _RING, c1):
            g0, g1 = group[0][0], min(c1, max(p[1] for p in group) + _RING)
            diff = np.zeros((g1 - g0, 2 * len(gains)))
            for p, q, d in group:
                diff[p - g0 : min(q, g1) - g0] = d[: min(q, g1) - p]
            taken = loudness.k_weighted(diff, rate)  # each gain's two channels, as rows
            h0 = max(g0, c0)  # counted from here
            if h0 >= g1:
                continue
            taken = taken[:, h0 - g0 :]
            out = weighted[:, h0 - m0 : g1 - m0]
            plain = np.square(out).sum(axis=0)
            into = np.arange(h0, g1) // step - first
            for k, (j, gain) in enumerate(zip(rows, gains, strict=True)):
                change = np.square(gain * out - taken[2 * k : 2 * k + 2]).sum(axis=0)
                change -= gain**2 * plain
                deltas[j] += np.bincount(into, weights=change, minlength=deltas.shape[1]) / step


def _ringing_groups(pieces, tail: int, end: int):
    """`pieces` (start, stop, samples), in order, in groups whose weighted differences overlap
    (each rings for `tail` samples after its stop)."""
    group = [pieces[0]]
    for piece in pieces[1:]:
        if piece[0] < min(end, max(p[1] for p in group) + tail):
            group.append(piece)
        else:
            yield group
            group = [piece]
    yield group


# ---- running work in forked processes ----------------------------------------------------------

_TASK: Callable | None = None  # what the forked workers run: set before the pool forks them


def _map(task: Callable[[int], object], count: int, jobs: int, finished) -> None:
    """`finished(i, task(i))` for i in range(count), in any order, in the calling thread.

    `jobs` > 1: in forked worker processes (they inherit `task`: nothing is pickled but the
    index and the result), when forking is safe here; else one after another in this process.
    Each worker has a pipe of its own and nothing else is shared, so ending them can leave no
    lock held: Ctrl-C (the workers ignore it), an error or a worker that dies ends them all at
    once. (`multiprocessing.Pool` shares one result queue: a worker ended in the middle of
    sending left its lock held, and terminating the pool then waited for ever.)
    """
    global _TASK
    jobs = max(1, min(count, jobs))
    if jobs <= 1 or not _can_fork():
        for index in range(count):
            finished(index, task(index))
        return
    _TASK = task
    # The workers share what this process holds (the timeline, the sources, the noise loops) by
    # fork: the weighting kernel is loaded here first, so that they share it too (5 MiB of PSS
    # less between two); their speech is read through a store that keeps two clips.
    loudness.Meter(SAMPLE_RATE, 2).feed(np.zeros((1, 2), dtype=np.float32))
    context = multiprocessing.get_context("fork")
    workers: dict = {}  # our end of each worker's pipe: its process
    todo = iter(range(count))
    done = False
    try:
        for _ in range(jobs):
            ours, theirs = context.Pipe()
            process = context.Process(target=_worker, args=(theirs,), daemon=True)
            process.start()
            theirs.close()
            workers[ours] = process
            ours.send(next(todo))
        busy = set(workers)
        while busy:
            for conn in multiprocessing.connection.wait(list(busy)):
                try:
                    ok, index, value = conn.recv()
                except (EOFError, OSError):
                    code = workers[conn].exitcode
                    raise RuntimeError(
                        f"a loudness worker process ended unexpectedly (exit status {code})"
                    ) from None
                if not ok:
                    raise value
                finished(index, value)
                index = next(todo, None)
                conn.send(index)  # None: no more work, the worker ends
                if index is None:
                    busy.discard(conn)
        done = True
    finally:
        _TASK = None
        for conn, process in workers.items():
            if not done:  # an error, Ctrl-C: at once, wherever they are
                process.kill()
            process.join()
            conn.close()


def _worker(conn) -> None:
    """A forked worker: runs `_TASK` on each index it is sent until it is sent None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides, and ends the workers
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        while (index := conn.recv()) is not None:
            try:
                conn.send((True, index, _TASK(index)))
            except Exception as exc:  # noqa: BLE001 - raised again in the parent
                conn.send((False, index, exc))
    except (EOFError, OSError):  # the parent has gone
        pass


def _can_fork() -> bool:
    # Forking is safe only without other Python threads (a lock one of them holds would stay
    # held in the child forever); Linux only (macOS frameworks are not fork-safe).
    return sys.platform.startswith("linux") and threading.active_count() == 1


ESTIMATE_WINDOW_S = 20.0  # a generated background layer's level is read over its first 20 s
_ESTIMATE_POINTS = 4  # envelope points per 100 ms step


def estimate_gain(timeline: Timeline, sources: render.Sources, speech_energy=None) -> float:
    """A quick estimate of `measure_gain`, without rendering the session.

    The loudness meter's 100 ms step energies are added up from the parts instead of measured on
    the mix: every speech clip and chime K-weighted once on its own and placed at its sample, a
    guide tone from one rendered cycle, each generated background layer's level read over its
    first 20 s (they are steady), a sound file's from the file, times the mean square of the
    layer's fade and ducking envelope in each step. Parts that sound together are taken as
    uncorrelated (their energies add). Then the same gating as `measure_gain`. Within ~0.06 dB
    of it on the built-in sessions (the limiter's share, left out, is most of that), in a
    fraction of a second for any length.

    `speech_energy(utterance) -> (profile, length)`, if given, supplies each line's
    `loudness.energy_profile` instead of weighting `sources.speech` (a profile shorter than the
    line repeats): the player's cold start keeps them as clips arrive and lets a known line stand
    in for one not synthesized yet (`pipeline.Growing`).
    """
    rate = timeline.sample_rate
    step = rate // 10
    total = timeline.total_samples
    n_steps = total // step
    if n_steps < 4:
        return 1.0  # under 400 ms: too short for the meter, as `measure_gain` finds too
    fore = np.zeros(n_steps)  # the mono foreground, counted in both channels
    energy = np.zeros(n_steps)
    profiles: dict[object, tuple[np.ndarray, int]] = {}
    recent: OrderedDict[int, tuple[np.ndarray, tuple[np.ndarray, int]]] = OrderedDict()

    def profile_of(key, make) -> tuple[np.ndarray, int]:
        if key not in profiles:
            signal = make()
            profiles[key] = (loudness.energy_profile(signal, rate), len(signal))
        return profiles[key]

    def file_profile(key, data: np.ndarray, volume: float) -> tuple[np.ndarray, int]:
        # Weighed in blocks: a long file mapped from the cache is never copied whole.
        if key not in profiles:
            profiles[key] = (loudness.energy_profile_scaled(data, rate, volume), len(data))
        return profiles[key]

    def clip_profile(utterance) -> tuple[np.ndarray, int]:
        if speech_energy is not None:
            return speech_energy(utterance)
        # Clips are weighted as they come (a long session's would not all fit in memory); the
        # few met again and again (counts, cues) are kept.
        clip = sources.speech[utterance]
        hit = recent.get(id(clip))
        if hit is not None and hit[0] is clip:
            recent.move_to_end(id(clip))
            return hit[1]
        found = (loudness.energy_profile(clip, rate), len(clip))
        recent[id(clip)] = (clip, found)
        if len(recent) > 16:
            recent.popitem(last=False)
        return found

    def place(into: np.ndarray, found: tuple[np.ndarray, int], start: int, length: int) -> None:
        k0 = max(0, start // step)
        k1 = min(n_steps, -(-(start + length) // step))
        if k1 <= k0:
            return
        edges = np.clip(np.arange(k0, k1 + 1, dtype=np.int64) * step - start, 0, length)
        into[k0:k1] += np.diff(loudness.energy_between(found[0], found[1], edges)) / step

    for event in timeline.events:
        if event.kind == SPEECH:
            found = clip_profile(event.utterance)
        elif event.kind == CHIME:
            key = (CHIME, event.chime, event.volume)
            found = profile_of(key, lambda e=event: synth.chime(e.chime, e.volume))
        elif event.kind == TONE and event.tone.cycle_lengths:
            for offset, found in tone_cycle_profiles(event.tone):  # phases that ramp
                place(fore, found, event.start_sample + offset, found[1])
            continue
        elif event.kind == TONE:
            found = tone_profile(event.tone)
        else:
            continue
        place(fore, found, event.start_sample, event.duration_samples)
    energy += 2 * fore

    groups = render.background_groups(timeline)
    ramp = int(render.DUCK_RAMP_S * rate)
    points = np.arange(n_steps, dtype=np.float64)[:, None] * step + (
        np.arange(_ESTIMATE_POINTS) + 0.5
    ) * (step / _ESTIMATE_POINTS)
    for (fade_in, fade_out, depth), layers in groups.items():
        shape = render.envelope_at(points, total, fade_in, fade_out, depth, timeline, ramp)
        level = np.zeros(n_steps)
        for layer in layers:
            if isinstance(layer, SoundFile):
                data = np.asarray(sources.sounds[layer.path], dtype=np.float32)
                if data.ndim == 1:
                    data = np.repeat(data[:, None], 2, axis=1)
                period = len(data) - min(synth.LOOP_CROSSFADE_SAMPLES, len(data) // 4)
                if layer.loop and period > 0:
                    # One period repeats: the file without the tail that crossfades into the
                    # next pass's start.
                    key = ("loop", layer.path, layer.volume)
                    found = file_profile(key, data[:period], layer.volume)
                    place(level, found, 0, total)
                else:
                    key = ("file", layer.path, layer.volume)
                    found = file_profile(key, data, layer.volume)
                    place(level, found, 0, min(total, found[1]))
            else:
                level += layer_level(layer)
        energy += np.mean(np.square(shape), axis=1) * level
    lufs = loudness.gated_lufs(energy)
    if not np.isfinite(lufs):
        return 1.0
    return float(10 ** ((TARGET_LUFS - lufs) / 20))


@functools.lru_cache(maxsize=64)
def layer_level(layer) -> float:
    """A generated background layer's mean K-weighted power (channels summed), from its first
    `ESTIMATE_WINDOW_S` (a drone's swell is 20 s long; the others are steady)."""
    window = int(ESTIMATE_WINDOW_S * SAMPLE_RATE)
    sound = synth.layer_block(layer, 0, window)
    return float(np.mean(loudness.k_weighted_squares(sound, SAMPLE_RATE)))


@functools.lru_cache(maxsize=16)
def tone_profile(spec) -> tuple[np.ndarray, int]:
    """A guide tone's `loudness.energy_profile` over one cycle (the first, when phases ramp),
    and the cycle's length."""
    period = sum(n for _, n in spec.phases)
    signal = synth.guide_tone(spec.phases, spec.cycles, 0, period, spec.cycle_lengths)
    return loudness.energy_profile(signal, SAMPLE_RATE), period


@functools.lru_cache(maxsize=4)
def tone_cycle_profiles(spec) -> tuple[tuple[int, tuple[np.ndarray, int]], ...]:
    """A guide tone whose phases ramp, cycle by cycle: (the cycle's offset in the step, an
    `loudness.energy_profile` of the cycle and its length).

    Only the first cycle is rendered and measured; every cycle then gets, per phase, the first
    cycle's mean power of that phase over its own length (the tone's level is steady within a
    phase and its pitch path only stretches: the gain is within 0.005 dB of the measure on
    slow-down)."""
    profile, period = tone_profile(spec)
    names = [name for name, _ in spec.phases]
    edges = np.cumsum([0] + [n for _, n in spec.phases])
    energy = loudness.energy_between(profile, period, edges)
    power = np.diff(energy) / np.maximum(np.diff(edges), 1)  # per phase, per sample
    hop = loudness.ENERGY_HOP
    out, offset, seen = [], 0, {}
    for lengths in spec.cycle_lengths:
        if lengths not in seen:
            bounds = np.cumsum([0, *lengths])
            cumulative = np.concatenate([[0.0], np.cumsum(power[: len(names)] * lengths)])
            points = np.minimum(np.arange(0, bounds[-1] + hop, hop), bounds[-1])
            seen[lengths] = (np.interp(points, bounds, cumulative), int(bounds[-1]))
        out.append((offset, seen[lengths]))
        offset += seen[lengths][1]
    return tuple(out)
