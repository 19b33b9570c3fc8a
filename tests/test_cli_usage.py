"""The command line as a new user meets it: wrong usage exits 2 in every command with one line
saying why, `-l` everywhere, `relax new --from` makes a session of its own, `relax safety` says when
it falls back to English, `relax list` explains its `~`, and the launcher's setup line is true."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from audio_engine import script
from audio_engine.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


USAGE_ERRORS = [
    # export: options that do not fit the format, a format that does not exist
    (["export", "quick-reset", "-o", "{tmp}/x.wav", "--quality", "5"], "--quality is for OGG"),
    (["export", "quick-reset", "-o", "{tmp}/x.flac", "--quality", "5"], "--quality is for OGG"),
    (["export", "quick-reset", "-o", "{tmp}/x.mp3", "--float"], "--float is for WAV and FLAC"),
    (["export", "quick-reset", "-o", "{tmp}/x.ogg", "--quality", "11"], "--quality must be 0-10"),
    (["export", "quick-reset", "-o", "{tmp}/x.xyz"], "unknown audio format"),
    (["export", "quick-reset", "-o", "{tmp}/x.wav", "-f", "mp3"], "the extension says wav"),
    (["export", "quick-reset", "-f", "xyz"], "invalid choice"),
    (["export", "--all", "--outdir", "{tmp}", "--quality", "5"], "--quality is for OGG"),
    (["export", "--all", "--outdir", "{tmp}", "-f", "ogg", "--float"], "--float is for WAV"),
    (["export", "--all", "--jobs", "0"], "--jobs must be at least 1"),
    (["export", "quick-reset", "--jobs", "2"], "--jobs goes with --all"),
    (["export", "--all", "--rate", "120"], "one session at a time"),
    (["export"], "give one SESSION"),
    (["export", "quick-reset", "breathing-478"], "give one SESSION"),
    (["export", "quick-reset", "-l", "not a tag"], "must be a tag such as en"),
    # play, info, validate: voice options, sections, languages
    (["play", "quick-reset", "--from", "nowhere"], "no section has that title"),
    (["play", "quick-reset", "--rate", "10"], "--rate must be 80-300"),
    (["play", "quick-reset", "--volume", "3"], "--volume must be between 0 and 1"),
    (["play", "quick-reset", "-l", "x_y"], "must be a tag such as en"),
    (["play"], "required: SESSION"),
    (["info", "quick-reset", "--rate", "999"], "--rate must be 80-300"),
    (["info", "quick-reset", "--language", "!!"], "must be a tag such as en"),
    (["validate"], "required: FILE"),
    (["validate", "quick-reset", "-l", "1"], "must be a tag such as en"),
    (["validate", "quick-reset", "--rate", "abc"], "invalid float value"),
    # the others
    (["list", "-l", "!!"], "must be a tag such as en"),
    (["phone", "--port", "70000", "--no-serve"], "--port must be 0-65535"),
    (["phone", "-l", "!!"], "must be a tag such as en"),
    (["new", "Bad_Name"], "NAME must be lower-case"),
    (["new", "fine", "-l", "x y"], "must be a tag such as en"),
    (["voices", "-l", "!!"], "must be a tag such as en"),
    (["safety", "-l", "!!"], "must be a tag such as en"),
    (["schema", "extra"], "unrecognized arguments"),
    (["no-such-command"], "invalid choice"),
    (["--ui-language", "fr", "list"], "no interface in 'fr' (choose from: en, nl)"),
    (["--ui-language", "xx-!!", "safety"], "no interface in 'xx-!!'"),
    ([], ""),
]


@pytest.mark.parametrize(
    ("argv", "says"), USAGE_ERRORS, ids=[" ".join(argv) or "-" for argv, _ in USAGE_ERRORS]
)
def test_usage_errors_exit_2_with_one_line_saying_why(capsys, tmp_path, argv, says):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = _run(capsys, *argv)
    assert code == 2, (code, err)
    assert "Traceback" not in err
    if argv:
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1 and says in errors[0], err
    assert list(tmp_path.iterdir()) == [], "nothing written"


def test_voices_takes_l_like_every_command(capsys):
    code, out, err = _run(capsys, "voices", "-l", "nl")
    assert code == 0, err
    assert code == 0 and "gmw/nl" in out and "* " in out
    assert _run(capsys, "voices", "--language", "nl")[1] == out


def test_new_from_a_session_gives_the_copy_its_own_title(capsys, tmp_path, monkeypatch):
    folder = tmp_path / "sessions"
    monkeypatch.setenv("RELAX_SESSIONS_DIR", str(folder))
    code, out, err = _run(capsys, "new", "calm-evening", "--from", "breathing-478", "-l", "nl")
    assert code == 0, err
    copy, diagnostics = script.check(folder / "calm-evening.nl.yaml")
    assert diagnostics == ()
    original = script.load(ROOT / "sessions" / "breathing-478.nl.yaml")
    assert (copy.id, copy.title) == ("calm-evening", "Calm evening")
    assert copy.title != original.title
    text = (folder / "calm-evening.nl.yaml").read_text()
    assert text.count("\ntitle:") == 1
    # A name YAML would read as a number stays a string, in id and title alike.
    code, out, err = _run(capsys, "new", "2024", "--from", "quick-reset")
    assert code == 0, err
    data = yaml.safe_load((folder / "2024.en.yaml").read_text())
    assert (data["id"], data["title"]) == ("2024", "2024")
    # A script without a title line gets one; one laid out oddly is rewritten plainly.
    source = tmp_path / "x.en.yaml"
    source.write_text("# notes\nformat: 1\nlanguage: en\nid: old\nsteps: [Hello]\n")
    code, out, err = _run(capsys, "new", "fresh", "--from", str(source))
    text = (folder / "fresh.en.yaml").read_text()
    assert text.startswith("# notes\n") and yaml.safe_load(text)["title"] == "Fresh"
    assert yaml.safe_load(text)["id"] == "fresh" and text.count("id:") == 1


def test_safety_says_when_it_falls_back_to_english(capsys, tmp_path, monkeypatch):
    from audio_engine import safety

    monkeypatch.setenv("RELAX_SETTINGS_DIR", str(tmp_path))
    code, out, err = _run(capsys, "safety", "-l", "fr")
    assert code == 0
    assert out == safety.safety_text("en")
    assert err.strip() == (
        "relax: the safety text has no 'fr' version; showing it in English (there are: en, nl)"
    )
    for language in ("en", "nl", "nl-BE"):
        code, out, err = _run(capsys, "safety", "-l", language)
        assert code == 0 and err == "" and out == safety.safety_text(language)


def test_list_explains_its_tilde(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "empty-cache"))
    code, out, err = _run(capsys, "list")
    assert code == 0, err
    lengths = [line.split()[-2] for line in out.splitlines()[1:] if "built-in" in line]
    assert lengths and all(length.startswith("~") for length in lengths)
    assert out.splitlines()[-1].startswith("~ estimated: the speech is not made yet")


def test_readme_names_every_environment_variable_a_user_can_set():
    readme = (ROOT / "README.md").read_text()
    paragraph = readme[readme.index("Environment variables:") :].split("\n\n")[0]
    used = set()
    for path in (ROOT / "audio_engine").rglob("*.py"):
        used |= set(re.findall(r"\"(RELAX_[A-Z_]+)\"", path.read_text()))
    used.discard("RELAX_TTS_FAULT")  # a test hook, not a setting
    assert "RELAX_SETTINGS_DIR" in used
    for name in sorted(used):
        assert name in paragraph, name


# ---- the launcher's setup line -----------------------------------------------------------------

_FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for python in the launcher: makes the venv folder, installs nothing.
case "$1" in
  -c) exit 0 ;;
  -m) if [[ "$2" == venv ]]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; fi; exit 0 ;;
esac
"""


def test_the_launcher_says_first_setup_only_the_first_time(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "_bootstrap.sh", checkout / "scripts")
    (checkout / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    python = tmp_path / "python"
    python.write_text(_FAKE_PYTHON)
    python.chmod(0o755)

    def launch(extras=""):
        done = subprocess.run(
            ["bash", "-c", f'source scripts/_bootstrap.sh && bootstrap_venv "{extras}"'],
            cwd=checkout,
            env={**os.environ, "RELAX_PYTHON": str(python)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stderr.strip()

    where = checkout.resolve()
    assert launch() == f"relax: setting up .venv in {where} (once, about a minute)..."
    assert launch() == ""
    assert launch("[test]") == f"relax: installing the [test] extras into .venv in {where}..."
    assert launch("[test]") == "" and launch() == ""
    (checkout / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = '2'\n")
    assert launch() == f"relax: updating .venv in {where} (pyproject.toml changed)..."
    (checkout / ".venv" / ".relax-installed").unlink()  # an install that was interrupted
    said = launch()
    assert (
        said
        == f"relax: finishing the setup of .venv in {where} (an earlier one did not complete)..."
    )
    for line in (said,):
        assert "first run" not in line
