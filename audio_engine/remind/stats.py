"""Per-day reminder statistics in SQLite, beside the practice history.

- `db_path()`: the practice history's file (`audio_engine.history.db_path()`).
- `Stats(path)`: `record(kind, event, day, detail)` commits each event at once (nothing is lost
  to a crash or a SIGTERM); `day_counts(day)` -> {kind: {event: count}}.

The file is `history.sqlite3` in the data folder, shared with the practice history (its own
`plays` table); everything of the reminder lives in tables named `remind_*`. A write that fails
(disk full, the file locked for longer than 5 s) is kept in memory and tried again with the next
one and at exit, and said once.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from pathlib import Path

from audio_engine import fsio, history
from audio_engine.errors import RelaxError
from audio_engine.remind.schedule import EVENTS

_SCHEMA = """
CREATE TABLE IF NOT EXISTS remind_events (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,          -- local wall time, ISO 8601
    day TEXT NOT NULL,         -- local date, YYYY-MM-DD
    kind TEXT NOT NULL,        -- 'break' or 'breathe'
    event TEXT NOT NULL,       -- due, taken, stopped, snoozed, skipped, natural, postponed
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS remind_events_day ON remind_events (day);
"""


class StatsError(RelaxError):
    """The statistics file cannot be opened."""


def db_path() -> Path:
    return history.db_path()


class Stats:
    def __init__(self, path: Path | None = None, warn=None):
        self.path = path or db_path()
        self.warn = warn or (lambda text: None)
        self.pending: list[tuple] = []
        self._warned = False
        try:
            # Readable by its owner only, like the practice history that shares the file, and
            # never through a symlink (nor SQLite's files beside it).
            history.refuse_links(self.path)
            fsio.private_dir(self.path.parent)
            os.close(fsio.open_private(self.path, os.O_CREAT | os.O_WRONLY))
            # One user at a time (the runner), possibly not the thread that opened it.
            self.db = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False)
            self.db.executescript(_SCHEMA)
            self.db.commit()
        except fsio.FsError as exc:
            raise StatsError(f"cannot open the statistics file: {exc}") from None
        except (OSError, sqlite3.Error) as exc:
            raise StatsError(f"cannot open the statistics file {self.path}: {exc}") from None

    def record(self, kind: str, event: str, day: dt.date, detail: str = "", at=None) -> None:
        at = at or dt.datetime.now()
        self.pending.append(
            (at.isoformat(timespec="seconds"), day.isoformat(), kind, event, detail)
        )
        self.flush()

    def flush(self) -> bool:
        if not self.pending:
            return True
        try:
            with self.db:
                self.db.executemany(
                    "INSERT INTO remind_events (at, day, kind, event, detail) VALUES (?,?,?,?,?)",
                    self.pending,
                )
        except sqlite3.Error as exc:
            if not self._warned:
                self.warn(f"cannot write statistics to {self.path} ({exc}); kept, trying again")
                self._warned = True
            return False
        self.pending.clear()
        self._warned = False
        return True

    def day_counts(self, day: dt.date) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        rows = self.db.execute(
            "SELECT kind, event, COUNT(*) FROM remind_events WHERE day = ? GROUP BY kind, event",
            (day.isoformat(),),
        )
        for kind, event, n in rows:
            counts.setdefault(kind, dict.fromkeys(EVENTS, 0))[event] = n
        for kind, event, day_text, *_ in ((p[2], p[3], p[1]) for p in self.pending):
            if day_text == day.isoformat():
                counts.setdefault(kind, dict.fromkeys(EVENTS, 0))
                counts[kind][event] = counts[kind].get(event, 0) + 1
        return counts

    def close(self) -> None:
        self.flush()
        self.db.close()


def read_day_counts(day: dt.date, path: Path | None = None) -> dict[str, dict[str, int]]:
    """Today's counts for `--status`, without creating anything when there is no file yet."""
    path = path or db_path()
    if not os.path.lexists(path):
        return {}
    try:
        db = history.connect(path, readonly=True)
    except (fsio.FsError, sqlite3.Error, OSError) as exc:
        raise StatsError(f"cannot read the statistics: {history.reason(exc, path)}") from None
    try:
        rows = db.execute(
            "SELECT kind, event, COUNT(*) FROM remind_events WHERE day = ? GROUP BY kind, event",
            (day.isoformat(),),
        ).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # no remind table yet (only the practice history)
            return {}
        raise StatsError(f"cannot read the statistics: {history.reason(exc, path)}") from None
    except sqlite3.Error as exc:  # a damaged file
        raise StatsError(f"cannot read the statistics: {history.reason(exc, path)}") from None
    finally:
        db.close()
    counts: dict[str, dict[str, int]] = {}
    for kind, event, n in rows:
        counts.setdefault(kind, dict.fromkeys(EVENTS, 0))[event] = n
    return counts
