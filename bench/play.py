"""Player figures: `python bench/play.py [--session quick-reset] [--language en] [--minutes 10]
[--long-minutes 50]`.

Prints a table with

- time to first sound, from the moment `relax play SESSION --no-window` is started to the
  moment the first non-silent sample reaches the audio device (SDL's disk driver writes what
  the device would play, in real time; the file is watched from outside the process).
  - first run: an empty cache folder (nothing synthesized, no gain remembered, not even what
    the speech engine is, no noise loop or chime made yet);
  - cold: none of the session's speech synthesized and no gain remembered, in a cache folder
    that another built-in session has been exported into once (`--primer`, box breathing: its
    own lines, the same pink noise and soft chime): a session played for the first time on a
    machine that has played another one before (what the engine is, its pronunciation tables,
    the noise loop and the chime are kept in the cache folder);
  - warm: the same folder again, with the session's speech and gain in it.
  For SESSION and for a generated long session (a new line every 12 s: hundreds of clips to
  synthesize cold).
- drift between the pacer's clock (`Stream.position_sample`, what the window draws) and the audio
  clock over a long session. The mixer is simulated so that a 10 minute session runs in seconds:
  a channel with pygame's semantics (one sound playing, one queued, the queued one starting the
  moment the current one ends) consumes exactly 44100 samples per simulated second; the display
  polls at 60 frames per second with +-4 ms of jitter, and the feeder thread's 4 ms poll is
  simulated too. The real render stage produces every block.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audio_engine import pipeline  # noqa: E402
from audio_engine.player.stream import FEED_INTERVAL_S, Stream  # noqa: E402

RATE = 44100


_compiled: set[Path] = set()


def compiled(root: Path) -> None:
    """The bytecode of the relax package at `root` written (once), as `scripts/_bootstrap.sh`
    writes it when the environment is set up."""
    if root not in _compiled:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "audio_engine")])
        _compiled.add(root)


def first_sound_s(session: str, language: str, cache: Path, workdir: Path) -> float:
    raw = workdir / f"out-{time.monotonic_ns()}.raw"
    env = dict(
        os.environ,
        SDL_AUDIODRIVER="disk",
        SDL_DISKAUDIOFILE=str(raw),
        RELAX_CACHE_DIR=str(cache),
        RELAX_SETTINGS_DIR=str(workdir / "settings"),
        PYGAME_HIDE_SUPPORT_PROMPT="1",
    )
    env.pop("RELAX_FALLBACK_EXPORT", None)
    # Bytecode as an installed relax has it (the launchers' setup compiles the package): the
    # time to first sound is not the time to compile relax's modules.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    compiled(Path(env.get("PYTHONPATH") or ROOT))
    cmd = [sys.executable, "-m", "audio_engine", "play", session, "-l", language, "--no-window"]
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    seen = 0
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode(errors="replace"))
            if raw.exists():
                data = raw.read_bytes()
                frames = np.frombuffer(data[: len(data) // 4 * 4], dtype="<i2")
                loud = np.flatnonzero(frames[seen:])
                if loud.size:
                    return time.monotonic() - started
                seen = len(frames)
            time.sleep(0.002)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # SIGINT is ignored when started from a background job
            proc.kill()
            proc.wait()
        raw.unlink(missing_ok=True)


class _SimChannel:
    """pygame.mixer.Channel's queue semantics on a simulated sample clock."""

    def __init__(self, total_samples: int):
        self.total_samples = total_samples
        self.current: list | None = None  # [sound, samples played]
        self.queued = None
        self.played_samples = 0
        self.underrun_samples = 0

    def play(self, sound):
        self.current, self.queued = [sound, 0], None

    def queue(self, sound):
        if self.current is None:
            self.play(sound)
        else:
            self.queued = sound

    def get_queue(self):
        return self.queued

    def get_sound(self):
        return self.current[0] if self.current else None

    def get_busy(self):
        return self.current is not None

    def pause(self):
        pass

    def unpause(self):
        pass

    def stop(self):
        self.current = self.queued = None

    def set_volume(self, volume):
        pass

    def advance(self, n: int) -> None:
        while n > 0:
            if self.current is None:
                if self.played_samples < self.total_samples:  # (after the end is no underrun)
                    self.underrun_samples += min(n, self.total_samples - self.played_samples)
                return
            sound, pos = self.current
            step = min(n, len(sound) - pos)
            self.current[1] += step
            self.played_samples += step
            n -= step
            if self.current[1] >= len(sound):
                self.current = [self.queued, 0] if self.queued is not None else None
                self.queued = None


def drift(minutes: float) -> dict:
    cycle = "{inhale: 4, hold: 4, exhale: 6, rest: 2, "
    cues = 'cues: {inhale: "", hold: "", exhale: "", rest: ""}'
    cycles = max(1, int(minutes * 60 // 16))  # one 16 s cycle at least
    text = (
        "format: 1\ntitle: Drift\nlanguage: en\n"
        "background:\n  - drone: {frequency: 110, volume: 0.05}\n"
        f"steps:\n  - breathe: {cycle}cycles: {cycles}, {cues}}}\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "drift.yaml"
        path.write_text(text)
        prepared = pipeline.prepare(pipeline.load(str(path)))
    now = [0.0]
    channel = _SimChannel(prepared.timeline.total_samples)
    stream = Stream(
        prepared.timeline,
        prepared.sources,
        1.0,
        channel,
        lambda frames: frames,  # the "sound" is the frames themselves (len = samples)
        clock=lambda: now[0],
    )
    rng = random.Random(1)
    errors = []
    next_feed = 0.0
    started = time.monotonic()
    stream.pump()
    while not stream.finished:
        frame_s = 1 / 60 + rng.uniform(-0.004, 0.004)
        target = now[0] + frame_s
        while next_feed <= target:  # the feeder thread's polls inside this frame
            channel.advance(round((next_feed - now[0]) * RATE))
            now[0] = next_feed
            stream.pump()
            next_feed += FEED_INTERVAL_S
        channel.advance(round((target - now[0]) * RATE))
        now[0] = target
        if channel.current is not None:
            errors.append(stream.position_sample() - channel.played_samples)
        stream.pump()
    errors = np.abs(np.array(errors))
    return {
        "session_s": prepared.timeline.duration_s,
        "wall_s": time.monotonic() - started,
        "max_ms": errors.max() / RATE * 1000,
        "mean_ms": errors.mean() / RATE * 1000,
        "last_minute_max_ms": errors[-3600:].max() / RATE * 1000,
        "underrun_samples": channel.underrun_samples,
    }


_WORDS = [
    "calm",
    "slow",
    "soft",
    "warm",
    "easy",
    "quiet",
    "gentle",
    "steady",
    "light",
    "loose",
    "open",
    "heavy",
    "still",
    "deep",
]


def long_session(path: Path, minutes: float) -> Path:
    """A generated English session of about `minutes`: a different line every 12 s (so a cold
    cache synthesizes hundreds of clips), a section and a 4-7-8 breathe step with guide tone
    and counts every 40 lines, a drone and pink noise under it all."""
    steps = []
    lines = max(1, int(minutes * 60 / 12.5))
    for i in range(lines):
        w = [_WORDS[(i * 7 + k * 3) % len(_WORDS)] for k in range(5)]
        if i % 40 == 0:
            steps.append(f"  - section: Part {i // 40 + 1}\n")
        steps.append(
            f"  - say: Line {i + 1}. Let your shoulders feel {w[0]} and {w[1]}, your breath "
            f"{w[2]} and {w[3]}, your face {w[4]}.\n    duration: 12s\n"
        )
        if i % 40 == 0:
            steps.append(
                "  - breathe: {inhale: 4, hold: 7, exhale: 8, cycles: 2, guide_tone: true, "
                "count: true}\n"
            )
    path.write_text(
        "format: 1\ntitle: A long generated session\nlanguage: en\nbackground:\n"
        "  - drone: {frequency: 98, volume: 0.04}\n  - noise: {color: pink, volume: 0.02}\n"
        "steps:\n" + "".join(steps)
    )
    return path


def _export(session: str, language: str, cache: Path, work: Path) -> None:
    env = dict(os.environ, RELAX_CACHE_DIR=str(cache), RELAX_SETTINGS_DIR=str(work / "settings"))
    out = work / "warm-up.wav"
    cmd = [sys.executable, "-m", "audio_engine", "export", session, "-l", language, "-o", out]
    subprocess.run(cmd, env=env, cwd=work, check=True, capture_output=True)


def first_sound_rows(
    label: str, session: str, language: str, work: Path, primer: str
) -> list[tuple]:
    first_run = first_sound_s(session, language, work / f"cache-first-{label}", work)
    cache = work / f"cache-{label}"
    _export(primer, language, cache, work)
    cold = first_sound_s(session, language, cache, work)
    # The cold run is stopped at its first sound, its speech half made: complete the cache.
    _export(session, language, cache, work)
    warm = [first_sound_s(session, language, cache, work) for _ in range(3)]
    return [
        (f"first sound, first run, {label}", f"{first_run * 1000:.0f} ms", "empty cache folder"),
        (f"first sound, cold cache, {label}", f"{cold * 1000:.0f} ms", "target 1000 ms"),
        (
            f"first sound, warm cache, {label}",
            f"{np.median(warm) * 1000:.0f} ms (median of 3; {min(warm) * 1000:.0f}-"
            f"{max(warm) * 1000:.0f})",
            "target 300 ms",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--session", default="quick-reset")
    parser.add_argument("--language", default="en")
    parser.add_argument(
        "--primer",
        default="box-breathing",
        help="the session exported into the cache folder before the cold measure",
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--long-minutes",
        type=float,
        default=50.0,
        help="also time a generated session this long (0: skip)",
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="relax-bench-play-") as tmp:
        work = Path(tmp)
        rows += first_sound_rows(args.session, args.session, args.language, work, args.primer)
        if args.long_minutes > 0:
            path = long_session(work / "long.en.yaml", args.long_minutes)
            label = f"generated {args.long_minutes:g} min"
            rows += first_sound_rows(label, str(path), "en", work, args.primer)
    d = drift(args.minutes)
    rows.append(
        (
            f"pacer vs audio clock, {d['session_s'] / 60:.1f} min",
            f"max {d['max_ms']:.1f} ms, mean {d['mean_ms']:.1f} ms",
            f"last minute max {d['last_minute_max_ms']:.1f} ms; "
            f"underruns {d['underrun_samples']} samples; simulated in {d['wall_s']:.0f} s",
        )
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':<40}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:<40}  {note}")


if __name__ == "__main__":
    main()
