"""Language tags (BCP 47), without the session model: `primary_language(tag)`, and the user's
locale's language (`locale_language()`).

`model` has it under the same name; this module is what a command that only lists sessions (a
listing from the cache) needs of it, without the model's dataclasses.
"""

from __future__ import annotations

import locale
import os


def primary_language(tag: str) -> str:
    """The primary subtag of a BCP 47 tag, lower-case: `en-GB` -> `en`."""
    return tag.split("-")[0].split("_")[0].lower()


def locale_language() -> str | None:
    """The primary language of the user's locale (`nl` for nl_NL.UTF-8), if any.

    As gettext chooses a program's message language: the first of `LANGUAGE`'s list (unless the
    locale is plain C or POSIX, where gettext ignores it), else the first of `LC_ALL`,
    `LC_MESSAGES` and `LANG` that is set."""
    name = next(
        (os.environ[v] for v in ("LC_ALL", "LC_MESSAGES", "LANG") if os.environ.get(v)), None
    )
    preferred = os.environ.get("LANGUAGE", "").split(":")[0].split(".")[0]
    if preferred and name not in ("C", "POSIX"):
        return primary_language(preferred)
    if name is not None:
        tag = name.split(".")[0]
        return primary_language(tag) if tag and tag not in ("C", "POSIX") else None
    tag = locale.getlocale()[0]
    return primary_language(tag) if tag and tag not in ("C", "POSIX") else None
