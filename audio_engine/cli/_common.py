"""Pieces shared by the commands: the SESSION argument, voice overrides, terminal progress."""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from audio_engine.errors import UsageError
from audio_engine.i18n import _

if TYPE_CHECKING:
    from audio_engine import model


def language_tag(value: str) -> str:
    """argparse type for --language: a BCP 47 tag such as en, nl or en-GB (else a usage error)."""
    from audio_engine.script._check import LANGUAGE_PATTERN  # the rule scripts follow

    if not re.match(LANGUAGE_PATTERN, value):
        raise argparse.ArgumentTypeError(f"must be a tag such as en, nl or en-GB, not {value!r}")
    return value


def add_language_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    """`--language LANG` / `-l LANG`, the same in every command."""
    parser.add_argument("--language", "-l", metavar="LANG", type=language_tag, help=help_text)


def add_session_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "session",
        metavar="SESSION",
        help="a built-in session id (see `relax list`), an id in your sessions folder, or a file",
    )
    add_language_argument(
        parser, "which language version of the session (default: your locale's, else English)"
    )
    add_dir_argument(parser)


def add_dir_argument(
    parser: argparse.ArgumentParser,
    help_text: str = "also look for sessions in FOLDER (may be given more than once)",
) -> None:
    parser.add_argument(
        "--dir", action="append", default=[], type=Path, metavar="FOLDER", help=help_text
    )


def add_voice_arguments(parser: argparse.ArgumentParser) -> None:
    from audio_engine import model  # here: `relax list` needs none of the session model

    group = parser.add_argument_group("voice (overrides the script for this run)")
    group.add_argument(
        "--voice", metavar="NAME", help="voice id, name or language (see `relax voices`)"
    )
    group.add_argument(
        "--rate",
        type=float,
        metavar="WPM",
        help="speaking rate, words per minute (80-300; rounded to a whole number); a line that "
        "must fit a set time (a cue, a count, a `say` with `duration`) gets the slowest rate "
        "between this and the script's own at which it fits",
    )
    group.add_argument("--volume", type=float, metavar="V", help="voice volume, 0-1")
    group.add_argument(
        "--engine",
        choices=model.ENGINES,
        help="speech engine: neural (hibari-tts, English only) or espeak (espeak-ng, every "
        "language); default: neural for English where installed, espeak otherwise",
    )


def voice_override(args) -> model.Voice | None:
    rate = getattr(args, "rate", None)
    volume = getattr(args, "volume", None)
    name = getattr(args, "voice", None)
    engine = getattr(args, "engine", None)
    if rate is not None and not 80 <= rate <= 300:  # also NaN
        raise UsageError(
            _("--rate must be 80-300 words per minute, not {rate}").format(rate=f"{rate:g}")
        )
    if rate is not None:
        rate = int(math.floor(rate + 0.5))  # as in scripts: halves round up
    if volume is not None and not 0 <= volume <= 1:
        raise UsageError(_("--volume must be between 0 and 1, not {volume}").format(volume=volume))
    if rate is None and volume is None and name is None and engine is None:
        return None
    from audio_engine import model

    return model.Voice(name=name, rate_wpm=rate, volume=volume, engine=engine)


def command_started() -> float:
    """When this command's process started, on `time.monotonic()`'s clock (Linux, from /proc:
    Python's own start-up included); now where that cannot be told, or in a process that has run
    for a while (the command line called from within a program)."""
    now = time.monotonic()
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return now
    return now - age if 0 <= age < 2 else now


def load_session(args):
    from audio_engine import library  # imported when a command runs: keeps `--help` fast

    return library.load(args.session, args.language, tuple(args.dir))


def _columns(stream) -> int:
    """The terminal's width in columns (80 when it cannot be told)."""
    try:
        return max(1, os.get_terminal_size(stream.fileno()).columns)
    except (AttributeError, OSError, ValueError):
        return shutil.get_terminal_size().columns


class Progress:
    """One status line on stderr while work goes on; nothing at all when stderr is not a terminal."""

    def __init__(self, label: str, stream=None, enabled: bool | None = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = label
        self.started = time.monotonic()
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and done < total:
            return
        self._last = now
        fraction = min(1.0, done / total)
        elapsed = now - self.started
        left = elapsed / fraction - elapsed if fraction > 0 else 0.0
        self.stream.write("\r" + self.line(fraction, left, _columns(self.stream)))
        self.stream.flush()

    def line(self, fraction: float, left_s: float, columns: int) -> str:
        """The status line, within `columns - 1` characters (a line as wide as the terminal
        would wrap on some): the bar shrinks first, then the label is cut."""
        tail = f" {fraction:4.0%} {left_s:4.0f}s left "
        room = columns - 1 - len(tail)
        width = min(30, room - len(self.label) - 3)
        if width >= 5:
            filled = int(fraction * width)
            return f"{self.label} [{'#' * filled}{'-' * (width - filled)}]{tail}"
        tail = tail.rstrip()
        room = columns - 1 - len(tail)
        if room >= len(self.label):
            return f"{self.label}{tail}"
        if room >= 4:
            return f"{self.label[: room - 1]}…{tail}"
        return tail.strip()[: max(0, columns - 1)]

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()
