"""From a script to something that can sound: the edge that joins script, tts and timeline.

Entry points:

- `load(arg, language=None) -> Session`: a SESSION argument (id or path) loaded and validated.
- `prepare(session, voice_override=None, progress=None) -> Prepared`: speech synthesized (cached),
  timeline compiled (timing checked with the real voice), sound files loaded.
- `gain(prepared) -> float`: the loudness gain, measured once and remembered in the cache folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from audio_engine import assets, library, render, script, timeline, tts
from audio_engine.model import Session, Voice
from audio_engine.render import Sources
from audio_engine.timeline import Timeline


@dataclass(frozen=True)
class Prepared:
    session: Session
    timeline: Timeline
    sources: Sources


def load(arg: str, language: str | None = None, extra_dirs=()) -> Session:
    path = library.resolve(arg, language, extra_dirs)
    return script.load(path, allowed_dirs=(library.user_dir(),))


def prepare(session: Session, voice_override: Voice | None = None, progress=None) -> Prepared:
    utterances = timeline.speech_requests(session, voice_override)
    clips = tts.synthesize_many(sorted(utterances, key=_order), progress=progress)
    lengths = {u: len(c) for u, c in clips.items()}
    compiled = timeline.compile(session, lengths, voice_override)
    sounds = {
        layer.path: assets.load_sound(layer.path)
        for layer in session.background
        if hasattr(layer, "path")
    }
    return Prepared(session, compiled, Sources(speech=clips, sounds=sounds))


def _order(utterance):
    return (utterance.text, utterance.voice.rate_wpm, utterance.voice.volume or 0.0)


def _cache_dir() -> Path:
    env = os.environ.get("RELAX_CACHE_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir("relax"))


def gain(prepared: Prepared, progress=None) -> float:
    """The session's loudness gain; measured on first use and kept in the cache folder.

    The key covers the whole timeline (every event, layer and length) and the speech engine's
    version, so any change in what would sound gives a new measurement. `progress(done, total)`
    follows the measuring pass (in samples) when there is one.
    """
    files = []
    for path in sorted(prepared.sources.sounds):
        try:
            stat = Path(path).stat()
            files.append((str(path), stat.st_size, stat.st_mtime_ns))
        except OSError:
            files.append((str(path), None, None))
    key = hashlib.sha256(
        repr((prepared.timeline, files, tts.engine_version(), render.TARGET_LUFS)).encode()
    ).hexdigest()
    path = _cache_dir() / "gain" / f"{key}.json"
    try:
        return float(json.loads(path.read_text())["gain"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    value = render.measure_gain(prepared.timeline, prepared.sources, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"gain": value}))
    os.replace(tmp, path)
    return value
