"""The loudness measure's passes: each 100 ms step's largest sample, kept block by block, is the
largest of the step's samples however the blocks cut the steps; the energies after the limiter are
those of each block rendered on its own, however much is rendered at once."""

from __future__ import annotations

import numpy as np

from audio_engine import gain, loudness, render, script, timeline

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


def _one_block_at_a_time(mixer, start, stop, preroll, level, ceiling_dbtp):
    """The step energies after the limiter, each block rendered on its own (the reference)."""
    total = mixer.timeline.total_samples
    meter = loudness.Meter(44100, 2)
    for a, b in ((max(0, start - preroll), start), (start, stop)):
        if a == start:
            meter.restart_steps()
        for block_start in range(a, b, gain.MEASURE_BLOCK):
            block_stop = min(block_start + gain.MEASURE_BLOCK, b)
            lo = max(0, block_start - render.LIMIT_BEHIND)
            hi = min(total, block_stop + render.LIMIT_AHEAD)
            mixed = mixer(lo, hi) * np.float32(level)
            meter.feed(render.limit(mixed, lo, block_start, block_stop, 10 ** (ceiling_dbtp / 20)))
    return np.asarray(meter.step_energies, dtype="<f8")


def test_energies_after_the_limiter_do_not_depend_on_how_the_mix_is_rendered(monkeypatch):
    session = script.loads(SCRIPT)
    speech = {u: np.zeros(4410, np.float32) for u in timeline.speech_requests(session)}
    tl = timeline.compile(session, {u: len(c) for u, c in speech.items()})
    mixer = render.Mixer(tl, render.Sources(speech=speech))
    step = tl.sample_rate // 10
    outputs = ((6.0, render.LIMIT_DBTP), (6.0, -2.7))  # loud: the limiter works
    for block in (gain.MEASURE_BLOCK, 10_000, step):  # the pre-roll and blocks joined, or not
        monkeypatch.setattr(gain, "MEASURE_BLOCK", block)
        for start, stop in ((0, 30 * step), (7 * step, tl.total_samples // step * step)):
            found = gain._measure_span(mixer, start, stop, 5 * step, outputs)
            for (g, c), energies in zip(outputs, found, strict=True):
                expected = _one_block_at_a_time(mixer, start, stop, 5 * step, g, c)
                assert np.array_equal(energies, expected), (block, start, c)
