"""Every existing script exports the same samples as before the breathing-ramp format additions.

The reference (`tests/data/export-reference.json`) was recorded by `python -m
tests.export_reference --write` with the code as it was before ramps, patterns and stepped phases
were added to `breathe`. It holds, per built-in session and per `tests/scripts/good` script, the
real espeak-ng clip length of every line it speaks and two fingerprints: the compiled timeline
(every event's kind, start and end sample, text, voice rate and volume, chime, guide tone spec;
chapters; total) and the rendered mix at gain 1 with speech as silence of those lengths (guide
tones, chimes, background layers with their fades and ducking).

Why not the exported files' own hashes: English is getting a new default speech engine in
parallel, which changes English speech clips without changing what any script means. Pinning the
clip lengths to the recorded espeak-ng ones keeps the check about the format: with the same clips,
an identical timeline and an identical non-speech mix give an identical export, sample for sample.
The speech engine's part (the clips themselves) is covered by the tts tests, and the Dutch check
below confirms the recorded lengths are the real engine's.

If a later change is meant to alter how existing scripts sound, record the reference again.
"""

from __future__ import annotations

import json

import pytest

from tests import export_reference as ref

DATA = json.loads(ref.REFERENCE.read_text())
NAMES = sorted(DATA["scripts"])


def test_the_reference_covers_every_existing_script():
    # Re-recorded on purpose when the built-in sessions' timing changed for the neural English
    # voice (longer `say` durations, counted breaths at rate 155); slow-down is in it since.
    names = {ref.name_of(p) for p in ref.scripts()}
    assert set(NAMES) == names
    assert len(NAMES) == 21  # 16 built-in sessions and 5 good test scripts


@pytest.mark.parametrize("name", NAMES)
def test_timeline_and_mix_are_unchanged(name):
    entry = DATA["scripts"][name]
    found = ref.fingerprints(ref.ROOT / name, entry["lengths"])
    assert found == {"timeline": entry["timeline"], "mix": entry["mix"]}


def test_the_fingerprints_notice_one_sample():
    name = "sessions/breathing-478.en.yaml"
    lengths = dict(DATA["scripts"][name]["lengths"])
    key = next(iter(lengths))
    lengths[key] += 1
    found = ref.fingerprints(ref.ROOT / name, lengths)
    assert found["timeline"] != DATA["scripts"][name]["timeline"]
    assert found["mix"] != DATA["scripts"][name]["mix"]


def test_the_recorded_lengths_are_the_real_espeak_lengths():
    from audio_engine import tts

    if tts.engine_version() != DATA["engine"]:
        pytest.skip(f"recorded with {DATA['engine']}, this is {tts.engine_version()}")
    # Dutch is spoken by espeak-ng whatever the English default becomes.
    name = "sessions/breathing-478.nl.yaml"
    assert ref.espeak_lengths(ref.ROOT / name) == DATA["scripts"][name]["lengths"]
