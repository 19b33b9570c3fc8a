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
in forked processes (`multiprocessing.Pool`) where that is safe.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
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
MEASURE_OVERSHOOT_DB = 3.0  # a step is measured again after the limiter when its largest sample
# is this close to the ceiling: a peak between samples is rarely 1 dB over the samples beside it
# (3 dB only near the Nyquist frequency); a step missed would move the loudness by far less
# than the tolerance.
# The ceilings measured together whenever one of them is asked: the player's (WAV, FLAC) and MP3
# and OGG files' at the default quality.
STANDARD_CEILINGS = (render.LIMIT_DBTP, render.lossy_ceiling(render.DEFAULT_LOSSY_QUALITY))
CEILING_PREROLL_STEPS = 1  # ... and a stretch measured again after the limiter on 0.1 s
CEILING_TOLERANCE_LU = 0.01  # the gain is refined until the limiter's output is this close
CEILING_MAX_PASSES = 4  # ... or after this many passes over what the limiter touches
CEILING_LAST_STEP_LU = 0.05  # a correction this small is made without measuring it again


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

    The limiter is not linear: where it turns a peak down it takes a little loudness. So every
    100 ms step whose largest sample comes within `MEASURE_OVERSHOOT_DB` of the ceiling at that
    gain, with the step before and after it (the limiter's reach, the filters' ringing), is
    measured again after the gain and the limiter, exactly as
    `render.blocks` makes it (the filters settled on the 0.1 s before: to about 1e-10), and the
    gain is corrected (a secant step on the measured loudness) until the result is within
    `CEILING_TOLERANCE_LU` of the target, in at most `CEILING_MAX_PASSES` passes; a correction
    under `CEILING_LAST_STEP_LU` is the last one, made without measuring again. Steps the
    limiter does not reach keep their first measure, scaled by the gain. Each stretch is rendered
    once per pass for every ceiling: only the gain and the limiter are applied once for each.

    On Linux, when the process has a single thread, `jobs` forked processes (default: the CPU
    count) share the work; otherwise it is done here, one piece after another.
    `progress(done, total)`, if given, is called from the calling thread as pieces finish (the
    first pass counts for three quarters, the corrections for the rest).
    """
    rate = timeline.sample_rate
    step = rate // 10
    piece = step * MEASURE_PIECE_STEPS
    total = timeline.total_samples
    spans = [(a, min(a + piece, total)) for a in range(0, total, piece)]
    jobs = max(1, jobs or os.cpu_count() or 1)
    ceilings = tuple(dict.fromkeys(ceilings))

    def report(fraction: float) -> None:
        if progress is not None:
            progress(int(fraction * total), total)

    first = _measure_spans(
        timeline, sources, spans, (), MEASURE_PREROLL_STEPS, jobs, lambda f: report(0.75 * f)
    )
    raw = np.concatenate([first[i][0] for i in range(len(spans))] or [[]])
    peaks = np.concatenate([first[i][1] for i in range(len(spans))] or [[]])
    lufs = loudness.gated_lufs(raw)
    if not np.isfinite(lufs):
        report(1.0)
        return dict.fromkeys(ceilings, 1.0)
    first_gain = float(10 ** ((TARGET_LUFS - lufs) / 20))
    # The player's and the default lossy ceiling are corrected together (one render of what
    # either needs); any other alone: a ceiling's gain never depends on what else was asked.
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
    gain, corrected for the limiter (see `measure_gains`); `progress(fraction)` follows."""
    step = timeline.sample_rate // 10
    gains = dict.fromkeys(ceilings, first_gain)
    tried: dict[float, list[tuple[float, float]]] = {c: [] for c in ceilings}
    active = list(ceilings)
    for n in range(CEILING_MAX_PASSES):
        hot = np.zeros(len(peaks), dtype=bool)
        for c in list(active):
            reach = peaks * gains[c] > 10 ** ((c - MEASURE_OVERSHOOT_DB) / 20)
            if reach.any():
                hot |= reach
            else:
                active.remove(c)  # the limiter never acts at this gain: the first measure holds
        runs = _hot_runs(hot)
        if not runs or not active:
            break
        again = _measure_spans(
            timeline,
            sources,
            [(a * step, b * step) for a, b in runs],
            tuple((gains[c], c) for c in active),
            CEILING_PREROLL_STEPS,
            jobs,
            lambda f, a=1 - 0.5**n, b=0.5 ** (n + 1): progress(a + b * f),
        )
        for j, c in enumerate(list(active)):
            gain = gains[c]
            steps = raw * gain**2
            for k, (a, b) in enumerate(runs):
                steps[a:b] = again[k][j]
            lufs = loudness.gated_lufs(steps)
            if not np.isfinite(lufs) or abs(lufs - TARGET_LUFS) <= CEILING_TOLERANCE_LU:
                active.remove(c)
                continue
            tried[c].append((20 * math.log10(gain), lufs))
            slope = 1.0  # LU per dB of gain: 1 where the limiter does nothing, less where it works
            if len(tried[c]) >= 2:
                (g0, l0), (g1, l1) = tried[c][-2], tried[c][-1]
                if g1 != g0:
                    slope = min(1.0, max(0.1, (l1 - l0) / (g1 - g0)))
            gains[c] = gain * 10 ** ((TARGET_LUFS - lufs) / slope / 20)
            if abs(TARGET_LUFS - lufs) <= CEILING_LAST_STEP_LU:
                active.remove(c)  # what is left after it: a fraction of a step this small
    return gains


def _hot_runs(hot: np.ndarray) -> list[tuple[int, int]]:
    """[a, b) runs of steps to measure again: the hot ones and the steps before and after each
    (the limiter's reach, then the filters' ringing), runs less than two steps apart joined
    (each run costs a pre-roll)."""
    hot = hot.copy()
    hot[1:] |= hot[:-1].copy()
    hot[:-2] |= hot[2:].copy()
    at = np.flatnonzero(hot)
    if len(at) == 0:
        return []
    breaks = np.flatnonzero(np.diff(at) > 2)
    starts = np.r_[at[0], at[breaks + 1]]
    ends = np.r_[at[breaks], at[-1]] + 1
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def _measure_spans(timeline, sources, spans, outputs, preroll_steps, jobs, fraction):
    """{index: arrays} for each [start, stop) span (on step boundaries). With no `outputs`:
    (step energies, step peaks) of the raw mix; else, for each (gain, ceiling) of `outputs`,
    the step energies of what `render.blocks` makes at that gain and ceiling (the mix rendered
    once for all of them). The filters first run over `preroll_steps` steps before each span.
    `fraction(done)` follows."""
    step = timeline.sample_rate // 10
    total = sum(b - a for a, b in spans) or 1
    done = 0
    results: dict[int, tuple[np.ndarray, ...]] = {}

    lean = getattr(sources.speech, "lean", None)  # `pipeline.ClipStore.lean`
    if lean is not None and jobs > 1 and len(spans) > 1 and _can_fork():
        sources = render.Sources(speech=lean(), sounds=sources.sounds)
    mixer = render.Mixer(timeline, sources)  # made once: the workers inherit it

    def measure(index: int) -> tuple[np.ndarray, ...]:
        start, stop = spans[index]
        return _measure_span(mixer, start, stop, step * preroll_steps, outputs)

    def finished(index: int, values) -> None:
        nonlocal done
        results[index] = values
        done += spans[index][1] - spans[index][0]
        fraction(done / total)

    _map(measure, len(spans), jobs, finished)
    return results


def _measure_span(mixer, start, stop, preroll, outputs):
    timeline = mixer.timeline
    rate = timeline.sample_rate
    step = rate // 10
    begin = max(0, start - preroll)
    count = len(outputs) or 1
    meters = [loudness.Meter(rate, 2) for _ in range(count)]
    # Each step's largest sample, kept as the blocks go (a step can straddle two blocks).
    peaks = np.zeros(-(-(stop - start) // step), dtype=np.float32)
    # The blocks the meters are fed (the pre-roll's, then the span's: the step sums depend on
    # them), rendered up to two blocks' worth at a time (the pre-roll with the first block: one
    # mix and one limiter pass fewer for every span; the samples do not depend on it).
    feeds = [(a, min(a + MEASURE_BLOCK, start)) for a in range(begin, start, MEASURE_BLOCK)]
    feeds += [(a, min(a + MEASURE_BLOCK, stop)) for a in range(start, stop, MEASURE_BLOCK)]
    chunks: list[list[tuple[int, int]]] = []
    for a, b in feeds:
        if chunks and b - chunks[-1][0][0] <= 2 * MEASURE_BLOCK:
            chunks[-1].append((a, b))
        else:
            chunks.append([(a, b)])
    for chunk in chunks:
        c0, c1 = chunk[0][0], chunk[-1][1]
        if not outputs:
            rendered = [mixer(c0, c1)]
        else:
            lo = max(0, c0 - render.LIMIT_BEHIND)
            hi = min(timeline.total_samples, c1 + render.LIMIT_AHEAD)
            mixed = mixer(lo, hi)
            rendered = [
                render.limit(mixed * np.float32(gain), lo, c0, c1, 10 ** (ceiling / 20))
                for gain, ceiling in outputs
            ]
        for a, b in chunk:
            if a == start:
                for meter in meters:
                    meter.restart_steps()
            for meter, out in zip(meters, rendered, strict=True):
                meter.feed(out[a - c0 : b - c0])
            if outputs or a < start:
                continue
            block = rendered[0][a - c0 : b - c0]
            loud = np.abs(block[:, 0])
            np.maximum(loud, np.abs(block[:, 1]), out=loud)
            first = (a - start) // step
            edges = np.arange(first, -(-(b - start) // step)) * step
            edges += start - a
            edges[0] = 0
            top = np.maximum.reduceat(loud, edges)
            into = peaks[first : first + len(top)]
            np.maximum(into, top, out=into)
    if outputs:
        return tuple(np.asarray(m.step_energies, dtype="<f8") for m in meters)
    energies = np.asarray(meters[0].step_energies, dtype="<f8")
    return energies, peaks[: len(energies)].astype("<f8")


# ---- running work in forked processes ----------------------------------------------------------

_TASK: Callable | None = None  # what the forked workers run: set before the pool forks them


def _map(task: Callable[[int], object], count: int, jobs: int, finished) -> None:
    """`finished(i, task(i))` for i in range(count), in any order, in the calling thread.

    `jobs` > 1: in a pool of forked processes (they inherit `task`: nothing is pickled but the
    index and the result), when forking is safe here; else one after another in this process.
    Ctrl-C ends the workers at once (they ignore SIGINT; the pool is terminated).
    """
    global _TASK
    jobs = max(1, min(count, jobs))
    if jobs > 1 and _can_fork():
        _TASK = task
        # The workers share what this process holds (the timeline, the sources, the noise loops)
        # by fork: the weighting kernel is loaded here first, so that they share it too (5 MiB of
        # PSS less between two); their speech is read through a store that keeps two clips.
        loudness.Meter(SAMPLE_RATE, 2).feed(np.zeros((1, 2), dtype=np.float32))
        pool = multiprocessing.get_context("fork").Pool(jobs, initializer=_worker_init)
        try:
            for index, value in pool.imap_unordered(_run_task, range(count)):
                finished(index, value)
            pool.close()
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()
            _TASK = None
        return
    for index in range(count):
        finished(index, task(index))


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides, and terminates the pool
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _run_task(index: int):
    return index, _TASK(index)


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
