"""What `relax remind` costs while it waits: CPU time per minute and resident memory.

Run from the checkout: `.venv/bin/python bench/remind.py [--seconds 60]`. It starts a private
session bus with a notification server (the tests' one), an Xvfb display when Xvfb is installed
(X11 idle time) and a headless sway when sway is installed (Wayland idle time, the tests' one),
and `python -m audio_engine remind` with its default 5 s tick, lets it run, and
reads the process's CPU time (`/proc/PID/stat`, user + system) and RSS (`/proc/PID/status`
VmRSS, VmHWM). Linux only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _mem_mib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(seconds: float, source: str) -> dict:
    from tests._remind_bus import NotificationServer, SessionBus, Xvfb
    from tests._remind_wayland import Sway

    bus = SessionBus()
    server = NotificationServer(bus.address)
    xvfb = Xvfb() if source == "x11" else None
    sway = Sway() if source == "wayland" else None
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=bus.address, RELAX_DATA_DIR=tmp)
        env["RELAX_SETTINGS_DIR"] = tmp
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
        if xvfb:
            env["DISPLAY"] = xvfb.display
        if sway:
            env["WAYLAND_DISPLAY"] = sway.socket
        proc = subprocess.Popen(
            [sys.executable, "-m", "audio_engine", "remind"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            status = Path(tmp) / "remind-status.json"
            while not status.exists():
                time.sleep(0.05)
            start_cpu = _cpu_s(proc.pid)
            time.sleep(seconds)
            cpu = _cpu_s(proc.pid) - start_cpu
            rss = _mem_mib(proc.pid, "VmRSS")
            peak = _mem_mib(proc.pid, "VmHWM")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
            server.stop()
            bus.stop()
            if xvfb:
                xvfb.stop()
            if sway:
                sway.stop()
    names = {"wall": "wall clock", "x11": "X11 (Xvfb)", "wayland": "Wayland (sway 1.7)"}
    return {
        "idle": names[source],
        "cpu_ms_per_min": cpu / seconds * 60 * 1000,
        "rss": rss,
        "peak": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    print(f"relax remind waiting, {args.seconds:g} s measured after start-up")
    print("| idle source | CPU ms per minute | RSS MiB | peak RSS MiB |")
    print("| --- | ---: | ---: | ---: |")
    sources = ["wall"] + [
        s for s, exe in (("x11", "Xvfb"), ("wayland", "sway")) if shutil.which(exe)
    ]
    for source in sources:
        r = measure(args.seconds, source)
        print(f"| {r['idle']} | {r['cpu_ms_per_min']:.0f} | {r['rss']:.1f} | {r['peak']:.1f} |")


if __name__ == "__main__":
    main()
