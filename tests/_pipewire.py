"""A real PipeWire daemon of our own for the screen-sharing tests: a private XDG_RUNTIME_DIR,
a minimal configuration (the native protocol, access, client nodes, the adapter and the SPA
node factory; no session manager, no devices), and `pw-cli` to make and remove nodes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from tests._remind_bus import terminate

CONFIG = """\
context.properties = {
    core.daemon = true
    core.name = pipewire-0
    support.dbus = false
}
context.spa-libs = {
    support.*    = support/libspa-support
    videotestsrc = videotestsrc/libspa-videotestsrc
}
context.modules = [
    { name = libpipewire-module-protocol-native }
    { name = libpipewire-module-access }
    { name = libpipewire-module-client-node }
    { name = libpipewire-module-adapter }
    { name = libpipewire-module-spa-node-factory }
]
"""

# What xdg-desktop-portal-wlr's stream shows in pw-dump (pipewire_screencast.c: a pw_stream named
# "xdpw-stream-XXXXXX" with media.class Video/Source; PipeWire names the node after the app).
XDPW = {
    "media.class": "Video/Source",
    "media.name": "xdpw-stream-k3m9qa",
    "node.name": "xdg-desktop-portal-wlr",
    "application.name": "xdg-desktop-portal-wlr",
}
# KWin's (screencaststream.cpp: no class given; PipeWire's stream.c then says Stream/Output/Video).
KWIN = {
    "media.class": "Stream/Output/Video",
    "media.name": "kwin-screencast-DP-1",
    "node.name": "kwin_wayland",
    "application.name": "kwin_wayland",
}
# A webcam as WirePlumber's v4l2 monitor makes it.
CAMERA = {
    "media.class": "Video/Source",
    "media.role": "Camera",
    "device.api": "v4l2",
    "node.name": "v4l2_input.pci-0000_00_14.0-usb-0_1_1.0",
    "node.description": "Integrated Camera",
}


class PipeWire:
    """`pipewire` with its socket in a private runtime folder; `env` for its clients."""

    def __init__(self):
        exe = shutil.which("pipewire")
        self.cli = shutil.which("pw-cli")
        if exe is None or self.cli is None or shutil.which("pw-dump") is None:
            pytest.skip(
                "pipewire / pw-cli / pw-dump are not installed "
                "(scripts/test installs pipewire and pipewire-bin as root with apt)"
            )
        self.dir = tempfile.mkdtemp(prefix="relax-pw-")
        os.chmod(self.dir, 0o700)
        config = os.path.join(self.dir, "pipewire.conf")
        with open(config, "w", encoding="utf-8") as f:
            f.write(CONFIG)
        self.env = dict(os.environ, XDG_RUNTIME_DIR=self.dir, PIPEWIRE_LOG_SYSTEMD="false")
        self.env.pop("PIPEWIRE_REMOTE", None)
        self.proc = subprocess.Popen(
            [exe, "-c", config],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode("utf-8", "replace") if self.proc.stderr else ""
                self.stop()
                pytest.fail(f"pipewire did not start: {err.strip()[-300:]}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        if not os.path.exists(os.path.join(self.dir, "pipewire-0")):
            return False
        done = subprocess.run(
            ["pw-dump", "-N"], env=self.env, capture_output=True, timeout=5, check=False
        )
        return done.returncode == 0

    def create_node(self, props: dict) -> int:
        """A lingering video node with these properties (its id)."""
        words = " ".join(f'{k}="{v}"' for k, v in props.items())
        spec = f"{{ factory.name=videotestsrc object.linger=true {words} }}"
        subprocess.run(
            [self.cli, "create-node", "spa-node-factory", spec],
            env=self.env,
            capture_output=True,
            timeout=10,
            check=True,
        )
        for obj in self.dump():
            p = (obj.get("info") or {}).get("props") or {}
            if obj.get("type", "").endswith(":Node") and p.get("node.name") == props["node.name"]:
                return int(obj["id"])
        raise AssertionError(f"node {props['node.name']} not in the graph")

    def dump(self) -> list:
        done = subprocess.run(
            ["pw-dump", "-N"], env=self.env, capture_output=True, timeout=5, check=True
        )
        return json.loads(done.stdout)

    def destroy(self, node_id: int) -> None:
        subprocess.run(
            [self.cli, "destroy", str(node_id)],
            env=self.env,
            capture_output=True,
            timeout=10,
            check=True,
        )

    def stop(self) -> None:
        terminate(self.proc)
        if self.proc.stderr:
            self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)
