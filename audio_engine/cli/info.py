"""`relax info SESSION`: an outline of a session with start times, or the timeline as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from audio_engine.cli import _common
from audio_engine.errors import ExportError, UsageError


def register(sub) -> None:
    parser = sub.add_parser(
        "info",
        help="show a session's outline: sections and steps with their start times",
        description="Compile a session with the real voice and show when everything happens. "
        "Times are exact to the sample (44.1 kHz).",
    )
    _common.add_session_argument(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"id", "title", "language", "duration_s", "sample_rate", "chapters", "events"} '
        '(a spoken line\'s event has its "rate_wpm")',
    )
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="also draw the timeline to a PNG picture: sections, spoken lines, breathing phases, "
        "chimes, each background layer with its fades and ducking, a time axis",
    )
    _common.add_voice_arguments(parser)
    parser.set_defaults(run=run)


def as_json(timeline) -> dict:
    rate = timeline.sample_rate
    session = timeline.session
    return {
        "id": session.id,
        "title": session.title,
        "language": session.language,
        "duration_s": timeline.total_samples / rate,
        "total_samples": timeline.total_samples,
        "sample_rate": rate,
        "chapters": [
            {"title": c.title, "start_s": c.start_sample / rate, "start_sample": c.start_sample}
            for c in timeline.chapters
        ],
        "events": [
            {
                "kind": e.kind,
                "start_s": e.start_sample / rate,
                "end_s": e.end_sample / rate,
                "text": e.text,
                "start_sample": e.start_sample,
                "end_sample": e.end_sample,
                **_cycle_keys(e),
                **_rate_key(e),
            }
            for e in timeline.sounding_events()
        ],
    }


def _rate_key(event) -> dict:
    """A spoken line's rate in words per minute (with `--rate`, a line that must fit a set time
    may get a rate between the asked one and the script's own: docs/authoring.md)."""
    return {"rate_wpm": event.utterance.voice.rate_wpm} if event.utterance is not None else {}


def _cycle_keys(event) -> dict:
    """A breathing phase's cycle in its step (`cycle` from 1, of `cycles`): with ramps, each
    cycle's phases have their own lengths."""
    return {"cycle": event.cycle, "cycles": event.cycles} if event.cycle else {}


def _cycle_lines(timeline) -> list[tuple[int, float, str]]:
    """One outline line at the start of every breathing cycle: its number and its phases."""
    rate = timeline.sample_rate
    lines: list[tuple[int, float, str]] = []
    current: list = []
    for e in [*(e for e in timeline.events if e.cycle), None]:
        if current and (e is None or e.kind == "inhale"):  # every cycle starts breathing in
            head = current[0]
            phases = " · ".join(f"{p.kind} {p.duration_samples / rate:.2f} s" for p in current)
            text = f"   cycle {head.cycle} of {head.cycles}: {phases}"
            lines.append((head.start_sample, 0.5, text))
            current = []
        if e is not None:
            current.append(e)
    return lines


def clock(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes):2d}:{secs:06.3f}"


SILENCE_MIN_S = 1.0  # shorter gaps (between counted seconds, say) are not listed


def outline(timeline) -> str:
    """The session as lines `M:SS.mmm  WHAT  (LENGTH)`: chapters, spoken lines (with their rate
    in words per minute), breathing phases (with their cue's rate), chimes (with how long they
    ring), pauses, and the silences of a second or more between (a `say` with a `duration` longer
    than its speech, a stretch's hold): where the time goes."""
    rate = timeline.sample_rate
    session = timeline.session
    lines = [
        f"{session.title} ({session.id}, {session.language})",
        f"duration {clock(timeline.duration_s).strip()} ({timeline.total_samples} samples at {rate} Hz)",
        "",
    ]
    items = [(c.start_sample, 0, f"== {c.title}") for c in timeline.chapters]
    from audio_engine.timeline import PHASE_KINDS

    # A phase's line already shows its cue (and its rate): the cue's speech event is not listed
    # again.
    cues = {(e.start_sample, e.text) for e in timeline.events if e.kind in PHASE_KINDS and e.text}
    cue_rates = {
        (e.start_sample, e.text): e.utterance.voice.rate_wpm
        for e in timeline.events
        if e.kind == "speech" and (e.start_sample, e.text) in cues
    }
    busy = [(a, b) for a, b in timeline.pauses]
    for e in timeline.sounding_events():
        busy.append((e.start_sample, e.end_sample))
        if e.kind == "speech" and (e.start_sample, e.text) in cues:
            continue
        length = (e.end_sample - e.start_sample) / rate
        if e.kind == "speech":
            label = f'say   "{e.text}"  ({length:.2f} s, {e.utterance.voice.rate_wpm} wpm)'
        elif e.kind == "chime":
            label = f"chime {e.text}, rings {length:.2f} s"
        else:
            cue_rate = cue_rates.get((e.start_sample, e.text))
            said = f", cue {cue_rate} wpm" if cue_rate is not None else ""
            label = f"{e.kind:<6}{' ' + repr(e.text) if e.text else ''}  ({length:.2f} s{said})"
        items.append((e.start_sample, 1, f"   {label}"))
    for start, end in timeline.pauses:
        items.append((start, 1, f"   pause {(end - start) / rate:.2f} s"))
    for start, end in _gaps(busy, timeline.total_samples):
        if end - start >= SILENCE_MIN_S * rate:
            items.append((start, 2, f"   (silent {(end - start) / rate:.2f} s)"))
    items += _cycle_lines(timeline)
    for start, _, text in sorted(items, key=lambda item: (item[0], item[1])):
        lines.append(f"{clock(start / rate)}  {text}")
    lines.append(f"{clock(timeline.duration_s)}  end")
    return "\n".join(lines)


def _gaps(spans, total: int) -> list[tuple[int, int]]:
    """The parts of [0, total) that no span covers."""
    gaps = []
    reached = 0
    for start, end in sorted(spans):
        if start > reached:
            gaps.append((reached, start))
        reached = max(reached, end)
    if reached < total:
        gaps.append((reached, total))
    return gaps


def run(args: argparse.Namespace) -> int:
    if args.plot is not None:
        if args.plot.suffix.lower() != ".png":
            raise UsageError(f"--plot writes a PNG picture: give a .png file, not {args.plot}")
        if not args.plot.parent.is_dir():
            raise UsageError(f"--plot: no such folder: {args.plot.parent}")
    session = _common.load_session(args)
    if args.plot is None:  # the steps' places only: no numpy, no render
        from audio_engine import speaking

        compiled = speaking.timeline_of(session, _common.voice_override(args))
    else:
        from audio_engine import pipeline, plot

        prepared = pipeline.prepare(session, _common.voice_override(args))
        compiled = prepared.timeline
        lengths = {path: len(data) for path, data in prepared.sources.sounds.items()}
        try:
            picture = plot.save(compiled, args.plot, lengths)
        except Exception as exc:  # OSError, pygame.error: a folder we may not write, a full disk
            reason = getattr(exc, "reason", None) or exc  # fsio's errors: without the name
            raise ExportError(f"cannot write {args.plot}: {reason}") from None
        w, h = picture.surface.get_size()
        print(f"{args.plot}: the timeline, {w}x{h} px", file=sys.stderr)
    if args.json:
        print(json.dumps(as_json(compiled), indent=2, ensure_ascii=False))
    else:
        print(outline(compiled))
    return 0
