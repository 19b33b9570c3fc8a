"""How long since the user's last input, whether the screen is locked, whether a window is
fullscreen: one `IdleSource` per platform, probed once at start.

- `X11Idle(display)`: the X screen-saver extension (python-xlib): idle time, the saver on
  (counted as locked); a fullscreen active window from `_NET_WM_STATE` (EWMH window managers).
- `MutterIdle(conn)`: GNOME's `org.gnome.Mutter.IdleMonitor` over D-Bus (Wayland and X11).
- `WaylandIdle(display)`: the compositor's ext-idle-notify-v1, else KDE's org_kde_kwin_idle
  (wlroots compositors up to 0.17, KWin), over the wire client in `wayland.py`; a fullscreen
  active window from zwlr_foreign_toplevel_manager_v1 (wlroots compositors).
- `ScreenSaverIdle(conn)`: `org.freedesktop.ScreenSaver` (KDE: `GetSessionIdleTime`).
- `WindowsIdle()`: `GetLastInputInfo` (written, untested here).
- `MacIdle()`: `HIDIdleTime` from `ioreg -c IOHIDSystem` (written, untested here).
- `WallClock()`: no idle time (None): every minute counts as active.

`choose(...)` returns the first source that gives a reading, with the reasons the others did
not. Screen lock over D-Bus (`org.gnome.ScreenSaver`, then `org.freedesktop.ScreenSaver`
`GetActive`) is added to any source by `LockProbed`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from audio_engine.i18n import _


class IdleUnavailable(Exception):
    """This source cannot tell idle time here."""


@dataclass(frozen=True)
class Reading:
    idle_s: float | None
    locked: bool = False
    fullscreen: bool = False


class WallClock:
    @property
    def name(self) -> str:
        return _("wall-clock time (no idle time on this system: every minute counts as active)")

    def read(self) -> Reading:
        return Reading(None)

    def close(self) -> None:
        pass


class X11Idle:
    def __init__(self, display: str | None = None):
        display = display or os.environ.get("DISPLAY")
        if not display:
            raise IdleUnavailable("X11: no DISPLAY")
        try:
            from Xlib import display as xdisplay
            from Xlib import error as xerror
            from Xlib.ext import screensaver  # noqa: F401 (adds the extension's methods)
        except ImportError as exc:
            raise IdleUnavailable(f"X11: python-xlib is missing ({exc})") from None
        try:
            self.d = xdisplay.Display(display)
        except (xerror.DisplayError, xerror.XauthError, xerror.XNoAuthError, OSError) as exc:
            raise IdleUnavailable(f"X11: cannot open display {display} ({exc})") from None
        if not self.d.has_extension("MIT-SCREEN-SAVER"):
            self.d.close()
            raise IdleUnavailable(f"X11: display {display} has no screen-saver extension")
        self._errors = (xerror.XError, xerror.ConnectionClosedError, OSError)
        self.root = self.d.screen().root
        self.name = f"X11 screen-saver extension (display {display})"
        self._atoms = {
            n: self.d.intern_atom(n)
            for n in ("_NET_ACTIVE_WINDOW", "_NET_WM_STATE", "_NET_WM_STATE_FULLSCREEN")
        }
        self.read()

    def read(self) -> Reading:
        try:
            info = self.root.screensaver_query_info()
        except self._errors as exc:  # the X connection closed
            raise IdleUnavailable(f"X11: lost the display ({exc})") from None
        # state 1 = ScreenSaverOn: the saver (or the locker drawing it) is up
        return Reading(info.idle / 1000.0, locked=info.state == 1, fullscreen=self._fullscreen())

    def _fullscreen(self) -> bool:
        try:
            active = self.root.get_full_property(self._atoms["_NET_ACTIVE_WINDOW"], 0)
            if not active or not active.value or not active.value[0]:
                return False
            window = self.d.create_resource_object("window", active.value[0])
            state = window.get_full_property(self._atoms["_NET_WM_STATE"], 0)
            return bool(state) and self._atoms["_NET_WM_STATE_FULLSCREEN"] in state.value
        except self._errors:  # a window that went away between the two reads
            return False

    def close(self) -> None:
        self.d.close()


class MutterIdle:
    name = "GNOME Mutter IdleMonitor (D-Bus)"

    def __init__(self, conn):
        self.conn = conn
        self.read()

    def read(self) -> Reading:
        from audio_engine.remind.notify import BusLost, call

        try:
            (ms,) = call(
                self.conn,
                "org.gnome.Mutter.IdleMonitor",
                "/org/gnome/Mutter/IdleMonitor/Core",
                "org.gnome.Mutter.IdleMonitor",
                "GetIdletime",
            )
        except (RuntimeError, BusLost) as exc:
            raise IdleUnavailable(_dbus_reason("GNOME Mutter IdleMonitor", exc)) from None
        return Reading(ms / 1000.0)

    def close(self) -> None:
        pass


class WaylandIdle:
    """Idle time from the compositor's idle notifications. The protocols only say "idled"
    (no input for `timeout_s`) and "resumed", so a notification of `timeout_s` (default 5 s)
    is registered, and idle time is `timeout_s` + the time since "idled" while idle, 0 after
    "resumed": under `timeout_s` without input reads as 0. A thread waits for the events so
    that their time is the time they came (not the next read). Fullscreen: a window both
    activated and fullscreen in zwlr_foreign_toplevel_manager_v1, where offered (wlroots)."""

    TIMEOUT_S = 5.0

    def __init__(self, display: str | None = None, timeout_s: float = TIMEOUT_S):
        from audio_engine.remind import wayland as wl

        self.timeout_s = timeout_s
        self._idled_at: float | None = None
        self._lost: str | None = None
        self._closing = False
        self._guard = threading.Lock()
        try:
            self.conn = wl.Connection.connect(display)
        except wl.WaylandError as exc:
            raise IdleUnavailable(str(exc)) from None
        try:
            seat = self.conn.bind(wl.WL_SEAT, 1)
            ms = round(timeout_s * 1000)
            if self.conn.find(wl.EXT_IDLE_NOTIFIER_V1.name):
                notifier = self.conn.bind(wl.EXT_IDLE_NOTIFIER_V1)
                # v2's input idle ignores idle inhibitors (a video playing), like the others.
                ask = (
                    "get_input_idle_notification"
                    if notifier.version >= 2
                    else "get_idle_notification"
                )
                made = wl.EXT_IDLE_NOTIFICATION_V1
                watch = self.conn.request(notifier, ask, made, ms, seat)
                idled, what = "idled", f"ext-idle-notify-v1 v{notifier.version}"
            elif self.conn.find(wl.ORG_KDE_KWIN_IDLE.name):
                notifier = self.conn.bind(wl.ORG_KDE_KWIN_IDLE)
                made = wl.ORG_KDE_KWIN_IDLE_TIMEOUT
                watch = self.conn.request(notifier, "get_idle_timeout", made, seat, ms)
                idled, what = "idle", "org_kde_kwin_idle"
            else:
                raise IdleUnavailable(
                    f"Wayland: the compositor at {self.conn.where} offers neither "
                    "ext_idle_notifier_v1 nor org_kde_kwin_idle"
                )
            watch.on(idled, self._on_idled).on("resumed", self._on_resumed)
            self._toplevels = None
            if self.conn.find(wl.ZWLR_FOREIGN_TOPLEVEL_MANAGER_V1.name):
                self._toplevels = wl.Toplevels(self.conn)  # fullscreen windows (wlroots)
            self.conn.roundtrip()  # a request the compositor refuses is an error here
        except wl.WaylandError as exc:
            self.conn.close()
            raise IdleUnavailable(str(exc)) from None
        except IdleUnavailable:
            self.conn.close()
            raise
        self.name = f"Wayland {what} ({self.conn.where}; idle seen from {timeout_s:g} s on)"
        self._thread = threading.Thread(target=self._listen, name="wayland-idle", daemon=True)
        self._thread.start()

    def _on_idled(self) -> None:
        with self._guard:
            self._idled_at = time.monotonic()

    def _on_resumed(self) -> None:
        with self._guard:
            self._idled_at = None

    def _listen(self) -> None:
        from audio_engine.remind.wayland import WaylandError

        lost = "Wayland: the idle watch stopped"
        try:
            while True:
                self.conn.dispatch(None)
        except WaylandError as exc:
            lost = str(exc)
        finally:  # however the thread ends, read() then says so
            with self._guard:
                if not self._closing:
                    self._lost = lost
            self.conn.close()

    def read(self) -> Reading:
        with self._guard:
            if self._lost is not None:
                raise IdleUnavailable(self._lost)
            full = self._toplevels is not None and self._toplevels.fullscreen
            if self._idled_at is None:
                return Reading(0.0, fullscreen=full)
            return Reading(self.timeout_s + time.monotonic() - self._idled_at, fullscreen=full)

    def close(self) -> None:
        with self._guard:
            self._closing = True
        self.conn.shutdown()  # wakes the thread, which closes the connection
        self._thread.join(5)


class ScreenSaverIdle:
    name = "org.freedesktop.ScreenSaver idle time (D-Bus, KDE)"

    def __init__(self, conn):
        self.conn = conn
        self.read()

    def read(self) -> Reading:
        from audio_engine.remind.notify import BusLost, call

        try:
            (seconds,) = call(
                self.conn,
                "org.freedesktop.ScreenSaver",
                "/org/freedesktop/ScreenSaver",
                "org.freedesktop.ScreenSaver",
                "GetSessionIdleTime",
            )
        except (RuntimeError, BusLost) as exc:
            raise IdleUnavailable(_dbus_reason("org.freedesktop.ScreenSaver", exc)) from None
        return Reading(float(seconds))

    def close(self) -> None:
        pass


def _dbus_reason(label: str, exc: Exception) -> str:
    if "ServiceUnknown" in str(exc) or "UnknownMethod" in str(exc):
        return f"{label}: not on this desktop"
    return f"{label}: {exc}"


class WindowsIdle:  # written to the Win32 documentation; untested (no Windows here)
    name = "Windows GetLastInputInfo"

    def __init__(self):
        if sys.platform != "win32":
            raise IdleUnavailable("GetLastInputInfo: not Windows")
        import ctypes
        from ctypes import wintypes

        class LASTINPUTINFO(ctypes.Structure):
            _fields_ = [("cbSize", wintypes.UINT), ("dwTime", wintypes.DWORD)]

        self._info = LASTINPUTINFO(cbSize=ctypes.sizeof(LASTINPUTINFO))
        self._user32 = ctypes.windll.user32
        self._kernel32 = ctypes.windll.kernel32
        self.read()

    def read(self) -> Reading:
        import ctypes

        if not self._user32.GetLastInputInfo(ctypes.byref(self._info)):
            raise IdleUnavailable("GetLastInputInfo failed")
        now = self._kernel32.GetTickCount() & 0xFFFFFFFF
        return Reading(((now - self._info.dwTime) & 0xFFFFFFFF) / 1000.0)

    def close(self) -> None:
        pass


_HID = re.compile(r'"HIDIdleTime"\s*=\s*(\d+)')


class MacIdle:  # ioreg's HIDIdleTime is in nanoseconds; untested (no macOS here)
    name = "macOS HIDIdleTime (ioreg)"

    def __init__(self):
        if sys.platform != "darwin":
            raise IdleUnavailable("HIDIdleTime: not macOS")
        self.read()

    def read(self) -> Reading:
        try:
            out = subprocess.run(
                ["ioreg", "-c", "IOHIDSystem", "-d", "4"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise IdleUnavailable(f"ioreg: {exc}") from None
        found = _HID.search(out)
        if not found:
            raise IdleUnavailable("ioreg: no HIDIdleTime")
        return Reading(int(found.group(1)) / 1e9)

    def close(self) -> None:
        pass


class LockProbed:
    """A source plus the screen lock over D-Bus (GNOME Shell's, else the freedesktop one)."""

    def __init__(self, source, conn):
        self.source = source
        self.conn = conn
        self.name = source.name
        self._services = [
            ("org.gnome.ScreenSaver", "/org/gnome/ScreenSaver"),
            ("org.freedesktop.ScreenSaver", "/org/freedesktop/ScreenSaver"),
        ]

    def read(self) -> Reading:
        r = self.source.read()
        if r.locked or not self._services or self.conn is None:
            return r
        from audio_engine.remind.notify import BusLost, call

        for service in list(self._services):
            try:
                (active,) = call(self.conn, service[0], service[1], service[0], "GetActive")
            except RuntimeError:
                self._services.remove(service)  # not on this desktop: never asked again
                continue
            except BusLost:
                self.conn = None
                break
            return Reading(r.idle_s, bool(active), r.fullscreen)
        return r

    def close(self) -> None:
        self.source.close()


def choose(conn=None, display: str | None = None) -> tuple[object, list[str]]:
    """The first source that works here, and why each before it did not."""
    tried: list[str] = []
    makers = []
    if sys.platform == "win32":
        makers.append(WindowsIdle)
    elif sys.platform == "darwin":
        makers.append(MacIdle)
    else:
        wayland = bool(os.environ.get("WAYLAND_DISPLAY") or os.environ.get("WAYLAND_SOCKET"))
        if conn is not None:
            makers.append(lambda: MutterIdle(conn))
        if wayland:
            makers.append(WaylandIdle)
        if not wayland or display:
            # Under Wayland, XWayland's extension sees only X clients' input: not asked.
            makers.append(lambda: X11Idle(display))
        if conn is not None:
            makers.append(lambda: ScreenSaverIdle(conn))
    for make in makers:
        try:
            source = make()
        except IdleUnavailable as exc:
            tried.append(str(exc))
            continue
        return (LockProbed(source, conn) if conn is not None else source), tried
    return WallClock(), tried
