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
