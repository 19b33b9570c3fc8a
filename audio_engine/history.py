"""Practice history: one row per `relax play` in a local SQLite file. Nothing leaves the machine.

Entry points:

- `db_path()`: the file, `history.sqlite3` in the user's data folder (env `RELAX_DATA_DIR`, else
  `platformdirs.user_data_dir("relax")`). The reminders keep their own `remind_*` tables there.
- `Recording(session_id, language)`: one play, started now; `finish(timeline, heard, completed)`
  writes its row once and returns the `Play`, or prints one line saying what was not recorded and
  returns None: the session plays whatever happens to the file.
- `record(play)`, `plays(since=None)`, `count()`, `forget()`: the rows (raise `HistoryError`).
- `recording_on()` / `set_recording(on)`, `summary_on()` / `set_summary(on)` and `streaks_on()` /
  `set_streaks(on)`: whether plays are recorded, whether the player shows today's minutes at the
  end, whether streaks are shown anywhere (marker files in the settings folder, so `forget` leaves
  them alone); `day_ends_h()` / `set_day_ends_h(hour)`: when a practice day ends.
- `today()`: the practice day it is now.
- Pure: `listened_s(heard, rate)`, `cycles_reached(events, heard)`, `day_of(play, day_ends_h)`,
  `practice_days(plays)`, `streaks(days, today)`, `summary(plays, today)`, `end_text(...)`.

The file: table `plays`, its schema version in `PRAGMA user_version` (`SCHEMA_VERSION`);
`_MIGRATIONS[v]` takes the table from version v to v + 1 inside the write transaction that finds it
older, so two first plays at once create it once. Every write is one `BEGIN IMMEDIATE`
transaction with a busy timeout (`BUSY_TIMEOUT_S`): a locked, damaged or full file fails the whole
write and leaves the file as it was, never half a row.

Times are stored as ISO 8601 local time with its UTC offset (`2026-03-29T01:50:00+01:00`). A
session belongs to the practice day it started on, and a practice day ends at `DAY_ENDS_H`
(04:00) on the listener's clock, not at midnight: a session at 00:30 counts for the evening
before, as people live it (a session from 23:50 to 00:10 counts for the day it started). Streaks
follow the listener's local clock, not UTC, and a day of 23 or 25 hours (a change to or from
summer time) is one day like any other. The hour can be set (`relax history --day-ends H`, 0 for
midnight).
"""

from __future__ import annotations

import bisect
import contextlib
import os
import sqlite3
import sys
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from audio_engine import fsio
from audio_engine.errors import RelaxError
from audio_engine.i18n import _, ngettext

FILE_NAME = "history.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 3.0  # how long a write waits for another program's lock on the file
DAY_MIN_S = 60.0  # a day counts for a streak with this much listened, or a completed session
RECORDING_OFF_MARKER = "history-off"
SUMMARY_OFF_MARKER = "history-summary-off"
STREAKS_OFF_MARKER = "history-streaks-off"
DAY_ENDS_FILE = "history-day-ends"  # the hour a practice day ends, when not DAY_ENDS_H
DAY_ENDS_H = 4  # a practice day ends at 04:00 local time: a session at 00:30 is the evening's
PHASE_ORDER = ("inhale", "hold", "exhale", "rest")  # a breathing cycle's phases, in order

_COLUMNS = ("started", "ended", "session_id", "language", "listened_s", "completed", "cycles")

# _MIGRATIONS[v]: the statements that take the plays table from version v to v + 1.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS plays (
            id INTEGER PRIMARY KEY,
            started TEXT NOT NULL CHECK (julianday(started) IS NOT NULL),
            ended TEXT NOT NULL CHECK (julianday(ended) IS NOT NULL),
            session_id TEXT NOT NULL,
            language TEXT NOT NULL,
            listened_s REAL NOT NULL CHECK (listened_s >= 0),
            completed INTEGER NOT NULL CHECK (completed IN (0, 1)),
            cycles INTEGER NOT NULL CHECK (cycles >= 0)
        )""",
    ),
)
assert len(_MIGRATIONS) == SCHEMA_VERSION


class HistoryError(RelaxError):
    """The practice history file could not be read or written."""


@dataclass(frozen=True)
class Play:
    """One `relax play`: when, what, and how much of it was heard."""

    started: datetime  # aware: local time with its UTC offset
    ended: datetime
    session_id: str
    language: str
    listened_s: float  # samples heard / sample rate (pauses excluded)
    completed: bool  # played to its last sample
    cycles: int  # breathing cycles whose last phase the listener reached

    def as_dict(self) -> dict:
        return {
            "started": self.started.isoformat(timespec="seconds"),
            "ended": self.ended.isoformat(timespec="seconds"),
            "session_id": self.session_id,
            "language": self.language,
            "listened_s": round(self.listened_s, 3),
            "completed": self.completed,
            "cycles": self.cycles,
        }


# ---- where things are --------------------------------------------------------------------------


def data_dir() -> Path:
    """The user's data folder for relax: RELAX_DATA_DIR, else platformdirs' user data dir."""
    return fsio.data_dir()


def db_path() -> Path:
    """The history file (shared with the reminders, which use tables named `remind_*`)."""
    return data_dir() / FILE_NAME


def _settings_dir() -> Path:
    return fsio.settings_dir()


def _marker_set(name: str) -> bool:
    # A marker is there when its name is taken, even by a (dangling) symlink: the safe reading of
    # "history-off" is off.
    return os.path.lexists(_settings_dir() / name)


def _set_marker(name: str, present: bool) -> None:
    marker = _settings_dir() / name
    try:
        if present:
            if not os.path.lexists(marker):
                fsio.atomic_write(marker, b"")
        else:
            marker.unlink(missing_ok=True)  # a link is removed, never what it points to
    except fsio.FsError as exc:
        raise HistoryError(f"cannot change the setting: {exc}") from None
    except OSError as exc:
        raise HistoryError(f"cannot change the setting in {marker}: {fsio.describe(exc)}") from None


def recording_on() -> bool:
    """Whether plays are recorded (`relax history --off` turns it off)."""
    return not _marker_set(RECORDING_OFF_MARKER)


def set_recording(on: bool) -> None:
    _set_marker(RECORDING_OFF_MARKER, not on)


def summary_on() -> bool:
    """Whether the player shows today's minutes at the end of a session."""
    return not _marker_set(SUMMARY_OFF_MARKER)


def set_summary(on: bool) -> None:
    _set_marker(SUMMARY_OFF_MARKER, not on)


def streaks_on() -> bool:
    """Whether streaks are shown (`relax history --streaks off` hides them everywhere)."""
    return not _marker_set(STREAKS_OFF_MARKER)


def set_streaks(on: bool) -> None:
    _set_marker(STREAKS_OFF_MARKER, not on)


def day_ends_h() -> int:
    """The hour (0-23, local time) at which a practice day ends: `DAY_ENDS_H` unless set.

    A setting that cannot be read gives the default."""
    try:  # (a FIFO in its place is not waited on; bytes that are no text are no setting)
        text = fsio.read_checked(_settings_dir() / DAY_ENDS_FILE, 64).decode("utf-8").strip()
    except (fsio.FsError, UnicodeDecodeError):
        return DAY_ENDS_H
    return int(text) if text.isdigit() and 0 <= int(text) <= 23 else DAY_ENDS_H


def set_day_ends_h(hour: int) -> None:
    """Practice days end at `hour` (0-23) from now on; `DAY_ENDS_H` removes the setting."""
    if not 0 <= hour <= 23:
        raise ValueError(f"an hour is 0-23, not {hour}")
    from audio_engine import fsio

    path = _settings_dir() / DAY_ENDS_FILE
    try:
        if hour == DAY_ENDS_H:
            path.unlink(missing_ok=True)
        else:
            fsio.atomic_write(path, f"{hour}\n".encode())
    except OSError as exc:
        raise HistoryError(f"cannot change the setting in {path}: {exc.strerror or exc}") from None
    except fsio.FsError as exc:
        raise HistoryError(str(exc)) from None


def local(instant: datetime) -> datetime:
    """An aware `instant` as the system's local time (its zone from TZ or the system's setting),
    with the UTC offset in force at that instant."""
    return instant.astimezone()


def now() -> datetime:
    """The local time now, with its UTC offset."""
    return local(datetime.now(UTC))


# ---- the file ----------------------------------------------------------------------------------


def _reason(exc: BaseException, path: Path) -> str:
    """An sqlite3 or OS error as the short reason a user can act on."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if isinstance(exc, fsio.FsError):
        return text
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return f"{path} is locked by another program (waited {BUSY_TIMEOUT_S:g} s)"
    if name.startswith("SQLITE_FULL") or "full" in text:
        return f"the disk is full ({path})"
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "not a database" in text:
        return f"{path} is damaged ({text}); move it away and relax starts a new one"
    if name.startswith("SQLITE_READONLY"):
        return f"{path} is read-only"
    if isinstance(exc, OSError):
        return f"cannot write {path}: {fsio.describe(exc)}"
    return f"{path}: {text}"


SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")


def refuse_links(path: Path) -> None:
    """Raise `FsError` when the history file or one of SQLite's files beside it is a symbolic
    link: SQLite would write through it, outside relax's folders."""
    for name in (path.name, *(path.name + suffix for suffix in SQLITE_SIDE_FILES)):
        if (path.parent / name).is_symlink():
            raise fsio.FsError(
                f"{path.parent / name} is a symbolic link, which relax does not follow in its "
                "own folders: remove it (relax makes the file again)"
            )


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are begun explicitly), with a busy timeout."""
    refuse_links(path)
    if readonly:
        os.close(fsio.open_private(path, os.O_RDONLY))  # a regular file, not a link or a FIFO
        uri = "file:" + urllib.parse.quote(str(path.absolute())) + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    else:
        fsio.private_dir(path.parent)
        # Made readable by its owner only, never through a link (SQLite gives its journal the
        # same mode); an empty file is an empty database.
        os.close(fsio.open_private(path, os.O_CREAT | os.O_WRONLY))
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    return conn


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the history file (shared with the reminders' statistics): never through
    a symlink, private whatever the umask. Raises `fsio.FsError`, `sqlite3.Error`, `OSError`."""
    return _connect(path, readonly=readonly)


def reason(exc: BaseException, path: Path) -> str:
    """An sqlite3, OS or file error on the history file as the short reason a user can act on."""
    return _reason(exc, path)


@contextlib.contextmanager
def _transaction(path: Path):
    """A write transaction on the history file, migrated to `SCHEMA_VERSION`: committed whole or
    rolled back whole. Errors become `HistoryError`."""
    conn = None
    try:
        conn = _connect(path)
        conn.execute("BEGIN IMMEDIATE")  # the write lock now, so the version read stays true
        try:
            _migrate(conn, path)
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
    except (sqlite3.Error, OSError, fsio.FsError) as exc:
        raise HistoryError(_reason(exc, path)) from None
    finally:
        if conn is not None:
            conn.close()


def _has_plays(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'plays'")
    return row.fetchone() is not None


def _version(conn: sqlite3.Connection, path: Path) -> int:
    """The plays table's schema version; 0 when the file has no plays table yet."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if not _has_plays(conn):
        return 0
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"{path} was written by a newer relax (history version {version}; this relax "
            f"knows up to {SCHEMA_VERSION})"
        )
    return max(version, 1)  # a plays table without a version is the first one


def _migrate(conn: sqlite3.Connection, path: Path) -> None:  # inside a write transaction
    version = _version(conn, path)
    if version == SCHEMA_VERSION:
        return
    for step in _MIGRATIONS[version:]:
        for statement in step:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def record(play: Play, path: Path | None = None) -> None:
    """Add `play` to the history, in one transaction.

    Raises
    ------
    HistoryError
        The file is locked (after `BUSY_TIMEOUT_S`), damaged, on a full disk, or cannot be made;
        nothing was written.
    """
    path = path or db_path()
    row = play.as_dict()
    row["listened_s"] = float(play.listened_s)
    row["completed"] = int(play.completed)
    with _transaction(path) as conn:
        conn.execute(
            f"INSERT INTO plays ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
            [row[c] for c in _COLUMNS],
        )


@contextlib.contextmanager
def _reading(path: Path):
    """A read-only connection, or None when there is no history yet."""
    if not os.path.lexists(path):
        yield None
        return
    conn = None
    try:
        conn = _connect(path, readonly=True)
        conn.execute("BEGIN")  # one snapshot for every query
        if _version(conn, path) == 0:
            yield None
        else:
            yield conn
    except (sqlite3.Error, OSError, fsio.FsError) as exc:
        raise HistoryError(_reason(exc, path)) from None
    finally:
        if conn is not None:
            conn.close()


def plays(
    since: date | None = None, path: Path | None = None, day_ends: int | None = None
) -> list[Play]:
    """Every recorded play, oldest first; with `since`, those on that practice day or later
    (days ending at `day_ends`, default the setting `day_ends_h()`)."""
    path = path or db_path()
    day_ends = day_ends_h() if day_ends is None else day_ends
    with _reading(path) as conn:
        if conn is None:
            return []
        rows = conn.execute(f"SELECT id, {', '.join(_COLUMNS)} FROM plays").fetchall()
    found = []
    for row_id, started, ended, session_id, language, listened, completed, cycles in rows:
        try:
            play = Play(
                datetime.fromisoformat(started),
                datetime.fromisoformat(ended),
                str(session_id),
                str(language),
                float(listened),
                bool(completed),
                int(cycles),
            )
            if play.started.tzinfo is None or play.ended.tzinfo is None:
                raise ValueError("no UTC offset")
        except (TypeError, ValueError) as exc:
            raise HistoryError(f"{path}: row {row_id} is damaged ({exc})") from None
        if since is None or day_of(play, day_ends) >= since:
            found.append(play)
    found.sort(key=lambda p: p.started)
    return found


def count(path: Path | None = None) -> int:
    """How many plays are recorded."""
    path = path or db_path()
    with _reading(path) as conn:
        return 0 if conn is None else int(conn.execute("SELECT count(*) FROM plays").fetchone()[0])


def forget(path: Path | None = None) -> int:
    """Delete every recorded play (the reminders' tables stay); returns how many there were.

    The freed pages are overwritten (`secure_delete`) and the file is compacted (`VACUUM`), so
    the rows are gone from the disk, not just unlinked."""
    path = path or db_path()
    if not path.exists():
        return 0
    with _transaction(path) as conn:
        conn.execute("PRAGMA secure_delete = ON")
        n = int(conn.execute("SELECT count(*) FROM plays").fetchone()[0])
        conn.execute("DELETE FROM plays")
    try:
        with contextlib.closing(_connect(path)) as conn:
            conn.execute("VACUUM")
    except (sqlite3.Error, OSError, fsio.FsError) as exc:
        raise HistoryError(_reason(exc, path)) from None
    return n


# ---- one play ----------------------------------------------------------------------------------


class Recording:
    """One play being recorded: started when made, written once by `finish`.

    Example
    -------
    >>> recording = Recording("breathing-478", "en")
    >>> heard = []                        # filled by the player
    >>> recording.finish(timeline, heard, completed=True)
    Play(started=..., listened_s=184.2, completed=True, cycles=8)
    """

    def __init__(
        self,
        session_id: str,
        language: str,
        *,
        path: Path | None = None,
        clock: Callable[[], datetime] = now,
        warn: Callable[[str], None] | None = None,
    ):
        self.session_id = session_id
        self.language = language
        self.path = path
        self.clock = clock
        self.warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
        self.started = clock()
        self.play: Play | None = None
        self._finished = False

    def finish(self, timeline, heard: Sequence[tuple[int, int]], completed: bool) -> Play | None:
        """Write the row (the first call only); the `Play`, or None when it was not written (one
        line on stderr says what and why) or recording was turned off meanwhile."""
        if self._finished:
            return self.play
        self._finished = True
        if not recording_on():
            return None
        play = Play(
            self.started,
            self.clock(),
            self.session_id,
            self.language,
            listened_s(heard, timeline.sample_rate),
            bool(completed),
            cycles_reached(timeline.events, heard),
        )
        try:
            record(play, self.path)
        except HistoryError as exc:
            self.warn(
                f"relax: this play was not recorded in your history ({play.session_id}, "
                f"{clock_text(play.listened_s)} listened): {exc}"
            )
            return None
        self.play = play
        return play


def start(session_id: str, language: str, **options) -> Recording | None:
    """A `Recording` of a play starting now, or None when recording is off."""
    return Recording(session_id, language, **options) if recording_on() else None


# ---- pure: what was heard ----------------------------------------------------------------------


def _merged(heard: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """`heard`'s ranges sorted, with overlapping or touching ones joined (each sample once)."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted((int(s), int(e)) for s, e in heard if e > s):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def listened_s(heard: Iterable[tuple[int, int]], sample_rate: int) -> float:
    """Seconds heard: the samples in `heard`'s (start, end) ranges, each counted once, divided by
    `sample_rate`. The player's ranges leave pauses out, so pauses add nothing."""
    return sum(end - start for start, end in _merged(heard)) / sample_rate


def _cycles(events) -> list[tuple[int, int]]:
    """Each breathing cycle's last phase as (start, end) samples.

    A cycle is a run of phase events, each starting where the one before ends, in the order
    inhale, hold, exhale, rest (any of them may be absent)."""
    last: list[tuple[int, int]] = []
    previous = None  # (kind index, end sample) of the phase before
    for event in events:
        if event.kind not in PHASE_ORDER:
            continue
        index = PHASE_ORDER.index(event.kind)
        joins = previous is not None and event.start_sample == previous[1] and index > previous[0]
        if joins:
            last[-1] = (event.start_sample, event.end_sample)
        else:
            last.append((event.start_sample, event.end_sample))
        previous = (index, event.end_sample)
    return last


def cycles_reached(events, heard: Iterable[tuple[int, int]]) -> int:
    """How many breathing cycles of `events` (a timeline's) the listener got through: those whose
    last phase's first sample lies in one of the `heard` (start, end) ranges."""
    ranges = _merged(heard)
    starts = [s for s, _end in ranges]
    done = 0
    for first, _last in _cycles(events):
        i = bisect.bisect_right(starts, first) - 1
        if i >= 0 and ranges[i][1] > first:
            done += 1
    return done


# ---- pure: days and streaks --------------------------------------------------------------------


@dataclass(frozen=True)
class Streaks:
    current_days: int  # consecutive practice days up to today (or yesterday, today not yet done)
    longest_days: int


@dataclass(frozen=True)
class Summary:
    today: date
    today_s: float
    today_sessions: int
    week_start: date  # the Monday of this week
    week_s: float
    week_sessions: int
    streaks: Streaks


def practice_day(moment: datetime, day_ends: int = DAY_ENDS_H) -> date:
    """The practice day of a local `moment`: its date, or the date before when the clock says
    earlier than `day_ends` o'clock (wall-clock time, so a DST change moves nothing)."""
    day = moment.date()
    return day - timedelta(days=1) if moment.hour < day_ends else day


def day_of(play: Play, day_ends: int = DAY_ENDS_H) -> date:
    """The practice day a play counts for: the one on the listener's clock when it started."""
    return practice_day(play.started, day_ends)


def today(clock: Callable[[], datetime] = now, day_ends: int | None = None) -> date:
    """The practice day it is now (until `day_ends` o'clock, default the setting, yesterday)."""
    return practice_day(clock(), day_ends_h() if day_ends is None else day_ends)


def practice_days(played: Iterable[Play], day_ends: int = DAY_ENDS_H) -> set[date]:
    """Days that count for a streak: `DAY_MIN_S` listened in all, or a session completed."""
    seconds: dict[date, float] = {}
    completed: set[date] = set()
    for play in played:
        day = day_of(play, day_ends)
        seconds[day] = seconds.get(day, 0.0) + play.listened_s
        if play.completed:
            completed.add(day)
    return {day for day, s in seconds.items() if s >= DAY_MIN_S} | completed


def streaks(days: Iterable[date], today: date) -> Streaks:
    """The current and the longest run of consecutive calendar dates in `days`.

    The current run ends today, or yesterday while today has no practice yet (a streak lasts
    until the day is over); days after `today` count only for the longest."""
    ordered = sorted(set(days))
    longest = run = 0
    previous = None
    for day in ordered:
        run = run + 1 if previous is not None and day - previous == timedelta(days=1) else 1
        longest = max(longest, run)
        previous = day
    present = set(ordered)
    end = today if today in present else today - timedelta(days=1)
    current = 0
    while end in present:
        current += 1
        end -= timedelta(days=1)
    return Streaks(current, longest)


def summary(played: Sequence[Play], today: date, day_ends: int = DAY_ENDS_H) -> Summary:
    """Today's and this week's (Monday to Sunday) minutes and sessions, and the streaks."""
    week_start = today - timedelta(days=today.weekday())
    week_end = week_start + timedelta(days=7)
    on_today = [p for p in played if day_of(p, day_ends) == today]
    this_week = [p for p in played if week_start <= day_of(p, day_ends) < week_end]
    return Summary(
        today=today,
        today_s=sum(p.listened_s for p in on_today),
        today_sessions=len(on_today),
        week_start=week_start,
        week_s=sum(p.listened_s for p in this_week),
        week_sessions=len(this_week),
        streaks=streaks(practice_days(played, day_ends), today),
    )


def minutes_per_day(played: Sequence[Play], last: date, days: int, day_ends: int = DAY_ENDS_H):
    """[(day, seconds listened)] for the `days` practice days up to and including `last`."""
    first = last - timedelta(days=days - 1)
    seconds = {first + timedelta(days=k): 0.0 for k in range(days)}
    for play in played:
        day = day_of(play, day_ends)
        if day in seconds:
            seconds[day] += play.listened_s
    return sorted(seconds.items())


def minutes_text(seconds: float) -> str:
    """`12 min` (rounded; half a minute rounds up), `under 1 min` for less than 30 s; in the
    interface language."""
    minutes = int(seconds / 60 + 0.5)
    if minutes >= 1 or seconds <= 0:
        return _("{minutes} min").format(minutes=minutes)
    return _("under 1 min")


def clock_text(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


def weekday_name(day: date) -> str:
    """The name of `day`'s weekday in the interface language."""
    names = (
        _("Monday"),
        _("Tuesday"),
        _("Wednesday"),
        _("Thursday"),
        _("Friday"),
        _("Saturday"),
        _("Sunday"),
    )
    return names[day.weekday()]


def weekday_short(day: date) -> str:
    """The short name of `day`'s weekday in the interface language (`Mon`; `ma` in Dutch)."""
    names = (_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun"))
    return names[day.weekday()]


def end_text(
    play: Play,
    played: Sequence[Play],
    today: date,
    day_ends: int = DAY_ENDS_H,
    show_streak: bool = True,
) -> str:
    """What the player shows at the end of `play`: its day's minutes, and the streak from 2 days
    (unless `show_streak` is False), in the interface language.

    `played` is the whole history (with `play` in it). A session that started before the day
    ended (`day_ends` o'clock) counts for the day it started, which is then named instead of
    "Today"."""
    day = day_of(play, day_ends)
    seconds = sum(p.listened_s for p in played if day_of(p, day_ends) == day)
    if day == today:
        text = _("Today: {minutes} of practice").format(minutes=minutes_text(seconds))
    else:
        text = _("{weekday}: {minutes} of practice").format(
            weekday=weekday_name(day), minutes=minutes_text(seconds)
        )
    current = streaks(practice_days(played, day_ends), today).current_days
    if show_streak and current >= 2:
        text += " · " + ngettext("{n} day in a row", "{n} days in a row", current).format(n=current)
    return text


def end_text_for(play: Play | None, path: Path | None = None, clock=now) -> str | None:
    """`end_text` for a just-recorded `play` from the history file, with the settings (when a
    day ends, whether streaks show); None when the file cannot be read."""
    if play is None:
        return None
    day_ends = day_ends_h()
    try:
        played = plays(path=path, day_ends=day_ends)
    except HistoryError:
        return None  # the reason was given when the play was (not) recorded
    return end_text(play, played, today(clock, day_ends), day_ends, streaks_on())


__all__ = [
    "BUSY_TIMEOUT_S",
    "SCHEMA_VERSION",
    "HistoryError",
    "Play",
    "Recording",
    "Streaks",
    "Summary",
    "count",
    "cycles_reached",
    "data_dir",
    "day_ends_h",
    "day_of",
    "db_path",
    "end_text",
    "end_text_for",
    "forget",
    "listened_s",
    "minutes_per_day",
    "practice_day",
    "local",
    "now",
    "plays",
    "practice_days",
    "record",
    "recording_on",
    "set_day_ends_h",
    "set_recording",
    "set_streaks",
    "set_summary",
    "start",
    "streaks",
    "streaks_on",
    "summary",
    "summary_on",
    "today",
]
