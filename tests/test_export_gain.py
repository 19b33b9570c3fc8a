"""The loudness gain of an export: always the measure (whatever a player estimated before), and
on target after the soft ceiling, read back by an independent meter (ffmpeg's ebur128)."""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm
import pytest
import soundfile

from audio_engine import export, pipeline, render, script
from tests import _ffmpeg

RATE = 44100

# Many lines (a cold start estimates the gain rather than measure it) over a steady background,
# so the estimate is close to the measure but not equal: what an export used to keep.
MANY_LINES = "format: 1\nid: many\ntitle: Many lines\nlanguage: en\n" + (
    "background:\n  - noise: {color: pink, volume: 0.04}\n  - drone: {frequency: 110, volume: 0.05}\n"
    "steps:\n"
    + "".join(
        f"  - say: Line {i}, breathe in slowly and let the {part} soften.\n  - pause: 4s\n"
        for i, part in enumerate(["jaw", "neck", "shoulders", "arms", "hands", "chest"] * 7, 1)
    )
)


def _export_wav(session, path) -> bytes:
    prepared = pipeline.prepare(session)
    gain = pipeline.gain(prepared)
    export.export(prepared, path, gain=gain, transcript=False)
    return path.read_bytes()


@pytest.mark.parametrize("source", ["many-lines", "desk-stretches.en"])
def test_two_cold_plays_then_an_export_write_the_bytes_of_a_cold_export(
    tmp_path, monkeypatch, source
):
    if source == "many-lines":
        path = tmp_path / "many.en.yaml"
        path.write_text(MANY_LINES)
        load = lambda: script.load(path)  # noqa: E731
    else:
        name, language = source.split(".")
        load = lambda: pipeline.load(name, language)  # noqa: E731
    # Two cold plays, as `relax play` starts them (the growing session, its gain as the player
    # asks for it), from an empty cache; then an export with the cache they left.
    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "played"))
    played_gains = []
    for _ in range(2):
        growing = pipeline.Growing(load())
        try:
            played_gains.append(growing.gain())
            growing.prepared()
        finally:
            growing.close()
    after_plays = _export_wav(load(), tmp_path / "after-plays.wav")
    # A cold export from another empty cache.
    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "fresh"))
    prepared = pipeline.prepare(load())
    measured = pipeline.gain(prepared)
    cold = _export_wav(load(), tmp_path / "cold.wav")
    assert played_gains[0] == played_gains[1], "the second play starts with the first's gain"
    assert played_gains[0] != measured, "the plays must have started with an estimate"
    print(f"estimate {20 * math.log10(played_gains[0] / measured):+.3f} dB off the measure")
    assert after_plays == cold


# The audit's case: a background of mostly low hum (K-weighting hears little of 30 Hz), which the
# gain scales up until the limiter turns down thousands of samples; and a harsher one.
HUM = """\
format: 1
id: {id}
title: Low hum
language: en
background:
  - drone: {{frequency: {frequency}, volume: {volume}}}
steps:
  - section: Hum
  - say: Listen to the low hum.
  - pause: 40s
  - say: That is all.
"""


@pytest.fixture(scope="module", params=[("hum", 30, 0.5), ("harsh", 20, 0.2)], ids=lambda p: p[0])
def hum(request, tmp_path_factory):
    name, frequency, volume = request.param
    folder = tmp_path_factory.mktemp(name)
    path = folder / f"{name}.en.yaml"
    path.write_text(HUM.format(id=name, frequency=frequency, volume=volume))
    return pipeline.prepare(script.load(path)), folder


def test_the_ceiling_works_hard_on_the_hum(hum):
    prepared, _ = hum
    gain = pipeline.gain(prepared)
    out = np.concatenate(list(render.blocks(prepared.timeline, prepared.sources, gain=gain)))
    free = render.blocks(prepared.timeline, prepared.sources, gain=gain, ceiling_dbtp=20.0)
    turned_down = int(np.sum(np.any(out != np.concatenate(list(free)), axis=1)))
    assert turned_down > 5000, turned_down


@pytest.mark.parametrize("name", sorted(export.FORMATS))
def test_a_hum_pushed_into_the_ceiling_still_exports_at_minus_16_lufs(hum, name):
    prepared, folder = hum
    form = export.FORMATS[name]
    gain = pipeline.gain(prepared, lossy_quality=export.lossy_quality(form))
    path = export.export(prepared, folder / f"out.{name}", gain=gain, transcript=False)
    # Two independent meters on the decoded file: ffmpeg (its decoder, its ebur128 filter),
    # pyloudnorm (libsndfile's decoder); the render's own meter is not asked.
    lufs, peak = _ffmpeg.r128(path)
    assert lufs == pytest.approx(-16.0, abs=0.3)
    assert peak <= render.TRUE_PEAK_DBTP
    data, rate = soundfile.read(path)
    assert pyloudnorm.Meter(rate).integrated_loudness(data) == pytest.approx(-16.0, abs=0.3)


def test_wav_and_flac_use_the_players_gain_and_lossy_files_their_own(hum):
    prepared, _ = hum
    player = pipeline.gain(prepared)
    growing = pipeline.Growing(prepared.session)
    try:
        assert growing.gain() == player  # measured: the player reads it from the cache
    finally:
        growing.close()
    assert export.lossy_quality(export.FORMATS["wav"]) is None
    assert export.lossy_quality(export.FORMATS["flac"]) is None
    lossy = pipeline.gain(prepared, lossy_quality=5.0)
    assert lossy > player  # the encoders' lower ceiling takes more: their gain gives it back
