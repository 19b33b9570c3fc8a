"""The render loop's own promises: the 16-bit conversion is the rounded, clipped scale of every
sample; a block belongs to its reader (changing it changes nothing after it); the mix made ahead in
a thread gives the blocks one thread gives, and an error there reaches the reader."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from audio_engine import render, script, timeline

SCRIPT = """\
format: 1
title: Blocks
language: en
background:
  - noise: {color: pink, volume: 0.3}
  - drone: {frequency: 110, volume: 0.3}
steps:
  - breathe: {inhale: 2, hold: 1, exhale: 3, cycles: 3, guide_tone: true}
  - pause: 4
"""


def _compiled(text: str):
    """The timeline and its sources, every spoken cue a quiet 0.2 s hum."""
    session = script.loads(text)
    clip = (0.05 * np.sin(np.arange(8820) * 0.05)).astype(np.float32)
    speech = {u: clip for u in timeline.speech_requests(session)}
    return timeline.compile(session, {u: len(c) for u, c in speech.items()}), speech


@pytest.fixture(scope="module")
def tones():
    return _compiled(SCRIPT)


def _all(tones, **kw) -> np.ndarray:
    tl, speech = tones
    return np.concatenate(list(render.blocks(tl, render.Sources(speech=speech), **kw)))


def test_to_int16_is_the_rounded_clipped_scale_of_every_sample():
    rng = np.random.default_rng(7)
    block = rng.uniform(-1.5, 1.5, (50_000, 2)).astype(np.float32)
    block[::997, 0] = np.nan
    block[::1009, 1] = np.inf
    block[::1013, 0] = -np.inf
    block[5, :] = [0.5 / 32767, -0.5 / 32767]  # halves round to even, as numpy rounds
    clean = np.nan_to_num(block, nan=0.0, posinf=1.0, neginf=-1.0)
    expected = np.round(np.clip(clean, -1.0, 1.0) * 32767.0).astype(np.int16)
    assert np.array_equal(render.to_int16(block), expected)
    assert render.to_int16(block[:0]).shape == (0, 2)


def test_a_block_its_reader_changes_changes_nothing_after_it(tones):
    gain = 4.0  # loud: the limiter works on the tone's peaks, and leaves the rests alone
    whole = _all(tones, gain=gain)
    free = _all(tones, gain=gain, ceiling_dbtp=40.0)
    assert np.any(whole != free)  # it did work
    tl, speech = tones
    for size in (4096, 1000):  # longer and shorter than what the limiter reads behind
        read = []
        for block in render.blocks(tl, render.Sources(speech), block_samples=size, gain=gain):
            read.append(block.copy())
            block[:] = 10.0  # the reader's own array: the next blocks do not see it
        assert np.array_equal(np.concatenate(read), whole), size


def test_the_mix_made_ahead_in_a_thread_gives_the_blocks_of_one_thread(tones):
    one = _all(tones, gain=4.0)  # one block: mixed here
    for size in (1000, 44100):  # many blocks: mixed ahead in a thread
        assert np.array_equal(_all(tones, gain=4.0, block_samples=size), one), size
    threads = threading.active_count()
    blocks = render.blocks(tones[0], render.Sources(tones[1]), block_samples=1000, gain=4.0)
    next(blocks)
    blocks.close()  # a reader that stops early (a seek) leaves no thread behind
    assert threading.active_count() == threads


def test_an_error_while_mixing_ahead_reaches_the_reader():
    tl, speech = _compiled(SCRIPT + "  - say: Hello.\n")
    missing = next(u for u in speech if u.text == "Hello.")
    speech = {u: clip for u, clip in speech.items() if u != missing}
    threads = threading.active_count()
    with pytest.raises(KeyError):
        for _ in render.blocks(tl, render.Sources(speech), block_samples=1000):
            pass  # no clip for the line: the mixing thread's KeyError is raised here
    assert threading.active_count() == threads


def test_the_limiter_finds_the_same_peaks_one_by_one_or_by_stretches(tones, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (2, 5000)).astype(np.float32)
    half = render._TAPS // 2
    at = np.arange(half, 5000 - half, 7)
    by_stretch = render._interpolated_peak(x, 1, 5000 - 2 * half)  # k from half on
    assert np.array_equal(render._interpolated_peak_at(x, at), by_stretch[at - half])
    monkeypatch.setattr(render, "_GATHER", 64)  # the candidates' taps gathered in pieces
    assert np.array_equal(render._interpolated_peak_at(x, at), by_stretch[at - half])
    monkeypatch.undo()
    gain = 4.0
    expected = _all(tones, gain=gain, block_samples=8192)
    for sparse in (1, 1 << 30):  # always one by one, never
        monkeypatch.setattr(render, "_SPARSE", sparse)
        assert np.array_equal(_all(tones, gain=gain, block_samples=8192), expected), sparse
