"""The safety text, the first-run pointer to it, and `relax safety`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from audio_engine import safety
from audio_engine.cli import main

# Each red flag from CONTENT-FACTS.md, as words the text must contain, per language.
RED_FLAGS = {
    "en": (
        ("sudden", "loss of strength", "arm", "leg"),
        ("numbness",),
        ("tingling",),
        ("worse at night", "awake"),
        ("weight loss",),
        ("fever",),
        ("generally ill",),
    ),
    "nl": (
        ("plotseling", "krachtverlies", "arm", "been"),
        ("doof gevoel",),
        ("tintelingen",),
        ("'s nachts", "erger", "wakker"),
        ("gewichtsverlies",),
        ("koorts",),
        ("algemeen ziek",),
    ),
}
SCOPE = {
    "en": ("not medical advice", "doctor", "therapist", "sharp pain"),
    "nl": ("geen medisch", "huisarts", "therapeut", "scherpe pijn"),
}


@pytest.fixture
def settings(tmp_path, monkeypatch):
    folder = tmp_path / "settings"
    monkeypatch.setenv("RELAX_SETTINGS_DIR", str(folder))
    return folder


@pytest.mark.parametrize("language", ["en", "nl"])
def test_safety_text_names_every_red_flag_and_the_scope(language):
    text = " ".join(safety.safety_text(language).split())  # phrases may wrap across lines
    for flag in RED_FLAGS[language]:
        for words in flag:
            assert words in text, words
    for words in SCOPE[language]:
        assert words in text, words


def test_english_and_dutch_texts_differ_and_other_languages_get_english():
    assert safety.safety_text("en") != safety.safety_text("nl")
    assert safety.safety_text("nl-BE") == safety.safety_text("nl")
    assert safety.safety_text("en-GB") == safety.safety_text("en")
    assert safety.safety_text("fr") == safety.safety_text("en")
    assert safety.safety_text(None) == safety.safety_text("en")


def test_first_run_pointer_appears_once_per_user(settings):
    first = safety.first_run_pointer("en")
    assert first is not None and "relax safety" in first and "\n" not in first
    assert (settings / safety.POINTER_MARKER).is_file()
    assert safety.first_run_pointer("en") is None
    assert safety.first_run_pointer("nl") is None


def test_first_run_pointer_speaks_dutch_for_dutch(settings):
    pointer = safety.first_run_pointer("nl")
    assert pointer is not None
    assert "relax safety" in pointer and "geen medisch advies" in pointer


def test_first_run_pointer_uses_the_config_folder_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("RELAX_SETTINGS_DIR", raising=False)
    calls = []

    def fake_config_dir(app):
        calls.append(app)
        return str(tmp_path / "config")

    import platformdirs

    monkeypatch.setattr(platformdirs, "user_config_dir", fake_config_dir)
    assert safety.first_run_pointer("en") is not None
    assert calls == ["relax"]
    assert (tmp_path / "config" / safety.POINTER_MARKER).is_file()
    assert safety.first_run_pointer("en") is None


def test_unwritable_settings_folder_still_shows_the_pointer(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RELAX_SETTINGS_DIR", str(blocker / "settings"))
    assert safety.first_run_pointer("en") is not None


@pytest.mark.parametrize("language", ["en", "nl"])
def test_relax_safety_prints_the_text_in_the_language_asked(settings, capsys, language):
    assert main(["safety", "--language", language]) == 0
    assert capsys.readouterr().out == safety.safety_text(language)
    # having read the full text, the person needs no pointer to it
    assert safety.first_run_pointer(language) is None


@pytest.mark.parametrize(
    ("lang_env", "expected"), [("nl_NL.UTF-8", "nl"), ("en_US.UTF-8", "en"), ("fr_FR.UTF-8", "en")]
)
def test_relax_safety_follows_the_locale(settings, capsys, monkeypatch, lang_env, expected):
    for var in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", lang_env)
    assert main(["safety"]) == 0
    assert capsys.readouterr().out == safety.safety_text(expected)


def test_relax_safety_runs_as_a_command(settings):
    env = {**os.environ, "LC_ALL": "nl_NL.UTF-8"}
    done = subprocess.run(
        [sys.executable, "-m", "audio_engine", "safety"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == safety.safety_text("nl")
