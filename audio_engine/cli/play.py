"""`relax play SESSION`: play a session live."""

from __future__ import annotations

import argparse
import os
import sys

from audio_engine import pipeline, player
from audio_engine.cli import _common
from audio_engine.errors import AudioDeviceError


def register(sub) -> None:
    parser = sub.add_parser(
        "play",
        help="play a session",
        description="Play a session through the sound card. With no audio output device this is "
        "an error (exit 1); from the scripts/relax launcher (RELAX_FALLBACK_EXPORT=1) the session "
        "is written to <id>.<language>.wav in the current folder instead.",
    )
    _common.add_session_argument(parser)
    _common.add_voice_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    session = _common.load_session(args)
    voice = _common.voice_override(args)
    prepared = pipeline.prepare(session, voice)
    try:
        player.open_mixer(prepared.timeline.sample_rate).mixer.quit()
    except AudioDeviceError as exc:
        if os.environ.get("RELAX_FALLBACK_EXPORT") != "1":
            raise
        from audio_engine.cli.export import export_session

        print(f"relax: {exc}; writing the session to a file instead", file=sys.stderr)
        path = export_session(session, None, voice=voice)
        print(f"relax: exported to {path}", file=sys.stderr)
        print(path)
        return 0
    player.play(prepared, pipeline.gain(prepared))
    return 0
