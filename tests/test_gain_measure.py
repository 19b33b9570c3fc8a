"""The loudness measure's first pass: each 100 ms step's largest sample, kept block by block, is the
largest of the step's samples however the blocks cut the steps."""

from __future__ import annotations

import numpy as np

from audio_engine import gain, render, script, timeline

SCRIPT = """\
format: 1
title: Steps
language: en
background:
  - noise: {color: white, volume: 0.2}
steps:
  - breathe: {inhale: 2, hold: 1, exhale: 3, cycles: 2, guide_tone: true}
  - pause: 1
"""


def test_step_peaks_are_the_largest_sample_of_each_step_whatever_the_blocks(monkeypatch):
    session = script.loads(SCRIPT)
    speech = {u: np.zeros(4410, np.float32) for u in timeline.speech_requests(session)}
    tl = timeline.compile(session, {u: len(c) for u, c in speech.items()})
    mixer = render.Mixer(tl, render.Sources(speech=speech))
    step = tl.sample_rate // 10
    start, stop = 7 * step, tl.total_samples - 1234  # the last step is not whole
    mix = np.abs(mixer(start, stop)).max(axis=1)
    whole = (stop - start) // step
    expected = mix[: whole * step].reshape(whole, step).max(axis=1)
    for block in (gain.MEASURE_BLOCK, 10_000, step):  # steps straddle blocks, or not
        monkeypatch.setattr(gain, "MEASURE_BLOCK", block)
        energies, peaks = gain._measure_span(mixer, start, stop, 5 * step, ())
        assert len(energies) == whole
        assert np.array_equal(peaks, expected.astype("<f8")), block
