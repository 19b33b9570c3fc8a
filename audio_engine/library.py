"""Where sessions live: the built-in library, the user's own folder, and SESSION arguments.

Entry points:

- `builtin_dir()`: the built-in scripts (from a checkout: `sessions/`; from a wheel: inside the
  package).
- `user_dir()`: the user's sessions folder (env `RELAX_SESSIONS_DIR`, else the per-user data
  folder from platformdirs, e.g. `~/.local/share/relax/sessions`).
- `find_all(extra_dirs=())`: every script in those folders, as `Entry(id, language, path)`.
- `resolve(arg, language=None, extra_dirs=())`: a SESSION argument (a path to a file, an id in the
  user's folder, or a built-in id) to a file, picking the language variant; `load(arg, ...)`:
  that file loaded as a `Session`.
- `length_s(session)`: its length as `relax list` shows it; `listing(extra_dirs=())`: every
  script read and timed for `relax list`, kept in the cache folder while nothing changed.

File names: `<id>.<lang>.yaml` (one file per language, as the built-in library does) or
`<id>.yaml` (the language is read from the script).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from audio_engine import fsio
from audio_engine.errors import RelaxError, SessionNotFound
from audio_engine.i18n import _
from audio_engine.langtag import locale_language, primary_language

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Entry:
    id: str
    language: str | None  # from the file name; None when the name does not say
    path: Path
    builtin: bool


def builtin_dir() -> Path:
    here = Path(__file__).resolve().parent  # the package's folder (importlib.resources' answer)
    packaged = here / "_sessions"
    if packaged.is_dir():
        return packaged
    return here.parent / "sessions"


def user_dir() -> Path:
    env = os.environ.get("RELAX_SESSIONS_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("relax")) / "sessions"


def parse_name(path: Path) -> tuple[str, str | None]:
    """(id, language) from a file name: `body-scan.nl.yaml` -> ("body-scan", "nl").

    The same rule gives a script without `id:` its id (`script.split_file_name`).
    """
    from audio_engine.script import split_file_name

    return split_file_name(path.name)


def _script_files(extra_dirs=()) -> list[tuple[Path, bool]]:
    """(path, built-in) of every script file, in `find_all`'s order."""
    found = []
    folders = [(Path(d), False) for d in extra_dirs]
    folders += [(user_dir(), False), (builtin_dir(), True)]
    for folder, builtin in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix in SUFFIXES and path.is_file():
                found.append((path, builtin))
    return found


def find_all(extra_dirs: tuple[Path, ...] | list[Path] = ()) -> list[Entry]:
    """Every script: the user's folder and extra folders first, then the built-in library."""
    return [Entry(*parse_name(path), path, builtin) for path, builtin in _script_files(extra_dirs)]


def _language_of(entry: Entry) -> str | None:
    if entry.language:
        return entry.language
    # Read with the script loader: its size and alias limits hold for any file in these folders.
    from audio_engine import script

    session, _ = script.check(entry.path, allowed_dirs=(user_dir(),))
    return session.language if session is not None else None


def variants(session_id: str, extra_dirs=()) -> list[Entry]:
    """Every file of one session id (all languages), user folders before the built-in library.

    The id is the file name's (`slaap.nl.yaml`: `slaap`); when no file is named so, the one a
    script sets with `id:` (what `relax list` shows), read from the scripts themselves."""
    entries = find_all(extra_dirs)
    named = [e for e in entries if e.id == session_id]
    if named:
        return named
    from audio_engine import script

    found = []
    for entry in entries:
        session, _ = script.check(entry.path, allowed_dirs=(user_dir(), *extra_dirs))
        if session is not None and session.id == session_id:
            found.append(Entry(session_id, session.language, entry.path, entry.builtin))
    return found


def resolve(arg: str, language: str | None = None, extra_dirs=()) -> Path:
    """Turn a SESSION argument into a script file.

    A path to an existing file wins. Otherwise `arg` is a session id (a file name's or a script's
    `id:`, `variants`), looked up in the extra folders, then the user's folder, then the
    built-in library. Among its language variants:
    `language` if given; else the user's locale language when there is such a variant; else
    English; else the first.
    """
    path = Path(arg).expanduser()
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        mode = None
    if mode is not None and stat.S_ISREG(mode):
        return path
    if mode is not None and (not stat.S_ISDIR(mode) or os.sep in arg or arg.endswith(SUFFIXES)):
        # A FIFO or /dev/zero is never read: it could block, or never end.
        raise SessionNotFound(f"cannot use {arg}: it is {fsio.kind_of(mode)}, not a regular file")
    if os.sep in arg or arg.endswith(SUFFIXES):
        raise SessionNotFound(_("no such file: {path}").format(path=arg))
    found = variants(arg, extra_dirs)
    if not found:
        known = sorted({e.id for e in find_all(extra_dirs)})  # (the file names' ids)
        if known:
            raise SessionNotFound(
                _("no session called '{name}'; known sessions: {known} (see `relax list`)").format(
                    name=arg, known=", ".join(known)
                )
            )
        raise SessionNotFound(_("no session called '{name}' (see `relax list`)").format(name=arg))
    by_language: dict[str, Entry] = {}
    for entry in found:  # first one wins: user folders shadow the built-in library
        lang = _language_of(entry)
        key = primary_language(lang) if lang else ""
        by_language.setdefault(lang or "", entry)
        by_language.setdefault(key, entry)
    if language:
        for key in (language, primary_language(language)):
            if key in by_language:
                return by_language[key].path
        have = sorted({_language_of(e) or "?" for e in found})
        raise SessionNotFound(
            _("session '{name}' has no '{language}' version (it has: {have})").format(
                name=arg, language=language, have=", ".join(have)
            )
        )
    for key in (locale_language(), "en"):
        if key and key in by_language:
            return by_language[key].path
    return found[0].path


def load(arg: str, language: str | None = None, extra_dirs=()):
    """A SESSION argument (`resolve`) loaded and validated (`script.load`): the `Session`."""
    from audio_engine import script

    return script.load(resolve(arg, language, extra_dirs), allowed_dirs=(user_dir(),))


ESTIMATE_S_PER_CHAR = 0.065  # a line not made yet: espeak-ng at about 150 words a minute


def length_s(session) -> tuple[float, bool] | None:
    """The session's length in seconds and whether it is estimated (`relax list`, the library
    window): exact from the speech cache, else each missing line estimated from its text.
    None when the script's timing does not hold (`relax validate` tells what does not fit)."""
    from audio_engine import timeline, tts
    from audio_engine.model import SAMPLE_RATE

    lengths = {}
    estimated = False
    for utterance in timeline.speech_requests(session):
        try:
            length = tts.cached_length(utterance)
        except RelaxError:
            length = None
        if length is None:
            estimated = True
            length = int(len(utterance.text) * ESTIMATE_S_PER_CHAR * SAMPLE_RATE)
        lengths[utterance] = length
    try:
        return timeline.compile(session, lengths, strict=not estimated).duration_s, estimated
    except RelaxError:
        return None


# ---- the listing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    """One script as `relax list` shows it. `id` is None when the script is not valid."""

    path: Path
    builtin: bool
    id: str | None
    language: str = ""
    title: str = ""
    length: tuple[float, bool] | None = None  # `length_s`: (seconds, estimated); None: timing?


LISTING_FILE = "listing.json"
_LISTING_FORMAT = 1
_LISTING_LIMIT = 8 << 20


def listing(extra_dirs=()) -> list[Listed]:
    """Every script of `find_all`, read and timed as `relax list` shows it.

    What it finds is kept in the cache folder (`LISTING_FILE`), one row per script file, and
    used again while nothing it came from has changed: the file (its size, times and inode), the
    speech cache files its length was counted from (each one's size, or that it is missing), and
    what picks the voices and counts the time (relax's own modules and the speech engines'
    packages, `_listing_context`). A script that reads other files (sound files, the recorded
    voice's folder) or has errors is read again every time. So a listing from a warm cache
    imports neither the script loader nor the speech engines.
    """
    files = _script_files(extra_dirs)
    context = _listing_context()
    kept = _read_listing(context)
    rows: dict[str, dict] = {}
    found = []
    for path, builtin in files:
        key = os.path.abspath(path)
        try:
            stamp = _stamp(os.stat(path))
        except OSError:
            stamp = None
        row = kept.get(key)
        if stamp is None or not _still_valid(row, stamp):
            row = _read_row(path, stamp)
        if row.get("speech") is not None:
            rows[key] = row
        if row["id"] is None:
            found.append(Listed(path, builtin, None))
            continue
        length = tuple(row["length"]) if row["length"] is not None else None
        found.append(Listed(path, builtin, row["id"], row["language"], row["title"], length))
    if rows != kept:
        _write_listing(context, rows)
    return found


def _stamp(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _speech_stamp(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def _still_valid(row: dict | None, stamp: list[int]) -> bool:
    if not isinstance(row, dict) or row.get("stamp") != stamp:
        return False
    if not all(isinstance(row.get(k), str) for k in ("id", "language", "title")):
        return False
    length = row.get("length")
    if length is not None and not (
        isinstance(length, list)
        and len(length) == 2
        and isinstance(length[0], (int, float))
        and isinstance(length[1], bool)
    ):
        return False
    speech = row.get("speech")
    if not isinstance(speech, list):
        return False
    try:
        return all(_speech_stamp(path) == size for path, size in speech)
    except (TypeError, ValueError):
        return False


def _read_row(path: Path, stamp: list[int] | None) -> dict:
    """The script at `path` read and timed; `speech` is the list of (speech cache file, size)
    its length was counted from, or None when the row may not be kept."""
    from audio_engine import script, timeline
    from audio_engine.model import RECORDED, SoundFile

    session, _ = script.check(path, allowed_dirs=(user_dir(),))
    if session is None:
        return {"stamp": stamp, "id": None, "speech": None}
    row = {"stamp": stamp, "id": session.id, "language": session.language, "speech": None}
    utterances = timeline.speech_requests(session)
    # The speech files are looked at before the length is counted: a clip made in between
    # leaves the row out of date, so it is counted again next time.
    reads_files = any(isinstance(layer, SoundFile) for layer in session.background)
    reads_files |= any(u.voice.engine == RECORDED or u.voice.folder for u in utterances)
    speech = None if stamp is None or reads_files else _speech_files(utterances)
    if speech is not None:
        row["speech"] = sorted([p, _speech_stamp(p)] for p in speech)
    row |= {"title": session.title, "length": length_s(session)}
    return row


def _speech_files(utterances) -> set[str] | None:
    """The speech cache files of `utterances` (where `tts.cached_length` looks), or None when a
    line has no voice."""
    from audio_engine.speech import cache, voices

    found = set()
    for utterance in utterances:
        try:
            voice = voices.check_utterance(utterance)
            version = voices.version_of(voice)
        except RelaxError:
            return None
        found.add(str(cache.path_of(cache.key(utterance, voice.id, version))))
    return found


def _listing_context() -> list:
    """What else decides a listing row: relax's version and its own modules (the loader, the
    timeline, the voices), the speech engines' packages and settings, the speech cache folder."""
    from audio_engine import __version__

    parts: list = [_LISTING_FORMAT, __version__, sys.executable]
    for name in ("RELAX_CACHE_DIR", "RELAX_ESPEAK", "ESPEAK_DATA_PATH", "RELAX_NEURAL"):
        parts.append(os.environ.get(name, ""))
    here = Path(__file__).resolve().parent
    for folder in (here, here / "script", here / "speech"):
        with os.scandir(folder) as entries:
            parts += sorted(
                [e.name, *_stamp(e.stat())[:2]] for e in entries if e.name.endswith(".py")
            )
    for package in ("pyttsx3", "espeakng_loader", "hibari", "onnxruntime", "soxr"):
        parts.append([package, *_package_stamp(package)])
    return json.loads(json.dumps(parts))  # as it reads back from the file


def _package_stamp(package: str) -> list:
    """Where `package` is installed and when its `__init__` was written (an install or upgrade
    rewrites it), as the speech engines tell their versions apart (`engine.package_stamp`; that
    module is not imported here: it brings the session model)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(package)
        origin = spec.origin if spec is not None else None
        st = os.stat(origin) if origin else None
    except (ImportError, ValueError, OSError):
        return [None, None, None]
    return [origin, st and st.st_mtime_ns, st and st.st_size]


def _read_listing(context: list) -> dict:
    try:
        kept = json.loads(fsio.read_checked(fsio.cache_root() / LISTING_FILE, _LISTING_LIMIT))
    except (fsio.FsError, ValueError):
        return {}
    if not isinstance(kept, dict) or kept.get("context") != context:
        return {}
    rows = kept.get("rows")
    return rows if isinstance(rows, dict) else {}


def _write_listing(context: list, rows: dict) -> None:
    # A cache folder that cannot be written only means the scripts are read again next time.
    data = json.dumps({"context": context, "rows": rows}).encode("utf-8")
    with contextlib.suppress(fsio.FsError):
        fsio.atomic_write(fsio.cache_root() / LISTING_FILE, data, fsync=False)
