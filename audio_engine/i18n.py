"""The interface's language: gettext catalogs for every text relax shows a person.

Entry points:

- `_(message)` and `ngettext(singular, plural, n)`: `message` in the interface language.
- `set_language(tag)`: choose it for the whole process (`None`: the system locale's);
  `using(tag)`: the same for a `with` block (a session speaks its own language).
- `language()`: the one in force; `available()`: the languages with a catalog (and English).
- `catalog_path(tag)`: where a language's `.po` file is.

Which language: during a session, the session's (`using(session.language)`); else the one chosen
with `relax --ui-language` or in the library window (`set_language`); else the system locale's
(`langtag.locale_language()`); English when there is no catalog for it.

The catalogs are `.po` files in `audio_engine/locale/<lang>/LC_MESSAGES/relax.po`, the messages
in English. They are compiled to gettext's binary form in memory when a language is first used
(polib, a few milliseconds) and read with the standard library's `gettext.GNUTranslations`, so
there is no build step and a changed `.po` file is in use at the next start. docs/player.md says
how to add a language.
"""

from __future__ import annotations

import contextlib
import functools
import gettext
import io
import threading
from pathlib import Path

from audio_engine.langtag import locale_language

DOMAIN = "relax"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
SOURCE_LANGUAGE = "en"

_chosen: str | None = None  # set_language's; None: the system locale's
_current: tuple[str, gettext.NullTranslations] | None = None
_local = threading.local()  # `using`'s language, for the thread inside the block only


def catalog_path(tag: str) -> Path:
    """The `.po` file of language `tag` (a primary subtag such as `nl`)."""
    return LOCALE_DIR / tag / "LC_MESSAGES" / f"{DOMAIN}.po"


def available() -> tuple[str, ...]:
    """English and every language that has a catalog, sorted."""
    found = {SOURCE_LANGUAGE}
    if LOCALE_DIR.is_dir():
        found |= {p.name for p in LOCALE_DIR.iterdir() if catalog_path(p.name).is_file()}
    return tuple(sorted(found))


def language_option(words: list[str], *, until_command: bool = False) -> str | None:
    """The value of `--ui-language LANG` (or `--ui-language=LANG`) in command-line `words`, read
    before the parser is built (its help is written in that language); with `until_command`
    only before the first word that is not an option (a command's own options follow it)."""
    found = None
    for i, word in enumerate(words):
        if word == "--ui-language" and i + 1 < len(words):
            found = words[i + 1]
        elif word.startswith("--ui-language="):
            found = word.partition("=")[2]
        elif until_command and not word.startswith("-") and words[i - 1 : i] != ["--ui-language"]:
            break
    return found


def has_interface(tag: str) -> bool:
    """Whether the interface exists in the language of `tag` (`nl`, `nl-BE`, `nl_NL.UTF-8`)."""
    return _primary(tag) in available()


def unknown_language_error(tag: str) -> str:
    """The error line for asking for an interface language relax does not have, in the system
    locale's language (the one asked for is not there)."""
    set_language(None)
    return _("--ui-language: there is no interface in '{tag}' (choose from: {languages})").format(
        tag=tag, languages=", ".join(available())
    )


def _primary(tag: str | None) -> str:
    return (tag or "").replace("_", "-").split("-")[0].strip().lower()


@functools.cache
def _translations(primary: str) -> gettext.NullTranslations:
    path = catalog_path(primary)
    if primary == SOURCE_LANGUAGE or not path.is_file():
        return gettext.NullTranslations()
    import polib

    compiled = polib.pofile(str(path)).to_binary()
    return gettext.GNUTranslations(io.BytesIO(compiled))


def _resolve(tag: str | None) -> str:
    """The language a tag gets: its primary subtag when there is a catalog, else English."""
    if tag is None:
        tag = locale_language()
    primary = _primary(tag)
    return primary if primary in available() else SOURCE_LANGUAGE


def _active() -> tuple[str, gettext.NullTranslations]:
    global _current
    inside = getattr(_local, "current", None)
    if inside is not None:
        return inside
    if _current is None:
        lang = _resolve(_chosen)
        _current = (lang, _translations(lang))
    return _current


def language() -> str:
    """The interface language in force (a primary subtag: `en`, `nl`)."""
    return _active()[0]


def set_language(tag: str | None) -> str:
    """Use `tag` (`None`: the system locale's) from now on; returns the language in force."""
    global _chosen, _current
    _chosen = tag
    _current = None
    return language()


@contextlib.contextmanager
def using(tag: str | None):
    """The interface in `tag` inside the block (a session's language), then as it was; in this
    thread only (an export writing in the background keeps the interface's language)."""
    saved = getattr(_local, "current", None)
    lang = _resolve(tag) if tag is not None else _resolve(_chosen)
    _local.current = (lang, _translations(lang))
    try:
        yield lang
    finally:
        _local.current = saved


def _(message: str) -> str:
    """`message` (English) in the interface language."""
    return _active()[1].gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """`singular` or `plural` (English) for `n`, in the interface language's plural rule."""
    return _active()[1].ngettext(singular, plural, n)


gettext_ = _

__all__ = [
    "DOMAIN",
    "LOCALE_DIR",
    "_",
    "available",
    "catalog_path",
    "gettext_",
    "language",
    "ngettext",
    "set_language",
    "using",
]
