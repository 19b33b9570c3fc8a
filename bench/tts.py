"""Speech synthesis figures: `python bench/tts.py [--clips N]`.

Prints a table: clips per second from an empty cache with one job and with every CPU, the time to
load the same clips from a warm cache, and the time to the first clip of a cold `Synthesizer`
(the player's start-up). Each run uses its own temporary cache folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from audio_engine import model, tts

SENTENCES = (
    "Breathe in",
    "Hold",
    "Breathe out",
    "Rest",
    "Let your shoulders drop.",
    "Notice the weight of your body on the chair.",
    "Gently roll your head to the left, and back to the centre.",
    "Adem in",
    "Vasthouden",
    "Adem uit",
    "Laat je schouders zakken.",
    "Welcome. Find a comfortable position and close your eyes if you like.",
)


def _utterances(n: int) -> list[model.Utterance]:
    voice = model.Voice(rate_wpm=150, volume=1.0)
    out = []
    for i in range(n):
        text = SENTENCES[i % len(SENTENCES)]
        language = "nl" if text in SENTENCES[7:11] else "en"
        # A number keeps every text distinct, so every clip is a cache miss.
        out.append(model.Utterance(f"{text} {i // len(SENTENCES) + 1}", language, voice))
    return out


_made: list[str] = []


def _fresh_cache() -> str:
    path = tempfile.mkdtemp(prefix="relax-bench-")
    _made.append(path)
    os.environ["RELAX_CACHE_DIR"] = path
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24, help="clips per run (default 24)")
    args = parser.parse_args()
    utterances = _utterances(args.clips)
    cpus = os.cpu_count() or 1
    tts.engine_version()  # the one-off engine query is not part of any figure

    rows = []
    for jobs in sorted({1, cpus}):
        _fresh_cache()
        start = time.perf_counter()
        clips = tts.synthesize_many(utterances, jobs=jobs)
        elapsed_s = time.perf_counter() - start
        rows.append((f"cold, {jobs} job(s)", f"{len(clips) / elapsed_s:.1f} clips/s", elapsed_s))

    start = time.perf_counter()
    tts.synthesize_many(utterances)
    elapsed_s = time.perf_counter() - start
    rows.append(("warm cache load", f"{len(utterances) / elapsed_s:.0f} clips/s", elapsed_s))

    _fresh_cache()
    start = time.perf_counter()
    with tts.Synthesizer() as synth:
        synth.request(utterances)
        synth.clip(utterances[0])
        first_s = time.perf_counter() - start
    rows.append(("time to first clip (cold)", "", first_s))

    speech_s = sum(c.size for c in clips.values()) / model.SAMPLE_RATE
    print(f"engine: {tts.engine_version()}; {len(utterances)} clips, {speech_s:.1f} s of speech")
    print(f"{'measure':<28}{'rate':>16}{'seconds':>10}")
    for name, rate, seconds in rows:
        print(f"{name:<28}{rate:>16}{seconds:>10.3f}")
    for path in _made:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
