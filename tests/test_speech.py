"""The speech package's seams: engines behind one interface, the clip cache's keys and faults.

The engines themselves are tested in test_tts.py (espeak-ng) and test_neural*.py (the neural
voice); here: what every engine shares, that keys of clips cached by earlier versions still
match, that any failure while a clip is made reaches whoever waits for it (never a hang), and
that a cache folder that cannot be written (a file in its place, a full disk, a read-only file
system) still gives the same export, with speech made in memory and one line said about it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from audio_engine import model, tts
from audio_engine.cli import main as relax_main
from audio_engine.errors import TTSError
from audio_engine.speech import Synthesizer, cache, engine, espeak, neural, voices

DUTCH = """format: 1
id: short
title: Kort
language: nl
steps:
  - say: Adem rustig in.
  - pause: 1s
  - say: En weer uit.
"""


ENGLISH = (
    DUTCH.replace("language: nl", "language: en")
    .replace("Adem rustig in.", "Breathe in slowly.")
    .replace("En weer uit.", "And out again.")
)


def utt(text: str, language: str = "nl", rate_wpm: int = 150, volume: float = 1.0):
    return model.Utterance(text, language, model.Voice(rate_wpm=rate_wpm, volume=volume))


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    path = tmp_path / "speech"
    monkeypatch.setenv("RELAX_CACHE_DIR", str(path))
    return path


# ---- the interface -----------------------------------------------------------------------------


def test_every_engine_is_an_engine_and_named_as_in_the_model():
    for name in model.ENGINES:
        found = voices.engine(name)
        assert isinstance(found, engine.Engine) and found.name == name
    with pytest.raises(TTSError, match="unknown speech engine 'festival'"):
        voices.voice_for("en", engine="festival")


def test_cache_keys_are_those_of_earlier_versions(fresh_cache):
    # Computed by the code before the speech package (tts._cache_key): no clip is made again
    # after an upgrade.
    espeak_version = "pyttsx3 2.99; driver espeak; espeak-ng 1.52.0; espeakng-loader 0.2.4"
    neural_version = (
        "hibari-tts 0.2.1; onnxruntime 1.22.0; soxr 0.5.0; model 5f70741d4e90; delivery 1"
    )
    cases = [
        (utt("Breathe in slowly.", "en", 150, 1.0), "hibari/heart", neural_version,
         "25dd7387ff7e11c0cb880398dc4c48d55d2c36b97a57731c05869d01f2e3bed0"),
        (utt("Adem rustig in", "nl", 140, 0.8), "gmw/nl", espeak_version,
         "0674a665f92fbb8838533512c82328d86ad0505e495fef534340b7acbd6593e8"),
        (utt("Zähle: 3, 2, 1 — und ö.", "de", 141, 0.5), "gmw/de", espeak_version,
         "04f651e92c8639ba562005b5f60706e1e9ebeec889756e770915bec402534dee"),
    ]  # fmt: skip
    for u, voice_id, version, key in cases:
        assert cache.key(u, voice_id, version) == key
        assert cache.path_of(key) == fresh_cache / key[:2] / f"{key}.f32"


def test_the_cache_folder_is_in_relax_cache_root_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("RELAX_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_dir() == cache.cache_root() / "speech"
    assert str(cache.cache_root()).startswith(str(tmp_path))


def test_the_shared_checks_trim_ramp_and_reject():
    rate = model.SAMPLE_RATE
    t = np.arange(rate) / rate
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    signal = np.concatenate([np.zeros(rate // 2, np.float32), tone, np.zeros(rate, np.float32)])
    clip = engine.checked(signal, utt("Een twee drie", rate_wpm=150))
    margin = round(engine.TRIM_MARGIN_S * rate)
    assert abs(clip.size - (rate + 2 * margin)) <= 2
    assert abs(clip[0]) < 1e-3 and abs(clip[-1]) < 1e-3  # ramped to the edges
    with pytest.raises(engine.ClipRejected, match="only silence"):
        engine.checked(np.zeros(rate, np.float32), utt("Een"))
    with pytest.raises(engine.ClipRejected, match="implausible length"):
        engine.checked(signal, utt("Een twee drie vier vijf zes zeven acht negen tien elf"))


# ---- failures reach the waiting side -----------------------------------------------------------


class Failing(espeak.Espeak):
    """espeak-ng's voices, but every clip fails the way an unexpected fault does."""

    def __init__(self, exc: BaseException):
        super().__init__()
        self.exc = exc

    def make_clip(self, utterance, voice, running=None):
        raise self.exc


@pytest.mark.parametrize(
    "exc",
    [PermissionError(13, "Permission denied", "/nowhere/x.f32"), RuntimeError("a bug")],
    ids=["oserror", "bug"],
)
def test_any_failure_in_a_worker_reaches_the_waiting_side(fresh_cache, exc):
    u = utt("Adem rustig in.")
    with voices.swapped(Failing(exc)):
        with Synthesizer(jobs=1) as synth:
            synth.request([u])
            with pytest.raises(TTSError, match="'Adem rustig in.'") as raised:
                synth.clip(u, timeout=20)  # not a ClipNotReady: the failure itself
            assert not isinstance(raised.value, tts.ClipNotReady)
            if isinstance(exc, OSError):
                assert "permission denied (/nowhere/x.f32)" in str(raised.value)
        # Both lines fail: whichever worker reports first names its own line.
        with pytest.raises(TTSError, match="'Adem rustig in.'|'En weer uit.'"):
            tts.synthesize_many([u, utt("En weer uit.")])
        with pytest.raises(TTSError, match="'Adem rustig in.'"):
            tts.clip_lengths([u])


def test_a_failing_engine_is_one_line_and_exit_1(fresh_cache, tmp_path, capsys):
    script = tmp_path / "short.nl.yaml"
    script.write_text(DUTCH)
    out = tmp_path / "out.wav"
    failing = Failing(PermissionError(13, "Permission denied", "/nowhere/x.f32"))
    with voices.swapped(failing):
        assert relax_main(["export", str(script), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "permission denied" in err
    assert not out.exists() and not list(tmp_path.glob("out*"))


# ---- a cache folder that cannot be written -----------------------------------------------------


def _export(script: Path, out: Path, cache_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audio_engine", "export", str(script), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RELAX_CACHE_DIR": str(cache_dir)},
    )


@contextlib.contextmanager
def _tmpfs(path: Path, options: str):
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


@pytest.mark.parametrize(
    ("fault", "language"),
    [("a file", "nl"), ("a full disk", "nl"), ("read-only", "nl"), ("a full disk", "en")],
)
def test_a_cache_that_cannot_be_written_gives_the_same_export(tmp_path, fault, language):
    # English: the neural voice, whose pronunciation tables are written at exit too.
    if language == "en" and not neural.available():
        pytest.skip("hibari-tts is not installed")
    script = tmp_path / f"short.{language}.yaml"
    text = DUTCH if language == "nl" else ENGLISH
    script.write_text(text)
    clean = _export(script, tmp_path / "clean.wav", tmp_path / "clean-cache")
    assert clean.returncode == 0, clean.stderr
    with contextlib.ExitStack() as stack:
        if fault == "a file":
            folder = tmp_path / "cache-file"
            folder.write_bytes(b"not a folder")
        elif fault == "a full disk":  # room for small files, not for a clip
            folder = stack.enter_context(_tmpfs(tmp_path / "full", "size=48k"))
        else:
            folder = stack.enter_context(_tmpfs(tmp_path / "ro", "ro,size=1m"))
        done = _export(script, tmp_path / "out.wav", folder)
        assert done.returncode == 0, done.stderr
        lines = done.stderr.strip().splitlines()
        warned = [line for line in lines if "speech cache cannot be kept" in line]
        assert len(warned) == 1 and "in memory for this run" in warned[0], done.stderr
        assert str(folder) in warned[0] and "Traceback" not in done.stderr
        if folder.is_dir():
            leftovers = [p.name for p in folder.rglob("*") if p.name.endswith(".tmp")]
            assert leftovers == []
            if language == "en":  # the tables did not fit either, and left nothing behind
                assert not list(folder.rglob("g2p-*"))
    assert (tmp_path / "out.wav").read_bytes() == (tmp_path / "clean.wav").read_bytes()


# ---- hibari's private parts --------------------------------------------------------------------


@pytest.mark.skipif(not neural.available(), reason="hibari-tts is not installed")
def test_what_relax_relies_on_inside_hibari_still_holds():
    from audio_engine.speech import _hibari_compat

    hibari = _hibari_compat.import_hibari()
    assert _hibari_compat.check(hibari) == [], (
        "hibari-tts changed under relax's compat module: see audio_engine/speech/_hibari_compat.py"
    )
    # The assembled voice speaks as hibari's own does.
    ours = neural.load()
    theirs = hibari.Hibari(ours.voice)
    text = "Let your shoulders drop, and breathe out slowly."
    assert np.array_equal(ours(text, speed=0.7, seed=0), theirs(text, speed=0.7, seed=0))


@pytest.mark.skipif(not neural.available(), reason="hibari-tts is not installed")
def test_the_compat_check_notices_a_change(monkeypatch):
    from audio_engine.speech import _hibari_compat

    hibari = _hibari_compat.import_hibari()
    monkeypatch.delattr(hibari.g2p, "_load_json")
    assert _hibari_compat.check(hibari) == ["hibari.g2p._load_json is gone"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork servers are Linux's")
def test_the_fork_servers_are_let_go_once_a_sessions_speech_is_made(fresh_cache, tmp_path):
    from audio_engine import pipeline

    script = tmp_path / "short.nl.yaml"
    script.write_text(DUTCH)
    tts.synthesize(utt("Eerst dit."))  # a server is started, and kept for the next clip
    assert any(server.alive() for server in espeak._SERVERS._idle)
    pipeline.prepare(pipeline.load(str(script)))
    assert not espeak._SERVERS._idle
    assert not any(server.alive() for server in espeak._SERVERS._all), "stopped"
    tts.synthesize(utt("Nog een keer."))  # the next clip starts one again
    assert any(server.alive() for server in espeak._SERVERS._idle)
