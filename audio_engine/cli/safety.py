"""`relax safety [--language LANG]`: print what the sessions are and when to see a doctor."""

from __future__ import annotations

import sys

from audio_engine import library, safety
from audio_engine.cli import _common
from audio_engine.model import primary_language


def register(sub) -> None:
    parser = sub.add_parser(
        "safety",
        help="what these sessions are (not medical advice) and when to see a doctor",
        description=(
            "Print the safety text: the sessions are relaxation practice, not medical advice; the "
            "warning signs that need a doctor; and how to stretch gently."
        ),
    )
    _common.add_language_argument(
        parser,
        "en or nl; another language gets English, with a line saying so (default: your locale's "
        "language if it is one of these, else English)",
    )
    parser.set_defaults(run=run)


def run(args) -> int:
    language = args.language or library.locale_language() or "en"
    if args.language and primary_language(args.language) not in safety.LANGUAGES:
        print(
            f"relax: the safety text has no {args.language!r} version; showing it in English "
            f"(there are: {', '.join(safety.LANGUAGES)})",
            file=sys.stderr,
        )
    print(safety.safety_text(language), end="")
    # Whoever has read the full text needs no pointer to it any more.
    safety.mark_pointer_shown()
    return 0
