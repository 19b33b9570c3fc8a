"""`relax list`: the built-in sessions and your own, with id, language, title and duration."""

from __future__ import annotations

import argparse
from pathlib import Path

from audio_engine import library, pipeline, script
from audio_engine.errors import RelaxError
from audio_engine.model import primary_language


def register(sub) -> None:
    parser = sub.add_parser(
        "list",
        help="list the built-in sessions and your own",
        description="List sessions: the built-in library, your sessions folder "
        f"({library.user_dir()}), and any folder given with --dir.",
    )
    parser.add_argument("--language", "-l", metavar="LANG", help="only sessions in this language")
    parser.add_argument(
        "--dir", action="append", default=[], type=Path, metavar="FOLDER", help="also list FOLDER"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    rows = []
    problems = 0
    for entry in library.find_all(tuple(args.dir)):
        session, diagnostics = script.check(entry.path, allowed_dirs=(library.user_dir(),))
        if session is None:
            problems += 1
            rows.append(
                (
                    entry.id,
                    entry.language or "?",
                    f"(invalid: run `relax validate {entry.path}`)",
                    "",
                    entry,
                )
            )
            continue
        if args.language and primary_language(session.language) != primary_language(args.language):
            continue
        try:
            duration = pipeline.prepare(session).timeline.duration_s
            shown = f"{int(duration // 60)}:{int(round(duration % 60)):02d}"
        except RelaxError:
            shown = "?"
        where = "built-in" if entry.builtin else str(entry.path.parent)
        rows.append((session.id, session.language, session.title, shown, entry, where))
    if not rows:
        print("no sessions found")
        return 0
    width_id = max(len(r[0]) for r in rows)
    width_title = max(len(r[2]) for r in rows)
    print(f"{'ID':<{width_id}}  LANG   {'TITLE':<{width_title}}  DURATION  WHERE")
    for row in rows:
        where = row[5] if len(row) > 5 else ""
        print(f"{row[0]:<{width_id}}  {row[1]:<5}  {row[2]:<{width_title}}  {row[3]:>8}  {where}")
    return 1 if problems else 0
