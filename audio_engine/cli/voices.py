"""`relax voices [--language LANG]`: the installed speech voices as an aligned table."""

from __future__ import annotations

import argparse
import sys

from audio_engine import tts
from audio_engine.cli import _common
from audio_engine.model import ENGINES


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "voices",
        help="list the installed speech voices",
        description=(
            "List the installed speech voices of both engines (engine, id, name, languages): the "
            "neural English voice (hibari-tts) and espeak-ng's voices. A session's "
            "`voice: {name}` matches any part of the id, name or languages; without a name the "
            "session's language picks the voice marked with * (English: the neural voice where "
            "it is installed; every other language: espeak-ng)."
        ),
    )
    _common.add_language_argument(
        parser, "only voices for this language (primary subtag: `en` also lists en-GB, en-US)"
    )
    parser.add_argument(
        "--engine", choices=ENGINES, help="only this engine's voices (neural or espeak)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    voices = tts.list_voices(args.engine)
    default_id = None
    if args.language:
        voices = [v for v in voices if tts.speaks(v, args.language)]
        if not voices:
            print(
                f"relax: no installed voice speaks {args.language!r} (`relax voices` lists all)",
                file=sys.stderr,
            )
            return 1
        default_id = tts.voice_for(args.language, engine=args.engine).id
    rows = [("ENGINE", "ID", "NAME", "LANGUAGES")]
    rows += [
        (("* " if v.id == default_id else "  ") + v.engine, v.id, v.name, ", ".join(v.languages))
        for v in sorted(voices, key=lambda v: (ENGINES.index(v.engine), v.id))
    ]
    rows[0] = ("  " + rows[0][0], *rows[0][1:])
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for engine, row_id, name, languages in rows:
        line = f"{engine:<{widths[0]}}  {row_id:<{widths[1]}}  {name:<{widths[2]}}  {languages}"
        print(line.rstrip())
    if default_id:
        print(f"\n* the voice a session in {args.language!r} speaks with by default")
    return 0
