"""What `relax remind` costs while it waits: CPU time per minute and resident memory.

Run from the checkout: `.venv/bin/python bench/remind.py [--seconds 60]`. It starts a private
session bus with a notification server (the tests' one), an Xvfb display when Xvfb is installed
(X11 idle time) and a headless sway when sway is installed (Wayland idle time, the tests' one),
and `python -m audio_engine remind` with its default 5 s tick, lets it run, and
reads the process's CPU time (`/proc/PID/stat`, user + system) and RSS (`/proc/PID/status`
VmRSS, VmHWM). Linux only.

With PipeWire installed it also runs a private `pipewire` daemon (tests/_pipewire.py) so the
reminder's screen-sharing probe works as on a desktop, and it times one look at screen sharing
for each probe (the GNOME one against Mutter's services served on the private bus, the PipeWire
one with a portal's screen cast in the graph): CPU of this process and of its children
(`pw-dump`) per look. A look is taken only when a reminder is due, then at most every 15 s while
the screen stays shared; waiting with no reminder due costs none.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
    pw = _pipewire()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(pw.env if pw else os.environ)
        env.update(DBUS_SESSION_BUS_ADDRESS=bus.address, RELAX_DATA_DIR=tmp)
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
            sharing = json.loads(status.read_text() or "{}").get("sharing")
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
            if pw:
                pw.stop()
    names = {"wall": "wall clock", "x11": "X11 (Xvfb)", "wayland": "Wayland (sway 1.7)"}
    return {
        "idle": names[source],
        "sharing": sharing or "none",
        "cpu_ms_per_min": cpu / seconds * 60 * 1000,
        "rss": rss,
        "peak": peak,
    }


def _pipewire():
    if not (shutil.which("pipewire") and shutil.which("pw-dump") and shutil.which("pw-cli")):
        return None
    from tests._pipewire import PipeWire

    return PipeWire()


def _cpu_now() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def probe_costs(looks: int) -> list[dict]:
    from audio_engine.remind import notify, sharing
    from tests._mutter import Caster, Mutter
    from tests._pipewire import XDPW
    from tests._remind_bus import SessionBus

    rows = []
    bus = SessionBus()
    mutter = Mutter(bus.address)
    caster = Caster(bus.address)
    conn = notify.connect(bus.address)
    caster.create()
    probes = [("GNOME, one screen cast", sharing.MutterScreenCast(conn), None)]
    pw = _pipewire()
    if pw:
        pw.create_node(XDPW)
        probes.append(("PipeWire, a portal's screen cast", sharing.PipeWireGraph(env=pw.env), pw))
    try:
        for label, probe, _ in probes:
            assert probe.check(), label  # the screen is shared in both
            cpu, wall = _cpu_now(), time.perf_counter()
            for _ in range(looks):
                probe.check()
            cpu, wall = _cpu_now() - cpu, time.perf_counter() - wall
            rows.append(
                {
                    "probe": f"{probe.name}: {label}",
                    "cpu_ms": cpu / looks * 1000,
                    "wall_ms": wall / looks * 1000,
                    "held_ms_per_min": cpu / looks * 1000 * 60 / sharing.RECHECK_S,
                }
            )
    finally:
        if pw:
            pw.stop()
        conn.close()
        caster.close()
        mutter.stop()
        bus.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--looks", type=int, default=40, help="looks at screen sharing timed")
    args = parser.parse_args()
    print(f"relax remind waiting, {args.seconds:g} s measured after start-up")
    print("| idle source | screen sharing seen by | CPU ms per minute | RSS MiB | peak RSS MiB |")
    print("| --- | --- | ---: | ---: | ---: |")
    sources = ["wall"] + [
        s for s, exe in (("x11", "Xvfb"), ("wayland", "sway")) if shutil.which(exe)
    ]
    for source in sources:
        r = measure(args.seconds, source)
        print(
            f"| {r['idle']} | {r['sharing']} | {r['cpu_ms_per_min']:.0f} | {r['rss']:.1f} "
            f"| {r['peak']:.1f} |"
        )
    print()
    print(f"one look at screen sharing, mean of {args.looks}")
    print("| probe | CPU ms per look | wall ms per look | CPU ms per minute while held back |")
    print("| --- | ---: | ---: | ---: |")
    for r in probe_costs(args.looks):
        print(
            f"| {r['probe']} | {r['cpu_ms']:.1f} | {r['wall_ms']:.1f} "
            f"| {r['held_ms_per_min']:.0f} |"
        )


if __name__ == "__main__":
    main()
