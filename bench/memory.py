"""Memory of an export, summed over relax's processes, and the first start of the neural voice:
`python bench/memory.py [--session body-scan] [--languages en,nl] [--before REF]`.

Runs `relax export SESSION -l LANG` cold (an empty cache folder: every line synthesized, the
neural voice's pronunciation tables packed for the first time) and then warm (the same folder
again), and samples every 20 ms the proportional set size (PSS, `/proc/PID/smaps_rollup`) of the
relax process and every process under it (espeak-ng's fork servers and their children). Prints
per run the peak of the sum, the peak of the main process alone, how many processes were seen
and the wall time. PSS counts a page shared by N processes as 1/N in each, so the sum is what
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
    while proc.poll() is None:
        pids = descendants(proc.pid)
        seen.update(pids)
        sizes = {pid: pss_kib(pid) for pid in pids}
        peak_sum = max(peak_sum, sum(sizes.values()))
        peak_main = max(peak_main, sizes.get(proc.pid, 0))
        time.sleep(0.02)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"export failed ({proc.returncode}): {err.strip()[-300:]}")
    return {
        "sum_mib": peak_sum / 1024,
        "main_mib": peak_main / 1024,
        "processes": len(seen),
        "wall_s": time.perf_counter() - start,
    }


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
