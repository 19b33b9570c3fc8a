"""`relax info`'s outline: where the time goes (pauses, chime rings, silences), to the sample.

Clip lengths come from a table (a fake voice): the outline is arithmetic on the timeline. The
real voice's outline is run in test_plot.py and test_engine.py.
"""

from __future__ import annotations

from audio_engine import script, synth, timeline
from audio_engine.cli.info import outline
from audio_engine.model import SAMPLE_RATE

SR = SAMPLE_RATE


class Lengths(dict):
    def __missing__(self, utterance):
        return int(1.5 * SR)


def test_the_outline_shows_pauses_chime_rings_and_silences():
    text = (
        "format: 1\ntitle: T\nlanguage: en\nsteps:\n"
        "  - chime: bell\n"
        "  - say: Hello.\n    duration: 6s\n"
        "  - pause: 3s\n"
        "  - Bye.\n"
        "  - chime: soft\n"
    )
    tl = timeline.compile(script.loads(text, filename="t.en.yaml"), Lengths())
    lines = outline(tl).splitlines()[3:]
    bell = synth.chime_samples("bell") / SR
    soft = synth.chime_samples("soft") / SR

    def clock(s: float) -> str:
        minutes, secs = divmod(s, 60)
        return f"{int(minutes):2d}:{secs:06.3f}"

    assert lines == [
        f"{clock(0)}     chime bell, rings {bell:.2f} s",
        f'{clock(bell)}     say   "Hello."  (1.50 s, 150 wpm)',
        f"{clock(bell + 1.5)}     (silent 4.50 s)",  # the rest of the say's 6 s
        f"{clock(bell + 6)}     pause 3.00 s",
        f'{clock(bell + 9)}     say   "Bye."  (1.50 s, 150 wpm)',
        f"{clock(bell + 10.5)}     chime soft, rings {soft:.2f} s",
        f"{clock(bell + 10.5 + soft)}  end",
    ]


def test_silences_under_a_second_are_not_listed():
    text = "format: 1\ntitle: T\nlanguage: en\nsteps:\n  - say: Hi.\n    duration: 2.4s\n  - Ho.\n"
    tl = timeline.compile(script.loads(text, filename="t.en.yaml"), Lengths())
    assert not any("silent" in line for line in outline(tl).splitlines())
