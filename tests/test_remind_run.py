"""The running reminder with real parts: a session bus and a notification server that presses
the buttons, Xvfb's idle time, the session played by `relax play`, statistics in SQLite."""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
import threading
import time

import numpy as np
import pytest

from audio_engine.remind import notify, runner, stats
from audio_engine.remind.idle import Reading, X11Idle
from audio_engine.remind.settings import Settings
from tests._remind_bus import Xvfb

SHORT = """\
format: 1
title: Remind test
language: en
voice: {rate: 220}
steps:
  - say: Stand up.
    duration: 1.2s
"""


GONE = ("relax: the session bus was lost (", "relax: the notification server left the session bus")


@pytest.fixture
def short_session(tmp_path):
    path = tmp_path / "short.yaml"
    path.write_text(SHORT)
    return path


def _events(db_path):
    with sqlite3.connect(db_path) as db:
        return db.execute("SELECT kind, event, detail FROM remind_events ORDER BY id").fetchall()


def _wait(predicate, timeout_s=30.0, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {timeout_s} s")


class Pointer:
    """Moves the Xvfb pointer with XTest while `active` is set (the user at work)."""

    def __init__(self, display):
        from Xlib import display as xdisplay

        self.d = xdisplay.Display(display)
        self.active = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        from Xlib import X
        from Xlib.ext import xtest

        x = 0
        while not self.done.is_set():
            if self.active.is_set():
                x = (x + 7) % 600
                xtest.fake_input(self.d, X.MotionNotify, x=x, y=50)
                self.d.sync()
            time.sleep(0.05)

    def stop(self):
        self.done.set()
        self.thread.join(2)
        self.d.close()


def test_reminds_after_active_time_and_start_plays_the_session_to_the_end(
    bus, server, short_session, tmp_path, monkeypatch
):
    """Real clock, real idle time: idle time is not counted, the reminder comes after 2 s of
    input, Start plays the session through `relax play`, and it is recorded as taken."""
    xvfb = Xvfb()
    raw = tmp_path / "played.raw"
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(raw))
    pointer = Pointer(xvfb.display)
    source = X11Idle(xvfb.display)
    notifier = notify.DBusNotifier(bus.address)
    store = stats.Stats(tmp_path / "history.sqlite3")
    lines: list[str] = []
    settings = Settings(every_s=2.0, idle_s=1.0, session=str(short_session))
    status = tmp_path / "status.json"
    r = runner.Runner(
        settings, notifier, source, store, lines.append, tick_s=0.1, status_path=status
    )
    stop = threading.Event()
    thread = threading.Thread(target=r.run, args=(stop.is_set,), daemon=True)
    try:
        pointer.active.set()
        thread.start()
        time.sleep(0.6)  # 0.6 s of work
        pointer.active.clear()
        time.sleep(1.5)  # away: idle passes 1 s, a natural break (sitting >= 2 s / 4)
        assert server.calls == [c for c in server.calls if c[0] != "Notify"]
        assert ("break", "natural", "idle") in _events(store.path)
        assert r.sched.active_s == 0
        began = time.monotonic()
        pointer.active.set()
        (call,) = server.wait_for("Notify", timeout_s=10)
        waited = time.monotonic() - began
        assert 1.9 <= waited <= 3.5, waited  # 2 s of activity after the break, not wall time
        assert call[4] == "Time for a break" and call[6][::2] == ["start", "snooze", "skip"]
        assert status.exists()
        pointer.active.clear()
        server.press("start")
        _wait(lambda: ("break", "taken", "") in _events(store.path), 60, "taken break")
        events = [e[:2] for e in _events(store.path)]
        assert events == [("break", "natural"), ("break", "due"), ("break", "taken")]
        played = np.fromfile(raw, dtype="<i2")
        # The whole session reached the device: at least its 1.2 s at 44.1/48 kHz stereo.
        assert played.size >= 2 * 44100 * 1.2 and np.abs(played).max() > 1000
        assert any(line.startswith(f"starting {short_session}") for line in lines)
    finally:
        stop.set()
        thread.join(10)
        pointer.stop()
        xvfb.stop()
        notifier.shutdown()
        store.close()
    assert not status.exists()  # removed at the end


class Scripted:
    name = "scripted idle time"

    def __init__(self):
        self.reading = Reading(0.0)

    def read(self):
        return self.reading

    def close(self):
        pass


class Clocks:
    def __init__(self):
        self.mono_s = 100.0
        self.wall = dt.datetime(2026, 11, 30, 10, 0)

    def advance(self, seconds):
        self.mono_s += seconds
        self.wall += dt.timedelta(seconds=seconds)

    def mono(self):
        return self.mono_s

    def now(self):
        return self.wall


def _runner(tmp_path, notifier, fallback=None, **settings):
    clocks = Clocks()
    store = stats.Stats(tmp_path / "history.sqlite3")
    lines: list[str] = []
    r = runner.Runner(
        Settings(**settings),
        notifier,
        Scripted(),
        store,
        lines.append,
        fallback=fallback,
        mono=clocks.mono,
        wall=clocks.now,
    )
    return r, clocks, store, lines


def _work(r, clocks, minutes, step_s=5.0):
    for _ in range(int(minutes * 60 / step_s)):
        clocks.advance(step_s)
        r.step()


def test_do_not_disturb_postpones_and_the_reminder_then_says_why(bus, server, tmp_path):
    notifier = notify.DBusNotifier(bus.address, gnome_dnd=False)
    r, clocks, store, _ = _runner(tmp_path, notifier, every_s=30 * 60)
    try:
        server.inhibited = True
        r.step()
        _work(r, clocks, 40)
        assert [c for c in server.calls if c[0] == "Notify"] == []
        server.inhibited = False
        _work(r, clocks, 0.1)
        (call,) = server.wait_for("Notify")
        assert call[5].endswith("(Postponed because do not disturb was on.)")
        assert [e[:2] for e in _events(store.path)] == [("break", "due"), ("break", "postponed")]
        server.press("skip")
        r.listen(5)
        assert _events(store.path)[-1][:2] == ("break", "skipped")
    finally:
        notifier.shutdown()
        store.close()


def test_snooze_twice_then_only_start_and_skip_over_the_bus(bus, server, tmp_path):
    notifier = notify.DBusNotifier(bus.address)
    r, clocks, store, _ = _runner(tmp_path, notifier)
    try:
        r.step()
        for presses in range(2):
            _work(r, clocks, 45 if presses == 0 else 10)
            server.wait_for("Notify", presses + 1)
            server.press("snooze")
            r.listen(5)
        _work(r, clocks, 10)
        calls = server.wait_for("Notify", 3)
        assert calls[-1][6] == ["start", "Start", "skip", "Skip"]
        assert [e[1] for e in _events(store.path)] == ["due", "snoozed", "snoozed"]
    finally:
        notifier.shutdown()
        store.close()


def test_a_lost_bus_moves_the_reminder_on_screen_to_the_window(bus, server, tmp_path):
    import pygame

    from audio_engine.remind.window import WindowNotifier

    notifier = notify.DBusNotifier(bus.address)
    r, clocks, store, lines = _runner(tmp_path, notifier, fallback=WindowNotifier)
    try:
        r.step()
        _work(r, clocks, 45)
        server.wait_for("Notify")
        bus.stop()
        r.listen(5)
        # The bus going down may first tell that the server's connection left: either is said.
        assert lines[-1].startswith(GONE), lines[-1]
        assert lines[-1].endswith("; reminders now show in a reminder window (pygame)")
        assert r.notifier.name == "a reminder window (pygame)"
        assert pygame.display.get_surface() is not None  # shown again there
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_z))
        r.listen(1)
        assert [e[1] for e in _events(store.path)] == ["due", "snoozed"]  # nothing lost
    finally:
        r.notifier.shutdown()
        store.close()


def test_a_lost_bus_without_a_window_is_an_error_with_the_counts_kept(bus, server, tmp_path):
    notifier = notify.DBusNotifier(bus.address)
    r, clocks, store, _ = _runner(tmp_path, notifier)
    r.step()
    _work(r, clocks, 45)
    server.wait_for("Notify")
    bus.stop()
    with pytest.raises(notify.NotifyError) as info:
        r.run(lambda: False)
    assert str(info.value).startswith(tuple(g[len("relax: ") :] for g in GONE))
    assert [e[1] for e in _events(store.path)] == ["due"]
    store.close()


def test_ending_while_a_session_plays_stops_it_and_records_it(bus, server, tmp_path, monkeypatch):
    long_session = tmp_path / "long.yaml"
    long_session.write_text(SHORT.replace("duration: 1.2s", "duration: 60s"))
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(tmp_path / "long.raw"))
    notifier = notify.DBusNotifier(bus.address)
    r, clocks, store, _ = _runner(tmp_path, notifier, session=str(long_session))
    try:
        r.step()
        _work(r, clocks, 45)
        server.wait_for("Notify")
        server.press("start")
        r.listen(5)
        child = r.child
        assert child is not None and child.poll() is None
        raw = tmp_path / "long.raw"
        _wait(lambda: raw.exists() and raw.stat().st_size > 0, 60, "sound from the session")
        r.finish()
        # Ended: by its SIGTERM (143), or killed when it took over 10 s (a loaded machine).
        assert child.returncode in (143, -9), child.returncode
        assert _events(store.path)[-1] == ("break", "stopped", "relax remind ended")
    finally:
        notifier.shutdown()
        store.close()


def test_do_not_disturb_is_ignored_when_told_to(bus, server, tmp_path):
    notifier = notify.DBusNotifier(bus.address, gnome_dnd=False)
    r, clocks, store, _ = _runner(tmp_path, notifier, respect_dnd=False)
    try:
        server.inhibited = True
        r.step()
        _work(r, clocks, 45)
        assert server.wait_for("Notify")[0][5].endswith("stand up, move, stretch.")
    finally:
        notifier.shutdown()
        store.close()


def test_the_runner_reads_aware_local_time_so_daylight_saving_is_no_jump(tmp_path):
    store = stats.Stats(tmp_path / "h.sqlite3")
    r = runner.Runner(Settings(), None, Scripted(), store, print)
    assert r.wall().tzinfo is not None
    store.close()


def test_the_session_child_tells_the_end_from_a_quit(short_session, tmp_path, monkeypatch):
    """`relax play` exits 0 either way; the child turns "quit" and "closed" into status 3."""
    from audio_engine import player
    from audio_engine.cli import _remind_play

    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(tmp_path / "child.raw"))
    for outcome, status in (("quit", runner.QUIT_EXIT), ("closed", runner.QUIT_EXIT), ("end", 0)):
        monkeypatch.setattr(player, "play", lambda *a, outcome=outcome, **k: outcome)
        assert _remind_play.main([str(short_session), "--no-window"]) == status
    assert _remind_play.main(["no-such-session"]) == 1


def test_a_session_quit_early_is_recorded_as_stopped(bus, server, tmp_path):
    notifier = notify.DBusNotifier(bus.address)
    r, clocks, store, lines = _runner(tmp_path, notifier)
    r.play = lambda session: [sys.executable, "-c", f"raise SystemExit({runner.QUIT_EXIT})"]
    try:
        r.step()
        _work(r, clocks, 45)
        server.wait_for("Notify")
        server.press("start")
        r.listen(5)
        _wait(lambda: r._poll_child() or r.child is None, 30, "the child's end")
        assert _events(store.path)[-1] == ("break", "stopped", "quit before the end")
    finally:
        notifier.shutdown()
        store.close()


def test_the_notification_server_leaving_moves_the_reminder_to_the_window(bus, server, tmp_path):
    import pygame

    from audio_engine.remind.window import WindowNotifier

    notifier = notify.DBusNotifier(bus.address)
    r, clocks, store, lines = _runner(tmp_path, notifier, fallback=WindowNotifier)
    try:
        r.step()
        _work(r, clocks, 45)
        server.wait_for("Notify")
        server.stop()  # its connection closes: the bus says the name has no owner now
        r.listen(5)
        assert lines[-1] == (
            "relax: the notification server left the session bus; "
            "reminders now show in a reminder window (pygame)"
        )
        assert pygame.display.get_surface() is not None
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN))
        r.listen(1)
        assert r.child is not None  # Start from the window
        r.finish()
    finally:
        r.notifier.shutdown()
        store.close()
