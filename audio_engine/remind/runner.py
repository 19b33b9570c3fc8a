"""The running reminder: the schedule wired to a clock, an idle source, a notifier, the
statistics and the session player.

`Runner(...).run(should_stop)` loops until `should_stop()` is true: every `tick_s` it reads
the idle source and asks the schedule; in between it waits for answers in slices of at most
0.5 s (so a stop request is seen within half a second). Everything around the schedule is
injected: tests give it their own clock, notifier and idle source.

Faults while running, each said in one line and survived: the session bus lost (reminders go on
in the pygame window; the reminder on screen is shown again there), the idle source lost (wall
time from then on), a statistics write failing (kept and written later).

Screen sharing (`sharing.Sharing`, probes that may spawn `pw-dump`) is asked only when this
observation would show a reminder: the pure schedule is ticked on a copy first.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from audio_engine import fsio
from audio_engine.i18n import _
from audio_engine.remind import schedule as sch
from audio_engine.remind.idle import IdleUnavailable, Reading, WallClock
from audio_engine.remind.notify import NotifyError

STATUS_NAME = "remind-status.json"
# The exit status of the session's process when the listener quit before the end (see
# audio_engine/cli/_remind_play.py, which runs `relax play` and tells how it ended).
QUIT_EXIT = 3


def play_command(session: str) -> list[str]:
    return [sys.executable, "-m", "audio_engine.cli._remind_play", session]


# The log's line for each answer a notifier gives.
_ANSWERS = {
    "start": lambda: _("answer: start"),
    "snooze": lambda: _("answer: snooze"),
    "skip": lambda: _("answer: skip"),
    "closed": lambda: _("answer: closed"),
}


class Runner:
    def __init__(
        self,
        settings,
        notifier,
        idle_source,
        stats,
        say,
        *,
        fallback=None,
        status_path: Path | None = None,
        tick_s: float = 5.0,
        mono=time.monotonic,
        wall=lambda: dt.datetime.now().astimezone(),  # aware: a DST change is no jump
        play=play_command,
        info: dict | None = None,
        sharing=None,
    ):
        self.settings = settings
        self.sched = sch.Scheduler(settings.config())
        self.notifier = notifier
        self.idle = idle_source
        self.stats = stats
        self.say = say
        self.fallback = fallback  # makes the notifier used when the bus is lost
        self.status_path = status_path
        self.tick_s = tick_s
        self.mono = mono
        self.wall = wall
        self.play = play
        self.info = dict(info or {})
        self.sharing = sharing  # sharing.Sharing, or None: not detected
        self.child: subprocess.Popen | None = None
        self.child_kind: str | None = None

    # -- the loop -------------------------------------------------------------------

    def run(self, should_stop) -> None:
        try:
            while not should_stop():
                self.step()
                deadline = self.mono() + self.tick_s
                while not should_stop():
                    left = deadline - self.mono()
                    if left <= 0:
                        break
                    self.listen(min(0.5, left))
        finally:
            self.finish()

    def step(self) -> None:
        """One observation and what the schedule makes of it."""
        reading = self._read()
        obs = sch.Observation(self.mono(), self.wall(), reading.idle_s, reading.locked)
        obs = dataclasses.replace(obs, busy=self._busy(reading, obs))
        self._do(self.sched.tick(obs))
        self._poll_child()
        self.write_status()

    def listen(self, timeout_s: float) -> None:
        try:
            answers = self.notifier.wait(timeout_s)
        except NotifyError as exc:
            self._lost(exc)
            return
        for answer in answers:
            said = _ANSWERS.get(answer)
            self.say(said() if said else _("answer: {answer}").format(answer=answer))
            self._do(self.sched.answer(answer))
        self._poll_child()

    def finish(self) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(10)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
            self.child = None
            self._do(self.sched.session_ended(False, "relax remind ended"))
        with contextlib.suppress(NotifyError):
            self.notifier.close()
        self.stats.flush()
        if self.status_path is not None:
            with contextlib.suppress(OSError):
                self.status_path.unlink()

    # -- inside -----------------------------------------------------------------------

    def _read(self) -> Reading:
        try:
            return self.idle.read()
        except IdleUnavailable as exc:
            text = _("relax: idle time lost ({problem}); counting wall-clock time from now on")
            self.say(text.format(problem=exc))
            self.idle = WallClock()
            self.info["idle"] = self.idle.name
            return self.idle.read()

    def _busy(self, reading: Reading, obs: sch.Observation) -> str | None:
        if self.settings.respect_dnd:
            try:
                if self.notifier.inhibited():
                    return _("do not disturb was on")
            except NotifyError as exc:
                self._lost(exc)
        if self.settings.respect_fullscreen and reading.fullscreen:
            return _("a window was fullscreen")
        if (
            self.settings.respect_screen_sharing
            and self.sharing is not None
            and self.sharing.probes
            and self._would_show(obs)
        ):
            return self.sharing.check(obs.mono_s)
        return None

    def _would_show(self, obs: sch.Observation) -> bool:
        """Whether `obs` shows a reminder if nothing holds it back (a copy of the schedule is
        ticked: it is pure, so this costs about 70 us and no I/O)."""
        trial = copy.deepcopy(self.sched)
        return any(isinstance(a, sch.Show) for a in trial.tick(obs))

    def _lost(self, exc: Exception) -> None:
        if self.fallback is None:
            raise exc
        make, self.fallback = self.fallback, None
        with contextlib.suppress(NotifyError, OSError):  # a dead connection
            self.notifier.shutdown()
        self.notifier = make()
        self.info["notifier"] = self.notifier.name
        text = _("relax: {problem}; reminders now show in {notifier}")
        self.say(text.format(problem=exc, notifier=self.notifier.name))
        showing = self.sched.showing
        if showing is not None:
            self.notifier.show(showing, showing.body(self.sched.config))

    def _do(self, actions) -> None:
        for action in actions:
            if isinstance(action, sch.Show):
                r = action.reminder
                if r.note:
                    text = _("reminder: {title} (postponed: {reason})")
                else:
                    text = _("reminder: {title}")
                self.say(text.format(title=r.title.lower(), reason=r.note))
                try:
                    self.notifier.show(r, r.body(self.sched.config))
                except NotifyError as exc:
                    self._lost(exc)
            elif isinstance(action, sch.Close):
                self.say(_("reminder closed: {reason}").format(reason=action.reason))
                try:
                    self.notifier.close()
                except NotifyError as exc:
                    self._lost(exc)
            elif isinstance(action, sch.StartSession):
                self._start(action)
            elif isinstance(action, sch.Record):
                self.stats.record(action.kind, action.event, action.day, action.detail, self.wall())
            elif isinstance(action, sch.Say):
                self.say(action.text)

    def _start(self, action: sch.StartSession) -> None:
        command = self.play(action.session)
        self.say(_("starting {session}").format(session=action.session))
        try:
            self.child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        except OSError as exc:
            self.say(_("relax: cannot start the session ({problem})").format(problem=exc))
            self._do(self.sched.session_ended(False, f"could not start: {exc}"))
            return
        self.child_kind = action.kind

    def _poll_child(self) -> None:
        if self.child is None:
            return
        code = self.child.poll()
        if code is None:
            return
        self.child = None
        if code == 0:
            detail = ""
        elif code == QUIT_EXIT:
            detail = "quit before the end"
        else:
            detail = f"relax play exited with status {code}"
            text = _("relax: the session did not play (relax play exited with status {code})")
            self.say(text.format(code=code))
        self._do(self.sched.session_ended(code == 0, detail))

    def write_status(self) -> None:
        if self.status_path is None:
            return
        data = {
            "pid": os.getpid(),
            "updated": self.wall().isoformat(timespec="seconds"),
            "settings": self.info.get("settings", {}),
            "notifier": self.notifier.name,
            "idle": self.idle.name,
            "sharing": self.sharing.names if self.sharing is not None else None,
            "schedule": self.sched.status(),
        }
        with contextlib.suppress(fsio.FsError):  # the status is a courtesy; the schedule goes on
            fsio.atomic_write(self.status_path, json.dumps(data, indent=1).encode(), fsync=False)
