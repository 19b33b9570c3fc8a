"""From a script to something that can sound: the edge that joins script, tts and timeline.

Entry points:

- `load(arg, language=None) -> Session`: a SESSION argument (id or path) loaded and validated.
- `prepare(session, voice_override=None, progress=None) -> Prepared`: speech synthesized into the
  cache (only lengths kept; a `ClipStore` reads clips back as they play), timeline compiled
  (timing checked with the real voice), sound files loaded, background generators readied.
- `gain(prepared) -> float`: the loudness gain, measured once and remembered in the cache folder.
- `warm_background(session)`: noise loops from the cache folder (or made and saved there).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio_engine import assets, library, render, script, synth, timeline, tts
from audio_engine.model import Noise, Session, SoundFile, Voice
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
    # The background's tables are made while the speech engine works (it mostly waits on its
    # worker processes); both are done before the loudness pass loads its filters.
    background = threading.Thread(target=warm_background, args=(session,), daemon=True)
    background.start()
    try:
        lengths = tts.clip_lengths(sorted(utterances, key=_order), progress=progress)
    finally:
        background.join()
    compiled = timeline.compile(session, lengths, voice_override)
    clips = ClipStore(lengths)
    sounds = {
        layer.path: assets.load_sound(layer.path)
        for layer in session.background
        if isinstance(layer, SoundFile)
    }
    return Prepared(session, compiled, Sources(speech=clips, sounds=sounds))


_NOISE_MAGIC = b"RELAXNL1"


def _noise_file(color: str) -> Path:
    return (
        tts.cache_root()
        / "noise"
        / f"{color}-v{synth.NOISE_LOOP_VERSION}-numpy{np.__version__}.f32"
    )


def warm_background(session: Session) -> None:
    """Ready every background generator: noise loops from the cache folder, made once otherwise."""
    for layer in session.background:
        if isinstance(layer, Noise):
            path = _noise_file(layer.color)
            try:
                data = path.read_bytes()
                magic, crc = data[:8], int.from_bytes(data[8:12], "little")
                payload = data[12:]
                if magic == _NOISE_MAGIC and zlib.crc32(payload) == crc:
                    loop = np.frombuffer(payload, dtype="<f4").reshape(-1, 2)
                    synth.install_noise_loop(layer.color, loop)
                    continue
            except (OSError, ValueError):
                pass
            loop = synth.noise_loop(layer.color)
            payload = np.ascontiguousarray(loop, dtype="<f4").tobytes()
            with contextlib.suppress(OSError):
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_bytes(_NOISE_MAGIC + zlib.crc32(payload).to_bytes(4, "little") + payload)
                os.replace(tmp, path)
        elif not isinstance(layer, SoundFile):
            synth.layer_block(layer, 0, 1)


class ClipStore(Mapping):
    """Speech clips by utterance, read from the speech cache when first needed.

    Only the most recently used clips stay in memory, so memory does not grow with the amount of
    speech in a session. A clip that has gone from the cache is synthesized again (the same bytes:
    a clip depends only on its key).
    """

    def __init__(self, lengths: dict, keep: int = 12):
        self._lengths = dict(lengths)
        self._recent: OrderedDict = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()

    def __getitem__(self, utterance) -> np.ndarray:
        with self._lock:
            clip = self._recent.get(utterance)
            if clip is not None:
                self._recent.move_to_end(utterance)
                return clip
        if utterance not in self._lengths:
            raise KeyError(utterance)
        clip = tts.cached(utterance)
        if clip is None:
            clip = tts.synthesize(utterance)
        clip.setflags(write=False)
        with self._lock:
            self._recent[utterance] = clip
            while len(self._recent) > self._keep:
                self._recent.popitem(last=False)
        return clip

    def __iter__(self):
        return iter(self._lengths)

    def __len__(self) -> int:
        return len(self._lengths)

    def length(self, utterance) -> int:
        return self._lengths[utterance]


def _order(utterance):
    return (utterance.text, utterance.voice.rate_wpm, utterance.voice.volume or 0.0)


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
    path = tts.cache_root() / "gain" / f"{key}.json"
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
