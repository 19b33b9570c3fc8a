"""Every voice stays intelligible: Whisper base (the `[asr]` extra) transcribes a subset of the
built-in lines; `bench/intelligibility.py` measures all of them and prints the table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from audio_engine.speech import neural

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("intelligibility", ROOT / "bench/intelligibility.py")
meter = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(meter)

MISSING = meter.available()
pytestmark = pytest.mark.skipif(
    MISSING is not None, reason=f"the [asr] extra is not installed: {MISSING}"
)


def subset(language: str):
    """Short lines from all over the library (4-12 words, from every third distinct line): 7
    English lines (73 words), 8 Dutch (72 words), a few seconds of speech each."""
    lines = meter.session_lines(language)[::3]
    return [u for u in lines if 4 <= len(meter.normalize(u.text, language)) <= 12][:8]


ENGLISH_MAX_WER = 0.15
# DNSMOS overall (P.835) of the neural English voice on the English subset: 3.4 measured.
NEURAL_MIN_DNSMOS = 3.0
# espeak-ng's Dutch on the Dutch subset, Whisper base as the bench loads it (recorded 2026-12-03).
DUTCH_BASELINE_WER = 47 / 72  # 65.3 %: 47 of the 72 words
DUTCH_MAX_RISE = 0.10


@pytest.fixture(scope="module")
def asr():
    return meter.load_model(threads=2)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("engine", ["neural", "espeak"])
def test_english_is_understood(asr, engine):
    if engine == "neural" and not neural.available():
        pytest.skip("hibari-tts is not installed")
    lines = subset("en")
    row = meter.measure(asr, lines, "en", engine, mos=engine == "neural")
    assert row["words"] >= 70
    assert row["wer"] <= ENGLISH_MAX_WER, row["worst"][:3]
    if engine == "neural":
        assert row["dnsmos"] >= NEURAL_MIN_DNSMOS, row["dnsmos"]


def test_dutch_is_no_worse_than_its_baseline(asr):
    lines = subset("nl")
    row = meter.measure(asr, lines, "nl", "espeak", mos=False)
    assert row["words"] >= 70
    assert row["wer"] <= DUTCH_BASELINE_WER + DUTCH_MAX_RISE, row["worst"][:3]


def test_the_word_error_rate_counts_what_it_should():
    assert meter.normalize("Breathe in, for 4 - let's go.", "en") == [
        "breathe",
        "in",
        "for",
        "four",
        "lets",
        "go",
    ]
    assert meter.normalize("Adem 2 keer, 30 tellen", "nl") == [
        "adem",
        "twee",
        "keer",
        "dertig",
        "tellen",
    ]
    ref = ["let", "your", "shoulders", "drop"]
    assert meter.edit_distance(ref, ref) == 0
    assert meter.edit_distance(ref, ["let", "the", "shoulders", "drop", "now"]) == 2
    assert meter.edit_distance(ref, []) == 4


def test_dnsmos_tells_speech_from_noise():
    import numpy as np

    from audio_engine import model

    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(10 * model.SAMPLE_RATE)).astype(np.float32)
    overall, p808 = meter.dnsmos([noise])
    assert overall < 2.0 and p808 < 3.0
