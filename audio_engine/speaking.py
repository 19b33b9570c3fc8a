"""What a session says and how fast: its voices checked, the rates that fit, every line's clip.

The part of preparing a session that needs the script, the voices and the speech cache only (no
numpy, no render): `relax info` places the steps with it, and `pipeline.prepare` builds on it.

- `check_voice_names(session, voice_override=None)`: every voice the script or the command line
  names is installed and speaks the session's language (`ScriptError` at each that is not).
- `fit_rates(session, voice_override) -> {Slot: wpm}`: with a rate from the command line, the
  rate of each line that must fit a set time: as slow as still fits, between the asked rate and
  the script's own (`timeline.slots`; searched with real clip lengths, a few candidates each).
- `check_recordings(session, voice_override=None)`: every line a recorded voice with
  `fallback: none` speaks has its recording (`ScriptError` at the step of each that has none).
- `check(session, voice_override=None)`: both checks.
- `spoken(session, voice_override=None, progress=None) -> (lengths, rates)`: `check`, then
  `lengths_and_rates`: the rates, then every line's clip synthesized into the cache (only its
  length kept).
- `timeline_of(session, voice_override=None, progress=None) -> Timeline`: the session placed with
  those lengths (timing checked with the real voice).
"""

from __future__ import annotations

from audio_engine import timeline, tts
from audio_engine.errors import Diagnostic, ScriptError
from audio_engine.model import NO_ORIGIN, Repeat, Session, Voice
from audio_engine.speech import voices as speech_voices
from audio_engine.timeline import Timeline


def check(session: Session, voice_override: Voice | None = None) -> None:
    """What must hold before any line is made: `check_voice_names` and `check_recordings`."""
    check_voice_names(session, voice_override)
    check_recordings(session, voice_override)


def spoken(session: Session, voice_override: Voice | None = None, progress=None):
    """(lengths, rates): the session checked (`check`), then `lengths_and_rates`."""
    check(session, voice_override)
    return lengths_and_rates(session, voice_override, progress)


def lengths_and_rates(
    session: Session, voice_override: Voice | None = None, progress=None, lengths_of=None
):
    """(lengths, rates): the rates fitted (`fit_rates`) and every line's clip length, made where
    the cache has none by `lengths_of` (`tts.clip_lengths`, or a process apart's)."""
    lengths_of = lengths_of or tts.clip_lengths
    rates = fit_rates(session, voice_override, lengths_of=lengths_of)
    utterances = timeline.speech_requests(session, voice_override, rates)
    lengths = lengths_of(sorted(utterances, key=order_key), progress=progress)
    return lengths, rates


def timeline_of(session: Session, voice_override: Voice | None = None, progress=None) -> Timeline:
    """The session's timeline with its real clip lengths (`spoken`)."""
    lengths, rates = spoken(session, voice_override, progress)
    return timeline.compile(session, lengths, voice_override, rates=rates)


FIT_STEPS = 4  # rounds of synthesis after the asked rate's, at most
FIT_NEAR_WPM = 2  # a rate found to fit is tried again this much slower, once


def fit_rates(session: Session, voice_override: Voice | None = None, lengths_of=None) -> dict:
    """The rate of each line that must fit a set time (`timeline.slots`), when the voice
    override sets a rate (docs/authoring.md, "Speaking rate").

    The asked rate when the line fits at it; else the slowest of a few rates tried between the
    asked and the script's own rate at which it fits; never faster than the script's own rate
    (a line that does not fit even at that is spoken at it, and `timeline.compile` reports it).

    The search, per line: the asked rate; then the rate its clip's length there predicts (speech
    lasts about inversely as long as its rate); then `FIT_NEAR_WPM` to the other side of that,
    which usually closes the range; then halving what is left. Every candidate's clip is
    synthesized into the speech cache, all the lines of one round at once: at most
    1 + `FIT_STEPS` rounds, usually 3. `lengths_of`: what makes the clips and gives their
    lengths (`tts.clip_lengths`, or a process apart's).
    """
    slots = timeline.slots(session, voice_override)
    if not slots:
        return {}
    asked = voice_override.rate_wpm
    rates = {}
    bounds = {}  # slot -> (a rate at which it does not fit, a rate at which it fits)
    for slot in slots:
        own = slot.utterance.voice.rate_wpm
        if asked >= own:
            rates[slot] = own  # never faster than the script asks
        else:
            bounds[slot] = (asked, own)

    def lengths_at(wanted: dict) -> dict:
        found = (lengths_of or tts.clip_lengths)(
            sorted({s.at(r) for s, r in wanted.items()}, key=order_key)
        )
        return {s: found[s.at(r)] for s, r in wanted.items()}

    # First round: the asked rate; what fits at it is done; the rest get a predicted rate.
    probe = {}
    for slot, n in lengths_at({s: lo for s, (lo, _) in bounds.items()}).items():
        if n <= slot.room:
            rates[slot] = asked
            del bounds[slot]
        else:
            lo, hi = bounds[slot]
            probe[slot] = min(hi - 1, max(lo + 1, -(-lo * n // max(1, slot.room))))
    near = True
    for _ in range(FIT_STEPS):
        probe = {s: r for s, r in probe.items() if bounds[s][0] < r < bounds[s][1]}
        if not probe:
            break
        fitted = {}
        for slot, n in lengths_at(probe).items():
            lo, hi = bounds[slot]
            fitted[slot] = n <= slot.room
            bounds[slot] = (lo, probe[slot]) if fitted[slot] else (probe[slot], hi)
        probe = {}
        for slot, (lo, hi) in bounds.items():
            if hi - lo <= 1:
                continue
            if near and slot in fitted:  # just to the other side of the last probe, once
                probe[slot] = hi - FIT_NEAR_WPM if fitted[slot] else lo + FIT_NEAR_WPM
            else:  # then halving
                probe[slot] = (lo + hi) // 2
        near = False
    for slot, (_, hi) in bounds.items():
        rates[slot] = hi
    return rates


def base_voice(session: Session, voice_override: Voice | None) -> Voice:
    return (voice_override or Voice()).over(session.voice)


def check_voice_names(session: Session, voice_override: Voice | None = None) -> None:
    """Every voice `name:` and `engine:` of the script names an installed voice that speaks the
    session's language; else `ScriptError` at each (an overriding name or engine, from the
    command line, is checked first and reported plainly)."""
    override = voice_override or Voice()
    if override.chooses:
        tts.voice_for(session.language, override.name, override.engine)
        if override.name and override.engine:
            return  # it wins over every voice in the script
    problems = []

    def check(voice: Voice | None, where, path: str) -> None:
        if voice is None or not voice.chooses:
            return
        # The voice these lines get: the command line over the step over the session.
        merged = override.over(voice.over(session.voice))
        try:
            speech_voices.check_voice(session.language, merged)
        except tts.TTSError as exc:
            where = session.origin_of(path, where)  # at the name itself where the script says
            problem = Diagnostic(where.file, where.line, where.col, path, str(exc))
            if problem not in problems:
                problems.append(problem)

    def walk(steps) -> None:
        for step in steps:
            where = step.origin
            voice = getattr(step, "voice", None)
            key = "name" if voice is not None and voice.name else "engine"
            check(voice, where, f"{where.path}.voice.{key}".lstrip("."))
            if isinstance(step, Repeat):
                walk(step.steps)

    where = session.voice_origin if session.voice_origin != NO_ORIGIN else session.origin
    check(session.voice, where, "voice.name" if session.voice.name else "voice.engine")
    walk(session.steps)
    if problems:
        raise ScriptError(problems)


def check_recordings(session: Session, voice_override: Voice | None = None) -> None:
    """Every line a recorded voice with `fallback: none` speaks has its recording; else
    `ScriptError` at the step of each line that has none."""
    problems = []
    for utterance, where in timeline.speech_origins(session, voice_override).items():
        message = speech_voices.missing_recording(utterance)
        if message is not None:
            if where == NO_ORIGIN:
                where = session.origin
            problems.append(Diagnostic(where.file, where.line, where.col, where.path, message))
    if problems:
        raise ScriptError(problems)


def order_key(utterance):
    return (utterance.text, utterance.voice.rate_wpm, utterance.voice.volume or 0.0)
