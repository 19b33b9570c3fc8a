"""The feed folder's episodes: sessions exported as MP3 for a podcast app, only when they change.

Entry points:

- `default_folder()`: `feed` in the user's data folder (`RELAX_DATA_DIR`, as the history's).
- `select(sessions, language, extra_dirs=()) -> Selection`: the script files of the sessions
  named (each in `language` where it has that version), or of every session of the library that
  has a `language` version; what could not be found, as (name, reason).
- `export_key(session) -> str`: a digest of everything an export's bytes depend on: the script's
  bytes, its background sound files, the key of every clip it speaks (the line, the voice that
  speaks it: a recording of it where the recorded voice has one; that voice's engine's version), the
  format and quality, relax's version and the source of the modules that make the sound, and the
  versions of the libraries relax depends on. The same key: the same file.
- `update(scripts, folder, language, ...) -> Update`: every session exported into `folder` as
  `<id>.<language>.mp3` with its transcript (`.vtt`) and its chapters as Podcasting 2.0 JSON
  (`.chapters.json`, read back from the MP3's own ID3 chapters), except those whose key and files
  are what the folder already has. The folder's state (keys, sizes, durations, the link's token)
  is kept in `.relax-phone.json` there.
- `load_state(folder)`, `save_state(folder, state)`: that state file.

Exports go through `export.export_many` (worker processes, atomic files): an interrupted run
leaves no partial file, and the sessions it finished are recorded (not made again next time).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import platform
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from audio_engine import __version__, fsio
from audio_engine.errors import RelaxError

STATE_FILE = ".relax-phone.json"
STATE_VERSION = 1
FORMAT = "mp3"
AUDIO_TYPE = "audio/mpeg"
CHAPTERS_SUFFIX = ".chapters.json"
CHAPTERS_VERSION = "1.2.0"  # the Podcasting 2.0 JSON chapters format
_STATE_LIMIT = 16 << 20  # the state file: a few hundred bytes per session
TOKEN_BYTES = 24  # the link's secret: 192 bits, as URL-safe base64 (32 characters)
# Subpackages whose code does not shape an exported file's bytes (left out of `export_key`).
_NOT_SOUND = ("cli", "phone", "player", "remind")


class PhoneError(RelaxError):
    """The feed cannot be made or served (a port in use, ...)."""


@dataclass(frozen=True)
class Episode:
    """One exported session in the feed folder (file names are relative to it)."""

    id: str
    language: str
    title: str
    description: str
    audio: str  # <id>.<language>.mp3
    transcript: str  # <id>.<language>.vtt
    chapters: str  # <id>.<language>.chapters.json
    size_bytes: int
    duration_s: float
    published: str  # ISO 8601, UTC: when this version was exported
    key: str
    chapter_count: int = 0

    @property
    def name(self) -> str:
        return f"{self.id}.{self.language}"

    def files(self) -> tuple[str, str, str]:
        return (self.audio, self.transcript, self.chapters)


@dataclass(frozen=True)
class Selection:
    scripts: list[Path]
    missing: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)


@dataclass(frozen=True)
class Update:
    """What `update` did: the episodes in the order asked, which were made or kept, failures."""

    episodes: list[Episode]
    made: list[str]
    kept: list[str]
    failed: list[tuple[str, str]]  # (script, reason)


def default_folder() -> Path:
    """`feed` in the user's data folder (`RELAX_DATA_DIR`, else platformdirs' data folder)."""
    return fsio.data_dir() / "feed"


# ---- which sessions ----------------------------------------------------------------------------


def select(sessions: Sequence[str], language: str, extra_dirs=()) -> Selection:
    """The scripts of `sessions` (ids or files) in `language`, or of the whole library in it."""
    from audio_engine import library
    from audio_engine.model import primary_language

    missing: list[tuple[str, str]] = []
    scripts: list[Path] = []
    if sessions:
        for arg in sessions:
            try:
                scripts.append(library.resolve(arg, language, extra_dirs))
            except RelaxError as exc:
                missing.append((arg, str(exc)))
    else:
        ids = dict.fromkeys(entry.id for entry in library.find_all(extra_dirs))
        for session_id in ids:
            try:
                path = library.resolve(session_id, language, extra_dirs)
            except RelaxError:
                continue  # no version in this language: not in this language's feed
            named = library.parse_name(path)[1]
            if named and primary_language(named) != primary_language(language):
                continue
            scripts.append(path)
    return Selection(list(dict.fromkeys(scripts)), missing)


# ---- what an export depends on -----------------------------------------------------------------


def export_key(session) -> str:
    """A digest of everything the bytes of `session`'s MP3, transcript and chapters depend on."""
    from audio_engine import export, pipeline, timeline
    from audio_engine.speech import cache, voices

    pipeline.check_recordings(session)  # a line without its recording: at its step
    utterances = timeline.speech_requests(session)
    # Every line's clip by its key: its words with the voice that speaks it (its recording, where
    # the recorded voice has one; else the voice its engine or the fallback picks) and the
    # version of that voice's engine.
    speech = []
    for u in utterances:
        voice = voices.check_utterance(u)
        speech.append(cache.key(u, voice.id, voices.version_of(voice)))
    sounds = []
    for layer in session.background:
        path = getattr(layer, "path", None)
        if path is not None:
            sounds.append((str(path), _file_digest(Path(path))))
    what = {
        "script": _file_digest(Path(session.source)) if session.source else repr(session),
        "language": session.language,
        "sounds": sounds,
        "speech": sorted(speech),
        "engines": list(voices.engine_versions(utterances)),
        "format": FORMAT,
        "quality": export.DEFAULT_QUALITY,
        "relax": __version__,
        "code": _code_digest(),
        "libraries": _library_versions(),
        "machine": [platform.machine(), platform.python_version()],
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def _file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


_code: str | None = None


def _code_digest() -> str:
    """The source of every module that shapes the sound and the files (once per process)."""
    global _code
    if _code is None:
        root = Path(__file__).resolve().parent.parent
        digest = hashlib.sha256()
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root)
            if relative.parts[0] in _NOT_SOUND:
                continue
            digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
        _code = digest.hexdigest()
    return _code


def _library_versions() -> dict[str, str | None]:
    names = ["numpy", "soundfile", "soxr", "scipy", "mutagen", "pyttsx3", "hibari-tts"]
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        for requirement in importlib.metadata.requires("relax") or ():
            if "extra ==" not in requirement:
                names.append(re.split(r"[^A-Za-z0-9._-]", requirement, maxsplit=1)[0])
    found: dict[str, str | None] = {}
    for name in sorted(set(names)):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    import soundfile

    found["libsndfile"] = soundfile.__libsndfile_version__
    return found


# ---- the folder's state ------------------------------------------------------------------------


def load_state(folder: Path) -> dict:
    """The state file's contents (a fresh one, with a new token, when there is none)."""
    try:
        data = json.loads(fsio.read_checked(folder / STATE_FILE, _STATE_LIMIT, follow=False))
        if data.get("version") == STATE_VERSION and isinstance(data.get("episodes"), dict):
            if not _token_ok(data.get("token")):
                data["token"] = new_token()
            return data
    except (fsio.FsError, ValueError, AttributeError):
        pass
    return {"version": STATE_VERSION, "token": new_token(), "episodes": {}}


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def _token_ok(token) -> bool:
    return isinstance(token, str) and re.fullmatch(r"[A-Za-z0-9_-]{32,}", token) is not None


def save_state(folder: Path, state: dict) -> None:
    """Write the state file atomically, readable by its owner only (it holds the link's token)."""
    fsio.atomic_write(folder / STATE_FILE, json.dumps(state, indent=1, sort_keys=True).encode())


def make_folder(folder: Path) -> None:
    """The feed folder and its missing parents, readable by their owner only."""
    fsio.private_dir(folder)


# ---- exporting ---------------------------------------------------------------------------------


def update(
    scripts: Sequence[Path],
    folder: Path,
    language: str,
    *,
    state: dict | None = None,
    jobs: int | None = None,
    progress: Callable[[float], None] | None = None,
    weight: Callable[[Path], float] | None = None,
) -> Update:
    """Export what changed of `scripts` into `folder` (made if needed); see the module docstring.

    `state` is the folder's state (`load_state`), updated in place and saved after the exports.
    `progress(fraction)` follows the exports that are made (none: it is not called), each
    counted by `weight(script)` (its expected work), else equally.
    """
    from audio_engine import export, pipeline

    make_folder(folder)
    state = load_state(folder) if state is None else state
    known: dict = state["episodes"]
    failed: list[tuple[str, str]] = []
    wanted: list[tuple[Path, object, str]] = []  # (script, session, key)
    for script in scripts:
        try:
            session = pipeline.load(str(script), language)
            key = export_key(session)
        except RelaxError as exc:
            failed.append((str(script), _reason(exc)))
            continue
        wanted.append((Path(script), session, key))
    kept, to_make = [], []
    for script, session, key in wanted:
        name = f"{session.id}.{session.language}"
        old = _episode(known.get(name))
        if old is not None and old.key == key and _files_ok(folder, old):
            kept.append(name)
        else:
            to_make.append((script, session, key))
    made: list[str] = []
    if to_make:
        started_ns = time.time_ns()
        try:
            outcomes = export.export_many(
                [str(script) for script, _, _ in to_make],
                folder,
                fmt=FORMAT,
                language=language,
                transcript=True,
                jobs=jobs,
                progress=progress,
                weights=None if weight is None else [weight(s) for s, _, _ in to_make],
            )
        except BaseException:
            # Interrupted: the sessions finished meanwhile are complete files (each renamed into
            # place at its end), kept for the next run.
            for _script, session, key in to_make:
                audio = folder / export.default_name(session, FORMAT)
                with contextlib.suppress(OSError):
                    if audio.stat().st_mtime_ns >= started_ns:
                        _record(folder, session, key, audio, known, made)
            with contextlib.suppress(fsio.FsError):
                save_state(folder, state)
            raise
        for (script, session, key), outcome in zip(to_make, outcomes, strict=True):
            if outcome.error is not None:
                failed.append((str(script), outcome.error))
                continue
            _record(folder, session, key, Path(outcome.path), known, made)
    save_state(folder, state)
    episodes = []
    for _script, session, _key in wanted:
        episode = _episode(known.get(f"{session.id}.{session.language}"))
        if episode is not None and _files_ok(folder, episode):
            episodes.append(episode)
    return Update(episodes, made, kept, failed)


def _record(folder: Path, session, key: str, audio: Path, known: dict, made: list) -> None:
    episode = _made(folder, session, key, audio)
    # A script changed while it was exported: its next run makes it again.
    if _key_now(session) != key:
        episode = Episode(**{**asdict(episode), "key": "changed"})
    known[episode.name] = asdict(episode)
    made.append(episode.name)


def _reason(exc: RelaxError) -> str:
    diagnostics = getattr(exc, "diagnostics", None)
    return str(diagnostics[0]) if diagnostics else str(exc)


def _key_now(session) -> str:
    from audio_engine import pipeline

    try:
        return export_key(pipeline.load(str(session.source), session.language))
    except (RelaxError, TypeError):
        return "changed"


def _episode(data) -> Episode | None:
    try:
        return Episode(**data)
    except TypeError:
        return None


def _files_ok(folder: Path, episode: Episode) -> bool:
    try:
        if (folder / episode.audio).stat().st_size != episode.size_bytes:
            return False
        return all((folder / name).is_file() for name in episode.files()[1:])
    except OSError:
        return False


def _made(folder: Path, session, key: str, audio: Path) -> Episode:
    import soundfile

    from audio_engine import export

    info = soundfile.info(str(audio))
    chapters = read_chapters(audio)
    chapters_name = f"{session.id}.{session.language}{CHAPTERS_SUFFIX}"
    document = {
        "version": CHAPTERS_VERSION,
        "title": session.title,
        "chapters": [
            {"startTime": start_ms / 1000, "endTime": end_ms / 1000, "title": title}
            for title, start_ms, end_ms in chapters
        ],
    }
    text = json.dumps(document, ensure_ascii=False, indent=1) + "\n"
    fsio.atomic_write(folder / chapters_name, text.encode("utf-8"))
    return Episode(
        id=session.id,
        language=session.language,
        title=session.title,
        description=" ".join(session.description.split()),
        audio=audio.name,
        transcript=export.transcript_path(audio).name,
        chapters=chapters_name,
        size_bytes=audio.stat().st_size,
        duration_s=round(info.frames / info.samplerate, 3),
        published=datetime.now(UTC).replace(microsecond=0).isoformat(),
        key=key,
        chapter_count=len(chapters),
    )


def read_chapters(audio: Path) -> list[tuple[str, int, int]]:
    """(title, start_ms, end_ms) of every ID3 chapter of an MP3, in time order."""
    from mutagen.id3 import ID3

    found = []
    for frame in ID3(audio).getall("CHAP"):
        title = frame.sub_frames.get("TIT2")
        found.append((str(title.text[0]) if title else "", frame.start_time, frame.end_time))
    return sorted(found, key=lambda c: c[1])


def write_bytes(path: Path, data: bytes) -> bool:
    """Write `data` atomically unless the file already holds exactly that; True if written."""
    with contextlib.suppress(OSError):
        if path.read_bytes() == data:
            return False
    fsio.atomic_write(path, data)
    return True
