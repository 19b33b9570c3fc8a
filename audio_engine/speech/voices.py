"""Which engine and which of its voices speaks a line.

The engines are registered here by name (`engine(name)`, in `model.ENGINES` order: the neural
voice, then espeak-ng); this is the one place that tells them apart by name. A test puts another
engine in an engine's place with `swapped(engine)`.

- `default_engine(language)`: the neural voice for English where it is installed, espeak-ng for
  every other language.
- `voice_for(language, name=None, engine=None)`: the installed voice a line speaks with.
- `voice_of(utterance)`: the voice that speaks a line: a recording of it where the line's voice
  is the recorded voice and its folder holds one, else its fallback.
- `engine_of(utterance)`: the engine that speaks a line.
- `check_all(utterances)`: every line has a voice (one error listing the lines a recorded voice
  without fallback has no recording of); `warn_fallbacks(utterances)`: says once which lines
  the fallback speaks.
- `list_voices(engine=None)`, `speaks(voice, language)`, `version_of(voice)`,
  `engine_versions(utterances)`, `warm(language, voice)`, `preload(language, voice)`.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterable, Iterator

from audio_engine import model
from audio_engine.errors import TTSError
from audio_engine.i18n import _, ngettext
from audio_engine.speech.engine import Engine, VoiceInfo, speaks
from audio_engine.speech.espeak import Espeak
from audio_engine.speech.neural import Neural
from audio_engine.speech.recorded import Recorded, line_key, recording_voice

__all__ = [
    "Engine",
    "VoiceInfo",
    "check_utterance",
    "default_engine",
    "engine",
    "engine_of",
    "engine_versions",
    "list_voices",
    "preload",
    "speaks",
    "swapped",
    "version_of",
    "voice_for",
    "warm",
]

NEURAL = "neural"
ESPEAK = "espeak"
RECORDED = model.RECORDED
_engines: dict[str, Engine] = {NEURAL: Neural(), ESPEAK: Espeak(), RECORDED: Recorded()}
assert tuple(_engines) == model.SCRIPT_ENGINES


def _lookup(name: str) -> Engine:
    """The engine called `name` (`TTSError` for an unknown name)."""
    found = _engines.get(name)
    if found is None:
        raise TTSError(f"unknown speech engine {name!r} (engines: {', '.join(_engines)})")
    return found


engine = _lookup


@contextlib.contextmanager
def swapped(replacement: Engine) -> Iterator[Engine]:
    """Inside, `replacement` speaks in place of the engine of its name (for tests)."""
    before = _engines[replacement.name]
    _engines[replacement.name] = replacement
    try:
        yield before
    finally:
        _engines[replacement.name] = before


def default_engine(language: str) -> str:
    """The engine a line in `language` speaks with when the script names none: the neural voice
    for English where it is installed, espeak-ng for everything else."""
    neural = _engines[NEURAL]
    if neural.available() and any(speaks(v, language) for v in neural.voices()):
        return NEURAL
    return ESPEAK


def voice_for(language: str, name: str | None = None, engine: str | None = None) -> VoiceInfo:
    """The installed voice a session in `language` speaks with.

    Parameters
    ----------
    language : str
        BCP 47 tag of the session (`nl`, `en-US`).
    engine : str, optional
        ``"neural"`` or ``"espeak"``. Without it, `default_engine(language)`; a `name` that no
        voice of that engine matches is then looked for among espeak-ng's voices (so naming an
        espeak-ng voice picks espeak-ng in English too).
    name : str, optional
        A case-insensitive substring of the voice's id, name or one of its languages. Among
        the voices it matches, the closest match wins: the whole id or name; then a voice for
        the language it spells (`en` -> `gmw/en`, not "Vietnamese (Central)"; `nl-BE` -> `gmw/nl`
        even where no voice has that exact tag); then a word that starts with it; then any
        match; ties go to the voice that fits the session's language. Without a name, the voice
        whose language matches best: the exact tag, then the primary subtag (`nl` -> `gmw/nl`,
        `en` -> `gmw/en`, `en-US` -> `gmw/en-us`).

    Raises
    ------
    errors.TTSError
        No installed voice matches; the message names the language and how to list voices.

    Examples
    --------
    >>> voice_for("nl").id
    'gmw/nl'
    >>> voice_for("en").id  # with hibari-tts installed
    'hibari/heart'
    """
    chosen = _lookup(engine or default_engine(language))
    found = chosen.voice_for(language, name, explicit=engine is not None)
    if found is not None:
        return found
    return _engines[ESPEAK].voice_for(language, name, explicit=True)


def uses_recordings(voice: model.Voice) -> bool:
    """Whether lines in `voice` are spoken by recordings (the recorded voice, with its folder)."""
    return voice.engine == RECORDED and voice.folder is not None


def _recorded(utterance: model.Utterance) -> bool:
    return uses_recordings(utterance.voice)


def check_voice(language: str, voice: model.Voice) -> VoiceInfo:
    """The voice `voice` (a script's or the command line's settings) gives a session in
    `language`; for the recorded voice, the voice its fallback speaks with. `TTSError` when there
    is none."""
    found = voice_for(language, voice.name, voice.engine)
    if voice.engine == RECORDED and voice.fallback in model.ENGINES:
        return voice_for(language, voice.name, voice.fallback)
    return found


def _fallback(utterance: model.Utterance) -> str | None:
    """The engine that speaks a line the recorded voice has no recording of (None: the
    language's usual one); `TTSError` with `fallback: none`."""
    fallback = utterance.voice.fallback
    if fallback == model.NO_FALLBACK:
        raise TTSError(_no_recording(utterance))
    return fallback


def _no_recording(utterance: model.Utterance) -> str:
    return _(
        "the recorded voice in {folder} has no recording of {text!r} (key {key}) and no "
        "fallback; `relax record` records it"
    ).format(
        folder=utterance.voice.folder,
        text=utterance.text,
        key=line_key(utterance.text, utterance.language),
    )


def missing_recording(utterance: model.Utterance) -> str | None:
    """Why `utterance` cannot be spoken, when its voice is the recorded voice with
    `fallback: none` and its folder holds no recording of it; else None."""
    if not _recorded(utterance) or utterance.voice.fallback != model.NO_FALLBACK:
        return None
    return _no_recording(utterance) if recording_voice(utterance) is None else None


def voice_of(utterance: model.Utterance) -> VoiceInfo:
    """The voice that speaks `utterance`: its recording where its voice is the recorded voice
    and the folder holds one; else the voice its engine (or the recorded voice's fallback)
    picks for its language and name. Raises `TTSError`."""
    voice = utterance.voice
    if _recorded(utterance):
        found = recording_voice(utterance)
        if found is not None:
            return found
        return voice_for(utterance.language, voice.name, _fallback(utterance))
    return voice_for(utterance.language, voice.name, voice.engine)


def engine_of(utterance: model.Utterance) -> Engine:
    """The engine that speaks `utterance` (espeak-ng where its voice cannot be found: the error
    comes when the line is made)."""
    try:
        voice = voice_of(utterance)
    except TTSError:
        return _engines[ESPEAK]
    return _engines[voice.engine]


def list_voices(engine: str | None = None) -> list[VoiceInfo]:
    """Every installed voice: the neural voices (where hibari-tts is installed), then espeak-ng's
    in the driver's order; only one engine's with `engine`.

    Raises
    ------
    errors.TTSError
        The speech engine could not start.
    """
    names = list(_engines) if engine is None else [engine]
    return [v for name in names for v in _lookup(name).voices()]


def version_of(voice: VoiceInfo) -> str:
    """The versions of the engine that speaks `voice` (part of its clips' cache keys)."""
    return _engines[voice.engine].version()


def check_utterance(utterance: model.Utterance) -> VoiceInfo:
    """The voice that speaks `utterance`; `TTSError` when it has nothing to speak, is not
    resolved or no voice speaks it."""
    if not re.search(r"\w", utterance.text):
        raise TTSError(f"nothing to speak in {utterance.text!r}")
    if utterance.voice.rate_wpm is None or utterance.voice.volume is None:
        raise TTSError(f"voice for {utterance.text!r} is not resolved (rate and volume unset)")
    return voice_of(utterance)


def check_all(utterances: Iterable[model.Utterance]) -> None:
    """Every line has a voice; lines a recorded voice with `fallback: none` has no recording of
    are one error that lists them all."""
    missing: dict = {}
    for u in utterances:
        if _recorded(u) and u.voice.fallback == model.NO_FALLBACK and not recording_voice(u):
            missing.setdefault(u.voice.folder, {})[line_key(u.text, u.language)] = u.text
            continue
        check_utterance(u)
    for folder, lines in missing.items():
        listed = "; ".join(f"{key} {text!r}" for key, text in lines.items())
        raise TTSError(
            ngettext(
                "the recorded voice in {folder} has no recording of {count} line and no "
                "fallback: {listed}; `relax record` records it",
                "the recorded voice in {folder} has no recording of {count} lines and no "
                "fallback: {listed}; `relax record` records them",
                len(lines),
            ).format(folder=folder, count=len(lines), listed=listed)
        )


_warned: set = set()


def warn_fallbacks(utterances: Iterable[model.Utterance]) -> None:
    """Say once per folder (on stderr) which lines the recorded voice's fallback speaks."""
    missing: dict = {}
    for u in utterances:
        if _recorded(u) and u.voice.fallback != model.NO_FALLBACK and not recording_voice(u):
            missing.setdefault((u.voice.folder, u.language, u.voice.fallback), {})[u.text] = None
    for (folder, language, fallback), texts in missing.items():
        if (folder, tuple(texts)) in _warned:
            continue
        _warned.add((folder, tuple(texts)))
        engine = fallback or default_engine(language)
        message = ngettext(
            "relax: warning: the recorded voice in {folder} has no recording of {count} line; "
            "{engine} speaks it: {listed}",
            "relax: warning: the recorded voice in {folder} has no recording of {count} lines; "
            "{engine} speaks them: {listed}",
            len(texts),
        ).format(folder=folder, count=len(texts), engine=engine, listed="; ".join(map(repr, texts)))
        with contextlib.suppress(OSError, ValueError):
            print(message, file=sys.stderr, flush=True)


def engine_versions(utterances: Iterable[model.Utterance]) -> tuple[str, ...]:
    """The versions of every engine these utterances are spoken by (sorted, each once)."""
    found = set()
    for u in utterances:
        voice = check_utterance(u)
        engine = _engines[voice.engine]
        found.add(engine.version())
        if not engine.synthetic:
            found.add(voice.id)
    return tuple(sorted(found))


def warm(language: str, voice: model.Voice | None = None) -> None:
    """Ask the engine a session in `language` with `voice` speaks with what it is, ahead of time
    (espeak-ng: a worker process, whose answer is then kept; neural: package metadata)."""
    voice = voice or model.Voice()
    version_of(voice_for(language, voice.name, voice.engine))


def preload(language: str, voice: model.Voice | None = None) -> None:
    """Begin loading the engine a session in `language` with `voice` speaks with, in the
    background, where that takes long (the neural voice's model and pronunciation tables: about
    half a second); the first clip then waits for it. Nothing for espeak-ng (a worker per clip)."""
    voice = voice or model.Voice()
    if uses_recordings(voice):  # recordings load in moments; a fallback loads when it speaks
        return
    with contextlib.suppress(TTSError):  # the voice's own error comes from the synthesis
        chosen = voice_for(language, voice.name, voice.engine)
        _engines[chosen.engine].load(chosen)


def release() -> None:
    """Let every engine drop what it loaded to make clips (the neural voice's model and tables,
    espeak-ng's idle fork servers), once a session's speech is all made: what plays or exports next reads the clips from the
    cache. An engine loads again when it is asked for another clip."""
    for engine in list(_engines.values()):
        let_go = getattr(engine, "release", None)  # only engines that hold something have one
        if let_go is not None:
            let_go()
