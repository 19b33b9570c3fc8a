"""The session model: what a validated script means, as frozen values.

`audio_engine.script.load()` builds these from YAML; `audio_engine.timeline.compile()` turns a
`Session` into sample-accurate events. Every time value is in seconds (`*_s`) here; samples appear
only from the timeline on. Every step carries an `Origin` so later stages (timing checks with the
real voice) can report `FILE:LINE:COL` and the value path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from audio_engine.langtag import primary_language  # noqa: F401 - here too, as always

FORMAT_VERSIONS = (1,)

CHIMES = ("bell", "bowl", "soft")
NOISE_COLORS = ("white", "pink", "brown")
PHASES = ("inhale", "hold", "exhale", "rest")

# Voice defaults where neither the session nor the step says otherwise.
DEFAULT_RATE_WPM = 150
DEFAULT_VOLUME = 1.0
DEFAULT_CHIME_VOLUME = 0.5

# Built-in breathing cue words by primary language subtag.
DEFAULT_CUES: dict[str, dict[str, str]] = {
    "en": {"inhale": "Breathe in", "hold": "Hold", "exhale": "Breathe out", "rest": "Rest"},
    "nl": {"inhale": "Adem in", "hold": "Vasthouden", "exhale": "Adem uit", "rest": "Rust"},
}


@dataclass(frozen=True)
class Origin:
    """Where a value came from: file, 1-based line and column, and the value path."""

    file: str = "<memory>"
    line: int = 1
    col: int = 1
    path: str = ""


NO_ORIGIN = Origin()


class Origins(Mapping):
    """Value path -> `Origin` in one file, read-only (a frozen session's table of where its
    values are). Kept as (line, column) pairs: a script has one per value, most never asked."""

    def __init__(self, file: str = "<memory>", places: Mapping[str, tuple[int, int]] | None = None):
        self._file = file
        self._places = dict(places or {})

    def __getitem__(self, path: str) -> Origin:
        line, col = self._places[path]
        return Origin(self._file, line, col, path)

    def __iter__(self):
        return iter(self._places)

    def __len__(self) -> int:
        return len(self._places)


# Speech engines: the neural English voice (hibari-tts) and espeak-ng (through pyttsx3).
ENGINES = ("neural", "espeak")
# A human voice recorded line by line (`voice: {engine: recorded, folder: ...}` in a script).
RECORDED = "recorded"
SCRIPT_ENGINES = (*ENGINES, RECORDED)
# What speaks a line the recorded voice has no recording of: an engine, or nothing (an error).
NO_FALLBACK = "none"
FALLBACKS = (*ENGINES, NO_FALLBACK)


@dataclass(frozen=True)
class Voice:
    """Voice settings; `None` means "inherit" (step from session, session from defaults).

    `engine` is one of `SCRIPT_ENGINES`; None: the language decides (English: the neural voice
    where it is installed; every other language: espeak-ng). `folder` (absolute) and `fallback`
    (one of `FALLBACKS`; None: the language's usual engine) belong to the recorded voice."""

    name: str | None = None
    rate_wpm: int | None = None
    volume: float | None = None
    engine: str | None = None
    folder: Path | None = None
    fallback: str | None = None

    @property
    def chooses(self) -> bool:
        """Whether these settings choose a voice (`name`) or an engine (`engine`): what only the
        speech engines can check."""
        return bool(self.name or self.engine)

    def over(self, base: Voice | None) -> Voice:
        """These settings, with unset fields taken from `base`."""
        if base is None:
            return self
        return Voice(
            name=self.name if self.name is not None else base.name,
            rate_wpm=self.rate_wpm if self.rate_wpm is not None else base.rate_wpm,
            volume=self.volume if self.volume is not None else base.volume,
            engine=self.engine if self.engine is not None else base.engine,
            folder=self.folder if self.folder is not None else base.folder,
            fallback=self.fallback if self.fallback is not None else base.fallback,
        )

    def resolved(self) -> Voice:
        """Every field set: unset rate and volume get the defaults; name and engine stay None
        (decided by the language)."""
        return Voice(
            name=self.name,
            rate_wpm=self.rate_wpm if self.rate_wpm is not None else DEFAULT_RATE_WPM,
            volume=self.volume if self.volume is not None else DEFAULT_VOLUME,
            engine=self.engine,
            folder=self.folder,
            fallback=self.fallback,
        )


# ---- steps -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Say:
    text: str
    duration_s: float | None = None
    voice: Voice | None = None
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True)
class Pause:
    duration_s: float
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True)
class Chime:
    name: str
    volume: float = DEFAULT_CHIME_VOLUME
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True)
class Section:
    title: str
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True)
class Cues:
    """Spoken cue per phase. `None`: the language's default; `""`: silent."""

    inhale: str | None = None
    hold: str | None = None
    exhale: str | None = None
    rest: str | None = None

    def get(self, phase: str) -> str | None:
        return getattr(self, phase)


@dataclass(frozen=True)
class Ramp:
    """A breathing phase whose length changes from cycle to cycle of its `breathe` step.

    Linear (`to_s` set): cycle c (0-based) of N lasts `from_s + (to_s - from_s) * c / (N - 1)`
    seconds; a step of one cycle lasts `from_s`. Stepped (`step_s` set): `from_s + step_s *
    (c // every)`, held at `max_s` when it rises past it or at `min_s` when it falls past it.
    Each cycle's value is rounded to samples once, by the timeline, like any phase.
    """

    from_s: float
    to_s: float | None = None
    step_s: float | None = None
    every: int = 1
    max_s: float | None = None
    min_s: float | None = None

    def seconds(self, cycle: int, cycles: int) -> float:
        """The phase's length in cycle `cycle` (0-based) of a step of `cycles` cycles."""
        if self.to_s is not None:
            if cycles <= 1:
                return self.from_s
            return self.from_s + (self.to_s - self.from_s) * cycle / (cycles - 1)
        value = self.from_s + (self.step_s or 0.0) * (cycle // self.every)
        if self.max_s is not None:
            value = min(value, self.max_s)
        if self.min_s is not None:
            value = max(value, self.min_s)
        return value


@dataclass(frozen=True)
class Breathe:
    """A paced breathing exercise. A ramped phase's `*_s` field holds its first cycle's length;
    `ramps` says how it changes (`cycle_phases` gives any cycle's lengths)."""

    inhale_s: float
    exhale_s: float
    hold_s: float = 0.0
    rest_s: float = 0.0
    cycles: int = 1
    cues: Cues = field(default_factory=Cues)
    count: bool = False
    guide_tone: bool = False
    chime_on_phase: str | None = None
    voice: Voice | None = None  # for the cues and counts
    origin: Origin = NO_ORIGIN
    ramps: tuple[tuple[str, Ramp], ...] = ()  # (phase, ramp) for the phases that change
    # Where the phases and cues are written ("exhale", "cues.exhale"): timing errors point there.
    origins: tuple[tuple[str, Origin], ...] = field(default=(), compare=False)

    def phases(self) -> tuple[tuple[str, float], ...]:
        """The non-zero phases of one cycle (the first, when phases ramp), as (name, seconds)."""
        all_phases = (
            ("inhale", self.inhale_s),
            ("hold", self.hold_s),
            ("exhale", self.exhale_s),
            ("rest", self.rest_s),
        )
        return tuple((name, s) for name, s in all_phases if s > 0)

    @property
    def varies(self) -> bool:
        """Whether some phase changes across the cycles."""
        return bool(self.ramps)

    def cycle_phases(self, cycle: int) -> tuple[tuple[str, float], ...]:
        """The non-zero phases of cycle `cycle` (0-based), in order, as (name, seconds)."""
        if not self.ramps:
            return self.phases()
        ramps = dict(self.ramps)
        return tuple(
            (name, ramps[name].seconds(cycle, self.cycles) if name in ramps else s)
            for name, s in self.phases()
        )

    def origin_of(self, key: str) -> Origin:
        """Where `key` ("exhale", "cues.exhale") is written; the step's origin if not known."""
        return dict(self.origins).get(key, self.origin)


@dataclass(frozen=True)
class Stretch:
    hold_s: float
    name: str | None = None
    sides: tuple[str, ...] = ()  # one instruction per side; a plain `say:` is one side
    countdown: int | None = None
    rest_s: float = 3.0
    voice: Voice | None = None
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True)
class Scan:
    prompt: str  # contains "{region}"
    regions: tuple[str, ...]
    dwell_s: float
    voice: Voice | None = None
    origin: Origin = NO_ORIGIN

    def texts(self) -> tuple[str, ...]:
        return tuple(self.prompt.replace("{region}", r) for r in self.regions)


@dataclass(frozen=True)
class Repeat:
    times: int
    steps: tuple[Step, ...]
    voice: Voice | None = None  # the default for the steps inside (their own voice wins)
    origin: Origin = NO_ORIGIN


Step = Say | Pause | Chime | Section | Breathe | Stretch | Scan | Repeat


# ---- background layers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Drone:
    frequency_hz: float
    volume: float
    fade_in_s: float = 3.0
    fade_out_s: float = 5.0
    duck: float = 0.5


@dataclass(frozen=True)
class Binaural:
    carrier_hz: float
    beat_hz: float
    volume: float
    fade_in_s: float = 3.0
    fade_out_s: float = 5.0
    duck: float = 0.5


@dataclass(frozen=True)
class Noise:
    color: str  # one of NOISE_COLORS
    volume: float
    fade_in_s: float = 3.0
    fade_out_s: float = 5.0
    duck: float = 0.5


@dataclass(frozen=True)
class SoundFile:
    path: Path  # absolute, already checked to stay inside the allowed folders
    volume: float
    loop: bool = True
    fade_in_s: float = 3.0
    fade_out_s: float = 5.0
    duck: float = 0.5
    origin: Origin = field(default=NO_ORIGIN, compare=False)  # where `file:` is in the script


Layer = Drone | Binaural | Noise | SoundFile


# ---- the session -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    title: str
    language: str
    steps: tuple[Step, ...]
    id: str = "session"
    format: int = 1
    description: str = ""
    tags: tuple[str, ...] = ()
    voice: Voice = field(default_factory=Voice)
    background: tuple[Layer, ...] = ()
    source: Path | None = None  # the script file, when loaded from one
    origin: Origin = NO_ORIGIN  # where the steps list starts (session-wide problems point here)
    voice_origin: Origin = field(default=NO_ORIGIN, compare=False)  # where `voice:` is
    # Where each value of the script is, by value path (`steps[2].breathe.inhale`): later stages
    # report a problem at the value to change (`origin_of`), not only at its step.
    value_origins: Mapping[str, Origin] = field(
        default_factory=lambda: Origins(), compare=False, repr=False
    )

    def origin_of(self, path: str, default: Origin = NO_ORIGIN) -> Origin:
        """Where the value at `path` is written, or `default` when the script has none there."""
        return self.value_origins.get(path, default)


# ---- what the voice is asked to say ----------------------------------------------------------

SAMPLE_RATE = 44100  # the engine's sample rate, Hz; every sample index in the project counts at it


@dataclass(frozen=True)
class Utterance:
    """One spoken text with everything that decides its sound: the key of a speech clip."""

    text: str
    language: str  # BCP 47 tag of the session
    voice: Voice  # resolved: rate_wpm and volume set; name None means "the language's voice"
