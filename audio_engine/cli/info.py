"""`relax info SESSION`: an outline of a session with start times, or the timeline as JSON."""

from __future__ import annotations

import argparse
import json

from audio_engine.cli import _common


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
        help='print {"id", "title", "language", "duration_s", "sample_rate", "chapters", "events"}',
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
            }
            for e in timeline.sounding_events()
        ],
    }


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


def outline(timeline) -> str:
    rate = timeline.sample_rate
    session = timeline.session
    lines = [
        f"{session.title} ({session.id}, {session.language})",
        f"duration {clock(timeline.duration_s).strip()} ({timeline.total_samples} samples at {rate} Hz)",
        "",
    ]
    items = [(c.start_sample, 0, f"== {c.title}") for c in timeline.chapters]
    from audio_engine.timeline import PHASE_KINDS

    # A phase's line already shows its cue: the cue's speech event is not listed again.
    cues = {(e.start_sample, e.text) for e in timeline.events if e.kind in PHASE_KINDS and e.text}
    for e in timeline.sounding_events():
        if e.kind == "speech" and (e.start_sample, e.text) in cues:
            continue
        if e.kind == "speech":
            label = f'say   "{e.text}"'
        elif e.kind == "chime":
            label = f"chime {e.text}"
        else:
            label = f"{e.kind:<6}{' ' + repr(e.text) if e.text else ''}"
        length = (e.end_sample - e.start_sample) / rate
        items.append((e.start_sample, 1, f"   {label}  ({length:.2f} s)"))
    items += _cycle_lines(timeline)
    for start, _, text in sorted(items, key=lambda item: (item[0], item[1])):
        lines.append(f"{clock(start / rate)}  {text}")
    lines.append(f"{clock(timeline.duration_s)}  end")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from audio_engine import pipeline

    session = _common.load_session(args)
    prepared = pipeline.prepare(session, _common.voice_override(args))
    if args.json:
        print(json.dumps(as_json(prepared.timeline), indent=2, ensure_ascii=False))
    else:
        print(outline(prepared.timeline))
    return 0
