"""Library window benchmark: time to the first frame and CPU while it waits, per window size.

Run from the checkout: `.venv/bin/python bench/app.py` (about a minute; needs Xvfb).

Each size runs `python -m audio_engine.app` in a fresh process on a private Xvfb display with a
private settings folder (no first-start safety text). "first frame" is the wall time from the
process start to the first frame written (RELAX_APP_TRACE), which includes Python start-up,
imports and reading the library. "idle CPU" is the process's user + system CPU time over
`--idle` seconds of the library shown and nothing happening (from /proc, Linux), as a share of
one core.
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


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=10.0, metavar="S")
    args = parser.parse_args()
    if not shutil.which("Xvfb"):
        print("bench/app.py needs Xvfb", file=sys.stderr)
        return 1
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        display = ":" + f.readline().strip()
    print(f"| window | first frame (s) | idle CPU over {args.idle:g} s (% of a core) |")
    print("|---|---|---|")
    try:
        for size in ("800x600", "1920x1080"):
            private = Path(tempfile.mkdtemp(prefix="relax-bench-app-"))
            (private / "settings").mkdir()
            (private / "settings" / "safety-shown-in-window").write_text("shown\n")
            trace = private / "trace.json"
            env = dict(
                os.environ,
                DISPLAY=display,
                SDL_VIDEODRIVER="x11",
                SDL_AUDIODRIVER="disk",
                RELAX_SETTINGS_DIR=str(private / "settings"),
                RELAX_DATA_DIR=str(private / "data"),
                RELAX_APP_TRACE=str(trace),
            )
            started = time.monotonic()
            proc = subprocess.Popen(
                [sys.executable, "-m", "audio_engine.app", "--size", size],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                while not trace.exists():
                    if time.monotonic() - started > 60 or proc.poll() is not None:
                        raise SystemExit("the window did not open")
                    time.sleep(0.01)
                first = time.monotonic() - started
                time.sleep(1.0)
                before = _cpu_s(proc.pid)
                time.sleep(args.idle)
                idle = 100 * (_cpu_s(proc.pid) - before) / args.idle
            finally:
                proc.terminate()
                proc.wait(30)
                shutil.rmtree(private, ignore_errors=True)
            print(f"| {size} | {first:.2f} | {idle:.1f} |")
    finally:
        xvfb.terminate()
        xvfb.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
