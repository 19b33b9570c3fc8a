"""The audio side of the player: render blocks streamed onto one pygame mixer channel.

Entry point: `Stream(timeline, sources, gain, channel)`; call `pump()` often (a feeder thread
does, see `Stream.start_feeder`), read `position_sample()` for the display.

How it keeps time. The mixer plays one chunk and holds one more in the channel's queue; when the
playing chunk ends the mixer starts the queued one inside its own callback, so chunks join without
a gap. `pump()` sees that switch (the channel's queue slot is empty again), notes that the mixer
is now at the first sample of the next chunk, and queues the one after. The sample clock is
therefore exact at every chunk boundary: the samples handed to the mixer minus those still queued.
Inside a chunk the display position is interpolated from a monotonic clock anchored at that
boundary and clamped to the chunk, so it can never drift by more than one poll interval, and it
re-anchors every ~0.19 s. Nothing ever waits on a clock to decide when something sounds: what
sounds, and when, is the rendered stream itself (`render.blocks`, the same path as export).

A session whose speech is still being synthesized (`pipeline.Growing`) is fed only as far as its
timeline is final; the rest follows as the clips arrive, the same samples an export renders.

A stream started inside the session (`--from`) fades in over its first `CROSSFADE_SAMPLES`.
Listener controls that change the stream (skip, background mute) replace the queued chunk with a
transition chunk: the old stream's continuation fades out over `CROSSFADE_SAMPLES` while the new
one fades in. So a skip sounds at the next chunk boundary (within 0.19 s), never with a click, and
the display switches exactly when the sound does. Pause is the mixer's own channel pause: sample
exact, nothing lost or repeated.

The queued chunk is the feeder's slack: a feeder held up for longer than the chunk playing (a
machine starved of CPU time; or, while the session is growing, speech not yet synthesized) finds
the channel run dry, and the device plays silence until the next chunk starts. The samples are
still the same, only later; `Stream.dropouts` records where the sound resumed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from audio_engine import render
from audio_engine.render import Mix, Sources
from audio_engine.timeline import Timeline

CHUNK_SAMPLES = 8192  # ~0.19 s per queued sound: a skip within 0.19 s; the feeder's slack
CROSSFADE_SAMPLES = 882  # 20 ms raised-cosine crossfade on a skip or a remix
FEED_INTERVAL_S = 0.004  # how often the feeder thread looks at the channel


@dataclass(frozen=True)
class _Chunk:
    sound: object  # what the channel plays (a pygame.mixer.Sound)
    start_sample: int
    length_samples: int
    mix: Mix
    generation: int

    @property
    def end_sample(self) -> int:
        return self.start_sample + self.length_samples


def _fade_in(n: int) -> np.ndarray:
    x = (np.arange(n, dtype=np.float64) + 0.5) / n
    return (0.5 - 0.5 * np.cos(np.pi * x)).astype(np.float32)


class Stream:
    """One session streamed through a mixer channel, with a sample clock and listener controls.

    Parameters
    ----------
    timeline, sources : the prepared session.
    gain : the loudness gain (`pipeline.gain`), the same the export uses.
    channel : a `pygame.mixer.Channel` (or anything with its play, queue, get_queue, get_busy,
        get_sound, pause, unpause and stop methods).
    make_sound : int16 (n, 2) array -> a sound object for the channel.
    start_sample : where to begin.
    block_samples : samples per queued chunk.
    clock : monotonic seconds, used only to interpolate the display inside a chunk.
    mix : the listener's mix settings to start with.
    growing : a `pipeline.Growing` when speech is still being synthesized: `timeline` is then
        its latest, and a chunk is rendered only once it lies wholly before `final_until` (the
        edge moves ahead much faster than the session plays; at worst the sound waits there).
    heard : a list that receives the (start, end) session-sample ranges the listener has heard,
        in order, as each chunk ends (or the stream stops inside one); pauses add nothing.

    Example
    -------
    >>> stream = Stream(tl, sources, gain, pygame.mixer.Channel(0), make_sound)
    >>> stream.start_feeder()
    >>> stream.position_sample()
    """

    def __init__(
        self,
        timeline: Timeline,
        sources: Sources,
        gain: float,
        channel,
        make_sound: Callable[[np.ndarray], object],
        *,
        start_sample: int = 0,
        block_samples: int = CHUNK_SAMPLES,
        clock: Callable[[], float] = time.monotonic,
        mix: Mix = Mix(),  # noqa: B008 - frozen value
        growing=None,
        heard: list[tuple[int, int]] | None = None,
    ):
        self._timeline = timeline
        self.growing = growing
        self.sources = sources
        self.gain = gain
        self.channel = channel
        self.block_samples = block_samples
        self._make_sound = make_sound
        self._clock = clock
        self._lock = threading.RLock()
        self._generation = 0
        self._mix = mix
        self._next_sample = max(0, min(int(start_sample), timeline.total_samples))
        # Started inside the session (`--from`): the first chunk fades in, as a skip does.
        self._fade_first = self._next_sample > 0
        self._replace = False  # the queued chunk belongs to an old position or mix
        self._playing: _Chunk | None = None
        self._queued: _Chunk | None = None
        self._anchor_s = 0.0  # when the playing chunk was seen to start
        self._paused_at_s: float | None = None
        self._last_sample = self._next_sample
        self._finished = False
        self._feeder: threading.Thread | None = None
        self._stop = threading.Event()
        self.handed_samples = 0  # every sample handed to the mixer
        self.heard = heard if heard is not None else []  # see `heard` above
        self.first_sound_s: float | None = None  # clock() when the first chunk was handed over
        # Session samples where the sound resumed after the channel had run dry (the device
        # played silence before them), in the order they happened.
        self.dropouts: list[int] = []
        self.error: BaseException | None = None

    # ---- what the display reads ----------------------------------------------------------------

    @property
    def timeline(self) -> Timeline:
        """The session's timeline (while it is still growing, the latest one)."""
        return self.growing.timeline if self.growing is not None else self._timeline

    def _view(self) -> tuple[Timeline, int]:
        """(timeline, samples before this can be rendered now), read together."""
        growing = self.growing
        if growing is None:
            return self._timeline, self._timeline.total_samples
        if growing.error is not None:
            raise growing.error
        return growing.view()

    @property
    def mix(self) -> Mix:
        return self._mix

    @property
    def paused(self) -> bool:
        return self._paused_at_s is not None

    @property
    def finished(self) -> bool:
        """True once the last sample has been played (or the stream was stopped)."""
        return self._finished

    def clock_sample(self) -> int:
        """The exact sample clock: first sample of the chunk the mixer is playing now."""
        with self._lock:
            return self._playing.start_sample if self._playing else self._last_sample

    def position_sample(self) -> int:
        """The session sample the listener hears now (for the display and the controls)."""
        with self._lock:
            chunk = self._playing
            if chunk is None:
                return self._last_sample
            now = self._paused_at_s if self._paused_at_s is not None else self._clock()
            elapsed = int((now - self._anchor_s) * self.timeline.sample_rate)
            return chunk.start_sample + min(chunk.length_samples - 1, max(0, elapsed))

    def target_sample(self) -> int:
        """Where the listener is heading: a pending skip's target, else `position_sample()`."""
        with self._lock:
            if self._replace:
                return self._next_sample
            playing = self._playing
            if (
                self._queued is not None
                and playing
                and self._queued.generation != playing.generation
            ):
                return self._queued.start_sample
            return self.position_sample()

    # ---- controls ------------------------------------------------------------------------------

    def pause(self) -> None:
        with self._lock:
            if self._paused_at_s is None and not self._finished:
                self.channel.pause()
                self._paused_at_s = self._clock()

    def resume(self) -> None:
        with self._lock:
            if self._paused_at_s is not None:
                self.channel.unpause()
                self._anchor_s += self._clock() - self._paused_at_s
                self._paused_at_s = None

    def seek(self, start_sample: int, mix: Mix | None = None) -> None:
        """Go on from `start_sample` (with `mix`) once the chunk now playing ends, crossfaded."""
        with self._lock:
            if self._finished:
                return
            self._generation += 1
            self._mix = mix or self._mix
            self._next_sample = max(0, min(int(start_sample), self.timeline.total_samples - 1))
            self._replace = True
        self.pump()

    def remix(self, mix: Mix) -> None:
        """Go on from where the listener is heading with other mix settings (background mute)."""
        with self._lock:
            if self._replace:
                at = self._next_sample
            elif self._queued is not None:
                at = self._queued.start_sample
            elif self._playing is not None:
                at = self._playing.end_sample
            else:
                at = self._next_sample
        self.seek(at, mix)

    def stop(self) -> None:
        """Silence at once and stop feeding."""
        self._stop.set()
        with self._lock:
            if self._playing is not None:
                self._last_sample = self.position_sample()
                self._heard(self._playing, self._last_sample)
            self._finished = True
            self.channel.stop()
            self._playing = self._queued = None
        feeder = self._feeder
        if feeder is not None and feeder is not threading.current_thread():
            # A signal (SIGTERM's exit) can land inside `start_feeder` after the thread was
            # launched but before it said it runs: join() refuses such a thread, which sees the
            # stop flag and ends by itself (it is a daemon).
            with contextlib.suppress(RuntimeError):
                feeder.join()

    # ---- feeding the mixer ---------------------------------------------------------------------

    def wait(self, timeout_s: float) -> None:
        """Sleep up to `timeout_s`, waking early when the stream is stopped."""
        self._stop.wait(timeout_s)

    def start_feeder(self) -> None:
        """Pump from a background thread until the stream ends or is stopped."""
        self._feeder = threading.Thread(target=self._feed, name="relax-feeder", daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        try:
            while not self._stop.is_set() and not self._finished:
                self.pump()
                self._stop.wait(FEED_INTERVAL_S)
        except BaseException as exc:  # noqa: BLE001 - the main thread re-raises it
            self.error = exc
            self._finished = True

    def pump(self) -> None:
        """Note chunk switches; keep one chunk playing and the next one queued."""
        while True:
            timeline, ready = self._view()
            total = timeline.total_samples
            with self._lock:
                if self._finished:
                    return
                self._observe()
                if self._playing is not None and self._queued is not None and not self._replace:
                    return
                generation, start, mix = self._generation, self._next_sample, self._mix
                playing = self._playing
                tail_at = (playing.end_sample, playing.mix) if self._replace and playing else None
                if start >= total:
                    if self._playing is None:
                        self._finished = True
                    return
                n = min(self.block_samples, total - start)
                reach = max(start + n, tail_at[0] + CROSSFADE_SAMPLES if tail_at else 0)
                reach = min(reach, total)
                if reach > ready:
                    return  # the speech there is still being synthesized: feed it next time
            # Render outside the lock: the display keeps reading the clock meanwhile.
            out = self._render_range(timeline, start, n, mix)
            fade_first = self._fade_first and tail_at is None and self._playing is None
            if fade_first:
                m = min(CROSSFADE_SAMPLES, len(out))
                out = out.copy()
                out[:m] *= _fade_in(CROSSFADE_SAMPLES)[:m, None]
            if tail_at is not None:
                tail = self._render_range(timeline, tail_at[0], CROSSFADE_SAMPLES, tail_at[1])
                up = _fade_in(CROSSFADE_SAMPLES)
                m, k = min(len(up), len(out)), min(len(tail), len(out))
                out = out.copy()
                out[:m] *= up[:m, None]
                out[:k] += tail[:k] * up[::-1][:k, None]
            sound = self._make_sound(np.ascontiguousarray(render.to_int16(out)))
            with self._lock:
                if generation != self._generation:
                    continue  # a seek came in while rendering: render its target instead
                if self._next_sample != start:
                    continue  # another pump (a seek's, the feeder's) handed this chunk over
                self._observe()
                if tail_at is not None and (
                    self._playing is None or self._playing.end_sample != tail_at[0]
                ):
                    continue  # the chunk playing changed meanwhile: the tail must follow it
                self._hand_over(_Chunk(sound, start, n, mix, generation))
                self._next_sample = start + n
                self._replace = False
                self._fade_first = False

    def _hand_over(self, chunk: _Chunk) -> None:  # caller holds the lock
        if self._playing is None or not self.channel.get_busy():
            self._heard(self._playing)
            if self.handed_samples:  # not the first chunk: the channel had nothing left to play
                self.dropouts.append(chunk.start_sample)
            self.channel.play(chunk.sound)
            if self._paused_at_s is not None:
                self.channel.pause()
            self._playing, self._queued = chunk, None
            self._anchor_s = self._now()
        else:
            stale = self._queued
            self.channel.queue(chunk.sound)  # replaces a stale queued chunk (a skip)
            if stale is not None and self.channel.get_sound() is stale.sound:
                # It started in the microseconds between our look and the replacement.
                self._heard(self._playing)
                self._playing = stale
                self._anchor_s = self._now()
            self._queued = chunk
        self.handed_samples += chunk.length_samples
        if self.first_sound_s is None:
            self.first_sound_s = self._clock()

    def _observe(self) -> None:  # caller holds the lock
        if self._playing is None:
            return
        if self._queued is not None and self.channel.get_queue() is not self._queued.sound:
            # The mixer ended the playing chunk and started the queued one in its callback.
            self._heard(self._playing)
            self._playing, self._queued = self._queued, None
            self._anchor_s = self._now()
        if self._queued is None and self._paused_at_s is None and not self.channel.get_busy():
            self._last_sample = self._playing.end_sample
            self._heard(self._playing)
            self._playing = None
            if self._next_sample >= self.timeline.total_samples and not self._replace:
                self._finished = True

    def _heard(self, chunk: _Chunk | None, until: int | None = None) -> None:
        # The chunk stops playing: whole, or (stopped inside it) up to `until`.
        if chunk is None:
            return
        start, end = chunk.start_sample, chunk.end_sample if until is None else until
        if end <= start:
            return
        if self.heard and self.heard[-1][1] == start:
            self.heard[-1] = (self.heard[-1][0], end)
        else:
            self.heard.append((start, end))

    def _now(self) -> float:
        return self._paused_at_s if self._paused_at_s is not None else self._clock()

    def _render_range(self, timeline: Timeline, start: int, n: int, mix: Mix) -> np.ndarray:
        for block in render.blocks(
            timeline,
            self.sources,
            start_sample=start,
            block_samples=n,
            gain=self.gain,
            mix=mix,
            stop_sample=start + n,
        ):
            return block
        return np.zeros((0, 2), dtype=np.float32)
