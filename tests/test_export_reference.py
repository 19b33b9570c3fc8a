"""Every existing script exports the same samples as before the breathing-ramp format additions.

The reference (`tests/data/export-reference.json`) was recorded by `python -m
tests.export_reference --write` with the code as it was before ramps, patterns and stepped phases
were added to `breathe`. It holds, per built-in session and per `tests/scripts/good` script, the
real espeak-ng clip length of every line it speaks and two fingerprints: the compiled timeline
(every event's kind, start and end sample, text, voice rate and volume, chime, guide tone spec;
chapters; total), compared exactly, and the rendered mix at gain 1 with speech as silence of those
lengths (guide tones, chimes, background layers with their fades and ducking), summarized in
`tests/data/export-reference-mix.npz` and compared within the float kernels' tolerance (the
summary and its tolerance are explained in `tests/export_reference.py`): the test passes on any
CPU and BLAS kernel and still sees a one-sample change or a changed layer.

Why not the exported files' own hashes: English is getting a new default speech engine in
parallel, which changes English speech clips without changing what any script means. Pinning the
clip lengths to the recorded espeak-ng ones keeps the check about the format: with the same clips,
an identical timeline and an identical non-speech mix give an identical export, sample for sample.
The speech engine's part (the clips themselves) is covered by the tts tests, and the Dutch check
below confirms the recorded lengths are the real engine's.

If a later change is meant to alter how existing scripts sound, record the reference again.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from tests import export_reference as ref

DATA = json.loads(ref.REFERENCE.read_text())
MIXES = ref.load_mix_reference()
NAMES = sorted(DATA["scripts"])


def test_the_reference_covers_every_existing_script():
    # Re-recorded on purpose when the built-in sessions' timing changed for the neural English
    # voice (longer `say` durations, counted breaths at rate 155); slow-down is in it since.
    names = {ref.name_of(p) for p in ref.scripts()}
    assert set(NAMES) == names
    assert set(MIXES) == names
    assert len(NAMES) == 21  # 16 built-in sessions and 5 good test scripts


@pytest.mark.parametrize("name", NAMES)
def test_timeline_and_mix_are_unchanged(name):
    entry = DATA["scripts"][name]
    found = ref.fingerprints(ref.ROOT / name, entry["lengths"])
    assert found["timeline"] == entry["timeline"]
    assert ref.mix_differences(found["mix"], MIXES[name]) == []


def test_the_fingerprints_notice_one_sample():
    name = "sessions/breathing-478.en.yaml"
    lengths = dict(DATA["scripts"][name]["lengths"])
    key = next(iter(lengths))  # the count "2": one sample longer moves where the voice ducks
    lengths[key] += 1
    found = ref.fingerprints(ref.ROOT / name, lengths)
    assert found["timeline"] != DATA["scripts"][name]["timeline"]
    assert ref.mix_differences(found["mix"], MIXES[name]) != []


def _layer_volume(factor: float):
    def edit(session):
        first = session.background[0]
        return dataclasses.replace(
            session,
            background=(dataclasses.replace(first, volume=first.volume * factor),)
            + tuple(session.background[1:]),
        )

    return edit


def test_the_mix_fingerprint_notices_a_changed_layer():
    name = "sessions/breathing-478.en.yaml"
    lengths = DATA["scripts"][name]["lengths"]
    found = ref.fingerprints(ref.ROOT / name, lengths, edit=_layer_volume(1.001))
    assert found["timeline"] == DATA["scripts"][name]["timeline"]  # the events are the same
    assert ref.mix_differences(found["mix"], MIXES[name]) != []


def test_the_tolerance_is_far_below_a_change_and_far_above_the_kernels():
    # Every sample moved by one float32 step up or down (what the kernels differ by, at most),
    # and by 1e-9 besides, is inside the tolerance; one sample's worth of ducking moved is
    # outside it (above).
    name = "tests/scripts/good/flow-style.yaml"
    lengths = DATA["scripts"][name]["lengths"]
    _, blocks = ref.render_mix(ref.ROOT / name, lengths)
    rng = np.random.default_rng(0)
    ulp = np.float32(2.0**-23)
    nudged = (
        b * (1 + rng.choice([-ulp, ulp], size=b.shape)) + rng.choice([-1e-9, 1e-9], size=b.shape)
        for b in blocks
    )
    assert ref.mix_differences(ref._summarize(nudged), MIXES[name]) == []


def test_the_recorded_lengths_are_the_real_espeak_lengths():
    from audio_engine import tts

    if tts.engine_version() != DATA["engine"]:
        pytest.skip(f"recorded with {DATA['engine']}, this is {tts.engine_version()}")
    # Dutch is spoken by espeak-ng whatever the English default becomes.
    name = "sessions/breathing-478.nl.yaml"
    assert ref.espeak_lengths(ref.ROOT / name) == DATA["scripts"][name]["lengths"]
