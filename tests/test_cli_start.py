"""Commands that start at once: `relax --help` imports no command module, and `safety`,
`history`, `list`, `validate --no-voice`, `info` (its speech made) and `--help` never import
numpy or an engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from audio_engine import cli

ROOT = Path(__file__).resolve().parent.parent


def _summaries(parser) -> dict[str, str]:
    commands = next(a for a in parser._actions if a.dest == "command")
    return {action.dest: action.help for action in commands._choices_actions}


def test_the_help_lists_every_command_with_its_own_summary():
    assert _summaries(cli.build_parser(light=True)) == _summaries(cli.build_parser())
    assert list(cli.SUMMARIES) == list(cli.COMMANDS)


@pytest.mark.parametrize(
    "words",
    [
        ["--help"],
        ["safety"],
        ["history"],
        ["list"],
        ["validate", "--no-voice", "sessions/breathing-478.en.yaml"],
        ["info", "sessions/breathing-478.nl.yaml"],
    ],
    ids=lambda w: " ".join(w),
)
def test_light_commands_import_no_numpy_and_no_engine(words):
    if words[0] == "info":  # its speech made first: then it only reads the clips' lengths
        made = subprocess.run(
            [sys.executable, "-m", "audio_engine", *words], cwd=ROOT, capture_output=True
        )
        assert made.returncode == 0, made.stderr[-2000:]
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "audio_engine", *words],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    heavy = {"numpy", "pygame", "soundfile", "pyttsx3", "onnxruntime", "lameenc", "mutagen"}
    assert not heavy & imported, sorted(heavy & imported)
    if words == ["--help"]:
        assert not {m for m in imported if m.startswith("audio_engine.cli.")}


def test_a_timeline_with_chimes_needs_no_numpy():
    """What `relax list` and `relax info` place a session by (its script, its lines, its timeline
    with every chime at its length) loads no numpy: the chime lengths come from `chimes`."""
    code = (
        "import sys\n"
        "from audio_engine import script, timeline\n"
        "from audio_engine.model import SAMPLE_RATE\n"
        "session, _ = script.check(sys.argv[1])\n"
        "lengths = {u: SAMPLE_RATE for u in timeline.speech_requests(session)}\n"
        "compiled = timeline.compile(session, lengths, strict=False)\n"
        "chimes = [e for e in compiled.events if e.kind == 'chime']\n"
        "print(len(chimes), compiled.total_samples, 'numpy' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "sessions/breathing-478.en.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    count, total, numpy_loaded = done.stdout.split()
    assert int(count) > 0 and int(total) > 0
    assert numpy_loaded == "False"


def test_a_command_knows_when_its_process_started():
    # `relax play` counts a cold start's wait for speech (`pipeline.ESTIMATE_WAIT_S`) from here:
    # Python's start-up and the imports are part of the time to the first sound.
    code = (
        "import time; time.sleep(0.4); from audio_engine.cli import _common; "
        "print(time.monotonic() - _common.command_started())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert 0.4 <= float(done.stdout) < 2.0
