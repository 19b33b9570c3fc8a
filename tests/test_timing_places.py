"""Speech that does not fit its time is reported at the value to change (LINE:COL of the
duration, the cue, the dwell, the count or countdown), with a note line at the other place.

Timing arithmetic only: clip lengths come from a table (a fake voice); the real voice's
reports are checked in test_cli_authoring.py.
"""

from __future__ import annotations

import pytest

from audio_engine import script, timeline
from audio_engine.errors import TimingError

HEADER = "format: 1\ntitle: T\nlanguage: en\nsteps:\n"


class Lengths(dict):
    """Every text lasts `seconds[text]` (default 0.1 s)."""

    def __init__(self, **seconds):
        super().__init__()
        self.seconds = {k.replace("_", " "): v for k, v in seconds.items()}

    def __missing__(self, utterance):
        return int(self.seconds.get(utterance.text, 0.1) * 44100)


def problems(body: str, lengths: Lengths):
    session = script.loads(HEADER + body, filename="s.yaml")
    with pytest.raises(TimingError) as caught:
        timeline.compile(session, lengths)
    return caught.value.diagnostics


def place(d):
    return (d.line, d.col, d.path)


def test_say_longer_than_its_duration_is_at_the_duration_with_a_note_at_the_line():
    (d,) = problems("  - Hello.\n  - say: Too long\n    duration: 1s\n", Lengths(Too_long=2))
    assert place(d) == (7, 15, "steps[1].duration")
    assert "longer than its duration 1 s" in d.message
    assert [(n.line, n.col, n.path, n.severity) for n in d.notes] == [
        (6, 10, "steps[1].say", "note")
    ]
    assert str(d).splitlines()[1] == "s.yaml:6:10: note: steps[1].say: the line is here"


def test_a_default_cue_that_does_not_fit_is_at_the_phase():
    body = "  - breathe:\n      inhale: 1\n      exhale: 4\n"
    (d,) = problems(body, Lengths(Breathe_in=1.5))
    assert place(d) == (6, 15, "steps[0].breathe.inhale")
    assert d.notes == ()


def test_a_written_cue_that_does_not_fit_is_at_the_cue_with_a_note_at_the_phase():
    body = "  - breathe:\n      inhale: 4\n      exhale: 2s\n      cues: {exhale: Let go}\n"
    (d,) = problems(body, Lengths(Let_go=3))
    assert place(d) == (8, 22, "steps[0].breathe.cues.exhale")
    assert [(n.line, n.col, n.message) for n in d.notes] == [(7, 15, "the exhale lasts 2 s")]


def test_a_count_that_does_not_fit_is_at_count():
    body = "  - breathe: {inhale: 3, exhale: 3, count: true}\n"
    (d, *_) = problems(body, Lengths(**{"2": 1.2}))
    assert place(d) == (5, 44, "steps[0].breathe.count")
    assert "inhale count" in d.message


def test_a_scan_prompt_longer_than_its_dwell_is_at_the_dwell():
    body = "  - scan:\n      prompt: Feel your {region}.\n      regions: [feet]\n      dwell: 2\n"
    (d,) = problems(body, Lengths(**{"Feel your feet.": 3}))
    assert place(d) == (8, 14, "steps[0].scan.dwell")
    assert [(n.line, n.col, n.path) for n in d.notes] == [(6, 15, "steps[0].scan.prompt")]


def test_a_countdown_number_longer_than_its_second_is_at_countdown():
    body = "  - stretch: {say: Reach up., hold: 10, countdown: 3}\n"
    (d,) = problems(body, Lengths(**{"2": 1.5}))
    assert place(d) == (5, 52, "steps[0].stretch.countdown")


def test_inside_a_repeat_and_through_an_alias_each_use_is_at_its_own_value():
    body = (
        "  - repeat: 2\n    steps:\n      - &long\n        say: Too long\n        duration: 1\n"
        "  - *long\n"
    )
    found = problems(body, Lengths(Too_long=2))
    # reported once for the two passes of the repeat; the alias's use is the same value
    assert [place(d) for d in found] == [
        (9, 19, "steps[0].steps[0].duration"),
        (9, 19, "steps[1].duration"),
    ]


def test_a_session_built_without_a_script_is_reported_at_its_steps():
    from audio_engine.model import Origin, Say, Session

    step = Say("Too long", duration_s=1.0, origin=Origin("m", 3, 4, "steps[0]"))
    session = Session(title="t", language="en", steps=(step,))
    with pytest.raises(TimingError) as caught:
        timeline.compile(session, Lengths(Too_long=2))
    assert place(caught.value.diagnostics[0]) == (3, 4, "steps[0]")


def test_a_loaded_session_keeps_its_value_places_read_only_and_pickles():
    import pickle

    session = script.loads(HEADER + "  - say: Hi.\n    duration: 2s\n", filename="s.yaml")
    where = session.origin_of("steps[0].duration")
    assert (where.line, where.col, where.path) == (6, 15, "steps[0].duration")
    with pytest.raises(TypeError):
        session.value_origins["steps[0].duration"] = None
    copy = pickle.loads(pickle.dumps(session))
    assert copy == session and dict(copy.value_origins) == dict(session.value_origins)
