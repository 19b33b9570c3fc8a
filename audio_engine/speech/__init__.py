"""Speech: engines behind one interface, the choice of voice, the clip cache and the synthesizer.

- `engine.py`: the `Engine` protocol (name, voices, version, load, make_clip) and the clip checks
  every engine shares (trim, ramps, plausible length, volume).
- `espeak.py`: espeak-ng through pyttsx3, a fresh process per clip (fork servers on Linux;
  `_espeak_worker.py` is the process).
- `neural.py`: the neural English voice (hibari-tts); `_hibari_compat.py`: where it reaches into
  hibari's private parts.
- `voices.py`: which engine and voice speaks a line (the only place engines are told apart by
  name).
- `cache.py`: the clip cache.
- `synthesizer.py`: clips from the cache, or made by their engines in parallel.

The names most callers need are here too (imported when first used, so that a worker process
that imports `audio_engine.speech._espeak_worker` loads nothing else):
`synthesize`, `synthesize_many`, `clip_lengths`, `Synthesizer`, `ClipNotReady`, `cached`,
`cached_length`, `voice_for`, `list_voices`, `speaks`, `default_engine`, `engine_versions`,
`version_of`, `warm`, `preload`, `release`, `engine_of`, `cache_dir`, `VoiceInfo`.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "synthesize": "synthesizer",
    "synthesize_many": "synthesizer",
    "clip_lengths": "synthesizer",
    "Synthesizer": "synthesizer",
    "ClipNotReady": "synthesizer",
    "cached": "synthesizer",
    "cached_length": "synthesizer",
    "voice_for": "voices",
    "list_voices": "voices",
    "speaks": "voices",
    "default_engine": "voices",
    "engine_versions": "voices",
    "version_of": "voices",
    "warm": "voices",
    "preload": "voices",
    "release": "voices",
    "engine_of": "voices",
    "cache_dir": "cache",
    "VoiceInfo": "engine",
}


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
