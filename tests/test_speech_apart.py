"""A session's neural speech made in a process forked for it (`speech.apart`).

What the export then renders with: the same clips as made in relax's own process, no model, no
onnxruntime in the process that measures and renders, no process left behind; a failure while a
line is made is that line's error; a Ctrl-C stops the process apart with the command (130, no
traceback, nothing half-written in the cache folder). The vocoder that lets the network's
outputs go as it uses them gives hibari's very samples.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from audio_engine import pipeline, timeline, tts
from audio_engine.errors import TTSError
from audio_engine.speech import _hibari_compat, apart, neural, voices

pytestmark = pytest.mark.skipif(not neural.available(), reason="hibari-tts is not installed")

ROOT = Path(__file__).resolve().parent.parent


def _python(code: str, cache: Path) -> subprocess.CompletedProcess:
    """`code` run by a fresh Python from the checkout, with `cache` as its cache folder."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "RELAX_CACHE_DIR": str(cache)},
    )


LINES = """format: 1
title: Three lines
language: en
steps:
  - say: Let your jaw grow soft.
  - pause: 1s
  - say: Breathe out slowly, and let the shoulders drop.
  - say: Rest here.
"""


def _script(tmp_path: Path, text: str = LINES) -> Path:
    path = tmp_path / "three.en.yaml"
    path.write_text(text)
    return path


def test_the_speech_is_made_apart_and_the_model_leaves_with_its_process(tmp_path, monkeypatch):
    script = _script(tmp_path)
    code = f"""
        import os, sys
        from audio_engine import pipeline
        prepared = pipeline.prepare(pipeline.load({str(script)!r}))
        try:
            os.waitpid(-1, os.WNOHANG)
            left = True
        except ChildProcessError:
            left = False
        print(len(prepared.timeline.transcript()), "onnxruntime" in sys.modules,
              "hibari" in sys.modules, left)
        """
    apart_cache = tmp_path / "apart"
    done = _python(code, apart_cache)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "False", "False", "False"], done.stdout
    # The clips made apart are the clips this process makes itself.
    session = pipeline.load(str(script))
    order = timeline.speech_order(session)
    monkeypatch.setenv("RELAX_CACHE_DIR", str(apart_cache))
    made_apart = [tts.cached(u) for u in order]
    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "here"))
    for u, clip in zip(order, made_apart, strict=True):
        assert clip is not None and np.array_equal(clip, tts.synthesize(u)), u.text


class _Failing(neural.Neural):
    """The neural voice, whose clips fail (naming the process they fail in)."""

    def make_clip(self, utterance, voice, running=None):
        raise RuntimeError(f"a bug in process {os.getpid()}")


def test_a_line_that_fails_apart_is_that_lines_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "cache"))
    started = []

    def start():
        found = apart.Apart()
        started.append(found)
        return found

    monkeypatch.setattr(apart, "start", start)
    before = set(_children())  # what earlier tests in this process started (espeak-ng servers)
    with voices.swapped(_Failing()), pytest.raises(TTSError) as raised:
        pipeline.prepare(pipeline.load(str(_script(tmp_path))))
    message = str(raised.value)
    assert "could not make the speech for" in message and "RuntimeError: a bug" in message
    assert f"process {os.getpid()}" not in message, "made in the process apart"
    assert len(started) == 1 and started[0].pid is None, "closed"
    left = set(_children()) - before
    assert not any(Path(f"/proc/{pid}").exists() for pid in left), "no process left behind"


def _children() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() and fields[0] != "Z":
                found.append(int(entry))
    return found


def test_ctrl_c_while_the_speech_is_made_apart(tmp_path):
    many = "".join(
        f"  - say: Line {n}, let your {part} grow soft and quiet, and rest there a while.\n"
        for n, part in enumerate(["jaw", "neck", "shoulders", "arms", "hands", "chest"] * 4, 1)
    )
    script = _script(tmp_path, LINES.split("steps:")[0] + "steps:\n" + many)
    cache = tmp_path / "cache"
    proc = subprocess.Popen(
        [sys.executable, "-m", "audio_engine", "export", str(script), "-o", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "RELAX_CACHE_DIR": str(cache)},
    )
    deadline = time.monotonic() + 60
    while len(list(cache.glob("??/*.f32"))) < 2:  # the process apart has made two clips
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no speech was made"
        time.sleep(0.02)
    child = [p for p in _descendants(proc.pid) if p != proc.pid]
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: to both
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.strip().endswith("relax: interrupted")
    assert child and not any(Path(f"/proc/{p}").exists() for p in child)
    assert not list(cache.rglob("*.tmp")), "nothing half-written"
    assert not list(tmp_path.glob("*.wav"))


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def test_the_lean_vocoder_gives_hibaris_samples():
    from hibari import dsp

    engine = neural.load()
    speed = np.asarray([neural.speed_for(140)], np.float32)
    texts = [
        "Let your attention rest on the soles of your feet.",
        "Notice whatever is there: warmth or coolness, pressure or lightness, or nothing at all.",
        "Breathe in.",
    ]
    for text in texts:
        for phonemes in engine.phonemize(text):
            ids = np.asarray([engine.ids(phonemes)], np.int64)
            out = engine.sess.run(None, {"ids": ids, "speed": speed})
            f0 = neural._calm_pitch(out[5][0])
            theirs = dsp.synth(*(o[0] for o in out[:5]), f0, np.random.default_rng(0))
            spectra = [o[0].copy() for o in out[:5]]
            ours = _hibari_compat.synth(spectra, f0, np.random.default_rng(0))
            assert spectra == [], "the outputs are let go"
            assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs), text


def test_the_process_apart_ends_when_relax_is_killed(tmp_path):
    # Killed outright (SIGKILL), relax cannot stop it: the system does, and it makes no more
    # clips (left alone it would make all 40 first).
    lines = "".join(f"  - say: Line {n}, let your breath grow slow and soft.\n" for n in range(40))
    script = _script(tmp_path, LINES.split("steps:")[0] + "steps:\n" + lines)
    code = f"""
        import os, signal, sys
        from audio_engine import pipeline, timeline
        from audio_engine.speech import apart
        session = pipeline.load({str(script)!r})
        speech = apart.start()
        print(speech.pid, flush=True)
        speech._send(timeline.speech_order(session))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    cache = tmp_path / "cache"
    done = _python(code, cache)
    assert done.returncode == -signal.SIGKILL, done.stderr
    child = int(done.stdout)
    deadline = time.monotonic() + 120
    while _alive(child):
        assert time.monotonic() < deadline, "the process apart lives on"
        time.sleep(0.05)
    assert len(list(cache.glob("??/*.f32"))) < 40


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
