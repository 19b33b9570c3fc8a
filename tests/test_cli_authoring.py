"""`relax validate`, `relax schema` and `relax new`, run as a person runs them: in a subprocess."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from audio_engine import script

HERE = Path(__file__).parent
GOOD = HERE / "scripts" / "good"
BAD = HERE / "scripts" / "bad"
HEADER = "format: 1\ntitle: T\nlanguage: en\n"


def relax(*args: str, sessions_dir: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if sessions_dir is not None:
        env["RELAX_SESSIONS_DIR"] = str(sessions_dir)
    return subprocess.run(
        [sys.executable, "-m", "audio_engine", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_validate_without_voice_reports_every_file(tmp_path: Path):
    good = tmp_path / "calm.en.yaml"
    good.write_text(HEADER + "steps:\n  - pause: 11m\n")  # valid, with a warning
    bad = BAD / "many-errors.yaml"
    missing = tmp_path / "nothing.yaml"
    result = relax("validate", "--no-voice", str(good), str(bad), str(missing))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"{good}: ok"]
    err = result.stderr.splitlines()
    assert err[0] == f"{good}:5:12: warning: steps[0].pause: a pause of 11 min is over 10 minutes"
    bad_lines = [line for line in err if line.startswith(f"{bad}:")]
    assert len(bad_lines) == 6
    assert all(re.match(rf"{re.escape(str(bad))}:\d+:\d+: error: ", line) for line in bad_lines)
    assert (
        f"{bad}:5:5: error: steps[0].sya: unknown key 'sya' in a step; did you mean 'say'?" in err
    )
    assert err[-1] == f"{missing}: error: no such file"
    assert "checking timing" not in result.stderr


def test_validate_all_valid_is_exit_0_and_folders_expand(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(HEADER + "steps: [Hello]\n")
    (tmp_path / "b.nl.yaml").write_text(HEADER.replace("en", "nl") + "steps: [Hallo]\n")
    (tmp_path / "notes.txt").write_text("not a script")
    result = relax("validate", "--no-voice", str(tmp_path), "breathing-478")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [f"{tmp_path / 'a.yaml'}: ok", f"{tmp_path / 'b.nl.yaml'}: ok"]
    assert lines[2].endswith("breathing-478.en.yaml: ok")
    assert result.stderr == ""


def test_usage_errors_are_exit_2():
    result = relax("validate")
    assert result.returncode == 2
    assert "FILE" in result.stderr and "--help" in result.stderr
    assert result.stdout == ""


def test_validate_checks_timing_with_the_voice(tmp_path: Path):
    fits = tmp_path / "fits.en.yaml"
    fits.write_text(HEADER + "steps:\n  - say: Hello.\n    duration: 5s\n")
    too_long = tmp_path / "long.en.yaml"
    too_long.write_text(
        HEADER + "steps:\n  - Hello.\n  - say: This sentence has far too many words to be spoken in"
        " half a second.\n    duration: 0.5s\n"
    )
    result = relax("validate", str(fits), str(too_long))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"{fits}: ok"]
    assert f"{fits}: checking timing with the voice" in result.stderr
    # at the duration to change, with a note line at the text
    lines = result.stderr.splitlines()
    timing = [line for line in lines if line.startswith(f"{too_long}:7:15: error: ")]
    assert len(timing) == 1 and "steps[1].duration: " in timing[0]
    assert "far too many words" in timing[0]
    note = lines[lines.index(timing[0]) + 1]
    assert note == f"{too_long}:6:10: note: steps[1].say: the line is here"


def test_schema_and_help_texts():
    result = relax("schema", "--help")
    assert result.returncode == 0 and "JSON Schema" in result.stdout
    result = relax("validate", "--help")
    assert result.returncode == 0
    for word in ("--no-voice", "FILE", "Exit codes"):
        assert word in result.stdout
    result = relax("new", "--help")
    assert result.returncode == 0
    for word in ("NAME", "--from", "--language"):
        assert word in result.stdout


def test_new_from_the_template(tmp_path: Path):
    folder = tmp_path / "sessions"
    result = relax("new", "my-evening", sessions_dir=folder)
    assert result.returncode == 0, result.stderr
    path = folder / "my-evening.en.yaml"
    assert result.stdout.strip() == str(path)
    text = path.read_text()
    assert text.startswith("# ")  # a commented template
    session, diagnostics = script.check(path)
    assert diagnostics == ()
    assert (session.id, session.language) == ("my-evening", "en")
    assert {type(s).__name__ for s in session.steps} >= {"Say", "Pause", "Breathe", "Chime"}

    again = relax("new", "my-evening", sessions_dir=folder)
    assert again.returncode == 1
    assert "already exists" in again.stderr and again.stdout == ""
    assert path.read_text() == text  # untouched

    assert relax("new", "Not Valid", sessions_dir=folder).returncode == 2


@pytest.mark.parametrize("language", ["nl", "de-AT"])
def test_new_template_in_other_languages_validates(tmp_path: Path, language: str):
    folder = tmp_path / "sessions"
    result = relax("new", "mine", "--language", language, sessions_dir=folder)
    assert result.returncode == 0, result.stderr
    session, diagnostics = script.check(folder / f"mine.{language}.yaml")
    assert diagnostics == ()
    assert session.language == language


def test_new_from_an_existing_session(tmp_path: Path):
    folder = tmp_path / "sessions"
    result = relax("new", "calm", "--from", "breathing-478", "-l", "nl", sessions_dir=folder)
    assert result.returncode == 0, result.stderr
    path = folder / "calm.nl.yaml"
    assert result.stdout.strip() == str(path)
    original = script.load(HERE.parent / "sessions" / "breathing-478.nl.yaml")
    copy = script.load(path)
    assert copy.id == "calm"
    assert copy.steps == tuple(
        type(s)(**{**s.__dict__, "origin": c.origin})
        for s, c in zip(original.steps, copy.steps, strict=True)
    )
    # from a file with an id: the id is replaced, comments kept
    source = tmp_path / "x.en.yaml"
    source.write_text("# my notes\n" + HEADER + "id: old-name\nsteps: [Hello]\n")
    result = relax("new", "fresh", "--from", str(source), sessions_dir=folder)
    assert result.returncode == 0, result.stderr
    text = (folder / "fresh.en.yaml").read_text()
    assert text.startswith("# my notes\n") and "id: fresh\n" in text
    assert yaml.safe_load(text)["id"] == "fresh"


@pytest.mark.parametrize(
    ("text", "where"),
    [("format: 1\ntitle: [open\n", "3:1"), ("format: 1\n---\ntitle: T\n", "2:1")],
    ids=["syntax-error", "two-documents"],
)
def test_new_from_a_file_that_is_not_yaml_is_its_error_at_its_place(tmp_path, text, where):
    source = tmp_path / "broken.yaml"
    source.write_text(text)
    folder = tmp_path / "mine"
    result = relax("new", "fresh", "--from", str(source), sessions_dir=folder)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"{source}:{where}: error: "), result.stderr
    assert not folder.exists() or not list(folder.iterdir())


def test_validate_a_session_id_in_one_or_every_language():
    both = relax("validate", "breathing-478", "--no-voice")
    assert both.returncode == 0, both.stderr
    assert [Path(line.split(":")[0]).name for line in both.stdout.splitlines()] == [
        "breathing-478.en.yaml",
        "breathing-478.nl.yaml",
    ]
    dutch = relax("validate", "breathing-478", "--language", "nl", "--no-voice")
    assert [Path(line.split(":")[0]).name for line in dutch.stdout.splitlines()] == [
        "breathing-478.nl.yaml"
    ]
    missing = relax("validate", "breathing-478", "--language", "fr", "--no-voice")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        "breathing-478: error: session 'breathing-478' has no 'fr' version (it has: en, nl)"
    ]


def test_validate_times_the_complete_steps_of_a_script_with_errors(tmp_path: Path):
    path = tmp_path / "multi.en.yaml"
    path.write_text(
        HEADER + "steps:\n  - pause: -3\n"
        "  - say: This sentence is definitely much longer than half a second when spoken.\n"
        "    duration: 0.5\n"
        "  - breathe: {inhale: 1, exhale: 1, cues: {inhale: Breathe in slowly through your nose}}\n"
    )
    result = relax("validate", str(path))
    assert result.returncode == 1 and result.stdout == ""
    problems = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert [line.split(": error: ")[0] for line in problems] == [
        f"{path}:5:12",
        f"{path}:7:15",  # the duration
        f"{path}:8:52",  # the cue the script writes (a note points at the inhale)
    ]
    assert "longer than its duration 0.5 s" in problems[1]
    assert "inhale cue" in problems[2] and "longer than the 1.00 s it has" in problems[2]


def test_validate_reports_the_four_hour_limit_of_a_script_with_errors(tmp_path: Path):
    # Its valid steps alone pass 4 hours once their speech is counted: the whole script can only
    # last longer, so that is reported beside the script's own error.
    path = tmp_path / "long-bad.en.yaml"
    path.write_text(
        HEADER + "steps:\n  - pause: 14399\n  - say: One more line, and then another one.\n"
        "  - pause: -3\n"
    )
    result = relax("validate", str(path))
    assert result.returncode == 1 and result.stdout == ""
    problems = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(problems) == 2, result.stderr
    assert problems[0].startswith(f"{path}:5:3: error: steps: the session lasts at least 1440")
    assert "with its speech, longer than the limit of 4 hours" in problems[0]
    assert problems[1].startswith(f"{path}:7:12: error: steps[2].pause")


def test_validate_warns_when_speech_takes_a_session_over_two_hours(tmp_path: Path):
    path = tmp_path / "long.en.yaml"
    path.write_text(HEADER + "steps:\n  - pause: 2h\n  - say: One more line.\n")
    result = relax("validate", str(path))
    assert result.returncode == 0 and result.stdout.splitlines() == [f"{path}: ok"]
    assert f"{path}:5:3: warning: steps: the session lasts 720" in result.stderr  # 7200 s + speech
    assert "with its speech, over 2 hours" in result.stderr


def test_validate_a_voice_on_a_repeat_and_on_a_silent_step(tmp_path: Path):
    path = tmp_path / "voices.en.yaml"
    path.write_text(
        HEADER + "steps:\n  - repeat: 2\n    voice: {rate: 200.4}\n    steps: [Hello.]\n"
        "  - pause: 1\n    voice: {rate: 120}\n"
    )
    result = relax("validate", "--no-voice", str(path))
    assert result.returncode == 0, result.stderr
    assert f"{path}:9:5: warning: steps[1].voice: a voice on a 'pause' step has no effect" in (
        result.stderr
    )
    assert script.load(path).steps[0].voice.rate_wpm == 200


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_ctrl_c_is_said_in_the_interface_language(monkeypatch, capsys):
    from audio_engine import cli, i18n
    from audio_engine.cli import info

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(info, "run", interrupted)
    monkeypatch.setenv("LANG", "nl_NL.UTF-8")
    i18n.set_language(None)  # the locale's, read again
    try:
        assert cli.main(["info", "breathing-478"]) == 130
    finally:
        monkeypatch.undo()  # the test's locale gone before it is read again
        i18n.set_language(None)
    assert capsys.readouterr().err == "relax: onderbroken\n"


@pytest.mark.parametrize("how", ["error", "interrupt"])
def test_a_progress_line_is_wiped_before_the_last_message(monkeypatch, how):
    from audio_engine import cli
    from audio_engine.cli import info

    def interrupted(args):
        sys.stderr.write("\rpreparing speech [###---]  50%    2s left ")
        raise KeyboardInterrupt

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    if how == "interrupt":
        monkeypatch.setattr(info, "run", interrupted)
        assert cli.main(["info", "breathing-478"]) == 130
        assert terminal.getvalue().endswith("left \r\x1b[Krelax: interrupted\n")
    else:
        assert cli.main(["info", "no-such-session"]) == 1
        assert terminal.getvalue().startswith("\r\x1b[Krelax: error: no session called")


def test_validate_points_at_a_sound_file_that_cannot_be_read(tmp_path: Path):
    (tmp_path / "broken.wav").write_bytes(b"RIFF, but not audio")
    path = tmp_path / "sound.en.yaml"
    path.write_text(
        HEADER + "background:\n  - sound: {file: broken.wav, volume: 0.3}\nsteps:\n  - pause: 1\n"
    )
    result = relax("validate", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{path}:5:19: error: background[0].sound.file: not a WAV, FLAC or OGG file" in (
        result.stderr
    )


def test_rate_option_takes_fractions_like_scripts_do():
    import argparse

    from audio_engine.cli import _common

    args = argparse.Namespace(rate=140.5, volume=None, voice=None)
    assert _common.voice_override(args).rate_wpm == 141
    with pytest.raises(Exception, match="80-300"):
        _common.voice_override(argparse.Namespace(rate=float("nan"), volume=None, voice=None))


def test_validate_points_at_every_voice_name_that_matches_no_voice(tmp_path: Path):
    path = tmp_path / "names.nl.yaml"
    path.write_text(
        "format: 1\ntitle: T\nlanguage: nl\nvoice: {name: qq}\nsteps:\n  - Hallo.\n"
        "  - say: Dag.\n    voice: {name: zz}\n"
        "  - repeat: 2\n    voice: {name: xx}\n    steps: [Ja.]\n"
    )
    result = relax("validate", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert [line.split(": no installed voice")[0] for line in errors] == [
        f"{path}:4:15: error: voice.name",  # at the name itself
        f"{path}:8:19: error: steps[1].voice.name",
        f"{path}:10:19: error: steps[2].voice.name",
    ]
