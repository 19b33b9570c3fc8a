"""The loudness measure's passes: each 100 ms step's largest sample, kept block by block, is the
largest of the step's samples however the blocks cut the steps; what the limiter takes from each
step, found from the weighted mix and the weighted difference the limiter makes, is what a meter
reads on the limiter's output rendered block by block."""

from __future__ import annotations

import numpy as np
import pytest

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
        energies, peaks = gain._measure_span(mixer, start, stop, 5 * step)
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


QUIET_BETWEEN = """\
format: 1
title: Tones
language: en
steps:
  - breathe: {inhale: 2, hold: 1, exhale: 3, cycles: 2, guide_tone: true}
  - chime: bell
  - pause: 2
  - breathe: {inhale: 3, exhale: 3, cycles: 1, guide_tone: true}
"""


@pytest.mark.parametrize("chunk", [gain._LIMITED_CHUNK, 10_000])  # a run taken in pieces, or not
def test_what_the_limiter_takes_is_what_a_meter_reads_after_it(chunk, monkeypatch):
    monkeypatch.setattr(gain, "_LIMITED_CHUNK", chunk)
    session = script.loads(QUIET_BETWEEN)
    speech = {u: np.zeros(4410, np.float32) for u in timeline.speech_requests(session)}
    tl = timeline.compile(session, {u: len(c) for u, c in speech.items()})
    sources = render.Sources(speech=speech)
    mixer = render.Mixer(tl, sources)
    step = tl.sample_rate // 10
    whole = tl.total_samples // step * step
    raw, peaks = gain._measure_span(mixer, 0, whole, 0)
    # Loud: the limiter works; at the first gain a little, at the others much more.
    outputs = ((5.0, render.LIMIT_DBTP), (8.0, render.LIMIT_DBTP), (8.0, -2.7), (12.0, -6.0))
    hot = np.zeros(len(peaks), dtype=bool)
    for g, c in outputs:
        hot |= peaks * g > 10 ** ((c - gain.MEASURE_OVERSHOOT_DB) / 20)
    assert len(gain._hot_runs(hot)) >= 2  # the pause between is quiet: runs apart
    found = gain._limited_energies(tl, sources, raw, hot, outputs, 1, lambda f: None)
    for (g, c), got in zip(outputs, found, strict=True):
        expected = _one_block_at_a_time(mixer, 0, whole, 0, g, c)
        taken = raw * g**2 - expected
        assert taken.max() > 1e-3 * expected.max(), (g, c)  # the limiter takes something
        # What it takes is found to a millionth (the float's last bits and the ringing left).
        assert np.abs(got - expected).sum() <= 1e-6 * taken.sum(), (g, c)


def test_a_ceiling_the_limiter_works_hard_at_is_still_met(monkeypatch):
    # A white-noise bed with tones on top, limited 10 dB under the player's ceiling: the
    # limiter takes more loudness than the first gains tried make up, so the pass is made again
    # further on; the output still lands on the target.
    session = script.loads(SCRIPT)
    speech = {u: np.zeros(4410, np.float32) for u in timeline.speech_requests(session)}
    tl = timeline.compile(session, {u: len(c) for u, c in speech.items()})
    sources = render.Sources(speech=speech)
    passes = []
    real = gain._limited_energies
    monkeypatch.setattr(gain, "_limited_energies", lambda *a: passes.append(a[4]) or real(*a))
    ceiling = -11.0
    found = gain.measure_gains(tl, sources, (ceiling,), jobs=1)[ceiling]
    assert len(passes) >= 2  # the target lay past the first gains tried
    meter = loudness.Meter(tl.sample_rate, 2)
    for block in render.blocks(tl, sources, gain=found, ceiling_dbtp=ceiling):
        meter.feed(block)
    assert abs(meter.integrated_lufs() - gain.TARGET_LUFS) <= gain.CEILING_TOLERANCE_LU


def test_a_target_out_of_the_ceilings_reach_stops_the_gain_and_keeps_the_fade_in():
    # A loud 20 Hz drone alone: under the lowest lossy ceiling no gain reaches -16 LUFS (the
    # limiter takes back all that more gain gives). The gain stops where the loudness stops
    # growing, rather than climb by tens of dB and flatten the fade-in into a full-level start.
    session = script.loads(
        "format: 1\ntitle: Hum\nlanguage: en\n"
        "background:\n  - drone: {frequency: 20, volume: 1, fade_in: 4}\nsteps:\n  - pause: 12\n"
    )
    tl = timeline.compile(session, {})
    sources = render.Sources(speech={})
    ceiling = render.lossy_ceiling(0)
    found = gain.measure_gains(tl, sources, (ceiling,), jobs=1)[ceiling]

    def rendered(g):
        return np.concatenate(list(render.blocks(tl, sources, gain=g, ceiling_dbtp=ceiling)))

    out, more = rendered(found), rendered(found * 10 ** (1 / 20))
    lufs = loudness.integrated_lufs(out, tl.sample_rate)
    assert lufs < gain.TARGET_LUFS - 1  # out of reach
    assert loudness.integrated_lufs(more, tl.sample_rate) - lufs < 0.1  # another dB: ~nothing
    first = np.abs(out[: tl.sample_rate // 4]).max()
    assert first < 0.1 * np.abs(out).max(), first  # the fade-in starts quietly
