"""The `relax` command line: argument parsing, one module per command, exit codes.

Each command module has `register(subparsers)`, which adds its parser and sets `run=` to a function
taking the parsed arguments and returning the exit code. `main()` turns every `RelaxError` into one
line on stderr and its exit code, and Ctrl-C into exit code 130, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys

from audio_engine import __version__
from audio_engine.errors import RelaxError, ScriptError, printable
from audio_engine.i18n import _
from audio_engine.signals import ending_signals

COMMANDS = ("play", "export", "validate", "list", "info", "new", "schema", "voices", "safety")
COMMANDS += ("history",)
COMMANDS += ("remind",)
COMMANDS += ("record",)
COMMANDS += ("install-launcher",)
COMMANDS += ("phone",)

# What `relax --help` lists for each command, without importing the commands' modules (their
# engines and numpy): the same text as each module's parser has (a test keeps them equal).
SUMMARIES = {
    "play": "play a session",
    "export": "write a session (or the whole library) to audio files",
    "validate": "check session scripts and list every problem",
    "list": "list the built-in sessions and your own",
    "info": "show a session's outline: sections and steps with their start times",
    "new": "start a session script of your own",
    "schema": "print the JSON Schema of session scripts",
    "voices": "list the installed speech voices",
    "safety": "what these sessions are (not medical advice) and when to see a doctor",
    "history": "your practice history: last sessions, minutes, streaks",
    "remind": "break reminders on active time",
    "record": "record a session's lines in your own voice (the recorded voice)",
    "install-launcher": "add relax to your app menu",
    "phone": "your sessions as a private podcast for your phone, on your home network",
}


class _Parser(argparse.ArgumentParser):
    # A command whose help is in the interface language (`relax remind`) sets this: its usage
    # errors are then in that language too, argparse's own words included.
    translated = False

    def error(self, message: str):  # usage errors: one line, exit 2
        if not self.translated:
            self.exit(2, f"{self.prog}: error: {message}\n(see {self.prog} --help)\n")
        said = _("{prog}: error: {message}").format(prog=self.prog, message=_argparse(message))
        self.exit(2, said + "\n" + _("(see {prog} --help)").format(prog=self.prog) + "\n")


# argparse's own messages (it reads no catalog of ours), in the interface language; the first
# pattern that matches the whole message wins.
_ARGPARSE = (
    (
        r"argument (?P<arg>\S+): expected one argument",
        lambda: _("argument {arg}: expected one argument"),
    ),
    (
        r"argument (?P<arg>\S+): not allowed with argument (?P<other>\S+)",
        lambda: _("argument {arg}: not allowed with argument {other}"),
    ),
    (
        r"argument (?P<arg>\S+): invalid choice: (?P<value>.+?) \(choose from (?P<choices>.+)\)",
        lambda: _("argument {arg}: invalid choice: {value} (choose from {choices})"),
    ),
    (
        r"argument (?P<arg>\S+): invalid \w+ value: (?P<value>.+)",
        lambda: _("argument {arg}: invalid value: {value}"),
    ),
    (r"argument (?P<arg>\S+): (?P<message>.+)", lambda: _("argument {arg}: {message}")),
    (r"unrecognized arguments: (?P<args>.+)", lambda: _("unrecognized arguments: {args}")),
    (
        r"ambiguous option: (?P<option>\S+) could match (?P<matches>.+)",
        lambda: _("ambiguous option: {option} could match {matches}"),
    ),
    (
        r"the following arguments are required: (?P<args>.+)",
        lambda: _("the following arguments are required: {args}"),
    ),
)


def _argparse(message: str) -> str:
    import re

    for pattern, text in _ARGPARSE:
        found = re.fullmatch(pattern, message, flags=re.S)
        if found:
            return text().format(**found.groupdict())
    return message


def build_parser(only: str | None = None, light: bool = False) -> argparse.ArgumentParser:
    """The whole command line; with `only`, just that command (start-up stays short); `light`:
    every command by name and summary only (`SUMMARIES`), no module imported (`relax --help`)."""
    parser = _Parser(
        prog="relax",
        description="Voice-guided relaxation sessions: play them, export them, write your own.",
        epilog="Run `relax COMMAND --help` for the options of a command. Without a COMMAND, "
        "relax opens the library window where there is a display.",
    )
    parser.add_argument("--version", action="version", version=f"relax {__version__}")
    parser.add_argument(
        "--ui-language",
        metavar="LANG",
        help="the language of the interface (the library window, reminders, summaries): en or "
        "nl; default: your locale's. A session shows its own language while it plays",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        if only is not None and name != only:
            continue
        if light and only is None:
            sub.add_parser(name, help=SUMMARIES[name])
            continue
        try:
            module = importlib.import_module(f"audio_engine.cli.{name.replace('-', '_')}")
        except ModuleNotFoundError as exc:
            if exc.name != f"audio_engine.cli.{name.replace('-', '_')}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    _replace_unencodable_output()
    words = sys.argv[1:] if argv is None else argv
    first = _command_word(words)
    # SIGTERM (a `kill`, a logout) and SIGHUP (the terminal closed) end the command like an
    # error does: through every `finally`, so no temporary file is left behind and a play is
    # recorded; exit status 128 + the signal's number (143, 129) as for the plain signal.
    old = {}
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        for signum in ending_signals():
            old[signum] = signal.signal(signum, _terminated)
    try:
        # The interface language before the parser is built: a command's help is written then.
        _ui_language(words)
        # Building the parser imports the command's modules (numpy, pygame, ...): a Ctrl-C may
        # come in there too.
        parser = build_parser(first if first in COMMANDS else None, light=True)
        args, extra = parser.parse_known_args(argv)
        if getattr(args, "command", None) in COMMANDS and not getattr(args, "run", None):
            parser = build_parser(args.command)  # named after an option: its module now
            args, extra = parser.parse_known_args(argv)
        if extra:  # said by the command's own parser: it points to `relax COMMAND --help`
            _command_parser(parser, getattr(args, "command", None)).error(
                f"unrecognized arguments: {' '.join(extra)}"
            )
        _launcher_hint(first)
        if args.ui_language:
            from audio_engine import i18n

            if not i18n.has_interface(args.ui_language):  # a usage error: exit 2
                message = i18n.unknown_language_error(args.ui_language)
                print(_("relax: error: {message}").format(message=message), file=sys.stderr)
                return 2
            i18n.set_language(args.ui_language)
        if not getattr(args, "run", None):
            if first is None and "-h" not in words and _library_window():
                from audio_engine.app import window

                return window.main()
            parser.print_help()
            return 2
        return int(args.run(args) or 0)
    except ScriptError as exc:
        _clear_status_line()
        for diagnostic in exc.diagnostics:
            print(diagnostic, file=sys.stderr)
        return exc.exit_code
    except RelaxError as exc:
        _clear_status_line()
        print(_("relax: error: {message}").format(message=printable(str(exc))), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        _clear_status_line()
        print(_("relax: interrupted"), file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)


def _replace_unencodable_output() -> None:
    """Text the terminal's encoding cannot show (`ë` under LC_ALL=C, `☃` in Latin-1) is printed
    as `?`, never a crash; a file name's undecodable bytes are printed back as they came."""
    import codecs

    codecs.register_error("relax.replace", _replace)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            if stream is not None and stream.errors in (
                "strict",
                "surrogateescape",
                "backslashreplace",
            ):
                stream.reconfigure(errors="relax.replace")


def _replace(exc: UnicodeError):
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out = bytearray()
    for char in exc.object[exc.start : exc.end]:
        code = ord(char)
        out += bytes([code - 0xDC00]) if 0xDC80 <= code <= 0xDCFF else b"?"
    return bytes(out), exc.end


def _command_word(words: list[str]) -> str | None:
    """The command in `words`: the first word that is not an option or --ui-language's value."""
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--ui-language":
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def _ui_language(words: list[str]) -> None:
    """Use `--ui-language LANG` (given before the command) from now on."""
    from audio_engine import i18n

    tag = i18n.language_option(words, until_command=True)
    if tag is not None:
        i18n.set_language(tag)


def _library_window() -> bool:
    """Whether `relax` alone opens the library window: a display exists (not the tests' dummy)."""
    import os

    if os.environ.get("SDL_VIDEODRIVER", "").lower() in ("dummy", "offscreen"):
        return False
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _launcher_hint(command: str | None) -> None:
    # The first run from the checkout's launcher (scripts/relax) says, once, how to add relax
    # to the app menu.
    import os

    launcher = os.environ.get("RELAX_LAUNCHER")
    if not launcher or command == "install-launcher" or not sys.stderr.isatty():
        return
    from audio_engine.app.launcher import hint_once

    line = hint_once(launcher)
    if line:
        print(line, file=sys.stderr)


def _command_parser(parser: argparse.ArgumentParser, command: str | None):
    """The parser of `command` (`relax play`), else `parser` itself."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return parser


def _terminated(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _clear_status_line() -> None:
    """Wipe a progress or status line left on the terminal, so the message starts clean."""
    try:
        if sys.stderr.isatty():
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
    except (OSError, ValueError):
        pass
