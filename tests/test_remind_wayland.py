"""Idle time under Wayland: a real headless sway (org_kde_kwin_idle; the pointer moved through
zwlr_virtual_pointer_manager_v1), a compositor in the test for ext-idle-notify-v1 (no compositor
on Debian 12 has it), and compositors that are missing, refuse, or exit mid-run."""

from __future__ import annotations

import collections
import os
import re
import socket
import time

import pytest

from audio_engine.remind import idle
from audio_engine.remind import wayland as wl
from tests._remind_wayland import FakeCompositor, Sway, VirtualPointer, Window

T_S = 1.0  # the tests' idle timeout (relax remind uses WaylandIdle.TIMEOUT_S = 5 s)
# sway 1.7 (wlroots 0.15, Debian 12) has org_kde_kwin_idle; sway 1.8 and later ext-idle-notify.
SWAY_PROTOCOL = r"Wayland (org_kde_kwin_idle|ext-idle-notify-v1 v[12])"


@pytest.fixture(scope="module")
def sway():
    s = Sway()
    yield s
    s.stop()


def _wait(read, until, timeout_s: float = 2.0):
    deadline = time.monotonic() + timeout_s
    while True:
        r = read()
        if until(r) or time.monotonic() > deadline:
            return r
        time.sleep(0.01)


# -- the wire format ------------------------------------------------------------------


def test_a_message_is_laid_out_as_the_wire_format_says():
    data, fds = wl.pack(2, 0, "usu", [36, "wl_seat", 7])  # wl_registry.global
    assert fds == []
    assert data == (
        bytes([2, 0, 0, 0, 0, 0, 28, 0])  # object 2; size 28 << 16 | opcode 0
        + bytes([36, 0, 0, 0, 8, 0, 0, 0])
        + b"wl_seat\0"
        + bytes([7, 0, 0, 0])
    )
    data, _ = wl.pack(9, 1, "ifa?s?o", [-2, -1.5, b"\x02\x03\x00\x00\x00", None, None])
    assert data[8:] == (
        bytes([0xFE, 0xFF, 0xFF, 0xFF])  # -2
        + bytes([0x80, 0xFE, 0xFF, 0xFF])  # -1.5 in 24.8 fixed point: -384
        + bytes([5, 0, 0, 0, 2, 3, 0, 0, 0, 0, 0, 0])  # an array, padded to 32 bits
        + bytes(4)  # a null string
        + bytes(4)  # a null object
    )
    buffer = bytearray(data + data[:5])  # one whole message and the start of the next
    ((object_id, opcode, payload),) = wl.split(buffer)
    assert (object_id, opcode) == (9, 1) and len(buffer) == 5
    args = wl.unpack("ifa?s?o", payload, collections.deque())
    assert args == [-2, -1.5, b"\x02\x03\x00\x00\x00", None, None]
    assert wl.unpack("sun", wl.pack(1, 0, "sun", ["héllo", 2**32 - 1, 5])[0][8:], None) == [
        "héllo",
        2**32 - 1,
        5,
    ]


def test_the_socket_is_found_as_libwayland_finds_it(tmp_path):
    run = str(tmp_path)
    assert wl.socket_path({"XDG_RUNTIME_DIR": run}) == f"{run}/wayland-0"
    assert wl.socket_path({"XDG_RUNTIME_DIR": run, "WAYLAND_DISPLAY": "w-3"}) == f"{run}/w-3"
    assert wl.socket_path({"WAYLAND_DISPLAY": "/srv/wl/sock"}) == "/srv/wl/sock"
    with pytest.raises(wl.Disconnected, match="XDG_RUNTIME_DIR is not set"):
        wl.socket_path({"WAYLAND_DISPLAY": "wayland-1"})


# -- a real compositor: sway 1.7 ------------------------------------------------------


def test_idle_time_from_sway_grows_and_a_pointer_motion_resets_it(sway):
    pointer = VirtualPointer(sway.socket)
    src = idle.WaylandIdle(sway.socket, timeout_s=T_S)
    try:
        assert re.fullmatch(
            rf"{SWAY_PROTOCOL} \({re.escape(sway.socket)}; idle seen from 1 s on\)", src.name
        )
        assert src.read().idle_s == 0.0  # under T without input reads as 0
        time.sleep(T_S + 0.5)
        first = src.read().idle_s
        assert T_S <= first <= T_S + 0.8  # idle since about T + 0.5 s
        time.sleep(0.5)
        assert src.read().idle_s >= first + 0.45
        pointer.move()
        after = _wait(src.read, lambda r: r.idle_s < 1.0)
        assert after == idle.Reading(0.0)
        time.sleep(T_S + 0.3)  # and idle again, counted from the motion
        assert T_S <= src.read().idle_s <= T_S + 0.6
    finally:
        src.close()
        pointer.close()


def test_a_fullscreen_window_on_sway_is_seen(sway):
    """A real client window (xdg-shell): fullscreen and focused, then closed, then a plain
    one; zwlr_foreign_toplevel_manager_v1 tells."""
    src = idle.WaylandIdle(sway.socket, timeout_s=T_S)
    try:
        assert src.read().fullscreen is False
        window = Window(sway.socket, fullscreen=True)
        assert _wait(src.read, lambda r: r.fullscreen).fullscreen is True
        window.close()
        assert _wait(src.read, lambda r: not r.fullscreen).fullscreen is False
        window = Window(sway.socket, fullscreen=False)
        time.sleep(0.2)
        assert src.read().fullscreen is False
        window.close()
    finally:
        src.close()


def test_choose_under_wayland_asks_the_compositor_and_not_x11(sway, monkeypatch):
    monkeypatch.setenv("WAYLAND_DISPLAY", sway.socket)
    monkeypatch.setenv("DISPLAY", ":12345")  # would be a reason if X11 were asked
    src, tried = idle.choose(conn=None)
    try:
        assert re.match(rf"{SWAY_PROTOCOL} \({re.escape(sway.socket)};", src.name)
        assert tried == []
        assert src.read().idle_s == 0.0
    finally:
        src.close()


def test_wayland_comes_after_mutter_and_before_the_kde_screensaver(sway, monkeypatch):
    from audio_engine.remind.notify import connect
    from tests._remind_bus import Service, SessionBus

    bus = SessionBus()
    kde = Service(bus.address, "org.freedesktop.ScreenSaver", {"GetSessionIdleTime": ("u", (9,))})
    conn = connect(bus.address)
    try:
        monkeypatch.setenv("WAYLAND_DISPLAY", sway.socket)
        src, tried = idle.choose(conn)
        assert tried == ["GNOME Mutter IdleMonitor: not on this desktop"]
        assert re.match(SWAY_PROTOCOL, src.name)
        src.close()
        monkeypatch.setenv("WAYLAND_DISPLAY", "/nonexistent/wayland-9")
        src, tried = idle.choose(conn)
        assert tried[1] == "Wayland: no compositor socket at /nonexistent/wayland-9"
        assert src.name == "org.freedesktop.ScreenSaver idle time (D-Bus, KDE)"
    finally:
        conn.close()
        kde.stop()
        bus.stop()


def test_sway_exiting_mid_run_is_a_one_line_reason():
    own = Sway()
    src = idle.WaylandIdle(own.socket, timeout_s=T_S)
    try:
        own.stop()
        with pytest.raises(idle.IdleUnavailable) as err:
            _wait(src.read, lambda r: False)
        assert str(err.value).startswith(f"Wayland: the compositor at {own.socket} closed")
        assert "\n" not in str(err.value)
    finally:
        src.close()


# -- ext-idle-notify-v1, from a compositor in the test --------------------------------


@pytest.mark.parametrize(
    ("offered", "bound", "asked"),
    [
        (1, 1, "get_idle_notification"),
        (2, 2, "get_input_idle_notification"),
        (3, 2, "get_input_idle_notification"),  # a newer compositor: bound at what we speak
    ],
)
def test_ext_idle_notify_requests_and_readings(offered, bound, asked):
    fake = FakeCompositor([("wl_seat", 7), ("ext_idle_notifier_v1", offered)])
    src = idle.WaylandIdle(fake.socket, timeout_s=2.0)
    try:
        assert src.name.startswith(f"Wayland ext-idle-notify-v1 v{bound} ({fake.socket};")
        seat = [b for b in fake.binds if b[0] == "wl_seat"]
        notifier = [b for b in fake.binds if b[0] == "ext_idle_notifier_v1"]
        assert [b[1] for b in seat] == [1] and [b[1] for b in notifier] == [bound]
        assert fake.requests == [
            ("ext_idle_notifier_v1", asked, notifier[0][2] + 1, 2000, seat[0][2])
        ]
        assert src.read() == idle.Reading(0.0)
        fake.idled()
        first = _wait(src.read, lambda r: r.idle_s > 0).idle_s
        assert 2.0 <= first < 2.5  # the timeout, plus how soon this thread looked
        time.sleep(0.3)
        assert first + 0.3 <= src.read().idle_s < first + 1.0
        fake.resumed()
        assert _wait(src.read, lambda r: r.idle_s == 0).idle_s == 0.0
    finally:
        src.close()
        fake.stop()


def test_fullscreen_is_a_window_both_activated_and_fullscreen():
    activated, fullscreen, maximized = 2, 3, 0
    fake = FakeCompositor(
        [("wl_seat", 7), ("ext_idle_notifier_v1", 2), ("zwlr_foreign_toplevel_manager_v1", 3)]
    )
    src = idle.WaylandIdle(fake.socket)
    try:
        assert ("zwlr_foreign_toplevel_manager_v1", 3) in [b[:2] for b in fake.binds]

        def seen(want: bool) -> bool:
            return _wait(src.read, lambda r: r.fullscreen is want, 1.0).fullscreen

        fake.window("editor", [activated, maximized])
        assert seen(False) is False
        fake.window("film", [fullscreen])  # fullscreen behind the focused editor
        assert seen(True) is False
        fake.window("editor", [maximized])
        fake.window("film", [fullscreen, activated])
        assert seen(True) is True
        fake.window("film", [activated])  # left fullscreen
        assert seen(False) is False
        fake.window("film", [activated, fullscreen])
        assert seen(True) is True
        fake.window_closed("film")
        assert seen(False) is False
        destroyed = fake.wait_for("destroy")
        assert destroyed[0] == "zwlr_foreign_toplevel_handle_v1" and destroyed[2:] == ()
    finally:
        src.close()
        fake.stop()


def test_ext_idle_notify_is_preferred_over_kde_idle():
    fake = FakeCompositor([("org_kde_kwin_idle", 1), ("wl_seat", 5), ("ext_idle_notifier_v1", 2)])
    src = idle.WaylandIdle(fake.socket)
    try:
        assert [r[:2] for r in fake.requests] == [
            ("ext_idle_notifier_v1", "get_input_idle_notification")
        ]
        assert fake.requests[0][3] == 5000  # the default timeout, in ms
        assert src.timeout_s == idle.WaylandIdle.TIMEOUT_S == 5.0
    finally:
        src.close()
        fake.stop()


def test_dispatch_waits_no_longer_than_told_and_a_hung_compositor_is_a_reason():
    fake = FakeCompositor([("wl_seat", 7), ("ext_idle_notifier_v1", 2)])
    conn = wl.Connection.connect(fake.socket)
    try:
        assert len(conn.globals()) == 2
        callback = conn.sync()
        conn.roundtrip()  # the compositor's delete_id for `callback` came before this answer
        assert callback.id not in conn.objects
        start = time.monotonic()
        assert conn.dispatch(0.2) == 0
        assert 0.18 <= time.monotonic() - start < 0.5
        fake.mute = True
        start = time.monotonic()
        with pytest.raises(wl.WaylandError) as err:
            conn.roundtrip(timeout_s=0.3)
        assert time.monotonic() - start < 1.0
        assert str(err.value) == (
            f"Wayland: the compositor at {fake.socket} did not answer a round trip within 0.3 s"
        )
    finally:
        conn.close()
        fake.stop()


def test_a_compositor_without_idle_protocols_or_seat_gives_a_reason():
    fake = FakeCompositor([("wl_seat", 7), ("wl_compositor", 4)])
    try:
        with pytest.raises(idle.IdleUnavailable, match="offers neither ext_idle_notifier_v1 nor"):
            idle.WaylandIdle(fake.socket)
    finally:
        fake.stop()
    fake = FakeCompositor([("ext_idle_notifier_v1", 2)])
    try:
        with pytest.raises(
            idle.IdleUnavailable, match="^Wayland: the compositor offers no wl_seat$"
        ):
            idle.WaylandIdle(fake.socket)
    finally:
        fake.stop()


def test_a_protocol_error_from_the_compositor_is_a_reason():
    fake = FakeCompositor([("wl_seat", 7), ("ext_idle_notifier_v1", 2)])
    fake.fail_on = "get_input_idle_notification"
    try:
        with pytest.raises(idle.IdleUnavailable) as err:
            idle.WaylandIdle(fake.socket)
        assert str(err.value) == (
            "Wayland: protocol error on ext_idle_notifier_v1@5 (code 3): "
            "get_input_idle_notification refused"
        )
    finally:
        fake.stop()


def test_the_compositor_exiting_mid_run_raises_idle_unavailable():
    fake = FakeCompositor([("wl_seat", 7), ("ext_idle_notifier_v1", 2)])
    src = idle.WaylandIdle(fake.socket, timeout_s=2.0)
    try:
        fake.idled()
        assert _wait(src.read, lambda r: r.idle_s > 0).idle_s >= 2.0
        fake.exit()
        with pytest.raises(idle.IdleUnavailable) as err:
            _wait(src.read, lambda r: False)
        assert str(err.value) == f"Wayland: the compositor at {fake.socket} closed the connection"
    finally:
        src.close()


def test_wayland_socket_is_used_and_taken_from_the_environment(monkeypatch):
    fake = FakeCompositor([("wl_seat", 7), ("ext_idle_notifier_v1", 2)])
    ours, theirs = socket.socketpair()
    fake.adopt(theirs)
    monkeypatch.setenv("WAYLAND_SOCKET", str(ours.detach()))
    monkeypatch.setenv("WAYLAND_DISPLAY", "/nonexistent/wayland-9")  # not used: the fd is
    src = idle.WaylandIdle()
    try:
        assert "WAYLAND_SOCKET" not in os.environ
        assert fake.requests[0][1] == "get_input_idle_notification"
    finally:
        src.close()
        fake.stop()
    monkeypatch.setenv("WAYLAND_SOCKET", "seven")
    with pytest.raises(
        idle.IdleUnavailable, match="^Wayland: WAYLAND_SOCKET=seven is not a socket"
    ):
        idle.WaylandIdle()


# -- no compositor --------------------------------------------------------------------


def test_choose_with_a_dead_wayland_display_says_why_and_moves_on(tmp_path, monkeypatch):
    monkeypatch.delenv("WAYLAND_SOCKET", raising=False)
    monkeypatch.setenv("DISPLAY", ":12345")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-5")
    src, tried = idle.choose(conn=None)
    assert isinstance(src, idle.WallClock)
    assert tried == [f"Wayland: no compositor socket at {tmp_path}/wayland-5"]
    # a socket left behind by a compositor that crashed: nobody listens
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(tmp_path / "wayland-5"))
    try:
        _, tried = idle.choose(conn=None)
        assert tried == [f"Wayland: {tmp_path}/wayland-5 refused the connection (no compositor)"]
    finally:
        dead.close()


# -- relax remind as the user runs it -------------------------------------------------


def test_relax_remind_names_the_compositor_and_says_once_when_it_goes(tmp_path):
    import json
    import signal
    import subprocess
    import sys

    from tests._remind_bus import NotificationServer, SessionBus

    own = Sway()
    bus = SessionBus()
    server = NotificationServer(bus.address)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_SOCKET")}
    env.update(
        RELAX_DATA_DIR=str(tmp_path / "data"),
        RELAX_SETTINGS_DIR=str(tmp_path / "settings"),
        DBUS_SESSION_BUS_ADDRESS=bus.address,
        WAYLAND_DISPLAY=own.socket,
    )
    status = tmp_path / "data" / "remind-status.json"

    def idle_source():
        try:
            return json.loads(status.read_text())["idle"]
        except (OSError, ValueError, KeyError):
            return None

    proc = subprocess.Popen(
        [sys.executable, "-m", "audio_engine", "remind", "--tick", "0.2"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert re.fullmatch(
            rf"{SWAY_PROTOCOL} \({re.escape(own.socket)}; idle seen from 5 s on\)",
            _wait(idle_source, lambda s: s is not None, 30.0),
        )
        own.stop()
        assert _wait(idle_source, lambda s: s.startswith("wall-clock"), 10.0).startswith(
            "wall-clock"
        )
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        server.stop()
        bus.stop()
    assert proc.returncode == 143
    lost = [line for line in err.splitlines() if "idle time" in line]
    assert lost == [
        f"relax: idle time lost (Wayland: the compositor at {own.socket} closed the "
        "connection); counting wall-clock time from now on"
    ], err
    assert "Traceback" not in err
