"""The practice history end to end: `relax play` through the real mixer (SDL's disk driver)
records one row however the play ends (to the end, q, Ctrl-C, SIGTERM, SIGHUP), with the samples heard
and the cycles done; when the file is damaged, locked, full or written by two plays at once the
session still plays and at most one line says what was not recorded; `relax history` lists,
exports, stops, resumes and forgets; the window shows today's minutes at the end."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import pty
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pygame
import pytest

from audio_engine import history, pipeline, player
from audio_engine.history import Play
from audio_engine.player import app, keys, pacer
from tests._disk_player import disk_stream

RATE = 44100
ROOT = Path(__file__).resolve().parent.parent
AMSTERDAM_RULE = "CET-1CEST,M3.5.0,M10.5.0/3"  # POSIX TZ: needs no zone files

TINY = """\
format: 1
id: tiny
title: History test
language: en
voice: {rate: 220}
background:
  - drone: {frequency: 110, volume: 0.05, fade_in: 0.02, fade_out: 0.02}
steps:
  - section: Breathe
  - breathe: {inhale: 0.5, hold: 0.25, exhale: 0.5, cycles: 3, guide_tone: true, cues: {inhale: "", hold: "", exhale: ""}}
  - section: End
  - say: Good.
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny session's script, prepared (real speech) and its gain."""
    folder = tmp_path_factory.mktemp("history")
    path = folder / "tiny.yaml"
    path.write_text(TINY)
    prepared = pipeline.prepare(pipeline.load(str(path)))
    return path, prepared, pipeline.gain(prepared)


@pytest.fixture
def home(tmp_path):
    """A data folder and a settings folder of this test's own (the safety pointer already seen)."""
    data, settings = tmp_path / "data", tmp_path / "settings"
    settings.mkdir()
    (settings / "safety-pointer-shown").write_text("shown\n")
    return data, settings


def _env(home, raw=None, **extra):
    data, settings = home
    env = dict(os.environ, RELAX_DATA_DIR=str(data), RELAX_SETTINGS_DIR=str(settings), **extra)
    env.pop("RELAX_FALLBACK_EXPORT", None)
    env["SDL_AUDIODRIVER"] = "disk"
    if raw is not None:
        env["SDL_DISKAUDIOFILE"] = str(raw)
    return env


def _relax(*args):
    return [sys.executable, "-m", "audio_engine", *args]


def _play(path, home, raw, *options, **popen):
    return subprocess.Popen(
        _relax("play", str(path), "--no-window", *options),
        env=_env(home, raw, TZ=AMSTERDAM_RULE),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        **popen,
    )


def _history(home, *args, **run):
    return subprocess.run(
        _relax("history", *args),
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        **run,
    )


def _rows(home):
    return history.plays(path=home[0] / history.FILE_NAME)


def _sounding(raw):
    """(first, last) sounding sample in what the disk driver wrote."""
    written = np.fromfile(raw, dtype="<i2").reshape(-1, 2)
    sounding = np.flatnonzero(written.any(axis=1))
    return int(sounding[0]), int(sounding[-1])


# ---- what a play records -----------------------------------------------------------------------


def test_a_play_records_one_row_with_local_times_seconds_heard_and_cycles(tiny, home, tmp_path):
    path, prepared, _ = tiny
    total = prepared.timeline.total_samples
    proc = _play(path, home, tmp_path / "a.raw")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    (play,) = _rows(home)
    assert (play.session_id, play.language, play.completed, play.cycles) == ("tiny", "en", True, 3)
    assert play.listened_s == total / RATE  # every sample, once
    expected = ZoneInfo("Europe/Amsterdam").utcoffset(play.started.replace(tzinfo=None))
    assert play.started.utcoffset() == play.ended.utcoffset() == expected  # TZ, not UTC
    assert total / RATE - 0.2 <= (play.ended - play.started).total_seconds() <= total / RATE + 5
    # Its day's minutes at the end: one line, the last.
    assert err.strip().splitlines()[-1] == "Today: under 1 min of practice"

    # --no-summary hides it once, `relax history --summary off` for good; still recorded.
    proc = _play(path, home, tmp_path / "b.raw", "--no-summary")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "Today" not in err, err
    done = _history(home, "--summary", "off")
    assert done.returncode == 0 and "no longer shows" in done.stdout
    proc = _play(path, home, tmp_path / "c.raw")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "Today" not in err, err
    assert _history(home, "--summary", "on").returncode == 0
    assert [p.completed for p in _rows(home)] == [True, True, True]


def test_a_dutch_session_ends_with_a_dutch_summary_line(tmp_path, home):
    path = tmp_path / "kort.yaml"
    path.write_text(TINY.replace("language: en", "language: nl").replace("Good.", "Goed."))
    proc = _play(path, home, tmp_path / "nl.raw")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert err.strip().splitlines()[-1] == "Vandaag: minder dan 1 min geoefend"


def _start_on_a_terminal(path, home, raw):
    master, slave = pty.openpty()
    proc = _play(path, home, raw, stdin=slave)
    os.close(slave)
    return proc, master


def _wait_for_sound(raw, proc, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if raw.exists() and np.fromfile(raw, dtype="<i2").any():
            return
        time.sleep(0.01)
    raise AssertionError("no sound reached the device")


@pytest.mark.parametrize("how", ["q", "ctrl-c", "sigterm", "sighup"])
def test_a_play_that_is_stopped_records_what_was_heard(tiny, home, tmp_path, how):
    path, prepared, _ = tiny
    raw = tmp_path / "stop.raw"
    proc, master = _start_on_a_terminal(path, home, raw)
    try:
        _wait_for_sound(raw, proc)
        time.sleep(1.6)  # into the second cycle
        {
            "q": lambda: os.write(master, b"q"),
            "ctrl-c": lambda: proc.send_signal(signal.SIGINT),
            "sigterm": lambda: proc.send_signal(signal.SIGTERM),
            "sighup": lambda: proc.send_signal(signal.SIGHUP),  # the terminal closed
        }[how]()
        _, err = proc.communicate(timeout=30)
    finally:
        os.close(master)
    assert proc.returncode == {"q": 0, "ctrl-c": 130, "sigterm": 143, "sighup": 129}[how], err
    assert "Traceback" not in err and "Today" not in err and "not recorded" not in err
    (play,) = _rows(home)
    assert play.completed is False
    # What the device wrote between the first and the last sounding sample was heard.
    first, last = _sounding(raw)
    assert abs(play.listened_s - (last - first) / RATE) < 0.25
    assert 1.0 < play.listened_s < prepared.timeline.total_samples / RATE - 0.5
    # Cycles of 1.25 s, each done when its exhale (from 0.75 s into it) is reached.
    assert play.cycles == int((play.listened_s - 0.75) // 1.25) + 1
    assert 1 <= play.cycles < 3


# ---- heard samples in the player (in process) --------------------------------------------------


def _play_in_process(prepared, gain, raw, during):
    with disk_stream(raw, prepared.timeline, prepared.sources, gain) as stream:
        controller = player.Controller(stream)
        stream.start_feeder()
        during(stream, controller)
        deadline = time.monotonic() + 30
        while not stream.finished and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stream.finished and stream.error is None
    return stream


def _wait_until(stream, sample):
    deadline = time.monotonic() + 20
    while stream.position_sample() < sample:
        assert time.monotonic() < deadline
        time.sleep(0.002)


def test_a_pause_adds_nothing_heard(tiny, tmp_path):
    _, prepared, gain = tiny
    total = prepared.timeline.total_samples

    def pause_a_while(stream, controller):
        _wait_until(stream, RATE)
        controller.handle(keys.PAUSE)
        time.sleep(1.0)
        controller.handle(keys.PAUSE)

    stream = _play_in_process(prepared, gain, tmp_path / "p.raw", pause_a_while)
    # It did pause: the device wrote silence inside the session, whose drone never stops (the
    # disk driver, on a busy machine, writes a 1 s pause as 0.7 s of silence or more).
    written = np.fromfile(tmp_path / "p.raw", dtype="<i2").reshape(-1, 2)
    sounding = np.flatnonzero(written.any(axis=1))
    assert np.diff(sounding).max() > 0.4 * RATE
    assert stream.heard == [(0, total)]
    assert history.listened_s(stream.heard, RATE) == total / RATE
    assert history.cycles_reached(prepared.timeline.events, stream.heard) == 3


def test_a_skip_leaves_out_what_was_skipped(tiny, tmp_path):
    _, prepared, gain = tiny
    timeline = prepared.timeline
    end_section = timeline.chapters[1].start_sample

    def skip_ahead(stream, controller):
        _wait_until(stream, int(0.3 * RATE))
        controller.handle(keys.NEXT)

    stream = _play_in_process(prepared, gain, tmp_path / "s.raw", skip_ahead)
    (a, b), (c, d) = stream.heard
    assert a == 0 and b < end_section and (c, d) == (end_section, timeline.total_samples)
    assert history.listened_s(stream.heard, RATE) == (b + d - c) / RATE
    # The skip came before the first exhale (0.75 s in): no cycle done.
    assert b < int(0.75 * RATE)
    assert history.cycles_reached(timeline.events, stream.heard) == 0


# ---- trouble with the file ---------------------------------------------------------------------


def _one_line(err):
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    return lines[0]


def _played_whole(raw, prepared):
    first, last = _sounding(raw)
    assert last - first > prepared.timeline.total_samples - RATE // 4, "the session did not play"


def test_two_plays_at_once_are_both_recorded(tiny, home, tmp_path):
    path, prepared, _ = tiny
    procs = [_play(path, home, tmp_path / f"{k}.raw") for k in range(2)]  # no file yet
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "not recorded" not in err
    played = _rows(home)
    assert len(played) == 2 and all(p.completed and p.cycles == 3 for p in played)


def test_a_damaged_file_costs_one_line_and_the_session_plays(tiny, home, tmp_path):
    path, prepared, _ = tiny
    home[0].mkdir()
    db = home[0] / history.FILE_NAME
    garbage = b"this is not SQLite at all\n" * 400
    db.write_bytes(garbage)
    raw = tmp_path / "g.raw"
    proc = _play(path, home, raw)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    _played_whole(raw, prepared)
    line = _one_line(err)
    assert line.startswith("relax: this play was not recorded in your history (tiny, 0:0")
    assert f"{db} is damaged" in line and "move it away" in line
    assert db.read_bytes() == garbage
    done = _history(home)
    assert done.returncode == 1 and f"{db} is damaged" in _one_line(done.stderr)


_HOLDER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    sys.stdout.write("locked\\n"); sys.stdout.flush()
    sys.stdin.readline()
    """
)


def test_a_locked_file_costs_one_line_after_the_busy_timeout(tiny, home, tmp_path):
    path, prepared, _ = tiny
    db = home[0] / history.FILE_NAME
    history.record(Play(history.now(), history.now(), "before", "en", 1.0, False, 0), db)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        raw = tmp_path / "l.raw"
        began = time.monotonic()
        proc = _play(path, home, raw)
        _, err = proc.communicate(timeout=120)
        took = time.monotonic() - began
    finally:
        holder.communicate("done\n", timeout=30)
    assert proc.returncode == 0, err
    _played_whole(raw, prepared)
    line = _one_line(err)
    assert line.endswith(f"{db} is locked by another program (waited 3 s)"), line
    assert took > prepared.timeline.total_samples / RATE + history.BUSY_TIMEOUT_S
    assert [p.session_id for p in _rows(home)] == ["before"]


_FULL = textwrap.dedent(
    """
    import sys
    from audio_engine import history
    from audio_engine.cli import main
    connect = history._connect
    def limited(path, **options):  # SQLite's own limit: a full disk for this file
        conn = connect(path, **options)
        conn.execute(f"PRAGMA max_page_count = {int(sys.argv[1])}")
        return conn
    history._connect = limited
    sys.exit(main(sys.argv[2:]))
    """
)


def test_a_full_disk_costs_one_line_and_writes_nothing(tiny, home, tmp_path, monkeypatch):
    path, prepared, _ = tiny
    db = home[0] / history.FILE_NAME
    history.record(Play(history.now(), history.now(), "tiny", "en", 1.0, False, 0), db)
    with sqlite3.connect(db) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    connect = history._connect

    def limited(p, **options):
        conn = connect(p, **options)
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    monkeypatch.setattr(history, "_connect", limited)
    with pytest.raises(history.HistoryError, match="disk is full"):
        for _ in range(1000):  # fill the last page with rows like the play's
            history.record(Play(history.now(), history.now(), "tiny", "en", 1.0, False, 0), db)
    kept = db.read_bytes()
    count = len(_rows(home))
    raw = tmp_path / "f.raw"
    env = _env(home, raw, TZ=AMSTERDAM_RULE)
    done = subprocess.run(
        [sys.executable, "-c", _FULL, str(pages), "play", str(path), "--no-window"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    _played_whole(raw, prepared)
    line = _one_line(done.stderr)
    assert line.endswith(f"the disk is full ({db})") and "(tiny, 0:0" in line, line
    assert len(_rows(home)) == count and db.read_bytes() == kept
    assert not db.with_name(db.name + "-journal").exists()


# ---- relax history -----------------------------------------------------------------------------


def _seed(home):
    """Plays today, yesterday, the day before and 5 days ago (local time), oldest first."""
    db = home[0] / history.FILE_NAME
    now = history.now().replace(microsecond=0)
    today = now.replace(hour=8, minute=0, second=0)
    seeded = []
    for days_ago, minutes, completed in ((5, 12, True), (2, 3, False), (1, 10, True), (0, 6, True)):
        start = history.local(today - timedelta(days=days_ago))
        play = Play(
            start, start + timedelta(minutes=minutes), "breathing-478", "en", minutes * 60.0,
            completed, 4,
        )  # fmt: skip
        history.record(play, db)
        seeded.append(play)
    return seeded


def test_history_lists_totals_and_streaks(home):
    seeded = _seed(home)
    done = _history(home)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "4 sessions:"
    assert "breathing-478  en" in lines[1] and "6:00  completed  4 cycles" in lines[1]
    assert "3:00  stopped    4 cycles" in lines[3]
    today = seeded[-1].started.date()
    week = [p for p in seeded if p.started.date() >= today - timedelta(days=today.weekday())]
    assert "Today:     6 min in 1 session" in lines
    week_min = sum(p.listened_s for p in week) / 60
    assert f"This week: {week_min:.0f} min in {len(week)} session" in done.stdout
    assert "Streak:    3 days (longest 3 days)" in lines
    assert _history(home, "--limit", "2").stdout.splitlines()[0] == "The last 2 of 4 sessions:"
    assert _history(home, "--limit", "0").stdout.splitlines()[0] == "4 sessions:"


def test_history_speaks_the_interface_language(home):
    # Every word of the listing in Dutch, the minutes too (before, "Today:" and "in 1 session"
    # stayed English around Dutch minutes); the columns still line up.
    _seed(home)
    dutch = dict(_env(home), LANGUAGE="nl", LC_ALL="nl_NL.UTF-8")  # the system locale's language
    done = subprocess.run(_relax("history"), env=dutch, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "4 sessies:"
    assert "6:00  voltooid  4 cycli" in lines[1] and "3:00  gestopt   4 cycli" in lines[3]
    assert lines[1].index("breathing-478") == lines[3].index("breathing-478")
    assert lines[1].split()[0] in ("ma", "di", "wo", "do", "vr", "za", "zo"), lines[1]
    assert "Vandaag:   6 min in 1 sessie" in lines
    assert any(line.startswith("Deze week: ") and "(sinds maandag " in line for line in lines)
    assert "Reeks:     3 dagen (langste 3 dagen)" in lines
    assert not any(w in done.stdout for w in ("Today", "session", "completed", "longest"))
    off = subprocess.run(
        _relax("--ui-language", "nl", "history", "--off"),
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert off.stdout.startswith("Bijhouden staat uit: ") and "de 4 bijgehouden sessies" in (
        off.stdout
    )


def test_streaks_can_be_hidden_everywhere_and_the_day_end_set(home):
    _seed(home)
    done = _history(home, "--streaks", "off")
    assert done.returncode == 0 and "hidden" in done.stdout, done.stderr
    text = _history(home).stdout
    assert "Today:" in text and "Streak" not in text
    assert "streak" not in json.loads(_history(home, "--json").stdout)
    assert _history(home, "--streaks", "on").returncode == 0
    assert "Streak:    3 days" in _history(home).stdout
    assert json.loads(_history(home, "--json").stdout)["day_ends_h"] == 4
    assert _history(home, "--day-ends", "0").returncode == 0
    assert json.loads(_history(home, "--json").stdout)["day_ends_h"] == 0
    for bad in ("24", "-1", "four"):
        done = _history(home, "--day-ends", bad)
        assert done.returncode == 2 and "not an hour" in done.stderr, done.stderr


def test_history_exports_json_and_csv_and_filters_by_date(home):
    seeded = _seed(home)
    data = json.loads(_history(home, "--json").stdout)
    assert data["plays"] == [p.as_dict() for p in seeded]
    assert data["streak"] == {"current_days": 3, "longest_days": 3}
    assert data["today"]["listened_s"] == 360.0 and data["recording"] is True
    since = seeded[1].started.date()
    data = json.loads(_history(home, "--json", "--since", since.isoformat()).stdout)
    assert [p["started"] for p in data["plays"]] == [p.as_dict()["started"] for p in seeded[1:]]
    assert data["streak"]["longest_days"] == 3  # totals and streaks: the whole history
    rows = list(csv.DictReader(io.StringIO(_history(home, "--csv").stdout)))
    assert len(rows) == 4
    assert rows[0] == {
        "started": seeded[0].started.isoformat(),
        "ended": seeded[0].ended.isoformat(),
        "session_id": "breathing-478",
        "language": "en",
        "listened_s": "720.0",
        "completed": "1",
        "cycles": "4",
    }
    assert "+" in rows[0]["started"][19:] or "-" in rows[0]["started"][19:]  # with its offset
    text = _history(home, "--since", since.isoformat())
    assert text.stdout.splitlines()[0] == f"Sessions since {since.isoformat()}: 3"
    for bad in (["--since", "yesterday"], ["--since", "2026-13-01"], ["--limit", "-1"]):
        done = _history(home, *bad)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.splitlines()[0].startswith("relax history: error: argument")
    done = _history(home, "--off", "--since", "2026-01-01")
    assert done.returncode == 2 and "--since and --limit go with the listing" in done.stderr


def test_off_stops_recording_and_on_resumes(tiny, home, tmp_path):
    path, _, _ = tiny
    done = _history(home, "--off")
    assert done.returncode == 0 and "Recording is off" in done.stdout
    proc = _play(path, home, tmp_path / "off.raw")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "Today" not in err, err
    assert not (home[0] / history.FILE_NAME).exists()  # not even the file
    assert _history(home).stdout.startswith("Recording is off")
    assert json.loads(_history(home, "--json").stdout)["recording"] is False
    assert _history(home, "--on").returncode == 0
    proc = _play(path, home, tmp_path / "on.raw")
    assert proc.communicate(timeout=120) and proc.returncode == 0
    assert len(_rows(home)) == 1


def test_forget_asks_first_and_refuses_without_a_terminal(home):
    _seed(home)
    done = _history(home, "--forget", stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "run it in a terminal, or add --yes" in done.stderr
    assert len(_rows(home)) == 4
    for answer, code, left in ((b"n\n", 1, 4), (b"y\n", 0, 0)):
        master, slave = pty.openpty()
        proc = subprocess.Popen(
            _relax("history", "--forget"),
            env=_env(home),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=ROOT,
        )
        os.close(slave)
        seen = b""
        while b"[y/N]" not in seen:
            seen += os.read(master, 1024)
        assert b"Delete all 4 recorded sessions from" in seen
        os.write(master, answer)
        assert proc.wait(timeout=30) == code
        os.close(master)
        assert len(_rows(home)) == left
    _seed(home)
    done = _history(home, "--forget", "--yes", stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and "Deleted 4 recorded sessions" in done.stdout
    assert _rows(home) == []
    assert _history(home, "--yes").returncode == 2


# ---- the window at the end ---------------------------------------------------------------------


def test_the_window_shows_the_end_text_in_the_caption(tiny, tmp_path, monkeypatch):
    _, prepared, gain = tiny
    monkeypatch.setattr(app, "END_TEXT_S", 0.6)
    os.environ["SDL_DISKAUDIOFILE"] = str(tmp_path / "w.raw")
    pygame.mixer.quit()
    frames = []  # the last frame drawn
    draw = pacer.draw

    def keep(surface, state):
        draw(surface, state)
        frames[:] = [(state, surface.copy())]

    monkeypatch.setattr(pacer, "draw", keep)
    asked = []

    def end_text():
        asked.append(time.monotonic())
        return "Today: 12 min of practice"

    result = player.play(prepared, gain, window=True, end_text=end_text, stdin=io.StringIO())
    assert result == "end" and len(asked) == 1  # once, at the end
    assert time.monotonic() - asked[0] >= 0.55  # shown for END_TEXT_S
    state, last = frames[-1]
    assert state.caption == "Today: 12 min of practice" and state.phase is None
    pygame.image.save(last, str(tmp_path / "end.png"))
    # Text pixels in the caption's box, none in a frame without the text.
    plain = pygame.Surface(last.get_size())
    draw(plain, dataclasses.replace(state, caption=""))
    x, y, w, h = pacer.layout(last.get_size()).caption_box
    band = (slice(x, x + w), slice(y, y + h))
    with_text = pygame.surfarray.array3d(last)[band]
    without = pygame.surfarray.array3d(plain)[band]
    bright = lambda a: int((a.min(axis=2) > 180).sum())  # noqa: E731 - near-white text
    assert bright(with_text) > 200 and bright(without) == 0
