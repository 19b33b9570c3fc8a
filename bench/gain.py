"""The loudness measure alone: its time and the memory of its forked workers.

`python bench/gain.py [--session body-scan] [--language en] [--minutes 60]`

Prepares each session (its speech from the cache folder, made there first if missing), then runs
`gain.measure_gains` for the player's and the default lossy ceiling, as a cold export does, and
samples every 20 ms the proportional set size (PSS, `/proc/PID/smaps_rollup`) of the measure's
worker processes and of this one. Prints per session: the wall and CPU seconds of the measure
(this process and its workers), the workers' peak PSS each, their summed peak and that sum with
this process. `--minutes N` adds the generated N-minute session of bench/export.py. Linux only.
"""

from __future__ import annotations

import argparse
import os
import resource
import select
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory import descendants, pss_kib  # noqa: E402


def _watch(parent: int, done_fd: int) -> None:
    """In a forked child: sample the PSS of `parent`'s other descendants until `done_fd` reads."""
    peaks: dict[int, int] = {}
    summed = with_parent = 0
    me = os.getpid()
    while True:
        workers = [p for p in descendants(parent) if p not in (parent, me)]
        values = {p: pss_kib(p) for p in workers}
        for p, v in values.items():
            peaks[p] = max(peaks.get(p, 0), v)
        total = sum(values.values())
        summed = max(summed, total)
        with_parent = max(with_parent, total + pss_kib(parent))
        if select.select([done_fd], [], [], 0.02)[0]:
            break
    each = sorted(v / 1024 for v in peaks.values())
    spread = f"{each[0]:.0f}-{each[-1]:.0f}" if each else "-"
    print(f" {spread} | {summed / 1024:.0f} | {with_parent / 1024:.0f} |", flush=True)


def measure(name: str, session) -> None:
    from audio_engine import gain, pipeline

    prepared = pipeline.prepare(session)
    read_fd, write_fd = os.pipe()
    watcher = os.fork()  # a process, not a thread: the measure forks only without threads
    if watcher == 0:
        os.close(write_fd)
        _watch(os.getppid(), read_fd)
        os._exit(0)
    os.close(read_fd)
    wall, cpu = time.monotonic(), time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    gain.measure_gains(prepared.timeline, prepared.sources, gain.STANDARD_CEILINGS)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - cpu + after.ru_utime + after.ru_stime
    cpu -= children.ru_utime + children.ru_stime
    print(f"| {name} | {time.monotonic() - wall:.1f} ({cpu:.1f}) |", end="", flush=True)
    os.close(write_fd)
    os.waitpid(watcher, 0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--session", action="append", help="built-in session (default body-scan)")
    parser.add_argument("--language", default="en")
    parser.add_argument("--minutes", type=int, action="append", help="a generated session")
    args = parser.parse_args(argv)
    from audio_engine import pipeline, script

    print("| session | measure s (CPU s) | worker peak PSS MiB | workers' sum | with this one |")
    print("|---|---|---|---|---|")
    for name in args.session or ([] if args.minutes else ["body-scan"]):
        measure(name, pipeline.load(name, args.language))
    for minutes in args.minutes or []:
        import export as bench_export

        with tempfile.TemporaryDirectory() as work:
            path = Path(work) / f"bench-{minutes}m.en.yaml"
            path.write_text(bench_export.session_text(minutes), encoding="utf-8")
            measure(f"{minutes} min", script.load(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
