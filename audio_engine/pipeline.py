"""From a script to something that can sound: the edge that joins script, tts and timeline.

Entry points:

- `load(arg, language=None) -> Session`: a SESSION argument (id or path) loaded and validated.
- `prepare(session, voice_override=None, progress=None) -> Prepared`: speech synthesized into the
  cache (only lengths kept; a `ClipStore` reads clips back as they play), timeline compiled
  (timing checked with the real voice), sound files loaded, background generators readied.
- `gain(prepared) -> float`: the loudness gain, measured once and remembered in the cache folder.
- `warm_background(session)`, `warm_chimes(session)`: noise loops and chimes from the cache folder
  (or made and saved there).
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
from audio_engine.errors import Diagnostic, ScriptError
from audio_engine.model import NO_ORIGIN, Breathe, Chime, Noise, Repeat, Session, SoundFile, Voice
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
    # While the speech engine works (it mostly waits on its worker processes), other threads
    # ask the engine what it is (which starts its worker server), make or read the chimes (the
    # timeline needs their lengths) and ready the background's tables.
    helpers = [
        threading.Thread(target=_quietly, args=(work, *args), daemon=True)
        for work, args in (
            (tts.engine_version, ()),
            (warm_chimes, (session,)),
            (warm_background, (session,)),
        )
    ]
    for helper in helpers:
        helper.start()
    try:
        check_voice_names(session, voice_override)
        utterances = timeline.speech_requests(session, voice_override)
        lengths = tts.clip_lengths(sorted(utterances, key=_order), progress=progress)
    finally:
        for helper in helpers:
            helper.join()
    compiled = timeline.compile(session, lengths, voice_override)
    clips = ClipStore(lengths)
    return Prepared(session, compiled, Sources(speech=clips, sounds=load_sounds(session)))


def check_voice_names(session: Session, voice_override: Voice | None = None) -> None:
    """Every voice `name:` of the script names an installed voice; else `ScriptError` at each
    (an overriding name, from the command line, is checked first and reported plainly)."""
    if voice_override is not None and voice_override.name:
        tts.voice_for(session.language, voice_override.name)
        return  # it wins over every name in the script
    problems = []

    def check(voice: Voice | None, where, path: str) -> None:
        if voice is None or not voice.name:
            return
        try:
            tts.voice_for(session.language, voice.name)
        except tts.TTSError as exc:
            problems.append(Diagnostic(where.file, where.line, where.col, path, str(exc)))

    def walk(steps) -> None:
        for step in steps:
            where = step.origin
            check(getattr(step, "voice", None), where, f"{where.path}.voice.name".lstrip("."))
            if isinstance(step, Repeat):
                walk(step.steps)

    where = session.voice_origin if session.voice_origin != NO_ORIGIN else session.origin
    check(session.voice, where, "voice.name")
    walk(session.steps)
    if problems:
        raise ScriptError(problems)


def load_sounds(session: Session) -> dict[Path, np.ndarray]:
    """The session's background sound files, decoded; `ScriptError` at the `file:` of any that
    exists but cannot be played."""
    sounds = {}
    problems = []
    for layer in session.background:
        if isinstance(layer, SoundFile):
            try:
                sounds[layer.path] = assets.load_sound(layer.path)
            except assets.AssetError as exc:
                if layer.origin == NO_ORIGIN:
                    raise
                where = layer.origin
                message = str(exc).removeprefix(f"{layer.path}: ")
                problems.append(Diagnostic(where.file, where.line, where.col, where.path, message))
    if problems:  # a file that is there but cannot be played: at its place in the script
        raise ScriptError(problems)
    return sounds


def _quietly(work, *args) -> None:
    # A helper only gets ahead of the work: what fails here is done again, and reported, by the
    # caller's own request.
    with contextlib.suppress(Exception):
        work(*args)


# Generated tables kept in the cache folder: magic, CRC-32 of the payload, little-endian float32.
_NOISE_MAGIC = b"RELAXNL1"
_CHIME_MAGIC = b"RELAXCH1"


def _table_file(kind: str, name: str, version: int) -> Path:
    return tts.cache_root() / kind / f"{name}-v{version}-numpy{np.__version__}.f32"


def _noise_file(color: str) -> Path:
    return _table_file("noise", color, synth.NOISE_LOOP_VERSION)


def _read_table(path: Path, magic: bytes) -> np.ndarray | None:
    """The float32 table saved at `path`, or None when it is missing, short or damaged."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            size = os.fstat(f.fileno()).st_size - 12
            if len(head) != 12 or head[:8] != magic or size <= 0 or size % 4:
                return None
            table = np.empty(size // 4, dtype="<f4")
            if f.readinto(memoryview(table).cast("B")) != size:
                return None
    except OSError:
        return None
    if zlib.crc32(table) != int.from_bytes(head[8:], "little"):
        return None
    return table


def _write_table(path: Path, magic: bytes, table: np.ndarray) -> None:
    """Save `table` at `path` (atomically; a cache that cannot be written is only slower)."""
    payload = np.ascontiguousarray(table, dtype="<f4")
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as f:
            f.write(magic + zlib.crc32(payload).to_bytes(4, "little"))
            f.write(memoryview(payload).cast("B"))
        os.replace(tmp, path)


def _chime_names(steps) -> set[str]:
    names: set[str] = set()
    for step in steps:
        if isinstance(step, Chime):
            names.add(step.name)
        elif isinstance(step, Breathe) and step.chime_on_phase:
            names.add(step.chime_on_phase)
        elif isinstance(step, Repeat):
            names |= _chime_names(step.steps)
    return names


def warm_chimes(session: Session) -> None:
    """Ready the session's chimes: from the cache folder, made and saved there otherwise."""
    for name in sorted(_chime_names(session.steps) & set(synth.CHIME_NAMES)):
        path = _table_file("chime", name, synth.CHIME_VERSION)
        unit = _read_table(path, _CHIME_MAGIC)
        if unit is not None:
            try:
                synth.install_chime(name, unit)
                continue
            except ValueError:
                pass
        _write_table(path, _CHIME_MAGIC, synth.unit_chime(name))


def warm_background(session: Session) -> None:
    """Ready every background generator: noise loops from the cache folder, made once otherwise."""
    for layer in session.background:
        if isinstance(layer, Noise):
            path = _noise_file(layer.color)
            loop = _read_table(path, _NOISE_MAGIC)
            if loop is not None:
                try:
                    synth.install_noise_loop(layer.color, loop.reshape(-1, 2))
                    continue
                except ValueError:
                    pass
            _write_table(path, _NOISE_MAGIC, synth.noise_loop(layer.color))
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
