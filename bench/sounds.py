"""Memory of `sound:` layers: a session with N different long sound files, exported to WAV.

Run from the checkout: `.venv/bin/python bench/sounds.py` (4 files of 10 minutes, a 10-minute
session; about a minute here), or `--files 8 --minutes 29` for the worst case the limits allow.

Each export runs in a fresh `python -m audio_engine export` subprocess: "cold" with an empty cache
folder (the files are decoded into it first), "warm" with that cache. The files are 8 kHz mono
(small on disk, resampled to 44.1 kHz stereo: 8 bytes a frame once decoded). Peak RSS is the
child's `ru_maxrss` (every resident page, the cache's mapped pages included, which the system can
drop again at any time); peak anonymous is the highest `RssAnon` seen in `/proc/PID/status`,
sampled every 20 ms: the memory that only the process holds. Linux only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent


def _anon_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _export(script: Path, out: Path, env: dict) -> tuple[float, float, float]:
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "audio_engine", "export", str(script), "-o", str(out)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    peak = [0]
    done = threading.Event()

    def sample() -> None:  # never reaps the child: wait4 below does
        while not done.is_set():
            peak[0] = max(peak[0], _anon_kib(proc.pid))
            time.sleep(0.02)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.read().decode())
    return time.monotonic() - start, usage.ru_maxrss / 1024, peak[0] / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rate = 8000
        frames = int(args.minutes * 60 * rate)
        layers = []
        for i in range(args.files):
            t = np.arange(frames) / rate
            tone = (0.05 * np.sin(2 * np.pi * (110 + 20 * i) * t)).astype(np.float32)
            soundfile.write(folder / f"layer{i}.wav", tone, rate, subtype="PCM_16")
            layers.append(f"  - sound: {{file: layer{i}.wav, volume: 0.1, loop: true}}")
        script = folder / "sounds.en.yaml"
        script.write_text(
            "format: 1\nid: sounds\ntitle: Sounds\nlanguage: en\nbackground:\n"
            + "\n".join(layers)
            + f"\nsteps:\n  - chime: soft\n  - pause: {args.minutes * 60:g}\n"
        )
        env = dict(os.environ, RELAX_CACHE_DIR=str(folder / "cache"))
        decoded = args.files * args.minutes * 60 * 44100 * 8 / 2**20
        print(
            f"{args.files} files of {args.minutes:g} min ({decoded:.0f} MiB decoded in all), "
            f"a {args.minutes:g} min session to WAV"
        )
        print("| run | wall | peak RSS | peak anonymous |")
        print("|---|---:|---:|---:|")
        for run in ("cold", "warm"):
            wall, rss, anon = _export(script, folder / "out.wav", env)
            print(f"| {run} | {wall:.1f} s | {rss:.0f} MiB | {anon:.0f} MiB |")


if __name__ == "__main__":
    main()
