"""The README's main command, end to end, in a subprocess: on a machine with no audio device
`scripts/relax play breathing-478` says so and writes the session to a WAV file instead."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import soundfile

from tests.conftest import ROOT


def _env(**extra):
    env = dict(os.environ)
    env.update(extra)
    return env


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_main_command_exports_when_there_is_no_audio_device(tmp_path):
    # An audio driver that does not exist stands for "no sound card" on any machine.
    result = subprocess.run(
        [str(ROOT / "scripts" / "relax"), "play", "breathing-478", "--language", "en"],
        cwd=tmp_path,
        env=_env(SDL_AUDIODRIVER="no-such-device"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "no audio output device" in result.stderr
    assert "Traceback" not in result.stderr
    wav = tmp_path / "breathing-478.en.wav"
    assert result.stdout.strip().endswith("breathing-478.en.wav")

    info = json.loads(
        subprocess.run(
            [sys.executable, "-m", "audio_engine", "info", "breathing-478", "-l", "en", "--json"],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout
    )
    audio, rate = soundfile.read(wav, dtype="float32")
    assert rate == info["sample_rate"] == 44100
    assert audio.shape == (info["total_samples"], 2)

    speech = [e for e in info["events"] if e["kind"] == "speech"]
    first = speech[0]
    a, b = first["start_sample"], first["end_sample"]
    spoken = _rms(audio[a:b])
    assert spoken > 0.05, "speech should be clearly audible"
    # The first scripted silence of 1.5 s or more between lines: only the soft background plays.
    sounding = sorted(
        (e["start_sample"], e["end_sample"])
        for e in info["events"]
        if e["kind"] in ("speech", "chime")
    )
    gaps = [
        (end, nxt)
        for (_, end), (nxt, _) in zip(sounding, sounding[1:], strict=False)
        if nxt - end > 1.5 * rate
    ]
    assert gaps, "the session should have a pause"
    end, nxt = gaps[0]
    quiet = _rms(audio[end + rate // 2 : nxt - rate // 4])
    assert quiet < spoken / 6, "the pause should be near silence next to the voice"
    # The audio and its transcript, as an export writes them; no temporary files left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["breathing-478.en.vtt", wav.name]


def test_the_launcher_runs_its_own_checkout_from_any_folder(tmp_path):
    # A folder holding another `audio_engine` (another checkout, a download) must not be run in
    # place of the launcher's own when relax is started from it.
    stranger = tmp_path / "audio_engine"
    stranger.mkdir()
    (stranger / "__init__.py").write_text("raise SystemExit('the wrong audio_engine')\n")
    (stranger / "__main__.py").write_text("raise SystemExit('the wrong audio_engine')\n")
    result = subprocess.run(
        [str(ROOT / "scripts" / "relax"), "safety", "-l", "en"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "wrong audio_engine" not in result.stderr
    assert "medical" in result.stdout.lower()
