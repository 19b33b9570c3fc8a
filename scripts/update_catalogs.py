#!/usr/bin/env python3
"""Bring the interface's gettext catalogs up to date with the code.

Finds every `_("...")` and `ngettext("...", "...", n)` in audio_engine/ (with Python's own
parser, so only real calls count), writes them to audio_engine/locale/relax.pot and merges
them into each language's relax.po: new messages are added untranslated, messages no longer in
the code are marked obsolete (#~), translations are kept. Then fill in the empty msgstr lines.

    .venv/bin/python scripts/update_catalogs.py          # update every catalog
    .venv/bin/python scripts/update_catalogs.py --new fr # start a catalog for French

tests/test_i18n.py fails while a message of the code has no translation in a catalog.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "audio_engine"
LOCALE = PACKAGE / "locale"
HEADER = {
    "Project-Id-Version": "relax",
    "MIME-Version": "1.0",
    "Content-Type": "text/plain; charset=UTF-8",
    "Content-Transfer-Encoding": "8bit",
}
PLURALS = {"nl": "nplurals=2; plural=(n != 1);", "en": "nplurals=2; plural=(n != 1);"}


def extract(package: Path = PACKAGE) -> dict[tuple[str, str | None], list[str]]:
    """{(msgid, msgid_plural or None): ["file:line", ...]} for every message in the code."""
    found: dict[tuple[str, str | None], list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            args = node.args
            strings = [
                a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)
            ]
            if name in ("_", "gettext_") and len(args) == 1 and len(strings) == 1:
                key = (strings[0], None)
            elif name == "ngettext" and len(args) == 3 and len(strings) == 2:
                key = (strings[0], strings[1])
            else:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            found.setdefault(key, []).append(where)
    return found


def _entry(key, places) -> polib.POEntry:
    msgid, plural = key
    occurrences = sorted({(p.rsplit(":", 1)[0], "") for p in places})
    if plural is None:
        return polib.POEntry(msgid=msgid, msgstr="", occurrences=occurrences)
    return polib.POEntry(
        msgid=msgid, msgid_plural=plural, msgstr_plural={0: "", 1: ""}, occurrences=occurrences
    )


def update(new: list[str]) -> None:
    messages = extract()
    pot = polib.POFile(wrapwidth=100)
    pot.metadata = dict(HEADER)
    for key, places in messages.items():
        pot.append(_entry(key, places))
    LOCALE.mkdir(parents=True, exist_ok=True)
    pot.save(str(LOCALE / "relax.pot"))
    languages = {p.parent.parent.name for p in LOCALE.glob("*/LC_MESSAGES/relax.po")} | set(new)
    for lang in sorted(languages):
        path = LOCALE / lang / "LC_MESSAGES" / "relax.po"
        if path.exists():
            po = polib.pofile(str(path), wrapwidth=100)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            po = polib.POFile(wrapwidth=100)
            po.metadata = dict(HEADER, Language=lang)
            po.metadata["Plural-Forms"] = PLURALS.get(lang, "nplurals=2; plural=(n != 1);")
        po.merge(pot)
        po.save(str(path))
        left = len(po.untranslated_entries())
        print(f"{path.relative_to(ROOT)}: {len(po.translated_entries())} translated, {left} to do")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new", action="append", default=[], metavar="LANG")
    args = parser.parse_args(argv)
    update(args.new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
