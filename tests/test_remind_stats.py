"""Per-day statistics in the shared history file, and the one-instance lock."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys

from audio_engine.remind import lock, stats

DAY = dt.date(2026, 11, 30)


def test_counts_per_day_in_remind_tables_beside_the_practice_history(tmp_path, monkeypatch):
    monkeypatch.setenv("RELAX_DATA_DIR", str(tmp_path))
    path = stats.db_path()
    assert path == tmp_path / "history.sqlite3"
    with sqlite3.connect(path) as db:  # the practice history's own table, made first
        db.execute("CREATE TABLE plays (id INTEGER PRIMARY KEY, session TEXT)")
        db.execute("INSERT INTO plays (session) VALUES ('quick-reset')")
    s = stats.Stats()
    for event in ("due", "snoozed", "snoozed", "taken", "natural"):
        s.record("break", event, DAY)
    s.record("breathe", "due", DAY)
    s.record("break", "skipped", DAY + dt.timedelta(days=1))
    counts = s.day_counts(DAY)
    assert counts["break"] == {
        "due": 1,
        "taken": 1,
        "stopped": 0,
        "snoozed": 2,
        "skipped": 0,
        "natural": 1,
        "postponed": 0,
    }
    assert counts["breathe"]["due"] == 1
    s.close()
    assert stats.read_day_counts(DAY) == counts  # read by another process (--status)
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert db.execute("SELECT session FROM plays").fetchall() == [("quick-reset",)]
    assert tables == {"plays", "remind_events"}


def test_no_file_yet_reads_as_nothing_and_creates_nothing(tmp_path):
    assert stats.read_day_counts(DAY, tmp_path / "history.sqlite3") == {}
    assert not (tmp_path / "history.sqlite3").exists()


def test_a_failed_write_is_kept_said_once_and_written_later(tmp_path):
    said = []
    s = stats.Stats(tmp_path / "h.sqlite3", warn=said.append)
    blocker = sqlite3.connect(tmp_path / "h.sqlite3", timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    s.db.execute("PRAGMA busy_timeout = 50")
    s.record("break", "due", DAY)
    s.record("break", "taken", DAY)
    assert len(said) == 1 and "kept, trying again" in said[0]
    blocker.rollback()
    blocker.close()
    s.close()
    counts = stats.read_day_counts(DAY, tmp_path / "h.sqlite3")["break"]
    assert counts["due"] == 1 and counts["taken"] == 1


def test_one_instance_and_the_lock_goes_with_the_process(tmp_path):
    path = tmp_path / "remind.lock"
    first = lock.InstanceLock(path)
    assert first.acquire()
    assert lock.is_running(path)
    assert not lock.InstanceLock(path).acquire()
    assert first.holder().isdigit()
    first.release()
    assert not lock.is_running(path)
    # A process that dies holding it leaves no stale lock.
    code = (
        "import sys; from pathlib import Path; from audio_engine.remind.lock import InstanceLock;"
        f"assert InstanceLock(Path({str(path)!r})).acquire(); import os; os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    assert lock.InstanceLock(path).acquire()
