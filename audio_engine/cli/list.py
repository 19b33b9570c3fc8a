"""`relax list`: the built-in sessions and your own, with id, languages, title and duration."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audio_engine import library
from audio_engine.cli import _common
from audio_engine.i18n import _
from audio_engine.langtag import primary_language

# Speech not yet in the cache is estimated at this many seconds per character (espeak at ~150 wpm).


def register(sub) -> None:
    parser = sub.add_parser(
        "list",
        help="list the built-in sessions and your own",
        description="List sessions: the built-in library, your sessions folder "
        f"({library.user_dir()}), and any folder given with --dir. One row per session id, with "
        "the languages it has. Durations are exact when the session's speech is cached (after it "
        "was played, exported or checked once) and marked ~ when estimated; a line under the "
        "table says so when any is.",
    )
    _common.add_language_argument(parser, "only sessions in this language")
    _common.add_dir_argument(
        parser, "also list the sessions in FOLDER (may be given more than once)"
    )
    parser.set_defaults(run=run)


def _duration(found: tuple[float, bool] | None) -> str:
    """m:ss of a session's `library.length_s`; marked with ~ when estimated."""
    if found is None:
        return _("timing?")  # `relax validate` tells what does not fit
    seconds, estimated = found
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{'~' if estimated else ''}{minutes}:{secs:02d}"


def run(args: argparse.Namespace) -> int:
    groups: dict[tuple[str, Path], list[library.Listed]] = {}
    problems = []
    for item in library.listing(tuple(args.dir)):
        if item.id is None:
            problems.append(item.path)
            continue
        groups.setdefault((item.id, item.path.parent), []).append(item)
    wanted = primary_language(args.language) if args.language else None
    # Titles in the interface's language (`--ui-language`, else the locale's), else English.
    ui = getattr(args, "ui_language", None)
    preferred = (primary_language(ui) if ui else library.locale_language(), "en")
    rows = []
    for (session_id, folder), variants in groups.items():
        languages = sorted({s.language for s in variants})
        if wanted and wanted not in {primary_language(lang) for lang in languages}:
            continue
        shown = next(
            (
                s
                for key in (wanted, *preferred)
                for s in variants
                if key and primary_language(s.language) == key
            ),
            variants[0],
        )
        where = _("built-in") if shown.builtin else str(folder)
        rows.append((session_id, ", ".join(languages), shown.title, _duration(shown.length), where))
    if rows:
        # The column heads in the interface's language, like the titles under them.
        header = (_("ID"), _("LANGUAGES"), _("TITLE"), _("LENGTH"), _("WHERE"))
        widths = [max(len(r[i]) for r in [*rows, header]) for i in range(4)]
        for row in [header, *rows]:
            print(
                "  ".join(f"{v:<{w}}" for v, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
            )
        if any(row[3].startswith("~") for row in rows):
            print(
                "\n"
                + _(
                    "~ estimated: the speech is not made yet; the length is exact once the "
                    "session has been played, exported or checked (`relax validate`)"
                )
            )
    elif args.language:
        print(_("no sessions found in language '{language}'").format(language=args.language))
    else:
        print(_("no sessions found"))
    for path in problems:
        print(
            _("relax: {path}: invalid script (run `relax validate {path}`)").format(path=path),
            file=sys.stderr,
        )
    return 1 if problems else 0
