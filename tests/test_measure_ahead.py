"""The loudness measure's first pass made while the speech is still being made
(`pipeline.MeasureAhead`): a piece measured on the partial timeline is, to the bit, the piece
measured on the complete one; pieces whose speech is not known yet are left alone; and a cold
export's gain is the same whether pieces were measured ahead or not."""

from __future__ import annotations

import time

import numpy as np

import audio_engine.gain as gain_stage
from audio_engine import pipeline, render, script, timeline
from audio_engine.speech import neural

LINES = [
    "Settle in, and let the chair hold you.",
    "Let the shoulders drop, and feel how the weight of the arms pulls them gently down.",
    "Soften the jaw, and let the space between the eyebrows widen.",
    "Feel the feet on the floor, the heels, the toes, and the arches in between.",
    "Notice the hands, resting where they are.",
    "Let the belly be soft, and each breath out a little longer than the one before.",
]

# Lines without a set duration move everything after them; about 40 s each, with a pause.
AHEAD = "format: 1\ntitle: Ahead\nlanguage: en\nbackground:\n"
AHEAD += "  - noise: {color: pink, volume: 0.05, fade_in: 1, fade_out: 2, duck: 0.5}\n"
AHEAD += "  - drone: {frequency: 110, volume: 0.04}\nsteps:\n"
AHEAD += "".join(f"  - say: {line}\n  - pause: 37s\n" for line in LINES)


def test_pieces_measured_on_the_partial_timeline_are_those_of_the_complete_one():
    session = script.loads(AHEAD)
    prepared = pipeline.prepare(session)  # every line made: the complete timeline
    ahead = pipeline.MeasureAhead(session, None)
    assert len(ahead._order) == len(LINES)
    ahead._order = ahead._order[:3]  # as if only the first three lines were made yet
    pipeline.warm_background(session)
    assert ahead._learn() and len(ahead._known) == 3
    ahead._measure(pipeline.load_sounds(session))
    # The pieces that end before the fourth line's ducking ramp begins are final; no other.
    spans = gain_stage.first_pass_spans(prepared.timeline.total_samples, 44100)
    fourth = [e for e in prepared.timeline.events if e.kind == timeline.SPEECH][3].start_sample
    reach = fourth - 2 * int(render.DUCK_RAMP_S * 44100)
    assert sorted(ahead.measured) == [i for i, (_, b) in enumerate(spans) if b < reach]
    assert len(ahead.measured) >= 3

    mixer = render.Mixer(prepared.timeline, prepared.sources)
    for index, (energies, peaks) in ahead.measured.items():
        whole, top = gain_stage.measure_piece(mixer, *spans[index])
        assert np.array_equal(energies, whole) and np.array_equal(peaks, top), index

    # Handed to the measure, they give the gains of a measure from nothing, to the bit.
    ceilings = gain_stage.STANDARD_CEILINGS
    alone = gain_stage.measure_gains(prepared.timeline, prepared.sources, ceilings, jobs=1)
    helped = gain_stage.measure_gains(
        prepared.timeline, prepared.sources, ceilings, jobs=1, measured=ahead.measured
    )
    assert helped == alone


def test_a_cold_prepare_measures_ahead_while_the_speech_is_made(tmp_path, monkeypatch):
    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "cache"))
    session = script.loads(AHEAD)
    # Each line takes a little longer (in the process apart, which inherits this): the measure
    # has time to follow on a busy machine too.
    made = neural.Neural.make_clip

    def slow(*args, **kwargs):
        time.sleep(0.3)
        return made(*args, **kwargs)

    monkeypatch.setattr(neural.Neural, "make_clip", slow)
    prepared = pipeline.prepare(session, measure_ahead=True)
    assert len(prepared.measured) >= 3
    spans = gain_stage.first_pass_spans(prepared.timeline.total_samples, 44100)
    mixer = render.Mixer(prepared.timeline, prepared.sources)
    for index, (energies, peaks) in prepared.measured.items():
        whole, top = gain_stage.measure_piece(mixer, *spans[index])
        assert np.array_equal(energies, whole) and np.array_equal(peaks, top), index
    assert len(prepared.measured) < len(spans)  # the last piece waits for the complete timeline
