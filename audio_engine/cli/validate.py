"""`relax validate FILE...`: check session scripts and report every problem, compiler style.

Each problem goes to stderr as `FILE:LINE:COL: error: PATH: MESSAGE` (or `warning:`); each valid
file gets `FILE: ok` on stdout. Unless `--no-voice` is given, a file that passes the static checks
is also compiled with the real voice, which finds speech that does not fit its time.
Exit code: 0 when every file is valid, 1 when any is not, 2 for a usage error. With `--watch`
the files are checked again on every save (polled every 0.25 s) until Ctrl-C (exit code 130).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

from audio_engine import library, script
from audio_engine.cli import _common
from audio_engine.errors import RelaxError, ScriptError, printable
from audio_engine.model import Repeat, SoundFile

_SUFFIXES = (".yaml", ".yml")


def register(sub) -> None:
    parser = sub.add_parser(
        "validate",
        help="check session scripts and list every problem",
        description="Check session scripts against the format (docs/authoring.md) and list "
        "every problem as FILE:LINE:COL: error: PATH: MESSAGE. Without --no-voice, valid "
        "scripts are also timed with the real voice, which finds speech that is longer than "
        "the time its step gives it. A folder stands for the scripts in it.",
        epilog="Exit codes: 0 all valid, 1 any invalid (or missing), 2 wrong usage.",
    )
    parser.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="a script (.yaml), a folder of scripts, or the id of a built-in or own session "
        "(every language version of it, or the one --language names)",
    )
    parser.add_argument(
        "--language",
        "-l",
        metavar="LANG",
        type=_common.language_tag,
        help="for session ids: check only this language version",
    )
    parser.add_argument(
        "--no-voice",
        action="store_true",
        help="skip only the timing check with the voice (faster; needs no speech engine: voice "
        "names and engines are checked against the engines' voice lists when they can give them)",
    )
    parser.add_argument(
        "--watch",
        action="store_true",
        help=f"keep watching the files: check each one again whenever it is saved (its size or "
        f"modification time changes; looked at every {WATCH_POLL_S:g} s) and print its new "
        "diagnostics; Ctrl-C stops (exit code 130)",
    )
    _common.add_dir_argument(
        parser,
        "also look for session ids in FOLDER and allow sound files from it (may be given more "
        "than once)",
    )
    _common.add_voice_arguments(parser)
    parser.set_defaults(run=run)


def _expand(arg: str, language: str | None = None, extra=()) -> list[tuple[str, Path | None]]:
    """(shown name, path or None when missing) for one FILE argument."""
    path = Path(arg)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file())
        return [(str(p), p) for p in found]
    if path.exists():
        return [(arg, path)]
    looks_like_id = os.sep not in arg and not arg.endswith(_SUFFIXES)
    if looks_like_id:
        if language is None:
            found = library.variants(arg, extra)
            if found:
                return [(str(e.path), e.path) for e in found]
        resolved = library.resolve(arg, language, extra)  # SessionNotFound says why
        return [(str(resolved), resolved)]
    return [(arg, None)]


def _check_one(shown: str, path: Path, args: argparse.Namespace, override) -> bool:
    shown = printable(shown)  # a file's name may hold control characters: never printed raw
    allowed = (library.user_dir(), *args.dir)
    partial: list = []
    bound: list = []
    sounds: list = []
    session, diagnostics = script.check(
        path, allowed_dirs=allowed, partial=partial, bound=bound, sounds=sounds
    )
    found = list(diagnostics)
    timed = session if session is not None else (partial[0] if partial else None)
    ok = session is not None
    if ok and args.no_voice:
        sounds = [x for x in session.background if isinstance(x, SoundFile)]
    if sounds and (args.no_voice or not ok):
        from audio_engine import pipeline

        # The sound files are opened: they must play (with the voice, a valid script's are
        # opened by the timing check; in a script with errors, those of its valid layers).
        try:
            pipeline.load_sound_layers(sounds)
        except ScriptError as exc:
            found += exc.diagnostics
            ok = False
    if timed is not None and args.no_voice:
        ok = _check_voice_names(shown, timed, override, found) and ok
    if timed is not None and not args.no_voice:
        from audio_engine import pipeline

        print(f"{shown}: checking timing with the voice", file=sys.stderr)
        try:
            prepared = pipeline.prepare(timed, override)
        except ScriptError as exc:  # TimingError: speech that does not fit its time
            # Of a script with errors only its complete steps were timed: their own problems.
            # (The length of a part is no news: the script's own length is checked below.)
            found += [
                d
                for d in exc.diagnostics
                if ok or (d.path != "steps" and "limit of 4 hours" not in d.message)
            ]
            ok = False
        except RelaxError as exc:
            if ok:
                print(f"{shown}: error: cannot check timing with the voice: {exc}", file=sys.stderr)
                print(f"{shown}: (use --no-voice to check without the voice)", file=sys.stderr)
            ok = False
        else:
            if session is not None:
                # The static check may have warned already, from the length without speech.
                warned = any("over 2 hours" in d.message for d in diagnostics)
                found += [w for w in prepared.timeline.warnings if not warned]
    if session is None and bound and not args.no_voice:
        found += _four_hours_at_least(bound[0], diagnostics, override)
    for diagnostic in script.sort_diagnostics(found):
        print(diagnostic, file=sys.stderr)
    if ok:
        print(f"{shown}: ok")
    return ok


def _names_a_voice(session) -> bool:
    """Whether the script names a voice or an engine anywhere (`name:` or `engine:`)."""

    def names(voice) -> bool:
        return voice is not None and voice.chooses

    def named(steps) -> bool:
        return any(
            names(getattr(s, "voice", None)) or (isinstance(s, Repeat) and named(s.steps))
            for s in steps
        )

    return names(session.voice) or named(session.steps)


def _check_voice_names(shown: str, session, override, found: list) -> bool:
    """Without the timing check: every voice `name:` and `engine:` (and --voice, --engine)
    against the engines' voice lists, when the engine can list its voices (remembered after its
    first answer); else a note.
    """
    if not _names_a_voice(session) and not (override and override.chooses):
        return True
    from audio_engine import pipeline, tts

    try:
        tts.list_voices()
    except RelaxError as exc:
        print(f"{shown}: note: voice names not checked (no speech engine: {exc})", file=sys.stderr)
        return True
    try:
        pipeline.check_voice_names(session, override)
    except ScriptError as exc:
        found += exc.diagnostics
        return False
    except RelaxError as exc:  # --voice names no voice
        print(f"{shown}: error: --voice: {exc}", file=sys.stderr)
        return False
    return True


def _four_hours_at_least(bound, diagnostics, override) -> list:
    """The 4-hour limit for a script with errors: its valid steps alone, speech counted, already
    pass it (whatever the rest turns out to be, the script lasts longer still)."""
    from audio_engine import pipeline

    if any("limit is 4 hours" in d.message for d in diagnostics):
        return []  # said already, from the length without speech
    try:
        pipeline.prepare(bound, override)
    except ScriptError as exc:
        return [
            dataclasses.replace(d, message=d.message.replace(" lasts ", " lasts at least ", 1))
            for d in exc.diagnostics
            if d.path == "steps" and "limit of 4 hours" in d.message
        ]
    except RelaxError:
        pass  # the voice itself is reported by the timing check above
    return []


WATCH_POLL_S = 0.25


def _signature(path: Path):
    """What changes when a file is saved: (modification time, size); None while it is missing
    (an editor that saves by renaming a new file into place)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _watch(args: argparse.Namespace, override) -> int:
    """Check every file once, then again each time it is saved, until Ctrl-C."""
    entries = []
    for arg in args.files:
        try:
            entries += [
                (shown, path) for shown, path in _expand(arg, args.language, tuple(args.dir))
            ]
        except RelaxError as exc:
            print(f"{arg}: error: {exc}", file=sys.stderr)
    watched = {shown: path or Path(shown) for shown, path in entries}
    if not watched:
        print("relax validate: error: nothing to watch", file=sys.stderr)
        return 1
    seen = {shown: _signature(path) for shown, path in watched.items()}
    try:
        for shown, path in watched.items():
            _check_or_missing(shown, path, args, override)
        print(
            f"watching {len(watched)} file{'s' if len(watched) != 1 else ''} (Ctrl-C to stop)",
            file=sys.stderr,
            flush=True,
        )
        while True:
            time.sleep(WATCH_POLL_S)
            for shown, path in watched.items():
                now = _signature(path)
                if now == seen[shown] or now is None:
                    continue
                time.sleep(WATCH_POLL_S)  # let the editor finish writing
                now = _signature(path)
                seen[shown] = now
                stamp = time.strftime("%H:%M:%S")
                print(f"[{stamp}] {shown} changed, checking again", file=sys.stderr, flush=True)
                _check_or_missing(shown, path, args, override)
    except KeyboardInterrupt:
        print("stopped watching", file=sys.stderr)
        return 130


def _check_or_missing(shown: str, path: Path, args, override) -> bool:
    if not path.exists():
        print(f"{shown}: error: no such file", file=sys.stderr, flush=True)
        return False
    ok = _check_one(shown, path, args, override)
    sys.stdout.flush()
    sys.stderr.flush()
    return ok


def run(args: argparse.Namespace) -> int:
    override = _common.voice_override(args)
    if args.watch:
        return _watch(args, override)
    all_ok = True
    for arg in args.files:
        try:
            entries = _expand(arg, args.language, tuple(args.dir))
        except RelaxError as exc:
            print(f"{arg}: error: {exc}", file=sys.stderr)
            all_ok = False
            continue
        if not entries:
            print(f"{arg}: error: no session scripts (.yaml) in this folder", file=sys.stderr)
            all_ok = False
        for shown, path in entries:
            if path is None:
                print(f"{shown}: error: no such file", file=sys.stderr)
                all_ok = False
                continue
            all_ok = _check_one(shown, path, args, override) and all_ok
            sys.stdout.flush()
    return 0 if all_ok else 1
