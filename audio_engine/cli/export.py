"""`relax export SESSION -o FILE`: write a session to an audio file."""

from __future__ import annotations

import argparse
from pathlib import Path

from audio_engine import export, pipeline
from audio_engine.cli import _common


def register(sub) -> None:
    parser = sub.add_parser(
        "export",
        help="write a session to an audio file",
        description="Render a session and write it to an audio file (stereo, 44.1 kHz). "
        "The file appears only when it is complete: an interrupted export leaves nothing behind.",
    )
    _common.add_session_argument(parser)
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="output file or folder (default: <id>.<language>.wav in the current folder)",
    )
    parser.add_argument(
        "--float",
        dest="float32",
        action="store_true",
        help="32-bit float samples instead of 16-bit",
    )
    _common.add_voice_arguments(parser)
    parser.set_defaults(run=run)


def default_name(session) -> str:
    return f"{session.id}.{session.language}.wav"


def export_session(session, output: Path | None, *, float32=False, voice=None, quiet=False) -> Path:
    prepared = pipeline.prepare(session, voice)
    target = output or Path(default_name(session))
    if target.is_dir():
        target = target / default_name(session)
    progress = _common.Progress(f"exporting {target.name}", enabled=None if not quiet else False)
    path = export.export(
        prepared, target, gain=pipeline.gain(prepared), float32=float32, progress=progress
    )
    progress.done()
    return path


def run(args: argparse.Namespace) -> int:
    session = _common.load_session(args)
    path = export_session(
        session, args.output, float32=args.float32, voice=_common.voice_override(args)
    )
    print(path)
    return 0
