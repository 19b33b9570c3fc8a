"""The render stage: a `Timeline` and its sources -> fixed-size stereo float32 PCM blocks.

Entry points:

- `blocks(timeline, sources, start_sample=0, block_samples=BLOCK_SAMPLES, gain=None)`: a generator
  of float32 arrays shaped (n, 2), every one `block_samples` long but the last, from any start
  sample to the end. Live playback and export both consume it (one render path).
- `measure_gain(timeline, sources, lossy_quality=None) -> float`: the gain that puts what
  `blocks` makes (after the soft ceiling) at `TARGET_LUFS`: a streaming pass (memory does not
  grow with session length), then a second look at the steps the ceiling touches, shared out
  over the CPUs where it can be.
- `estimate_gain(timeline, sources, speech_energy=None) -> float`: the first pass's gain from
  the parts, without rendering (milliseconds; the player's cold start; the ceiling's share is
  left out).
- `final_until(partial) -> int`: how far a `timeline.Partial` already renders as the complete
  session will.
- `to_int16(block)`: the one float -> 16-bit conversion, shared by the player and the exporter.

Every sample is a pure function of its index: speech clips and chimes are placed at integer
samples, and background generators are random access (see `synth`). So the output does not depend
on the block size or the start position, and the same session and voice render the same bytes.

Mix, per block: speech (mono, centred) + chimes + the breathing guide tone + the background layers,
each layer shaped by its fades and ducked under speech with smooth ramps; then the loudness gain;
then a soft ceiling that keeps every peak under -1 dBFS.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import math
import os
import selectors
import signal
import struct
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audio_engine import loudness, synth
from audio_engine.model import SAMPLE_RATE, SoundFile, Utterance
from audio_engine.timeline import CHIME, SPEECH, TONE, Timeline

BLOCK_SAMPLES = 16384
TARGET_LUFS = -16.0
CEILING_DBFS = -1.0
DUCK_RAMP_S = 0.25

# Soft ceiling: identity below the knee, then a tanh curve that approaches (never reaches) the
# ceiling. Memoryless, so it keeps every sample a pure function of its index.
_CEILING = 10 ** ((CEILING_DBFS - 0.05) / 20)
_KNEE = 10 ** (-4.0 / 20)


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
    gain: float | None = None,
    mix: Mix = Mix(),  # noqa: B008 - frozen value
    stop_sample: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield the session from `start_sample` to the end as (n, 2) float32 blocks.

    Parameters
    ----------
    timeline : the compiled session.
    sources : the speech clips and sound files it refers to.
    start_sample : where to begin (a chapter start, a seek position); 0 is the beginning.
    block_samples : frames per block (every block but the last has exactly this many).
    gain : linear gain for the loudness target; None measures it first (`measure_gain`).
    mix : listener settings (background level).
    stop_sample : where to end (default: the end of the session).

    Example
    -------
    >>> for block in blocks(timeline, sources, start_sample=44100):
    ...     sink.write(block)
    """
    if gain is None:
        gain = measure_gain(timeline, sources)
    for block in _raw_blocks(timeline, sources, start_sample, block_samples, mix, stop_sample):
        yield _ceiling(block * np.float32(gain))


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
    return max(0, until)


MEASURE_PIECE_STEPS = 300  # the loudness pass measures the session in 30 s pieces
MEASURE_PREROLL_STEPS = 5  # each piece's filters settle on the 0.5 s before it
CEILING_PREROLL_STEPS = 1  # ... and a stretch measured again after the ceiling on 0.1 s
CEILING_TOLERANCE_LU = 0.01  # the gain is refined until the ceiling's output is this close
CEILING_MAX_PASSES = 4  # ... or after this many passes over what the ceiling touches
CEILING_LAST_STEP_LU = 0.05  # a correction this small is made without measuring it again


def measure_gain(
    timeline: Timeline,
    sources: Sources,
    progress=None,
    jobs: int | None = None,
    lossy_quality: float | None = None,
) -> float:
    """Linear gain that brings the session, as `blocks` renders it, to `TARGET_LUFS` integrated.

    With `lossy_quality`, the gain for what an MP3 or OGG encoder is given at that quality:
    `blocks` with `lossy_headroom` on top, whose lower ceiling takes a little more loudness.

    First pass: the mix is measured before the gain and the ceiling, in 30 s pieces. Each
    piece's K-weighting filters first run over the 0.5 s before it (their state has then settled
    to the last bit), and the pieces' 100 ms steps are joined in order, so the answer is the same
    however the pieces are shared out. That gives the gain for a linear path, and each step's
    largest sample.

    The soft ceiling is not linear: where the gained mix goes over its knee (-4 dBFS) it takes
    loudness away (a background of low hum, which K-weighting hears little of, can be pushed
    into it for thousands of samples). So every 100 ms step that has a sample over the knee at
    that gain (and the step after it, which the filters' ringing reaches) is measured again
    after the gain and the ceiling, exactly as `blocks` makes it (the filters settled on the
    0.1 s before: to about 1e-10), and the gain is corrected (a secant step on the measured
    loudness) until the result is within `CEILING_TOLERANCE_LU` of the target, in at most
    `CEILING_MAX_PASSES` passes; a correction under `CEILING_LAST_STEP_LU` is the last one,
    made without measuring again (the ceiling moves its result by a fraction of it). Steps
    the ceiling does not touch keep their first measure, scaled by the gain. Speech peaks pass
    the knee in about 10-20 % of the steps of the built-in sessions.

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

    def report(fraction: float) -> None:
        if progress is not None:
            progress(int(fraction * total), total)

    first = _measure_spans(
        timeline, sources, spans, None, MEASURE_PREROLL_STEPS, jobs, lambda f: report(0.75 * f)
    )
    raw = np.concatenate([first[i][0] for i in range(len(spans))] or [[]])
    peaks = np.concatenate([first[i][1] for i in range(len(spans))] or [[]])
    lufs = loudness.gated_lufs(raw)
    if not np.isfinite(lufs):
        report(1.0)
        return 1.0
    gain = float(10 ** ((TARGET_LUFS - lufs) / 20))
    knee = _KNEE if lossy_quality is None else _lossy_levels(lossy_quality)[1]
    tried: list[tuple[float, float]] = []  # (gain in dB, loudness after the ceiling)
    for n in range(CEILING_MAX_PASSES):
        runs = _hot_runs(peaks * gain > knee * (1 - 1e-6))
        if not runs:
            break
        again = _measure_spans(
            timeline,
            sources,
            [(a * step, b * step) for a, b in runs],
            (gain, lossy_quality),
            CEILING_PREROLL_STEPS,
            jobs,
            lambda f, a=1 - 0.5**n, b=0.5 ** (n + 1): report(0.75 + 0.25 * (a + b * f)),
        )
        steps = raw * gain**2
        for k, (a, b) in enumerate(runs):
            steps[a:b] = again[k][0]
        lufs = loudness.gated_lufs(steps)
        if not np.isfinite(lufs) or abs(lufs - TARGET_LUFS) <= CEILING_TOLERANCE_LU:
            break
        tried.append((20 * math.log10(gain), lufs))
        slope = 1.0  # LU per dB of gain: 1 where the ceiling does nothing, less where it works
        if len(tried) >= 2:
            (g0, l0), (g1, l1) = tried[-2], tried[-1]
            if g1 != g0:
                slope = min(1.0, max(0.1, (l1 - l0) / (g1 - g0)))
        gain *= 10 ** ((TARGET_LUFS - lufs) / slope / 20)
        if abs(TARGET_LUFS - lufs) <= CEILING_LAST_STEP_LU:
            break  # what is left after it: a fraction of a step this small
    report(1.0)
    return gain


def _hot_runs(hot: np.ndarray) -> list[tuple[int, int]]:
    """[a, b) runs of steps to measure again: the hot ones and the step after each, runs less
    than two steps apart joined (each run costs a pre-roll)."""
    hot = hot.copy()
    hot[1:] |= hot[:-1].copy()
    at = np.flatnonzero(hot)
    if len(at) == 0:
        return []
    breaks = np.flatnonzero(np.diff(at) > 2)
    starts = np.r_[at[0], at[breaks + 1]]
    ends = np.r_[at[breaks], at[-1]] + 1
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def _measure_spans(timeline, sources, spans, output, preroll_steps, jobs, fraction):
    """{index: (step energies, step peaks)} for each [start, stop) span (on step boundaries):
    of the raw mix when `output` is None, else, for `output` = (gain, lossy_quality), of what
    `blocks` makes at that gain (through `lossy_headroom` at that quality unless None). The
    filters first run over `preroll_steps` steps before each span. `fraction(done)` follows."""
    rate = timeline.sample_rate
    step = rate // 10
    gain32 = None if output is None else np.float32(output[0])
    quality = None if output is None else output[1]

    def pieces(start: int, stop: int):
        for block in _raw_blocks(timeline, sources, start, 1 << 16, Mix(), stop):
            if gain32 is None:
                yield block
            elif quality is None:
                yield _ceiling(block * gain32)
            else:
                yield lossy_headroom(_ceiling(block * gain32), quality)

    def measure(span: tuple[int, int]) -> np.ndarray:
        start, stop = span
        meter = loudness.Meter(rate, 2)
        for block in pieces(max(0, start - step * preroll_steps), start):
            meter.feed(block)
        meter.restart_steps()
        loudest = []
        for block in pieces(start, stop):
            meter.feed(block)
            loudest.append(np.max(np.abs(block), axis=1))
        energies = np.asarray(meter.step_energies, dtype="<f8")
        n = len(energies)
        if n and loudest:
            peaks = np.concatenate(loudest)[: n * step].reshape(n, step).max(axis=1)
        else:
            peaks = np.zeros(n)
        return np.concatenate([energies, peaks.astype("<f8")])  # one array: the pipe's unit

    jobs = max(1, min(len(spans), jobs))
    results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    total = sum(b - a for a, b in spans) or 1
    done = 0

    def finished(index: int, values: np.ndarray) -> None:
        nonlocal done
        half = len(values) // 2
        results[index] = (values[:half], values[half:])
        done += spans[index][1] - spans[index][0]
        fraction(done / total)

    if jobs > 1 and _can_fork():
        _measure_forked(measure, spans, jobs, finished)
    for index, span in enumerate(spans):
        if index not in results:
            finished(index, measure(span))
    return results


ESTIMATE_WINDOW_S = 20.0  # a generated background layer's level is read over its first 20 s
_ESTIMATE_POINTS = 4  # envelope points per 100 ms step


def estimate_gain(timeline: Timeline, sources: Sources, speech_energy=None) -> float:
    """A quick estimate of `measure_gain`, without rendering the session.

    The loudness meter's 100 ms step energies are added up from the parts instead of measured on
    the mix: every speech clip and chime K-weighted once on its own and placed at its sample, a
    guide tone from one rendered cycle, each generated background layer's level read over its
    first 20 s (they are steady), a sound file's from the file, times the mean square of the
    layer's fade and ducking envelope in each step. Parts that sound together are taken as
    uncorrelated (their energies add). Then the same gating as `measure_gain`. Within ~0.02 dB
    of it on the built-in sessions, in a fraction of a second for any length.

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

    background = _Background(timeline, sources, Mix())
    groups: dict[tuple[int, int, float], list] = {}
    for layer in background.layers:
        groups.setdefault(background._envelope_key(layer), []).append(layer)
    points = np.arange(n_steps, dtype=np.float64)[:, None] * step + (
        np.arange(_ESTIMATE_POINTS) + 0.5
    ) * (step / _ESTIMATE_POINTS)
    for (fade_in, fade_out, depth), layers in groups.items():
        shape = _envelope_at(points, total, fade_in, fade_out, depth, timeline, background.ramp)
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


def _envelope_at(points, total, fade_in, fade_out, depth, timeline, ramp) -> np.ndarray:
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


def _can_fork() -> bool:
    # Forking is safe only without other Python threads (a lock one of them holds would stay
    # held in the child forever); Linux only (macOS frameworks are not fork-safe).
    return sys.platform.startswith("linux") and threading.active_count() == 1


def _measure_forked(measure, spans, jobs: int, finished) -> None:
    """Measure `spans` in `jobs` forked children; `finished(index, steps)` per piece, as they come.

    A piece a child could not deliver is left out (the caller measures it itself).
    """
    children: dict[int, int] = {}  # read end -> pid
    buffers: dict[int, bytearray] = {}
    with selectors.DefaultSelector() as selector:
        try:
            for k in range(jobs):
                read_end, write_end = os.pipe()
                pid = os.fork()
                if pid == 0:  # the child: measure its share, send each piece, leave at once
                    code = 1
                    try:
                        os.close(read_end)
                        with os.fdopen(write_end, "wb") as out:
                            for index in range(k, len(spans), jobs):
                                steps = measure(spans[index])
                                out.write(struct.pack("<II", index, len(steps)))
                                out.write(steps.tobytes())
                                out.flush()
                        code = 0
                    finally:
                        os._exit(code)
                os.close(write_end)
                children[read_end] = pid
                buffers[read_end] = bytearray()
                selector.register(read_end, selectors.EVENT_READ)
            open_ends = set(children)
            while open_ends:
                for key, _ in selector.select():
                    fd = key.fd
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        selector.unregister(fd)
                        open_ends.discard(fd)
                        continue
                    buf = buffers[fd]
                    buf += chunk
                    while len(buf) >= 8:
                        index, count = struct.unpack_from("<II", buf)
                        if len(buf) < 8 + 8 * count:
                            break
                        steps = np.frombuffer(bytes(buf[8 : 8 + 8 * count]), dtype="<f8")
                        del buf[: 8 + 8 * count]
                        finished(index, steps)
        finally:
            for fd, pid in children.items():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)  # gone already when it finished
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
                os.close(fd)


def to_int16(block: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] to 16-bit PCM, rounding to nearest (no dither: deterministic).
    A non-finite value is never cast (that gives an undefined integer): NaN is silence, an
    infinity the full scale of its sign."""
    x = np.nan_to_num(block, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)


# ---- internals ---------------------------------------------------------------------------------


def _ceiling(block: np.ndarray, ceiling: float = _CEILING, knee: float = _KNEE) -> np.ndarray:
    over = np.abs(block) > knee
    if over.any():
        x = block[over]
        span = ceiling - knee
        block = block.copy()
        block[over] = np.sign(x) * (knee + span * np.tanh((np.abs(x) - knee) / span))
    return block.astype(np.float32, copy=False)


def lossy_headroom(block: np.ndarray, quality: float = 5.0) -> np.ndarray:
    """The same soft ceiling, lower, for MP3 and OGG encoders at `quality` (0-10).

    A lossy encoder's output overshoots the peaks it was given, the more so the lower its
    quality (measured: up to ~0.6 dB at 5, ~2 dB at 0 on pure tones), so what it is given must
    stay that much lower for the decoded file to stay under -1 dBFS: knee and ceiling go down by
    1.5 dB at quality 5 and above, and by 0.4 dB more per step below. Only samples above the
    lowered knee change; the loudness moves by a few hundredths of a LU.
    """
    ceiling, knee = _lossy_levels(quality)
    return _ceiling(block, ceiling, knee)


def _lossy_levels(quality: float) -> tuple[float, float]:
    drop = 10 ** (-(1.5 + 0.4 * max(0.0, 5.0 - quality)) / 20)
    return _CEILING * drop, _KNEE * drop


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


def _raw_blocks(timeline, sources, start_sample, block_samples, mix, stop_sample):
    if block_samples <= 0:
        raise ValueError("block_samples must be positive")
    total = (
        timeline.total_samples if stop_sample is None else min(stop_sample, timeline.total_samples)
    )
    index = _EventIndex(timeline)
    background = _Background(timeline, sources, mix)
    position = max(0, int(start_sample))
    while position < total:
        stop = min(position + block_samples, total)
        yield background.under(_foreground(sources, index, position, stop), position, stop)
        position = stop


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
            if shape is not None:
                sound *= (shape * self.gain)[:, None]
            elif self.gain != 1:
                sound *= self.gain
            if out is None:
                out = sound
            else:
                out += sound
        if out is None:
            return np.repeat(mono[:, None], 2, axis=1)
        out += mono[:, None]
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
    return _envelope_at(
        np.asarray(points, dtype=np.float64),
        timeline.total_samples,
        int(layer.fade_in_s * rate),
        int(layer.fade_out_s * rate),
        float(layer.duck),
        timeline,
        int(DUCK_RAMP_S * rate),
    )
