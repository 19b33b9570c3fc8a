"""Screen sharing holds a due reminder back, with real parts: Mutter's screen-cast service served
on a real session bus (sessions appearing and going away at Mutter's object paths), a real
PipeWire daemon with portal-like and camera-like video nodes read by the real `pw-dump`, and the
running reminder on a clock the test controls."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from audio_engine.remind import notify, runner, sharing, stats
from audio_engine.remind import settings as st
from audio_engine.remind.idle import Reading
from audio_engine.remind.settings import Settings, SettingsError
from tests._mutter import Caster, Mutter
from tests._pipewire import CAMERA, KWIN, XDPW, PipeWire
from tests._remind_bus import NotificationServer


@pytest.fixture
def mutter(bus):
    m = Mutter(bus.address)
    yield m
    m.stop()


@pytest.fixture
def pipewire():
    p = PipeWire()
    yield p
    p.stop()


# -- GNOME ------------------------------------------------------------------------------------


def test_gnome_sees_a_screen_cast_session_while_it_exists(bus, mutter):
    conn = notify.connect(bus.address)
    caster = Caster(bus.address)
    try:
        probe = sharing.MutterScreenCast(conn)
        assert probe.check() is None
        first = caster.create()
        assert first == "/org/gnome/Mutter/ScreenCast/Session/u1"
        assert probe.check() == "the screen was being shared on GNOME"
        second = caster.create()
        caster.stop(first)
        assert probe.check() == "the screen was being shared on GNOME"  # u2 still casts
        caster.stop(second)
        assert probe.check() is None
    finally:
        caster.close()
        conn.close()


def test_gnome_remote_desktop_counts_only_with_a_picture(bus):
    m = Mutter(bus.address, remote_desktop=True)
    conn = notify.connect(bus.address)
    caster = Caster(bus.address)
    try:
        probe = sharing.MutterScreenCast(conn)
        rd = caster.create(remote_desktop=True)
        assert rd == "/org/gnome/Mutter/RemoteDesktop/Session/u1"
        assert probe.check() is None  # remote input only: no picture leaves the machine
        cast = caster.create()
        assert probe.check() == "the screen was being shown over GNOME remote desktop"
        caster.stop(cast)
        caster.stop(rd, sharing.REMOTE_DESKTOP)
        assert probe.check() is None
    finally:
        caster.close()
        conn.close()
        m.stop()


def test_without_mutter_the_gnome_probe_does_not_work_here(bus):
    conn = notify.connect(bus.address)
    try:
        with pytest.raises(sharing.Unavailable, match="no org.gnome.Mutter.ScreenCast"):
            sharing.MutterScreenCast(conn).check()
        with pytest.raises(sharing.Unavailable, match="no session bus"):
            sharing.MutterScreenCast(None).check()
    finally:
        conn.close()


def test_gnome_shell_restarting_is_not_sharing_and_a_lost_bus_drops_the_probe(bus):
    m = Mutter(bus.address)
    conn = notify.connect(bus.address)
    lines: list[str] = []
    probe = sharing.MutterScreenCast(conn)
    shares = sharing.Sharing([probe], lines.append)
    try:
        assert shares.check(0.0) is None
        m.stop()  # GNOME Shell restarting: its names gone for a moment
        assert shares.check(1.0) is None and shares.probes == [probe]
        bus.stop()
        assert shares.check(2.0) is None
        assert shares.probes == []
        assert len(lines) == 1 and lines[0].startswith(
            "relax: screen sharing: GNOME Mutter screen cast (D-Bus) stopped working (the "
            "session bus was lost"
        )
        assert lines[0].endswith("; not asked again")
        assert shares.check(3.0) is None and len(lines) == 1  # not asked again, not said again
    finally:
        conn.close()


# -- PipeWire ---------------------------------------------------------------------------------


def test_pipewire_counts_portal_screen_casts_and_not_cameras(pipewire):
    probe = sharing.PipeWireGraph(env=pipewire.env)
    assert probe.check() is None
    camera = pipewire.create_node(CAMERA)
    assert probe.check() is None  # a webcam is a video source too, but not the screen
    wlr = pipewire.create_node(XDPW)
    assert probe.check() == "the screen was being shared through xdg-desktop-portal-wlr"
    pipewire.destroy(wlr)
    assert probe.check() is None
    kwin = pipewire.create_node(KWIN)
    assert probe.check() == "the screen was being shared through kwin_wayland"
    pipewire.destroy(kwin)
    pipewire.destroy(camera)
    assert probe.check() is None
    # What the probe read is what pw-dump prints: the nodes carried the properties given.
    assert not [o for o in pipewire.dump() if o.get("type", "").endswith(":Node")]


def test_pipewire_not_running_or_missing_means_the_probe_does_not_work_here(
    pipewire, tmp_path, monkeypatch
):
    empty = tmp_path / "run"
    empty.mkdir(mode=0o700)
    env = dict(pipewire.env, XDG_RUNTIME_DIR=str(empty))
    with pytest.raises(sharing.Unavailable, match=r"pw-dump: .*\(is PipeWire running\?\)"):
        sharing.PipeWireGraph(env=env).check()
    hang = tmp_path / "pw-dump"
    hang.write_text("#!/bin/sh\nexec sleep 30\n")
    hang.chmod(0o755)
    with pytest.raises(sharing.Unavailable, match=r"pw-dump did not answer in 0.5 s"):
        sharing.PipeWireGraph(exe=str(hang), timeout_s=0.5).check()
    monkeypatch.setenv("PATH", str(tmp_path / "run"))
    with pytest.raises(sharing.Unavailable, match="pw-dump is not installed"):
        sharing.PipeWireGraph().check()


def test_pipewire_stopping_mid_run_is_said_once_and_the_probe_dropped(pipewire):
    lines: list[str] = []
    shares, tried = sharing.choose(None, lines.append, env=pipewire.env)
    assert [p.name for p in shares.probes] == ["PipeWire graph (pw-dump)"]
    assert tried == ["GNOME Mutter screen cast (D-Bus): no session bus"]
    pipewire.create_node(XDPW)
    assert shares.check(0.0) == "the screen was being shared through xdg-desktop-portal-wlr"
    pipewire.stop()
    assert shares.check(100.0) is None
    assert shares.probes == [] and len(lines) == 1
    assert lines[0].startswith("relax: screen sharing: PipeWire graph (pw-dump) stopped working")


def test_the_parser_reads_what_portals_and_devices_set():
    def node(**props):
        return {"id": 1, "type": "PipeWire:Interface:Node", "info": {"props": props}}

    dump = [
        {"id": 0, "type": "PipeWire:Interface:Core", "info": {"props": {}}},
        node(**{"media.class": "Video/Source", "device.api": "libcamera", "node.name": "cam"}),
        node(**{"media.class": "Video/Source", "device.id": 40, "node.name": "capture-card"}),
        node(**{"media.class": "Audio/Source", "node.name": "mic"}),
        node(**{"media.class": "Stream/Input/Video", "node.name": "obs"}),  # a consumer
        node(**{"media.class": "Stream/Output/Video", "media.name": "meta-screen-cast-src"}),
        {"id": 9, "type": "PipeWire:Interface:Node", "info": None},  # a removal in monitor mode
    ]
    found = sharing.screen_casts(dump)
    assert [p.get("media.name") for p in found] == ["meta-screen-cast-src"]
    assert sharing.screen_casts({"not": "a list"}) == []


def test_a_screen_share_answer_is_kept_for_15_s_and_not_sharing_is_not_kept():
    class Counting:
        name = "counting"

        def __init__(self):
            self.answer = "the screen was being shared on GNOME"
            self.calls = 0

        def check(self):
            self.calls += 1
            return self.answer

    probe = Counting()
    shares = sharing.Sharing([probe])
    assert shares.check(0.0) == probe.answer
    assert shares.check(14.9) == probe.answer and probe.calls == 1
    probe.answer = None
    assert shares.check(15.0) is None and probe.calls == 2
    assert shares.check(15.1) is None and probe.calls == 3  # "not shared" is asked afresh


# -- the running reminder ---------------------------------------------------------------------


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


def _events(path):
    with sqlite3.connect(path) as db:
        return db.execute("SELECT kind, event, detail FROM remind_events ORDER BY id").fetchall()


def _running(tmp_path, bus, probes=None, **settings):
    conn = notify.connect(bus.address)
    shares = sharing.Sharing(probes or [sharing.MutterScreenCast(conn)])
    clocks = Clocks()
    store = stats.Stats(tmp_path / "history.sqlite3")
    notifier = notify.DBusNotifier(bus.address, gnome_dnd=False)
    lines: list[str] = []
    r = runner.Runner(
        Settings(every_s=30 * 60, **settings),
        notifier,
        Scripted(),
        store,
        lines.append,
        mono=lambda: clocks.mono_s,
        wall=lambda: clocks.wall,
        sharing=shares,
    )
    return r, clocks, store, shares, conn


def _work(r, clocks, minutes, step_s=5.0):
    for _ in range(int(round(minutes * 60 / step_s))):
        clocks.advance(step_s)
        r.step()


def test_a_break_due_while_sharing_waits_and_then_says_why(bus, mutter, tmp_path):
    server = NotificationServer(bus.address)
    caster = Caster(bus.address)
    r, clocks, store, shares, conn = _running(tmp_path, bus)
    try:
        assert [p.name for p in shares.probes] == ["GNOME Mutter screen cast (D-Bus)"]
        session = caster.create()
        r.step()
        asked_at_start = mutter.introspected
        _work(r, clocks, 29.5)
        assert mutter.introspected == asked_at_start  # not due yet: sharing is not asked
        _work(r, clocks, 10.5)  # due at 30 min; held back 10 min while the screen is shared
        assert [c for c in server.calls if c[0] == "Notify"] == []
        # Asked when due, then at most every 15 s (not every 5 s tick) while it lasts.
        assert 40 <= shares.asked <= 43, shares.asked
        assert r.sched.status()["postponed"] == {"break": "the screen was being shared on GNOME"}
        caster.stop(session)
        _work(r, clocks, 0.25)  # within 15 s (the answer kept) plus a tick
        (call,) = server.wait_for("Notify")
        assert call[5] == (
            "You have been at it for 40 minutes: stand up, move, stretch. "
            "(Postponed because the screen was being shared on GNOME.)"
        )
        assert _events(store.path) == [
            ("break", "due", ""),
            ("break", "postponed", "the screen was being shared on GNOME"),
        ]
        asked = shares.asked
        _work(r, clocks, 2)
        assert shares.asked == asked  # the reminder is on screen: nothing more to ask
        server.press("skip")
        r.listen(5)
        assert [e[1] for e in _events(store.path)] == ["due", "postponed", "skipped"]
        counts = dict(
            sqlite3.connect(store.path)
            .execute(
                "SELECT event, COUNT(*) FROM remind_events WHERE day = ? GROUP BY 1",
                (clocks.wall.date().isoformat(),),
            )
            .fetchall()
        )
        assert counts == {"due": 1, "postponed": 1, "skipped": 1}
    finally:
        r.notifier.shutdown()
        store.close()
        caster.close()
        conn.close()
        server.stop()


def test_a_breathing_nudge_waits_for_a_portal_screen_cast_to_end(bus, pipewire, tmp_path):
    """The same through PipeWire: a portal's stream in the real graph, read with pw-dump."""
    server = NotificationServer(bus.address)
    probe = sharing.PipeWireGraph(env=pipewire.env)
    r, clocks, store, shares, conn = _running(tmp_path, bus, [probe], breathe=(10 * 60 + 1,))
    try:
        r.step()
        cast = pipewire.create_node(XDPW)
        pipewire.create_node(CAMERA)  # the camera of the call stays on after the share
        _work(r, clocks, 3)  # the 10:01 nudge comes due at 10:01 and waits
        assert [c for c in server.calls if c[0] == "Notify"] == []
        assert 7 <= shares.asked <= 9, shares.asked
        pipewire.destroy(cast)
        _work(r, clocks, 0.25)
        (call,) = server.wait_for("Notify")
        assert call[4] == "Time to breathe"
        assert call[5].endswith(
            "(Postponed because the screen was being shared through xdg-desktop-portal-wlr.)"
        )
        assert _events(store.path) == [
            ("breathe", "due", ""),
            ("breathe", "postponed", "the screen was being shared through xdg-desktop-portal-wlr"),
        ]
    finally:
        r.notifier.shutdown()
        store.close()
        conn.close()
        server.stop()


def test_screen_sharing_is_not_asked_when_told_not_to(bus, mutter, tmp_path):
    server = NotificationServer(bus.address)
    caster = Caster(bus.address)
    r, clocks, store, shares, conn = _running(tmp_path, bus, respect_screen_sharing=False)
    try:
        caster.create()
        r.step()
        _work(r, clocks, 30.5)
        assert server.wait_for("Notify")[0][5].endswith("stand up, move, stretch.")
        assert shares.asked == 0
    finally:
        r.notifier.shutdown()
        store.close()
        caster.close()
        conn.close()
        server.stop()


# -- settings and the command -----------------------------------------------------------------


def test_a_bad_respect_screen_sharing_is_reported_at_its_line_and_column(tmp_path):
    with pytest.raises(SettingsError) as info:
        st.parse("every: 45m\nrespect_screen_sharing: sometimes\n", "remind.yaml")
    assert str(info.value).splitlines() == [
        "remind.yaml:2:25: error: respect_screen_sharing: must be true or false"
    ]
    s, _ = st.parse("respect_screen_sharing: off\n", "remind.yaml")
    assert s.respect_screen_sharing is False and Settings().respect_screen_sharing is True
    assert "respect_screen_sharing: true\n" in st.template(Settings())
    # As the user meets it: the command says it in the compiler form and starts nothing.
    folder = tmp_path / "settings"
    folder.mkdir()
    (folder / "remind.yaml").write_text("respect_screen_sharing: 1\n")
    env = dict(os.environ, RELAX_SETTINGS_DIR=str(folder), RELAX_DATA_DIR=str(tmp_path / "d"))
    done = subprocess.run(
        [sys.executable, "-m", "audio_engine", "remind", "--status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"{folder / 'remind.yaml'}:1:25: error: respect_screen_sharing: must be true or false\n"
    )


def test_status_and_help_say_what_reminders_wait_for(tmp_path):
    env = dict(os.environ, RELAX_SETTINGS_DIR=str(tmp_path), RELAX_DATA_DIR=str(tmp_path / "d"))
    (tmp_path / "remind.yaml").write_text("respect_fullscreen: false\n")
    relax = [sys.executable, "-m", "audio_engine", "remind"]
    status = subprocess.run(
        [*relax, "--status"], env=env, capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 3
    assert "  reminders wait for: do-not-disturb, screen sharing\n" in status.stdout
    usage = subprocess.run([*relax, "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert "respect_screen_sharing" in " ".join(usage.stdout.split())


def test_the_command_names_the_probes_at_start_and_in_status(bus, pipewire, tmp_path):
    server = NotificationServer(bus.address)
    env = dict(pipewire.env, DBUS_SESSION_BUS_ADDRESS=bus.address)
    env.update(RELAX_DATA_DIR=str(tmp_path / "d"), RELAX_SETTINGS_DIR=str(tmp_path / "s"))
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    relax = [sys.executable, "-m", "audio_engine", "remind"]
    proc = subprocess.Popen(
        relax, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        status_file = tmp_path / "d" / "remind-status.json"
        deadline = time.monotonic() + 30
        while not status_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        status = subprocess.run(
            [*relax, "--status"], env=env, capture_output=True, text=True, timeout=60
        )
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert "  reminders wait for: do-not-disturb, a fullscreen window, screen sharing" in lines
        assert "  screen sharing seen by: PipeWire graph (pw-dump)" in lines
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        server.stop()
    assert proc.returncode == 143, err
    start = out.decode().splitlines()[0]
    assert "; screen sharing: PipeWire graph (pw-dump); settings: " in start, start
    assert "Traceback" not in err.decode()
