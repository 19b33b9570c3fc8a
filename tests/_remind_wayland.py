"""Real parts for the reminder's Wayland tests: a headless sway (wlroots 0.15 on Debian 12:
org_kde_kwin_idle and the virtual pointer), and a small compositor in the test that speaks the
wire protocol, offers ext_idle_notifier_v1, records the requests and sends idled / resumed."""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from audio_engine.remind import wayland as wl
from tests._remind_bus import terminate

SWAY_CONFIG = "xwayland disable\n"
NOBODY = 65534


class Sway:
    """`sway` on the headless backend with a private XDG_RUNTIME_DIR; `socket` to connect to.
    sway refuses to run as root, so as root it runs as nobody (setpriv)."""

    def __init__(self):
        exe = shutil.which("sway")
        if exe is None:
            pytest.skip("sway is not installed (scripts/test installs it as root with apt)")
        self.runtime = tempfile.mkdtemp(prefix="relax-wl-")
        os.chmod(self.runtime, 0o700)
        config = os.path.join(self.runtime, "config")
        with open(config, "w", encoding="utf-8") as f:
            f.write(SWAY_CONFIG)
        cmd = [exe, "-c", config]
        if os.getuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                self._clean()
                pytest.skip("running as root and setpriv is missing (sway refuses root)")
            os.chown(self.runtime, NOBODY, NOBODY)
            os.chown(config, NOBODY, NOBODY)
            cmd = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd]
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET", "SWAYSOCK")
        }
        env.update(
            XDG_RUNTIME_DIR=self.runtime,
            WLR_BACKENDS="headless",
            WLR_LIBINPUT_NO_DEVICES="1",
            WLR_RENDERER="pixman",
        )
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self.log, stderr=self.log, cwd=self.runtime
        )
        self.socket = self._wait_for_socket(10.0)

    def _wait_for_socket(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            for name in sorted(os.listdir(self.runtime)):
                path = os.path.join(self.runtime, name)
                if name.startswith("wayland-") and not name.endswith(".lock"):
                    try:
                        with socket.socket(socket.AF_UNIX) as s:
                            s.connect(path)
                        return path
                    except OSError:
                        pass
            time.sleep(0.02)
        self.log.seek(0)
        tail = self.log.read().decode(errors="replace").strip().splitlines()[-3:]
        self.stop()
        pytest.fail(f"sway did not start: {' / '.join(tail)}")

    def stop(self) -> None:
        terminate(self.proc)
        self.log.close()
        self._clean()

    def _clean(self) -> None:
        shutil.rmtree(self.runtime, ignore_errors=True)


class VirtualPointer:
    """A client of its own that moves the pointer (zwlr_virtual_pointer_manager_v1)."""

    def __init__(self, display: str):
        self.conn = wl.Connection.connect(display)
        seat = self.conn.bind(wl.WL_SEAT, 1)
        manager = self.conn.bind(wl.ZWLR_VIRTUAL_POINTER_MANAGER_V1)
        self.pointer = self.conn.request(
            manager, "create_virtual_pointer", seat, wl.ZWLR_VIRTUAL_POINTER_V1
        )
        self.conn.roundtrip()

    def move(self, dx: float = 7.0, dy: float = 3.0) -> None:
        ms = int(time.monotonic() * 1000) & 0xFFFFFFFF
        self.conn.request(self.pointer, "motion", ms, dx, dy)
        self.conn.request(self.pointer, "frame")
        self.conn.roundtrip()

    def close(self) -> None:
        self.conn.close()


M = wl.Message
# Core and xdg-shell interfaces, only for the tests' window (relax itself makes no windows).
WL_COMPOSITOR = wl.Interface("wl_compositor", 1, requests=(M("create_surface", "n", "wl_surface"),))
WL_SURFACE = wl.Interface(
    "wl_surface",
    1,
    requests=(
        M("destroy"),
        M("attach", "?oii"),
        M("damage", "iiii"),
        M("frame", "n", "wl_callback"),
    )
    + (M("set_opaque_region", "?o"), M("set_input_region", "?o"), M("commit")),
    events=(M("enter", "o"), M("leave", "o")),
)
WL_SHM = wl.Interface(
    "wl_shm", 1, requests=(M("create_pool", "nhi", "wl_shm_pool"),), events=(M("format", "u"),)
)
WL_SHM_POOL = wl.Interface(
    "wl_shm_pool", 1, requests=(M("create_buffer", "niiiiu", "wl_buffer"), M("destroy"))
)
WL_BUFFER = wl.Interface("wl_buffer", 1, requests=(M("destroy"),), events=(M("release"),))
XDG_WM_BASE = wl.Interface(
    "xdg_wm_base",
    1,
    requests=(M("destroy"), M("create_positioner", "n", "xdg_positioner"))
    + (M("get_xdg_surface", "no", "xdg_surface"), M("pong", "u")),
    events=(M("ping", "u"),),
)
XDG_SURFACE = wl.Interface(
    "xdg_surface",
    1,
    requests=(
        M("destroy"),
        M("get_toplevel", "n", "xdg_toplevel"),
        M("get_popup", "n?oo", "xdg_popup"),
    )
    + (M("set_window_geometry", "iiii"), M("ack_configure", "u")),
    events=(M("configure", "u"),),
)
XDG_TOPLEVEL = wl.Interface(
    "xdg_toplevel",
    1,
    requests=(
        M("destroy"),
        M("set_parent", "?o"),
        M("set_title", "s"),
        M("set_app_id", "s"),
        M("show_window_menu", "ouii"),
        M("move", "ou"),
        M("resize", "ouu"),
        M("set_max_size", "ii"),
        M("set_min_size", "ii"),
        M("set_maximized"),
        M("unset_maximized"),
        M("set_fullscreen", "?o"),
        M("unset_fullscreen"),
        M("set_minimized"),
    ),
    events=(M("configure", "iia"), M("close")),
)
del M


class Window:
    """A real client window on sway (xdg-shell, one shared-memory buffer), fullscreen if
    asked: what a video player or a presentation does."""

    def __init__(self, display: str, fullscreen: bool):
        self.conn = wl.Connection.connect(display)
        compositor = self.conn.bind(WL_COMPOSITOR)
        shm = self.conn.bind(WL_SHM)
        wm = self.conn.bind(XDG_WM_BASE)
        wm.on("ping", lambda serial: self.conn.request(wm, "pong", serial))
        self.surface = self.conn.request(compositor, "create_surface", WL_SURFACE)
        xdg = self.conn.request(wm, "get_xdg_surface", XDG_SURFACE, self.surface)
        self.toplevel = self.conn.request(xdg, "get_toplevel", XDG_TOPLEVEL)
        self.conn.request(self.toplevel, "set_title", "relax test window")
        if fullscreen:
            self.conn.request(self.toplevel, "set_fullscreen", None)
        size, serial = [0, 0], []
        self.toplevel.on("configure", lambda w, h, _states: size.__setitem__(slice(0, 2), [w, h]))
        self.toplevel.on("close", lambda: None)
        xdg.on("configure", serial.append)
        self.conn.request(self.surface, "commit")
        self.conn._dispatch_until(lambda: bool(serial), 5.0, "the first configure")
        self.conn.request(xdg, "ack_configure", serial[-1])
        width, height = size[0] or 320, size[1] or 240
        fd = os.memfd_create("relax-test-window")
        os.ftruncate(fd, width * height * 4)
        pool = self.conn.request(shm, "create_pool", WL_SHM_POOL, fd, width * height * 4)
        os.close(fd)
        buffer = self.conn.request(pool, "create_buffer", WL_BUFFER, 0, width, height, width * 4, 1)
        buffer.on("release", lambda: None)
        self.conn.request(self.surface, "attach", buffer, 0, 0)
        self.conn.request(self.surface, "damage", 0, 0, width, height)
        self.conn.request(self.surface, "commit")
        self.conn.roundtrip()

    def close(self) -> None:
        self.conn.close()


class FakeCompositor:
    """A Wayland server in a thread, at `socket` (a path): offers `offers` [(interface,
    version)], answers wl_display.sync and wl_registry.bind, records every other request as
    (interface, request, args) in `requests`, and sends `idled()` / `resumed()` to the
    notification objects made. `exit()` closes every client, as a compositor that ends."""

    def __init__(self, offers: list[tuple[str, int]]):
        self.dir = tempfile.mkdtemp(prefix="relax-fakewl-")
        os.chmod(self.dir, 0o700)
        self.socket = os.path.join(self.dir, "wayland-7")
        self.offers = offers
        self.requests: list[tuple] = []
        self.binds: list[tuple[str, int, int]] = []  # interface, version, the new object's id
        self.fail_on: str | None = None  # a request answered with wl_display.error
        self.mute = False  # True: wl_display.sync is never answered (a hung compositor)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.socket)
        self._server.listen(4)
        self._clients: list[_FakeClient] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def wait_for(self, request: str, timeout_s: float = 5.0) -> tuple:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                for r in self.requests:
                    if r[1] == request:
                        return r
            time.sleep(0.01)
        raise AssertionError(f"no {request} within {timeout_s} s; requests: {self.requests}")

    def adopt(self, sock: socket.socket) -> None:
        """Serve a client on a socket made elsewhere (a socketpair for WAYLAND_SOCKET)."""
        client = _FakeClient(self, sock)
        with self._lock:
            self._clients.append(client)
        threading.Thread(target=client.serve, daemon=True).start()

    def window(self, key: str, states: list[int]) -> None:
        """A window (zwlr_foreign_toplevel_handle_v1) made or changed: its states, then done."""
        handle = wl.ZWLR_FOREIGN_TOPLEVEL_HANDLE_V1
        with self._lock:
            for c in self._clients:
                for object_id, iface in list(c.objects.items()):
                    if iface is wl.ZWLR_FOREIGN_TOPLEVEL_MANAGER_V1 and key not in c.windows:
                        c.windows[key] = c.next_server_id
                        c.next_server_id += 1
                        c.objects[c.windows[key]] = handle
                        c.event(object_id, iface, "toplevel", c.windows[key])
                if key in c.windows:
                    data = b"".join(v.to_bytes(4, sys.byteorder) for v in states)
                    c.event(c.windows[key], handle, "state", data)
                    c.event(c.windows[key], handle, "done")

    def window_closed(self, key: str) -> None:
        with self._lock:
            for c in self._clients:
                if key in c.windows:
                    c.event(c.windows.pop(key), wl.ZWLR_FOREIGN_TOPLEVEL_HANDLE_V1, "closed")

    def idled(self) -> None:
        self._send_to_notifications("idled")

    def resumed(self) -> None:
        self._send_to_notifications("resumed")

    def exit(self) -> None:
        """Every client's connection ends, the socket goes: the compositor is gone."""
        self._stop.set()
        self._server.close()
        with self._lock:
            for c in self._clients:
                c.close()
        self.thread.join(5)
        shutil.rmtree(self.dir, ignore_errors=True)

    stop = exit

    def _send_to_notifications(self, event: str) -> None:
        with self._lock:
            for c in self._clients:
                for object_id, iface in list(c.objects.items()):
                    if iface.name == "ext_idle_notification_v1":
                        c.event(object_id, iface, event)

    def _accept(self):
        self._server.settimeout(0.05)
        while not self._stop.is_set():
            try:
                sock, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.adopt(sock)


class _FakeClient:
    def __init__(self, server: FakeCompositor, sock: socket.socket):
        self.server = server
        self.sock = sock
        self.objects: dict[int, wl.Interface] = {1: wl.WL_DISPLAY}
        self.windows: dict[str, int] = {}
        self.next_server_id = 0xFF000000  # the ids a server gives the objects it makes
        self._send_lock = threading.Lock()

    def event(self, object_id: int, iface: wl.Interface, name: str, *args) -> None:
        self.events((object_id, iface, name, *args))

    def events(self, *events) -> None:
        """Events sent in one write, as libwayland-server flushes what one request made."""
        data = b""
        for object_id, iface, name, *args in events:
            opcode = [m.name for m in iface.events].index(name)
            data += wl.pack(object_id, opcode, iface.events[opcode].signature, args)[0]
        with self._send_lock, contextlib.suppress(OSError):
            self.sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def serve(self) -> None:
        buffer, fds = bytearray(), collections.deque()
        while True:
            try:
                data = wl.receive(self.sock, fds)
            except OSError:
                return
            if not data:
                return
            buffer += data
            for object_id, opcode, payload in wl.split(buffer):
                self._request(object_id, opcode, payload, fds)

    def _request(self, object_id, opcode, payload, fds) -> None:
        iface = self.objects[object_id]
        message = iface.requests[opcode]
        signature = "usun" if iface is wl.WL_REGISTRY else message.signature
        args = wl.unpack(signature, payload, fds)
        if iface is wl.WL_DISPLAY and message.name == "sync" and self.server.mute:
            pass
        elif iface is wl.WL_DISPLAY and message.name == "sync":
            # done and the callback's delete_id in one write: a round trip sees both at once
            self.events(
                (args[0], wl.WL_CALLBACK, "done", 1), (1, wl.WL_DISPLAY, "delete_id", args[0])
            )
        elif iface is wl.WL_DISPLAY and message.name == "get_registry":
            self.objects[args[0]] = wl.WL_REGISTRY
            for number, (name, version) in enumerate(self.server.offers, 1):
                self.event(args[0], wl.WL_REGISTRY, "global", number, name, version)
        elif iface is wl.WL_REGISTRY:
            _number, name, version, new = args
            self.objects[new] = wl.INTERFACES[name]
            with self.server._lock:
                self.server.binds.append((name, version, new))
        elif message.name == self.server.fail_on:
            self.event(1, wl.WL_DISPLAY, "error", object_id, 3, f"{message.name} refused")
        else:
            if message.creates:
                self.objects[args[message.signature.replace("?", "").index("n")]] = wl.INTERFACES[
                    message.creates
                ]
            with self.server._lock:
                self.server.requests.append((iface.name, message.name, *args))
