"""Speech synthesis figures: `python bench/tts.py [--clips N]`.

Prints a table for both ways of making a clip in a fresh engine state: `fresh process` (a new
`python -m audio_engine._tts_worker` per clip, the fallback) and `fork server` (a child forked
from a preloaded server, Linux). Per way: clips per second from an empty cache with one job and
with every CPU (server start-up included), and the time to the first clip of a cold
`Synthesizer` (the player's start-up; median of 5), with the engine already known and with the
engine query of a first run (empty cache folder) included. Then the time to load the same clips
from a warm cache (one job per CPU). Each cold run uses its own temporary cache folder and starts
with no server running. The machine's load shows in every figure: compare runs side by side.
These rows are espeak-ng's (English lines too, with `engine: espeak`).

Then the neural English voice (hibari-tts, in-process): clips per second from an empty cache with
one and two jobs (model loaded), and the time to the first clip in a new process (the import and
the model's load included; median of 3).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from audio_engine import model, tts
from audio_engine.speech import espeak, neural, voices

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


def _utterances(n: int, engine: str = "espeak") -> list[model.Utterance]:
    voice = model.Voice(rate_wpm=150, volume=1.0, engine=engine)
    out = []
    sentences = [t for t in SENTENCES if engine == "espeak" or t not in SENTENCES[7:11]]
    for i in range(n):
        text = sentences[i % len(sentences)]
        language = "nl" if text in SENTENCES[7:11] else "en"
        # A number keeps every text distinct, so every clip is a cache miss.
        out.append(model.Utterance(f"{text} {i // len(sentences) + 1}", language, voice))
    return out


FIRST_CLIP_RUNS = 5
_made: list[str] = []


def _cold(fork_server: bool) -> None:
    """An empty cache folder, no server running, and the chosen way of making clips."""
    path = tempfile.mkdtemp(prefix="relax-bench-")
    _made.append(path)
    os.environ["RELAX_CACHE_DIR"] = path
    espeak._SERVERS.close()
    voices._engines[espeak.NAME] = espeak.Espeak(fork_server=fork_server)


def _first_clip_s(utterances, *, engine_query: bool) -> float:
    if engine_query:
        voices.engine(espeak.NAME).forget()
    start = time.perf_counter()
    with tts.Synthesizer() as synth:
        synth.request(utterances)
        synth.clip(utterances[0])
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24, help="clips per run (default 24)")
    args = parser.parse_args()
    utterances = _utterances(args.clips)
    cpus = os.cpu_count() or 1
    ways = [("fresh process", False)] + (
        [("fork server", True)] if espeak.Espeak().fork_server else []
    )
    tts.engine_version()  # the one-off engine query is not part of the throughput figures

    rows = []
    clips = {}
    warm_cache = ""
    for way, fork_server in ways:
        for jobs in sorted({1, cpus}):
            _cold(fork_server)
            start = time.perf_counter()
            clips = tts.synthesize_many(utterances, jobs=jobs)
            elapsed_s = time.perf_counter() - start
            rate = f"{len(clips) / elapsed_s:.1f} clips/s"
            rows.append((f"{way}: cold, {jobs} job(s)", rate, elapsed_s))
            warm_cache = os.environ["RELAX_CACHE_DIR"]
        for label, engine_query in (("first clip", False), ("first clip + engine query", True)):
            times_s = []
            for _ in range(FIRST_CLIP_RUNS):
                _cold(fork_server)
                times_s.append(_first_clip_s(utterances, engine_query=engine_query))
            rows.append((f"{way}: {label}", "median of 5", statistics.median(times_s)))

    if neural.available():
        lines = _utterances(args.clips, "neural")
        for jobs in sorted({1, cpus}):
            _cold(True)
            neural.load()
            start = time.perf_counter()
            made = tts.synthesize_many(lines, jobs=jobs)
            elapsed_s = time.perf_counter() - start
            rows.append(
                (f"neural: cold, {jobs} job(s)", f"{len(made) / elapsed_s:.1f} clips/s", elapsed_s)
            )
        code = (
            "import time; t = time.perf_counter(); from audio_engine import model, tts; "
            "tts.synthesize(model.Utterance('Let your shoulders drop.', 'en', "
            "model.Voice(rate_wpm=150, volume=1.0, engine='neural'))); "
            "print(time.perf_counter() - t)"
        )
        times_s = []
        for _ in range(3):
            _cold(True)
            done = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            )
            times_s.append(float(done.stdout.split()[-1]))
        rows.append(
            ("neural: first clip in a new process", "median of 3", statistics.median(times_s))
        )

    os.environ["RELAX_CACHE_DIR"] = warm_cache  # holds every clip
    start = time.perf_counter()
    tts.synthesize_many(utterances)  # espeak-ng's, from the cache
    elapsed_s = time.perf_counter() - start
    rows.append(("warm cache load", f"{len(utterances) / elapsed_s:.0f} clips/s", elapsed_s))

    speech_s = sum(c.size for c in clips.values()) / model.SAMPLE_RATE
    print(f"engine: {tts.engine_version()}; {len(utterances)} clips, {speech_s:.1f} s of speech")
    print(f"{cpus} CPUs; load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{'measure':<44}{'rate':>16}{'seconds':>10}")
    for name, rate, seconds in rows:
        print(f"{name:<44}{rate:>16}{seconds:>10.3f}")
    espeak._SERVERS.close()
    for path in _made:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
