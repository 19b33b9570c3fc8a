"""Where sessions live: the built-in library, the user's own folder, and SESSION arguments.

Entry points:

- `builtin_dir()`: the built-in scripts (from a checkout: `sessions/`; from a wheel: inside the
  package).
- `user_dir()`: the user's sessions folder (env `RELAX_SESSIONS_DIR`, else the per-user data
  folder from platformdirs, e.g. `~/.local/share/relax/sessions`).
- `find_all(extra_dirs=())`: every script in those folders, as `Entry(id, language, path)`.
- `resolve(arg, language=None, extra_dirs=())`: a SESSION argument (a path to a file, an id in the
  user's folder, or a built-in id) to a file, picking the language variant.

File names: `<id>.<lang>.yaml` (one file per language, as the built-in library does) or
`<id>.yaml` (the language is read from the script).
"""

from __future__ import annotations

import locale
import os
import stat
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import platformdirs

from audio_engine import fsio
from audio_engine.errors import RelaxError, SessionNotFound
from audio_engine.model import SAMPLE_RATE, primary_language

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Entry:
    id: str
    language: str | None  # from the file name; None when the name does not say
    path: Path
    builtin: bool


def builtin_dir() -> Path:
    packaged = Path(str(resources.files("audio_engine"))) / "_sessions"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "sessions"


def user_dir() -> Path:
    env = os.environ.get("RELAX_SESSIONS_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("relax")) / "sessions"


def locale_language() -> str | None:
    """The primary language of the user's locale (`nl` for nl_NL.UTF-8), if any."""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = os.environ.get(var)
        if value:
            tag = value.split(":")[0].split(".")[0]
            if tag and tag not in ("C", "POSIX"):
                return primary_language(tag)
            return None
    tag = locale.getlocale()[0]
    return primary_language(tag) if tag and tag not in ("C", "POSIX") else None


def parse_name(path: Path) -> tuple[str, str | None]:
    """(id, language) from a file name: `body-scan.nl.yaml` -> ("body-scan", "nl").

    The same rule gives a script without `id:` its id (`script.split_file_name`).
    """
    from audio_engine.script import split_file_name

    return split_file_name(path.name)


def _scan(folder: Path, builtin: bool) -> list[Entry]:
    if not folder.is_dir():
        return []
    entries = []
    for path in sorted(folder.iterdir()):
        if path.suffix in SUFFIXES and path.is_file():
            session_id, language = parse_name(path)
            entries.append(Entry(session_id, language, path, builtin))
    return entries


def find_all(extra_dirs: tuple[Path, ...] | list[Path] = ()) -> list[Entry]:
    """Every script: the user's folder and extra folders first, then the built-in library."""
    entries = []
    for folder in (*[Path(d) for d in extra_dirs], user_dir()):
        entries.extend(_scan(folder, builtin=False))
    entries.extend(_scan(builtin_dir(), builtin=True))
    return entries


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
        raise SessionNotFound(f"no such file: {arg}")
    found = variants(arg, extra_dirs)
    if not found:
        known = sorted({e.id for e in find_all(extra_dirs)})  # (the file names' ids)
        hint = f"; known sessions: {', '.join(known)}" if known else ""
        raise SessionNotFound(f"no session called '{arg}'{hint} (see `relax list`)")
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
            f"session '{arg}' has no '{language}' version (it has: {', '.join(have)})"
        )
    for key in (locale_language(), "en"):
        if key and key in by_language:
            return by_language[key].path
    return found[0].path


ESTIMATE_S_PER_CHAR = 0.065  # a line not made yet: espeak-ng at about 150 words a minute


def length_s(session) -> tuple[float, bool] | None:
    """The session's length in seconds and whether it is estimated (`relax list`, the library
    window): exact from the speech cache, else each missing line estimated from its text.
    None when the script's timing does not hold (`relax validate` tells what does not fit)."""
    from audio_engine import timeline, tts

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
