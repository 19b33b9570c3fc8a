"""The practice history module: what was heard and the cycles done (pure), local-date streaks
across midnight and the changes to and from summer time (Europe/Amsterdam, zoneinfo), and the
SQLite file under real trouble: two processes writing at once, a garbage file, a lock held by
another process, a full disk (SQLite's own limit: `PRAGMA max_page_count` on the connection, which
fails a write with SQLITE_FULL exactly as a full disk does), a newer schema."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from audio_engine import history
from audio_engine.history import Play
from audio_engine.timeline import Event

AMS = ZoneInfo("Europe/Amsterdam")
RATE = 44100
ROOT = Path(__file__).resolve().parent.parent


def _ams(*args, fold=0) -> datetime:
    return datetime(*args, tzinfo=AMS, fold=fold)


def _play(started, minutes=10.0, completed=True, session="breathing-478", cycles=0, ended=None):
    ended = ended or started + timedelta(minutes=minutes)
    return Play(started, ended, session, "en", minutes * 60, completed, cycles)


# ---- what was heard ----------------------------------------------------------------------------


def test_listened_seconds_count_each_heard_sample_once():
    assert history.listened_s([], RATE) == 0
    assert history.listened_s([(0, RATE)], RATE) == 1.0
    # Touching and overlapping ranges (a skip back re-hears samples: counted once).
    assert history.listened_s([(0, 100), (100, 300), (200, 400), (1000, 1100)], 100) == 5.0
    assert history.listened_s([(500, 500), (10, 5)], RATE) == 0


def _breathe(start, phases, cycles):
    """Phase events as the timeline places them: cycle after cycle, phase after phase."""
    events, at = [], start
    for _ in range(cycles):
        for kind, n in phases:
            events.append(Event(kind, at, at + n))
            at += n
    return events, at


def test_a_cycle_counts_when_its_last_phase_is_reached():
    phases = [("inhale", 400), ("hold", 700), ("exhale", 800)]
    events, end = _breathe(1000, phases, 3)  # last phases start at 2100, 4000, 5900
    events.insert(0, Event("speech", 0, 900, text="Breathe"))
    assert history.cycles_reached(events, [(0, end)]) == 3
    assert history.cycles_reached(events, [(0, 2100)]) == 0  # up to just before the exhale
    assert history.cycles_reached(events, [(0, 2101)]) == 1  # its first sample heard
    assert history.cycles_reached(events, [(0, 4000), (5900, 5901)]) == 2  # a skip forward
    assert history.cycles_reached(events, [(2500, 3000)]) == 0  # only the middle of an exhale
    assert history.cycles_reached(events, []) == 0


def test_cycles_of_adjacent_breathe_steps_and_of_lone_phases_are_told_apart():
    a, at = _breathe(0, [("inhale", 10), ("exhale", 10)], 2)  # 4 phases, 2 cycles
    b, at = _breathe(at, [("inhale", 10), ("exhale", 10)], 1)  # straight after: 1 more
    c, at = _breathe(at, [("inhale", 10)], 3)  # inhale only: each inhale is a cycle
    d = [Event("exhale", at + 5, at + 15)]  # after a gap: a cycle of its own
    events = a + b + c + d
    assert len(history._cycles(events)) == 2 + 1 + 3 + 1
    assert history.cycles_reached(events, [(0, at + 15)]) == 7


# ---- streaks on local dates --------------------------------------------------------------------


def test_streaks_count_consecutive_local_dates():
    d = date(2026, 12, 3)
    days = [d - timedelta(days=k) for k in (0, 1, 2, 5, 6, 7, 8)]
    assert history.streaks(days, d) == history.Streaks(3, 4)
    # Today not done yet: the streak still runs through yesterday.
    assert history.streaks(days, d + timedelta(days=1)) == history.Streaks(3, 4)
    assert history.streaks(days, d + timedelta(days=2)) == history.Streaks(0, 4)
    assert history.streaks([], d) == history.Streaks(0, 0)
    assert history.streaks([d, d, d], d) == history.Streaks(1, 1)


def test_a_day_counts_with_a_minute_listened_or_a_completed_session():
    day = _ams(2026, 12, 1, 9, 0)
    short = Play(day, day, "x", "en", 59.0, False, 0)
    assert history.practice_days([short]) == set()
    assert history.practice_days([short, dataclasses.replace(short, listened_s=1.0)]) == {
        date(2026, 12, 1)
    }
    assert history.practice_days([dataclasses.replace(short, completed=True)]) == {
        date(2026, 12, 1)
    }


def test_streak_across_the_change_to_summer_time_follows_local_dates_not_utc(tmp_path):
    # 29 March 2026, Europe/Amsterdam: 02:00 CET becomes 03:00 CEST (a day of 23 hours).
    # Days that end at midnight (--day-ends 0) here: the local calendar itself.
    saturday = _ams(2026, 3, 28, 0, 30)  # 27 March 23:30 in UTC
    sunday_night = _ams(2026, 3, 29, 23, 30)  # 29 March 21:30 UTC
    assert saturday.utcoffset() == timedelta(hours=1)
    assert sunday_night.utcoffset() == timedelta(hours=2)
    played = [_play(saturday), _play(sunday_night)]
    days = history.practice_days(played, day_ends=0)
    assert history.streaks(days, date(2026, 3, 29)).current_days == 2
    # Counted on UTC dates the same two sessions would be no streak at all (27 and 29 March).
    utc_days = {p.started.astimezone(UTC).date() for p in played}
    assert history.streaks(utc_days, date(2026, 3, 29)).current_days == 1

    # A session across the jump itself: 01:50 CET to 03:10 CEST is 20 minutes.
    across = _play(_ams(2026, 3, 29, 1, 50), ended=_ams(2026, 3, 29, 3, 10))
    history.record(across, tmp_path / "h.sqlite3")
    (back,) = history.plays(path=tmp_path / "h.sqlite3")
    assert back.started.isoformat() == "2026-03-29T01:50:00+01:00"
    assert back.ended.isoformat() == "2026-03-29T03:10:00+02:00"
    assert back.ended - back.started == timedelta(minutes=20)  # offsets stored: real time
    assert history.day_of(back, 0) == date(2026, 3, 29)
    assert history.day_of(back) == date(2026, 3, 28)  # before 04:00: the evening before


def test_streak_across_the_end_of_summer_time_and_the_day_of_25_hours(tmp_path):
    # 25 October 2026: 03:00 CEST becomes 02:00 CET again; 02:30 happens twice.
    first = _ams(2026, 10, 25, 2, 30, fold=0)  # CEST
    second = _ams(2026, 10, 25, 2, 30, fold=1)  # an hour later, CET
    assert (first.utcoffset(), second.utcoffset()) == (timedelta(hours=2), timedelta(hours=1))
    plays = [
        _play(_ams(2026, 10, 24, 23, 55)),
        _play(first),
        _play(second),
        _play(_ams(2026, 10, 26, 0, 5)),  # 25 October 23:05 in UTC
    ]
    path = tmp_path / "h.sqlite3"
    for play in plays:
        history.record(play, path)
    back = history.plays(path=path)
    # Stored as local time with its offset and read back as the same instants, in time order.
    assert [p.started.isoformat() for p in back] == [
        "2026-10-24T23:55:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-26T00:05:00+01:00",
    ]
    assert [p.started.astimezone(UTC) for p in back] == [p.started.astimezone(UTC) for p in plays]
    days = history.practice_days(back, day_ends=0)
    assert days == {date(2026, 10, 24), date(2026, 10, 25), date(2026, 10, 26)}
    assert history.streaks(days, date(2026, 10, 26)) == history.Streaks(3, 3)
    today = history.summary(back, date(2026, 10, 25), day_ends=0)
    assert (today.today_sessions, today.today_s) == (2, 1200.0)
    assert history.plays(since=date(2026, 10, 25), path=path, day_ends=0) == back[1:]
    # With days ending at 04:00 both 02:30s belong to Saturday night, and 00:05 to Sunday.
    assert history.practice_days(back) == {date(2026, 10, 24), date(2026, 10, 25)}
    assert history.plays(since=date(2026, 10, 25), path=path) == back[3:]


def test_a_session_from_2350_to_0010_counts_for_the_day_it_started():
    monday_night = _play(_ams(2026, 11, 30, 23, 50), ended=_ams(2026, 12, 1, 0, 10), minutes=20)
    assert history.day_of(monday_night) == date(2026, 11, 30)
    wednesday = _play(_ams(2026, 12, 2, 8, 0))
    played = [monday_night, wednesday]
    # Tuesday had no session of its own: the streak broke.
    assert history.streaks(history.practice_days(played), date(2026, 12, 2)) == history.Streaks(
        1, 1
    )
    # Just after midnight the window names the day the session counts for.
    assert history.end_text(monday_night, [monday_night], date(2026, 12, 1)) == (
        "Monday: 20 min of practice"
    )
    assert history.end_text(monday_night, [monday_night], date(2026, 11, 30)) == (
        "Today: 20 min of practice"
    )
    tuesday = _play(_ams(2026, 12, 1, 21, 0), minutes=5)
    assert history.end_text(tuesday, [monday_night, tuesday], date(2026, 12, 1)) == (
        "Today: 5 min of practice · 2 days in a row"
    )


def test_this_week_runs_from_monday_to_sunday():
    played = [
        _play(_ams(2026, 11, 29, 22, 0), minutes=7),  # Sunday before
        _play(_ams(2026, 11, 30, 0, 1), minutes=3),  # Sunday night, before the day ended
        _play(_ams(2026, 11, 30, 4, 0), minutes=2),  # Monday
        _play(_ams(2026, 12, 7, 3, 59), minutes=4),  # still Sunday night
    ]
    week = history.summary(played, date(2026, 12, 3))
    assert week.week_start == date(2026, 11, 30)
    assert (week.week_sessions, week.week_s) == (2, 6 * 60.0)
    week = history.summary(played, date(2026, 12, 3), day_ends=0)
    assert (week.week_sessions, week.week_s) == (2, 5 * 60.0)
    assert history.minutes_text(29.9) == "under 1 min"
    assert history.minutes_text(30) == "1 min"
    assert history.minutes_text(0) == "0 min"


def test_a_practice_day_ends_at_four_in_the_morning_not_at_midnight():
    monday = _play(_ams(2026, 11, 30, 22, 0))
    after_midnight = _play(_ams(2026, 12, 1, 0, 30))  # counts for Monday evening
    just_before = _play(_ams(2026, 12, 2, 3, 59))  # Tuesday's
    at_four = _play(_ams(2026, 12, 2, 4, 0))  # Wednesday's
    assert [history.day_of(p) for p in (monday, after_midnight, just_before, at_four)] == [
        date(2026, 11, 30),
        date(2026, 11, 30),
        date(2026, 12, 1),
        date(2026, 12, 2),
    ]
    played = [monday, after_midnight, just_before, at_four]
    assert history.practice_days(played) == {
        date(2026, 11, 30),
        date(2026, 12, 1),
        date(2026, 12, 2),
    }
    # At 02:00 on Thursday it is still Wednesday's practice day: the streak is 3 days.
    night = lambda: _ams(2026, 12, 3, 2, 0)  # noqa: E731
    assert history.today(night, day_ends=4) == date(2026, 12, 2)
    assert history.today(night, day_ends=0) == date(2026, 12, 3)
    assert history.streaks(history.practice_days(played), date(2026, 12, 2)).current_days == 3
    # The end text names the evening the session counts for; its streak follows the same days.
    assert history.end_text(after_midnight, played[:2], date(2026, 11, 30)) == (
        "Today: 20 min of practice"
    )
    assert history.end_text(just_before, played[:3], date(2026, 12, 1)) == (
        "Today: 10 min of practice · 2 days in a row"
    )
    assert history.end_text(just_before, played[:3], date(2026, 12, 1), show_streak=False) == (
        "Today: 10 min of practice"
    )


def test_the_day_ends_at_four_on_the_wall_clock_through_both_dst_changes():
    # 29 March 2026: 02:00 CET jumps to 03:00 CEST. 03:30 CEST is only 1.5 h after 01:00 CET,
    # and still Saturday night; 04:00 CEST starts Sunday.
    assert history.day_of(_play(_ams(2026, 3, 29, 1, 30))) == date(2026, 3, 28)
    assert history.day_of(_play(_ams(2026, 3, 29, 3, 30))) == date(2026, 3, 28)
    assert history.day_of(_play(_ams(2026, 3, 29, 4, 0))) == date(2026, 3, 29)
    # 25 October 2026: 03:00 CEST falls back to 02:00 CET; 03:59 CET is 2 h after 02:59 CEST.
    for moment in (
        _ams(2026, 10, 25, 2, 30, fold=0),
        _ams(2026, 10, 25, 2, 30, fold=1),
        _ams(2026, 10, 25, 3, 59),
    ):
        assert history.day_of(_play(moment)) == date(2026, 10, 24)
    assert history.day_of(_play(_ams(2026, 10, 25, 4, 0))) == date(2026, 10, 25)
    nights = [_play(_ams(2026, 3, d, 23, 0)) for d in (27, 28)] + [
        _play(_ams(2026, 3, 30, 2, 0))  # Sunday night, after the short day
    ]
    assert history.streaks(history.practice_days(nights), date(2026, 3, 29)) == history.Streaks(
        3, 3
    )


def test_the_day_end_and_hidden_streaks_are_settings_that_outlive_forget(tmp_path):
    assert history.day_ends_h() == 4 and history.streaks_on()
    history.set_day_ends_h(0)
    history.set_streaks(False)
    history.record(_play(_ams(2026, 12, 1, 0, 30), minutes=5), tmp_path / "h.sqlite3")
    history.record(_play(_ams(2026, 11, 30, 0, 30), minutes=5), tmp_path / "h.sqlite3")
    history.forget(tmp_path / "h.sqlite3")
    assert history.day_ends_h() == 0 and not history.streaks_on()
    (history._settings_dir() / history.DAY_ENDS_FILE).write_text("twenty\n")
    assert history.day_ends_h() == 4  # a setting that cannot be read: the default
    history.set_day_ends_h(4)
    history.set_streaks(True)
    assert not (history._settings_dir() / history.DAY_ENDS_FILE).exists()
    assert history.streaks_on()


def test_local_time_follows_the_tz_of_the_process():
    # A POSIX rule needs no zone files: Amsterdam's, in a process of its own.
    code = textwrap.dedent(
        """
        from datetime import datetime, UTC
        from audio_engine import history
        for text in ("2026-03-29T00:59:59", "2026-03-29T01:00:00", "2026-10-25T00:59:59",
                     "2026-10-25T01:00:00", "2026-12-31T23:30:00"):
            print(history.local(datetime.fromisoformat(text).replace(tzinfo=UTC)).isoformat())
        """
    )
    env = dict(os.environ, TZ="CET-1CEST,M3.5.0,M10.5.0/3")
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "2026-03-29T01:59:59+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-10-25T02:59:59+02:00",
        "2026-10-25T02:00:00+01:00",
        "2027-01-01T00:30:00+01:00",  # already the next day (and year) on the local calendar
    ]


# ---- the file ----------------------------------------------------------------------------------


def _rows(path):
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM plays").fetchone()[0]


def _integrity(path):
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def test_the_file_has_a_plays_table_and_a_schema_version(tmp_path):
    path = tmp_path / "deep" / "history.sqlite3"
    assert history.plays(path=path) == [] and not path.exists()  # reading creates nothing
    play = _play(_ams(2026, 12, 1, 8, 0), cycles=8)
    history.record(play, path)
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o600  # yours alone
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION
        columns = [row[1] for row in conn.execute("PRAGMA table_info(plays)")]
        row = conn.execute("SELECT * FROM plays").fetchone()
    assert columns == [
        "id",
        "started",
        "ended",
        "session_id",
        "language",
        "listened_s",
        "completed",
        "cycles",
    ]
    assert row == (
        1,
        "2026-12-01T08:00:00+01:00",
        "2026-12-01T08:10:00+01:00",
        "breathing-478",
        "en",
        600.0,
        1,
        8,
    )
    assert history.plays(path=path) == [play]


def test_the_reminders_tables_in_the_same_file_are_left_alone(tmp_path):
    path = tmp_path / "history.sqlite3"
    with sqlite3.connect(path) as conn:  # the reminders were there first
        conn.execute("CREATE TABLE remind_breaks (id INTEGER PRIMARY KEY, at TEXT)")
        conn.execute("INSERT INTO remind_breaks (at) VALUES ('2026-12-01T10:00:00+01:00')")
    assert history.plays(path=path) == []  # no plays table yet: an empty history
    history.record(_play(_ams(2026, 12, 1, 8, 0)), path)
    assert history.forget(path) == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM remind_breaks").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM plays").fetchone()[0] == 0


def test_forget_leaves_no_trace_of_the_rows_in_the_file(tmp_path):
    path = tmp_path / "history.sqlite3"
    for k in range(50):
        history.record(_play(_ams(2026, 12, 1, 8, k), session="my-private-evening"), path)
    assert b"my-private-evening" in path.read_bytes()
    assert history.forget(path) == 50
    assert b"my-private-evening" not in path.read_bytes()
    assert history.plays(path=path) == [] and history.count(path) == 0
    assert history.forget(tmp_path / "none.sqlite3") == 0


def test_a_newer_schema_is_refused_and_left_as_it_is(tmp_path):
    path = tmp_path / "history.sqlite3"
    history.record(_play(_ams(2026, 12, 1, 8, 0)), path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 7")
    before = path.read_bytes()
    with pytest.raises(history.HistoryError, match="newer relax.*version 7"):
        history.record(_play(_ams(2026, 12, 2, 8, 0)), path)
    with pytest.raises(history.HistoryError, match="newer relax"):
        history.plays(path=path)
    assert path.read_bytes() == before


_WRITER = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timedelta, UTC
    from audio_engine import history
    path, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sys.stdout.write("ready\\n"); sys.stdout.flush(); sys.stdin.readline()
    start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    for k in range(n):
        t = start + timedelta(seconds=k)
        history.record(history.Play(t, t, who, "en", 1.0, True, k), history.Path(path))
    """
)


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "history.sqlite3"  # neither finds a file: both make the table at once
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), who, "60"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for who in ("a", "b")
    ]
    for proc in procs:
        assert proc.stdout.readline() == "ready\n"
    for proc in procs:  # released together
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    played = history.plays(path=path)
    assert len(played) == 120
    for who in ("a", "b"):
        assert sorted(p.cycles for p in played if p.session_id == who) == list(range(60))
    assert _integrity(path) == "ok"


def test_a_garbage_file_is_reported_and_left_untouched(tmp_path):
    path = tmp_path / "history.sqlite3"
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    with pytest.raises(history.HistoryError, match="is damaged.*move it away"):
        history.record(_play(_ams(2026, 12, 1, 8, 0)), path)
    with pytest.raises(history.HistoryError, match="is damaged"):
        history.plays(path=path)
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.sqlite3"]  # no journal left


_HOLDER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("INSERT INTO plays (started, ended, session_id, language, listened_s, completed,"
                 " cycles) VALUES ('2026-12-01T09:00:00+01:00', '2026-12-01T09:00:00+01:00',"
                 " 'uncommitted', 'en', 1, 0, 0)")
    sys.stdout.write("locked\\n"); sys.stdout.flush()
    sys.stdin.readline()
    conn.execute("ROLLBACK")
    """
)


def _hold_lock(path):
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline() == "locked\n"
    return proc


def test_a_lock_held_by_another_process_fails_the_write_after_the_busy_timeout(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(history, "BUSY_TIMEOUT_S", 0.4)
    path = tmp_path / "history.sqlite3"
    history.record(_play(_ams(2026, 12, 1, 8, 0)), path)
    holder = _hold_lock(path)
    try:
        began = time.monotonic()
        with pytest.raises(history.HistoryError, match="locked by another program .waited 0.4 s"):
            history.record(_play(_ams(2026, 12, 1, 10, 0)), path)
        assert time.monotonic() - began >= 0.38  # it waited, then gave up
    finally:
        holder.communicate("release\n", timeout=30)
    assert [p.started.hour for p in history.plays(path=path)] == [8]
    # A lock released within the timeout only delays the write.
    monkeypatch.setattr(history, "BUSY_TIMEOUT_S", 10.0)
    holder = _hold_lock(path)
    release = threading.Timer(0.5, lambda: holder.communicate("release\n", timeout=30))
    release.start()
    history.record(_play(_ams(2026, 12, 1, 11, 0)), path)
    release.join()
    assert [p.started.hour for p in history.plays(path=path)] == [8, 11]


def _full_disk(monkeypatch, max_pages):
    """Every connection the module opens may grow the file to `max_pages` pages at most: SQLite
    then fails a write with SQLITE_FULL, its answer to a full disk."""
    connect = history._connect

    def limited(path, **options):
        conn = connect(path, **options)
        conn.execute(f"PRAGMA max_page_count = {max_pages}")
        return conn

    monkeypatch.setattr(history, "_connect", limited)


def test_a_full_disk_fails_the_write_whole_and_keeps_what_was_there(tmp_path, monkeypatch):
    path = tmp_path / "history.sqlite3"
    history.record(_play(_ams(2026, 12, 1, 8, 0)), path)
    with sqlite3.connect(path) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    _full_disk(monkeypatch, pages)
    written = 1
    with pytest.raises(history.HistoryError, match="the disk is full"):
        for k in range(1000):  # the table's last page fills up, then no new page is allowed
            history.record(_play(_ams(2026, 12, 1, 9, 0) + timedelta(minutes=k), cycles=k), path)
            written += 1
    assert 1 < written < 1000
    assert _rows(path) == written == len(history.plays(path=path))
    assert _integrity(path) == "ok"
    assert not (tmp_path / "history.sqlite3-journal").exists()
    # The one line a play prints, and nothing written.
    lines = []
    recording = history.Recording("a-longer-session-id", "en", path=path, warn=lines.append)
    timeline = _Timeline(events=(), sample_rate=RATE)
    assert recording.finish(timeline, [(0, 90 * RATE)], completed=False) is None
    assert lines == [
        "relax: this play was not recorded in your history (a-longer-session-id, 1:30 "
        f"listened): the disk is full ({path})"
    ]
    assert _rows(path) == written


class _Timeline:
    def __init__(self, events, sample_rate):
        self.events = events
        self.sample_rate = sample_rate


def test_recording_writes_once_and_not_when_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("RELAX_SETTINGS_DIR", str(tmp_path / "settings"))
    path = tmp_path / "history.sqlite3"
    times = iter([_ams(2026, 12, 1, 8, 0), _ams(2026, 12, 1, 8, 5)])
    events, end = _breathe(0, [("inhale", RATE), ("exhale", RATE)], 4)
    recording = history.Recording("x", "nl", path=path, clock=lambda: next(times))
    heard = [(0, 3 * RATE + 7)]
    play = recording.finish(_Timeline(events, RATE), heard, completed=False)
    assert play == Play(
        _ams(2026, 12, 1, 8, 0), _ams(2026, 12, 1, 8, 5), "x", "nl", 3 + 7 / RATE, False, 2
    )
    assert recording.finish(_Timeline(events, RATE), [(0, end)], completed=True) is play
    assert history.plays(path=path) == [play]

    late = history.start("x", "en", path=path)
    assert late is not None
    history.set_recording(False)  # while it plays
    assert history.start("x", "en", path=path) is None
    assert late.finish(_Timeline(events, RATE), heard, completed=True) is None
    history.set_recording(True)
    assert history.recording_on()
    assert history.count(path) == 1
