"""The tts stage with the real engine (pyttsx3 + espeak-ng): clips, voices, cache, determinism.

Only the retry mechanism uses a fake: the worker's `RELAX_TTS_FAULT` hook writes an empty WAV.
Most tests use a fresh cache folder so that they really synthesize.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from audio_engine import model, tts
from audio_engine.cli import voices as voices_cli
from audio_engine.errors import TTSError

RATE = model.SAMPLE_RATE
TEN_MS = RATE // 100


def utt(text, language="en", *, name=None, rate_wpm=150, volume=1.0):
    return model.Utterance(text, language, model.Voice(name=name, rate_wpm=rate_wpm, volume=volume))


def rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty speech cache for this test only."""
    path = tmp_path / "speech"
    monkeypatch.setenv("RELAX_CACHE_DIR", str(path))
    return path


def _run_python(code: str, cache_dir, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        timeout=60,
        env={**os.environ, "RELAX_CACHE_DIR": str(cache_dir), **env},
    )


# ---- clips -------------------------------------------------------------------------------------


def test_clip_is_float32_at_engine_rate_and_starts_and_ends_with_sound(fresh_cache):
    clip = tts.synthesize(utt("Breathe in slowly through your nose"))
    assert clip.dtype == np.float32 and clip.ndim == 1
    duration_s = clip.size / RATE
    # Six words at 150 wpm is 2.4 s of "words"; espeak speaks it in about 1.7 s.
    assert 1.0 < duration_s < 3.0
    assert rms(clip[:TEN_MS]) > 0.002, "leading silence was not trimmed"
    assert rms(clip[-TEN_MS:]) > 0.0005, "trailing silence was not trimmed"
    # The ramps: both ends start from (almost) zero, so nothing clicks.
    assert abs(clip[0]) < 1e-3 and abs(clip[-1]) < 1e-3
    assert np.max(np.abs(clip)) > 0.1


def test_long_speech_arrives_whole(fresh_cache):
    # Regression: pyttsx3's runAndWait returns ~10 ms after espeak starts; a worker that exited
    # then wrote no file for any text longer than that.
    clip = tts.synthesize(utt("1234567", rate_wpm=80))
    assert clip.size / RATE > 5.0


def test_rate_changes_length_in_the_expected_direction(fresh_cache):
    slow = tts.synthesize(utt("Let your shoulders drop", rate_wpm=100))
    fast = tts.synthesize(utt("Let your shoulders drop", rate_wpm=250))
    assert 1.8 < slow.size / fast.size < 3.5  # ideally 2.5


def test_volume_half_gives_half_the_rms(fresh_cache):
    full = tts.synthesize(utt("Rest", volume=1.0))
    half = tts.synthesize(utt("Rest", volume=0.5))
    assert full.size == half.size
    assert rms(half) / rms(full) == pytest.approx(0.5, abs=0.01)


# ---- determinism -------------------------------------------------------------------------------


def test_same_bytes_whatever_came_before_and_in_another_process(fresh_cache, tmp_path, monkeypatch):
    hold = utt("Hold")
    alone = tts.synthesize(hold).tobytes()

    # Same process, empty cache again, after other texts (espeak keeps state inside a process).
    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "second"))
    others = [utt("Breathe in"), utt("Breathe out"), utt("Adem in", "nl")]
    tts.synthesize_many(others, jobs=1)
    after_others = tts.synthesize_many([*others, hold], jobs=1)[hold].tobytes()
    assert after_others == alone

    # Another process with its own empty cache.
    code = (
        "import hashlib; from audio_engine import model, tts; "
        "c = tts.synthesize(model.Utterance('Hold', 'en', model.Voice(rate_wpm=150, volume=1.0)));"
        "import sys; sys.stderr.write(hashlib.sha256(c.tobytes()).hexdigest())"
    )
    done = _run_python(code, tmp_path / "third")
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().strip() == hashlib.sha256(alone).hexdigest()


def test_parallel_jobs_give_the_same_clips_as_one_job(fresh_cache, tmp_path, monkeypatch):
    texts = [utt(t) for t in ("Hold", "Rest", "Breathe in", "Breathe out")]
    serial = tts.synthesize_many(texts, jobs=1)
    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "parallel"))
    seen = []
    parallel = tts.synthesize_many(texts, jobs=4, progress=lambda d, n: seen.append((d, n)))
    assert all(serial[u].tobytes() == parallel[u].tobytes() for u in texts)
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


# ---- voices ------------------------------------------------------------------------------------


def test_voice_choice_by_language():
    assert tts.voice_for("nl").id == "gmw/nl"
    assert tts.voice_for("nl-BE").id == "gmw/nl"
    assert tts.voice_for("en").id == "gmw/en"
    assert tts.voice_for("en-US").id == "gmw/en-us"
    assert tts.voice_for("en_us").id == "gmw/en-us"


def test_voice_choice_by_name():
    assert tts.voice_for("en", "scotland").id == "gmw/en-gb-scotland"
    assert tts.voice_for("en", "DUTCH").id == "gmw/nl"
    assert tts.voice_for("en", "gmw/en").id == "gmw/en"  # exact id wins over longer ids
    with pytest.raises(TTSError, match="no installed voice matches 'no-such-voice'"):
        tts.voice_for("en", "no-such-voice")


def test_dutch_session_speaks_dutch(fresh_cache):
    dutch = tts.synthesize(utt("Adem rustig in", "nl"))
    english = tts.synthesize(utt("Adem rustig in", "en"))
    same_size = min(dutch.size, english.size)
    assert dutch.size != english.size or not np.allclose(
        dutch[:same_size], english[:same_size], atol=0.01
    )
    key_nl = tts._cache_key(utt("Adem rustig in", "nl"), tts.voice_for("nl"), tts.engine_version())
    assert tts._cache_load(tts._cache_path(key_nl)).tobytes() == dutch.tobytes()


def test_unknown_language_is_a_clear_error(fresh_cache):
    with pytest.raises(TTSError) as caught:
        tts.voice_for("xx")
    assert "'xx'" in str(caught.value)
    assert "relax voices --language xx" in str(caught.value)
    # synthesize_many refuses before synthesizing anything
    with pytest.raises(TTSError, match="'xx'"):
        tts.synthesize_many([utt("Hello"), utt("Hello", "xx")])
    assert not list(fresh_cache.glob("*/*.f32"))


def test_engine_version_names_pyttsx3_and_espeak():
    version = tts.engine_version()
    assert "pyttsx3 " in version and "espeak-ng " in version


def test_voices_command_lists_dutch(capsys):
    parser = argparse.ArgumentParser()
    voices_cli.register(parser.add_subparsers())
    args = parser.parse_args(["voices", "--language", "nl"])
    assert args.run(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "LANGUAGES"]
    assert any(line.split()[:3] == ["*", "gmw/nl", "Dutch"] for line in lines)
    assert not any("gmw/en" in line for line in lines)


def test_relax_voices_command(capsys):
    from audio_engine.cli import main

    assert main(["voices", "--language", "nl"]) == 0
    out = capsys.readouterr().out
    assert "gmw/nl" in out and "Dutch" in out
    assert main(["voices", "--language", "zz"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "'zz'" in captured.err


def test_voices_command_aligns_columns(capsys):
    parser = argparse.ArgumentParser()
    voices_cli.register(parser.add_subparsers())
    args = parser.parse_args(["voices", "--language", "en"])
    assert args.run(args) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "gmw/" in line]
    assert len(lines) > 3
    name_columns = {line.index("English") for line in lines}
    assert len(name_columns) == 1


# ---- cache -------------------------------------------------------------------------------------


def _cached_file(u: model.Utterance):
    voice = tts.voice_for(u.language, u.voice.name)
    return tts._cache_path(tts._cache_key(u, voice, tts.engine_version()))


def test_warm_cache_is_used(fresh_cache, monkeypatch):
    u = utt("Soften your jaw")
    first = tts.synthesize(u)

    def no_synthesis(*args, **kwargs):
        raise AssertionError("synthesized although the clip was cached")

    monkeypatch.setattr(tts, "_make_clip", no_synthesis)
    assert tts.synthesize(u).tobytes() == first.tobytes()
    assert tts.synthesize_many([u])[u].tobytes() == first.tobytes()


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_cache_file_is_synthesized_again(fresh_cache, damage):
    u = utt("Relax your hands")
    good = tts.synthesize(u)
    path = _cached_file(u)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-100] ^= 0x40
    else:
        data = bytearray(b"not a clip")
    path.write_bytes(bytes(data))
    assert tts._cache_load(path) is None
    again = tts.synthesize(u)
    assert again.tobytes() == good.tobytes()
    assert tts._cache_load(path).tobytes() == good.tobytes()  # repaired on disk


def test_cache_leaves_no_temporary_files(fresh_cache):
    tts.synthesize_many([utt("One"), utt("Two"), utt("Three")])
    names = [p.name for p in fresh_cache.rglob("*") if p.is_file()]
    assert len(names) == 3 and all(n.endswith(".f32") and not n.startswith(".") for n in names)


# ---- the engine's quirks -----------------------------------------------------------------------


def test_stdout_stays_clean(tmp_path):
    code = (
        "from audio_engine import model, tts; v = model.Voice(rate_wpm=150, volume=1.0);"
        "tts.synthesize_many([model.Utterance(t, 'en', v) for t in ('Hold', 'Rest')]);"
        "tts.synthesize(model.Utterance('Rust', 'nl', v)); tts.list_voices()"
    )
    done = _run_python(code, tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b""


def test_empty_wav_is_retried(fresh_cache, tmp_path, monkeypatch):
    u = utt("Breathe out")
    monkeypatch.setenv("RELAX_TTS_FAULT", "empty-first")
    retried = tts.synthesize(u)
    monkeypatch.delenv("RELAX_TTS_FAULT")
    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "clean"))
    assert tts.synthesize(u).tobytes() == retried.tobytes()


def test_persistent_failure_names_the_text(fresh_cache, monkeypatch):
    monkeypatch.setenv("RELAX_TTS_FAULT", "empty-always")
    with pytest.raises(TTSError, match="'Breathe out'.*empty audio file"):
        tts.synthesize(utt("Breathe out"))
    with pytest.raises(TTSError, match="empty audio file"):
        tts.synthesize_many([utt("Breathe in"), utt("Hold")])
    assert not list(fresh_cache.rglob("*.f32"))


def test_nothing_to_speak_is_an_error(fresh_cache):
    with pytest.raises(TTSError, match="nothing to speak"):
        tts.synthesize(utt("..."))


# ---- the background synthesizer ----------------------------------------------------------------


def test_synthesizer_gives_clips_in_any_order(fresh_cache):
    texts = [utt(t) for t in ("In", "Out", "Hold on", "Let go")]
    with tts.Synthesizer(jobs=2) as synth:
        synth.request(texts)
        last = synth.clip(texts[-1], timeout=30)
        first = synth.clip(texts[0], timeout=30)
        extra = synth.clip(utt("Unrequested"), timeout=30)
    assert last.size > 0 and first.size > 0 and extra.size > 0
    assert first.tobytes() == tts.synthesize(texts[0]).tobytes()


def test_synthesizer_timeout_and_close(fresh_cache):
    synth = tts.Synthesizer(jobs=1)
    synth.request([utt("A rather longer sentence to keep the worker busy for a while")])
    with pytest.raises(tts.ClipNotReady):
        synth.clip(utt("Not yet"), timeout=0.0)
    synth.close()
    with pytest.raises(TTSError, match="closed"):
        synth.request([utt("Too late")])
