"""What a new user met on a fresh clone, each fixed: a clean checkout after the README's commands,
one name for a section's chapter with its stretch, the cue kept on a narrow status line, a phase
label never smaller than a caption, failures and usage errors told apart and pointed right, times
that add up, `id:` taken wherever a SESSION is, `--no-voice` still checking engines, and clearer
messages. (The speaking rate is in test_rate.py, docs/sessions.md in test_docs_sessions.py.)
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from audio_engine import export, library, script, timeline
from audio_engine.cli.info import as_json
from audio_engine.errors import TimingError
from audio_engine.model import SAMPLE_RATE
from audio_engine.player import pacer

ROOT = Path(__file__).resolve().parent.parent
SR = SAMPLE_RATE
HEADER = "format: 1\ntitle: T\nlanguage: en\n"


def relax(*args, cwd=None, env=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audio_engine", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


class Lengths(dict):
    def __missing__(self, utterance):
        return int(0.5 * SR)


# ---- a fresh clone stays clean -----------------------------------------------------------------


def readme_outputs() -> set[str]:
    """The files the README's commands write in the current folder (the checkout's top)."""
    readme = (ROOT / "README.md").read_text()
    names = {"breathing-478.en.wav", "breathing-478.en.vtt"}  # `play` without a sound card
    for line in re.findall(r"^scripts/relax (.*)$", readme, flags=re.M):
        words = line.split("#")[0].split()
        if not words:  # `scripts/relax` alone: the library window, it writes nothing here
            continue
        if "-o" in words:
            target = words[words.index("-o") + 1]
            if "/" not in target:
                names.add(target)
        if ">" in words:
            names.add(words[words.index(">") + 1])
        single = len(words) > 1 and not words[1].startswith("-")  # (--all: its --outdir)
        if words[0] == "export" and single and "--format" in words and "-o" not in words:
            names.add(f"{words[1]}.en.{words[words.index('--format') + 1]}")
            names.add(f"{words[1]}.en.vtt")
    return names


def _in_git() -> bool:
    if shutil.which("git") is None:
        return False
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse"], capture_output=True)
    return done.returncode == 0


@pytest.mark.skipif(not _in_git(), reason="not a git checkout (or no git)")
def test_git_ignores_what_the_readmes_commands_write_in_the_checkout():
    names = readme_outputs()
    assert {"breathing.mp3", "relax-session.schema.json", "desk-stretches.en.ogg"} <= names
    for name in names:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "check-ignore", "--no-index", "-q", name],
            capture_output=True,
        )
        assert done.returncode == 0, f"{name} would be left untracked in the checkout"
    # ... and only at the top: the built-in sessions and test data are not ignored.
    kept = ["sessions/x.wav", "tests/scripts/bad/rain.wav"]
    for name in kept:
        done = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", "-q", name])
        assert done.returncode == 1, name


def test_the_readmes_own_session_commands_work_one_after_the_other(tmp_path, monkeypatch, capsys):
    # "Writing your own session" as a new user types it: what `validate` checks is what the
    # `new` lines above it made (a name that is neither is "no such file").
    from audio_engine import cli

    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("## Writing your own session") :].split("```")[1]
    monkeypatch.setenv("RELAX_SESSIONS_DIR", str(tmp_path / "sessions"))
    monkeypatch.chdir(tmp_path)
    ran = []
    for line in re.findall(r"^scripts/relax (.*)$", block, flags=re.M):
        words = line.split("#")[0].split(">")[0].split()
        if "--watch" in words:  # runs until Ctrl-C: its files are the plain validate's
            words.remove("--watch")
        if words[0] == "validate":
            words.insert(1, "--no-voice")  # the format only: the timing needs the voice
        code = cli.main(words)
        assert code == 0, (line, capsys.readouterr().err)
        ran.append(words[0])
    assert ran == ["new", "new", "validate", "validate", "schema"]


def test_plays_usage_errors_are_dutch_in_dutch(capsys, monkeypatch):
    # The "relax: fout:" before them was Dutch, the rest English.
    from audio_engine import cli, i18n
    from audio_engine.cli.play import chapter_index
    from audio_engine.errors import UsageError

    monkeypatch.setenv("LANG", "nl_NL.UTF-8")
    i18n.set_language(None)
    try:
        assert cli.main(["play", "quick-reset", "--rate", "10"]) == 2
        assert capsys.readouterr().err == (
            "relax: fout: --rate moet 80-300 woorden per minuut zijn, niet 10\n"
        )
        assert cli.main(["play", "quick-reset", "--volume", "2"]) == 2
        assert "--volume moet tussen 0 en 1 liggen, niet 2.0" in capsys.readouterr().err
        session = script.loads(
            HEADER + "steps:\n  - section: Adem\n  - say: Hoi.\n", filename="a.en.yaml"
        )
        tl = timeline.compile(session, Lengths())
        with pytest.raises(UsageError, match=r"^--from 9: er is geen deel 9 \(delen: 1\. Adem\)$"):
            chapter_index(tl, "9")
        with pytest.raises(UsageError, match=r"^--from 'voet': geen deel heeft die titel"):
            chapter_index(tl, "voet")
    finally:
        monkeypatch.undo()
        i18n.set_language(None)


# ---- one chapter name for a section and the stretch that starts with it -----------------------


@pytest.mark.parametrize(
    ("section", "name", "title"),
    [
        ("Stretch", "Neck", "Stretch: Neck"),
        ("Neck", "Neck side stretch", "Neck side stretch"),
    ],
)
def test_a_section_with_its_stretch_is_one_chapter_everywhere(section, name, title):
    session = script.loads(
        HEADER + f"steps:\n  - say: Hi.\n  - section: {section}\n"
        f"  - stretch: {{name: {name}, say: Tilt., hold: 2}}\n",
        filename="c.en.yaml",
    )
    tl = timeline.compile(session, Lengths())
    assert [c.title for c in tl.chapters] == [title]
    assert [c["title"] for c in as_json(tl)["chapters"]] == [title]
    assert [c.title for c in export.file_chapters(tl)] == [title]
    assert pacer.Pacer(tl).state_at(tl.total_samples - 1).section == title


# ---- the status line and the window ----------------------------------------------------------


def breathing_state(**changes) -> pacer.PacerState:
    state = pacer.PacerState(
        title="4-7-8 breathing",
        section="Breathing",
        phase="exhale",
        cue="Breathe out",
        phase_fraction=0.2,
        phase_left_s=3.0,
        phase_count=2,
        breath=0.0,
        caption="",
        elapsed_s=70.0,
        total_s=181.6,
        paused=True,
        muted=True,
        volume=0.5,
    )
    return dataclasses.replace(state, **changes)


@pytest.mark.parametrize("width", [20, 30, 40, 50, 80])
def test_a_narrow_status_line_keeps_the_cue_and_its_count(width):
    for state in (breathing_state(), breathing_state(paused=False, muted=False, volume=1.0)):
        line = pacer.status_line(state, width)
        assert len(line) <= width - 1
        assert "Breathe out 2" in line, line
    line = pacer.status_line(breathing_state(), 40)
    assert "paused" in line  # what still fits of the flags stays


def test_the_phase_label_is_never_smaller_than_a_caption():
    import pygame

    pygame.font.init()
    for size in ((720, 720), (480, 360), (320, 240)):
        for cue in ("Breathe out", "Adem uit", "Vasthouden"):
            surface = pygame.Surface(size)
            placed = pacer.draw(surface, breathing_state(cue=cue, breath=0.0, paused=False))
            label = next(p for p in placed if p.role == "cue")
            hints = [p.size_px for p in placed if p.role == "keys"]
            assert label.size_px >= max([pacer.CAPTION_MIN_PX, *hints]), (size, cue, label)
            # ... and it stays inside the breath's disc, which is drawn large enough to hold it.
            x, y, w, h = label.rect
            cx = size[0] // 2
            inside = surface.get_at((cx, y + h // 2))[:3]
            edge = surface.get_at((max(0, x - 2), y + h // 2))[:3]
            assert inside != pacer.BACKGROUND and edge != pacer.BACKGROUND, (size, cue)


def test_the_time_left_adds_up_and_is_never_minus_zero():
    assert pacer.remaining_text(181.6, 181.6) == "0:00"
    assert pacer.remaining_text(181.59, 181.6) == "0:00"
    # After a skip back to a section at 67.295 s of 181.59 s: 1:07 shown, 3:02 in all.
    assert pacer.clock_text(67.295) == "1:07" and pacer.clock_text(181.59) == "3:02"
    assert pacer.remaining_text(67.295, 181.59) == "-1:55"
    for elapsed in (0.0, 0.49, 0.5, 12.3, 67.295, 100.5, 181.0):
        left = pacer.remaining_text(elapsed, 181.59).lstrip("-")
        whole = [pacer.clock_text(elapsed), left]
        added = sum(int(t.split(":")[0]) * 60 + int(t.split(":")[1]) for t in whole)
        assert added == 182, (elapsed, whole)


# ---- failures and usage errors -----------------------------------------------------------------


def test_a_folder_that_cannot_be_made_fails_with_1_both_ways(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    one = relax("export", "quick-reset", "-o", f"{blocker}/sub/")
    other = relax("export", "--all", "--outdir", str(blocker / "out"))
    for done in (one, other):
        assert done.returncode == 1, done.stderr
        assert "cannot make the folder" in done.stderr and "Traceback" not in done.stderr


def test_timing_errors_show_enough_digits_to_see_the_difference():
    session = script.loads(
        HEADER + "steps:\n  - say: Hello.\n    duration: 1\n", filename="d.en.yaml"
    )
    lengths = {u: SR + 10 for u in timeline.speech_requests(session)}
    with pytest.raises(TimingError) as info:
        timeline.compile(session, lengths)
    assert "lasts 1.0002 s when spoken, longer than its duration 1 s" in str(info.value)
    session = script.loads(
        HEADER + "steps:\n  - breathe: {inhale: 3, exhale: 3, count: true, cycles: 1}\n",
        filename="d.en.yaml",
    )
    lengths = {u: SR + 3 for u in timeline.speech_requests(session)}
    with pytest.raises(TimingError) as info:
        timeline.compile(session, lengths)
    assert "lasts 1.0001 s when spoken, longer than the 1.0000 s it has" in str(info.value)


def test_an_unknown_option_points_to_the_commands_own_help():
    done = relax("play", "quick-reset", "--bogus")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "relax play: error: unrecognized arguments: --bogus",
        "(see relax play --help)",
    ]
    done = relax("--bogus")
    assert done.returncode == 2 and "(see relax --help)" in done.stderr


def test_no_device_names_the_command_that_exports_this_session(tmp_path):
    env = {"SDL_AUDIODRIVER": "no-such-device", "RELAX_FALLBACK_EXPORT": "0"}
    done = relax("play", "quick-reset", "--language", "nl", "--no-window", env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        "write the session to a file with: relax export quick-reset --language nl"
    ), done.stderr
    assert not list(tmp_path.iterdir())


# ---- a script's id: -------------------------------------------------------------------------


def test_a_scripts_id_is_a_session_argument_everywhere(tmp_path, monkeypatch):
    own = tmp_path / "own"
    own.mkdir()
    (own / "slaap.nl.yaml").write_text(
        "format: 1\nid: slaap-kort\ntitle: Slaap\nlanguage: nl\nsteps:\n  - Welterusten.\n"
    )
    env = {"RELAX_SESSIONS_DIR": str(own)}
    monkeypatch.setenv("RELAX_SESSIONS_DIR", str(own))
    assert library.resolve("slaap-kort") == own / "slaap.nl.yaml"
    assert library.resolve("slaap") == own / "slaap.nl.yaml"  # the file name's id too
    listed = relax("list", env=env)
    assert "slaap-kort" in listed.stdout
    info = relax("info", "slaap-kort", "--json", env=env)
    assert info.returncode == 0, info.stderr
    assert '"id": "slaap-kort"' in info.stdout
    exported = relax("export", "slaap-kort", "-o", str(tmp_path / "s.wav"), env=env)
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "s.wav").stat().st_size > 1000
    checked = relax("validate", "slaap-kort", "--no-voice", env=env)
    assert checked.returncode == 0 and checked.stdout.strip().endswith(": ok")
    missing = relax("info", "slaap-lang", env=env)
    assert missing.returncode == 1 and "no session called 'slaap-lang'" in missing.stderr


# ---- validate --no-voice ---------------------------------------------------------------------


def test_no_voice_still_rejects_the_neural_engine_in_a_dutch_script(tmp_path):
    path = tmp_path / "kort.nl.yaml"
    path.write_text(
        "format: 1\ntitle: Kort\nlanguage: nl\nvoice: {engine: neural}\nsteps:\n  - Hallo.\n"
    )
    for args in (("--no-voice",), ()):
        done = relax("validate", *args, str(path))
        assert done.returncode == 1
        assert f"{path}:4:17: error: voice.engine: the neural voice speaks only English" in (
            done.stderr
        )


# ---- clearer messages ---------------------------------------------------------------------------


def diagnostics(tmp_path, text: str, name="m.en.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text)
    _, found = script.check(path, allowed_dirs=(tmp_path,))
    return [str(d) for d in found if d.severity == "error"]


def test_a_negative_unit_says_a_duration_cannot_be_negative(tmp_path):
    found = diagnostics(tmp_path, HEADER + "steps:\n  - breathe: {pattern: 4-7-8, unit: -500ms}\n")
    assert len(found) == 1 and found[0].endswith(
        'steps[0].breathe.unit: expected a duration longer than zero, found "-500ms": a duration '
        "cannot be negative"
    )


def test_a_missing_cue_hint_lists_only_the_missing_phases(tmp_path):
    text = (
        "format: 1\ntitle: T\nlanguage: de\nsteps:\n"
        "  - breathe: {inhale: 4, hold: 2, exhale: 4, cues: {inhale: Ein, exhale: Aus}}\n"
    )
    found = diagnostics(tmp_path, text, "m.de.yaml")
    assert len(found) == 1 and "no cue words for hold:" in found[0]
    assert "`cues: {hold: ...}`" in found[0]


def test_a_file_that_is_not_audio_says_so(tmp_path):
    (tmp_path / "rain.wav").write_bytes(os.urandom(5000))
    text = HEADER + "background:\n  - sound: {file: rain.wav, volume: 0.3}\nsteps:\n  - Hi.\n"
    path = tmp_path / "s.en.yaml"
    path.write_text(text)
    done = relax("validate", "--no-voice", "--dir", str(tmp_path), str(path))
    assert done.returncode == 1
    assert f"{path}:5:19: error: background[0].sound.file: not a WAV, FLAC or OGG file" in (
        done.stderr
    )


@pytest.mark.parametrize(
    ("step", "where"),
    [
        ("stretch: {say: Tilt., hold: {from: 10, to: 20}}", "stretch.hold"),
        ("breathe: {pattern: 4-4, unit: {from: 1, to: 2}}", "breathe.unit"),
        ("breathe: {inhale: 4, exhale: 4, cycles: {from: 2, to: 3}}", "breathe.cycles"),
        ("breathe: {pattern: {from: 4-4, to: 5-5}}", "breathe.pattern"),
    ],
)
def test_a_ramp_where_none_is_allowed_says_where_ramps_go(tmp_path, step, where):
    found = diagnostics(tmp_path, HEADER + f"steps:\n  - {step}\n")
    assert len(found) == 1 and f"steps[0].{where}: expected" in found[0]
    assert found[0].endswith(
        "found a mapping with ramp keys (from, to, step): only a breathe step's phase lengths "
        "(inhale, hold, exhale, rest) can change over the cycles"
    )


# ---- scripts/test and apt's lock ----------------------------------------------------------------


def fake_apt(tmp_path, locked_times: int) -> dict:
    """An apt-get on PATH that fails with dpkg's lock message `locked_times` times, then works."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (bin_dir / "apt-get").write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$*" >> {calls}\n'
        f"n=$(wc -l < {calls})\n"
        f"if (( n <= {locked_times} )); then\n"
        '  echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1"\n'
        "  exit 100\nfi\n"
    )
    (bin_dir / "apt-get").chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "RELAX_APT_STEP_S": "0", "calls": calls}


def run_apt(env: dict, wait_s: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", f"source {ROOT / 'scripts' / '_apt.sh'}; apt_install xvfb sway"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "PATH": env["PATH"],
            "RELAX_APT_STEP_S": "0",
            "RELAX_APT_WAIT_S": wait_s,
        },
    )


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_the_test_script_waits_for_apts_lock(tmp_path):
    assert "apt_install" in (ROOT / "scripts" / "test").read_text()
    env = fake_apt(tmp_path, locked_times=3)
    done = run_apt(env, "300")
    assert done.returncode == 0, done.stderr
    calls = env["calls"].read_text().splitlines()
    assert len(calls) == 4 and all(c.startswith("install -y -q") for c in calls)
    assert "waiting" in done.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_the_wait_for_apts_lock_is_bounded(tmp_path):
    env = fake_apt(tmp_path, locked_times=10**6)
    done = run_apt(env, "0")
    assert done.returncode == 1
    assert "still busy" in done.stderr
