"""The render stage: a `Timeline` and its sources -> fixed-size stereo float32 PCM blocks.

Entry points:

- `blocks(timeline, sources, start_sample=0, block_samples=BLOCK_SAMPLES, gain=None)`: a generator
  of float32 arrays shaped (n, 2), every one `block_samples` long but the last, from any start
  sample to the end. Live playback and export both consume it (one render path).
- `measure_gain(timeline, sources) -> float`: the gain that puts the session at `TARGET_LUFS`,
  measured in one streaming pass (memory does not grow with session length), shared out over the
  CPUs where it can be.
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
import os
import selectors
import signal
import struct
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audio_engine import loudness, synth
from audio_engine.model import SoundFile, Utterance
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


MEASURE_PIECE_STEPS = 300  # the loudness pass measures the session in 30 s pieces
MEASURE_PREROLL_STEPS = 5  # each piece's filters settle on the 0.5 s before it


def measure_gain(
    timeline: Timeline, sources: Sources, progress=None, jobs: int | None = None
) -> float:
    """Linear gain that brings the session's integrated loudness to `TARGET_LUFS`.

    The session is measured in 30 s pieces. Each piece's K-weighting filters first run over the
    0.5 s before it (their state has then settled to the last bit), and the pieces' 100 ms steps
    are joined in order, so the answer is the same however the pieces are shared out. On Linux,
    when the process has a single thread, `jobs` forked processes (default: the CPU count) share
    them; otherwise they are measured here, one after another. `progress(done_samples,
    total_samples)`, if given, is called from the calling thread as pieces finish.
    """
    rate = timeline.sample_rate
    step = rate // 10
    piece = step * MEASURE_PIECE_STEPS
    total = timeline.total_samples
    spans = [(a, min(a + piece, total)) for a in range(0, total, piece)]

    def measure(span: tuple[int, int]) -> np.ndarray:
        start, stop = span
        meter = loudness.Meter(rate, 2)
        preroll = max(0, start - step * MEASURE_PREROLL_STEPS)
        for block in _raw_blocks(timeline, sources, preroll, 1 << 16, Mix(), start):
            meter.feed(block)
        meter.restart_steps()
        for block in _raw_blocks(timeline, sources, start, 1 << 16, Mix(), stop):
            meter.feed(block)
        return np.asarray(meter.step_energies, dtype="<f8")

    jobs = max(1, min(len(spans), jobs or os.cpu_count() or 1))
    energies: dict[int, np.ndarray] = {}
    done = 0

    def finished(index: int, steps: np.ndarray) -> None:
        nonlocal done
        energies[index] = steps
        done += spans[index][1] - spans[index][0]
        if progress is not None:
            progress(done, total)

    if jobs > 1 and _can_fork():
        _measure_forked(measure, spans, jobs, finished)
    for index, span in enumerate(spans):
        if index not in energies:
            finished(index, measure(span))
    lufs = loudness.gated_lufs(np.concatenate([energies[i] for i in range(len(spans))] or [[]]))
    if not np.isfinite(lufs):
        return 1.0
    return float(10 ** ((TARGET_LUFS - lufs) / 20))


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
    """Float samples in [-1, 1] to 16-bit PCM, rounding to nearest (no dither: deterministic)."""
    return np.round(np.clip(block, -1.0, 1.0) * 32767.0).astype(np.int16)


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
    drop = 10 ** (-(1.5 + 0.4 * max(0.0, 5.0 - quality)) / 20)
    return _ceiling(block, _CEILING * drop, _KNEE * drop)


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
