"""The timeline stage: a validated `Session` plus speech clip lengths -> events on a sample clock.

Entry points:

- `speech_requests(session, voice_override=None) -> set[Utterance]`: every text the session speaks.
- `compile(session, clip_lengths, voice_override=None) -> Timeline`: events with integer start
  samples, chapters and the transcript. Raises `TimingError` listing every line of speech that does
  not fit the time the script gives it.
- `speech_order(session)`: the utterances in the order they are first spoken (what a player
  synthesizes first); `compile_partial(session, known, estimate)`: the timeline while clips are
  still being synthesized, with the sample up to which it is final.
- `slots(session, voice_override) -> list[Slot]`: the lines that must fit a set time, when the
  voice override sets a rate; every stage above takes `rates` (Slot -> words a minute), the rate
  each such line is spoken at (chosen at the edge, with real clip lengths: `pipeline.fit_rates`).

Rate rule (docs/authoring.md): a rate from the command line is the rate of every line that has
no set time. A line that must end within a set time (a breathing cue or count, a countdown
number, a scan prompt, a `say` with `duration`) is spoken at the rate `rates` gives it, between
the asked rate and the script's own rate and never faster than the script's own; without one,
at the slower of the two.

Timing rule (SESSION-FORMAT.md): every scheduled thing (a breathing phase, a count, a countdown
number, a scan region, a `say` with `duration`) starts on a sample computed from the script alone;
speech never pushes anything later. Only a `say` without `duration`, a stretch instruction (its hold
follows the instruction) and a chime last as long as their sound.

Durations in seconds become samples by rounding once, per phase or step, so that a phase of 4 s is
exactly 176400 samples and phase k of cycle c of a breathe step starts at the step's start + the
samples of every phase before it (c * the cycle's samples when no phase ramps). A ramped phase is
rounded once per cycle, from that cycle's value in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from audio_engine import chimes
from audio_engine.errors import Diagnostic, TimingError
from audio_engine.model import (
    DEFAULT_CUES,
    NO_ORIGIN,
    SAMPLE_RATE,
    Breathe,
    Chime,
    Layer,
    Origin,
    Pause,
    Repeat,
    Say,
    Scan,
    Section,
    Session,
    Step,
    Stretch,
    Utterance,
    Voice,
    primary_language,
)

MAX_SESSION_S = 4 * 3600
WARN_SESSION_S = 2 * 3600
SPEECH = "speech"
CHIME = "chime"
TONE = "tone"  # the breathing guide tone of one breathe step (not listed as a "sounding event")
PHASE_KINDS = ("inhale", "hold", "exhale", "rest")


@dataclass(frozen=True)
class ToneSpec:
    """The guide tone of one breathe step: one cycle's phases as (name, length_samples).

    When phases ramp, `cycle_lengths` holds every cycle's phase lengths in samples (the names
    are those of `phases`, which is then the first cycle); empty when every cycle is `phases`.
    """

    phases: tuple[tuple[str, int], ...]
    cycles: int
    cycle_lengths: tuple[tuple[int, ...], ...] = ()


@dataclass(frozen=True)
class Event:
    """One thing on the timeline, from `start_sample` (inclusive) to `end_sample` (exclusive)."""

    kind: str  # speech, chime, tone, or a breathing phase: inhale, hold, exhale, rest
    start_sample: int
    end_sample: int
    text: str = ""  # speech: the words; phase: its cue ("" when silent); chime: its name
    utterance: Utterance | None = None  # speech only
    chime: str | None = None  # chime only
    volume: float = 1.0  # chime only
    tone: ToneSpec | None = None  # tone only
    cycle: int = 0  # breathing phases: the cycle's number in its step, from 1 (0: not a phase)
    cycles: int = 0  # breathing phases: how many cycles the step has

    @property
    def duration_samples(self) -> int:
        return self.end_sample - self.start_sample


@dataclass(frozen=True)
class Chapter:
    title: str
    start_sample: int


@dataclass(frozen=True)
class Timeline:
    """A compiled session: everything that sounds, placed on the sample clock."""

    session: Session
    total_samples: int
    events: tuple[Event, ...]  # sorted by start_sample, then by kind order of creation
    chapters: tuple[Chapter, ...]
    background: tuple[Layer, ...]
    sample_rate: int = SAMPLE_RATE
    speech_intervals: tuple[tuple[int, int], ...] = field(default=(), repr=False)
    warnings: tuple[Diagnostic, ...] = field(default=(), repr=False)  # e.g. over 2 hours
    pauses: tuple[tuple[int, int], ...] = field(default=(), repr=False)  # each pause step's span

    @property
    def duration_s(self) -> float:
        return self.total_samples / self.sample_rate

    def transcript(self) -> tuple[Event, ...]:
        """Every spoken line, in order."""
        return tuple(e for e in self.events if e.kind == SPEECH)

    def sounding_events(self) -> tuple[Event, ...]:
        """What `relax info --json` lists: speech, breathing phases and chimes."""
        return tuple(e for e in self.events if e.kind != TONE)

    def chapter_at(self, sample: int) -> int:
        """Index of the chapter playing at `sample` (-1 before the first chapter)."""
        index = -1
        for i, chapter in enumerate(self.chapters):
            if chapter.start_sample <= sample:
                index = i
            else:
                break
        return index


def samples(seconds: float) -> int:
    """Seconds to a whole number of samples at the engine rate (rounded once, here only)."""
    return int(round(seconds * SAMPLE_RATE))


@dataclass(frozen=True)
class Slot:
    """A line of speech that must end within `room` samples of its start, as the script speaks
    it: `utterance` at the script's own rate (the voice override's other settings applied)."""

    utterance: Utterance
    room: int

    def at(self, rate_wpm: int) -> Utterance:
        """The line spoken at `rate_wpm`."""
        return replace(self.utterance, voice=replace(self.utterance.voice, rate_wpm=rate_wpm))


def speech_requests(
    session: Session,
    voice_override: Voice | None = None,
    rates: Mapping[Slot, int] | None = None,
) -> set[Utterance]:
    """Every utterance `compile` will need a clip length for."""
    return set(speech_order(session, voice_override, rates))


def speech_order(
    session: Session,
    voice_override: Voice | None = None,
    rates: Mapping[Slot, int] | None = None,
) -> list[Utterance]:
    """Every utterance `compile` will need, each once, in the order the session first speaks it."""
    builder = _Builder(session, _AnyLength(), voice_override, check=False, rates=rates)
    builder.run()
    return list(dict.fromkeys(builder.requested))


def speech_origins(
    session: Session,
    voice_override: Voice | None = None,
    rates: Mapping[Slot, int] | None = None,
) -> dict[Utterance, Origin]:
    """Where each utterance `compile` will need is first spoken: its step in the script."""
    builder = _Builder(session, _AnyLength(), voice_override, check=False, rates=rates)
    builder.run()
    return builder.spoken_at


def slots(session: Session, voice_override: Voice | None = None) -> list[Slot]:
    """Every line that must fit a set time, each once, when `voice_override` sets a rate (else
    none: every line is spoken at the script's rate and only checked)."""
    if voice_override is None or voice_override.rate_wpm is None:
        return []
    builder = _Builder(session, _AnyLength(), voice_override, check=False)
    builder.run()
    return list(dict.fromkeys(builder.slots))


def rooms(session: Session, voice_override: Voice | None = None) -> dict[Utterance, int]:
    """The samples each line whose time is set may last (a `say` with a `duration`, a cue in
    its phase, a count in its second, ...): the tightest wherever it is spoken. Lines that make
    their own room (a plain `say`) are not in it."""
    builder = _Builder(session, _AnyLength(), voice_override, check=False)
    builder.run()
    return dict(builder.rooms)


@dataclass(frozen=True)
class Partial:
    """A session compiled before every clip length is known (`compile_partial`).

    `timeline` places the unknown clips at estimated lengths; everything that starts before
    `first_unknown` (the first sample of the first unknown clip) is placed where the complete
    timeline will place it. `total_at_least` is the shortest the session can turn out.
    """

    timeline: Timeline
    first_unknown: int | None  # None: every length is known, `timeline` is the real one
    total_at_least: int

    @property
    def complete(self) -> bool:
        return self.first_unknown is None


def compile_partial(
    session: Session,
    known: Mapping[Utterance, int],
    estimate: Callable[[Utterance], int],
    voice_override: Voice | None = None,
    rates: Mapping[Slot, int] | None = None,
) -> Partial:
    """Compile with the clip lengths known so far, `estimate(u)` standing in for the others.

    Only a line of speech without a set duration moves what follows it, so every event that
    starts before the first unknown clip is final. Timing problems are not reported here (the
    complete `compile` reports them).
    """
    lengths = _Known(known, estimate)
    tl = compile(session, lengths, voice_override, strict=False, rates=rates)
    unknown = [e.start_sample for e in tl.events if e.kind == SPEECH and e.utterance not in known]
    if not unknown:
        return Partial(tl, None, tl.total_samples)
    at_least = compile(
        session, _Known(known, lambda u: 0), voice_override, strict=False, rates=rates
    )
    return Partial(tl, min(unknown), at_least.total_samples)


def compile(
    session: Session,
    clip_lengths: Mapping[Utterance, int],
    voice_override: Voice | None = None,
    *,
    strict: bool = True,
    rates: Mapping[Slot, int] | None = None,
) -> Timeline:
    """Place every step of `session` on the sample clock.

    Parameters
    ----------
    session : the validated session.
    clip_lengths : length in samples of each utterance's clip (from `speech_requests`).
    voice_override : settings that win over the script's (e.g. `relax play --rate 120`).
    strict : raise `TimingError` when speech does not fit (False: place it anyway, for estimates).
    rates : the rate of each line that must fit a set time (`slots`), when the voice override
        sets a rate; a line not in it is spoken at the slower of the asked and the script's rate.

    Example
    -------
    >>> tl = compile(session, {u: len(clip) for u, clip in clips.items()})
    >>> [(e.kind, e.start_sample) for e in tl.events][:2]
    """
    builder = _Builder(session, clip_lengths, voice_override, check=True, rates=rates)
    builder.run()
    where = session.origin if session.origin != NO_ORIGIN else Origin(_file(session), 1, 1, "")
    warnings = []
    if builder.cursor > samples(MAX_SESSION_S):
        builder.problem(
            where,
            f"the session lasts {_fmt_s(builder.cursor)} with its speech, longer than the "
            f"limit of 4 hours (by {_excess(builder.cursor - samples(MAX_SESSION_S))})",
        )
    elif builder.cursor > samples(WARN_SESSION_S):
        warnings.append(
            Diagnostic(
                where.file,
                where.line,
                where.col,
                where.path,
                f"the session lasts {_fmt_s(builder.cursor)} with its speech, over 2 hours",
                "warning",
            )
        )
    elif builder.cursor == 0:
        builder.problem(
            where,
            "the session has no length: nothing in it lasts a whole sample; add something that "
            "speaks or takes time",
        )
    if builder.problems and strict:
        raise TimingError(builder.problems)
    events = tuple(sorted(builder.events, key=lambda e: e.start_sample))
    intervals = _merge(
        [(e.start_sample, e.end_sample) for e in events if e.kind == SPEECH and e.end_sample > 0]
    )
    return Timeline(
        session=session,
        total_samples=builder.cursor,
        events=events,
        chapters=tuple(builder.chapters),
        background=session.background,
        speech_intervals=tuple(intervals),
        warnings=tuple(warnings),
        pauses=tuple(builder.pauses),
    )


# ---- internals ---------------------------------------------------------------------------------


class _AnyLength(Mapping):
    """Clip lengths for `speech_requests`: every utterance has length 0."""

    def __getitem__(self, key):
        return 0

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0


class _Known(Mapping):
    """Known clip lengths, with an estimate for the others."""

    def __init__(self, known: Mapping[Utterance, int], estimate: Callable[[Utterance], int]):
        self.known = known
        self.estimate = estimate

    def __getitem__(self, key):
        length = self.known.get(key)
        return self.estimate(key) if length is None else length

    def __iter__(self):
        return iter(self.known)

    def __len__(self):
        return len(self.known)


def _file(session: Session) -> str:
    return str(session.source) if session.source else "<memory>"


def _excess(n_samples: int) -> str:
    """How far past a limit, in as few digits as say it: `0.001 s`, `2.29 s`, `1,234 h 5 min ...`."""
    seconds = n_samples / SAMPLE_RATE
    return f"{seconds:.3g} s" if seconds < 1000 else _fmt_s(n_samples)


def _fmt_s(n_samples: int) -> str:
    seconds = n_samples / SAMPLE_RATE
    if seconds < 1e6:
        return f"{seconds:.2f} s"
    hours, rest = divmod(seconds, 3600)  # never a 10-digit count of seconds
    return f"{int(hours):,} h {int(rest // 60)} min {rest % 60:.2f} s"


def _fmt_pair(length: int, room: int) -> tuple[str, str]:
    """A length and the room it does not fit, in seconds with enough digits to tell them apart
    (2 to 5 decimals; "1.0024 s" and "1.0000 s", never "1.00 s" and "1.00 s")."""
    for digits in range(2, 6):
        a = f"{length / SAMPLE_RATE:.{digits}f}"
        b = f"{room / SAMPLE_RATE:.{digits}f}"
        if a != b:
            break
    return f"{a} s", f"{b} s"


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class _Builder:
    def __init__(self, session, lengths, voice_override, check, rates=None):
        self.session = session
        self.lengths = lengths
        self.voice_override = voice_override
        self.check = check
        self.cursor = 0
        self.events: list[Event] = []
        self.chapters: list[Chapter] = []
        self.problems: list[Diagnostic] = []
        self.requested: list[Utterance] = []
        self.spoken_at: dict[Utterance, Origin] = {}  # the step that first speaks each line
        self.where: Origin = NO_ORIGIN  # the step being placed
        self.slots: list[Slot] = []
        self.rooms: dict[Utterance, int] = {}  # the tightest room of each line
        self.last_rate = 0  # the rate of the line `speak` placed last
        self.rates = rates or {}
        self.asked = voice_override.rate_wpm if voice_override is not None else None
        if self.asked is not None:  # a fitted line's own voice: the override without its rate
            self.script_override = replace(voice_override, rate_wpm=None)
        self.pauses: list[tuple[int, int]] = []
        self.inherited: Voice | None = None  # the voice of the repeats around the current step
        # Only the words matter to `speech_requests`: it places chimes without their length.
        self.chime_samples = chimes.samples if check else lambda name: 0
        self._reported: set[tuple] = set()
        self._voices: dict[tuple, Voice] = {}
        lang = primary_language(session.language)
        self.default_cues = DEFAULT_CUES.get(lang, DEFAULT_CUES["en"])

    # -- helpers

    def problem(self, origin: Origin, message: str, notes: tuple[Diagnostic, ...] = ()) -> None:
        key = (origin, message)
        if key in self._reported:  # a repeat reports a problem once, not once per pass
            return
        self._reported.add(key)
        self.problems.append(
            Diagnostic(origin.file, origin.line, origin.col, origin.path, message, notes=notes)
        )

    def at(self, step: Step, name: str) -> Origin:
        """Where the value `name` of `step` is written (`duration`, `breathe.inhale`): the place
        to change when speech does not fit; the step itself when the script does not say."""
        return self.session.origin_of(f"{step.origin.path}.{name}", step.origin)

    def note(self, step: Step, name: str, message: str) -> tuple[Diagnostic, ...]:
        """A note line at the value `name` of `step`, when the script has that value."""
        where = self.session.origin_of(f"{step.origin.path}.{name}")
        if where == NO_ORIGIN or not step.origin.path:
            return ()
        return (Diagnostic(where.file, where.line, where.col, where.path, message, "note"),)

    def utterance(self, text: str, voice: Voice | None = None, override=...) -> Utterance:
        override = self.voice_override if override is ... else override
        key = (voice, self.inherited, override)
        resolved = self._voices.get(key)
        if resolved is None:  # a long session resolves the same few voices thousands of times
            merged = voice or Voice()
            if self.inherited is not None:
                merged = merged.over(self.inherited)
            merged = merged.over(self.session.voice)
            if override is not None:
                merged = override.over(merged)
            resolved = self._voices[key] = merged.resolved()
        return Utterance(text=text, language=self.session.language, voice=resolved)

    def speak(self, start: int, text: str, voice: Voice | None = None, room=None) -> int:
        """Place a spoken line at `start`; returns its length in samples. A line that must end
        within `room` samples gets its rate by the rate rule (module docstring)."""
        if room is None or self.asked is None:
            utt = self.utterance(text, voice)
        else:
            slot = Slot(self.utterance(text, voice, self.script_override), room)
            self.slots.append(slot)
            rate = self.rates.get(slot)
            if rate is None:
                rate = min(self.asked, slot.utterance.voice.rate_wpm)
            utt = slot.at(rate)
        self.requested.append(utt)
        self.spoken_at.setdefault(utt, self.where)
        if room is not None:
            self.rooms[utt] = min(room, self.rooms.get(utt, room))
        length = int(self.lengths[utt])
        self.events.append(Event(SPEECH, start, start + length, text=text, utterance=utt))
        self.last_rate = utt.voice.rate_wpm
        return length

    def too_long(
        self, what: str, text: str, length: int, room: int, rate: int, has: str = "", where=""
    ) -> str:
        """The message for a line of `length` samples, spoken at `rate`, that does not fit its
        `room` ("the 1.000 s it has", or `has`): with a rate from the command line, it names
        that rate and the script's own."""
        shown, room_s = _fmt_pair(length, room)
        has = has or f"the {room_s} it has"
        head = f'{what} "{_short(text)}" lasts {shown} when spoken'
        if self.asked is None:
            return f"{head}, longer than {has}{where}"
        if rate == self.asked:  # (not fitted: `compile` without `rates`)
            return f"{head} at --rate {rate}, longer than {has}{where}"
        if self.asked < rate:
            return (
                f"{head}, longer than {has}{where}, even at the script's own rate of {rate} "
                f"words a minute instead of --rate {self.asked}"
            )
        return (
            f"{head} at the script's own rate of {rate} words a minute, longer than {has}"
            f"{where} (--rate {self.asked} never makes a line that must fit its time faster)"
        )

    def speak_within(
        self,
        start: int,
        text: str,
        room: int,
        origin: Origin,
        what: str,
        voice: Voice | None,
        notes: tuple[Diagnostic, ...] = (),
    ) -> None:
        """Place a line that must end within `room` samples of its start."""
        length = self.speak(start, text, voice, room)
        if self.check and length > room:
            self.problem(origin, self.too_long(what, text, length, room, self.last_rate), notes)

    # -- the walk

    def run(self) -> None:
        self.steps(self.session.steps)

    def steps(self, steps: tuple[Step, ...]) -> None:
        for step in steps:
            self.step(step)

    def step(self, step: Step) -> None:
        start = self.cursor
        self.where = step.origin
        match step:
            case Section(title=title):
                self.chapters.append(Chapter(title, start))
            case Say(text=text, duration_s=None, voice=voice):
                self.cursor += self.speak(start, text, voice)
            case Say(text=text, duration_s=duration_s, voice=voice):
                room = samples(duration_s)
                length = self.speak(start, text, voice, room)
                if self.check and length > room:
                    has = f"its duration {duration_s:g} s"
                    self.problem(
                        self.at(step, "duration"),
                        self.too_long("say", text, length, room, self.last_rate, has),
                        self.note(step, "say", "the line is here"),
                    )
                self.cursor += room
            case Pause(duration_s=duration_s):
                self.cursor += samples(duration_s)
                self.pauses.append((start, self.cursor))
            case Chime(name=name, volume=volume):
                length = self.chime_samples(name)
                self.events.append(
                    Event(CHIME, start, start + length, text=name, chime=name, volume=volume)
                )
                self.cursor += length
            case Breathe():
                self.breathe(step)
            case Stretch():
                self.stretch(step)
            case Scan(dwell_s=dwell_s):
                dwell = samples(dwell_s)
                where = self.at(step, "scan.dwell")
                notes = self.note(step, "scan.prompt", "the prompt is here")
                for i, text in enumerate(step.texts()):
                    self.speak_within(
                        start + i * dwell, text, dwell, where, "scan prompt", step.voice, notes
                    )
                self.cursor += dwell * len(step.regions)
            case Repeat(times=times, steps=inner, voice=voice):
                outer = self.inherited
                if voice is not None:
                    self.inherited = voice if outer is None else voice.over(outer)
                try:
                    for _ in range(times):
                        self.steps(inner)
                finally:
                    self.inherited = outer
            case _:  # pragma: no cover - the model has no other steps
                raise TypeError(f"unknown step {step!r}")

    def breathe(self, step: Breathe) -> None:
        # Each cycle's phases as (name, samples, seconds): every phase rounded to samples once;
        # phase k of cycle c starts at the step's start + every earlier phase's samples.
        first = [(name, samples(s), s) for name, s in step.phases()]
        if step.varies:
            per_cycle = [
                [(name, samples(s), s) for name, s in step.cycle_phases(c)]
                for c in range(step.cycles)
            ]
        else:
            per_cycle = [first] * step.cycles
        lengths = tuple(tuple(n for _, n, _ in phases) for phases in per_cycle)
        total = sum(sum(cycle) for cycle in lengths)
        start = self.cursor
        if step.guide_tone:
            varying = lengths if len(set(lengths)) > 1 else ()
            spec = ToneSpec(tuple((name, n) for name, n, _ in first), step.cycles, varying)
            self.events.append(Event(TONE, start, start + total, tone=spec))
        # The tightest fit of each cue and count over the cycles, reported once.
        tightest: dict[tuple[str, str, str], tuple[int, int, int, float, int]] = {}

        def fit(
            what: str, name: str, at: int, text: str, room: int, cycle: int, seconds: float
        ) -> None:
            length = self.speak(at, text, step.voice, room)
            key = (what, name, text)
            if self.check and length > room and (key not in tightest or room < tightest[key][0]):
                tightest[key] = (room, length, cycle, seconds, self.last_rate)

        offset = start
        for c, phases in enumerate(per_cycle):
            for name, n, seconds in phases:
                cue = step.cues.get(name)
                if cue is None:
                    cue = self.default_cues[name]
                self.events.append(
                    Event(name, offset, offset + n, text=cue, cycle=c + 1, cycles=step.cycles)
                )
                if step.chime_on_phase:
                    length = self.chime_samples(step.chime_on_phase)
                    self.events.append(
                        Event(
                            CHIME,
                            offset,
                            offset + length,
                            text=step.chime_on_phase,
                            chime=step.chime_on_phase,
                            volume=0.5,
                        )
                    )
                counts = []
                if step.count:
                    # "2" on second 1, "3" on second 2, ... while a whole second remains.
                    counts = list(range(1, int(seconds + 1e-9)))
                first_count = offset + samples(counts[0]) if counts else offset + n
                if cue:
                    fit("cue", name, offset, cue, first_count - offset, c, seconds)
                for i, k in enumerate(counts):
                    at = offset + samples(k)
                    until = offset + samples(counts[i + 1]) if i + 1 < len(counts) else offset + n
                    fit("count", name, at, str(k + 1), until - at, c, seconds)
                offset += n
        for (what, name, text), (room, length, c, seconds, rate) in tightest.items():
            notes: tuple[Diagnostic, ...] = ()
            if what == "cue" and step.cues.get(name) is not None:
                # At the cue the script writes, with a note at the phase it must fit in.
                written = f"cues.{name}"
                notes = self.note(step, f"breathe.{name}", f"the {name} lasts {seconds:g} s")
            else:
                written = "count" if what == "count" else name
            ramps = name in dict(step.ramps)  # else every cycle gives the phase the same time
            where = f" in cycle {c + 1} of {step.cycles}, its shortest" if ramps else ""
            self.problem(
                step.origin_of(written),
                self.too_long(f"{name} {what}", text, length, room, rate, where=where),
                notes,
            )
        self.cursor = start + total

    def stretch(self, step: Stretch) -> None:
        if step.name:
            last = self.chapters[-1] if self.chapters else None
            if last is not None and last.start_sample == self.cursor:
                # A section followed at once by a named stretch: one chapter, one name.
                self.chapters[-1] = Chapter(chapter_title(last.title, step.name), self.cursor)
            else:
                self.chapters.append(Chapter(step.name, self.cursor))
        hold = samples(step.hold_s)
        for i, text in enumerate(step.sides):
            if i > 0:
                self.cursor += samples(step.rest_s)
            self.cursor += self.speak(self.cursor, text, step.voice)
            hold_start = self.cursor
            hold_end = hold_start + hold
            for number in range(step.countdown or 0, 0, -1):
                at = hold_end - samples(number)
                if at < hold_start:
                    continue  # the validator rejects a countdown longer than the hold
                self.speak_within(
                    at,
                    str(number),
                    samples(1),
                    self.at(step, "stretch.countdown"),
                    "countdown number",
                    step.voice,
                )
            self.cursor = hold_end


def chapter_title(section: str, stretch: str) -> str:
    """The one chapter of a section followed at once by a named stretch: "Section: Stretch", or
    only the longer title when one contains the other ("Neck" + "Neck stretch": "Neck stretch")."""
    a, b = section.casefold(), stretch.casefold()
    if a in b:
        return stretch
    if b in a:
        return section
    return f"{section}: {stretch}"


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
