"""Good scripts load into exactly the model they describe; warnings are reported, not fatal."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from audio_engine import library, model, pipeline, script
from audio_engine.errors import ScriptError
from audio_engine.model import Breathe, Chime, Origin, Pause, Repeat, Say, Scan, Section, Stretch

HERE = Path(__file__).parent
GOOD = HERE / "scripts" / "good"
ROOT = HERE.parent
FORMAT_PAGE = Path("/work/shared/SESSION-FORMAT.md")

# A copy of the example in SESSION-FORMAT.md, used when the page is not beside the checkout.
PAGE_EXAMPLE = """\
format: 1
title: 4-7-8 breathing
language: en
description: Calm the nervous system with four slow 4-7-8 breaths.
tags: [breathing, short]
voice: {rate: 140, volume: 1.0}
background:
  - drone: {frequency: 110, volume: 0.06}
  - noise: {color: pink, volume: 0.03}
steps:
  - section: Settle in
  - say: Sit or lie down comfortably, and let your shoulders drop.
  - pause: 3s
  - say: Breathe out completely through your mouth.
    duration: 5s
  - section: Breathing
  - breathe: {inhale: 4, hold: 7, exhale: 8, cycles: 4, guide_tone: true}
  - chime: bowl
  - say: Notice how your body feels now.
"""


def page_examples() -> list[str]:
    if FORMAT_PAGE.is_file():
        blocks = re.findall(r"```yaml\n(.*?)```", FORMAT_PAGE.read_text(), re.S)
        if blocks:
            return blocks
    return [PAGE_EXAMPLE]


HEADER = "format: 1\ntitle: T\nlanguage: en\n"


def test_the_page_example_loads_as_written():
    for text in page_examples():
        session, diagnostics = script.checks(text, filename="breathing-478.en.yaml")
        assert diagnostics == ()
        assert session.id == "breathing-478"
        assert session.title == "4-7-8 breathing"
        assert session.voice == model.Voice(rate_wpm=140, volume=1.0)
        assert session.background == (
            model.Drone(frequency_hz=110.0, volume=0.06),
            model.Noise(color="pink", volume=0.03),
        )
        kinds = [type(s).__name__ for s in session.steps]
        assert kinds == [
            "Section", "Say", "Pause", "Say", "Section", "Breathe", "Chime", "Say",
        ]  # fmt: skip
        breathe = session.steps[5]
        assert (breathe.inhale_s, breathe.hold_s, breathe.exhale_s, breathe.rest_s) == (4, 7, 8, 0)
        assert breathe.cycles == 4 and breathe.guide_tone and not breathe.count
        assert session.steps[3].duration_s == 5.0
        assert session.steps[6] == Chime(
            "bowl", model.DEFAULT_CHIME_VOLUME, session.steps[6].origin
        )


@pytest.mark.parametrize(
    "path",
    sorted(GOOD.glob("*.yaml")) + sorted((ROOT / "sessions").glob("*.yaml")),
    ids=lambda p: p.name,
)
def test_good_scripts_load_without_diagnostics(path: Path):
    session, diagnostics = script.check(path)
    assert diagnostics == ()
    assert session is not None
    assert script.load(path) == session


def test_everything_builds_the_exact_model():
    path = GOOD / "everything.en.yaml"
    s = script.load(path)
    assert (s.id, s.language, s.format) == ("everything", "en-GB", 1)
    assert s.tags == ("test", "breathing", "stretch", "scan")
    assert s.voice == model.Voice(name="english", rate_wpm=150, volume=0.9)
    assert s.source == path.resolve()
    drone, binaural, noise, sound = s.background
    assert drone == model.Drone(110.0, 0.06, fade_in_s=2.0, fade_out_s=4.0, duck=0.4)
    assert binaural == model.Binaural(200.0, 6.5, 0.05)
    assert noise == model.Noise("brown", 0.03, duck=0.0)
    assert sound == model.SoundFile((GOOD / "rain.wav").resolve(), 0.2, loop=False, fade_in_s=0.5)
    assert sound.path.is_absolute()

    steps = s.steps
    f = str(path)
    assert steps[0] == Section("Start", Origin(f, 15, 5, "steps[0]"))
    assert steps[1] == Say("A bare line of text is spoken.", origin=Origin(f, 16, 5, "steps[1]"))
    assert steps[2] == Say(
        "This one lasts exactly ten seconds.", 10.0, origin=Origin(f, 17, 5, "steps[2]")
    )
    assert steps[3].voice == model.Voice(rate_wpm=110, volume=0.7)
    assert steps[4] == Pause(90.0, Origin(f, 21, 5, "steps[4]"))
    assert steps[5] == Chime("bell", 0.3, Origin(f, 22, 5, "steps[5]"))
    assert steps[6] == Breathe(
        inhale_s=4.0,
        exhale_s=6.0,
        hold_s=2.5,
        rest_s=2.0,
        cycles=3,
        cues=model.Cues(inhale="In", hold="", exhale="Out", rest="Rest"),
        count=True,
        guide_tone=True,
        chime_on_phase="soft",
        origin=Origin(f, 24, 5, "steps[6]"),
    )
    assert steps[7] == Stretch(
        hold_s=20.0,
        name="Neck",
        sides=("Tilt your head to the left.", "Tilt your head to the right."),
        countdown=5,
        rest_s=2.0,
        origin=Origin(f, 34, 5, "steps[7]"),
    )
    assert steps[8] == Stretch(hold_s=15.0, sides=("Reach up high.",), origin=steps[8].origin)
    assert steps[8].rest_s == 3.0 and steps[8].countdown is None
    assert steps[9] == Scan(
        "Let your {region} relax.",
        ("feet", "legs", "belly", "shoulders"),
        12.0,
        origin=Origin(f, 41, 5, "steps[9]"),
    )
    repeat = steps[10]
    assert isinstance(repeat, Repeat) and repeat.times == 2
    assert repeat.steps[0] == Say("Breathe.", origin=Origin(f, 47, 9, "steps[10].steps[0]"))
    inner = repeat.steps[1]
    assert inner.times == 2
    assert inner.steps == (Pause(1.0, Origin(f, 49, 17, "steps[10].steps[1].steps[0]")),)
    for value in (steps[6].inhale_s, steps[7].hold_s, steps[4].duration_s):
        assert type(value) is float


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("4", 4.0),
        ("2.5", 2.5),
        ('"90s"', 90.0),
        ('"2m"', 120.0),
        ('"1m30s"', 90.0),
        ('"500ms"', 0.5),
        ('"1h"', 3600.0),
        ('"1m 30s"', 90.0),
        ('"7"', 7.0),
        ("1:30", 90.0),  # YAML 1.1 reads this as 90 (base 60), as any YAML reader would
    ],
)
def test_durations(text: str, seconds: float):
    session = script.loads(HEADER + f"steps:\n  - pause: {text}\n")
    assert session.steps[0].duration_s == seconds


def test_defaults():
    s = script.loads(
        HEADER
        + "background:\n  - noise: {color: white, volume: 0.1}\n"
        + "steps:\n  - chime: soft\n  - breathe: {inhale: 4, exhale: 4}\n"
        + "  - stretch: {say: Stretch., hold: 5}\n"
    )
    assert s.id == "session" and s.description == "" and s.tags == ()
    assert s.voice == model.Voice()
    layer = s.background[0]
    assert (layer.fade_in_s, layer.fade_out_s, layer.duck) == (3.0, 5.0, 0.5)
    assert s.steps[0].volume == model.DEFAULT_CHIME_VOLUME
    b = s.steps[1]
    assert (b.hold_s, b.rest_s, b.cycles, b.count, b.guide_tone) == (0.0, 0.0, 1, False, False)
    assert b.cues == model.Cues() and b.chime_on_phase is None
    assert s.steps[2].rest_s == 3.0


def test_id_comes_from_the_file_name_up_to_its_first_dot(tmp_path: Path):
    path = tmp_path / "breathing-478.en.yaml"
    path.write_text(HEADER + "steps: [Hello]\n")
    assert script.load(path).id == "breathing-478"
    path2 = tmp_path / "calm.yaml"
    path2.write_text(HEADER + "steps: [Hello]\n")
    assert script.load(path2).id == "calm"
    assert script.loads(HEADER + "steps: [Hi]\n", filename="x/evening.nl.yaml").id == "evening"


def test_the_sound_file_may_come_from_the_sessions_folder(tmp_path: Path, monkeypatch):
    sessions = tmp_path / "mine"
    sessions.mkdir()
    (sessions / "rain.ogg").write_bytes(b"OggS")
    monkeypatch.setenv("RELAX_SESSIONS_DIR", str(sessions))
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    path = folder / "s.yaml"
    path.write_text(
        HEADER + "background:\n  - sound: {file: ../mine/rain.ogg, volume: 1}\nsteps: [Hi]\n"
    )
    # The script stage knows no folders of its own: the callers pass the sessions folder in.
    assert "outside" in script.check(path)[1][0].message
    allowed = (library.user_dir(),)
    assert (
        script.load(path, allowed_dirs=allowed).background[0].path
        == (sessions / "rain.ogg").resolve()
    )
    assert pipeline.load(str(path)).background[0].path == (sessions / "rain.ogg").resolve()


def test_nl_has_built_in_cues_and_de_needs_its_own():
    nl = "format: 1\ntitle: T\nlanguage: nl-BE\nsteps:\n  - breathe: {inhale: 4, exhale: 4}\n"
    assert script.loads(nl).language == "nl-BE"
    de = nl.replace("nl-BE", "de")
    assert script.checks(de)[0] is None
    # a silent phase or a phase of 0 s needs no cue
    ok = de.replace("exhale: 4}", "exhale: 4, rest: 0, cues: {inhale: Ein, exhale: ''}}")
    assert script.loads(ok).steps[0].cues == model.Cues(inhale="Ein", exhale="")


def test_merge_keys_and_aliases():
    s = script.load(GOOD / "anchors.yaml")
    assert s.steps[0].text == s.steps[1].text == "Langzaam."
    assert s.steps[0].voice == model.Voice(rate_wpm=100)
    assert s.steps[2].voice == model.Voice(rate_wpm=100, volume=0.5)


def test_explicit_core_tags_are_plain_data():
    s = script.loads(HEADER + "steps:\n  - say: !!str 42\n  - pause: !!float 2\n")
    assert s.steps[0].text == "42" and s.steps[1].duration_s == 2.0


def _warnings(text: str):
    session, diagnostics = script.checks(text)
    assert session is not None
    return [d for d in diagnostics if d.severity == "warning"]


def test_warning_for_a_pause_over_ten_minutes():
    (w,) = _warnings(HEADER + "steps:\n  - pause: 10m1s\n")
    assert (w.line, w.col, w.path) == (5, 12, "steps[0].pause")
    assert "over 10 minutes" in w.message
    assert str(w).startswith("<string>:5:12: warning: steps[0].pause: ")
    assert _warnings(HEADER + "steps:\n  - pause: 10m\n") == []


def test_warning_for_a_session_over_two_hours():
    (w,) = _warnings(HEADER + "steps:\n  - repeat: 13\n    steps:\n      - pause: 10m\n")
    assert (w.line, w.path) == (5, "steps")
    assert "2 h 10 min" in w.message and "over 2 hours" in w.message
    assert _warnings(HEADER + "steps:\n  - repeat: 12\n    steps:\n      - pause: 10m\n") == []


def test_warning_for_count_on_short_phases():
    (w,) = _warnings(HEADER + "steps:\n  - breathe: {inhale: 1.5, exhale: 4, count: true}\n")
    assert (w.line, w.col, w.path) == (5, 46, "steps[0].breathe.count")
    assert "inhale 1.5 s" in w.message and "shorter than 2 s" in w.message
    assert _warnings(HEADER + "steps:\n  - breathe: {inhale: 2, exhale: 4, count: true}\n") == []
    assert _warnings(HEADER + "steps:\n  - breathe: {inhale: 1, exhale: 4}\n") == []


def test_limits_at_their_edges_are_allowed():
    edge = (
        "format: 1\ntitle: " + "t" * 120 + "\nlanguage: en\nsteps:\n"
        "  - say: " + "a" * 2000 + "\n"
        "  - repeat: 1000\n    steps: [{pause: 1}]\n"
        "  - breathe: {inhale: 0.001, exhale: 1, cycles: 1000}\n"
        "  - stretch: {say: Hold., hold: 5, countdown: 5}\n"
        "  - say: Hi\n    voice: {rate: 80, volume: 0}\n"
        "  - say: Hi\n    voice: {rate: 300, volume: 1}\n"
        "background:\n  - binaural: {carrier: 2000, beat: 0.5, volume: 0}\n"
        "  - binaural: {carrier: 20, beat: 40, volume: 1, duck: 1}\n"
        "  - drone: {frequency: 20, volume: 1, duck: 0, fade_in: 0, fade_out: 0}\n"
    )
    session, diagnostics = script.checks(edge)
    assert [str(d) for d in diagnostics] == []
    assert session.steps[2].cycles == 1000
    session, _ = script.checks(HEADER + "steps:\n  - pause: 4h\n")
    assert session is not None  # exactly 4 h is allowed (with a warning)


def test_loading_is_deterministic():
    path = GOOD / "everything.en.yaml"
    assert script.load(path) == script.load(path)


def test_breathe_stretch_and_scan_take_a_step_voice():
    session = script.loads(
        textwrap.dedent(
            """
            format: 1
            title: Voices
            language: en
            steps:
              - breathe: {inhale: 2, exhale: 2}
                voice: {rate: 110}
              - stretch: {say: Reach up., hold: 5}
                voice: {volume: 0.5}
              - scan: {prompt: "Notice your {region}.", regions: [feet], dwell: 4}
                voice: {name: en}
            """
        )
    )
    breathe, stretch, scan = session.steps
    assert breathe.voice == model.Voice(rate_wpm=110)
    assert stretch.voice == model.Voice(volume=0.5)
    assert scan.voice == model.Voice(name="en")


def test_texts_with_nothing_to_say_are_errors_at_their_position():
    text = textwrap.dedent(
        """\
        format: 1
        title: Punctuation
        language: en
        steps:
          - say: "..."
          - breathe: {inhale: 2, exhale: 2, cues: {inhale: "!", exhale: ""}}
          - stretch: {sides: [Left., "--"], hold: 3}
          - say: "Fine, 2."
        """
    )
    with pytest.raises(ScriptError) as info:
        script.loads(text, filename="p.yaml")
    found = [(d.line, d.path) for d in info.value.diagnostics if d.severity == "error"]
    assert found == [
        (5, "steps[0].say"),
        (6, "steps[1].breathe.cues.inhale"),
        (7, "steps[2].stretch.sides[1]"),
    ]
    assert all("nothing to say" in d.message for d in info.value.diagnostics)


def test_an_empty_tags_list_is_no_tags():
    session = script.loads("format: 1\ntitle: T\nlanguage: en\ntags: []\nsteps: [Hi]\n")
    assert session.tags == ()
