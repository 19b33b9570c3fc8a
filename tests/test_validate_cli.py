"""`relax validate`: voice names at the name, with and without the voice; `--watch`."""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
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
