"""Where sessions are found: built-in ids, the user's folder, files, language variants; `relax list`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from audio_engine import library
from audio_engine.errors import SessionNotFound
from tests.conftest import ROOT

MINE = textwrap.dedent(
    """
    format: 1
    title: {title}
    language: {language}
    steps:
      - say: Hello.
    """
)


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    folder = tmp_path / "mine"
    folder.mkdir()
    monkeypatch.setenv("RELAX_SESSIONS_DIR", str(folder))
    return folder


def test_builtin_ids_resolve_to_the_checkout_sessions():
    assert library.builtin_dir() == ROOT / "sessions"
    path = library.resolve("body-scan", "nl")
    assert path == ROOT / "sessions" / "body-scan.nl.yaml"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LANG": "nl_NL.UTF-8"}, "nl"),
        ({"LANG": "en_GB.UTF-8"}, "en"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),  # no French version: English
        ({"LC_ALL": "nl_BE.UTF-8", "LANG": "en_US.UTF-8"}, "nl"),
        # LANGUAGE first, as gettext reads it (a Dutch desktop with English formats) ...
        ({"LANGUAGE": "nl:en", "LANG": "en_US.UTF-8"}, "nl"),
        ({"LANGUAGE": "nl", "LANG": "C.UTF-8"}, "nl"),
        ({"LANGUAGE": "en_GB:nl", "LC_ALL": "nl_NL.UTF-8"}, "en"),
        # ... except under the plain C locale, where gettext ignores it.
        ({"LANGUAGE": "nl", "LC_ALL": "C"}, "en"),
    ],
)
def test_without_language_the_locale_decides_else_english(monkeypatch, env, expected):
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert library.resolve("breathing-478").name == f"breathing-478.{expected}.yaml"


def test_a_missing_language_or_id_says_what_there_is():
    with pytest.raises(SessionNotFound, match=r"has no 'de' version \(it has: en, nl\)"):
        library.resolve("quick-reset", "de")
    with pytest.raises(SessionNotFound, match="no session called 'quick-rest'.*quick-reset"):
        library.resolve("quick-rest")
    with pytest.raises(SessionNotFound, match="no such file"):
        library.resolve("missing/file.yaml")


def test_user_sessions_shadow_builtin_ones_and_files_win(user_dir, tmp_path):
    (user_dir / "quick-reset.en.yaml").write_text(MINE.format(title="Mine", language="en"))
    assert library.resolve("quick-reset", "en") == user_dir / "quick-reset.en.yaml"
    assert library.resolve("quick-reset", "nl") == ROOT / "sessions" / "quick-reset.nl.yaml"
    plain = user_dir / "evening.yaml"  # no language in the name: read from the script
    plain.write_text(MINE.format(title="Evening", language="nl"))
    assert library.resolve("evening", "nl") == plain
    elsewhere = tmp_path / "x.yaml"
    elsewhere.write_text(MINE.format(title="X", language="en"))
    assert library.resolve(str(elsewhere)) == elsewhere


def _relax(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "audio_engine", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_list_shows_each_session_once_with_its_languages(user_dir):
    (user_dir / "evening.en.yaml").write_text(MINE.format(title="My evening", language="en"))
    result = _relax("list", env={"RELAX_SESSIONS_DIR": str(user_dir), "LANG": "en_US.UTF-8"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "LANGUAGES", "TITLE", "LENGTH", "WHERE"]
    rows = {line.split()[0]: line for line in lines[1:] if line and not line.startswith("~")}
    assert set(rows) == {
        "body-scan",
        "box-breathing",
        "breathing-478",
        "coherent-breathing",
        "desk-stretches",
        "quick-reset",
        "sleep-wind-down",
        "slow-down",
        "evening",
    }
    assert "en, nl" in rows["breathing-478"] and "4-7-8 breathing" in rows["breathing-478"]
    assert rows["evening"].rstrip().endswith(str(user_dir))
    # In Dutch the heads and the words around the Dutch titles are Dutch too.
    env = {"RELAX_SESSIONS_DIR": str(user_dir), "LANG": "nl_NL.UTF-8"}
    dutch = _relax("list", env=env).stdout.splitlines()
    assert dutch[0].split() == ["ID", "TALEN", "TITEL", "DUUR", "WAAR"]
    row = next(line for line in dutch if line.startswith("breathing-478 "))
    assert row.split()[-3:] == ["4-7-8-ademhaling", row.split()[-2], "ingebouwd"]
    assert _relax("list", "-l", "fr", env=env).stdout == "geen sessies gevonden in de taal 'fr'\n"
    # --ui-language chooses the titles as it chooses the words around them.
    chosen = _relax("--ui-language", "nl", "list", env={**env, "LANG": "en_US.UTF-8"}).stdout
    assert chosen == "\n".join(dutch) + "\n"
    assert "My evening" in rows["evening"]


def test_list_language_filter_shows_titles_in_that_language(user_dir):
    (user_dir / "evening.en.yaml").write_text(MINE.format(title="My evening", language="en"))
    result = _relax("list", "--language", "nl", env={"RELAX_SESSIONS_DIR": str(user_dir)})
    assert result.returncode == 0, result.stderr
    assert "evening" not in result.stdout
    assert "Bodyscan" in result.stdout and "Body scan" not in result.stdout


def test_list_reports_an_invalid_script_and_exits_1(user_dir):
    (user_dir / "broken.en.yaml").write_text("format: 2\n")
    result = _relax("list", env={"RELAX_SESSIONS_DIR": str(user_dir)})
    assert result.returncode == 1
    assert "broken.en.yaml: invalid script (run `relax validate" in result.stderr
    assert "quick-reset" in result.stdout


def _listing_imports(env) -> tuple[str, set[str]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "audio_engine", "list"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    return done.stdout, imported


def test_a_second_listing_comes_from_the_listing_cache_until_a_script_changes(user_dir, tmp_path):
    env = {"RELAX_SESSIONS_DIR": str(user_dir), "RELAX_CACHE_DIR": str(tmp_path / "cache")}
    mine = user_dir / "evening.en.yaml"
    mine.write_text(MINE.format(title="My evening", language="en"))
    first, imported = _listing_imports(env)
    assert "audio_engine.script" in imported and "My evening" in first
    again, imported = _listing_imports(env)
    assert again == first
    assert not {"audio_engine.script", "yaml", "audio_engine.timeline"} & imported
    mine.write_text(MINE.format(title="My late evening", language="en"))  # read again
    changed, imported = _listing_imports(env)
    assert "audio_engine.script" in imported
    assert "My late evening" in changed and changed.replace(" late", "") != first
    kept = tmp_path / "cache" / library.LISTING_FILE
    rows = json.loads(kept.read_text())
    rows["rows"][str(mine)]["length"] = "9:99"  # not what the listing writes: read again
    kept.write_text(json.dumps(rows))
    assert _listing_imports(env)[0] == changed
    kept.write_bytes(b"\0not json")  # only read again
    assert _listing_imports(env)[0] == changed


def test_a_listed_length_turns_exact_once_the_speech_is_made(user_dir):
    from audio_engine import script, timeline, tts

    mine = user_dir / "hello.en.yaml"
    mine.write_text(MINE.format(title="Hello", language="en"))
    (listed,) = [item for item in library.listing() if item.path == mine]
    assert listed.length is not None and listed.length[1]  # estimated
    session, _ = script.check(mine)
    tts.synthesize_many(timeline.speech_requests(session))
    (listed,) = [item for item in library.listing() if item.path == mine]
    assert listed.length == library.length_s(session)
    assert listed.length is not None and not listed.length[1]  # exact
    (kept,) = [item for item in library.listing() if item.path == mine]
    assert kept == listed
