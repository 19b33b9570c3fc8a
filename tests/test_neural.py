"""The neural English voice (hibari-tts) as relax's second speech engine, with the real model.

Which engine speaks what, clips that depend only on their key (in any order, in any process),
the rate mapped to words per minute, the calmer delivery measured on the samples, the script
key `voice: {engine}` with its errors, `--engine` on the commands, and play == export of a
neural session through SDL's disk driver.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

import audio_engine.gain as gain_stage
from audio_engine import model, pipeline, script, tts
from audio_engine.errors import ScriptError, TTSError
from audio_engine.player.stream import CHUNK_SAMPLES
from audio_engine.speech import cache, neural, voices
from tests._disk_player import without_dropouts

pytestmark = pytest.mark.skipif(not neural.available(), reason="hibari-tts is not installed")

RATE = model.SAMPLE_RATE
ROOT = Path(__file__).resolve().parent.parent


def utt(text, language="en", *, rate_wpm=140, volume=1.0, engine=None, name=None):
    voice = model.Voice(name=name, rate_wpm=rate_wpm, volume=volume, engine=engine)
    return model.Utterance(text, language, voice)


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    path = tmp_path / "speech"
    monkeypatch.setenv("RELAX_CACHE_DIR", str(path))
    return path


def relax(*args, env=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audio_engine", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


# ---- which engine speaks ----------------------------------------------------------------------


def test_english_speaks_neural_and_every_other_language_espeak():
    assert tts.voice_for("en").id == "hibari/heart"
    assert tts.voice_for("en-GB").engine == "neural"
    assert tts.voice_for("en", engine="espeak").id == "gmw/en"
    assert tts.voice_for("nl").id == "gmw/nl"
    assert tts.voice_for("en", "heart").engine == "neural"
    assert tts.voice_for("en", "scotland").id == "gmw/en-gb-scotland"  # an espeak-ng name
    with pytest.raises(TTSError, match="speaks only English, not 'nl'"):
        tts.voice_for("nl", engine="neural")
    with pytest.raises(TTSError, match="no neural voice matches 'scotland'"):
        tts.voice_for("en", "scotland", "neural")


def test_without_hibari_english_falls_back_to_espeak(monkeypatch):
    monkeypatch.setenv("RELAX_NEURAL", "off")
    assert tts.voice_for("en").id == "gmw/en"
    assert [v.engine for v in tts.list_voices()].count("neural") == 0
    with pytest.raises(TTSError, match="the neural voice is not installed"):
        tts.voice_for("en", engine="neural")


# ---- clips -------------------------------------------------------------------------------------


def test_a_neural_clip_is_trimmed_ramped_scaled_and_cached(fresh_cache):
    loud = tts.synthesize(utt("Let your shoulders drop."))
    assert loud.dtype == np.float32 and 0.8 * RATE < loud.size < 3 * RATE
    assert loud[0] != 0 or loud[1] != 0  # trimmed: sound from the first samples
    assert abs(loud[0]) < 1e-3 and abs(loud[-1]) < 1e-3  # ramped
    level = float(np.sqrt(np.mean(loud.astype(np.float64) ** 2)))
    assert 0.06 < level < 0.16  # about espeak-ng's 0.1: the mix stays as documented
    assert np.abs(loud).max() < 0.9
    soft = tts.synthesize(utt("Let your shoulders drop.", volume=0.5))
    assert np.array_equal(soft, (loud * np.float32(0.5)).astype(np.float32))
    files = sorted(fresh_cache.glob("*/*.f32"))
    assert len(files) == 2
    assert tts.cached(utt("Let your shoulders drop.")).tobytes() == loud.tobytes()


def test_a_clip_depends_only_on_its_key(fresh_cache, tmp_path):
    text = "Notice your breath, and let it slow down."
    alone = tts.synthesize(utt(text)).tobytes()
    # After other lines, in threads at once, in a fresh cache.
    os.environ["RELAX_CACHE_DIR"] = str(tmp_path / "second")
    others = [utt("Breathe in"), utt("Rest your hands. Feel them grow warm."), utt("2")]
    got = tts.synthesize_many([*others, utt(text)], jobs=2)
    assert got[utt(text)].tobytes() == alone
    # In another process, with an empty cache of its own.
    code = (
        "import hashlib, sys; from audio_engine import model, tts; "
        f"c = tts.synthesize(model.Utterance({text!r}, 'en', "
        "model.Voice(rate_wpm=140, volume=1.0)));"
        "sys.stderr.write(hashlib.sha256(c.tobytes()).hexdigest())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "RELAX_CACHE_DIR": str(tmp_path / "third")},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().endswith(hashlib.sha256(alone).hexdigest())


def test_the_cache_key_carries_the_engine_and_model_versions(fresh_cache, monkeypatch):
    u = utt("Soften your jaw.")
    voice = tts.voice_for("en")
    version = tts.version_of(voice)
    assert "hibari-tts " in version and "onnxruntime " in version and "model " in version
    first = cache.path_of(cache.key(u, voice.id, version))
    tts.synthesize(u)
    assert first.is_file()

    class Upgraded(neural.Neural):
        def version(self):
            return version + " (upgraded)"

    with voices.swapped(Upgraded()):
        assert tts.cached(u) is None  # another model or engine version: not this clip
        assert tts.engine_versions([u]) == (version + " (upgraded)",)


WPM_LINES = [
    "Let your arms rest, and close your eyes if that feels good.",
    "Take a few easy breaths. Feel the air coming in, and going out.",
    "Let your body grow heavy where it rests.",
    "Bring your attention to your knees. Notice what you feel there, without judging it.",
    "Now let your breath find its own easy rhythm.",
    "Notice how your body feels. Your shoulders, your jaw, your hands.",
    "Sit or lie down comfortably, and let your shoulders drop.",
    "When tension, worry and pain feed each other, noticing is the first step out of that loop.",
]


def _wpm(clips: list[np.ndarray], texts: list[str]) -> float:
    words = sum(len(re.findall(r"\w+", t)) for t in texts)
    return words / (sum(c.size for c in clips) / RATE) * 60


@pytest.mark.parametrize("rate", [100, 140, 180])
def test_rate_is_words_per_minute_measured(rate):
    clips = [tts.synthesize(utt(t, rate_wpm=rate)) for t in WPM_LINES]
    assert _wpm(clips, WPM_LINES) == pytest.approx(rate, rel=0.1)


def _pitch(x: np.ndarray) -> np.ndarray:
    """Pitch (Hz) of the voiced 40 ms frames: normalized autocorrelation, 70-500 Hz."""
    frame, hop = int(0.04 * RATE), int(0.01 * RATE)
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), frame)[::hop]
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = (frames**2).sum(axis=1)
    spec = np.fft.rfft(frames * np.hanning(frame), 4096, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, 4096, axis=1)[:, :frame]
    ac /= np.maximum(ac[:, :1], 1e-12)
    lo, hi = RATE // 500, RATE // 70
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    voiced = (energy > energy.max() * 1e-3) & (ac[np.arange(len(lag)), lag] > 0.6)
    return RATE / lag[voiced]


def test_the_delivery_is_lower_narrower_and_softer_than_the_model_alone():
    import soxr

    engine = neural.load()
    ours, theirs = [], []
    for text in WPM_LINES[:5]:
        ours.append(tts.synthesize(utt(text)))
        raw = engine(text, speed=neural.speed_for(140), seed=neural.SEED)
        theirs.append(soxr.resample(raw, 24000, RATE, quality="HQ").astype(np.float32))
    f_ours = np.concatenate([_pitch(c) for c in ours])
    f_theirs = np.concatenate([_pitch(c) for c in theirs])
    # Median pitch down by about PITCH_FACTOR (0.92: 1.4 semitones).
    ratio = np.median(f_ours) / np.median(f_theirs)
    assert 0.87 < ratio < 0.96
    # The 5-95 % pitch range narrower (x PITCH_RANGE = 0.7 in semitones).
    span = [12 * np.log2(np.percentile(f, 95) / np.percentile(f, 5)) for f in (f_ours, f_theirs)]
    assert span[0] < 0.85 * span[1]

    def treble_db(clips):
        spectrum = [np.abs(np.fft.rfft(c.astype(np.float64))) ** 2 for c in clips]
        freqs = [np.fft.rfftfreq(c.size, 1 / RATE) for c in clips]
        high = sum(p[f >= 5000].sum() for p, f in zip(spectrum, freqs, strict=True))
        low = sum(p[f < 3000].sum() for p, f in zip(spectrum, freqs, strict=True))
        return 10 * np.log10(high / low)

    assert treble_db(ours) < treble_db(theirs) - 2.5  # the high shelf: -4 dB above 4-5.6 kHz


def _longest_quiet_s(clip: np.ndarray, below_dbfs: float = -50.0) -> float:
    """The longest run of 10 ms frames quieter than `below_dbfs` (RMS), seconds."""
    n = RATE // 100
    frames = clip[: clip.size // n * n].astype(np.float64).reshape(-1, n)
    quiet = np.sqrt((frames**2).mean(axis=1)) < 10 ** (below_dbfs / 20)
    longest = run = 0
    for q in quiet:
        run = run + 1 if q else 0
        longest = max(longest, run)
    return longest / 100


def test_sentences_are_joined_with_a_fixed_pause():
    # hibari alone leaves about 1.05 s between two sentences; relax 0.6 s (plus the edges).
    gap = _longest_quiet_s(tts.synthesize(utt("Breathe in. Breathe out.")))
    assert neural.SENTENCE_PAUSE_S <= gap <= neural.SENTENCE_PAUSE_S + 0.15


def test_a_very_long_sentence_is_said_in_parts_cut_between_words():
    engine = neural.load(neural._voice(neural.VOICES[0].id), None)
    words = [
        "let",
        "your",
        "shoulders",
        "drop",
        "and",
        "your",
        "jaw",
        "soften",
        "as",
        "the",
        "breath",
        "slows",
        "down",
    ]
    text = " ".join(words[i % len(words)] for i in range(180)) + "."  # one sentence, ~1,000 chars
    (sentence,) = engine.phonemize(text)
    parts = list(neural._parts(engine, [sentence]))
    assert len(parts) >= 4 and [first for _, first in parts] == [True] + [False] * (len(parts) - 1)
    assert all(len(engine.ids(p)) <= neural.MAX_SYMBOLS for p, _ in parts)
    assert " ".join(p for p, _ in parts) == sentence  # cut between words, nothing lost
    (word,) = list(neural._parts(engine, ["a" * 40]))  # short: whole
    assert word == ("a" * 40, True)
    long_word = list(neural._parts(engine, ["x" * 700]))  # one word too long: cut inside it
    assert "".join(p for p, _ in long_word) == "x" * 700
    assert all(len(engine.ids(p)) <= neural.MAX_SYMBOLS for p, _ in long_word)


def test_a_very_long_sentence_takes_bounded_memory():
    # Said whole, a sentence of 1,000 characters took 370 MiB more than a short line; in parts
    # it takes about 140.
    probe = """
import resource, sys
from audio_engine.speech import neural
voice = neural.VOICES[0].id
neural._speech("Breathe in.", 150, voice, None)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
words = "let your shoulders drop and your jaw soften as the breath slows down".split()
text = " ".join(words[i % len(words)] for i in range(180)) + "."
clip = neural._speech(text, 150, voice, None)
print(len(clip) / 44100, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True
    )
    seconds, grown_mib = (float(v) for v in done.stdout.split())
    assert seconds > 50  # all of it is said
    assert grown_mib < 250, grown_mib


# ---- the script key and the commands -----------------------------------------------------------


def _write(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_engine_in_a_script_and_its_errors(tmp_path):
    good = _write(
        tmp_path,
        "format: 1\ntitle: T\nlanguage: en\nvoice: {engine: espeak}\nsteps:\n"
        "  - say: Hello.\n    voice: {engine: neural}\n",
    )
    session = script.load(good)
    assert session.voice == model.Voice(engine="espeak")
    assert session.steps[0].voice == model.Voice(engine="neural")
    bad = _write(
        tmp_path,
        "format: 1\ntitle: T\nlanguage: en\nvoice: {engine: nueral}\nsteps:\n  - Hello.\n",
        "bad.yaml",
    )
    with pytest.raises(ScriptError) as caught:
        script.load(bad)
    assert str(caught.value.diagnostics[0]).startswith(
        f"{bad}:4:17: error: voice.engine: expected a speech engine: one of neural, espeak, recorded, "
        "found \"nueral\"; did you mean 'neural'?"
    )
    schema = script.json_schema()
    assert schema["$defs"]["voice"]["properties"]["engine"]["enum"] == [
        "neural",
        "espeak",
        "recorded",
    ]


def test_a_neural_voice_for_dutch_is_an_error_at_its_line(tmp_path):
    path = _write(
        tmp_path,
        "format: 1\ntitle: T\nlanguage: nl\nsteps:\n  - Hallo.\n"
        "  - say: Dag.\n    voice: {engine: neural}\n",
        "nl.yaml",
    )
    done = relax("validate", str(path))
    assert done.returncode == 1
    assert f"{path}:7:21: error: steps[1].voice.engine: the neural voice speaks only English" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr


def test_engine_option_on_play_export_and_voices(tmp_path):
    path = _write(tmp_path, "format: 1\ntitle: T\nlanguage: en\nsteps:\n  - Let go.\n")
    env = {"RELAX_CACHE_DIR": str(tmp_path / "cache")}
    out = relax("info", str(path), "--json", env=env)
    espeak = relax("info", str(path), "--json", "--engine", "espeak", env=env)
    assert out.returncode == 0 and espeak.returncode == 0, out.stderr + espeak.stderr
    assert out.stdout != espeak.stdout  # another voice, another length
    done = relax("export", str(path), "-o", str(tmp_path / "e.wav"), "--engine", "nope")
    assert done.returncode == 2 and "invalid choice: 'nope'" in done.stderr
    listed = relax("voices", env=env).stdout.splitlines()
    assert listed[0].split() == ["ENGINE", "ID", "NAME", "LANGUAGES"]
    engines = {line.split()[0] for line in listed[1:]}
    assert engines == {"neural", "espeak"}
    marked = relax("voices", "--language", "en", env=env).stdout
    assert re.search(r"^\* neural\s+hibari/heart\s", marked, re.M)
    assert relax("voices", "--language", "nl", "--engine", "neural", env=env).returncode == 1


# ---- the session invariants with the neural voice ----------------------------------------------

NEURAL_SESSION = """\
format: 1
title: Neural
language: en
voice: {engine: neural, rate: 140}
background:
  - noise: {color: pink, volume: 0.05}
steps:
  - section: One
  - say: Let your shoulders drop.
  - pause: 0.4s
  - breathe: {inhale: 2, exhale: 2}
  - section: Two
  - say: Notice how your body feels now.
"""


def test_play_equals_export_and_a_second_export_from_an_empty_cache_is_the_same(tmp_path):
    path = _write(tmp_path, NEURAL_SESSION, "neural.en.yaml")
    raw = tmp_path / "played.raw"
    env = {
        "SDL_AUDIODRIVER": "disk",
        "SDL_DISKAUDIOFILE": str(raw),
        "RELAX_SETTINGS_DIR": str(tmp_path / "settings"),
        "RELAX_CACHE_DIR": str(tmp_path / "cache-1"),
    }
    played_run = relax("play", str(path), "--no-window", env=env, stdin=subprocess.DEVNULL)
    assert played_run.returncode == 0, played_run.stderr
    first = tmp_path / "first.wav"
    assert relax("export", str(path), "-o", str(first), env=env).returncode == 0
    # A second export from an empty cache: the same bytes.
    second = tmp_path / "second.wav"
    env2 = {**env, "RELAX_CACHE_DIR": str(tmp_path / "cache-2")}
    assert relax("export", str(path), "-o", str(second), env=env2).returncode == 0
    assert first.read_bytes() == second.read_bytes()
    exported, rate = soundfile.read(first, dtype="int16")
    assert rate == RATE
    played = np.fromfile(raw, dtype="<i2").reshape(-1, 2)
    start = int(np.flatnonzero(exported.any(axis=1))[0])
    needle = exported[start : start + 4096]
    candidates = np.flatnonzero((played == needle[0]).all(axis=1))
    at = next(i for i in candidates if np.array_equal(played[i : i + len(needle)], needle))
    lead = at - start
    assert 0 <= lead <= 2 * 1024  # only the driver's own buffer before the session
    # A dropout of the device (the channel run dry on a starved machine) may have come at any
    # chunk's start: only its silence is taken out, every rendered sample is compared.
    boundaries = range(CHUNK_SAMPLES, len(exported), CHUNK_SAMPLES)
    played = without_dropouts(played, lead, exported, 0, boundaries)
    assert np.array_equal(played[lead : lead + len(exported)], exported)
    assert not played[lead + len(exported) :].any()
    # Spoken by the neural voice, at -16 LUFS.
    session = script.load(path)
    prepared = pipeline.prepare(session)
    assert {voices.check_utterance(u).engine for u in prepared.sources.speech} == {"neural"}
    import pyloudnorm

    meter = pyloudnorm.Meter(RATE)
    assert meter.integrated_loudness(exported / 32768.0) == pytest.approx(
        gain_stage.TARGET_LUFS, abs=0.3
    )
