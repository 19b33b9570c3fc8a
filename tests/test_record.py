"""`relax record`: the lines to record, recordings imported from elsewhere, and a real capture
through SDL's capture device (the disk audio driver reads a known signal from
`SDL_DISKAUDIOFILEIN`, as a microphone would give it)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from audio_engine import model, pipeline, script
from audio_engine.speech import recorded, voices
from tests.test_recorded import DUTCH, LINES, as_recorded, record_lines, tone, write_session

RATE = model.SAMPLE_RATE


def relax(*args, env=None, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audio_engine", *args],
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_list_and_csv_give_key_text_and_slot_in_speaking_order(tmp_path):
    path = write_session(tmp_path)
    done = relax("record", str(path), "--list")
    assert done.returncode == 0, done.stderr
    rows = [line.split(None, 4) for line in done.stdout.splitlines()]
    assert [r[-1] for r in rows] == list(LINES)
    assert [r[1] for r in rows] == [recorded.line_key(t, "nl") for t in LINES]
    slots = dict(zip(LINES, (r[2] for r in rows), strict=True))
    assert slots["Adem in"] == "3.00" and slots["Adem rustig in."] == "-"  # fixed or its own
    assert {r[3] for r in rows} == {"no"}
    out = tmp_path / "studio.csv"
    assert relax("record", str(path), "--csv", str(out)).returncode == 0
    table = list(csv.DictReader(out.open()))
    assert [row["text"] for row in table] == list(LINES)
    assert table[1]["slot_s"] == "3.00" and table[0]["recorded"] == "no"


def test_import_by_key_and_by_line_number_then_export_speaks_them(tmp_path, fresh_cache):
    studio = tmp_path / "studio"
    made = record_lines(studio, LINES[:3])  # named by key (espeak-ng standing in for a person)
    soundfile.write(studio / "004-uit.wav", as_recorded(tone(1.2)), 48000)  # by line number
    soundfile.write(studio / "5.ogg", as_recorded(tone(0.8, 220.0)), 48000)
    soundfile.write(studio / "notes.wav", tone(0.5), RATE)  # no line of that name
    path = write_session(tmp_path, ", fallback: none")
    done = relax("record", str(path), "--import", str(studio), "--speaker", "Anna")
    assert done.returncode == 0, done.stderr
    assert "imported 5 recordings" in done.stdout and "0 lines still have none" in done.stdout
    assert "notes.wav" in done.stderr
    folder = tmp_path / "voice"
    manifest = recorded.read_manifest(folder)
    assert {entry["text"] for entry in manifest.values()} == set(LINES)
    assert {entry["speaker"] for entry in manifest.values()} == {"Anna"}
    prepared = pipeline.prepare(script.load(path))
    speech = prepared.sources.speech
    assert {voices.check_utterance(u).engine for u in speech} == {"recorded"}
    by_text = {u.text: clip for u, clip in speech.items()}
    assert np.array_equal(by_text[LINES[0]], recorded.read(made[LINES[0]]))
    assert abs(by_text[LINES[3]].size - int(1.2 * RATE)) < 0.05 * RATE  # the tone, unstretched
    out = tmp_path / "kort.wav"
    assert relax("export", str(path), "-o", str(out)).returncode == 0


def test_a_file_that_cannot_be_used_is_one_error_and_nothing_is_imported(tmp_path):
    studio = tmp_path / "studio"
    studio.mkdir()
    soundfile.write(studio / "1.wav", as_recorded(tone(1.0)), 48000)
    (studio / "2.flac").write_bytes(b"fLaC not really")
    soundfile.write(studio / "3.wav", np.zeros(RATE, np.float32), RATE)  # only silence
    path = write_session(tmp_path)
    done = relax("record", str(path), "--import", str(studio))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "2.flac" in done.stderr
    assert not (tmp_path / "voice").exists() or not list((tmp_path / "voice").iterdir())


def test_an_import_of_a_recording_longer_than_a_line_can_be_is_refused(tmp_path):
    studio = tmp_path / "studio"
    studio.mkdir()
    rate = 8000
    long = np.tile(tone(1.0)[:rate], 6 * 60 + 1)
    soundfile.write(studio / "1.flac", long, rate)
    done = relax("record", str(write_session(tmp_path)), "--import", str(studio))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"relax: error: cannot import {studio / '1.flac'}: it lasts more than 6 minutes, the "
        "limit for one line"
    ]
    assert not (tmp_path / "voice").exists()


def test_a_take_captured_through_sdl_is_trimmed_levelled_and_kept(tmp_path):
    # The microphone: half a second of room, one second of 440 Hz with hum, then silence (the
    # take stops after 1.5 s of it).
    rate = RATE
    t = np.arange(rate) / rate
    voice = 0.25 * np.sin(2 * np.pi * 440 * t)
    signal = np.concatenate([np.zeros(rate // 2), voice, np.zeros(4 * rate)])
    signal += 0.003 * np.sin(2 * np.pi * 50 * np.arange(signal.size) / rate)
    mic = tmp_path / "mic.raw"
    signal.astype("<f4").tofile(mic)
    path = tmp_path / "kort.nl.yaml"
    path.write_text(DUTCH.format(extra="").replace("  - say: En weer uit, langzaam.\n", ""))
    record_lines(tmp_path / "voice", LINES[:1] + LINES[2:])  # all but "Adem in"
    env = {
        "SDL_AUDIODRIVER": "disk",
        "SDL_DISKAUDIOFILEIN": str(mic),
        "SDL_DISKAUDIOFILE": str(tmp_path / "out.raw"),
        "RELAX_CACHE_DIR": str(tmp_path / "cache"),
    }
    done = relax("record", str(path), "--no-window", "--count-in", "0", env=env, stdin="k\n")
    assert done.returncode == 0, done.stderr
    assert "[1/1]" in done.stdout and "Adem in" in done.stdout and "of 3.00 s: fits" in done.stdout
    kept = recorded.find(tmp_path / "voice", recorded.line_key("Adem in", "nl"))
    assert kept is not None and kept.suffix == ".flac"
    raw, kept_rate = soundfile.read(kept, dtype="float32")
    assert kept_rate == rate
    assert np.max(np.abs(raw)) == pytest.approx(0.25, abs=0.01)  # as captured, not processed
    clip = recorded.read(kept)
    fade = round(recorded.FADE_S * rate) + round(recorded.FRAME_S * rate)
    assert abs(clip.size - rate) <= 2 * fade  # the second of tone, trimmed
    assert np.sqrt(np.mean(clip.astype(np.float64) ** 2)) == pytest.approx(0.1, rel=0.02)
    spectrum = np.abs(np.fft.rfft(clip))
    assert np.fft.rfftfreq(clip.size, 1 / rate)[np.argmax(spectrum)] == pytest.approx(440, abs=2)
    entry = recorded.read_manifest(tmp_path / "voice")[kept.stem]
    assert entry["text"] == "Adem in" and entry["language"] == "nl"


def test_import_counts_in_the_interface_language_with_its_plurals(tmp_path, fresh_cache):
    studio = tmp_path / "studio"
    studio.mkdir()
    soundfile.write(studio / "1.wav", as_recorded(tone(1.0)), 48000)  # the first line only
    path = write_session(tmp_path)
    english = relax("record", str(path), "--import", str(studio))
    assert english.returncode == 0, english.stderr
    left = len(LINES) - 1
    assert english.stdout.startswith("imported 1 recording into ")
    assert english.stdout.rstrip().endswith(f"; {left} lines still have none")
    dutch = relax("--ui-language", "nl", "record", str(path), "--import", str(studio))
    assert dutch.returncode == 0, dutch.stderr
    assert dutch.stdout.startswith("1 opname geïmporteerd in ")
    assert dutch.stdout.rstrip().endswith(f"; {left} regels hebben er nog geen")
