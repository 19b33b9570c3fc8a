"""The engine end to end with the real voice: script -> speech -> timeline -> render -> WAV.

Assertions are on samples: voice energy in every speech window, background level in pauses,
breathing phases on their exact samples, decoded length to the sample, loudness, peaks,
determinism, and seek/block-size independence.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile

import audio_engine.gain as gain_stage
from audio_engine import export, loudness, pipeline, render, script, synth, tts
from audio_engine.cli.info import as_json

SR = 44100


def _prepare(text: str):
    session = script.loads(textwrap.dedent(text), filename="test.yaml")
    return pipeline.prepare(session)


def _render_all(prepared, **kw) -> np.ndarray:
    return np.concatenate(list(render.blocks(prepared.timeline, prepared.sources, **kw)))


def _rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


SPOKEN = """
    format: 1
    title: Engine test
    language: en
    background:
      - noise: {color: pink, volume: 0.02, fade_in: 0.5, fade_out: 0.5}
    steps:
      - section: One
      - say: Let your shoulders drop.
      - pause: 2s
      - say: Breathe out slowly.
        duration: 3s
      - section: Two
      - pause: 1.5s
      - say: Notice how you feel.
      - chime: soft
"""


@pytest.fixture(scope="module")
def spoken():
    return _prepare(SPOKEN)


def test_every_speech_window_has_voice_and_pauses_have_only_the_background(spoken):
    tl = spoken.timeline
    audio = _render_all(spoken)
    assert audio.shape == (tl.total_samples, 2)
    speech = tl.transcript()
    assert [e.text for e in speech] == [
        "Let your shoulders drop.",
        "Breathe out slowly.",
        "Notice how you feel.",
    ]
    background = _rms(audio[speech[0].end_sample + SR // 2 : speech[0].end_sample + SR + SR // 2])
    for event in speech:
        voiced = _rms(audio[event.start_sample : event.end_sample])
        assert voiced > 6 * background, event.text
        # The clip's first sample is its first sound: the first 20 ms already carry voice.
        onset = _rms(audio[event.start_sample : event.start_sample + SR // 50])
        assert onset > 2 * background, event.text
    assert 0.0005 < background < 0.05
    # Just before the first line the background has ducked but is still there.
    assert _rms(audio[speech[0].start_sample - 100 : speech[0].start_sample]) < background


def test_say_with_duration_holds_the_next_step_to_its_sample(spoken):
    tl = spoken.timeline
    second = tl.transcript()[1]
    chapter_two = tl.chapters[1]
    assert chapter_two.start_sample == second.start_sample + 3 * SR
    third = tl.transcript()[2]
    assert third.start_sample == chapter_two.start_sample + int(1.5 * SR)
    chime = [e for e in tl.events if e.kind == "chime"][0]
    assert chime.start_sample == third.end_sample
    assert tl.total_samples == chime.end_sample == third.end_sample + synth.chime_samples("soft")


def test_render_is_the_same_from_any_start_and_block_size(spoken):
    tl = spoken.timeline
    gain = gain_stage.measure_gain(tl, spoken.sources)
    whole = _render_all(spoken, gain=gain, block_samples=4096)
    odd = _render_all(spoken, gain=gain, block_samples=3001)
    assert np.array_equal(whole, odd)
    for start in (tl.chapters[1].start_sample, 12345, tl.transcript()[1].start_sample + 7):
        tail = _render_all(spoken, gain=gain, start_sample=start, block_samples=5000)
        assert np.array_equal(tail, whole[start:]), start


def test_blocks_have_the_fixed_size_but_the_last(spoken):
    sizes = [len(b) for b in render.blocks(spoken.timeline, spoken.sources, block_samples=8192)]
    assert all(s == 8192 for s in sizes[:-1]) and 0 < sizes[-1] <= 8192
    assert sum(sizes) == spoken.timeline.total_samples


def test_loudness_is_on_target_and_peaks_stay_under_minus_1_dbfs(spoken):
    audio = _render_all(spoken)
    assert loudness.integrated_lufs(audio, SR) == pytest.approx(gain_stage.TARGET_LUFS, abs=0.5)
    assert pyloudnorm.Meter(SR).integrated_loudness(audio.astype(np.float64)) == pytest.approx(
        gain_stage.TARGET_LUFS, abs=1.0
    )
    assert 20 * np.log10(np.abs(audio).max()) < -1.0


def test_no_clicks_at_block_edges(spoken):
    audio = _render_all(spoken, block_samples=4096)[:, 0].astype(np.float64)
    jumps = np.abs(np.diff(audio))
    edges = np.arange(4096, len(audio) - 1, 4096) - 1
    # A jump at a block edge is no larger than the largest jump anywhere in its neighbourhood.
    for edge in edges:
        around = jumps[max(0, edge - 200) : edge + 200]
        assert jumps[edge] <= around.max()


def test_wav_export_decodes_to_the_predicted_length_and_is_deterministic(spoken, tmp_path):
    gain = pipeline.gain(spoken)
    a = export.export(spoken, tmp_path / "a.wav", gain=gain)
    b = export.export(spoken, tmp_path / "b.wav", gain=gain)
    assert a.read_bytes() == b.read_bytes()
    data, rate = soundfile.read(a, dtype="int16")
    assert rate == SR and data.shape == (spoken.timeline.total_samples, 2)
    expected = render.to_int16(_render_all(spoken, gain=gain))
    assert np.array_equal(data, expected)
    floats = export.export(spoken, tmp_path / "f.wav", gain=gain, float32=True)
    data32, _ = soundfile.read(floats, dtype="float32")
    assert np.array_equal(data32, _render_all(spoken, gain=gain))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.vtt",
        "a.wav",
        "b.vtt",
        "b.wav",
        "f.vtt",
        "f.wav",
    ]


BREATHING = """
    format: 1
    title: Guide tone
    language: en
    steps:
      - pause: 0.5
      - breathe:
          inhale: 2
          hold: 1
          exhale: 2.5
          rest: 1
          cycles: 3
          guide_tone: true
          cues: {inhale: "", hold: "", exhale: "", rest: ""}
"""


def _instantaneous_hz(x: np.ndarray) -> np.ndarray:
    """Pitch per sample from the spacing of rising zero crossings (interpolated)."""
    crossings = np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0))
    exact = crossings + x[crossings] / (x[crossings] - x[crossings + 1])
    hz = SR / np.diff(exact)
    return np.interp(np.arange(len(x)), exact[1:], hz)


def test_breathing_phases_fall_on_the_samples_info_gives(tmp_path):
    prepared = _prepare(BREATHING)
    info = as_json(prepared.timeline)
    gain = pipeline.gain(prepared)
    path = export.export(prepared, tmp_path / "b.wav", gain=gain, float32=True)
    audio, _ = soundfile.read(path, dtype="float64")
    x = audio[:, 0]
    phases = [e for e in info["events"] if e["kind"] in ("inhale", "hold", "exhale", "rest")]
    assert [p["kind"] for p in phases] == ["inhale", "hold", "exhale", "rest"] * 3
    for p in phases:
        start = round(p["start_s"] * SR)
        assert start == p["start_sample"]
        if p["kind"] == "inhale":
            # Silence (rest or pause) right up to the phase; the tone's ramp begins on its sample.
            assert np.all(x[start - 2000 : start + 1] == 0.0)
            assert x[start + 1] != 0.0
        if p["kind"] == "rest":
            # Full level up to the rest's first sample, then the fade, then exact silence.
            assert np.abs(x[start - 300 : start]).max() > 0.1
            assert np.all(x[start + int(0.03 * SR) : p["end_sample"]] == 0.0)
    # Pitch: rising in the inhale, steady at the top in the hold, falling in the exhale.
    hz = _instantaneous_hz(x)
    for p in phases[:3]:
        a, b = p["start_sample"], p["end_sample"]
        inner = hz[a + 2000 : b - 2000]
        mid = np.median(inner)
        if p["kind"] == "inhale":
            assert np.median(hz[a + 2000 : a + 4000]) < np.median(hz[b - 4000 : b - 2000])
        if p["kind"] == "hold":
            assert mid == pytest.approx(synth.GUIDE_TONE_HIGH_HZ, abs=1.0)
            assert np.percentile(np.abs(inner - mid), 95) < 1.0
        if p["kind"] == "exhale":
            assert np.median(hz[a + 2000 : a + 4000]) > np.median(hz[b - 4000 : b - 2000])


def test_info_json_matches_the_timeline_to_the_sample():
    result = subprocess.run(
        [sys.executable, "-m", "audio_engine", "info", "breathing-478", "-l", "en", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert set(info) >= {
        "id",
        "title",
        "language",
        "duration_s",
        "sample_rate",
        "chapters",
        "events",
    }
    assert info["id"] == "breathing-478" and info["sample_rate"] == SR
    inhales = [e for e in info["events"] if e["kind"] == "inhale"]
    holds = [e for e in info["events"] if e["kind"] == "hold"]
    exhales = [e for e in info["events"] if e["kind"] == "exhale"]
    assert len(inhales) == len(holds) == len(exhales) == 4
    for i, h, x in zip(inhales, holds, exhales, strict=True):
        assert i["end_sample"] - i["start_sample"] == 4 * SR
        assert (
            h["start_sample"] == i["end_sample"] and h["end_sample"] - h["start_sample"] == 7 * SR
        )
        assert (
            x["start_sample"] == h["end_sample"] and x["end_sample"] - x["start_sample"] == 8 * SR
        )
        assert i["start_s"] * SR == pytest.approx(i["start_sample"], abs=1e-6)
    assert {e["kind"] for e in info["events"]} <= {
        "speech",
        "inhale",
        "hold",
        "exhale",
        "rest",
        "chime",
    }


def test_same_session_renders_the_same_bytes_in_a_fresh_process(spoken, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(SPOKEN))
    outs = []
    for name in ("one.wav", "two.wav"):
        out = tmp_path / name
        subprocess.run(
            [sys.executable, "-m", "audio_engine", "export", str(path), "-o", str(out)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    data, _ = soundfile.read(tmp_path / "one.wav", dtype="int16")
    assert np.array_equal(data, render.to_int16(_render_all(spoken, gain=pipeline.gain(spoken))))


def _sound_session(tmp_path, loop: bool):
    t = np.arange(int(1.3 * 22050)) / 22050
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    soundfile.write(tmp_path / "tone.flac", tone, 22050)  # another rate, mono: resampled, doubled
    script_path = tmp_path / "sound.yaml"
    script_path.write_text(
        textwrap.dedent(
            f"""
            format: 1
            title: Sound layer
            language: en
            background:
              - sound: {{file: tone.flac, volume: 0.5, loop: {str(loop).lower()}, fade_in: 0, fade_out: 0, duck: 0}}
            steps:
              - pause: 5s
            """
        )
    )
    prepared = pipeline.prepare(script.load(script_path))
    return _render_all(prepared, gain=1.0)


def test_sound_file_layer_is_resampled_and_looped(tmp_path):
    audio = _sound_session(tmp_path, loop=True)
    assert audio.shape == (5 * SR, 2)
    left = audio[:, 0].astype(np.float64)
    assert np.array_equal(audio[:, 0], audio[:, 1])
    spectrum = np.abs(np.fft.rfft(left[SR : 3 * SR]))
    peak_hz = np.argmax(spectrum) * SR / (2 * SR)
    assert peak_hz == pytest.approx(1000, abs=1)
    # Sounding all the way through: every 100 ms window holds the tone (no gap at the loop seams).
    windows = [_rms(left[i : i + SR // 10]) for i in range(0, 5 * SR - SR // 10, SR // 10)]
    assert min(windows) > 0.5 * max(windows) > 0
    # The file's own level times the layer's volume: a 0.5 sine at volume 0.5 (first pass, before
    # the first loop seam's crossfade).
    assert _rms(left[SR // 5 : SR]) == pytest.approx(0.25 / np.sqrt(2), rel=0.01)


def test_sound_file_layer_without_loop_stops_at_its_end(tmp_path):
    audio = _sound_session(tmp_path, loop=False)[:, 0]
    end = int(1.3 * SR)
    assert _rms(audio[SR // 2 : SR]) > 0.05
    assert np.abs(audio[end + 200 :]).max() < 1e-4


def test_prepared_speech_is_read_from_the_cache_when_it_plays(spoken):
    store = spoken.sources.speech
    assert isinstance(store, pipeline.ClipStore)
    for event in spoken.timeline.transcript():
        clip = store[event.utterance]
        assert len(clip) == store.length(event.utterance) == event.duration_samples
        assert np.array_equal(clip, tts.synthesize(event.utterance))
    few = pipeline.ClipStore(
        {e.utterance: e.duration_samples for e in spoken.timeline.transcript()}, keep=1
    )
    for event in spoken.timeline.transcript():
        few[event.utterance]
    assert len(few._recent) == 1  # only the most recent clip stays in memory
    lean = store.lean()
    for event in spoken.timeline.transcript():
        assert np.array_equal(lean[event.utterance], store[event.utterance])
    assert len(lean._recent) <= 2


def test_noise_loops_are_kept_on_disk_and_a_damaged_one_is_made_again(tmp_path, monkeypatch):
    from audio_engine import model

    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(pipeline, "BUILT_FOLDER", tmp_path / "none built")  # (not set up)
    layer = model.Noise("brown", 0.5)
    session = model.Session(
        title="n", language="en", steps=(model.Pause(1.0),), background=(layer,)
    )
    made = synth.noise_loop("brown").copy()
    synth._installed_loops.clear()
    pipeline.warm_background(session)  # nothing on disk yet: made, then saved
    (saved,) = (tmp_path / "noise").iterdir()
    synth._installed_loops.clear()
    pipeline.warm_background(session)  # read back
    assert np.array_equal(synth.noise_loop("brown"), made)
    data = bytearray(saved.read_bytes())
    data[1000] ^= 0xFF
    saved.write_bytes(bytes(data))
    synth._installed_loops.clear()
    pipeline.warm_background(session)  # damaged: made again
    assert np.array_equal(synth.noise_loop("brown"), made)
    assert np.array_equal(np.frombuffer(saved.read_bytes()[12:], "<f4").reshape(-1, 2), made)


def test_chimes_are_kept_on_disk_and_a_damaged_one_is_made_again(tmp_path, monkeypatch):
    from audio_engine import model

    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path))
    steps = (model.Repeat(2, (model.Chime("bowl"),)), model.Breathe(4, 4, chime_on_phase="soft"))
    session = model.Session(title="c", language="en", steps=steps)
    made = {name: synth.unit_chime(name).copy() for name in ("bowl", "soft")}

    def forget():
        synth._installed_chimes.clear()
        synth._unit_chime.cache_clear()
        synth.chime.cache_clear()

    forget()
    pipeline.warm_chimes(session)  # nothing on disk yet: made, then saved
    saved = {p.name.split("-")[0]: p for p in (tmp_path / "chime").iterdir()}
    assert sorted(saved) == ["bowl", "soft"]  # only the chimes the session rings
    forget()
    pipeline.warm_chimes(session)  # read back
    assert sorted(synth._installed_chimes) == ["bowl", "soft"]
    for name, unit in made.items():
        assert np.array_equal(synth.unit_chime(name), unit)
        assert synth.chime_samples(name) == len(unit)
    data = bytearray(saved["bowl"].read_bytes())
    data[5000] ^= 0xFF
    saved["bowl"].write_bytes(bytes(data))
    saved["soft"].write_bytes(saved["soft"].read_bytes()[:-8])  # cut short
    forget()
    pipeline.warm_chimes(session)  # damaged and short: made again and saved again
    assert synth._installed_chimes == {}
    for name, unit in made.items():
        assert np.array_equal(synth.unit_chime(name), unit)
        assert np.array_equal(np.frombuffer(saved[name].read_bytes()[12:], "<f4"), unit)
    forget()


def test_outline_lists_sections_lines_and_the_end_with_their_times(spoken):
    from audio_engine.cli.info import outline

    text = outline(spoken.timeline).splitlines()
    assert text[0] == "Engine test (test, en)"
    second = spoken.timeline.transcript()[1]
    assert any(
        line.strip().startswith(f"0:{second.start_sample / SR:06.3f}")
        and 'say   "Breathe out slowly."' in line
        for line in text
    )
    assert [line.split("== ")[1] for line in text if "== " in line] == ["One", "Two"]
    assert text[-1].strip().endswith("end")


MEASURE_IN_PIECES = r"""
import json, os, sys, textwrap
import numpy as np
from audio_engine import loudness, pipeline, render, script
import audio_engine.gain as gain_stage
from audio_engine.render import mixed_blocks

text = '''
format: 1
title: Pieces
language: en
background:
  - drone: {frequency: 110, volume: 0.3, fade_in: 2}
  - noise: {color: brown, volume: 0.2}
steps:
  - say: Let your shoulders drop.
  - pause: 40s
  - chime: bowl
  - say: Breathe out slowly.
  - breathe: {inhale: 4, exhale: 6, cycles: 3, guide_tone: true}
  - pause: 12s
'''
prepared = pipeline.prepare(script.loads(text, filename="pieces.yaml"))
meter = loudness.Meter(44100, 2)
for block in mixed_blocks(prepared.timeline, prepared.sources, 0, 10**12, 30001):
    meter.feed(block)
forks = []
real_fork = os.fork
def counting_fork():
    pid = real_fork()
    if pid:
        forks.append(pid)
    return pid
os.fork = counting_fork
leans = []  # the forked workers read the speech through a store that keeps two clips
real_lean = pipeline.ClipStore.lean
pipeline.ClipStore.lean = lambda self, *a: leans.append(1) or real_lean(self, *a)
seen = []
one = gain_stage.measure_gain(prepared.timeline, prepared.sources, jobs=1)
two = gain_stage.measure_gain(
    prepared.timeline, prepared.sources, jobs=2, progress=lambda d, t: seen.append((d, t))
)
out = loudness.Meter(44100, 2)
for block in render.blocks(prepared.timeline, prepared.sources, gain=one):
    out.feed(block)
print(json.dumps({
    "one": one, "two": two, "whole_lufs": meter.integrated_lufs(), "forks": len(forks),
    "leans": len(leans),
    "out_lufs": out.integrated_lufs(),
    "progress": seen, "total": prepared.timeline.total_samples,
}))
"""


def test_loudness_pass_in_forked_pieces_gives_the_gain_of_one_pass(tmp_path):
    # In a fresh process: forking is used only where the process has a single thread.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE_IN_PIECES], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["total"] > 2 * gain_stage.MEASURE_PIECE_STEPS * SR // 10  # three pieces at least
    assert got["forks"] >= 2 and got["forks"] % 2 == 0  # two per pass
    assert got["two"] == got["one"]  # the same bits however the pieces are shared out
    assert got["leans"] >= 1  # the workers keep few clips of their own
    # The first pass gives the gain of one unbroken pass; the ceiling's correction moves it
    # by a little, to what puts the output on target.
    whole = 10 ** ((gain_stage.TARGET_LUFS - got["whole_lufs"]) / 20)
    assert abs(20 * math.log10(got["one"] / whole)) < 0.5
    assert abs(got["out_lufs"] - gain_stage.TARGET_LUFS) <= gain_stage.CEILING_TOLERANCE_LU
    done_samples = [d for d, _ in got["progress"]]
    assert done_samples == sorted(done_samples) and done_samples[-1] == got["total"]
    assert len(done_samples) >= 3


def test_meter_restarts_its_steps_only_between_steps():
    meter = loudness.Meter(SR, 2)
    meter.feed(np.ones((SR // 10, 2), dtype=np.float32))
    meter.restart_steps()
    assert meter.step_energies == []
    meter.feed(np.ones((100, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="between 100 ms steps"):
        meter.restart_steps()
