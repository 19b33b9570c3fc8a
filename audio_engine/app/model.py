"""What the library window shows, without pygame: the sessions grouped, and the app's settings.

Entry points:

- `load_library(extra_dirs=()) -> list[Item]`: every session (built-in and your own), one `Item`
  per id with its language versions, in `GROUPS` order.
- `length_s(session) -> (seconds, estimated)`: as `relax list` gives it (exact from the cached
  speech, else estimated).
- `Prefs`, `load_prefs()`, `save_prefs(prefs)`: the choices the window remembers (voice speed,
  background, last session language), in `app.json` in the settings folder.
- `slower_voice(session)`: the voice override that "slower" means.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from audio_engine import fsio, library
from audio_engine.model import Voice, primary_language

GROUPS = ("breathing", "body scan", "stretches", "sleep", "your own")
# Tags (English and Dutch) that put a session in a group; the first of its tags that names one
# decides (sleep-wind-down is tagged sleep first, breathing-478 breathing first).
_GROUP_OF_TAG = {
    "breathing": "breathing",
    "ademhaling": "breathing",
    "body scan": "body scan",
    "bodyscan": "body scan",
    "stretching": "stretches",
    "stretches": "stretches",
    "rekken": "stretches",
    "sleep": "sleep",
    "slaap": "sleep",
}
SLOWER = 0.85  # "slower" speaks at this part of the session's rate
PREFS_FILE = "app.json"


@dataclass(frozen=True)
class Version:
    """One language version of a session."""

    language: str
    path: Path
    title: str
    description: str
    length_s: float
    estimated: bool


@dataclass(frozen=True)
class Item:
    """One session of the library, with every language it has."""

    id: str
    group: str
    builtin: bool
    versions: tuple[Version, ...]
    new: bool = False  # never played

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(v.language for v in self.versions)

    def version(self, language: str | None) -> Version:
        """The version in `language` (or its primary tag), else the locale's, else English, else
        the first."""
        for wanted in (language, library.locale_language(), "en"):
            for v in self.versions:
                if wanted and primary_language(v.language) == primary_language(wanted):
                    return v
        return self.versions[0]


def group_of(tags, builtin: bool) -> str:
    if not builtin:
        return "your own"
    for tag in tags:
        group = _GROUP_OF_TAG.get(str(tag).casefold())
        if group:
            return group
    return "breathing"


def length_s(session) -> tuple[float, bool]:
    """The session's length in seconds and whether it is estimated (speech not made yet)."""
    return library.length_s(session) or (0.0, True)


def length_text(seconds: float, estimated: bool) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{'~' if estimated else ''}{minutes}:{secs:02d}"


def load_library(extra_dirs=(), played_ids: set[str] | None = None) -> list[Item]:
    """Every valid session in the library folders, grouped (`GROUPS` order, then title)."""
    from audio_engine import script

    found: dict[tuple[str, bool], list] = {}
    for entry in library.find_all(tuple(extra_dirs)):
        session, _diagnostics = script.check(entry.path, allowed_dirs=(library.user_dir(),))
        if session is None:
            continue
        found.setdefault((session.id, entry.builtin), []).append((session, entry))
    items = []
    for (session_id, builtin), variants in found.items():
        versions = []
        seen = set()
        tags: list[str] = []
        for session, entry in variants:
            if session.language in seen:
                continue  # a user's file shadows the built-in one
            seen.add(session.language)
            seconds, estimated = length_s(session)
            versions.append(
                Version(
                    session.language,
                    entry.path,
                    session.title,
                    " ".join((session.description or "").split()),
                    seconds,
                    estimated,
                )
            )
            if primary_language(session.language) == "en" or not tags:
                tags = list(getattr(session, "tags", ()) or ())
        versions.sort(key=lambda v: (primary_language(v.language) != "en", v.language))
        new = played_ids is not None and session_id not in played_ids
        items.append(Item(session_id, group_of(tags, builtin), builtin, tuple(versions), new))
    items.sort(key=lambda i: (GROUPS.index(i.group), i.version(None).title.casefold()))
    return items


def slower_voice(session) -> Voice:
    """The voice override for "slower": `SLOWER` of the session's rate, by the `--rate` rules
    (whole words a minute, 80-300)."""
    base = session.voice.rate_wpm or 150
    return Voice(rate_wpm=int(min(300, max(80, base * SLOWER + 0.5))))


@dataclass
class Prefs:
    """What the window remembers between runs."""

    language: str | None = None  # the session language last chosen; None: the locale's
    slower: bool = False
    background: bool = True
    extra: dict = field(default_factory=dict)


def _prefs_path() -> Path:
    from audio_engine.safety import settings_dir

    return settings_dir() / PREFS_FILE


def load_prefs() -> Prefs:
    """The remembered choices; the defaults when there are none or the file cannot be read."""
    try:  # (a FIFO in its place is not waited on)
        data = json.loads(fsio.read_checked(_prefs_path(), 1 << 20))
    except (fsio.FsError, ValueError):
        return Prefs()
    if not isinstance(data, dict):
        return Prefs()
    language = data.get("language")
    return Prefs(
        language=language if isinstance(language, str) else None,
        slower=data.get("slower") is True,
        background=data.get("background") is not False,
    )


def save_prefs(prefs: Prefs) -> None:
    """Remember `prefs` (written whole or not at all); a folder that cannot be written is ignored:
    the choices then last for this run."""
    from audio_engine import fsio

    data = asdict(prefs)
    data.pop("extra", None)
    with contextlib.suppress(fsio.FsError):
        fsio.atomic_write(_prefs_path(), (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def replace_new(item: Item, new: bool) -> Item:
    """`item`, marked new or not."""
    from dataclasses import replace

    return replace(item, new=new)
