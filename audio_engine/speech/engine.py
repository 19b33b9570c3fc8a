"""What every speech engine is to relax, and the clip checks they share.

An engine (`Engine`) turns an `Utterance` spoken by one of its voices into a clip: float32 mono
at `model.SAMPLE_RATE` (44100 Hz) whose first and last samples are sound (silence trimmed, short
raised-cosine ramps at both ends), plausibly long for its words and rate, scaled by the voice's
volume. `voices.py` decides which engine and voice speaks a line, `cache.py` keeps the clips and
`synthesizer.py` runs the engines, several clips at once.

The checks here are written once for every engine: `trim_and_ramp` (silence under
`TRIM_THRESHOLD_DBFS`, `TRIM_MARGIN_S` kept, `RAMP_S` ramps), `plausible_range_s` (the shortest
and longest believable speech for a text at a rate) and `checked` (both, and the volume).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from audio_engine import model

if TYPE_CHECKING:  # numpy where a clip is made: choosing a voice needs none
    import numpy as np

TRIM_THRESHOLD_DBFS = -50.0
TRIM_MARGIN_S = 0.003
RAMP_S = 0.004


@dataclass(frozen=True)
class VoiceInfo:
    """An installed voice: `id` as its engine knows it, a display `name`, `languages` best first,
    and the `engine` that speaks it (its name, one of `model.ENGINES`)."""

    id: str
    name: str
    languages: tuple[str, ...]
    engine: str = "espeak"


class ClipRejected(Exception):
    """One attempt gave no usable clip (an engine retries, or turns it into a `TTSError`)."""


class Running:
    """What one synthesizer has running (worker processes, busy servers), to stop on close."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running: set = set()  # anything with a kill() method
        self.closed = False

    def add(self, worker) -> None:
        with self._lock:
            self._running.add(worker)
            if self.closed:
                worker.kill()

    def discard(self, worker) -> None:
        with self._lock:
            self._running.discard(worker)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            for worker in self._running:
                with contextlib.suppress(OSError):
                    worker.kill()


@runtime_checkable
class Engine(Protocol):
    """A speech engine.

    Attributes
    ----------
    name : str
        Its name in scripts and on the command line (`engine: neural`).
    in_process : bool
        Its clips are made in relax's own process, one after another, after a model has loaded
        (the neural voice); False: in worker processes, several at once, nothing to load
        (espeak-ng). The player's cold start estimates its waits from this.
    pauses_in_lines : bool
        Its lines hold pauses of their own (between sentences), so a stand-in for a line's
        loudness is made of its clips end to end rather than a steady level.
    synthetic : bool
        Its voices are made by a program (one version for all of them); False: each voice is a
        recording, whose id belongs in every key that depends on the sound.
    """

    name: str
    in_process: bool
    pauses_in_lines: bool
    synthetic: bool

    def available(self) -> bool:
        """Whether it is installed and can speak."""

    def voices(self) -> list[VoiceInfo]:
        """Its voices, best first."""

    def voice_for(self, language: str, name: str | None, *, explicit: bool) -> VoiceInfo | None:
        """Its voice for `language` (and `name`, a substring of a voice's id, name or language).

        None when no voice matches `name` and the engine was not asked for by name (`explicit`):
        the caller then looks among the other engines' voices. Raises `TTSError` otherwise."""

    def version(self) -> str:
        """What decides its clips' sound (versions of its parts): part of every cache key."""

    def load(self, voice: VoiceInfo) -> None:
        """Begin loading what `voice` needs, in the background, where that takes long."""

    def loaded(self) -> bool:
        """Whether its next clip comes without loading first."""

    def make_clip(
        self, utterance: model.Utterance, voice: VoiceInfo, running: Running | None = None
    ) -> np.ndarray:
        """The clip for `utterance` in `voice` (see the module's description); `running` tracks
        the worker processes it starts, to stop them when the synthesis is cancelled. Raises
        `TTSError` naming the text."""


def quoted(text: str, limit: int = 60) -> str:
    """`text` quoted for a one-line message: its first `limit` characters, then "..."."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def plausible_range_s(text: str, rate_wpm: int) -> tuple[float, float]:
    """Shortest and longest believable speech for `text` at `rate_wpm`, seconds (trimmed)."""
    words = len(re.findall(r"\w+", text))
    digits = len(re.findall(r"\d", text))
    pauses = len(re.findall(r"[,.;:!?\u2026]", text))
    per_word_s = 60.0 / rate_wpm
    floor_s = 0.3 * per_word_s * max(1, words - digits)
    # Numbers are spoken as several words ("1995" -> "nineteen ninety-five").
    ceiling_s = 4.0 * per_word_s * (words + 3 * digits) + 0.6 * pauses + 1.5
    return floor_s, ceiling_s


def raised_cosine(n: int) -> np.ndarray:
    """A fade-in of `n` samples (half a cosine period), float32."""
    import numpy as np

    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)


def trim_and_ramp(signal: np.ndarray) -> np.ndarray:
    """`signal` without the silence around it, `TRIM_MARGIN_S` kept, `RAMP_S` ramps at both ends.

    Raises `ClipRejected` when there is only silence."""
    import numpy as np

    threshold = 10.0 ** (TRIM_THRESHOLD_DBFS / 20.0)
    loud = np.flatnonzero(np.abs(signal) > threshold)
    if loud.size == 0:
        raise ClipRejected("the engine produced only silence")
    margin = round(TRIM_MARGIN_S * model.SAMPLE_RATE)
    start = max(0, int(loud[0]) - margin)
    stop = min(signal.size, int(loud[-1]) + 1 + margin)
    clip = signal[start:stop].astype(np.float32, copy=True)
    ramp_n = min(round(RAMP_S * model.SAMPLE_RATE), clip.size // 2)
    if ramp_n > 0:
        ramp = raised_cosine(ramp_n)
        clip[:ramp_n] *= ramp
        clip[-ramp_n:] *= ramp[::-1]
    return clip


def check_length(clip: np.ndarray, text: str, rate_wpm: int) -> np.ndarray:
    """`clip`, when its length is plausible for `text` at `rate_wpm`; else `ClipRejected`."""
    floor_s, ceiling_s = plausible_range_s(text, int(rate_wpm))
    speech_s = clip.size / model.SAMPLE_RATE
    if not floor_s <= speech_s <= ceiling_s:
        raise ClipRejected(
            f"implausible length {speech_s:.2f} s (expected {floor_s:.2f}-{ceiling_s:.2f} s)"
        )
    return clip


def checked(signal: np.ndarray, utterance: model.Utterance) -> np.ndarray:
    """An engine's raw speech for `utterance` as a clip: trimmed and ramped, its length checked
    (`ClipRejected`), not yet scaled by the volume (`scaled`)."""
    import numpy as np

    clip = trim_and_ramp(np.asarray(signal, dtype=np.float32))
    return check_length(clip, utterance.text, int(utterance.voice.rate_wpm))


def scaled(clip: np.ndarray, utterance: model.Utterance) -> np.ndarray:
    """`clip` at the utterance's volume, float32."""
    import numpy as np

    return (clip * np.float32(utterance.voice.volume)).astype(np.float32)


@functools.cache
def spec_origin(package: str) -> str | None:
    """Where `package` is installed (remembered: an install or upgrade takes a new process)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec and spec.origin else None


def package_stamp(package: str) -> list:
    """Where `package` is installed and when its files were written (an upgrade rewrites them):
    a cheap stand-in for its version (importlib.metadata costs ~50 ms of every start)."""
    origin = spec_origin(package)
    try:
        stat = os.stat(origin) if origin else None
    except OSError:
        stat = None
    return [package, origin, stat and stat.st_mtime_ns, stat and stat.st_size]


def norm_tag(tag: str) -> str:
    return tag.strip().replace("_", "-").lower()


def speaks(voice: VoiceInfo, language: str) -> bool:
    """Whether `voice` speaks `language`, compared by primary subtag (`en-GB` ~ `en`)."""
    primary = model.primary_language(language)
    return any(model.primary_language(norm_tag(t)) == primary for t in voice.languages)


def name_matches(voices: Iterable[VoiceInfo], name: str) -> list[VoiceInfo]:
    """The voices whose id, name or one of whose languages contains `name` (any case)."""
    needle = name.strip().lower()
    return [
        v
        for v in voices
        if needle in v.id.lower()
        or needle in v.name.lower()
        or any(needle in t.lower() for t in v.languages)
    ]
