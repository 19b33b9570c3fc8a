"""`relax info --plot`: the timeline picture, checked by its pixels.

The timeline is compiled from a script with clip lengths from a table (a fake voice: these tests
are about where things are drawn); one test runs the command with the real voice.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from audio_engine import plot, script, timeline  # noqa: E402
from audio_engine.model import SAMPLE_RATE  # noqa: E402

SR = SAMPLE_RATE


class Lengths(dict):
    def __missing__(self, utterance):
        return int(2.0 * SR)  # every line 2 s


SCRIPT = """format: 1
title: Picture
language: en
background:
  - drone: {frequency: 110, volume: 0.05, fade_in: 10s, fade_out: 10s}
  - binaural: {carrier: 200, beat: 6, volume: 0.05, duck: 0}
steps:
  - section: One
  - say: Hello there.
    duration: 10s
  - pause: 60s
  - chime: bowl
  - section: Two
  - breathe: {inhale: 10, hold: 10, exhale: 10, cues: {inhale: "", hold: "", exhale: ""}}
  - pause: 60s
"""


@pytest.fixture(scope="module")
def drawn():
    session = script.loads(SCRIPT, filename="picture.en.yaml")
    tl = timeline.compile(session, Lengths())
    return tl, plot.draw(tl)


def pixel(picture, x, y):
    return tuple(picture.surface.get_at((int(x), int(y))))[:3]


def mid_y(picture, row):
    x, y, w, h = picture.rows[row]
    return y + h // 2


def test_rows_for_every_part_and_every_layer(drawn):
    tl, picture = drawn
    assert list(picture.rows) == ["sections", "voice", "breathing", "chimes", "layer 0", "layer 1"]
    assert picture.layer_rows == ["layer 0", "layer 1"]
    assert picture.surface.get_width() == plot.WIDTH
    # the time axis: the last pixel column of the plot is the session's end
    assert picture.x_of(tl.total_samples) == plot.WIDTH - plot.RIGHT
    assert picture.x_of(0) == plot.LEFT


def test_a_chime_is_marked_at_its_start(drawn):
    tl, picture = drawn
    (chime,) = [e for e in tl.events if e.kind == "chime"]
    assert chime.start_sample == 70 * SR
    y = mid_y(picture, "chimes")
    x = picture.x_of(chime.start_sample)
    assert pixel(picture, x, y) == plot.CHIME_MARK
    assert pixel(picture, x - 2, y) != plot.CHIME_MARK  # nothing before it
    # its tail fades over how long it rings (6 s for the bowl), at the bottom of the row
    bottom = picture.rows["chimes"][1] + picture.rows["chimes"][3] - 2
    assert pixel(picture, picture.x_of(chime.start_sample + 2 * SR), bottom) == plot.CHIME_TAIL
    assert pixel(picture, picture.x_of(chime.end_sample + 2 * SR), bottom) == plot.ROW_BACK


def test_spoken_lines_phases_and_sections_where_they_are(drawn):
    tl, picture = drawn
    y = mid_y(picture, "voice")
    assert pixel(picture, picture.x_of(1 * SR), y) == plot.VOICE  # the 2 s line
    assert pixel(picture, picture.x_of(33 * SR), y) == plot.ROW_BACK  # the pause
    y = mid_y(picture, "breathing")
    start = tl.chapters[1].start_sample  # the breathing starts with the second chapter
    for k, phase in enumerate(("inhale", "hold", "exhale")):
        assert (
            pixel(picture, picture.x_of(start + (10 * k + 5) * SR), y) == plot.PHASE_COLORS[phase]
        )
    assert pixel(picture, picture.x_of(start + 60 * SR), y) == plot.ROW_BACK
    y = mid_y(picture, "sections")
    assert pixel(picture, picture.x_of(40 * SR), y) == plot.SECTION_COLORS[0]
    assert (
        pixel(picture, picture.x_of(tl.chapters[1].start_sample + 60 * SR), y)
        == (plot.SECTION_COLORS[1])
    )


def _height(picture, row, sample) -> int:
    """How many pixels of the layer's row are painted (dark) at `sample`'s column."""
    x, y, w, h = picture.rows[row]
    column = picture.x_of(sample)
    color = plot.LAYER_COLORS[type(drawn_layer(picture, row))]
    return sum(pixel(picture, column, yy) == color for yy in range(y, y + h))


def drawn_layer(picture, row):
    return picture.layers[picture.layer_rows.index(row)]


def test_layers_show_fades_and_ducking(drawn):
    tl, picture = drawn
    inner = plot.LAYER_H - 4
    full = _height(picture, "layer 0", 40 * SR)  # in the pause: full level
    assert abs(full - inner) <= 1
    assert _height(picture, "layer 0", 1 * SR) <= 1  # 1 s into a 10 s fade in: 2.4 %
    assert _height(picture, "layer 0", tl.total_samples - 1) <= 1  # faded out
    # the binaural layer does not duck (duck: 0) and fades in over its default 3 s
    assert abs(_height(picture, "layer 1", 1 * SR) - round(inner * 0.25)) <= 1  # sin^2(pi/6)


def test_ducking_is_drawn_under_a_line_of_speech():
    text = SCRIPT.replace("fade_in: 10s", "fade_in: 0").replace(
        "  - pause: 60s\n  - chime",
        "  - pause: 30s\n  - Another line here.\n  - pause: 30s\n  - chime",
    )
    tl = timeline.compile(script.loads(text, filename="p.en.yaml"), Lengths())
    picture = plot.draw(tl)
    line = [e for e in tl.events if e.text == "Another line here."][0]
    inner = plot.LAYER_H - 4
    during = _height(picture, "layer 0", line.start_sample + SR)
    assert abs(during - round(inner * 0.5)) <= 1  # duck 0.5
    assert abs(_height(picture, "layer 1", line.start_sample + SR) - inner) <= 1


def test_an_hour_is_drawn_in_the_same_width_with_every_chime(tmp_path: Path):
    text = (
        "format: 1\ntitle: Hour\nlanguage: en\nbackground:\n  - noise: {color: pink, volume: 0.02}\n"
        "steps:\n  - repeat: 12\n    steps:\n      - chime: soft\n      - pause: 5m\n"
    )
    tl = timeline.compile(script.loads(text, filename="h.en.yaml"), Lengths())
    assert 60 * 60 * SR < tl.total_samples < 61 * 60 * SR
    path = tmp_path / "hour.png"
    picture = plot.save(tl, path)
    assert plot.tick_step_s(tl.duration_s) == 300  # 5-minute ticks: 13 of them
    import pygame

    loaded = pygame.image.load(str(path))
    assert loaded.get_size() == picture.surface.get_size()
    y = mid_y(picture, "chimes")
    for e in (e for e in tl.events if e.kind == "chime"):
        assert tuple(loaded.get_at((picture.x_of(e.start_sample), y)))[:3] == plot.CHIME_MARK
    assert [p.name for p in tmp_path.iterdir()] == ["hour.png"]  # no temporary file left


def test_relax_info_plot_with_the_real_voice(tmp_path: Path):
    out = tmp_path / "b.png"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    result = subprocess.run(
        [sys.executable, "-m", "audio_engine", "info", "breathing-478", "--plot", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"{out}: the timeline, 1600x" in result.stderr
    assert "pause 3.00 s" in result.stdout
    import pygame

    picture = pygame.image.load(str(out))
    # the session opens with a chime: its mark is the first column of the chimes row (the
    # fourth row under the title)
    y = plot.TITLE_H + 3 * (plot.ROW_H + plot.GAP) + plot.ROW_H // 2
    assert tuple(picture.get_at((plot.LEFT, y)))[:3] == plot.CHIME_MARK
    assert tuple(picture.get_at((plot.LEFT - 5, y)))[:3] == plot.BACKGROUND
    bad = subprocess.run(
        [sys.executable, "-m", "audio_engine", "info", "breathing-478", "--plot", "x.jpg"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 2 and "give a .png file" in bad.stderr
