"""The recorded voice: a person's recordings, line by line, spoken at the script's timing.

Recordings here are files made as a person's would be: espeak-ng's speech (standing in for a
human) and tones, with silence, hum and a DC offset around them, at another sample rate and in
WAV, FLAC and OGG.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audio_engine import model, pipeline, script, timeline, tts
from audio_engine.errors import ScriptError, TTSError
from audio_engine.speech import recorded, voices

RATE = model.SAMPLE_RATE

DUTCH = """format: 1
id: kort
title: Kort
language: nl
voice: {{engine: recorded, folder: voice{extra}}}
steps:
  - say: Adem rustig in.
  - pause: 1s
  - breathe: {{inhale: 3, exhale: 3, cycles: 1}}
  - say: En weer uit, langzaam.
  - say: Voel hoe je lichaam zwaar wordt.
"""
LINES = (
    "Adem rustig in.",
    "Adem in",
    "Adem uit",
    "En weer uit, langzaam.",
    "Voel hoe je lichaam zwaar wordt.",
)


def relax(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audio_engine", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def as_recorded(signal: np.ndarray, rate_hz: int = 48000) -> np.ndarray:
    """`signal` (at 44.1 kHz) as a microphone gives it: resampled, 0.4 s of room noise before and
    0.6 s after, 50 Hz hum and a DC offset throughout."""
    import soxr

    speech = soxr.resample(signal.astype(np.float64), RATE, rate_hz)
    rng = np.random.default_rng(len(signal))
    before, after = np.zeros(int(0.4 * rate_hz)), np.zeros(int(0.6 * rate_hz))
    out = np.concatenate([before, speech, after])
    t = np.arange(out.size) / rate_hz
    out += 0.0005 * rng.standard_normal(out.size) + 0.005 * np.sin(2 * np.pi * 50 * t) + 0.01
    return out.astype(np.float32)


def tone(seconds: float, hz: float = 330.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def record_lines(folder: Path, lines, language="nl", *, skip=()) -> dict[str, Path]:
    """A folder of recordings of `lines`: espeak-ng's speech as a person's, FLAC, WAV and OGG."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for i, text in enumerate(lines):
        if text in skip:
            continue
        voice = model.Voice(rate_wpm=140, volume=1.0, engine="espeak")
        speech = tts.synthesize(model.Utterance(text, language, voice))
        key = recorded.line_key(text, language)
        path = folder / f"{key}{('.flac', '.wav', '.ogg')[i % 3]}"
        soundfile.write(path, as_recorded(speech), 48000)
        made[text] = path
    return made


def write_session(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "kort.nl.yaml"
    path.write_text(DUTCH.format(extra=extra))
    return path


# ---- processing --------------------------------------------------------------------------------


def test_processing_removes_hum_trims_with_fades_and_levels():
    clip = recorded.process(as_recorded(tone(1.0)), 48000)
    fade = round(recorded.FADE_S * RATE)
    frame = round(recorded.FRAME_S * RATE)
    assert abs(clip.size - RATE) <= 2 * (fade + frame)  # the tone's second, no silence kept
    assert np.sqrt(np.mean(clip.astype(np.float64) ** 2)) == pytest.approx(0.1, rel=0.02)
    assert abs(clip[0]) < 1e-3 and abs(clip[-1]) < 1e-3  # faded in and out
    # The hum and the offset are gone: almost nothing below 80 Hz is left.
    spectrum = np.abs(np.fft.rfft(clip.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(clip.size, 1 / RATE)
    assert spectrum[freqs < 70].sum() < 1e-3 * spectrum.sum()
    # Never stretched: a 2.5 s line stays 2.5 s.
    assert abs(recorded.process(tone(2.5), RATE).size - int(2.5 * RATE)) <= 2 * (fade + frame)
    with pytest.raises(Exception, match="only silence"):
        recorded.process(np.zeros(RATE, np.float32), RATE)


def test_a_loud_recording_keeps_its_peak_under_the_limit():
    clicks = np.zeros(RATE, np.float32)
    clicks[::4410] = 0.9  # a few sharp peaks, little energy: levelling would clip them
    clip = recorded.process(clicks, RATE)
    assert np.max(np.abs(clip)) <= recorded.PEAK_LIMIT + 1e-6


def test_a_recording_longer_than_a_line_can_be_is_refused_before_it_is_held(tmp_path):
    path = tmp_path / "long.flac"
    rate = 8000
    with soundfile.SoundFile(path, "w", rate, 1) as f:  # 6 min 1 s: a tone, then room noise
        f.write(tone(1.0)[:rate])
        noise = 0.001 * np.random.default_rng(0).standard_normal(60 * rate)
        for _ in range(6):
            f.write(noise)
    with pytest.raises(TTSError, match=r"long\.flac cannot be used: it lasts more than 6 minutes"):
        recorded.read(path)


def test_keys_are_stable_and_ignore_spacing_and_region():
    key = recorded.line_key("Adem  rustig\nin.", "nl-BE")
    assert key == recorded.line_key("Adem rustig in.", "nl") and recorded.is_key(key)
    assert key != recorded.line_key("Adem rustig in.", "en")
    assert key == "591d7ba11169"  # a folder made today is found by every later version


# ---- sessions ----------------------------------------------------------------------------------


def test_a_complete_folder_exports_with_the_recordings_at_the_scripts_timing(tmp_path, fresh_cache):
    import pyloudnorm

    made = record_lines(tmp_path / "voice", LINES)
    path = write_session(tmp_path)
    prepared = pipeline.prepare(script.load(path))
    speech = prepared.sources.speech
    assert {voices.check_utterance(u).engine for u in speech} == {"recorded"}
    for u in speech:  # each line is its recording, processed once, at the voice's volume
        assert np.array_equal(speech[u], recorded.read(made[u.text]) * np.float32(u.voice.volume))
    # The script's timing: the breath's cues start on their beats whatever the recording's length.
    events = {e.utterance.text: e for e in prepared.timeline.transcript()}
    inhale, exhale = events["Adem in"].start_sample, events["Adem uit"].start_sample
    assert exhale - inhale == 3 * RATE
    out = tmp_path / "kort.wav"
    done = relax("export", str(path), "-o", str(out))
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr
    audio, rate = soundfile.read(out)
    assert rate == RATE
    assert pyloudnorm.Meter(RATE).integrated_loudness(audio) == pytest.approx(-16.0, abs=0.1)


def test_missing_lines_fall_back_with_one_warning_listing_them(tmp_path, fresh_cache):
    record_lines(tmp_path / "voice", LINES, skip={"Adem uit", "En weer uit, langzaam."})
    path = write_session(tmp_path)
    done = relax("export", str(path), "-o", str(tmp_path / "out.wav"))
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1, done.stderr
    assert "2 lines; espeak speaks them: 'Adem uit'; 'En weer uit, langzaam.'" in warnings[0]
    prepared = pipeline.prepare(script.load(path))
    engines = {u.text: voices.check_utterance(u).engine for u in prepared.sources.speech}
    assert engines["Adem uit"] == "espeak" and engines["Adem in"] == "recorded"


def test_with_fallback_none_a_missing_line_is_an_error_at_its_step(tmp_path, fresh_cache):
    record_lines(tmp_path / "voice", LINES, skip={"Voel hoe je lichaam zwaar wordt."})
    path = write_session(tmp_path, ", fallback: none")
    done = relax("export", str(path), "-o", str(tmp_path / "out.wav"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    key = recorded.line_key("Voel hoe je lichaam zwaar wordt.", "nl")
    assert line.startswith(f"{path}:11:5: error: steps[4]: "), line  # the step that says it
    assert f"'Voel hoe je lichaam zwaar wordt.' (key {key}) and no fallback" in line
    assert not (tmp_path / "out.wav").exists()


def test_with_fallback_none_missing_lines_are_errors_at_their_steps(tmp_path, fresh_cache):
    record_lines(tmp_path / "voice", LINES, skip={"Adem uit", "Voel hoe je lichaam zwaar wordt."})
    path = write_session(tmp_path, ", fallback: none")
    done = relax("export", str(path), "-o", str(tmp_path / "out.wav"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert [line.split(" error: ")[0] for line in lines] == [f"{path}:9:5:", f"{path}:11:5:"]
    for line, text in zip(lines, ("Adem uit", "Voel hoe je lichaam zwaar wordt."), strict=True):
        assert f"{text!r} (key {recorded.line_key(text, 'nl')})" in line
    assert not (tmp_path / "out.wav").exists()
    with pytest.raises(ScriptError) as raised:
        pipeline.prepare(script.load(path))
    assert [d.line for d in raised.value.diagnostics] == [9, 11]
    with pytest.raises(ScriptError):  # the player's cold start too
        pipeline.Growing(script.load(path))
    with pytest.raises(TTSError, match="no recording of 2 line"):  # the synthesizer's own check
        tts.clip_lengths(timeline.speech_order(script.load(path)))


def test_a_recording_too_long_for_its_cue_is_an_error_at_the_line(tmp_path, fresh_cache):
    folder = tmp_path / "voice"
    record_lines(folder, LINES)
    key = recorded.line_key("Adem in", "nl")
    for old in folder.glob(f"{key}.*"):
        old.unlink()
    soundfile.write(
        folder / f"{key}.wav", as_recorded(tone(3.5)), 48000
    )  # "Adem in" said for 3.5 s
    path = write_session(tmp_path)
    done = relax("export", str(path), "-o", str(tmp_path / "out.wav"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith(f"{path}:9:") and "error" in first and "Adem in" in first, done.stderr


@pytest.mark.parametrize(
    ("voice", "where", "message"),
    [
        ("{engine: recorded}", "5:9", "needs `folder:`"),
        ("{folder: voice}", "5:9", "belongs to the recorded voice"),
        ("{engine: recorded, folder: ..}", "5:35", "outside the script's folder"),
        ("{engine: recorded, folder: kort.nl.yaml}", "5:35", "is not a folder"),
        ("{engine: recorded, folder: voice, fallback: festival}", "5:52", "one of neural"),
    ],
)
def test_voice_errors_are_at_their_place(tmp_path, voice, where, message):
    path = tmp_path / "kort.nl.yaml"
    path.write_text(DUTCH.format(extra="").replace("{engine: recorded, folder: voice}", voice))
    with pytest.raises(ScriptError) as raised:
        script.load(path)
    assert f"{path}:{where}: error:" in str(raised.value) and message in str(raised.value)


def test_a_new_recording_of_a_line_is_a_new_clip(tmp_path, fresh_cache):
    folder = tmp_path / "voice"
    record_lines(folder, LINES)
    u = model.Utterance(
        "Adem rustig in.",
        "nl",
        model.Voice(rate_wpm=150, volume=1.0, engine="recorded", folder=folder),
    )
    first = tts.synthesize(u)
    [old] = folder.glob(f"{recorded.line_key(u.text, 'nl')}.*")
    old.unlink()
    soundfile.write(folder / f"{recorded.line_key(u.text, 'nl')}.wav", tone(1.5), RATE)
    again = tts.synthesize(u)
    assert again.size != first.size
    assert tts.engine_versions([u]) != ()


def test_a_recorded_session_plays_what_it_exports(tmp_path):
    from audio_engine.player.stream import CHUNK_SAMPLES
    from tests._disk_player import without_dropouts

    env = {
        "RELAX_CACHE_DIR": str(tmp_path / "cache"),
        "SDL_AUDIODRIVER": "disk",
        "SDL_DISKAUDIOFILE": str(tmp_path / "played.raw"),
        "RELAX_SETTINGS_DIR": str(tmp_path / "settings"),
        "RELAX_DATA_DIR": str(tmp_path / "data"),
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELAX_CACHE_DIR", env["RELAX_CACHE_DIR"])
        record_lines(tmp_path / "voice", LINES)
    path = write_session(tmp_path)
    played_run = subprocess.run(
        [sys.executable, "-m", "audio_engine", "play", str(path), "--no-window"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    assert played_run.returncode == 0, played_run.stderr
    out = tmp_path / "kort.wav"
    assert relax("export", str(path), "-o", str(out), env=env).returncode == 0
    exported, _rate = soundfile.read(out, dtype="int16")
    played = np.fromfile(tmp_path / "played.raw", dtype="<i2").reshape(-1, 2)
    start = int(np.flatnonzero(exported.any(axis=1))[0])
    needle = exported[start : start + 4096]
    candidates = np.flatnonzero((played == needle[0]).all(axis=1))
    at = next(i for i in candidates if np.array_equal(played[i : i + len(needle)], needle))
    lead = at - start
    boundaries = range(CHUNK_SAMPLES, len(exported), CHUNK_SAMPLES)
    played = without_dropouts(played, lead, exported, 0, boundaries)
    assert np.array_equal(played[lead : lead + len(exported)], exported)


def test_a_fallback_that_cannot_speak_the_language_is_an_error_at_the_voice(tmp_path):
    path = write_session(tmp_path, ", fallback: neural")
    with pytest.raises(ScriptError) as raised:
        pipeline.check_voice_names(script.load(path))
    assert f"{path}:5:" in str(raised.value) and "only English" in str(raised.value)
