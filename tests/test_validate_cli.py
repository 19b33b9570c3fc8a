"""`relax validate`: voice names at the name, with and without the voice; `--watch`."""

from __future__ import annotations

import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HEADER = "format: 1\ntitle: T\nlanguage: en\n"
NAMED = (
    HEADER + "voice: {rate: 140, name: nobody-speaks-this}\n"
    "steps:\n  - Hello.\n  - say: Hi.\n    voice: {name: zzzz}\n"
)


def relax(*args: str, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audio_engine", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ": error: " in line]


@pytest.mark.parametrize("no_voice", [True, False], ids=["no-voice", "voice"])
def test_a_voice_name_that_matches_no_voice_is_reported_at_the_name(tmp_path: Path, no_voice):
    path = tmp_path / "named.en.yaml"
    path.write_text(NAMED)
    result = relax("validate", *(["--no-voice"] if no_voice else []), str(path))
    assert result.returncode == 1 and result.stdout == ""
    errors = _errors(result.stderr)
    assert [line.split(": error: ")[0] for line in errors] == [f"{path}:4:26", f"{path}:8:19"]
    assert "voice.name: no installed voice matches 'nobody-speaks-this'" in errors[0]
    assert "steps[1].voice.name: no installed voice matches 'zzzz'" in errors[1]


@pytest.mark.parametrize("no_voice", [True, False], ids=["no-voice", "voice"])
def test_voice_names_and_engines_are_checked_in_a_script_with_other_errors(tmp_path, no_voice):
    # Every error in the file: a voice the engines cannot give is reported beside a mistake of
    # another kind, on the session's voice and on a step that has no timing of its own.
    session_voice = tmp_path / "a.nl.yaml"
    session_voice.write_text(
        "format: 1\ntitle: T\nlanguage: nl\nvoice: {engine: neural}\n"
        "steps:\n  - Hallo.\n  - pause: -1\n"
    )
    step_voice = tmp_path / "b.en.yaml"
    step_voice.write_text(HEADER + "steps:\n  - say: Hi.\n    voice: {name: zzzz}\n  - sya: x\n")
    flags = ["--no-voice"] if no_voice else []
    result = relax("validate", *flags, str(session_voice), str(step_voice))
    assert result.returncode == 1 and result.stdout == ""
    assert [line.split(": error: ")[0] for line in _errors(result.stderr)] == [
        f"{session_voice}:4:17",
        f"{session_voice}:7:12",
        f"{step_voice}:6:19",
        f"{step_voice}:7:5",
    ]
    assert "voice.engine: the neural voice speaks only English, not 'nl'" in result.stderr
    assert "steps[0].voice.name: no installed voice matches 'zzzz'" in result.stderr


@pytest.mark.parametrize("no_voice", [True, False], ids=["no-voice", "voice"])
def test_a_sound_file_that_does_not_play_is_reported_in_a_script_with_other_errors(
    tmp_path, no_voice
):
    (tmp_path / "rain.wav").write_text("not audio")
    path = tmp_path / "s.en.yaml"
    path.write_text(
        HEADER + "background:\n  - sound: {file: rain.wav, volume: 0.5}\nsteps:\n  - pause: -1\n"
    )
    result = relax("validate", *(["--no-voice"] if no_voice else []), str(path))
    assert result.returncode == 1 and result.stdout == ""
    assert _errors(result.stderr) == [
        f"{path}:5:19: error: background[0].sound.file: not a WAV, FLAC or OGG file",
        f"{path}:7:12: error: steps[0].pause: expected a duration longer than zero, found -1: "
        "a duration cannot be negative",
    ]


def test_no_voice_checks_names_against_the_voice_list_only_when_there_is_an_engine(tmp_path):
    if ctypes.util.find_library("espeak-ng"):
        pytest.skip("this machine has a system espeak-ng: the engine starts")
    path = tmp_path / "named.en.yaml"
    path.write_text(NAMED)
    no_engine = {"RELAX_ESPEAK": "system", "RELAX_CACHE_DIR": str(tmp_path / "cache")}
    result = relax("validate", "--no-voice", str(path), env=no_engine)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{path}: ok\n"
    assert f"{path}: note: voice names not checked (no speech engine: " in result.stderr
    # a script without names needs no engine and says nothing about it
    plain = tmp_path / "plain.en.yaml"
    plain.write_text(HEADER + "steps: [Hello.]\n")
    result = relax("validate", "--no-voice", str(plain), env=no_engine)
    assert (result.returncode, result.stderr) == (0, "")


class _Lines:
    """The lines a process writes to one stream, read on a thread as they come."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, predicate, after: int = 0, timeout: float = 60.0) -> int:
        """Index of the first line from `after` on that `predicate` accepts."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(after, len(self.lines)):
                    if predicate(self.lines[i]):
                        return i
                left = deadline - time.monotonic()
                assert left > 0, "timed out; got:\n" + "\n".join(self.lines)
                self._cond.wait(left)


def test_watch_checks_again_on_every_save_and_ctrl_c_ends_it(tmp_path: Path):
    path = tmp_path / "draft.en.yaml"
    path.write_text(HEADER + "steps:\n  - pause: 2\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "audio_engine", "validate", "--watch", "--no-voice", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = _Lines(process.stdout), _Lines(process.stderr)
        out.wait_for(lambda line: line == f"{path}: ok")
        ready = err.wait_for(lambda line: line.startswith("watching 1 file"))
        # a save with an error: the new diagnostic, at its place
        path.write_text(HEADER + "steps:\n  - pause: -2\n")
        changed = err.wait_for(lambda line: "draft.en.yaml changed, checking again" in line, ready)
        at = err.wait_for(lambda line: ": error: " in line, changed)
        assert err.lines[at].startswith(f"{path}:5:12: error: steps[0].pause: ")
        # an editor that saves by writing a new file and renaming it into place
        fixed = tmp_path / "draft.tmp"
        fixed.write_text(HEADER + "steps:\n  - pause: 3\n  - Welcome back.\n")
        os.replace(fixed, path)
        again = err.wait_for(lambda line: "checking again" in line, at + 1)
        out.wait_for(lambda line: line == f"{path}: ok", 1)
        assert not any(": error: " in line for line in err.lines[again:])
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
        err.wait_for(lambda line: line == "stopped watching", again)
        assert not any("Traceback" in line for line in err.lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_file_name_with_control_characters_is_printed_escaped(tmp_path):
    path = tmp_path / "calm\x1b]0;owned\x07.en.yaml"
    path.write_text("format: 1\ntitle: Calm\nlanguage: en\nsteps:\n  - pause: 1\n")
    result = relax("validate", "--no-voice", str(path))
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr and "\x07" not in result.stdout
    assert result.stdout.strip().endswith("calm\\u001b]0;owned\\u0007.en.yaml: ok")
