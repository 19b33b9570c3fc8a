"""`relax remind` as the user runs it: bad settings, no bus, a second instance, SIGTERM and
Ctrl-C, a bus lost mid-run, --status, --install/--uninstall."""

from __future__ import annotations

import datetime as dt
import json
import os
import plistlib
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audio_engine.remind import install
from tests._remind_bus import NotificationServer

RELAX = [sys.executable, "-m", "audio_engine", "remind"]


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ)
    e["RELAX_DATA_DIR"] = str(tmp_path / "data")
    e["RELAX_SETTINGS_DIR"] = str(tmp_path / "settings")
    e["SDL_DISKAUDIOFILE"] = str(tmp_path / "audio.raw")
    for name in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "WAYLAND_DISPLAY"):
        e.pop(name, None)
    return e


def _run(args, env, timeout=60):
    return subprocess.run(
        [*RELAX, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _start(args, env):
    return subprocess.Popen(
        [*RELAX, *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_started(proc, env, timeout_s=30.0):
    status = Path(env["RELAX_DATA_DIR"]) / "remind-status.json"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"ended early: {proc.communicate()}")
        if status.exists():
            return
        time.sleep(0.05)
    raise AssertionError("relax remind did not start")


def _stop(proc, sig=signal.SIGTERM):
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    return proc.returncode, out, err


def test_bad_settings_are_reported_at_file_line_col_and_nothing_starts(env, tmp_path):
    settings = tmp_path / "settings"
    settings.mkdir()
    path = settings / "remind.yaml"
    path.write_text("every: 45\nhours: 9-17\ndays: weekdays\n")
    done = _run([], env)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"{path}:1:8: error: every: '45' needs a unit: h, m or s (e.g. 45m)",
        f"{path}:3:7: error: days: 'weekdays' is not a day (mon, tue, wed, thu, fri, sat, sun)",
    ]
    assert done.stdout == ""
    assert not (tmp_path / "data" / "remind.lock").exists()


def test_a_bad_flag_is_a_usage_error(env):
    done = _run(["--every", "soon"], env)
    assert done.returncode == 2
    assert done.stderr == (
        "relax: error: --every soon: 'soon' is not a duration (e.g. 45m, 1h, 90s)\n"
    )


def test_every_outside_the_advice_warns_and_runs(env, bus):
    env["DBUS_SESSION_BUS_ADDRESS"] = bus.address
    server = NotificationServer(bus.address)
    try:
        proc = _start(["--every", "90m"], env)
        _wait_started(proc, env)
        code, out, err = _stop(proc)
    finally:
        server.stop()
    assert code == 143
    assert err.splitlines()[0] == (
        "relax: warning: --every 90m: the guide advises a break every 30m to 60m of sitting; "
        "using it anyway"
    )
    assert "a break after every 90m of activity" in out


def test_no_session_bus_is_one_line(env):
    done = _run(["--notify", "dbus"], env)
    assert done.returncode == 1
    assert done.stderr == "relax: error: no session bus (DBUS_SESSION_BUS_ADDRESS is not set)\n"
    env.pop("SDL_VIDEODRIVER", None)
    done = _run([], env)
    assert done.returncode == 1
    assert done.stderr == (
        "relax: error: no session bus (DBUS_SESSION_BUS_ADDRESS is not set) "
        "(and no display for the window)\n"
    )


def test_no_notification_server_falls_back_to_the_window(env, bus):
    env["DBUS_SESSION_BUS_ADDRESS"] = bus.address
    proc = _start([], env)
    _wait_started(proc, env)
    code, out, err = _stop(proc)
    assert code == 143
    assert err.splitlines()[0].startswith(
        "relax: no notification server on the session bus (org.freedesktop.DBus.Error."
    )
    assert err.splitlines()[0].endswith("; reminders show in a window")
    assert "reminders: a reminder window (pygame)" in out


def test_second_instance_sigterm_status_and_ctrl_c(env, bus):
    env["DBUS_SESSION_BUS_ADDRESS"] = bus.address
    server = NotificationServer(bus.address)
    try:
        first = _start(["--hours", "all"], env)
        _wait_started(first, env)
        second = _run([], env)
        assert second.returncode == 1
        assert second.stderr == (
            f"relax: error: relax remind is already running (pid {first.pid}); "
            "see `relax remind --status`\n"
        )
        status = _run(["--status"], env)
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert lines[0] == f"relax remind: running (pid {first.pid})"
        assert (
            "  reminders: desktop notifications (fake-notifyd 1); idle time: wall-clock time"
            in status.stdout
        )
        assert "  next break: after 45 min more of activity (active 0 s so far)" in lines
        assert f"today ({dt.date.today().isoformat()}):" in lines
        code, out, err = _stop(first)
        assert code == 143
        assert err.splitlines()[0] == (
            "relax: no idle time here (GNOME Mutter IdleMonitor: not on this desktop; "
            "X11: no DISPLAY; org.freedesktop.ScreenSaver: not on this desktop); "
            "counting wall-clock time"
        )
        assert out.splitlines()[-1].endswith(
            "relax remind: stopped (SIGTERM); today's counts are kept"
        )
        assert "Traceback" not in err
        data = Path(env["RELAX_DATA_DIR"])
        assert not (data / "remind-status.json").exists()
        with sqlite3.connect(data / "history.sqlite3") as db:
            db.execute("SELECT * FROM remind_events").fetchall()  # the table is there
        after = _run(["--status"], env)
        assert after.returncode == 3 and after.stdout.startswith("relax remind: not running\n")
        # The lock went with the process: it starts again, and Ctrl-C ends it with 130.
        again = _start([], env)
        _wait_started(again, env)
        code, out, err = _stop(again, signal.SIGINT)
        assert code == 130 and "stopped (Ctrl-C)" in out
    finally:
        server.stop()


def test_a_bus_lost_mid_run_is_said_and_the_reminder_goes_on(env, bus):
    env["DBUS_SESSION_BUS_ADDRESS"] = bus.address
    server = NotificationServer(bus.address)
    proc = _start(["--tick", "0.2"], env)
    try:
        _wait_started(proc, env)
        server.stop()
        bus.stop()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            state = (Path(env["RELAX_DATA_DIR"]) / "remind-status.json").read_text()
            if "pygame" in state:
                break
            time.sleep(0.1)
        assert proc.poll() is None
    finally:
        code, out, err = _stop(proc)
    assert code == 143
    gone = [line for line in err.splitlines() if "reminders now show in" in line]
    assert len(gone) == 1, err
    # The server went first here, then the bus: whichever the reminder heard first is said.
    assert gone[0].startswith(
        ("relax: the notification server left the session bus", "relax: the session bus was lost (")
    )
    assert gone[0].endswith("; reminders now show in a reminder window (pygame)")
    assert "Traceback" not in err


def test_install_writes_a_systemd_user_unit_and_uninstall_removes_it(env, tmp_path):
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env["RELAX_SYSTEMCTL"] = ""
    done = _run(["--install", "--every", "30m", "--session", "quick-reset"], env)
    assert done.returncode == 0, done.stderr
    unit = tmp_path / "xdg" / "systemd" / "user" / "relax-remind.service"
    assert done.stdout == f"relax remind: wrote {unit}\n"
    text = unit.read_text()
    assert (
        f"ExecStart={sys.executable} -m audio_engine remind --every 30m --session quick-reset\n"
        in text
    )
    assert "WantedBy=graphical-session.target\n" in text and "SuccessExitStatus=143\n" in text
    done = _run(["--uninstall"], env)
    assert done.returncode == 0 and not unit.exists()
    assert done.stdout == f"relax remind: removed {unit}\n"
    done = _run(["--uninstall"], env)
    assert done.stdout == f"relax remind: nothing to remove: {unit} does not exist\n"


def test_install_calls_systemctl_to_enable(env, tmp_path):
    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir()
    log = tmp_path / "calls"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env["RELAX_SYSTEMCTL"] = str(fake)
    assert _run(["--install"], env).returncode == 0
    assert _run(["--uninstall"], env).returncode == 0
    assert log.read_text().splitlines() == [
        "--user daemon-reload",
        "--user enable relax-remind.service",
        "--user disable --now relax-remind.service",
        "--user daemon-reload",
    ]


def test_the_macos_and_windows_files(tmp_path):
    mac = install.target(
        "darwin", ["--every", "30m"], env={}, home=tmp_path, python="/py/bin/python3"
    )
    assert mac.path == tmp_path / "Library" / "LaunchAgents" / "org.relax.remind.plist"
    plist = plistlib.loads(mac.text.encode())
    assert plist["ProgramArguments"] == [
        "/py/bin/python3",
        "-m",
        "audio_engine",
        "remind",
        "--every",
        "30m",
    ]
    assert plist["RunAtLoad"] is True and plist["Label"] == "org.relax.remind"
    win = install.target(
        "win32",
        [],
        env={"APPDATA": str(tmp_path / "AppData")},
        home=tmp_path,
        python=r"C:\Py 3\python.exe",
    )
    assert win.path == (
        tmp_path
        / "AppData"
        / "Microsoft"
        / "Windows"
        / "Start Menu"
        / "Programs"
        / "Startup"
        / "relax-remind.cmd"
    )
    assert win.text.endswith('start "" "C:\\Py 3\\python.exe" -m audio_engine remind\r\n')
    linux = install.target("linux", [], env={}, home=tmp_path, python="/a b/python")
    assert linux.path == tmp_path / ".config" / "systemd" / "user" / "relax-remind.service"
    assert 'ExecStart="/a b/python" -m audio_engine remind\n' in linux.text


def test_print_settings_is_a_settings_file(env, tmp_path):
    done = _run(["--print-settings", "--hours", "9-17", "--breathe", "11:00"], env)
    assert done.returncode == 0
    assert 'hours: "09:00-17:00"\n' in done.stdout and 'breathe: "11:00"\n' in done.stdout
    path = tmp_path / "settings" / "remind.yaml"
    path.parent.mkdir()
    path.write_text(done.stdout)
    again = _run(["--print-settings"], env)
    assert again.stdout == done.stdout


def test_a_session_that_does_not_exist_is_said_at_start(env):
    done = _run(["--session", "no-such-thing"], env)
    assert done.returncode == 1
    assert done.stderr.startswith(
        "relax: error: no session called 'no-such-thing'; known sessions:"
    )
    assert len(done.stderr.splitlines()) == 1
    done = _run(["--breathe", "11:00", "--breathe-session", "nope"], env)
    assert done.returncode == 1 and "no session called 'nope'" in done.stderr
    # In Dutch the whole line is Dutch, not a Dutch "fout:" before an English message.
    done = _run(["--session", "nope"], {**env, "LANG": "nl_NL.UTF-8"})
    assert done.returncode == 1
    assert done.stderr.startswith("relax: fout: er is geen sessie 'nope'; bekende sessies: ")
    assert done.stderr.rstrip().endswith("(zie `relax list`)")


def test_remind_usage_errors_are_in_the_interface_language(env):
    # argparse's own words too ("expected one argument"), not a Dutch frame around English.
    dutch = {**env, "LANG": "nl_NL.UTF-8"}
    for args, said in (
        (["--every"], "relax remind: fout: optie --every: hier hoort één waarde bij"),
        (
            ["--status", "--install"],
            "relax remind: fout: optie --install: gaat niet samen met --status",
        ),
        (["--evry", "3"], "relax remind: fout: onbekende opties: --evry 3"),
    ):
        done = _run(args, dutch)
        assert done.returncode == 2
        assert done.stderr.splitlines() == [said, "(zie relax remind --help)"]
    done = _run(["--every"], env)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "relax remind: error: argument --every: expected one argument",
        "(see relax remind --help)",
    ]


def _words(text: str) -> set[str]:
    """The words of `text`, options (`--every`) left out: they are the same in every language."""
    text = re.sub(r"(?<![\w-])--?[\w-]+", " ", text)
    return {w.rstrip(".-") for w in re.findall(r"(?<![\w.-])[A-Za-z][\w'.-]{2,}", text)}


def test_remind_speaks_the_interface_language(env, tmp_path):
    # --status of a running instance, --help, an error and the install messages in Dutch, with
    # no word of the English output left but the data passed through (names, session ids); the
    # English stays as it was.
    from audio_engine.remind import lock, stats

    data = Path(env["RELAX_DATA_DIR"])
    db = stats.Stats(data / "history.sqlite3")
    today, now = dt.date.today(), dt.datetime.now().astimezone()
    for kind, event, n in (("break", "due", 4), ("break", "snoozed", 2), ("break", "natural", 1)):
        for _ in range(n):
            db.record(kind, event, today, "", now)
    db.record("breathe", "due", today, "", now)
    db.close()
    state = {
        "pid": os.getpid(),
        "settings": {
            **{"every": "45m", "snooze": "10m", "snoozes": "2", "idle": "5m", "hours": "all"},
            **{"days": "mon-fri", "breathe": "11:00,15:00", "session": "quick-reset"},
            **{"respect_dnd": "true", "respect_fullscreen": "false"},
        },
        "notifier": "fake-notifyd 1",
        "idle": "Xvfb",
        "sharing": None,
        "schedule": {
            **{"active_s": 1980.0, "break_in_s": 720.0, "snoozes_in_a_row": 1},
            **{"showing": None, "in_session": None, "in_working_hours": True},
            **{"postponed": {}, "next_breathe": "tue 11:00"},
        },
    }
    held = lock.InstanceLock(data / lock.LOCK_NAME)
    assert held.acquire()
    try:
        # The reason is the running reminder's, in its language.
        state["schedule"]["postponed"] = {"breathe": "do not disturb was on"}
        (data / "remind-status.json").write_text(json.dumps(state))
        english = _run(["--status"], env)
        state["schedule"]["postponed"] = {"breathe": "niet storen aan stond"}
        (data / "remind-status.json").write_text(json.dumps(state))
        dutch = _run(["--status"], {**env, "LANG": "nl_NL.UTF-8"})
    finally:
        held.release()
    assert english.returncode == dutch.returncode == 0, dutch.stderr
    assert english.stdout.splitlines()[1:3] == [
        "  every 45m of activity; snooze 10m (at most 2 in a row); idle 5m is a break",
        "  working hours all, days mon-fri; breathing nudges 11:00,15:00; session quick-reset",
    ]
    assert "  breaks: 4 due, 0 taken, 0 stopped early, 2 snoozed, 0 skipped, 1 natural" in (
        english.stdout
    )
    assert "  postponed: the breathe reminder (do not disturb was on)" in english.stdout
    assert dutch.stdout.splitlines() == [
        f"relax remind: loopt (pid {os.getpid()})",
        "  elke 45 min activiteit een pauze; Later: nog 10 min (hooguit 2 keer op rij); "
        "5 min inactief telt als pauze",
        "  werktijden: de hele dag, op ma-vr; ademhalingsmomenten om 11:00,15:00; "
        "sessie: quick-reset",
        "  herinneringen wachten tijdens: niet storen, schermdelen",
        "  herinneringen: fake-notifyd 1; inactieve tijd: Xvfb",
        "  volgende pauze: na nog 12 min activiteit (tot nu toe 33 min actief, 1 keer Later)",
        "  volgend ademhalingsmoment: di om 11:00",
        "  uitgesteld: de herinnering voor een ademhalingsmoment (omdat niet storen aan stond)",
        f"vandaag ({today.isoformat()}):",
        "  pauzes: 4 herinneringen, 0 genomen, 0 eerder gestopt, 2 keer Later, 0 overgeslagen, "
        "1 zelf genomen",
        "  ademhalingsmomenten: 1 herinnering, 0 genomen, 0 eerder gestopt, 0 keer Later, "
        "0 overgeslagen",
    ]
    same = {"relax", "remind", "pid", "min", "fake-notifyd", "Xvfb", "quick-reset"}
    assert _words(english.stdout) & _words(dutch.stdout) <= same

    # --help: from the locale, and from --ui-language (which the parser must know before the
    # help is written).
    helps = [
        _run(["--help"], env),
        _run(["--help"], {**env, "LANG": "nl_NL.UTF-8"}),
        subprocess.run(
            [sys.executable, "-m", "audio_engine", "--ui-language", "nl", "remind", "--help"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        ),
    ]
    assert helps[0].stdout.startswith("usage: relax remind [-h] [--every DURATION]")
    assert "  -h, --help            show this help message and exit\n" in helps[0].stdout
    for done in helps[1:]:
        assert done.returncode == 0, done.stderr
        text = done.stdout
        assert text.startswith("gebruik: relax remind [-h] [--every DUUR]"), text
        assert "\nopties:\n  -h, --help            toon deze hulp en stop\n" in text
        assert "Herinnert je eraan een pauze te nemen" in text and "Afsluitstatus: 130" in text
        # Names, values as typed, and the words Dutch shares with English.
        literal = {"relax", "remind", "Ctrl-C", "SIGTERM", "remind.yaml", "docs", "remind.md"}
        literal |= {"macOS", "Windows", "systemd", "Start", "desk-stretches", "breathing-478"}
        literal |= {"auto", "dbus", "window", "mon-fri", "all", "respect_dnd"}
        literal |= {"respect_fullscreen", "respect_screen_sharing", "computer", "start"}
        assert _words(helps[0].stdout) & _words(text) <= literal

    # An error, and what --install and --uninstall say.
    env.pop("SDL_VIDEODRIVER", None)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env["RELAX_SYSTEMCTL"] = ""
    unit = tmp_path / "xdg" / "systemd" / "user" / "relax-remind.service"
    nl = {**env, "LANG": "nl_NL.UTF-8"}
    said = [_run(args, e) for e in (env, nl) for args in (["--notify", "window"], ["--install"])]
    assert said[0].stderr == (
        "relax: error: notify: window, but there is no display to show a window on\n"
    )
    assert said[1].stdout == f"relax remind: wrote {unit}\n"
    assert said[2].returncode == 1 and said[2].stderr == (
        "relax: fout: notify: window, maar er is geen beeldscherm om een venster op te tonen\n"
    )
    assert said[3].returncode == 0 and said[3].stdout == f"relax remind: {unit} geschreven\n"
    assert _run(["--every", "soon"], nl).stderr == (
        "relax: fout: --every soon: 'soon' is geen tijdsduur (bijv. 45m, 1h, 90s)\n"
    )
    assert _run(["--notify", "dbus"], nl).stderr == (
        "relax: fout: geen sessiebus (DBUS_SESSION_BUS_ADDRESS is niet gezet)\n"
    )
    written = _run(["--print-settings", "--every", "30m"], nl).stdout
    assert written.startswith("# relax remind: instellingen (dit bestand wordt bij de start")
    assert "# hooguit zo vaak Later op rij (0-5)\nsnoozes: 2\n" in written
    (tmp_path / "nl.yaml").write_text(written)
    read_back = _run(["--print-settings", "--settings", str(tmp_path / "nl.yaml")], nl).stdout
    assert read_back == written
    assert _run(["--uninstall"], nl).stdout == f"relax remind: {unit} verwijderd\n"
    assert _run(["--uninstall"], nl).stdout == (
        f"relax remind: niets te verwijderen: {unit} bestaat niet\n"
    )
