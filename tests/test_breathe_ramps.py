"""Breathing phases that change over the cycles: ramps, steps and patterns, from the YAML to the
exported samples.

The rule under test (docs/authoring.md): cycle c (from 0) of N of `{from, to}` lasts
`from + (to - from) * c / (N - 1)` s; of `{from, step, every, max|min}` it lasts
`from + step * (c // every)`, held at max/min. Each phase is rounded to samples once, and phase k
of cycle c starts at the step's start + the samples of every earlier phase. The expected samples
here are worked out from that rule directly, not from the code's helpers.
"""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st

import audio_engine.gain as gain_stage
from audio_engine import export, pipeline, script, synth, timeline
from audio_engine.cli.info import as_json, outline
from audio_engine.errors import ScriptError, TimingError
from audio_engine.model import SAMPLE_RATE as SR
from audio_engine.model import Breathe, Ramp
from audio_engine.player.pacer import Pacer

HEAD = "format: 1\ntitle: Ramps\nlanguage: en\nsteps:\n"


def load(steps: str, language: str = "en"):
    text = HEAD.replace("en", language, 1) + textwrap.indent(textwrap.dedent(steps), "  ")
    return script.loads(text, filename=f"ramps.{language}.yaml")


def check(steps: str):
    return script.checks(HEAD + textwrap.indent(textwrap.dedent(steps), "  "))


class FakeLengths(dict):
    """Every text lasts `per_char` samples per character (for timing arithmetic only)."""

    def __init__(self, per_char=800, fixed=None):
        super().__init__()
        self.per_char, self.fixed = per_char, fixed or {}

    def __missing__(self, u):
        return self.fixed.get(u.text, self.per_char * len(u.text))


def linear(a: float, b: float, c: int, n: int) -> float:
    return a if n == 1 else a + (b - a) * c / (n - 1)


def phase_events(tl):
    return [e for e in tl.events if e.kind in timeline.PHASE_KINDS]


def expected_starts(start: int, cycles: list[list[tuple[str, float]]]):
    """(kind, start sample, length) of every phase, from each cycle's seconds."""
    out, at = [], start
    for phases in cycles:
        for name, seconds in phases:
            n = round(seconds * SR)
            out.append((name, at, n))
            at += n
    return out


# ---- the model's arithmetic ----------------------------------------------------------------


def test_linear_ramp_values():
    r = Ramp(from_s=4, to_s=8)
    assert [r.seconds(c, 5) for c in range(5)] == [4, 5, 6, 7, 8]
    assert r.seconds(0, 1) == 4  # one cycle: `from`
    down = Ramp(from_s=6, to_s=3)
    assert [down.seconds(c, 4) for c in range(4)] == [6, 5, 4, 3]


def test_stepped_ramp_values():
    up = Ramp(from_s=4, step_s=1, every=2, max_s=6)
    assert [up.seconds(c, 8) for c in range(8)] == [4, 4, 5, 5, 6, 6, 6, 6]
    down = Ramp(from_s=3, step_s=-0.5, min_s=1)
    assert [down.seconds(c, 6) for c in range(6)] == [3, 2.5, 2, 1.5, 1, 1]
    assert [Ramp(from_s=2, step_s=1).seconds(c, 3) for c in range(3)] == [2, 3, 4]


# ---- loading -------------------------------------------------------------------------------


def test_ramps_steps_and_patterns_load_into_the_model():
    s = load(
        """
        - breathe: {inhale: 4, exhale: {from: 4, to: 8}, cycles: 5}
        - breathe: {inhale: 4, exhale: {from: 4, step: 1, every: 2, max: 8}, cycles: 9}
        - breathe: {inhale: 3, rest: {from: 3, step: "-500ms", min: 1}, exhale: 5, cycles: 6}
        - breathe: {pattern: 4-7-8}
        - breathe: {pattern: 4-7-8-0, unit: 500ms}
        - breathe: {pattern: 4.5 - 0 - 6 - 1.5, unit: 2}
        - breathe: {pattern: 5-5}
        """
    )
    a, b, c, p1, p2, p3, p4 = s.steps
    assert a.ramps == (("exhale", Ramp(from_s=4.0, to_s=8.0)),) and a.exhale_s == 4.0
    assert b.ramps == (("exhale", Ramp(from_s=4.0, step_s=1.0, every=2, max_s=8.0)),)
    assert c.ramps == (("rest", Ramp(from_s=3.0, step_s=-0.5, min_s=1.0)),)
    assert [c.cycle_phases(k) for k in (0, 5)] == [
        (("inhale", 3.0), ("exhale", 5.0), ("rest", 3.0)),
        (("inhale", 3.0), ("exhale", 5.0), ("rest", 1.0)),
    ]
    # A pattern is only a way of writing the phases: the same step as the keys.
    assert p1 == Breathe(inhale_s=4.0, hold_s=7.0, exhale_s=8.0, origin=p1.origin)
    assert p2.phases() == (("inhale", 2.0), ("hold", 3.5), ("exhale", 4.0))
    assert p3.phases() == (("inhale", 9.0), ("exhale", 12.0), ("rest", 3.0))
    assert p4.phases() == (("inhale", 5.0), ("exhale", 5.0)) and not p4.varies


def test_a_pattern_compiles_exactly_like_its_phases_written_out():
    lengths = FakeLengths()
    written = load("- breathe: {inhale: 2, hold: 3.5, exhale: 4, cycles: 3, count: true}")
    pattern = load("- breathe: {pattern: 4-7-8, unit: 0.5s, cycles: 3, count: true}")
    a, b = timeline.compile(written, lengths), timeline.compile(pattern, lengths)
    assert [(e.kind, e.start_sample, e.end_sample, e.text) for e in a.events] == [
        (e.kind, e.start_sample, e.end_sample, e.text) for e in b.events
    ]


def test_warnings_for_ramps_that_change_nothing_and_counts_on_short_cycles():
    _, diagnostics = check(
        """
        - breathe: {inhale: 4, exhale: {from: 4, to: 8}}
        - breathe: {inhale: 4, exhale: {from: 4, step: 1, every: 3}, cycles: 3}
        - breathe: {inhale: 3, exhale: {from: 1, to: 4}, cycles: 4, count: true}
        """
    )
    warnings = [(d.line, d.path, d.message) for d in diagnostics if d.severity == "warning"]
    assert warnings[0][:2] == (6, "steps[0].breathe.exhale") and "one cycle" in warnings[0][2]
    assert warnings[1][:2] == (7, "steps[1].breathe.exhale.every")
    assert "never changes" in warnings[1][2]
    assert warnings[2][:2] == (8, "steps[2].breathe.count")
    assert "exhale 1 s in cycle 1" in warnings[2][2]  # 1, 2, 3, 4 s: only the first is short
    assert len(warnings) == 3


def test_every_bad_form_is_one_error_at_its_value():
    text = """
        - breathe: {inhale: 4, exhale: {from: 4}}
        - breathe: {inhale: 4, exhale: {from: 4, to: 8, step: 1}}
        - breathe: {inhale: 4, exhale: {from: 4, step: 1, every: 0}}
        - breathe: {inhale: 4, exhale: {from: 4, step: -1}, cycles: 5}
        - breathe: {pattern: 4-x-8}
        - breathe: {pattern: 4-7-8, unit: -1}
        - breathe: {pattern: 4-7-8, hold: 2}
        """
    with pytest.raises(ScriptError) as caught:
        load(text)
    found = [(d.line, d.col, d.path) for d in caught.value.diagnostics if d.severity == "error"]
    assert found == [
        (6, 34, "steps[0].breathe.exhale"),
        (7, 51, "steps[1].breathe.exhale.step"),
        (8, 60, "steps[2].breathe.exhale.every"),
        (9, 50, "steps[3].breathe.exhale.step"),
        (10, 24, "steps[4].breathe.pattern"),
        (11, 37, "steps[5].breathe.unit"),
        (12, 31, "steps[6].breathe.hold"),
    ]


# ---- the timeline --------------------------------------------------------------------------


def test_ramped_phases_start_on_the_samples_of_the_rule():
    # Values that are not whole samples: each phase rounds once, per cycle, from its seconds.
    s = load(
        """
        - pause: 0.3
        - breathe:
            inhale: {from: 2, to: 2.00002}
            hold: {from: 1.00001, step: 0.33333, every: 2, max: 1.9}
            exhale: 3.00002
            rest: {from: 1.2, step: -0.1, min: 0.95}
            cycles: 7
        """
    )
    tl = timeline.compile(s, FakeLengths())
    cycles = [
        [
            ("inhale", linear(2, 2.00002, c, 7)),
            ("hold", min(1.00001 + 0.33333 * (c // 2), 1.9)),
            ("exhale", 3.00002),
            ("rest", max(1.2 - 0.1 * c, 0.95)),
        ]
        for c in range(7)
    ]
    want = expected_starts(round(0.3 * SR), cycles)
    got = [(e.kind, e.start_sample, e.duration_samples) for e in phase_events(tl)]
    assert got == want
    assert tl.total_samples == want[-1][1] + want[-1][2]
    assert [e.cycle for e in phase_events(tl)] == [c + 1 for c in range(7) for _ in range(4)]
    assert len({n for name, _, n in want if name == "inhale"}) == 2  # it did change by a sample


def test_counts_cues_chimes_and_the_tone_follow_each_cycle():
    s = load(
        """
        - breathe:
            inhale: 3
            exhale: {from: 2, to: 5}
            cycles: 4
            count: true
            guide_tone: true
            chime_on_phase: soft
        """
    )
    tl = timeline.compile(s, FakeLengths(per_char=100))
    exhales = [e for e in phase_events(tl) if e.kind == "exhale"]
    assert [e.duration_samples for e in exhales] == [2 * SR, 3 * SR, 4 * SR, 5 * SR]
    speech = [(e.text, e.start_sample) for e in tl.events if e.kind == "speech"]
    for e in exhales:
        seconds = e.duration_samples // SR
        said = [(t, at) for t, at in speech if e.start_sample <= at < e.end_sample]
        assert said == [("Breathe out", e.start_sample)] + [
            (str(k + 1), e.start_sample + k * SR) for k in range(1, seconds)
        ]
    chimes = [e.start_sample for e in tl.events if e.kind == "chime"]
    assert chimes == [e.start_sample for e in phase_events(tl)]
    (tone,) = [e for e in tl.events if e.kind == "tone"]
    assert (tone.start_sample, tone.end_sample) == (0, tl.total_samples)
    assert tone.tone.cycle_lengths == tuple((3 * SR, n * SR) for n in (2, 3, 4, 5))


def test_a_ramp_that_never_changes_compiles_like_a_plain_phase():
    lengths = FakeLengths()
    same = load("- breathe: {inhale: 4, exhale: {from: 6, to: 6}, cycles: 3, guide_tone: true}")
    plain = load("- breathe: {inhale: 4, exhale: 6, cycles: 3, guide_tone: true}")
    a, b = timeline.compile(same, lengths), timeline.compile(plain, lengths)
    assert a.events == b.events  # the tone too: one cycle's phases, no per-cycle lengths


def test_a_cue_too_long_for_its_shortest_cycle_is_one_error_at_the_cue():
    text = (
        HEAD + "  - breathe:\n"
        "      inhale: 4\n"
        "      exhale: {from: 1, to: 5}\n"
        "      cycles: 5\n"
        "      cues: {exhale: Let it all go}\n"
    )
    s = script.loads(text, filename="cue.en.yaml")
    long = int(1.5 * SR)  # fits the 2, 3, 4, 5 s exhales, not the 1 s one
    with pytest.raises(TimingError) as caught:
        timeline.compile(s, FakeLengths(fixed={"Let it all go": long}))
    (d,) = caught.value.diagnostics
    assert (d.line, d.col, d.path) == (9, 22, "steps[0].breathe.cues.exhale")
    assert "exhale cue" in d.message and "1.50 s" in d.message
    assert "1.00 s it has in cycle 1 of 5, its shortest" in d.message
    # A built-in cue is reported at the phase it has to fit.
    s = load("- breathe: {inhale: 4, exhale: {from: 5, to: 1}, cycles: 3}")
    with pytest.raises(TimingError) as caught:
        timeline.compile(s, FakeLengths(fixed={"Breathe out": long}))
    (d,) = caught.value.diagnostics
    assert (d.line, d.path) == (5, "steps[0].breathe.exhale")
    assert "in cycle 3 of 3, its shortest" in d.message


def test_a_cue_too_long_for_a_phase_that_does_not_ramp_names_no_cycle():
    # The exhale ramps; the inhale is the same in every cycle: no cycle is its shortest.
    s = load("- breathe: {inhale: 1, exhale: {from: 2, to: 4}, cycles: 3}")
    with pytest.raises(TimingError) as caught:
        timeline.compile(s, FakeLengths(fixed={"Breathe in": int(1.5 * SR)}))
    (d,) = caught.value.diagnostics
    assert d.path == "steps[0].breathe.inhale"
    assert d.message.endswith("longer than the 1.00 s it has"), d.message


@settings(max_examples=60, deadline=None)
@given(
    cycles=st.integers(1, 12),
    a=st.floats(0.5, 9),
    b=st.floats(0.5, 9),
    start=st.floats(0.5, 3),
    step=st.floats(-2, 2).filter(lambda v: abs(v) > 0.01),
    every=st.integers(1, 4),
)
def test_any_ramp_keeps_the_rule(cycles, a, b, start, step, every):
    limit = {"max": 12} if step > 0 else {"min": 0.25}
    ramp = {"from": start, "step": step, "every": every, **limit}
    data = {"breathe": {"inhale": {"from": a, "to": b}, "exhale": ramp, "cycles": cycles}}
    s = script.loads(HEAD + "  - " + json.dumps(data) + "\n")
    tl = timeline.compile(s, FakeLengths(per_char=1))
    clamp = min if step > 0 else max
    edge = 12 if step > 0 else 0.25
    want = expected_starts(
        0,
        [
            [
                ("inhale", linear(a, b, c, cycles)),
                ("exhale", clamp(start + step * (c // every), edge)),
            ]
            for c in range(cycles)
        ],
    )
    assert [(e.kind, e.start_sample, e.duration_samples) for e in phase_events(tl)] == want


# ---- relax info and the pacer --------------------------------------------------------------


def test_info_shows_every_cycle_with_its_phases():
    s = load("- breathe: {inhale: 4, exhale: {from: 4, step: 2, max: 8}, cycles: 4}")
    tl = timeline.compile(s, FakeLengths())
    lines = [line.strip() for line in outline(tl).splitlines()]
    cycle_lines = [line for line in lines if "cycle" in line]
    assert cycle_lines == [
        "0:00.000     cycle 1 of 4: inhale 4.00 s · exhale 4.00 s",
        "0:08.000     cycle 2 of 4: inhale 4.00 s · exhale 6.00 s",
        "0:18.000     cycle 3 of 4: inhale 4.00 s · exhale 8.00 s",
        "0:30.000     cycle 4 of 4: inhale 4.00 s · exhale 8.00 s",
    ]
    events = [e for e in as_json(tl)["events"] if e["kind"] == "exhale"]
    assert [(e["cycle"], e["cycles"], e["end_s"] - e["start_s"]) for e in events] == [
        (1, 4, 4.0),
        (2, 4, 6.0),
        (3, 4, 8.0),
        (4, 4, 8.0),
    ]
    assert all("cycle" not in e for e in as_json(tl)["events"] if e["kind"] == "speech")


def test_the_pacer_follows_each_cycles_own_lengths():
    s = load("- breathe: {inhale: 2, exhale: {from: 2, to: 6}, cycles: 3}")
    tl = timeline.compile(s, FakeLengths())
    pacer = Pacer(tl)
    # Cycle 3's exhale: 6 s from 2 + 2 + 2 + 4 + 2 = 12 s in.
    state = pacer.state_at(12 * SR + 3 * SR)
    assert (state.phase, state.phase_fraction, state.phase_left_s) == ("exhale", 0.5, 3.0)
    assert state.breath == pytest.approx(0.5)
    assert pacer.state_at(12 * SR + 5 * SR).phase_count == 6
    state = pacer.state_at(4 * SR + SR)  # cycle 2's inhale
    assert (state.phase, state.phase_left_s) == ("inhale", 1.0)
    assert pacer.state_at(10 * SR - 1).phase == "exhale"  # cycle 2's 4 s exhale, last sample
    assert pacer.state_at(10 * SR).phase == "inhale"


# ---- measured in exported files -------------------------------------------------------------

TONE_SESSION = """
    - pause: 0.5
    - breathe:
        inhale: 2
        hold: {from: 0.5, step: 0.25, every: 2, max: 1}
        exhale: {from: 2, to: 3.4567}
        rest: 1
        cycles: 5
        guide_tone: true
        cues: {inhale: "", hold: "", exhale: "", rest: ""}
"""


def _export(session, tmp_path):
    prepared = pipeline.prepare(session)
    path = export.export(prepared, tmp_path / "x.wav", gain=pipeline.gain(prepared), float32=True)
    audio, rate = soundfile.read(path, dtype="float64")
    assert rate == SR and len(audio) == prepared.timeline.total_samples
    return audio[:, 0], prepared.timeline


def _hz(x: np.ndarray) -> np.ndarray:
    crossings = np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0))
    exact = crossings + x[crossings] / (x[crossings] - x[crossings + 1])
    return np.interp(np.arange(len(x)), exact[1:], SR / np.diff(exact))


def test_the_guide_tone_lands_on_the_ramped_samples_in_an_export(tmp_path):
    x, tl = _export(load(TONE_SESSION), tmp_path)
    cycles = [
        [
            ("inhale", 2),
            ("hold", min(0.5 + 0.25 * (c // 2), 1)),
            ("exhale", linear(2, 3.4567, c, 5)),
            ("rest", 1),
        ]
        for c in range(5)
    ]
    want = expected_starts(round(0.5 * SR), cycles)
    ramp = synth.GUIDE_TONE_RAMP_SAMPLES
    sound = np.flatnonzero(x != 0.0)
    for name, start, n in want:
        if name == "inhale":
            # Silence up to the phase (the pause or a rest); the tone's ramp in starts on its
            # sample, so its first sound is the next one.
            assert np.all(x[start - 2000 : start + 1] == 0.0)
            assert x[start + 1] != 0.0
        if name == "rest":
            # The exhale's ramped length ends on this sample: the fade out over the first 25 ms
            # of the rest puts the tone's last sound on rest start + ramp - 1, then silence.
            last = sound[np.searchsorted(sound, start + n) - 1]
            assert last == start + ramp - 1
            assert np.abs(x[start - 300 : start]).max() > 0.05
    # Each exhale glides over its own length: from the top to the bottom of the tone.
    hz = _hz(x)
    for name, start, n in want:
        if name == "exhale":
            assert np.median(hz[start + 500 : start + 1500]) == pytest.approx(
                synth.GUIDE_TONE_HIGH_HZ, abs=3
            )
            assert np.median(hz[start + n - 1500 : start + n - 500]) == pytest.approx(
                synth.GUIDE_TONE_LOW_HZ, abs=3
            )
    assert [(e.kind, e.start_sample, e.duration_samples) for e in phase_events(tl)] == want


def test_chime_on_phase_rings_on_every_ramped_phase_in_an_export(tmp_path):
    # The soft chime rings 1.3 s: every phase is longer, so each one rings into silence.
    steps = """
        - pause: 0.25
        - breathe:
            inhale: {from: 1.5, to: 2.61111}
            exhale: {from: 3.5, step: -0.75, every: 2, min: 1.75}
            cycles: 6
            chime_on_phase: soft
            cues: {inhale: "", exhale: ""}
    """
    x, _ = _export(load(steps), tmp_path)
    cycles = [
        [("inhale", linear(1.5, 2.61111, c, 6)), ("exhale", max(3.5 - 0.75 * (c // 2), 1.75))]
        for c in range(6)
    ]
    want = expected_starts(round(0.25 * SR), cycles)
    onsets = []
    sound = x != 0.0
    for i in range(1, len(x)):
        if sound[i] and not sound[i - 1] and not sound[max(0, i - 2000) : i].any():
            onsets.append(i - 1)  # a chime's first sample is 0: it starts one sample before
    assert onsets == [start for _, start, _ in want]


def test_the_gain_estimate_counts_each_ramped_cycle_of_the_tone():
    # slow-down's first guide tone ramps: its energy is added up cycle by cycle.
    prepared = pipeline.prepare(pipeline.load("slow-down", "en"))
    assert any(e.tone is not None and e.tone.cycle_lengths for e in prepared.timeline.events)
    measured = gain_stage.measure_gain(prepared.timeline, prepared.sources)
    estimated = gain_stage.estimate_gain(prepared.timeline, prepared.sources)
    # (The estimate leaves out the limiter's share: 0.06 dB here.)
    assert abs(20 * np.log10(estimated / measured)) < 0.08


def test_validate_prints_every_ramp_error_at_file_line_col_and_exits_1(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "ramps.en.yaml"
    path.write_text(
        HEAD + "  - breathe: {inhale: 4, exhale: {from: 4, step: -1}, cycles: 5}\n"
        "  - breathe: {pattern: 4-7-8-9-1, unit: 1s}\n"
        "  - breathe: {inhale: 4, exhale: {from: 2, to: 6}, cycles: 3}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "audio_engine", "validate", "--no-voice", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert [line.split(": ", 2)[:2] for line in lines] == [
        [f"{path}:5:50", "error"],
        [f"{path}:6:24", "error"],
    ]
    assert "falls to 0 s in cycle 5 of 5" in lines[0] and "Traceback" not in result.stderr


def test_each_ramped_cycles_tone_energy_is_estimated_within_a_percent():
    from audio_engine import loudness

    s = load(
        "- breathe: {inhale: {from: 2, to: 5}, hold: 1, exhale: {from: 6, step: -1, min: 2},"
        " rest: 0.5, cycles: 6, guide_tone: true}"
    )
    (tone,) = [e for e in timeline.compile(s, FakeLengths()).events if e.kind == "tone"]
    spec = tone.tone
    for offset, (profile, length) in gain_stage.tone_cycle_profiles(spec):
        real = synth.guide_tone(
            spec.phases, spec.cycles, offset, offset + length, spec.cycle_lengths
        )
        measured = loudness.energy_profile(real, SR)[-1]
        assert profile[-1] == pytest.approx(measured, rel=0.01)
