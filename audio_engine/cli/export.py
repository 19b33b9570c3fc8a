"""`relax export SESSION -o FILE` and `relax export --all --outdir DIR`: sessions to audio files.

Entry points: `register(sub)` (the command), `export_session(session, output, ...)` (one session,
also used by `relax play` when there is no audio device), `default_name(session, fmt="wav")`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from audio_engine import export, library, model, pipeline
from audio_engine.cli import _common
from audio_engine.errors import ExportError, RelaxError, ScriptError, UsageError
from audio_engine.i18n import _
from audio_engine.model import primary_language


def register(sub) -> None:
    parser = sub.add_parser(
        "export",
        help="write a session (or the whole library) to audio files",
        description="Render a session and write it to an audio file (stereo, 44.1 kHz): WAV, "
        "FLAC, OGG (Vorbis) or MP3, chosen by the file extension or --format, with tags, chapters "
        "and a WebVTT transcript beside it (FILE with .vtt). Files appear only when complete: an "
        "interrupted export leaves nothing behind.",
        epilog="Examples: relax export breathing-478 -o 478.mp3; "
        "relax export --all --outdir out --language nl --format ogg",
    )
    parser.add_argument(
        "sessions",
        nargs="*",
        metavar="SESSION",
        help="a built-in session id (see `relax list`), an id in your sessions folder, or a file; "
        "with --all any number (default: the whole library)",
    )
    parser.add_argument(
        "--language",
        "-l",
        metavar="LANG",
        type=_common.language_tag,
        help="which language version (default: your locale's, else English; with --all: every "
        "language)",
    )
    _common.add_dir_argument(parser)
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="output file, or folder (an existing one, or a name ending in /, made if needed); "
        "default: <id>.<language>.<ext> in the current folder",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="export every session of the library (or every SESSION given), several at once",
    )
    parser.add_argument(
        "--outdir",
        type=Path,
        metavar="DIR",
        help="folder for the files, made if it does not exist (default: the current folder)",
    )
    parser.add_argument(
        "--format",
        "-f",
        choices=sorted(export.FORMATS),
        help="audio format (default: from the file extension, else wav)",
    )
    parser.add_argument(
        "--quality",
        type=float,
        metavar="Q",
        help=f"OGG and MP3: 0 (smallest) to 10 (best), default {export.DEFAULT_QUALITY}",
    )
    parser.add_argument(
        "--float",
        dest="float32",
        action="store_true",
        help="WAV: 32-bit float samples instead of 16-bit; FLAC: 24-bit",
    )
    parser.add_argument(
        "--no-transcript", action="store_true", help="do not write the .vtt transcript"
    )
    parser.add_argument(
        "--jobs",
        "-j",
        type=int,
        metavar="N",
        help="with --all: sessions exported at once (default: every core)",
    )
    _common.add_voice_arguments(parser)
    parser.set_defaults(run=run)


def default_name(session, fmt: str = "wav") -> str:
    return export.default_name(session, fmt)


def export_session(
    session,
    output: Path | str | None,
    *,
    float32: bool = False,
    voice=None,
    quiet: bool = False,
    fmt: str | None = None,
    quality: float | None = None,
    transcript: bool = False,
    prepared=None,
    start_sample: int = 0,
) -> Path:
    """Prepare (unless `prepared` is given) and export one session; returns the file written.

    `output` is a file, an existing folder, or None (the current folder); in a folder the file is
    `<id>.<language>.<ext>`. The format is `fmt`, else the extension of `output`, else WAV (a
    name without an extension gets `.wav`). A name ending in `/` is a folder, made (with its
    parents, like `mkdir -p`) when it does not exist.
    `transcript` also writes the WebVTT transcript beside it. `start_sample`: the file begins
    there (a section's start), its chapters and transcript counted from there.
    """
    if isinstance(output, str) and output.endswith(("/", os.sep)):
        make_folder(Path(output))  # a folder that cannot be made is a failure (1), as --outdir
    try:  # a format or option that does not fit is the command line's fault: exit 2
        target, form = _target(session, output, fmt)
        export.check_options(form, float32=float32, quality=quality)
    except ExportError as exc:
        raise UsageError(str(exc)) from None
    show = None if not quiet else False
    if prepared is None:
        speech = _common.Progress(f"speech for {session.id}", enabled=show)
        try:
            prepared = pipeline.prepare(session, voice, progress=speech)
        finally:
            speech.done()
    status = _common.Progress(f"measuring loudness of {session.id}", enabled=show)
    try:
        gain = pipeline.gain(
            prepared, progress=status, lossy_quality=export.lossy_quality(form, quality)
        )
    finally:
        status.done()
    progress = _common.Progress(f"exporting {target.name}", enabled=show)
    try:
        return export.export(
            prepared,
            target,
            gain=gain,
            fmt=form.name,
            float32=float32,
            quality=quality,
            transcript=transcript,
            progress=progress,
            start_sample=start_sample,
        )
    finally:
        progress.done()  # also on Ctrl-C or an error: their line starts on a clean line


def fallback_export(session, voice, growing, section: int | None, reason: str) -> int:
    """`relax play` without an audio device, from the launcher (RELAX_FALLBACK_EXPORT=1): what
    would have played, written to a WAV file in the current folder with its transcript, as
    `relax export` writes them: the whole session as `<id>.<language>.wav`, or from section
    `section` (0-based, `--from`) to its end as `<id>.<language>.from-<N>.wav`. One line on
    stderr says so; the file's path is printed on stdout, once."""
    prepared = growing.prepared()
    name = export.default_name(session, "wav")
    start = 0
    if section is None:
        said = _(
            "relax: {reason}; writing the session to a WAV file and its transcript instead"
        ).format(reason=reason)
    else:
        chapter = prepared.timeline.chapters[section]
        start = chapter.start_sample
        name = name.removesuffix(".wav") + f".from-{section + 1}.wav"
        said = _(
            "relax: {reason}; writing the session from section {number} ({title}) to a WAV "
            "file and its transcript instead"
        ).format(reason=reason, number=section + 1, title=chapter.title)
    print(said, file=sys.stderr)
    path = export_session(
        session, Path(name), voice=voice, prepared=prepared, transcript=True, start_sample=start
    )
    print(path.resolve())
    return 0


def _target(session, output: Path | str | None, fmt: str | None):
    if isinstance(output, str):
        if output.endswith(("/", os.sep)):
            make_folder(Path(output))
        output = Path(output)
    if output is None or output.is_dir():
        form = export.format_for(None, fmt or "wav")
        return (output or Path(".")) / export.default_name(session, form), form
    if not (output.parent if str(output.parent) else Path(".")).is_dir():
        raise UsageError(f"{output}: folder {output.parent} does not exist")
    suffix = output.suffix.lower()
    if fmt is None and not suffix:  # `-o take1`: WAV, the default format, as take1.wav
        fmt = "wav"
    if fmt is None:
        return output, export.format_for(output)
    form = export.format_for(None, fmt)
    known = {f.extension for f in export.FORMATS.values()} | {".oga"}
    if suffix in known and export.format_for(output) != form:
        raise UsageError(f"{output}: the extension says {suffix[1:]} but --format says {fmt}")
    if suffix not in known:
        output = output.with_name(output.name + form.extension)
    return output, form


def make_folder(folder: Path) -> None:
    """`folder` and its parents, like `mkdir -p`; `ExportError` (one line) when it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ExportError(f"{folder}: there is a file of that name, not a folder") from None
    except OSError as exc:
        raise ExportError(f"{folder}: cannot make the folder: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    if args.all:
        return _run_all(args)
    if len(args.sessions) != 1:
        raise UsageError(
            "give one SESSION (or --all for the whole library)"
            if not args.sessions
            else "give one SESSION, or --all to export several"
        )
    if args.jobs is not None:
        raise UsageError("--jobs goes with --all")
    output = args.output
    if args.outdir is not None:
        if output is not None:
            raise UsageError("give -o FILE or --outdir DIR, not both")
        output = args.outdir
    session = pipeline.load(args.sessions[0], args.language, tuple(args.dir))
    if args.outdir is not None:
        make_folder(args.outdir)
    path = export_session(
        session,
        output,
        float32=args.float32,
        voice=_common.voice_override(args),
        fmt=args.format,
        quality=args.quality,
        transcript=not args.no_transcript,
    )
    print(path)
    return 0


def _run_all(args: argparse.Namespace) -> int:
    if _common.voice_override(args) is not None:
        raise UsageError("--voice, --rate and --volume apply to one session at a time, not --all")
    outdir = args.outdir
    if args.output is not None:
        folder = Path(args.output).is_dir() or args.output.endswith(("/", os.sep))
        if outdir is not None or not folder:
            raise UsageError("with --all give the folder as --outdir DIR")
        outdir = Path(args.output)
    outdir = outdir or Path(".")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {args.jobs}")
    fmt = args.format or "wav"
    try:  # before any work, and once rather than once per session
        export.check_options(
            export.format_for(None, fmt), float32=args.float32, quality=args.quality
        )
    except ExportError as exc:
        raise UsageError(str(exc)) from None
    scripts, failed = _select(args)
    make_folder(outdir)
    progress = _common.Progress(f"exporting {len(scripts)} sessions")
    try:
        outcomes = export.export_many(
            scripts,
            outdir,
            fmt=fmt,
            language=args.language,
            float32=args.float32,
            quality=args.quality,
            transcript=not args.no_transcript,
            jobs=args.jobs,
            progress=lambda fraction: progress(int(fraction * 1_000_000), 1_000_000),
            weights=[_expected_s(path) for path in scripts],
        )
    finally:
        progress.done()  # also on Ctrl-C: the error line starts on a clean line
    total = len(scripts) + len(failed)
    failed += [(o.name, o.error) for o in outcomes if o.error is not None]
    for outcome in outcomes:
        if outcome.path is not None:
            print(outcome.path)
    for name, error in failed:
        print(f"relax: error: {name}: {error}", file=sys.stderr)
    if failed:
        print(f"relax: {len(failed)} of {total} sessions failed", file=sys.stderr)
    return 1 if failed else 0


def _select(args) -> tuple[list[str], list[tuple[str, str]]]:
    """The script files to export, and (name, error) for the ones that could not even be found."""
    failed: list[tuple[str, str]] = []
    scripts: list[str] = []
    dirs = tuple(args.dir)
    if args.sessions:
        for arg in args.sessions:
            try:
                scripts.append(str(library.resolve(arg, args.language, dirs)))
            except RelaxError as exc:
                failed.append((arg, str(exc)))
        return list(dict.fromkeys(scripts)), failed
    seen: set[tuple[str, str]] = set()
    for entry in library.find_all(dirs):
        named = entry.language  # from the file name: another language's script is not read
        if args.language and named and primary_language(named) != primary_language(args.language):
            continue
        try:
            session = pipeline.load(str(entry.path))
        except ScriptError as exc:
            first = exc.diagnostics[0] if exc.diagnostics else None
            failed.append((str(entry.path), str(first) if first else str(exc)))
            continue
        except RelaxError as exc:
            failed.append((str(entry.path), str(exc).splitlines()[0]))
            continue
        if args.language and primary_language(session.language) != primary_language(args.language):
            continue
        key = (session.id, session.language)
        if key in seen:  # user folders come first and shadow the built-in library
            continue
        seen.add(key)
        scripts.append(str(entry.path))
    if not scripts and not failed:
        raise UsageError(
            "no sessions to export" + (f" in '{args.language}'" if args.language else "")
        )
    return scripts, failed


def _expected_s(path: str) -> float:
    """Roughly how long exporting a script takes, for the progress bar: a few seconds of work for
    every session, plus its length (its pauses and timed steps, its words at the voice's rate)."""
    from audio_engine import library, script

    session, _warnings = script.check(path, allowed_dirs=(library.user_dir(),))
    if session is None:
        return 1.0
    wpm = session.voice.rate_wpm or 150

    def words_s(text: str) -> float:
        return len(text.split()) * 60.0 / wpm + 0.3

    def length(steps) -> float:
        total = 0.0
        for step in steps:
            match step:
                case model.Say(text=text, duration_s=duration):
                    total += duration if duration is not None else words_s(text)
                case model.Pause(duration_s=duration):
                    total += duration
                case model.Chime():
                    total += 4.0
                case model.Breathe():
                    cycles = range(step.cycles if step.varies else 1)
                    each = [sum(s for _, s in step.cycle_phases(c)) for c in cycles]
                    total += sum(each) if step.varies else step.cycles * each[0]
                case model.Stretch():
                    total += sum(words_s(t) + step.hold_s for t in step.sides)
                    total += step.rest_s * max(0, len(step.sides) - 1)
                case model.Scan():
                    total += step.dwell_s * len(step.regions)
                case model.Repeat():
                    total += step.times * length(step.steps)
        return total

    return 30.0 + length(session.steps)  # 30 s of audio: about what the fixed work costs
