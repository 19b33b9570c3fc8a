"""The break schedule on a clock the test controls: active time, idle, suspend, snooze, hours."""

from __future__ import annotations

import datetime as dt

import pytest

from audio_engine.remind import schedule as sch
from audio_engine.remind.schedule import Config, Observation, Scheduler

MONDAY_9 = dt.datetime(2026, 11, 30, 9, 0)  # a Monday
assert MONDAY_9.weekday() == 0


class Clock:
    """Drives a Scheduler: monotonic and wall time move together unless a test says otherwise."""

    def __init__(self, config: Config | None = None, start: dt.datetime = MONDAY_9):
        self.sched = Scheduler(config or Config())
        self.mono = 1000.0
        self.wall = start
        self.idle = 0.0
        self.locked = False
        self.busy = None
        self.actions: list = []
        self.tick()

    def tick(self):
        out = self.sched.tick(Observation(self.mono, self.wall, self.idle, self.locked, self.busy))
        self.actions.extend(out)
        return out

    def run(self, seconds: float, step: float = 5.0, idle: bool = False):
        """Let `seconds` pass in steps; with `idle`, no input at all (idle time grows)."""
        out = []
        left = seconds
        while left > 1e-9:
            d = min(step, left)
            self.mono += d
            self.wall += dt.timedelta(seconds=d)
            self.idle = self.idle + d if idle else 0.0
            out += self.tick()
            left -= d
        return out

    def answer(self, choice):
        out = self.sched.answer(choice)
        self.actions.extend(out)
        return out

    def shows(self, actions=None):
        return [
            a.reminder
            for a in (self.actions if actions is None else actions)
            if isinstance(a, sch.Show)
        ]

    def records(self, event=None, kind=sch.BREAK):
        return [
            a
            for a in self.actions
            if isinstance(a, sch.Record) and a.kind == kind and (event is None or a.event == event)
        ]


def test_break_is_due_after_45_minutes_of_activity_not_before():
    c = Clock()
    assert c.shows(c.run(45 * 60 - 5)) == []
    shown = c.shows(c.run(5))
    assert len(shown) == 1 and shown[0].kind == sch.BREAK and shown[0].can_snooze
    assert len(c.records(sch.DUE)) == 1


def test_short_idle_stretches_count_as_sitting():
    c = Clock(Config(every_s=30 * 60))
    for _ in range(6):  # 6 x (1 min active + 4 min reading without input) = 30 min
        c.run(60)
        c.run(4 * 60 - 5, idle=True)
        c.run(5)
    assert len(c.shows()) == 1
    assert c.records(sch.NATURAL) == []


def test_five_minutes_idle_is_a_natural_break_and_resets_the_count():
    c = Clock(Config(every_s=30 * 60))
    c.run(29 * 60)
    c.run(5 * 60, idle=True)
    natural = c.records(sch.NATURAL)
    assert len(natural) == 1 and natural[0].detail == "idle"
    c.run(29 * 60)  # 29 minutes after coming back: nothing yet
    assert c.shows() == []
    c.run(60)
    assert len(c.shows()) == 1


def test_idle_just_under_the_threshold_is_not_a_break():
    c = Clock(Config(every_s=30 * 60))
    c.run(20 * 60)
    c.run(5 * 60 - 5, idle=True)
    c.run(5 * 60 + 5)
    assert c.records(sch.NATURAL) == []
    assert len(c.shows()) == 1  # 20 + 5 + 5 = 30 minutes of sitting


def test_a_long_idle_stretch_counts_once():
    c = Clock()
    c.run(10 * 60)
    c.run(40 * 60, idle=True)
    assert len(c.records(sch.NATURAL)) == 1


def test_screen_locked_is_a_natural_break():
    c = Clock()
    c.run(30 * 60)
    c.locked = True
    c.run(5)
    assert [r.detail for r in c.records(sch.NATURAL)] == ["locked"]
    assert c.sched.active_s == 0


def test_suspend_seen_as_wall_time_jumping_ahead_of_monotonic_time():
    c = Clock()
    c.run(40 * 60)
    c.wall += dt.timedelta(hours=1)  # asleep: monotonic time stood still
    c.run(5)
    assert [r.detail for r in c.records(sch.NATURAL)] == ["asleep"]
    assert c.sched.active_s == pytest.approx(0, abs=5)
    c.run(40 * 60)
    assert c.shows() == []


def test_suspend_seen_as_a_monotonic_gap_where_monotonic_time_runs_on():
    c = Clock()
    c.run(40 * 60)
    c.mono += 3600  # Windows: monotonic time counts sleep; we saw nothing for an hour
    c.wall += dt.timedelta(hours=1)
    c.run(5)
    assert [r.detail for r in c.records(sch.NATURAL)] == ["asleep"]


def test_a_short_suspend_is_not_counted_as_active_nor_as_a_break():
    c = Clock()
    c.run(10 * 60)
    c.wall += dt.timedelta(minutes=2)
    c.run(5)
    assert c.records(sch.NATURAL) == []
    assert c.sched.active_s == pytest.approx(10 * 60, abs=1)


def test_small_clock_adjustments_are_not_suspends():
    c = Clock()
    c.run(10 * 60)
    c.wall += dt.timedelta(seconds=20)
    c.run(5)
    assert c.records(sch.NATURAL) == []
    assert c.sched.active_s == pytest.approx(10 * 60 + 5)


def test_snooze_asks_again_after_ten_active_minutes_at_most_twice_in_a_row():
    c = Clock()
    c.run(45 * 60)
    assert c.shows()[-1].can_snooze
    c.answer("snooze")
    assert c.shows(c.run(10 * 60 - 5)) == []
    again = c.shows(c.run(5))
    assert len(again) == 1 and again[0].can_snooze and again[0].snoozes == 1
    c.answer("snooze")
    third = c.shows(c.run(10 * 60))
    assert len(third) == 1 and not third[0].can_snooze
    assert third[0].body(c.sched.config).startswith("You have been at it for 65 minutes:")
    c.answer("snooze")  # not offered any more: counts as a skip
    assert len(c.records(sch.SNOOZED)) == 2
    assert len(c.records(sch.SKIPPED)) == 1
    assert len(c.records(sch.DUE)) == 1  # one break, however often it was put off
    # After the skip the count starts again, and so do the snoozes.
    fresh = c.shows(c.run(45 * 60))
    assert len(fresh) == 1 and fresh[0].can_snooze


def test_snooze_length_is_configurable():
    c = Clock(Config(snooze_s=3 * 60, max_snoozes=1))
    c.run(45 * 60)
    c.answer("snooze")
    assert len(c.shows(c.run(3 * 60))) == 1
    assert not c.shows()[-1].can_snooze


def test_closing_the_reminder_is_a_snooze_while_snoozes_are_left():
    c = Clock(Config(max_snoozes=1))
    c.run(45 * 60)
    c.answer("closed")
    c.run(10 * 60)
    c.answer("closed")
    assert len(c.records(sch.SNOOZED)) == 1 and len(c.records(sch.SKIPPED)) == 1


def test_skip_resets_the_count():
    c = Clock()
    c.run(45 * 60)
    c.answer("skip")
    assert c.sched.active_s == 0
    assert c.shows(c.run(44 * 60)) == []


def test_start_runs_the_session_and_its_end_is_recorded():
    c = Clock(Config(session="quick-reset"))
    c.run(45 * 60)
    out = c.answer("start")
    assert [a for a in out if isinstance(a, sch.StartSession)] == [
        sch.StartSession(sch.BREAK, "quick-reset")
    ]
    c.run(20 * 60)  # while the session plays nothing counts and nothing is shown
    assert len(c.shows()) == 1
    c.sched.session_ended(True)
    c.actions += c.sched.session_ended(True)  # a second end report is ignored
    assert c.sched.active_s == 0
    c.run(60)
    assert c.sched.status()["break_in_s"] == 44 * 60


def test_a_session_ended_early_is_stopped_not_taken():
    c = Clock()
    c.run(45 * 60)
    c.answer("start")
    c.actions += c.sched.session_ended(False, "quit")
    assert c.records(sch.TAKEN) == [] and len(c.records(sch.STOPPED)) == 1


def test_taken_is_recorded():
    c = Clock()
    c.run(45 * 60)
    c.answer("start")
    c.actions += c.sched.session_ended(True)
    assert len(c.records(sch.TAKEN)) == 1


def test_natural_break_closes_an_unanswered_reminder():
    c = Clock()
    c.run(45 * 60)
    out = c.run(5 * 60, idle=True)
    assert any(isinstance(a, sch.Close) for a in out)
    assert c.sched.showing is None
    assert len(c.records(sch.NATURAL)) == 1


def test_outside_working_hours_nothing_counts():
    cfg = Config(hours=(9 * 60, 17 * 60), days=frozenset(range(5)))
    c = Clock(cfg, start=dt.datetime(2026, 11, 30, 16, 30))
    c.run(2 * 3600)  # 16:30 -> 18:30: only 30 minutes in hours
    assert c.shows() == []
    assert c.sched.active_s == 0
    saturday = Clock(cfg, start=dt.datetime(2026, 12, 5, 10, 0))
    saturday.run(3 * 3600)
    assert saturday.shows() == [] and saturday.records(sch.DUE) == []


def test_counting_starts_when_working_hours_start():
    cfg = Config(hours=(9 * 60, 17 * 60))
    c = Clock(cfg, start=dt.datetime(2026, 11, 30, 8, 30))
    c.run(30 * 60 + 45 * 60 - 10)  # the step ending at 9:00 is the first counted
    assert c.shows() == []
    c.run(5)
    assert len(c.shows()) == 1
    assert any(isinstance(a, sch.Say) and "started" in a.text for a in c.actions)


def test_hours_ending_close_a_break_reminder():
    cfg = Config(hours=(9 * 60, 17 * 60))
    c = Clock(cfg, start=dt.datetime(2026, 11, 30, 16, 0))
    c.run(45 * 60)
    assert len(c.shows()) == 1
    out = c.run(16 * 60)
    assert any(isinstance(a, sch.Close) for a in out)


def test_hours_across_midnight():
    cfg = Config(hours=(22 * 60, 6 * 60))
    c = Clock(cfg, start=dt.datetime(2026, 11, 30, 23, 0))
    c.run(45 * 60)
    assert len(c.shows()) == 1


def test_do_not_disturb_postpones_and_the_reminder_says_so():
    c = Clock()
    c.busy = "do not disturb is on"
    c.run(60 * 60)
    assert c.shows() == []
    assert len(c.records(sch.POSTPONED)) == 1  # said once, not every tick
    assert c.sched.status()["postponed"] == {"break": "do not disturb is on"}
    c.busy = None
    shown = c.shows(c.run(5))
    assert len(shown) == 1
    assert shown[0].note == "do not disturb is on"
    assert "Postponed because do not disturb is on" in shown[0].body(c.sched.config)
    c.answer("snooze")
    later = c.shows(c.run(10 * 60))
    assert later[0].note is None  # said once


def test_fullscreen_postpones_a_breathing_nudge_too():
    c = Clock(Config(breathe_at=(11 * 60,)), start=dt.datetime(2026, 11, 30, 10, 55))
    c.busy = "a window is fullscreen"
    c.run(10 * 60, idle=False)
    assert c.shows() == []
    c.busy = None
    c.run(5)
    kinds = [r.kind for r in c.shows()]
    assert kinds == [sch.BREATHE]
    assert c.shows()[0].note == "a window is fullscreen"


def test_breathing_nudge_at_chosen_times_once_each():
    cfg = Config(every_s=60 * 60, breathe_at=(11 * 60, 15 * 60), days=frozenset(range(5)))
    c = Clock(cfg, start=dt.datetime(2026, 11, 30, 10, 59))
    c.run(55)
    assert c.shows() == []
    c.run(5)
    assert [r.kind for r in c.shows()] == [sch.BREATHE]
    out = c.answer("start")
    assert sch.StartSession(sch.BREATHE, "breathing-478") in out
    c.actions += c.sched.session_ended(True)
    assert len(c.records(sch.TAKEN, kind=sch.BREATHE)) == 1
    assert c.sched.status()["next_breathe"] == "today 15:00"


def test_breathing_nudge_missed_by_more_than_an_hour_is_dropped():
    cfg = Config(breathe_at=(11 * 60,))
    c = Clock(cfg, start=dt.datetime(2026, 11, 30, 10, 0))
    c.wall += dt.timedelta(hours=3)  # asleep from 10:00 to 13:00
    c.run(5)
    assert c.shows() == []
    assert any(isinstance(a, sch.Say) and "missed" in a.text for a in c.actions)


def test_breathing_nudge_waits_for_an_answered_break():
    cfg = Config(every_s=30 * 60, breathe_at=(11 * 60,))
    c = Clock(cfg, start=dt.datetime(2026, 11, 30, 10, 30))
    c.run(30 * 60)
    assert [r.kind for r in c.shows()] == [sch.BREAK]
    c.answer("skip")
    c.run(5)
    assert [r.kind for r in c.shows()] == [sch.BREAK, sch.BREATHE]


def test_status_says_what_is_scheduled():
    c = Clock(Config(every_s=30 * 60, breathe_at=(15 * 60,)))
    c.run(10 * 60)
    st = c.sched.status()
    assert st["break_in_s"] == 20 * 60
    assert st["active_s"] == 10 * 60
    assert st["next_breathe"] == "today 15:00"
    assert st["in_working_hours"] is True


def test_a_due_reminder_waits_for_the_user_to_be_there():
    c = Clock(Config(every_s=30 * 60))
    c.run(29 * 60 + 20)
    c.run(
        2 * 60, idle=True
    )  # due at 30:00 with 40 s without input  # due during this stretch, but nobody touches the machine
    assert c.shows() == []
    assert len(c.shows(c.run(5))) == 1  # input again: shown at once


def test_a_daylight_saving_change_is_not_a_suspend():
    """Aware wall times: the clock moving an hour forward at 2:00 is 5 s of real time."""
    winter = dt.timezone(dt.timedelta(hours=1))
    summer = dt.timezone(dt.timedelta(hours=2))
    c = Clock(start=dt.datetime(2026, 3, 29, 1, 50, tzinfo=winter))
    c.run(9 * 60 + 55)
    c.wall = c.wall.astimezone(summer)  # 01:59:55+01 = 02:59:55+02
    c.run(5)
    assert c.wall.hour == 3
    assert c.records(sch.NATURAL) == []
    assert c.sched.active_s == pytest.approx(10 * 60)
