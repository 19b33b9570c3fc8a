"""The break schedule: a pure state machine on an injected clock (no devices, no threads).

`Scheduler(config)` is fed `Observation`s (`tick`) and the user's answers (`answer`,
`session_ended`) and returns `Action`s for the caller to carry out: show or close a reminder,
start a session, record a statistic, say a line. It never reads a clock itself, so a test drives
hours of schedule in microseconds.

Rules (docs/remind.md says them for users):

- A break is due after `every_s` of **active** time. Active time is monotonic time while the
  user is at the machine: an idle stretch shorter than `idle_break_s` still counts (reading is
  still sitting); idle for `idle_break_s` or longer, the screen locked, or the machine asleep is
  a *natural break*: it is counted once and resets the count.
- Suspend is noticed as a jump: wall time that moved further than monotonic time (Linux, macOS:
  monotonic time stops while asleep), or a gap between two observations longer than
  `idle_break_s` (Windows: monotonic time runs on while asleep). A gap of `idle_break_s` or
  more is a natural break; a shorter one is simply not counted as active.
- Snooze asks again after `snooze_s` more active time, at most `max_snoozes` times in a row;
  after that the reminder offers only Start and Skip. A reminder is shown only when there was
  input in the last 30 s. A reminder closed without an answer counts
  as a snooze while snoozes are left, else as a skip.
- Outside working hours or days nothing counts and no break reminder is shown; the count starts
  from zero in the next working period.
- Breathing nudges fire once a day at each chosen local time (on working days), if the user is
  there; one missed by more than `breathe_late_s` (asleep, away) is dropped.
- Do-not-disturb, a fullscreen window or screen sharing (`Observation.busy`) postpone a due
  reminder (never drop it); the reminder then shown says why it was late.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from audio_engine.i18n import _

BREAK = "break"
BREATHE = "breathe"

# Statistics events, per kind (BREAK or BREATHE).
DUE = "due"
TAKEN = "taken"  # the session played to the end
STOPPED = "stopped"  # started, but ended before the end
SNOOZED = "snoozed"
SKIPPED = "skipped"
NATURAL = "natural"
POSTPONED = "postponed"
EVENTS = (DUE, TAKEN, STOPPED, SNOOZED, SKIPPED, NATURAL, POSTPONED)

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Wall time running ahead of monotonic time by more than this between two observations is a
# suspend; below it, clock adjustments (NTP slews, a leap second) are ignored.
SUSPEND_JUMP_S = 30.0
# A reminder is shown only with input in the last this many seconds (the user is there).
PRESENT_IDLE_S = 30.0


@dataclass(frozen=True)
class Config:
    """What the schedule follows. Times of day are minutes after midnight, local time."""

    every_s: float = 45 * 60
    idle_break_s: float = 5 * 60
    snooze_s: float = 10 * 60
    max_snoozes: int = 2
    hours: tuple[int, int] | None = None  # (start_minute, end_minute); None = all day
    days: frozenset[int] = frozenset(range(7))  # 0 = Monday
    breathe_at: tuple[int, ...] = ()  # minutes after midnight
    breathe_late_s: float = 60 * 60
    session: str = "desk-stretches"
    breathe_session: str = "breathing-478"


@dataclass(frozen=True)
class Observation:
    """One look at the machine.

    `mono_s` is `time.monotonic()`; `wall` is the local wall time (aware or naive, consistently);
    `idle_s` the seconds since the last input, or None when the platform cannot tell;
    `locked` whether the screen is locked; `busy` a reason to hold reminders back ("do not
    disturb is on", "a window is fullscreen") or None.
    """

    mono_s: float
    wall: dt.datetime
    idle_s: float | None = None
    locked: bool = False
    busy: str | None = None


@dataclass(frozen=True)
class Reminder:
    """A reminder to show: its kind, whether Snooze is offered, and a note (why it is late)."""

    kind: str
    can_snooze: bool
    note: str | None = None
    snoozes: int = 0  # snoozes in a row before this one
    active_s: float = 0.0  # active time when shown (a break's reminder says it)

    @property
    def title(self) -> str:
        return _("Time for a break") if self.kind == BREAK else _("Time to breathe")

    def body(self, config: Config) -> str:
        if self.kind == BREAK:
            minutes = round(max(self.active_s, config.every_s) / 60)
            text = _("You have been at it for {minutes} minutes: stand up, move, stretch.").format(
                minutes=minutes
            )
        else:
            text = _("A few rounds of 4-7-8 breathing: in for 4, hold for 7, out for 8.")
        if self.note:
            text += " " + _("(Postponed because {reason}.)").format(reason=self.note)
        return text


@dataclass(frozen=True)
class Show:
    reminder: Reminder


@dataclass(frozen=True)
class Close:
    """Take the reminder off the screen (the user took a natural break, or hours ended)."""

    reason: str


@dataclass(frozen=True)
class StartSession:
    kind: str
    session: str


@dataclass(frozen=True)
class Record:
    kind: str
    event: str
    day: dt.date
    detail: str = ""


@dataclass(frozen=True)
class Say:
    text: str


Action = Show | Close | StartSession | Record | Say


@dataclass
class _State:
    last: Observation | None = None
    active_s: float = 0.0
    due_at_active_s: float = 0.0  # active time at which the next break reminder is due
    snoozes: int = 0  # in a row, for the break now due
    break_counted_due: bool = False  # DUE recorded for the current break
    showing: Reminder | None = None
    in_session: str | None = None  # kind of the session running
    postponed: dict[str, str] = field(default_factory=dict)  # kind -> reason
    away: bool = False  # in an idle stretch already counted as a natural break
    in_hours: bool | None = None
    breathe_pending: bool = False
    breathe_snoozed_until_s: float | None = None  # active time
    breathe_snoozes: int = 0
    breathe_last_key: tuple[dt.date, int] | None = None  # the last nudge time handled


class Scheduler:
    """The whole schedule. Feed it observations and answers; carry out what it returns."""

    def __init__(self, config: Config):
        self.config = config
        self.s = _State(due_at_active_s=config.every_s)

    # -- what callers read ---------------------------------------------------------------

    @property
    def active_s(self) -> float:
        return self.s.active_s

    @property
    def showing(self) -> Reminder | None:
        return self.s.showing

    def status(self) -> dict:
        """What is scheduled, for `--status` (plain data, JSON-ready)."""
        s = self.s
        return {
            "active_s": round(s.active_s, 1),
            "break_in_s": round(max(0.0, s.due_at_active_s - s.active_s), 1),
            "snoozes_in_a_row": s.snoozes,
            "showing": s.showing.kind if s.showing else None,
            "in_session": s.in_session,
            "postponed": dict(s.postponed),
            "in_working_hours": bool(s.in_hours),
            "next_breathe": self._next_breathe_text(),
        }

    # -- inputs ------------------------------------------------------------------------

    def tick(self, obs: Observation) -> list[Action]:
        """Take one observation; returns what to do now."""
        out: list[Action] = []
        s, c = self.s, self.config
        last = s.last
        s.last = obs
        day = obs.wall.date()
        in_hours = self._working(obs.wall)
        if s.in_hours is not None and in_hours != s.in_hours:
            if in_hours:
                out.append(Say(_("working hours started: counting active time")))
            else:
                out.append(Say(_("working hours ended: no reminders until they start again")))
                self._reset_break()
                if s.showing and s.showing.kind == BREAK:
                    s.showing = None
                    out.append(Close(_("working hours ended")))
                s.postponed.pop(BREAK, None)
        s.in_hours = in_hours
        if last is None:
            self._breathe_times_passed(obs, obs, out, first=True)
            return out

        gap_mono = max(0.0, obs.mono_s - last.mono_s)
        gap_wall = (obs.wall - last.wall).total_seconds()
        asleep_s = 0.0
        if gap_wall - gap_mono > SUSPEND_JUMP_S:
            asleep_s = gap_wall - gap_mono
        elif gap_mono >= c.idle_break_s:
            asleep_s = gap_mono  # monotonic time ran on (Windows), or we were stopped
        if asleep_s >= c.idle_break_s:
            text = _("the computer was asleep for {duration}")
            out.append(Say(text.format(duration=_minutes(asleep_s))))
            self._natural(out, day, "asleep")
            # Counted; the observation itself decides whether the user is away now.
            s.away = False
        counted_s = 0.0 if asleep_s else gap_mono

        away = obs.locked or (obs.idle_s is not None and obs.idle_s >= c.idle_break_s)
        if away:
            if not s.away:
                self._natural(out, day, "locked" if obs.locked else "idle")
            s.away = True
        else:
            s.away = False
            if in_hours and s.in_session is None:
                s.active_s += counted_s

        self._breathe_times_passed(last, obs, out)
        # A reminder waits until the user is seen at the machine: one popping up while they
        # are away would only be closed again by the natural break.
        present = obs.idle_s is None or obs.idle_s < PRESENT_IDLE_S
        if present and not away and s.in_session is None:
            self._maybe_show(obs, out, day, in_hours)
        return out

    def answer(self, choice: str) -> list[Action]:
        """The user pressed Start, Snooze or Skip, or closed the reminder ("closed")."""
        s, c = self.s, self.config
        reminder = s.showing
        if reminder is None:
            return []
        day = self._today()
        s.showing = None
        out: list[Action] = []
        if choice == "closed":
            choice = "snooze" if reminder.can_snooze else "skip"
        if choice == "start":
            session = c.session if reminder.kind == BREAK else c.breathe_session
            s.in_session = reminder.kind
            out.append(StartSession(reminder.kind, session))
        elif choice == "snooze" and reminder.can_snooze:
            out.append(Record(reminder.kind, SNOOZED, day))
            if reminder.kind == BREAK:
                s.snoozes += 1
                s.due_at_active_s = s.active_s + c.snooze_s
            else:
                s.breathe_snoozes += 1
                s.breathe_snoozed_until_s = s.active_s + c.snooze_s
            text = _("snoozed: asking again after {duration} of activity")
            out.append(Say(text.format(duration=_minutes(c.snooze_s))))
        else:  # skip (or a snooze no longer allowed)
            out.append(Record(reminder.kind, SKIPPED, day))
            if reminder.kind == BREAK:
                self._reset_break()
            else:
                self._reset_breathe()
            out.append(
                Say(_("skipped the break") if reminder.kind == BREAK else _("skipped the breathe"))
            )
        return out

    def session_ended(self, finished: bool, detail: str = "") -> list[Action]:
        """The session started by Start ended: played to the end (`finished`) or not."""
        s = self.s
        kind = s.in_session
        if kind is None:
            return []
        s.in_session = None
        day = self._today()
        if kind == BREAK:
            self._reset_break()
        else:
            self._reset_breathe()
        event = TAKEN if finished else STOPPED
        return [
            Record(kind, event, day, detail),
            Say(_ENDED[kind, finished]()),
        ]

    # -- inside --------------------------------------------------------------------------

    def _today(self) -> dt.date:
        return self.s.last.wall.date() if self.s.last else dt.date.today()

    def _working(self, wall: dt.datetime) -> bool:
        c = self.config
        if wall.weekday() not in c.days:
            return False
        if c.hours is None:
            return True
        minute = wall.hour * 60 + wall.minute
        start, end = c.hours
        if start <= end:
            return start <= minute < end
        return minute >= start or minute < end  # hours across midnight, e.g. 22-6

    def _reset_break(self) -> None:
        s = self.s
        s.active_s = 0.0
        s.due_at_active_s = self.config.every_s
        s.snoozes = 0
        s.break_counted_due = False
        s.postponed.pop(BREAK, None)

    def _reset_breathe(self) -> None:
        s = self.s
        s.breathe_pending = False
        s.breathe_snoozed_until_s = None
        s.breathe_snoozes = 0
        s.postponed.pop(BREATHE, None)

    def _natural(self, out: list[Action], day: dt.date, how: str) -> None:
        s = self.s
        if s.in_session is not None:
            return  # the session is the break; its end is recorded by session_ended
        if s.showing is not None and s.showing.kind == BREAK:
            s.showing = None
            out.append(Close(_NATURAL[how]()))
        # Only a break with some sitting before it is worth counting (not every idle stretch
        # outside hours or right after another break): a minute (less for very short --every).
        if s.in_hours and s.active_s >= min(60.0, self.config.every_s / 4):
            out.append(Record(BREAK, NATURAL, day, how))
            text = _NATURAL_AFTER[how]()
            out.append(Say(text.format(duration=_minutes(s.active_s))))
        self._reset_break()

    def _maybe_show(self, obs: Observation, out: list[Action], day, in_hours: bool) -> None:
        s, c = self.s, self.config
        if s.showing is not None:
            return
        wants: list[str] = []
        if in_hours and s.active_s >= s.due_at_active_s:
            if not s.break_counted_due:
                s.break_counted_due = True
                out.append(Record(BREAK, DUE, day))
            wants.append(BREAK)
        if s.breathe_pending and (
            s.breathe_snoozed_until_s is None or s.active_s >= s.breathe_snoozed_until_s
        ):
            wants.append(BREATHE)
        if not wants:
            return
        kind = wants[0]
        if obs.busy:
            for k in wants:
                if k not in s.postponed:
                    s.postponed[k] = obs.busy
                    out.append(Record(k, POSTPONED, day, obs.busy))
                    if k == BREAK:
                        text = _("break reminder postponed: {reason}")
                    else:
                        text = _("breathe reminder postponed: {reason}")
                    out.append(Say(text.format(reason=obs.busy)))
            return
        snoozes = s.snoozes if kind == BREAK else s.breathe_snoozes
        reminder = Reminder(
            kind,
            can_snooze=snoozes < c.max_snoozes,
            note=s.postponed.pop(kind, None),
            snoozes=snoozes,
            active_s=s.active_s,
        )
        s.showing = reminder
        out.append(Show(reminder))

    def _breathe_times_passed(
        self, last: Observation, obs: Observation, out: list[Action], first: bool = False
    ) -> None:
        """Mark a nudge pending for each chosen time in (last, obs] (on a working day)."""
        s, c = self.s, self.config
        if not c.breathe_at:
            return
        if first:
            return
        start = last.wall
        end = obs.wall
        if end <= start:
            return
        # Walk the days the interval covers (normally just one).
        day = start.date()
        while day <= end.date():
            if day.weekday() in c.days:
                for minute in c.breathe_at:
                    at = dt.datetime.combine(day, dt.time(minute // 60, minute % 60))
                    if start.tzinfo is not None:
                        at = at.replace(tzinfo=start.tzinfo)
                    if start < at <= end:
                        key = (day, minute)
                        if s.breathe_last_key is not None and key <= s.breathe_last_key:
                            continue
                        s.breathe_last_key = key
                        late_s = (end - at).total_seconds()
                        if late_s > c.breathe_late_s:
                            text = _("missed the {time} breathing nudge")
                            out.append(Say(text.format(time=_clock(minute))))
                            continue
                        if s.breathe_pending or (s.showing and s.showing.kind == BREATHE):
                            continue  # one nudge at a time
                        s.breathe_pending = True
                        s.breathe_snoozes = 0
                        s.breathe_snoozed_until_s = None
                        out.append(Record(BREATHE, DUE, day))
            day += dt.timedelta(days=1)

    def _next_breathe_text(self) -> str | None:
        c, s = self.config, self.s
        if not c.breathe_at or s.last is None:
            return None
        now = s.last.wall
        for offset in range(8):
            day = now.date() + dt.timedelta(days=offset)
            if day.weekday() not in c.days:
                continue
            for minute in sorted(c.breathe_at):
                at = dt.datetime.combine(day, dt.time(minute // 60, minute % 60))
                if now.tzinfo is not None:
                    at = at.replace(tzinfo=now.tzinfo)
                if at > now:
                    when = "today" if offset == 0 else DAY_NAMES[day.weekday()]
                    return f"{when} {_clock(minute)}"
        return None


def _minutes(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 1:
        return _("{seconds} s").format(seconds=f"{seconds:.0f}")
    if minutes < 90:
        return _("{minutes} min").format(minutes=f"{minutes:.0f}")
    whole, tenth = f"{minutes / 60:.1f}".split(".")
    return _("{whole}.{tenth} h").format(whole=whole, tenth=tenth)


# What the log says (in the interface language), by kind and outcome, and by how a natural break
# came.
_ENDED = {
    (BREAK, True): lambda: _("break taken"),
    (BREAK, False): lambda: _("break ended before the end"),
    (BREATHE, True): lambda: _("breathe taken"),
    (BREATHE, False): lambda: _("breathe ended before the end"),
}
_NATURAL = {
    "asleep": lambda: _("natural break (asleep)"),
    "locked": lambda: _("natural break (locked)"),
    "idle": lambda: _("natural break (idle)"),
}
_NATURAL_AFTER = {
    "asleep": lambda: _("natural break (asleep) after {duration} active"),
    "locked": lambda: _("natural break (locked) after {duration} active"),
    "idle": lambda: _("natural break (idle) after {duration} active"),
}


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"
