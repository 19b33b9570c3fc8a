"""Export benchmark: each figure against its reference, measured in the same run, per format and
session length (5, 20 and 60 minutes), cold and warm, with peak memory; then `relax export --all`
on one core versus all cores.

Run from the checkout: `.venv/bin/python bench/export.py` (all of it, about half an hour on two
cores) or `--quick` (5 minutes of audio, every format, no --all).

relax: `python -m audio_engine export` in a fresh subprocess, so each figure includes Python
start-up and imports. "cold" uses an empty cache folder (a fresh RELAX_CACHE_DIR: speech
synthesis and the loudness measurement are part of the time, and so is what is made once per
machine: the noise loops, the chimes); "warm" runs the same export again with that cache.

The reference gets the same 16-bit PCM (relax's own WAV export of the session) and writes it the
plainest way there is, in a fresh subprocess too: WAV by `soundfile.write` of the array already in
memory (a bare write, timed around the write alone), and a second time by ffmpeg copying the PCM
(`pcm_s16le`: a whole process, its start and the reading included, timed like the encoders); FLAC,
OGG and MP3 by ffmpeg (the static build of the imageio-ffmpeg wheel) from that WAV: `flac`,
`libvorbis -q:a 5` and `libmp3lame -q:a 4.95` (LAME's `-V 4.95`, what relax's quality 5 is). Each time is wall seconds with CPU seconds (user and
system, of the process and its waited-for children) in brackets: on a shared machine the CPU
figures are the steadier. Ratios: warm / reference (how close relax comes to the encoder alone),
cold / warm. Peak RSS is relax's child `ru_maxrss` from `os.wait4` (its own
and its waited-for children's maximum), in MiB; of the cold and the warm run, the larger.
"""

from __future__ import annotations

import argparse
import compileall
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


def _timed(command: list[str], env=None, cwd=None) -> tuple[float, float, float, str]:
    """Run `command`; (wall seconds, CPU seconds (user + system, with its waited-for children),
    peak RSS MiB, stdout). Fails loudly on error."""
    started = time.monotonic()
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall_s = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{err}")
    cpu_s = usage.ru_utime + usage.ru_stime
    return wall_s, cpu_s, usage.ru_maxrss / 1024, out  # Linux reports KiB


def _run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float]:
    """`python -m audio_engine ARGS`: (wall seconds, CPU seconds, peak RSS MiB)."""
    wall_s, cpu_s, rss, _ = _timed([sys.executable, "-m", "audio_engine", *args], env, cwd)
    return wall_s, cpu_s, rss


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["RELAX_CACHE_DIR"] = str(cache)
    env.setdefault("SDL_AUDIODRIVER", "disk")
    return env


REFERENCE = {
    "wav": ["-c:a", "pcm_s16le"],  # the second WAV reference: a whole encoder process, as below
    "flac": ["-c:a", "flac"],
    "ogg": ["-c:a", "libvorbis", "-q:a", "5"],
    "mp3": ["-c:a", "libmp3lame", "-q:a", "4.95"],
}
BARE_WRITE = """
import sys, time
import soundfile
pcm, _ = soundfile.read(sys.argv[1], dtype="int16")
wall, cpu = time.monotonic(), time.process_time()
soundfile.write(sys.argv[2], pcm, 44100, subtype="PCM_16")
print(time.monotonic() - wall, time.process_time() - cpu)
"""


def _reference_s(fmt: str, wav: Path, work: Path, bare: bool = True) -> tuple[float, float]:
    """(wall, CPU) seconds the reference takes to write `wav`'s PCM as `fmt`; for WAV the bare
    write unless `bare` is false (then ffmpeg copying the PCM: start, read, write)."""
    out = work / f"reference.{fmt}"
    if fmt == "wav" and bare:
        _, _, _, printed = _timed([sys.executable, "-c", BARE_WRITE, str(wav), str(out)])
        out.unlink()
        wall_s, cpu_s = (float(v) for v in printed.split())
        return wall_s, cpu_s
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    command = [ffmpeg, "-v", "error", "-nostdin", "-y", "-i", str(wav), *REFERENCE[fmt], str(out)]
    wall_s, cpu_s, _, _ = _timed(command)
    out.unlink()
    return wall_s, cpu_s


def bench_lengths(minutes_list, formats, work: Path) -> list[str]:
    rows = [
        "| length | format | relax warm s | reference s | warm / reference | relax cold s"
        " | cold / warm | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        print(row, flush=True)
    for minutes in minutes_list:
        script = work / f"bench-{minutes}m.en.yaml"
        script.write_text(session_text(minutes), encoding="utf-8")
        pcm = work / "pcm.wav"
        _run(["export", str(script), "-o", str(pcm), "--no-transcript"], _env(work / "pcm"), work)
        for fmt in formats:
            cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
            out = work / f"out.{fmt}"
            args = ["export", str(script), "-o", str(out), "--no-transcript"]
            cold = _run(args, _env(cache), work)
            warm = _run(args, _env(cache), work)
            references = [(fmt.upper(), _reference_s(fmt, pcm, work))]
            if fmt == "wav":  # also against a whole process, timed the way the encoders are
                references.append(("WAV (ffmpeg copy)", _reference_s(fmt, pcm, work, bare=False)))
            out.unlink()
            shutil.rmtree(cache)
            for name, reference in references:
                # wall (CPU) seconds; the ratios of both
                rows.append(
                    f"| {minutes} min | {name} | {_pair(warm)} | {_pair(reference)}"
                    f" | {_ratio(warm, reference)} | {_pair(cold)} | {_ratio(cold, warm)}"
                    f" | {max(cold[2], warm[2]):.0f} |"
                )
                print(rows[-1], flush=True)
        pcm.unlink()
    return rows


def _pair(timing) -> str:
    return f"{timing[0]:.1f} ({timing[1]:.1f})"


def _ratio(a, b) -> str:
    return f"{a[0] / max(b[0], 1e-3):.2f}x ({a[1] / max(b[1], 1e-3):.2f}x)"


def bench_start(work: Path, repeats: int = 7) -> list[str]:
    """The commands that should start at once (`relax list`, `--help`, ...) against
    `python -c "import numpy"`: each the best of `repeats`, taken in turns (numpy, then every
    command, `repeats` times over), so that a busy moment of the machine touches all alike. The
    first turn fills the cache folder (the speech `info` places its steps by, the listing)."""
    commands = (["list"], ["--help"], ["safety"], ["history"])
    commands += (["validate", "--no-voice", "breathing-478"], ["info", "breathing-478"])
    runs = [[sys.executable, "-c", "import numpy"]]
    runs += [[sys.executable, "-m", "audio_engine", *words] for words in commands]
    best = [float("inf")] * len(runs)
    env = _env(work / "start")
    # Bytecode kept as an installed relax has it (pip compiles it; numpy's is always there).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for _ in range(repeats):
        for i, command in enumerate(runs):
            started = time.monotonic()
            subprocess.run(command, cwd=work, env=env, capture_output=True)
            best[i] = min(best[i], time.monotonic() - started)
    numpy_s = best[0]
    rows = ["| command | relax s | `import numpy` s | ratio |", "|---|---|---|---|"]
    for words, took in zip(commands, best[1:], strict=True):
        rows.append(
            f"| relax {' '.join(words)} | {took:.2f} | {numpy_s:.2f} | {took / numpy_s:.1f}x |"
        )
    for row in rows:
        print(row, flush=True)
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
        wall_s, _, _ = _run(args + extra, _env(cache), work)
        rows.append(f"{label:>7} {jobs:>6} {wall_s:>9.1f}  {note}")
        print(rows[-1], flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 min only, no --all")
    parser.add_argument("--minutes", type=int, nargs="+", help="session lengths (default 5 20 60)")
    parser.add_argument("--formats", nargs="+", help="formats (default wav flac ogg mp3)")
    parser.add_argument("--no-all", action="store_true", help="skip the --all measurement")
    parser.add_argument("--no-lengths", action="store_true", help="only the --all measurement")
    parser.add_argument("--all-language", help="with --all: only this language")
    args = parser.parse_args(argv)
    minutes = args.minutes or ([5] if args.quick else [5, 20, 60])
    formats = args.formats or ["wav", "flac", "ogg", "mp3"]
    print(f"relax export benchmark: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    # Byte code as the bootstrap writes it: a checkout changed since (where
    # PYTHONDONTWRITEBYTECODE is set) would otherwise compile its modules in every timed run.
    compileall.compile_dir(ROOT / "audio_engine", quiet=1)
    with tempfile.TemporaryDirectory(prefix="relax-bench-") as tmp:
        work = Path(tmp)
        bench_start(work)
        print()
        if not args.no_lengths:
            bench_lengths(minutes, formats, work)
        if not args.no_all and not args.quick:
            print()
            bench_all(args.all_language, formats[0], work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
