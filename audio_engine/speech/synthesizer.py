"""The synthesizer: clips from the cache where present, else made by their engines in parallel.

- `synthesize_many(utterances, jobs=None, progress=None)` -> `{Utterance: clip}`, a whole session.
- `clip_lengths(utterances, ...)` -> `{Utterance: samples}`, keeping no clip in memory.
- `Synthesizer(jobs=None)`: `.request(utterances)` starts synthesis in the background, in order;
  `.clip(utterance, timeout=None)` blocks until that clip is ready (the player's cold start).
- `synthesize(utterance)` -> one clip; `cached(utterance)`, `cached_length(utterance)`: from the
  cache only. `ClipNotReady` (a `TTSError` and a `TimeoutError`) when `.clip()` times out.

Each clip is made by the engine `voices` picks for its line (`engine.Engine.make_clip`), several
at once on threads (espeak-ng's each in a process of its own; the neural voice's in this one), and
kept in the clip cache (`cache.py`). Whatever goes wrong while a clip is made reaches whoever waits
for it as a `TTSError` naming the line: a worker thread never dies silently.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from audio_engine import fsio, model
from audio_engine.errors import RelaxError, TTSError
from audio_engine.speech import cache, voices
from audio_engine.speech.engine import Running, VoiceInfo, quoted

if TYPE_CHECKING:  # numpy where a clip is made: choosing a voice needs none
    import numpy as np


class ClipNotReady(TTSError, TimeoutError):
    """`Synthesizer.clip` timed out before the clip was ready."""


def _path_of(utterance: model.Utterance) -> tuple[Path, VoiceInfo]:
    voice = voices.check_utterance(utterance)
    return cache.path_of(cache.key(utterance, voice.id, voices.version_of(voice))), voice


def cached(utterance: model.Utterance) -> np.ndarray | None:
    """The clip if the cache holds it, else None; never synthesizes."""
    return cache.load(_path_of(utterance)[0])


def cached_length(utterance: model.Utterance) -> int | None:
    """The cached clip's length in samples (from its header), else None; never synthesizes."""
    return cache.length(_path_of(utterance)[0])


def _produce(utterance: model.Utterance, running: Running | None = None) -> np.ndarray:
    path, voice = _path_of(utterance)
    clip = cache.load(path)
    if clip is None:
        clip = voices.engine(voice.engine).make_clip(utterance, voice, running)
        cache.store(path, clip)
    return clip


def _as_tts_error(exc: BaseException, utterance: model.Utterance) -> TTSError:
    """`exc`, raised while `utterance` was made, as one line for whoever waits for the clip."""
    if isinstance(exc, TTSError):
        return exc
    if isinstance(exc, RelaxError):
        error = TTSError(str(exc))
    elif isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        error = TTSError(
            f"could not make the speech for {quoted(utterance.text)}: {fsio.describe(exc)}{where}; "
            "check that folder, or set RELAX_CACHE_DIR and TMPDIR to folders that can be written"
        )
    else:
        error = TTSError(
            f"could not make the speech for {quoted(utterance.text)}: {type(exc).__name__}: {exc}"
        )
    error.__cause__ = exc
    return error


# ---- the public synthesizers -------------------------------------------------------------------


class Synthesizer:
    """Background synthesis for a player's cold start: request in order, take clips as they come.

    Parameters
    ----------
    jobs : int, optional
        Worker processes at once; default the CPU count.
    keep_clips : bool
        False: keep only each clip's length (read the clip back from the cache when it plays).

    Examples
    --------
    >>> with Synthesizer() as synth:
    ...     synth.request(utterances)          # returns at once
    ...     first = synth.clip(utterances[0])  # blocks until that clip is ready
    """

    def __init__(self, jobs: int | None = None, *, keep_clips: bool = True):

        self._jobs = max(1, jobs or os.cpu_count() or 1)
        self._cond = threading.Condition()
        self._pending: deque[model.Utterance] = deque()
        self._known: set[model.Utterance] = set()
        self._results: dict[model.Utterance, np.ndarray] = {}
        self._errors: dict[model.Utterance, TTSError] = {}
        self._threads: list[threading.Thread] = []
        self._running = Running()
        self._closed = False
        self._keep_clips = keep_clips  # False: keep only each clip's length (in the cache)

    def __enter__(self) -> Synthesizer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def finished(self) -> int:
        """How many requested clips are ready or failed."""
        with self._cond:
            return len(self._results) + len(self._errors)

    def results(self) -> dict:
        """What is ready so far: utterance -> clip (or its length, when clips are not kept)."""
        with self._cond:
            return dict(self._results)

    def failure(self) -> TTSError | None:
        """The first failed request's error, if any."""
        with self._cond:
            return next(iter(self._errors.values()), None)

    def request(self, utterances: Iterable[model.Utterance]) -> None:
        """Queue `utterances` (in this order, after earlier requests) and return at once."""
        utterances = list(utterances)
        voices.warn_fallbacks(utterances)
        with self._cond:
            if self._closed:
                raise TTSError("the synthesizer is closed")
            for u in utterances:
                if u not in self._known:
                    self._known.add(u)
                    self._pending.append(u)
            self._start_threads()

    def clip(self, utterance: model.Utterance, timeout: float | None = None) -> np.ndarray:
        """The clip for `utterance`, waiting for it (and moving it to the front of the queue).

        Raises
        ------
        errors.TTSError
            Its synthesis failed; `ClipNotReady` (also a `TimeoutError`) after `timeout` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if self._closed:
                raise TTSError("the synthesizer is closed")
            if utterance not in self._known:
                self._known.add(utterance)
                self._pending.appendleft(utterance)
                self._start_threads()
            elif utterance in self._pending:
                self._pending.remove(utterance)
                self._pending.appendleft(utterance)
            while utterance not in self._results and utterance not in self._errors:
                remaining = None if deadline is None else deadline - time.monotonic()
                if self._closed or (remaining is not None and remaining <= 0):
                    raise ClipNotReady(f"speech for {utterance.text!r} is not ready yet")
                self._cond.wait(remaining)
            if utterance in self._errors:
                raise TTSError(str(self._errors[utterance]))
            return self._results[utterance]

    def wait_finished(self, count: int, timeout: float | None = None) -> int:
        """Block until more than `count` requests are ready (or all are); return how many are.

        Raises
        ------
        errors.TTSError
            The first failure among the requests, as soon as there is one.
        """
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    self._closed
                    or self._errors
                    or len(self._results) > count
                    or len(self._results) >= len(self._known)
                ),
                timeout,
            )
            if self._errors:
                raise TTSError(str(next(iter(self._errors.values()))))
            return len(self._results)

    def close(self) -> None:
        """Drop what is still queued, stop running workers and wait for the threads."""
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._cond.notify_all()
        self._running.close()
        for thread in self._threads:
            if thread.ident is not None:  # a Ctrl-C inside start() can leave one never started
                thread.join()

    def _start_threads(self) -> None:  # caller holds the lock
        self._threads = [t for t in self._threads if t.is_alive()]
        while len(self._threads) < min(self._jobs, len(self._pending)):
            thread = threading.Thread(target=self._work, name="relax-tts", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                if self._closed or not self._pending:
                    return
                utterance = self._pending.popleft()
            try:
                clip = _produce(utterance, self._running)
            except BaseException as exc:  # noqa: BLE001 - whatever it is, the waiting side hears it
                with self._cond:
                    self._errors[utterance] = _as_tts_error(exc, utterance)
                    self._cond.notify_all()
                continue
            with self._cond:
                self._results[utterance] = clip if self._keep_clips else len(clip)
                self._cond.notify_all()


def synthesize_many(
    utterances: Iterable[model.Utterance],
    *,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[model.Utterance, np.ndarray]:
    """Every clip, from the cache where present, the rest synthesized in parallel.

    Parameters
    ----------
    utterances : iterable of model.Utterance
        Texts with their language and resolved voice (rate and volume set).
    jobs : int, optional
        Worker processes at once; default the CPU count.
    progress : callable, optional
        Called as ``progress(done, total)`` from the calling thread as clips finish.

    Returns
    -------
    dict
        Utterance -> float32 mono clip at `model.SAMPLE_RATE`.

    Raises
    ------
    errors.TTSError
        A language has no voice, or a text could not be synthesized (naming it).
    """
    wanted = list(dict.fromkeys(utterances))
    voices.check_all(wanted)  # fail on a missing voice before any synthesis starts
    voices.warn_fallbacks(wanted)
    total = len(wanted)
    if progress is not None:
        progress(0, total)
    with Synthesizer(jobs) as synth:
        synth.request(wanted)
        done = 0
        while done < total:
            now = synth.wait_finished(done)
            if now != done and progress is not None:
                progress(now, total)
            done = now
        return {u: synth.clip(u) for u in wanted}


def clip_lengths(
    utterances: Iterable[model.Utterance],
    *,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    warn: bool = True,
) -> dict[model.Utterance, int]:
    """Every clip's length in samples, synthesizing (into the cache) what is missing.

    Unlike `synthesize_many` this keeps no clip in memory, so a long session with a lot of speech
    prepares in flat memory; the clips are read back from the cache when they play (`cached`).
    Lengths of cached clips come from their headers alone. `warn=False`: say nothing of the
    recorded voice's fallback (the caller has).
    """
    wanted = list(dict.fromkeys(utterances))
    voices.check_all(wanted)
    if warn:
        voices.warn_fallbacks(wanted)
    lengths: dict[model.Utterance, int] = {}
    missing = []
    for u in wanted:  # fail on a missing voice before any synthesis starts
        n = cache.length(_path_of(u)[0])
        if n is None:
            missing.append(u)
        else:
            lengths[u] = n
    total = len(wanted)
    if progress is not None:
        progress(len(lengths), total)
    if missing:
        with Synthesizer(jobs, keep_clips=False) as synth:
            synth.request(missing)
            done = 0
            while done < len(missing):
                now = synth.wait_finished(done)
                if now != done and progress is not None:
                    progress(len(lengths) + now, total)
                done = now
            for u in missing:
                synth.clip(u)  # raises the TTSError of a clip that failed
                lengths[u] = synth._results[u]
    return lengths


def synthesize(utterance: model.Utterance) -> np.ndarray:
    """One clip: float32 mono at `model.SAMPLE_RATE`, from the cache where present.

    Raises
    ------
    errors.TTSError
        No voice for the language, or the text could not be synthesized.
    """
    return _produce(utterance)
