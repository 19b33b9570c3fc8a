"""`relax voices [--language LANG]`: the installed speech voices as an aligned table."""

from __future__ import annotations

import argparse
import sys

from audio_engine import tts
from audio_engine.cli import _common


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "voices",
        help="list the installed speech voices",
        description=(
            "List the installed speech voices (id, name, languages). A session's `voice: {name}` "
            "matches any part of the id, name or languages; without a name the session's language "
            "picks the voice marked with *."
        ),
    )
    _common.add_language_argument(
        parser, "only voices for this language (primary subtag: `en` also lists en-GB, en-US)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    voices = tts.list_voices()
    default_id = None
    if args.language:
        voices = [v for v in voices if tts.speaks(v, args.language)]
        if not voices:
            print(
                f"relax: no installed voice speaks {args.language!r} (`relax voices` lists all)",
                file=sys.stderr,
            )
            return 1
        default_id = tts.voice_for(args.language).id
    rows = [("ID", "NAME", "LANGUAGES")]
    rows += [
        (("* " if v.id == default_id else "  ") + v.id, v.name, ", ".join(v.languages))
        for v in sorted(voices, key=lambda v: v.id)
    ]
    rows[0] = ("  " + rows[0][0], *rows[0][1:])
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for row_id, name, languages in rows:
        print(f"{row_id:<{widths[0]}}  {name:<{widths[1]}}  {languages}".rstrip())
    if default_id:
        print(f"\n* the voice a session in {args.language!r} speaks with by default")
    return 0
