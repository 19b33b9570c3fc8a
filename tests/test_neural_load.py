"""The neural voice's cold start: what loads it faster must not change a sample.

The vocoder's FFTs through pocketfft's kernels give scipy.fft's very samples; the pronunciation
tables kept in the cache folder answer what hibari's JSON answers, and a damaged copy is made
again; a session with speech to make starts loading the voice at once (and one with all its
speech cached does not); a cold start estimates the gain when the voice would take longer to
make the speech than the budget, and measures it when the speech is quick to make.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.fft

import audio_engine.gain as gain_stage
from audio_engine import pipeline, timeline
from audio_engine.speech import _hibari_compat, neural, voices

ROOT = Path(__file__).resolve().parent.parent


def test_the_vocoders_ffts_are_scipys_own_samples():
    stand_in = _hibari_compat._pocketfft()
    assert stand_in is not None, "pocketfft's kernels load on their own"
    rng = np.random.default_rng(7)
    for frames in (1, 4, 37, 240, 811):  # hibari's shapes: [frames, 1200] and [601, frames].T
        x = rng.standard_normal((frames, 1200)).astype(np.float32)
        ours, theirs = stand_in.rfft(x.copy(), axis=1), scipy.fft.rfft(x.copy(), axis=1)
        assert ours.dtype == theirs.dtype == np.complex64
        assert np.array_equal(ours, theirs)
        spec = rng.standard_normal((601, 2 * frames), dtype=np.float32).view(np.complex64)
        ours, theirs = stand_in.irfft(spec.T, n=1200, axis=1), scipy.fft.irfft(spec.T, 1200, 1)
        assert ours.dtype == theirs.dtype == np.float32
        assert np.array_equal(ours, theirs)
    with pytest.raises(TypeError):
        stand_in.rfft(x, n=600)  # only the calls hibari makes


def test_hibari_imported_by_the_voice_uses_the_stand_in_without_scipy_fft():
    code = textwrap.dedent(
        """
        import sys
        from audio_engine.speech import _hibari_compat
        hibari = _hibari_compat.import_hibari()
        print("scipy.fft" in sys.modules, hibari.dsp.FFT_BACKEND, hibari.dsp._sf.__doc__)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    imported, backend, doc = done.stdout.split(" ", 2)
    assert imported == "False" and backend == "scipy" and "pocketfft" in doc


def _english_lines() -> list[str]:
    lines = []
    for name in ("quick-reset", "body-scan", "desk-stretches", "breathing-478"):
        lines += [u.text for u in timeline.speech_order(pipeline.load(name, "en"))]
    lines += ["It's 3:45 on Dec. 3rd; Dr. Smith read 1,250 words, re-read them, and used a pun."]
    return list(dict.fromkeys(lines))


def test_the_saved_pronunciation_tables_answer_as_hibaris_json(tmp_path, monkeypatch):
    monkeypatch.setattr(neural, "TABLES_WRITE_DELAY_S", 0.0)
    monkeypatch.setattr(neural, "BUILT_TABLES_FOLDER", tmp_path / "none built")
    voice = neural.VOICES[0]
    plain = neural._g2p(voice, None)  # hibari's own JSON, no cache folder
    first = neural._g2p(voice, tmp_path)  # the same, and the tables saved
    for thread in threading.enumerate():
        if thread.name == "relax-neural-tables":
            thread.join(30)
    path = neural._tables_file(tmp_path, voice)
    saved = neural._read_tables(path)
    assert saved is not None and any(isinstance(t, neural._Buckets) for t in saved.values()), (
        "the large tables are kept in buckets"
    )
    again = neural._g2p(voice, tmp_path)  # from the saved tables
    assert isinstance(again.lexicon.golds.d, neural._Buckets)
    assert isinstance(again.lexicon.golds.d._blobs, neural._Stored), "read from the file"
    lines = _english_lines()
    assert len(lines) > 60
    for line in lines:
        assert again(line) == first(line) == plain(line), line
    # A bucketed table is the JSON object it was made from.
    gold = neural._unpack(neural._pack(plain.lexicon.golds.d))
    assert isinstance(gold, neural._Buckets) and len(gold) == len(plain.lexicon.golds.d)
    assert dict(gold) == plain.lexicon.golds.d
    assert gold.get("calm") == plain.lexicon.golds.d["calm"] and gold.get("zzzq") is None
    assert 3 not in gold


def test_damaged_tables_are_made_again(tmp_path, monkeypatch):
    monkeypatch.setattr(neural, "TABLES_WRITE_DELAY_S", 0.0)
    monkeypatch.setattr(neural, "BUILT_TABLES_FOLDER", tmp_path / "none built")
    voice = neural.VOICES[0]
    path = neural._tables_file(tmp_path, voice)
    path.parent.mkdir(parents=True)
    path.write_bytes(neural._TABLES_MAGIC + b"\0" * 32 + b"not marshal")
    assert neural._read_tables(path) is None
    made = neural._g2p(voice, tmp_path)
    for thread in threading.enumerate():
        if thread.name == "relax-neural-tables":
            thread.join(30)
    assert neural._read_tables(path) is not None
    assert made("Let your shoulders drop.") == neural._g2p(voice, None)("Let your shoulders drop.")


def test_tables_built_with_the_environment_are_read_and_none_written(tmp_path, monkeypatch):
    # What scripts/_bootstrap.sh does after installing: the first start of the voice reads the
    # tables packed (no JSON, nothing to write into the cache folder).
    monkeypatch.setattr(neural, "BUILT_TABLES_FOLDER", tmp_path / "built")
    voice = neural.VOICES[0]
    built = neural.build_tables()
    assert built == neural._built_tables_file(voice) and neural._read_tables(built) is not None
    assert neural.build_tables() == built  # once
    made = neural._g2p(voice, tmp_path / "cache")
    neural._finish_writes()
    assert not (tmp_path / "cache").exists(), "nothing packed on the first start"
    assert isinstance(made.lexicon.golds.d._blobs, neural._Stored)
    line = "Let your shoulders drop, and breathe out slowly through the mouth."
    assert made(line) == neural._g2p(voice, None)(line)


def test_a_first_loads_tables_are_saved_when_the_voice_is_let_go(tmp_path, monkeypatch):
    monkeypatch.setattr(neural, "TABLES_WRITE_DELAY_S", 600.0)  # not by waiting
    monkeypatch.setattr(neural, "BUILT_TABLES_FOLDER", tmp_path / "none built")
    voice = neural.VOICES[0]
    neural._g2p(voice, tmp_path)
    assert neural.release()
    assert neural._read_tables(neural._tables_file(tmp_path, voice)) is not None


def test_the_voice_let_go_after_a_sessions_speech_speaks_the_same_again(tmp_path, monkeypatch):
    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "cache"))
    path = _write(tmp_path, "two.en.yaml", "".join(LINES.splitlines(True)[:2]))
    before = neural.speech("Let your jaw grow soft.", 140)
    assert neural.loaded()
    prepared = pipeline.prepare(pipeline.load(str(path)))  # every clip made: the voice goes
    assert len(prepared.timeline.transcript()) == 2
    assert not neural.loaded() and not neural._engines and not neural._loading
    assert np.array_equal(neural.speech("Let your jaw grow soft.", 140), before)
    assert neural.loaded()
    neural.release()
    assert not neural.loaded()


LINES = "".join(
    f"  - say: Line {n}, let your {part} grow soft and quiet now.\n"
    for n, part in enumerate(["jaw", "neck", "shoulders", "arms", "hands", "chest", "belly"], 1)
)


def _run(code: str, cache, *, timeout=120) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "RELAX_CACHE_DIR": str(cache)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_session_with_speech_to_make_starts_loading_the_voice_at_once(tmp_path):
    path = tmp_path / "lines.en.yaml"
    path.write_text(f"format: 1\ntitle: Lines\nlanguage: en\nsteps:\n{LINES}")
    code = f"""
        import threading
        from audio_engine import pipeline
        from audio_engine.speech import neural
        growing = pipeline.Growing(pipeline.load({str(path)!r}))
        names = {{t.name for t in threading.enumerate()}}
        print(growing.missing_at_start, "relax-neural-g2p" in names or neural.loaded())
        growing.prepared()
        growing.close()
        """
    cache = tmp_path / "cache"
    assert _run(code, cache) == "7 True"
    # Everything cached: the voice is not loaded for nothing.
    assert _run(code, cache) == "0 False"


def test_a_cold_start_estimates_when_the_voice_would_make_it_wait(tmp_path, monkeypatch):
    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "cache"))

    class NotLoaded(neural.Neural):  # as in a new process
        def loaded(self):
            return False

    with voices.swapped(NotLoaded()):
        _estimates_the_wait(tmp_path)


def _estimates_the_wait(tmp_path):
    many = pipeline.load(str(_write(tmp_path, "many.en.yaml", LINES)))
    order = timeline.speech_order(many)
    assert pipeline.synthesis_cost_s(order, 2) > pipeline.EXACT_BUDGET_S
    growing = pipeline.Growing(many)
    try:
        gain = growing.gain()
        key = pipeline._gain_file(many, None, growing.sources)
        assert pipeline._read_gain(key) == (gain, True), "estimated, and remembered as such"
        prepared = growing.prepared()
    finally:
        growing.close()
    measured = gain_stage.measure_gain(prepared.timeline, prepared.sources)
    assert abs(20 * math.log10(gain / measured)) < pipeline.ESTIMATE_ERROR_DB
    # Two short lines are quick to make even with the load: measured, as an export does.
    few = pipeline.load(str(_write(tmp_path, "few.en.yaml", "".join(LINES.splitlines(True)[:2]))))
    assert pipeline.synthesis_cost_s(timeline.speech_order(few), 2) < pipeline.EXACT_BUDGET_S
    growing = pipeline.Growing(few)
    try:
        gain = growing.gain()
        assert pipeline._read_gain(pipeline._gain_file(few, None, growing.sources)) == (
            gain,
            False,
        )
    finally:
        growing.close()


def _write(folder, name, steps):
    path = folder / name
    path.write_text(f"format: 1\ntitle: {name}\nlanguage: en\nsteps:\n{steps}")
    return path


def test_the_session_without_its_memory_arena_computes_the_same_samples(monkeypatch, tmp_path):
    import onnxruntime as ort

    # Ours from the model as onnxruntime has optimized it (kept in the cache folder), theirs from
    # hibari's own model, as hibari makes it.
    monkeypatch.setattr(neural, "BUILT_TABLES_FOLDER", tmp_path / "none built")
    voice = neural.VOICES[0]
    optimized = neural._optimized_file(tmp_path, voice)
    neural._write_model(optimized, voice)
    ours = neural._session(voice, tmp_path)
    assert ours._model_path == str(optimized)
    options = ours.get_session_options()
    assert not options.enable_cpu_mem_arena and not options.enable_mem_pattern
    assert options.get_session_config_entry("session.disable_prepacking") == "1"
    assert options.intra_op_num_threads == options.inter_op_num_threads == 1
    hibaris = ort.SessionOptions()  # as hibari makes it: arena and memory pattern on
    hibaris.intra_op_num_threads = hibaris.inter_op_num_threads = 1
    hibaris.log_severity_level = 3
    theirs = ort.InferenceSession(
        str(neural._model_file(voice)), hibaris, providers=["CPUExecutionProvider"]
    )
    engine = neural.load(voice)
    lines = _english_lines()[:12]
    made = {}
    for name, session in (("ours", ours), ("theirs", theirs)):
        monkeypatch.setattr(engine, "sess", session)
        made[name] = [neural.speech(line, 140) for line in lines]
    for line, a, b in zip(lines, made["ours"], made["theirs"], strict=True):
        assert a.dtype == b.dtype == np.float32 and np.array_equal(a, b), line


def test_a_damaged_optimized_model_is_not_used_and_made_again(tmp_path, monkeypatch):
    monkeypatch.setattr(neural, "BUILT_TABLES_FOLDER", tmp_path / "built")
    monkeypatch.setattr(neural, "TABLES_WRITE_DELAY_S", 0.0)
    voice = neural.VOICES[0]
    built = neural._optimized_file(tmp_path / "built", voice)
    neural.build_tables()  # what setting up the environment does
    assert neural._checked_model(built)
    assert neural._session(voice, tmp_path / "cache")._model_path == str(built)
    data = bytearray(built.read_bytes())
    data[len(data) // 2] ^= 1
    built.write_bytes(bytes(data))
    assert not neural._checked_model(built)
    session = neural._session(voice, tmp_path / "cache")
    assert session._model_path == str(neural._model_file(voice)), "hibari's own model"
    neural._finish_writes()  # made again in the cache folder
    again = neural._optimized_file(tmp_path / "cache", voice)
    assert neural._checked_model(again)
    assert neural._session(voice, tmp_path / "cache")._model_path == str(again)
