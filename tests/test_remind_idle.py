"""Idle time from a real X server (Xvfb's screen-saver extension), reset by XTest input."""

from __future__ import annotations

import time

import pytest

from audio_engine.remind import idle
from tests._remind_bus import Xvfb


@pytest.fixture(scope="module")
def xvfb():
    x = Xvfb()
    yield x
    x.stop()


def _move_pointer(display: str, x: int) -> None:
    from Xlib import X
    from Xlib import display as xdisplay
    from Xlib.ext import xtest

    d = xdisplay.Display(display)
    try:
        xtest.fake_input(d, X.MotionNotify, x=x, y=100)
        d.sync()
    finally:
        d.close()


def test_idle_time_grows_and_input_resets_it(xvfb):
    src = idle.X11Idle(xvfb.display)
    try:
        _move_pointer(xvfb.display, 10)
        first = src.read()
        time.sleep(0.6)
        later = src.read()
        assert later.idle_s >= first.idle_s + 0.5
        assert later.locked is False and later.fullscreen is False
        _move_pointer(xvfb.display, 200)
        assert src.read().idle_s < 0.3
    finally:
        src.close()


def test_choose_picks_x11_when_there_is_no_bus(xvfb, monkeypatch):
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    src, tried = idle.choose(conn=None, display=xvfb.display)
    try:
        assert src.name == f"X11 screen-saver extension (display {xvfb.display})"
        assert tried == []
    finally:
        src.close()


def test_no_display_falls_back_to_wall_clock_and_says_why(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    src, tried = idle.choose(conn=None)
    assert isinstance(src, idle.WallClock) and src.read().idle_s is None
    assert tried == ["X11: no DISPLAY"]
    monkeypatch.setenv("DISPLAY", ":12345")
    _, tried = idle.choose(conn=None)
    assert tried[0].startswith("X11: cannot open display :12345")


def test_a_fullscreen_active_window_is_seen(xvfb):
    """Acting as the window manager: the active window's _NET_WM_STATE says fullscreen."""
    from Xlib import X, Xatom
    from Xlib import display as xdisplay

    d = xdisplay.Display(xvfb.display)
    src = idle.X11Idle(xvfb.display)
    try:
        root = d.screen().root
        win = root.create_window(0, 0, 640, 480, 0, X.CopyFromParent)
        state, full = d.intern_atom("_NET_WM_STATE"), d.intern_atom("_NET_WM_STATE_FULLSCREEN")
        active = d.intern_atom("_NET_ACTIVE_WINDOW")
        root.change_property(active, Xatom.WINDOW, 32, [win.id])
        win.change_property(state, Xatom.ATOM, 32, [])
        d.sync()
        assert src.read().fullscreen is False
        win.change_property(state, Xatom.ATOM, 32, [full])
        d.sync()
        assert src.read().fullscreen is True
        root.change_property(active, Xatom.WINDOW, 32, [0])
        d.sync()
        assert src.read().fullscreen is False
    finally:
        src.close()
        d.close()


def test_gnome_mutter_idle_time_and_the_screen_lock_over_the_bus(bus, monkeypatch):
    from audio_engine.remind.notify import connect
    from tests._remind_bus import Service

    idle_ms = [4200]
    locked = [False]
    mutter = Service(
        bus.address, "org.gnome.Mutter.IdleMonitor", {"GetIdletime": lambda: ("t", (idle_ms[0],))}
    )
    shell = Service(
        bus.address, "org.gnome.ScreenSaver", {"GetActive": lambda: ("b", (locked[0],))}
    )
    conn = connect(bus.address)
    try:
        monkeypatch.delenv("DISPLAY", raising=False)
        src, tried = idle.choose(conn)
        assert src.name == "GNOME Mutter IdleMonitor (D-Bus)" and tried == []
        assert src.read() == idle.Reading(4.2, locked=False)
        idle_ms[0] = 0
        locked[0] = True
        assert src.read() == idle.Reading(0.0, locked=True)
    finally:
        conn.close()
        mutter.stop()
        shell.stop()


def test_kde_screensaver_idle_time_when_mutter_is_absent(bus, monkeypatch):
    from audio_engine.remind.notify import connect
    from tests._remind_bus import Service

    kde = Service(
        bus.address,
        "org.freedesktop.ScreenSaver",
        {"GetSessionIdleTime": ("u", (75,)), "GetActive": ("b", (False,))},
    )
    conn = connect(bus.address)
    try:
        monkeypatch.delenv("DISPLAY", raising=False)
        src, tried = idle.choose(conn)
        assert tried == ["GNOME Mutter IdleMonitor: not on this desktop", "X11: no DISPLAY"]
        assert src.name == "org.freedesktop.ScreenSaver idle time (D-Bus, KDE)"
        assert src.read() == idle.Reading(75.0, locked=False)
    finally:
        conn.close()
        kde.stop()


def test_the_screen_saver_on_counts_as_locked(xvfb):
    from Xlib import X
    from Xlib import display as xdisplay

    d = xdisplay.Display(xvfb.display)
    src = idle.X11Idle(xvfb.display)
    try:
        d.force_screen_saver(X.ScreenSaverActive)
        d.sync()
        assert src.read().locked is True
        d.force_screen_saver(X.ScreenSaverReset)
        d.sync()
        assert src.read().locked is False
    finally:
        src.close()
        d.close()
