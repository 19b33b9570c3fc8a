"""Memory of an export, summed over relax's processes, and the first start of the neural voice:
`python bench/memory.py [--session body-scan] [--languages en,nl] [--before REF]`.

Runs `relax export SESSION -l LANG` cold (an empty cache folder: every line synthesized, the
neural voice's pronunciation tables packed for the first time) and then warm (the same folder
again), and samples every 20 ms the proportional set size (PSS, `/proc/PID/smaps_rollup`) of the
relax process and every process under it (espeak-ng's fork servers and their children). Prints
per run the peak of the sum, the peak of the main process alone, how many processes were seen
and the wall time; for a cold run also by phase (each stretch of time with as many processes
under the main one: the speech's process apart, the gain measure's workers, the render alone),
its peaks, its processes and when it ran. PSS counts a page shared by N processes as 1/N in each, so the sum is what
the export takes from the machine. Then the time to first sound of `relax play SESSION` (English)
on a first run: an empty cache folder (`bench/play.py`'s measure), the median of three.

`--before REF`: the same figures for the checkout at git revision REF too (its files, run with
this environment), in rows labelled with REF, before this checkout's ("now"). Linux only.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def measure(args: list[str], env: dict[str, str], cwd: Path) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen(
        args, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    peak_sum = peak_main = 0
    seen: set[int] = set()
    phases: list[dict] = []  # runs of samples with the same processes under the main one
    while proc.poll() is None:
        pids = descendants(proc.pid)
        seen.update(pids)
        sizes = {pid: pss_kib(pid) for pid in pids}
        total = sum(sizes.values())
        peak_sum = max(peak_sum, total)
        peak_main = max(peak_main, sizes.get(proc.pid, 0))
        others = frozenset(pids) - {proc.pid}
        now = time.perf_counter() - start
        if not phases or phases[-1]["others"] != others:
            phases.append({"others": others, "from": now, "sum": 0, "main": 0})
        phase = phases[-1]
        phase.update(to=now, sum=max(phase["sum"], total))
        phase["main"] = max(phase["main"], sizes.get(proc.pid, 0))
        time.sleep(0.02)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"export failed ({proc.returncode}): {err.strip()[-300:]}")
    return {
        "sum_mib": peak_sum / 1024,
        "main_mib": peak_main / 1024,
        "processes": len(seen),
        "wall_s": time.perf_counter() - start,
        "phases": _merged(phases),
    }


def _merged(phases: list[dict]) -> list[dict]:
    """The phases, each run of samples with the same number of processes under the main one as
    one (a worker replaced by the next is the same phase), the shortest (under 0.1 s) left out."""
    merged: list[dict] = []
    for phase in phases:
        count = len(phase["others"])
        if merged and merged[-1]["others"] == count:
            last = merged[-1]
            last.update(to=phase["to"], sum=max(last["sum"], phase["sum"]))
            last["main"] = max(last["main"], phase["main"])
        else:
            merged.append({**phase, "others": count})
    return [p for p in merged if p["to"] - p["from"] >= 0.1]


def checkout(ref: str, folder: Path) -> Path:
    """The files of git revision `ref` of this repository, in `folder`."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def figures(label: str, root: Path, session: str, languages: list[str], work: Path) -> None:
    """Print the rows of the checkout at `root` (relax run from there, with this Python)."""
    base = {**os.environ, "PYTHONPATH": str(root)}
    for language in languages:
        cache = work / f"cache-{label}-{language}"
        env = {**base, "RELAX_CACHE_DIR": str(cache)}
        out = work / f"out-{label}-{language}.wav"
        command = [sys.executable, "-m", "audio_engine", "export", session]
        command += ["-l", language, "-o", str(out)]
        for kind in ("cold", "warm"):
            row = measure(command, env, root)
            print(
                f"{label:<8} {session:<12} {language:<5} {kind:<6} {row['sum_mib']:>6.0f} MiB "
                f"{row['main_mib']:>5.0f} MiB {row['processes']:>6} {row['wall_s']:>6.1f}",
                flush=True,
            )
            if kind == "cold":  # where the peak is: by phase
                for phase in row["phases"]:
                    print(
                        f"{'':<8} {'':<12} {'':<5} {'':<6} {phase['sum'] / 1024:>6.0f} MiB "
                        f"{phase['main'] / 1024:>5.0f} MiB {phase['others'] + 1:>6}   "
                        f"{phase['from']:.1f}-{phase['to']:.1f} s",
                        flush=True,
                    )


def first_sound(label: str, root: Path, session: str, work: Path) -> None:
    """The first run's time to first sound (English, an empty cache folder each time)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from play import first_sound_s

    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(root)
    try:
        times = [first_sound_s(session, "en", work / f"first-{label}-{n}", work) for n in range(3)]
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = before
    print(
        f"{label:<8} {session:<12} {'en':<5} first sound, first run (empty cache): "
        f"{statistics.median(times):.2f} s (of {', '.join(f'{t:.2f}' for t in times)})",
        flush=True,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--session", default="body-scan")
    parser.add_argument("--languages", default="en,nl")
    parser.add_argument("--before", metavar="REF", help="measure git revision REF too")
    args = parser.parse_args(argv)
    languages = args.languages.split(",")
    print(
        f"{'checkout':<8} {'session':<12} {'lang':<5} {'cache':<6} {'PSS sum':>9} {'main':>9} "
        f"{'procs':>6} {'s':>6}"
    )
    with tempfile.TemporaryDirectory(prefix="relax-bench-memory-") as folder:
        work = Path(folder)
        roots = [("now", ROOT)]
        if args.before:
            before = checkout(args.before, work / "before")
            roots.insert(0, (args.before[:8], before))
        for label, root in roots:
            figures(label, root, args.session, languages, work)
        for label, root in roots:
            first_sound(label, root, args.session, work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
