"""Timeline arithmetic: every scheduled thing lands on its exact sample.

These tests are about timing arithmetic only, so clip lengths come from a table (a fake voice);
the real voice is used in test_engine.py.
"""

from __future__ import annotations

import pytest

from audio_engine import synth, timeline
from audio_engine.errors import TimingError
from audio_engine.model import (
    SAMPLE_RATE,
    Breathe,
    Chime,
    Cues,
    Origin,
    Pause,
    Repeat,
    Say,
    Scan,
    Section,
    Session,
    Stretch,
    Voice,
)

SR = SAMPLE_RATE


class FakeLengths(dict):
    """Every text lasts `per_char` samples per character (a fake voice for arithmetic tests)."""

    def __init__(self, per_char=2000, fixed=None):
        super().__init__()
        self.per_char = per_char
        self.fixed = fixed or {}

    def __missing__(self, utterance):
        return self.fixed.get(utterance.text, self.per_char * len(utterance.text))


def make(*steps, **kw):
    return Session(title="t", language=kw.pop("language", "en"), steps=tuple(steps), **kw)


def speech(tl):
    return [(e.text, e.start_sample, e.end_sample) for e in tl.events if e.kind == "speech"]


def phases(tl):
    return [
        (e.kind, e.start_sample, e.end_sample) for e in tl.events if e.kind in timeline.PHASE_KINDS
    ]


def test_say_without_duration_lasts_as_long_as_its_speech():
    tl = timeline.compile(make(Say("abc"), Say("de")), FakeLengths(per_char=1000))
    assert speech(tl) == [("abc", 0, 3000), ("de", 3000, 5000)]
    assert tl.total_samples == 5000


def test_say_with_duration_lasts_exactly_its_duration():
    tl = timeline.compile(make(Say("abc", duration_s=2.5), Say("x")), FakeLengths(per_char=1000))
    assert speech(tl) == [("abc", 0, 3000), ("x", int(2.5 * SR), int(2.5 * SR) + 1000)]


def test_say_longer_than_its_duration_names_step_text_and_both_lengths():
    origin = Origin("s.yaml", 7, 5, "steps[2]")
    session = make(Say("a long line", duration_s=1, origin=origin))
    with pytest.raises(TimingError) as info:
        timeline.compile(session, FakeLengths(fixed={"a long line": 2 * SR}))
    (d,) = info.value.diagnostics
    assert (d.file, d.line, d.col, d.path) == ("s.yaml", 7, 5, "steps[2]")
    assert "a long line" in d.message and "2.00 s" in d.message and "1 s" in d.message


def test_pause_and_section_and_chime():
    tl = timeline.compile(
        make(Section("One"), Pause(2), Section("Two"), Chime("bowl", 0.3), Say("x")),
        FakeLengths(per_char=10),
    )
    assert [(c.title, c.start_sample) for c in tl.chapters] == [("One", 0), ("Two", 2 * SR)]
    (chime,) = [e for e in tl.events if e.kind == "chime"]
    assert (chime.start_sample, chime.volume) == (2 * SR, 0.3)
    assert chime.end_sample - chime.start_sample == synth.chime_samples("bowl") <= 6 * SR
    assert speech(tl) == [("x", chime.end_sample, chime.end_sample + 10)]


def test_breathing_phases_start_on_their_scheduled_samples_whatever_the_speech():
    step = Breathe(inhale_s=4, hold_s=7, exhale_s=8, cycles=4)
    tl = timeline.compile(make(Pause(1.5), step), FakeLengths(per_char=100))
    start = int(1.5 * SR)
    expected = []
    for c in range(4):
        t = start + c * 19 * SR
        expected += [("inhale", t, t + 4 * SR), ("hold", t + 4 * SR, t + 11 * SR)]
        expected += [("exhale", t + 11 * SR, t + 19 * SR)]
    assert phases(tl) == expected
    assert tl.total_samples == start + 4 * 19 * SR
    cues = [(text, s) for text, s, _ in speech(tl)]
    assert cues[:3] == [
        ("Breathe in", start),
        ("Hold", start + 4 * SR),
        ("Breathe out", start + 11 * SR),
    ]


def test_zero_phases_are_skipped_and_rest_is_included():
    step = Breathe(inhale_s=2, exhale_s=3, rest_s=1.5, cycles=2)
    tl = timeline.compile(make(step), FakeLengths(per_char=10))
    kinds = [k for k, _, _ in phases(tl)]
    assert kinds == ["inhale", "exhale", "rest"] * 2
    assert tl.total_samples == 2 * (2 * SR + 3 * SR + int(1.5 * SR))


def test_fractional_phases_round_once_per_phase():
    step = Breathe(inhale_s=5.5, exhale_s=5.5, cycles=3)
    tl = timeline.compile(make(step), FakeLengths(per_char=10))
    n = round(5.5 * SR)
    assert [s for _, s, _ in phases(tl)] == [i * n for i in range(6)]


def test_counts_are_spoken_on_each_whole_second_after_the_cue():
    step = Breathe(inhale_s=4, exhale_s=2.5, count=True)
    tl = timeline.compile(make(step), FakeLengths(per_char=100))
    assert [(t, s) for t, s, _ in speech(tl)] == [
        ("Breathe in", 0),
        ("2", SR),
        ("3", 2 * SR),
        ("4", 3 * SR),
        ("Breathe out", 4 * SR),
        ("2", 5 * SR),
    ]


def test_silent_cue_and_custom_cues_and_dutch_defaults():
    step = Breathe(inhale_s=3, exhale_s=3, cues=Cues(inhale="", exhale="Let go"))
    tl = timeline.compile(make(step), FakeLengths(per_char=100))
    assert [t for t, _, _ in speech(tl)] == ["Let go"]
    nl = timeline.compile(make(Breathe(inhale_s=3, exhale_s=3), language="nl"), FakeLengths(100))
    assert [t for t, _, _ in speech(nl)] == ["Adem in", "Adem uit"]


def test_a_cue_longer_than_its_time_is_an_error():
    step = Breathe(inhale_s=4, exhale_s=4, count=True, origin=Origin("f", 3, 4, "steps[0]"))
    with pytest.raises(TimingError) as info:
        timeline.compile(make(step), FakeLengths(fixed={"Breathe in": int(1.2 * SR)}))
    messages = [d.message for d in info.value.diagnostics]
    assert any("inhale cue" in m and "Breathe in" in m and "1.20 s" in m for m in messages)


def test_chime_on_phase_and_guide_tone_cover_the_step():
    step = Breathe(
        inhale_s=2, hold_s=1, exhale_s=2, cycles=2, guide_tone=True, chime_on_phase="soft"
    )
    tl = timeline.compile(make(Pause(1), step), FakeLengths(per_char=10))
    chimes = [e.start_sample for e in tl.events if e.kind == "chime"]
    assert chimes == [SR + k for k in (0, 2 * SR, 3 * SR, 5 * SR, 7 * SR, 8 * SR)]
    (tone,) = [e for e in tl.events if e.kind == "tone"]
    assert (tone.start_sample, tone.end_sample) == (SR, SR + 10 * SR)
    assert tone.tone.phases == (("inhale", 2 * SR), ("hold", SR), ("exhale", 2 * SR))
    assert all(e.kind != "tone" for e in tl.sounding_events())


def test_stretch_sides_holds_countdown_and_rest():
    step = Stretch(hold_s=10, name="Neck", sides=("left", "right"), countdown=3, rest_s=2)
    tl = timeline.compile(make(Pause(1), step), FakeLengths(per_char=1000))
    left_end = SR + 4000
    hold_end = left_end + 10 * SR
    right_start = hold_end + 2 * SR
    right_hold_end = right_start + 5000 + 10 * SR
    assert speech(tl) == [
        ("left", SR, left_end),
        ("3", hold_end - 3 * SR, hold_end - 3 * SR + 1000),
        ("2", hold_end - 2 * SR, hold_end - 2 * SR + 1000),
        ("1", hold_end - SR, hold_end - SR + 1000),
        ("right", right_start, right_start + 5000),
        ("3", right_hold_end - 3 * SR, right_hold_end - 3 * SR + 1000),
        ("2", right_hold_end - 2 * SR, right_hold_end - 2 * SR + 1000),
        ("1", right_hold_end - SR, right_hold_end - SR + 1000),
    ]
    assert tl.total_samples == right_hold_end
    assert [(c.title, c.start_sample) for c in tl.chapters] == [("Neck", SR)]


def test_scan_regions_start_every_dwell():
    step = Scan(prompt="Notice your {region}.", regions=("feet", "knees", "hips"), dwell_s=6)
    tl = timeline.compile(make(step), FakeLengths(per_char=1000))
    assert [(t, s) for t, s, _ in speech(tl)] == [
        ("Notice your feet.", 0),
        ("Notice your knees.", 6 * SR),
        ("Notice your hips.", 12 * SR),
    ]
    assert tl.total_samples == 18 * SR
    with pytest.raises(TimingError, match="scan prompt"):
        timeline.compile(make(step), FakeLengths(per_char=20000))


def test_repeat_expands_and_reports_a_problem_once():
    inner = (Say("a", duration_s=1, origin=Origin("f", 2, 3, "steps[0].steps[0]")), Pause(1))
    tl = timeline.compile(make(Repeat(3, inner)), FakeLengths(per_char=10))
    assert [s for _, s, _ in speech(tl)] == [0, 2 * SR, 4 * SR]
    with pytest.raises(TimingError) as info:
        timeline.compile(make(Repeat(3, inner)), FakeLengths(per_char=2 * SR))
    assert len(info.value.diagnostics) == 1


def test_voice_settings_merge_step_over_session_over_override():
    session = make(
        Say("a", voice=Voice(rate_wpm=100)), Say("b"), voice=Voice(rate_wpm=160, volume=0.5)
    )
    requests = {
        (u.text, u.voice.rate_wpm, u.voice.volume) for u in timeline.speech_requests(session)
    }
    assert requests == {("a", 100, 0.5), ("b", 160, 0.5)}
    over = timeline.speech_requests(session, Voice(rate_wpm=200))
    assert {u.voice.rate_wpm for u in over} == {200}


def test_speech_requests_match_what_compile_needs():
    session = make(
        Say("hello"),
        Breathe(inhale_s=3, exhale_s=3, count=True, cycles=2),
        Stretch(hold_s=5, sides=("x",), countdown=2),
        Scan(prompt="{region}", regions=("a", "b"), dwell_s=2),
    )
    requested = timeline.speech_requests(session)
    lengths = {u: 10 for u in requested}
    tl = timeline.compile(session, lengths)  # a KeyError here would mean a missing request
    assert {e.utterance for e in tl.transcript()} == requested


def test_session_over_four_hours_is_an_error():
    with pytest.raises(TimingError, match="4 hours"):
        timeline.compile(make(Pause(3 * 3600), Say("x")), FakeLengths(fixed={"x": 3601 * SR}))


def test_speech_intervals_are_sorted_and_merged():
    half = SR // 2
    tl = timeline.compile(make(Say("ab", duration_s=2), Say("c"), Say("d")), FakeLengths(half))
    assert tl.speech_intervals == ((0, SR), (2 * SR, 2 * SR + 2 * half))


def test_breathe_stretch_and_scan_speak_with_their_own_voice():
    mine = Voice(rate_wpm=100, volume=0.8)
    session = make(
        Breathe(inhale_s=3, exhale_s=3, count=True, voice=mine),
        Stretch(hold_s=4, sides=("x",), countdown=2, voice=mine),
        Scan(prompt="{region}", regions=("a",), dwell_s=2, voice=mine),
        Say("plain"),
        voice=Voice(rate_wpm=160),
    )
    voices = {u.text: (u.voice.rate_wpm, u.voice.volume) for u in timeline.speech_requests(session)}
    assert voices == {
        "Breathe in": (100, 0.8),
        "2": (100, 0.8),
        "3": (100, 0.8),
        "Breathe out": (100, 0.8),
        "1": (100, 0.8),
        "x": (100, 0.8),
        "a": (100, 0.8),
        "plain": (160, 1.0),
    }


def test_a_repeats_voice_is_the_default_inside_it():
    inner = (
        Say("a"),
        Say("b", voice=Voice(rate_wpm=100)),
        Repeat(1, (Say("c"),), voice=Voice(volume=0.25)),
    )
    session = make(
        Repeat(2, inner, voice=Voice(rate_wpm=200, volume=0.5)), Say("d"), voice=Voice(rate_wpm=160)
    )
    tl = timeline.compile(session, FakeLengths())
    voices = [(e.text, e.utterance.voice.rate_wpm, e.utterance.voice.volume) for e in tl.events]
    assert voices[:3] == [("a", 200, 0.5), ("b", 100, 0.5), ("c", 200, 0.25)]
    assert voices[3:6] == voices[:3]  # the second pass
    assert voices[6][:2] == ("d", 160)  # after the repeat: the session's voice again


def test_session_wide_problems_point_at_the_steps():
    where = Origin("s.yaml", 4, 1, "steps")
    with pytest.raises(TimingError) as info:
        timeline.compile(make(Section("only"), Pause(1e-6), origin=where), FakeLengths())
    (problem,) = info.value.diagnostics
    assert (problem.file, problem.line, problem.col, problem.path) == ("s.yaml", 4, 1, "steps")
    assert "no length" in problem.message
    long = make(Pause(3600), Pause(3600), Say("one more line"), origin=where)
    tl = timeline.compile(long, FakeLengths(per_char=SR))
    (warning,) = tl.warnings
    assert warning.severity == "warning" and "over 2 hours" in warning.message
    assert (warning.line, warning.path) == (4, "steps")
    with pytest.raises(TimingError, match="longer than the limit of 4 hours") as info:
        timeline.compile(
            make(Pause(14399), Say("speech pushes it over"), origin=where), FakeLengths(per_char=SR)
        )
    assert str(info.value.diagnostics[0]).startswith("s.yaml:4:1: error: steps: the session lasts")
