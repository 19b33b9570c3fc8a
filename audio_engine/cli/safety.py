"""`relax safety [--language LANG]`: print what the sessions are and when to see a doctor."""

from __future__ import annotations

from audio_engine import library, safety


def register(sub) -> None:
    parser = sub.add_parser(
        "safety",
        help="what these sessions are (not medical advice) and when to see a doctor",
        description=(
            "Print the safety text: the sessions are relaxation practice, not medical advice; the "
            "warning signs that need a doctor; and how to stretch gently."
        ),
    )
    parser.add_argument(
        "--language",
        "-l",
        metavar="LANG",
        help="en or nl (default: your locale's language if it is one of these, else English)",
    )
    parser.set_defaults(run=run)


def run(args) -> int:
    language = args.language or library.locale_language() or "en"
    print(safety.safety_text(language), end="")
    # Whoever has read the full text needs no pointer to it any more.
    safety.mark_pointer_shown()
    return 0
