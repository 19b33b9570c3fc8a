"""Export benchmark: real-time factor and peak memory per format and session length, and
`relax export --all` on one core versus all cores.

Run from the checkout: `.venv/bin/python bench/export.py` (all of it, about half an hour on two
cores) or `--quick` (5 minutes of audio, WAV and MP3, the English library only).

Every export runs in a fresh `python -m audio_engine export` subprocess, so each figure includes
Python start-up and imports (about 2 s here). "cold" uses an empty cache folder (a fresh
RELAX_CACHE_DIR: speech synthesis and the loudness measurement are part of the time, and so is
what is made once per machine: the noise loops, the chimes, the neural voice's pronunciation
tables); "warm" runs the same export again with that cache; "new speech" runs it once more in a
cache folder that holds only what is made once per machine (the speech and the gain made again:
a session exported for the first time on a machine that has exported another). Real-time factor = audio seconds / wall seconds (higher
is faster). Peak RSS is the child's `ru_maxrss` from `os.wait4` (its own and its waited-for
children's maximum), in MiB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# One minute lasts exactly 60 s: an 8 s line (a new text every minute, so the speech to hold grows
# with the session like in a real one), three 12 s breaths, a 16 s pause.
HEADER = """\
format: 1
id: bench-{minutes}m
title: Benchmark, {minutes} minutes
language: en
tags: [benchmark]
background:
  - drone: {{frequency: 110, volume: 0.05}}
  - noise: {{color: pink, volume: 0.03}}
steps:
"""
MINUTE = """\
  - section: Minute {n}
  - say: This is minute {n}. Settle in, and let your breath find its own pace.
    duration: 8s
  - breathe: {{inhale: 4, hold: 2, exhale: 6, cycles: 3, guide_tone: true}}
  - pause: 16s
"""


def session_text(minutes: int) -> str:
    return HEADER.format(minutes=minutes) + "".join(
        MINUTE.format(n=n) for n in range(1, minutes + 1)
    )


def _run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Run `python -m audio_engine ARGS`; (wall seconds, peak RSS MiB). Fails loudly on error."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "audio_engine", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall_s = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"relax {' '.join(args)} failed ({proc.returncode}):\n{stderr}")
    return wall_s, usage.ru_maxrss / 1024  # Linux reports KiB


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["RELAX_CACHE_DIR"] = str(cache)
    env.setdefault("SDL_AUDIODRIVER", "disk")
    return env


def _once_per_machine(cache: Path, work: Path) -> Path:
    """A new cache folder with only what `cache` holds that is made once per machine (the noise
    loops, the chimes, what the engines are, the neural voice's tables), no speech, no gain."""
    kept = Path(tempfile.mkdtemp(prefix="cache-machine-", dir=work))
    for item in cache.iterdir():
        if item.is_dir() and item.name in ("noise", "chime", "neural"):
            shutil.copytree(item, kept / item.name)
        elif item.is_file() and item.suffix == ".json":
            shutil.copy2(item, kept / item.name)
    return kept


def bench_lengths(minutes_list, formats, work: Path) -> list[str]:
    rows = [
        f"{'length':>7} {'format':>6} {'cold RTF':>9} {'warm RTF':>9} {'cold s':>7} {'warm s':>7}"
        f" {'peak RSS MiB':>13} {'new speech MiB':>15} {'size MiB':>9}",
    ]
    print(rows[0], flush=True)
    for minutes in minutes_list:
        script = work / f"bench-{minutes}m.en.yaml"
        script.write_text(session_text(minutes), encoding="utf-8")
        audio_s = minutes * 60.0
        for fmt in formats:
            cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
            out = work / f"out.{fmt}"
            args = ["export", str(script), "-o", str(out), "--no-transcript"]
            cold_s, cold_rss = _run(args, _env(cache), work)
            warm_s, warm_rss = _run(args, _env(cache), work)
            _, new_rss = _run(args, _env(_once_per_machine(cache, work)), work)
            size = out.stat().st_size / 2**20
            out.unlink()
            rows.append(
                f"{minutes:>5} m {fmt:>6} {audio_s / cold_s:>9.1f} {audio_s / warm_s:>9.1f}"
                f" {cold_s:>7.1f} {warm_s:>7.1f} {max(cold_rss, warm_rss):>13.0f}"
                f" {new_rss:>15.0f} {size:>9.1f}"
            )
            print(rows[-1], flush=True)
    return rows


def bench_all(language: str | None, fmt: str, work: Path) -> list[str]:
    cores = os.cpu_count() or 1
    cache = Path(tempfile.mkdtemp(prefix="cache-all-", dir=work))
    rows = [f"{'--all':>7} {'jobs':>6} {'wall s':>9}  ({fmt}, {language or 'every language'})"]
    print(rows[0], flush=True)
    extra = ["--language", language] if language else []
    for label, jobs, note in (
        ("cold", cores, "fills the speech cache"),
        ("warm", 1, ""),
        ("warm", cores, ""),
    ):
        out = Path(tempfile.mkdtemp(prefix="all-", dir=work))
        args = ["export", "--all", "--outdir", str(out), "--format", fmt, "--jobs", str(jobs)]
        wall_s, _ = _run(args + extra, _env(cache), work)
        rows.append(f"{label:>7} {jobs:>6} {wall_s:>9.1f}  {note}")
        print(rows[-1], flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 min, wav and mp3, --all in en")
    parser.add_argument("--minutes", type=int, nargs="+", help="session lengths (default 5 20 60)")
    parser.add_argument("--formats", nargs="+", help="formats (default wav flac ogg mp3)")
    parser.add_argument("--no-all", action="store_true", help="skip the --all measurement")
    parser.add_argument("--no-lengths", action="store_true", help="only the --all measurement")
    parser.add_argument("--all-language", help="with --all: only this language")
    args = parser.parse_args(argv)
    minutes = args.minutes or ([5] if args.quick else [5, 20, 60])
    formats = args.formats or (["wav", "mp3"] if args.quick else ["wav", "flac", "ogg", "mp3"])
    language = args.all_language or ("en" if args.quick else None)
    print(f"relax export benchmark: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="relax-bench-") as tmp:
        work = Path(tmp)
        if not args.no_lengths:
            bench_lengths(minutes, formats, work)
        if not args.no_all:
            print()
            bench_all(language, formats[0], work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
