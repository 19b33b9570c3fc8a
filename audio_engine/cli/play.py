"""`relax play SESSION`: play a session live, with a breathing pacer and keyboard controls."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from audio_engine import history, pipeline, player, safety
from audio_engine.cli import _common
from audio_engine.errors import AudioDeviceError, UsageError
from audio_engine.i18n import _

KEYS_HELP = (
    "keys: space pause/resume, right or n next section, left or p previous section, "
    "up/down or +/- volume, m background on/off, q or Esc quit"
)


def register(sub) -> None:
    parser = sub.add_parser(
        "play",
        help="play a session",
        description="Play a session through the sound card, with a breathing pacer window (or a "
        "status line in the terminal). With no audio output device this is an error (exit 1); "
        "from the scripts/relax launcher (RELAX_FALLBACK_EXPORT=1) what would have played is "
        "written to <id>.<language>.wav (with --from N: <id>.<language>.from-N.wav, from that "
        "section) and its .vtt transcript in the current folder instead.",
        epilog=KEYS_HELP,
    )
    _common.add_session_argument(parser)
    parser.add_argument(
        "--from",
        dest="start_from",
        metavar="SECTION",
        help="start at a section: its title (or the start of it, any case) or its number (1 = first)",
    )
    parser.add_argument(
        "--no-window",
        action="store_true",
        help="no pacer window: a status line in the terminal (also used when there is no display)",
    )
    parser.add_argument(
        "--no-summary",
        action="store_true",
        help="do not show today's minutes of practice at the end (for good: `relax history "
        "--summary off`). Each play is recorded in your practice history on this machine; "
        "`relax history --off` stops that",
    )
    _common.add_voice_arguments(parser)
    parser.set_defaults(run=run)


def chapter_start(timeline, wanted: str | None) -> int:
    """The first sample of the section named by `wanted` (title prefix or 1-based number)."""
    index = chapter_index(timeline, wanted)
    return 0 if index is None else timeline.chapters[index].start_sample


def chapter_index(timeline, wanted: str | None) -> int | None:
    """The index of the section named by `wanted` (title prefix or 1-based number); None for
    no `wanted`. Raises `UsageError` naming the sections when none matches."""
    if wanted is None:
        return None
    chapters = timeline.chapters
    names = ", ".join(f"{i}. {c.title}" for i, c in enumerate(chapters, 1)) or _("none")
    text = wanted.strip()
    if not text:
        raise UsageError(
            _("--from needs a section title or number (sections: {names})").format(names=names)
        )
    if text.isascii() and text.isdigit():
        number = int(text)
        if 1 <= number <= len(chapters):
            return number - 1
        raise UsageError(
            _("--from {text}: there is no section {number} (sections: {names})").format(
                text=text, number=number, names=names
            )
        )
    needle = text.casefold()
    for match in (
        lambda t: t == needle,
        lambda t: t.startswith(needle),
    ):
        found = [i for i, c in enumerate(chapters) if match(c.title.casefold())]
        if found:
            return found[0]
    raise UsageError(
        _("--from {text}: no section has that title (sections: {names})").format(
            text=repr(text), names=names
        )
    )


def _naming_the_session(message: str, args) -> str:
    """The device error's advice with the command that exports this session, as typed:
    `relax export breathing-478 --language nl`, not `relax export SESSION`."""
    words = ["relax", "export", args.session]
    if args.language:
        words += ["--language", args.language]
    for folder in args.dir:
        words += ["--dir", str(folder)]
    for option, value in (
        ("--voice", args.voice),
        ("--rate", args.rate),
        ("--volume", args.volume),
        ("--engine", args.engine),
    ):
        if value is not None:
            words += [option, f"{value:g}" if isinstance(value, float) else str(value)]
    return message.replace("relax export SESSION", shlex.join(words))


def _show_pointer(session) -> None:
    pointer = safety.first_run_pointer(session.language)
    if pointer:
        print(pointer, file=sys.stderr)


def _play_recorded(args, session, growing, gain, start) -> None:
    # The practice history (docs/history.md): one row per play, written when it ends however it
    # ends; a history that cannot be written costs one line, never the session.
    recording = history.start(session.id, session.language)
    heard: list[tuple[int, int]] = []
    result = None
    show = recording is not None and not args.no_summary and history.summary_on()

    def end_text():
        play = recording.finish(growing.timeline, heard, completed=True)
        return history.end_text_for(play) if show else None

    try:
        result = player.play(
            growing,
            gain,
            start_sample=start,
            window=not args.no_window,
            heard=heard,
            end_text=end_text if recording is not None else None,
        )
    finally:
        if recording is not None:
            recording.finish(growing.timeline, heard, completed=result == "end")


def run(args: argparse.Namespace) -> int:
    session = _common.load_session(args)
    voice = _common.voice_override(args)
    # Speech is synthesized in the order it is spoken while the session starts playing; a
    # short session (or a warm cache) is simply complete before the first sound.
    growing = pipeline.Growing(session, voice, began=_common.command_started())
    try:
        return _play(args, session, voice, growing)
    finally:
        growing.close()


def _play(args, session, voice, growing) -> int:
    start = 0
    index = chapter_index(growing.timeline, args.start_from)  # a wrong name fails at once
    if index is not None:
        # A later section's start moves while the speech before it is synthesized.
        growing.wait(lambda g: g.timeline.chapters[index].start_sample < g.final_until)
        if growing.error is not None:
            raise growing.error
        start = growing.timeline.chapters[index].start_sample
    if not growing.complete:
        # pygame is imported while the speech engine loads and the first lines are made (the
        # device itself opens once the gain is known), not after.
        player.import_pygame()
    gain = growing.gain()
    try:
        # Opened once the session is ready: an open device plays silence until it starts.
        player.open_mixer(growing.timeline.sample_rate)
    except AudioDeviceError as exc:
        if os.environ.get("RELAX_FALLBACK_EXPORT") != "1":
            raise AudioDeviceError(_naming_the_session(str(exc), args)) from None
        from audio_engine.cli.export import fallback_export

        _show_pointer(session)
        reason = str(exc).split(";")[0]  # the device problem, without the advice to export
        return fallback_export(session, voice, growing, index, reason)
    # After the device check, so that "no device" stays a single line.
    _show_pointer(session)
    _play_recorded(args, session, growing, gain, start)
    if growing.error is not None:
        raise growing.error
    return 0
