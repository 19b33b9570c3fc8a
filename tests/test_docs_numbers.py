"""docs/authoring.md says what the program does: its numbers are measured from the program.

The table "Numbers at a glance" is read row by row; each row's value is worked out here from what
the program does (a compiled timeline, the checker's answers, the mix's envelopes), and every row
must have its check. The prose facts (cue words, counting, stretch timing, chapters in repeats,
sound files, units, which voice wins) have their own tests below, read from the page where the
page lists them.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audio_engine import assets, render, script, synth, timeline, tts
from audio_engine.cli import info, validate
from audio_engine.errors import TimingError
from audio_engine.model import SAMPLE_RATE

SR = SAMPLE_RATE
DOC = (Path(__file__).parent.parent / "docs" / "authoring.md").read_text(encoding="utf-8")
HEADER = "format: 1\ntitle: T\nlanguage: en\n"


class Lengths(dict):
    """A fake voice: `fixed[text]` samples, else 0.2 s (timing arithmetic only)."""

    def __init__(self, **fixed):
        super().__init__()
        self.fixed = fixed

    def __missing__(self, utterance):
        return self.fixed.get(utterance.text, int(0.2 * SR))


def compiled(steps: str, lengths=None, background: str = "") -> timeline.Timeline:
    session = script.loads(HEADER + background + "steps:\n" + steps, filename="d.en.yaml")
    return timeline.compile(session, lengths if lengths is not None else Lengths())


def table() -> dict[str, str]:
    part = DOC.split("## Numbers at a glance", 1)[1]
    rows = {}
    for line in part.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 2 and cells[0] not in ("what", "---"):
            rows[cells[0]] = cells[1]
    return rows


def seconds(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f} s"


def _chime(name: str) -> str:
    return seconds(compiled(f"  - chime: {name}\n").total_samples / SR)


def _chime_volume(steps: str) -> str:
    (chime, *_) = [e for e in compiled(steps).events if e.kind == "chime"]
    return f"{chime.volume:g}"


def _cue_room() -> str:
    # the cue with counting: fits at exactly 1 s, not one sample more
    steps = "  - breathe: {inhale: 4, exhale: 4, count: true}\n"
    compiled(steps, Lengths(**{"Breathe in": SR}))
    with pytest.raises(TimingError):
        compiled(steps, Lengths(**{"Breathe in": SR + 1}))
    return "1 s"


def _count_at() -> str:
    tl = compiled("  - breathe: {inhale: 5.5, exhale: 4, count: true}\n")
    inhale = [e for e in tl.events if e.kind == "speech" and e.start_sample < 5.5 * SR]
    at = {int(e.text): e.start_sample for e in inhale if e.text.isdigit()}
    assert at and all(at[k] == (k - 1) * SR for k in at)
    return "k - 1 s"


def _counts_of_5_5() -> str:
    tl = compiled("  - breathe: {inhale: 5.5, exhale: 4, count: true}\n")
    texts = [e.text for e in tl.events if e.kind == "speech" and e.start_sample < 5.5 * SR]
    return ", ".join(texts[1:])


def _countdown_room() -> str:
    steps = "  - stretch: {say: Reach., hold: 5, countdown: 3}\n"
    compiled(steps, Lengths(**{"2": SR}))
    with pytest.raises(TimingError):
        compiled(steps, Lengths(**{"2": SR + 1}))
    return "1 s"


def _stretch(rest: bool) -> str:
    tl = compiled("  - stretch: {sides: [Left., Right.], hold: 10}\n  - Next.\n")
    left, right, after = (e for e in tl.events if e.kind == "speech")
    if rest:
        return f"{(right.start_sample - (left.end_sample + 10 * SR)) / SR:g} s"
    return f"{(after.start_sample - (right.end_sample + 10 * SR)) / SR:g} s"


def _layer():
    tl = compiled(
        "  - Hello.\n", background="background:\n  - drone: {frequency: 110, volume: 1}\n"
    )
    return tl.background[0]


def _duck_ramp() -> str:
    tl = compiled(
        "  - pause: 2\n  - Hello.\n  - pause: 2\n",
        background="background:\n  - drone: {frequency: 110, volume: 1, fade_in: 0, fade_out: 0}\n",
    )
    (line,) = [e for e in tl.events if e.kind == "speech"]
    points = np.arange(tl.total_samples)
    gain = render.layer_gain_at(tl, tl.background[0], points)
    # the last sample at full level before the line, the first one after it
    down = line.start_sample - np.flatnonzero(gain[: line.start_sample] == 1.0)[-1]
    up = line.end_sample + np.flatnonzero(gain[line.end_sample :] == 1.0)[0] - line.end_sample
    assert down == up and gain[line.start_sample] == pytest.approx(0.5)
    return f"{down / SR:g} s"


def _duck_merge() -> str:
    def dips_back_up(gap_samples: int) -> bool:
        lengths = Lengths(A=SR, B=SR)
        tl = compiled(
            f"  - pause: 2\n  - A\n  - pause: {gap_samples / SR!r}\n  - B\n  - pause: 2\n",
            lengths,
            background="background:\n  - noise: {color: pink, volume: 1, fade_in: 0, fade_out: 0}\n",
        )
        a, b = (e for e in tl.events if e.kind == "speech")
        between = np.arange(a.end_sample, b.start_sample)
        return render.layer_gain_at(tl, tl.background[0], between).max() == pytest.approx(1.0)

    gap = int(2 * render.DUCK_RAMP_S * SR)
    assert not dips_back_up(gap - 1) and dips_back_up(gap + 1)
    return f"{gap / SR:g} s"


def _crossfade() -> str:
    rng = np.random.default_rng(3)
    m = SR  # a 1 s file
    data = rng.standard_normal((m, 2)).astype(np.float32)
    out = synth.sound_block(data, True, 0, 2 * m)
    probe = m // 2  # well after any seam: the second pass plays data[probe] at period + probe
    (period,) = [p for p in range(1, m) if np.array_equal(out[p + probe], data[probe])]
    return f"{(m - period) * 1000 / SR:g} ms"


def _sound_max(tmp_path: Path) -> str:
    rate = 1000  # a low rate keeps the file small: the limit is in seconds
    limit_s = assets.MAX_SOUND_S
    ok, long = tmp_path / "ok.wav", tmp_path / "long.wav"
    soundfile.write(ok, np.zeros(limit_s * rate, dtype=np.int16), rate)
    soundfile.write(long, np.zeros(limit_s * rate + 1, dtype=np.int16), rate)
    assert len(assets.load_sound(ok)) == limit_s * SR
    with pytest.raises(assets.AssetError, match="limit"):
        assets.load_sound(long)
    return f"{limit_s // 60} min"


def _warns(steps: str, about: str = "") -> bool:
    session, found = script.checks(HEADER + "steps:\n" + steps)
    return any(d.severity == "warning" and about in d.message for d in found)


def _errs(steps: str) -> bool:
    return script.checks(HEADER + "steps:\n" + steps)[0] is None


def _threshold(check, below: str, above: str, value: str) -> str:
    assert not check(below) and check(above), (below, above)
    return value


def _shortest() -> str:
    half = 0.5 / SR
    assert _errs(f"  - pause: {half!r}\n") and not _errs(f"  - pause: {half * 1.0001!r}\n")
    return f"1/{int(round(1 / half))} s"


def _count_warn() -> str:
    return _threshold(
        _warns,
        "  - breathe: {inhale: 2, exhale: 2, count: true}\n",
        "  - breathe: {inhale: 1.99, exhale: 2, count: true}\n",
        "2 s",
    )


def _text_max() -> str:
    return _threshold(
        _errs,
        f"  - {'a' * 2000}\n",
        f"  - {'a' * 2001}\n",
        f"{script._check.MAX_TEXT_CHARS} characters",
    )


CHECKS = {
    "sample rate: every time is counted in samples at": lambda tmp: f"{SR} Hz",
    "a duration must be longer than": lambda tmp: _shortest(),
    "a `bell` chime step lasts": lambda tmp: _chime("bell"),
    "a `bowl` chime step lasts": lambda tmp: _chime("bowl"),
    "a `soft` chime step lasts": lambda tmp: _chime("soft"),
    "a chime's default `volume`": lambda tmp: _chime_volume("  - chime: soft\n"),
    "the volume of a `chime_on_phase` chime": lambda tmp: _chime_volume(
        "  - breathe: {inhale: 2, exhale: 2, chime_on_phase: bell}\n"
    ),
    "with `count: true`, the cue (count 1) has": lambda tmp: _cue_room(),
    "count k is spoken after the phase starts, at": lambda tmp: _count_at(),
    "a 5.5 s phase counts": lambda tmp: _counts_of_5_5(),
    "a countdown number has": lambda tmp: _countdown_room(),
    "a stretch's default `rest` between sides": lambda tmp: _stretch(rest=True),
    "rest after a stretch's last side": lambda tmp: _stretch(rest=False),
    "default `fade_in`": lambda tmp: f"{_layer().fade_in_s:g} s",
    "default `fade_out`": lambda tmp: f"{_layer().fade_out_s:g} s",
    "default `duck`": lambda tmp: f"{_layer().duck:g}",
    "ducking ramp, down and up": lambda tmp: _duck_ramp(),
    "lines closer than this stay ducked between": lambda tmp: _duck_merge(),
    "sound file loop crossfade": lambda tmp: _crossfade(),
    "a sound file lasts at most": _sound_max,
    "a pause gets a warning over": lambda tmp: _threshold(
        _warns, "  - pause: 600\n", "  - pause: 600.5\n", "10 min"
    ),
    "a session gets a warning over": lambda tmp: _threshold(
        lambda steps: _warns(steps, "over 2 hours"), "  - pause: 7200\n", "  - pause: 7201\n", "2 h"
    ),
    "a session lasts at most": lambda tmp: _threshold(
        _errs, "  - pause: 14400\n", "  - pause: 14401\n", "4 h"
    ),
    "`count: true` warns on phases shorter than": lambda tmp: _count_warn(),
    "a text is at most": lambda tmp: _text_max(),
    "`relax validate --watch` looks at the file every": lambda tmp: f"{validate.WATCH_POLL_S:g} s",
    "`relax info` lists silences of at least": lambda tmp: f"{info.SILENCE_MIN_S:g} s",
}


def test_every_row_of_the_table_has_its_check():
    assert set(table()) == set(CHECKS)


@pytest.mark.parametrize("what", sorted(CHECKS))
def test_the_docs_number_is_the_programs(what: str, tmp_path: Path):
    assert table()[what] == CHECKS[what](tmp_path)


def test_chime_lengths_in_the_chime_section_match():
    for name in ("bell", "bowl", "soft"):
        assert f"`{name}` {_chime(name)}" in DOC


def test_the_cue_word_table_is_the_programs():
    part = DOC.split("Built-in cue words", 1)[1].split("\n\n", 2)[1]
    rows = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in part.splitlines()
        if line.startswith("| `")
    ]
    assert [r[0] for r in rows] == ["`en`", "`nl`"]
    for language, *words in rows:
        session = script.loads(
            f"format: 1\ntitle: T\nlanguage: {language.strip('`')}\nsteps:\n"
            "  - breathe: {inhale: 1, hold: 1, exhale: 1, rest: 1}\n"
        )
        tl = timeline.compile(session, Lengths())
        assert [e.text for e in tl.events if e.kind in timeline.PHASE_KINDS] == words


def test_counting_as_the_page_says():
    # "a 4 s phase counts 2, 3, 4 (at 1, 2 and 3 s)"
    assert "a 4 s phase\ncounts 2, 3, 4 (at 1, 2 and 3 s)" in DOC
    tl = compiled("  - breathe: {inhale: 4, exhale: 4, count: true}\n")
    counts = [(e.text, e.start_sample) for e in tl.events if e.kind == "speech"][:4]
    assert counts == [("Breathe in", 0), ("2", SR), ("3", 2 * SR), ("4", 3 * SR)]


def test_chime_on_phase_rings_at_every_phase_the_first_included():
    assert "the first phase of the first cycle included" in DOC
    tl = compiled("  - breathe: {inhale: 2, hold: 1, exhale: 3, cycles: 2, chime_on_phase: soft}\n")
    chimes = [e.start_sample for e in tl.events if e.kind == "chime"]
    phases = [e.start_sample for e in tl.events if e.kind in timeline.PHASE_KINDS]
    assert chimes == phases and chimes[0] == 0 and len(chimes) == 6


def test_the_stretch_example_lasts_what_the_page_says():
    # "lasts speech(A) + 20 s + 3 s + speech(B) + 20 s"
    assert "speech(A) + 20 s + 3 s +\nspeech(B) + 20 s" in DOC
    lengths = Lengths(A=SR // 3, B=SR // 7)
    tl = compiled("  - stretch: {name: S, sides: [A, B], hold: 20, rest: 3}\n", lengths)
    assert tl.total_samples == SR // 3 + 20 * SR + 3 * SR + SR // 7 + 20 * SR
    assert [(c.title, c.start_sample) for c in tl.chapters] == [("S", 0)]


def test_a_section_in_a_repeat_is_a_chapter_on_every_pass():
    assert 'gives three chapters called "Round"' in DOC
    tl = compiled("  - repeat: 3\n    steps:\n      - section: Round\n      - pause: 2\n")
    assert [(c.title, c.start_sample) for c in tl.chapters] == [
        ("Round", 0),
        ("Round", 2 * SR),
        ("Round", 4 * SR),
    ]


def test_units_are_case_sensitive():
    assert "Units are lower-case and case-sensitive" in DOC
    for good, bad in (("4s", "4S"), ("2m", "2M"), ("500ms", "500MS"), ("1h", "1H")):
        assert not _errs(f'  - pause: "{good}"\n')
        _, found = script.checks(HEADER + f'steps:\n  - pause: "{bad}"\n')
        assert f'units are lower-case (h, m, s, ms), e.g. "{good}"' in found[0].message


def _sound_session(tmp_path: Path, data: np.ndarray, rate: int, loop: bool = True):
    soundfile.write(tmp_path / "s.wav", data, rate, subtype="FLOAT")
    path = tmp_path / "x.en.yaml"
    path.write_text(
        HEADER + "background:\n  - sound: {file: s.wav, volume: 1, fade_in: 0, fade_out: 0, "
        f"duck: 0, loop: {str(loop).lower()}}}\nsteps:\n  - pause: 3\n"
    )
    session = script.load(path)
    tl = timeline.compile(session, Lengths())
    sources = render.Sources(
        speech={},
        sounds={session.background[0].path: assets.load_sound(session.background[0].path)},
    )
    return np.concatenate(list(render.blocks(tl, sources, gain=1.0)))


def test_a_sound_file_starts_at_the_first_sample_mono_in_both_ears(tmp_path: Path):
    assert "starts at the session's first sample" in DOC and "A mono file plays the same" in DOC
    tone = (0.1 * np.sin(2 * np.pi * 441 * np.arange(SR) / SR)).astype(np.float32)
    out = _sound_session(tmp_path, tone, SR, loop=False)
    assert np.array_equal(out[:, 0], out[:, 1])
    assert np.allclose(out[:SR, 0], tone, atol=1e-6)  # from sample 0, at its own level
    assert np.abs(out[SR + 10 :]).max() == 0.0  # played once, then silent


def test_a_sound_file_at_another_rate_keeps_its_pitch_and_speed(tmp_path: Path):
    assert "resampled once" in DOC
    rate = 48000
    tone = (0.1 * np.sin(2 * np.pi * 1000 * np.arange(rate) / rate)).astype(np.float32)
    out = _sound_session(tmp_path, tone, rate, loop=False)
    sounding = np.flatnonzero(np.abs(out[:, 0]) > 1e-3)
    assert abs(sounding[-1] + 1 - SR) <= 5  # 1 s at 48 kHz lasts 1 s at 44.1 kHz
    spectrum = np.abs(np.fft.rfft(out[: SR // 2, 0]))
    assert abs(np.argmax(spectrum) * SR / (SR // 2) - 1000) <= 2


def test_which_voice_wins_as_the_table_says():
    part = DOC.split("With espeak-ng:", 1)[1].split("\n\n", 2)[1]
    rows = [
        [c.strip().strip("`").split(" ")[0].strip("`") for c in line.strip().strip("|").split("|")]
        for line in part.splitlines()
        if line.strip().startswith("| `") and "`name:`" not in line
    ]
    assert len(rows) == 5
    for name, language, voice in rows:
        assert tts.voice_for(language, name, "espeak").id == voice, (name, language)


def test_the_tick_steps_the_page_lists():
    assert "ticks every 1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30 or 60 min" in DOC
    from audio_engine import plot

    assert plot.TICK_STEPS_S == (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
    assert plot.MAX_TICKS == 16 and "at most 16 ticks" in DOC
    assert re.search(r"1600 pixels\s+wide", DOC) and plot.WIDTH == 1600
