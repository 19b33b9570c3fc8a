"""Reminders as desktop notifications on a real session bus, answered by a server in the test."""

from __future__ import annotations

import os

import pytest

from audio_engine.remind import notify
from audio_engine.remind.schedule import BREAK, Config, Reminder
from tests._remind_bus import NotificationServer


def _reminder(can_snooze=True, note=None):
    return Reminder(BREAK, can_snooze=can_snooze, note=note)


def test_the_reminder_has_three_buttons_and_the_press_comes_back(bus, server):
    n = notify.DBusNotifier(bus.address)
    try:
        assert n.name == "desktop notifications (fake-notifyd 1)"
        r = _reminder()
        n.show(r, r.body(Config()))
        (call,) = server.wait_for("Notify")
        assert call[4] == "Time for a break"
        assert call[5] == "You have been at it for 45 minutes: stand up, move, stretch."
        assert call[6] == ["start", "Start", "snooze", "Snooze", "skip", "Skip"]
        assert call[8] == 0  # stays until answered
        assert n.wait(0.1) == []
        server.press("snooze")
        assert n.wait(5) == ["snooze"]
        assert n.wait(0.2) == []  # the server's NotificationClosed after the press is no answer
    finally:
        n.shutdown()


def test_no_snooze_button_when_snoozes_are_used_up(bus, server):
    n = notify.DBusNotifier(bus.address)
    try:
        n.show(_reminder(can_snooze=False), "x")
        assert server.wait_for("Notify")[0][6] == ["start", "Start", "skip", "Skip"]
        server.dismiss()
        assert n.wait(5) == ["closed"]
    finally:
        n.shutdown()


def test_closing_from_our_side_is_not_an_answer(bus, server):
    n = notify.DBusNotifier(bus.address)
    try:
        n.show(_reminder(), "x")
        n.close()
        server.wait_for("CloseNotification")
        assert n.wait(0.3) == []
    finally:
        n.shutdown()


def test_a_press_on_an_older_notification_is_ignored(bus, server):
    n = notify.DBusNotifier(bus.address)
    try:
        n.show(_reminder(), "x")
        server.press("start", notification=99)
        assert n.wait(0.3) == []
        server.press("default", close=False)  # a click on the body (resident): no answer
        assert n.wait(0.3) == []
        server.press("start")
        assert n.wait(5) == ["start"]
    finally:
        n.shutdown()


def test_do_not_disturb_is_read_from_the_server(bus, server):
    n = notify.DBusNotifier(bus.address, gnome_dnd=False)
    try:
        assert n.inhibited() is False
        server.inhibited = True
        assert n.inhibited() is True
        server.inhibited = None  # a server like dunst: no Inhibited, its own paused
        server.paused = False
        assert n.inhibited() is False
        server.paused = True
        assert n.inhibited() is True
        server.paused = None
        assert n.inhibited() is None  # cannot tell
    finally:
        n.shutdown()


def test_no_server_and_no_buttons_and_no_bus_are_told_apart(bus):
    with pytest.raises(notify.NoServer, match="no notification server on the session bus"):
        notify.DBusNotifier(bus.address)
    plain = NotificationServer(bus.address, actions=False)
    try:
        with pytest.raises(notify.NoServer, match=r"\(fake-notifyd 1\) shows no buttons"):
            notify.DBusNotifier(bus.address)
    finally:
        plain.stop()
    with pytest.raises(
        notify.NoBus, match="cannot connect to the session bus at unix:path=/nonexistent"
    ):
        notify.DBusNotifier("unix:path=/nonexistent")


def test_a_lost_bus_is_said_as_such(bus, server):
    n = notify.DBusNotifier(bus.address)
    n.show(_reminder(), "x")
    server.wait_for("Notify")
    bus.stop()
    # Either the server's connection is seen to go first, or the bus itself.
    with pytest.raises(notify.NotifyError) as info:
        n.wait(5)
    assert str(info.value).startswith(
        ("the session bus was lost", "the notification server left the session bus")
    )
    with pytest.raises(notify.BusLost, match="the session bus was lost"):
        n.wait(5)
    n.conn.close()


def test_gnome_do_not_disturb_from_its_banners_setting(bus, server, tmp_path, monkeypatch):
    """GNOME Shell has no Inhibited property: its DND is `show-banners` (a gsettings key)."""
    value = tmp_path / "banners"
    value.write_text("true\n")
    fake = tmp_path / "gsettings"
    fake.write_text(
        '#!/bin/sh\n[ "$1 $2 $3" = "get org.gnome.desktop.notifications show-banners" ] '
        f"&& cat {value}\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setenv("XDG_CURRENT_DESKTOP", "ubuntu:GNOME")
    n = notify.DBusNotifier(bus.address)
    try:
        assert n.inhibited() is False
        value.write_text("false\n")
        assert n.inhibited() is True
    finally:
        n.shutdown()


def test_a_server_gone_is_said_when_it_leaves_and_when_showing(bus, server):
    n = notify.DBusNotifier(bus.address)
    try:
        server.stop()
        with pytest.raises(notify.NoServer, match="^the notification server left the session bus$"):
            n.wait(5)
        with pytest.raises(
            notify.NoServer,
            match=r"did not take the reminder \(org.freedesktop.DBus.Error.ServiceUnknown: ",
        ):
            n.show(_reminder(), "x")
    finally:
        n.shutdown()
