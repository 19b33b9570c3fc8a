"""`--rate` from the command line: a slower voice where there is room, a fitting one where a line
must fit its time (docs/authoring.md, "Speaking rate"), with the real speech engines.

Every line that must end within a set time (cue, count, countdown number, scan prompt, `say` with
`duration`) gets a rate between the asked one and the script's own, never faster than the
script's, and its real clip fits; every other line gets the asked rate. A script whose lines do
not fit even at its own rate is reported at FILE:LINE:COL, naming --rate. The README's example
(`relax play breathing-478 --rate 120 --voice en`) plays. Every built-in session, both languages
and both engines, at --rate 100, 120 and 200: the `heavy` test at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

from audio_engine import library, model, neural, pipeline, script, timeline, tts
from audio_engine.errors import TimingError
from audio_engine.model import Voice

ROOT = Path(__file__).resolve().parent.parent

# Everything that must fit a set time, at a script rate of 170 words a minute: a cue in the one
# second before its first count, counts, a countdown, a scan prompt, a `say` with a `duration`.
TIGHT = """\
format: 1
title: Tight
language: {language}
voice: {{rate: 170{engine}}}
steps:
  - say: Welcome, settle in and let your shoulders drop.
  - say: Breathe in slowly through your nose, and let your belly rise.
    duration: 4
  - breathe:
      {{inhale: 3, exhale: 3, cycles: 1, count: true, cues: {{inhale: {inhale}, exhale: {exhale}}}}}
  - stretch: {{name: Neck, sides: [Tilt your head to the left.], hold: 3, countdown: 3}}
  - scan: {{regions: [{region}], prompt: "Notice your {{region}}.", dwell: 1.6}}
"""


def tight(tmp_path, language="en", engine=None) -> model.Session:
    words = {
        "en": dict(inhale="Breathe in", exhale="Breathe out", region="forehead"),
        "nl": dict(inhale="Adem in", exhale="Adem uit", region="voorhoofd"),
    }[language]
    path = tmp_path / f"tight.{language}.yaml"
    path.write_text(
        TIGHT.format(language=language, engine=f", engine: {engine}" if engine else "", **words)
    )
    return script.load(path)


def fitted(prepared) -> list[tuple[timeline.Slot, int, int]]:
    """(slot, the rate it got, the length of its clip at that rate) for every fitted line."""
    out = []
    for slot, rate in prepared.rates.items():
        out.append((slot, rate, prepared.sources.speech.length(slot.at(rate))))
    return out


def check_rule(prepared, asked: int) -> None:
    """Each fitted line's clip fits its slot, at a rate between asked and the script's own (and
    at the asked rate exactly when it fits there); every other line is at the asked rate."""
    rows = fitted(prepared)
    assert rows
    for slot, rate, length in rows:
        own = slot.utterance.voice.rate_wpm
        assert min(asked, own) <= rate <= own, (slot, rate)
        assert length <= slot.room, (slot.utterance.text, length, slot.room, rate)
        if rate > asked:  # slower would have been wanted: the asked rate does not fit
            assert tts.clip_lengths([slot.at(asked)])[slot.at(asked)] > slot.room
    placed = {slot.at(rate) for slot, rate, _ in rows}
    for event in prepared.timeline.transcript():
        if event.utterance not in placed:
            assert event.utterance.voice.rate_wpm == asked, event.text
        assert event.end_sample - event.start_sample == prepared.sources.speech.length(
            event.utterance
        )


ENGINES = [
    ("en", "espeak"),
    pytest.param(
        "en",
        "neural",
        marks=pytest.mark.skipif(not neural.available(), reason="hibari-tts is not installed"),
    ),
    ("nl", None),
]


@pytest.mark.parametrize(("language", "engine"), ENGINES)
def test_a_slow_rate_slows_every_line_and_fitted_lines_only_as_far_as_they_fit(
    tmp_path, language, engine
):
    session = tight(tmp_path, language, engine)
    asked = 80
    prepared = pipeline.prepare(session, Voice(rate_wpm=asked))
    check_rule(prepared, asked)
    # The free line is slower than the script asks; some fitted line needed more than the asked
    # rate (else this script would test nothing), and some slot took the asked rate itself.
    rates = [rate for _, rate, _ in fitted(prepared)]
    assert max(rates) > asked
    assert min(rates) == asked
    free = prepared.timeline.transcript()[0]
    assert free.utterance.voice.rate_wpm == asked
    # Every fitted line at the asked rate, as --rate did before the rule: some do not fit.
    at_asked = {slot: asked for slot in prepared.rates}
    lengths = tts.clip_lengths(timeline.speech_requests(session, Voice(rate_wpm=asked), at_asked))
    with pytest.raises(TimingError):
        timeline.compile(session, lengths, Voice(rate_wpm=asked), rates=at_asked)


def test_a_player_starting_at_once_gets_the_same_rates(tmp_path):
    session = tight(tmp_path, "en", "espeak")
    asked = Voice(rate_wpm=90)
    growing = pipeline.Growing(session, asked)
    try:
        played = growing.prepared()
    finally:
        growing.close()
    exported = pipeline.prepare(session, asked)
    assert played.rates == exported.rates and played.rates
    assert played.timeline.events == exported.timeline.events


def test_a_faster_rate_speeds_up_only_the_lines_without_a_set_time(tmp_path):
    session = tight(tmp_path, "en", "espeak")
    prepared = pipeline.prepare(session, Voice(rate_wpm=250))
    for slot, rate, _ in fitted(prepared):
        assert rate == slot.utterance.voice.rate_wpm == 170  # never faster than the script's
    assert prepared.timeline.transcript()[0].utterance.voice.rate_wpm == 250


def test_the_fit_takes_a_few_rounds_of_synthesis(tmp_path, monkeypatch):
    session = tight(tmp_path, "en", "espeak")
    rounds = []
    real = tts.clip_lengths
    monkeypatch.setattr(
        tts, "clip_lengths", lambda us, **kw: rounds.append(len(list(us))) or real(us, **kw)
    )
    rates = pipeline.fit_rates(session, Voice(rate_wpm=80))
    assert 2 <= len(rounds) <= 1 + pipeline.FIT_STEPS
    assert sum(rounds) <= len(rates) * (1 + pipeline.FIT_STEPS)


def test_info_shows_the_rate_each_line_got(tmp_path):
    session = tight(tmp_path, "en", "espeak")
    prepared = pipeline.prepare(session, Voice(rate_wpm=80))
    from audio_engine.cli.info import as_json, outline

    events = [e for e in as_json(prepared.timeline)["events"] if e["kind"] == "speech"]
    got = {(e["text"], e["start_sample"]): e["rate_wpm"] for e in events}
    for e in prepared.timeline.transcript():
        assert got[(e.text, e.start_sample)] == e.utterance.voice.rate_wpm
    assert len(set(got.values())) > 1
    text = outline(prepared.timeline)
    cue = next(e for e in prepared.timeline.transcript() if e.text == "Breathe in")
    assert f"inhale 'Breathe in'  (3.00 s, cue {cue.utterance.voice.rate_wpm} wpm)" in text
    assert '"Welcome, settle in and let your shoulders drop."' in text
    assert 'shoulders drop."  (' in text and ", 80 wpm)" in text


def relax(*args, cwd=None, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audio_engine", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_a_script_that_does_not_fit_even_at_its_own_rate_names_rate(tmp_path):
    path = tmp_path / "own.yaml"
    path.write_text(
        "format: 1\ntitle: Own\nlanguage: en\nvoice: {rate: 150, engine: espeak}\nsteps:\n"
        "  - breathe:\n"
        "      inhale: 3\n"
        "      exhale: 3\n"
        "      count: true\n"
        "      cues: {inhale: Breathe in slowly and deeply through the nose}\n"
    )
    done = relax("validate", str(path), "--rate", "100")
    assert done.returncode == 1
    line = next(x for x in done.stderr.splitlines() if ": error:" in x)
    assert line.startswith(f"{path}:10:22: error: steps[0].breathe.cues.inhale: ")
    assert "--rate 100" in line and "150 words a minute" in line
    assert line.endswith(
        "even at the script's own rate of 150 words a minute instead of --rate 100"
    )
    faster = relax("validate", str(path), "--rate", "200")
    line = next(x for x in faster.stderr.splitlines() if ": error:" in x)
    assert "at the script's own rate of 150 words a minute" in line
    assert "(--rate 200 never makes a line that must fit its time faster)" in line


def test_a_line_placed_at_the_asked_rate_says_so():
    # Compiled without fitted rates (a pure timeline, fake lengths): at the asked rate.
    session = script.loads(
        "format: 1\ntitle: T\nlanguage: en\nsteps:\n  - say: Hello.\n    duration: 1\n",
        filename="t.en.yaml",
    )
    asked = Voice(rate_wpm=80)
    lengths = {u: 2 * 44100 for u in timeline.speech_requests(session, asked)}
    with pytest.raises(TimingError) as info:
        timeline.compile(session, lengths, asked)
    assert 'say "Hello." lasts 2.00 s when spoken at --rate 80, longer than its duration 1 s' in (
        str(info.value)
    )


def test_the_readme_example_plays(tmp_path):
    readme = (ROOT / "README.md").read_text()
    example = "scripts/relax play breathing-478 --rate 120 --voice en"
    assert example in readme
    # No sound card here: the launcher's fallback writes what would have played.
    done = relax(
        *example.split()[1:],
        "--no-window",
        cwd=tmp_path,
        env={"RELAX_FALLBACK_EXPORT": "1", "SDL_AUDIODRIVER": "no-such-device"},
    )
    assert done.returncode == 0, done.stderr
    written = Path(done.stdout.strip())
    info = soundfile.info(written)
    session = pipeline.load("breathing-478", "en")
    prepared = pipeline.prepare(session, Voice(name="en", rate_wpm=120))
    assert info.frames == prepared.timeline.total_samples
    check_rule(prepared, 120)


@pytest.mark.heavy
def test_every_built_in_session_fits_at_every_rate_with_both_engines():
    engines = ["espeak"] + (["neural"] if neural.available() else [])
    for entry in library.find_all():
        session = script.load(entry.path)
        for engine in engines if session.language == "en" else ["espeak"]:
            for asked in (100, 120, 200):
                prepared = pipeline.prepare(session, Voice(rate_wpm=asked, engine=engine))
                if prepared.rates:
                    check_rule(prepared, asked)
