"""The speech entry points under their former module name (the code is in `audio_engine.speech`).

`tts.synthesize_many(utterances)`, `tts.voice_for("nl")`, ... are `speech`'s; see its modules.
"""

from __future__ import annotations

from audio_engine.errors import TTSError
from audio_engine.speech.cache import cache_dir, cache_root
from audio_engine.speech.engine import VoiceInfo, speaks
from audio_engine.speech.synthesizer import (
    ClipNotReady,
    Synthesizer,
    cached,
    cached_length,
    clip_lengths,
    synthesize,
    synthesize_many,
)
from audio_engine.speech.voices import (
    default_engine,
    engine_versions,
    list_voices,
    preload,
    version_of,
    voice_for,
    warm,
)

__all__ = [
    "ClipNotReady",
    "Synthesizer",
    "TTSError",
    "VoiceInfo",
    "cache_dir",
    "cache_root",
    "cached",
    "cached_length",
    "clip_lengths",
    "default_engine",
    "engine_versions",
    "list_voices",
    "preload",
    "speaks",
    "synthesize",
    "synthesize_many",
    "version_of",
    "voice_for",
    "warm",
]


def engine_version() -> str:
    """espeak-ng's versions (pyttsx3, driver, espeak-ng): part of its clips' cache keys."""
    from audio_engine.speech import voices

    return voices.engine("espeak").version()
