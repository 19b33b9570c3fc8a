"""Real parts for the reminder's tests: a private session bus, a notification server on it that
records the calls and presses the buttons, and an Xvfb display."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"


BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def terminate(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 5 s: a service the tests started ends either way."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class SessionBus:
    """`dbus-daemon --session` of our own; `address` to connect to it."""

    def __init__(self):
        exe = shutil.which("dbus-daemon")
        if exe is None:
            pytest.skip("dbus-daemon is not installed (scripts/test installs it as root with apt)")
        # A session bus that activates no installed services: only what the test starts is on
        # it, whatever this machine has installed (a notification daemon, a screen saver).
        self._dir = tempfile.mkdtemp(prefix="relax-bus-")
        config = os.path.join(self._dir, "bus.conf")
        with open(config, "w", encoding="utf-8") as f:
            f.write(BUS_CONFIG.format(dir=self._dir))
        self.proc = subprocess.Popen(
            [exe, f"--config-file={config}", "--print-address=1", "--nofork", "--nopidfile"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            self.stop()
            pytest.fail("dbus-daemon printed no address")

    def stop(self) -> None:
        terminate(self.proc)
        if self.proc.stdout:
            self.proc.stdout.close()
        shutil.rmtree(self._dir, ignore_errors=True)


class NotificationServer:
    """org.freedesktop.Notifications, served from a thread: records every call."""

    def __init__(self, address: str, actions: bool = True):
        from jeepney.io.blocking import open_dbus_connection

        self.conn = open_dbus_connection(bus=address)
        self.actions = actions
        self.inhibited = False  # the Inhibited property (None: not served)
        self.paused = None  # dunst's paused property (None: not served)
        self.calls: list[tuple] = []
        self.shown: dict[int, dict] = {}
        self.next_id = 1
        self._stop = threading.Event()
        self._lock = threading.Lock()
        reply = self.conn.send_and_get_reply(_bus_call("RequestName", "su", (NAME, 4)), timeout=5)
        assert reply.body[0] == 1, "could not own org.freedesktop.Notifications"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    # -- what tests do ---------------------------------------------------------------

    def wait_for(self, method: str, count: int = 1, timeout_s: float = 10.0) -> list[tuple]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                found = [c for c in self.calls if c[0] == method]
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"no {count}x {method} within {timeout_s} s; calls: {self.calls}")

    def last_id(self) -> int:
        return self.next_id - 1

    def press(self, key: str, notification: int | None = None, close: bool = True) -> None:
        nid = notification or self.last_id()
        self._signal("ActionInvoked", "us", (nid, key))
        if close:
            self._signal("NotificationClosed", "uu", (nid, 2))

    def dismiss(self, notification: int | None = None) -> None:
        self._signal("NotificationClosed", "uu", (notification or self.last_id(), 2))

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.conn.close()

    # -- inside -------------------------------------------------------------------

    def _signal(self, member, signature, body):
        from jeepney import DBusAddress, new_signal

        self.conn.send(new_signal(DBusAddress(PATH, interface=NAME), member, signature, body))

    def _serve(self):
        from jeepney import MessageType, new_error, new_method_return
        from jeepney.low_level import HeaderFields

        while not self._stop.is_set():
            try:
                msg = self.conn.receive(timeout=0.05)
            except TimeoutError:
                continue
            except (OSError, ConnectionError, ValueError):
                return
            if msg.header.message_type != MessageType.method_call:
                continue
            member = msg.header.fields.get(HeaderFields.member)
            with self._lock:
                self.calls.append((member, *msg.body))
            if member == "GetServerInformation":
                out = new_method_return(msg, "ssss", ("fake-notifyd", "relax tests", "1", "1.2"))
            elif member == "GetCapabilities":
                caps = ["body", "actions"] if self.actions else ["body"]
                out = new_method_return(msg, "as", (caps,))
            elif member == "Notify":
                replaces = msg.body[1]
                nid = replaces or self.next_id
                if not replaces:
                    self.next_id += 1
                self.shown[nid] = {
                    "summary": msg.body[3],
                    "body": msg.body[4],
                    "actions": msg.body[5],
                }
                out = new_method_return(msg, "u", (nid,))
            elif member == "CloseNotification":
                out = new_method_return(msg)
                self.conn.send(out)
                self._signal("NotificationClosed", "uu", (msg.body[0], 3))
                continue
            elif member == "Get" and msg.body == (NAME, "Inhibited") and self.inhibited is not None:
                out = new_method_return(msg, "v", (("b", self.inhibited),))
            elif (
                member == "Get"
                and msg.body == ("org.dunstproject.cmd0", "paused")
                and self.paused is not None
            ):
                out = new_method_return(msg, "v", (("b", self.paused),))
            else:
                out = new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (member,))
            self.conn.send(out)


def _bus_call(method, signature, body):
    from jeepney import DBusAddress, new_method_call

    addr = DBusAddress(
        "/org/freedesktop/DBus", bus_name="org.freedesktop.DBus", interface="org.freedesktop.DBus"
    )
    return new_method_call(addr, method, signature, body)


class Xvfb:
    """A virtual X display (`display` like ':57'), with the screen-saver extension."""

    def __init__(self, size: str = "640x480"):
        exe = shutil.which("Xvfb")
        if exe is None:
            pytest.skip("Xvfb is not installed (scripts/test installs it as root with apt)")
        read_fd, write_fd = os.pipe()
        # -displayfd: the server picks a free display and writes its number when ready.
        self.proc = subprocess.Popen(
            [
                exe,
                "-displayfd",
                str(write_fd),
                "-screen",
                "0",
                f"{size}x24",
                "-nolisten",
                "tcp",
                "-noreset",
            ],
            pass_fds=(write_fd,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write_fd)
        with os.fdopen(read_fd) as f:
            number = f.readline().strip()
        if not number:
            self.stop()
            pytest.fail("Xvfb did not start")
        self.display = f":{number}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Service:
    """Owns `name` on the bus and answers method calls from `replies`: member -> (signature,
    body) or a callable returning it. Records the members called."""

    def __init__(self, address: str, name: str, replies: dict):
        from jeepney.io.blocking import open_dbus_connection

        self.conn = open_dbus_connection(bus=address)
        self.replies = replies
        self.called: list[str] = []
        self._stop = threading.Event()
        reply = self.conn.send_and_get_reply(_bus_call("RequestName", "su", (name, 4)), timeout=5)
        assert reply.body[0] == 1, f"could not own {name}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        from jeepney import MessageType, new_error, new_method_return
        from jeepney.low_level import HeaderFields

        while not self._stop.is_set():
            try:
                msg = self.conn.receive(timeout=0.05)
            except TimeoutError:
                continue
            except (OSError, ConnectionError, ValueError):
                return
            if msg.header.message_type != MessageType.method_call:
                continue
            member = msg.header.fields.get(HeaderFields.member)
            self.called.append(member)
            answer = self.replies.get(member)
            if callable(answer):
                answer = answer()
            if answer is None:
                out = new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (member,))
            else:
                out = new_method_return(msg, *answer)
            self.conn.send(out)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.conn.close()
