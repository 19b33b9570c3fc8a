"""The Reminders view's data: `relax remind`'s settings and login unit, through remind's own
functions, so the window and the command line read and write the same things.

Entry points: `load_form() -> dict` (what the view edits), `status_text() -> str` (whether the
reminder runs and when the next break is, as `relax remind --status` reads it),
`save(form) -> list[str]` (writes `remind.yaml`, installs or removes the login unit; the lines
remind's installer said).
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace

from audio_engine import fsio, history
from audio_engine.i18n import _


def load_form() -> dict:
    """The settings in `remind.yaml` (the defaults when it is missing or cannot be read) as the
    view edits them, and whether the login unit is installed."""
    from audio_engine.remind import install
    from audio_engine.remind import settings as st

    try:
        current, _warnings = st.load(st.settings_path())
    except st.SettingsError:
        current = st.Settings()
    hours = current.hours
    return {
        "settings": current,
        "on": install.target(sys.platform, []).path.exists(),
        "every": int(round(current.every_s / 60)),
        "hours_on": hours is not None,
        "start": (hours[0] // 60) if hours else 9,
        "end": (hours[1] // 60) if hours else 17,
    }


def status_text() -> str:
    """Whether the reminder runs, and when the next break is: what `relax remind --status`
    reads (its lock and its status file)."""
    from audio_engine.remind import lock, runner

    folder = history.data_dir()
    if not lock.is_running(folder / lock.LOCK_NAME):
        return _("Reminders are not running now.")
    try:
        state = json.loads(fsio.read_checked(folder / runner.STATUS_NAME, 1 << 20))
        schedule = state["schedule"]
        if schedule["in_working_hours"] and not schedule["showing"]:
            minutes = max(1, round(schedule["break_in_s"] / 60))
            return _(
                "Reminders are running now: the next break after {minutes} min of activity."
            ).format(minutes=minutes)
    except (fsio.FsError, ValueError, KeyError, TypeError):
        pass
    return _("Reminders are running now.")


def save(form: dict) -> list[str]:
    """Write `form` to `remind.yaml` (the settings it does not show are kept) and install or
    remove the login unit as `relax remind --install` / `--uninstall` do."""
    from audio_engine import fsio
    from audio_engine.remind import install
    from audio_engine.remind import settings as st

    hours = (form["start"] * 60, form["end"] * 60) if form["hours_on"] else None
    new = replace(form["settings"], every_s=form["every"] * 60.0, hours=hours)
    lines: list[str] = []
    try:
        fsio.atomic_write(st.settings_path(), st.template(new).encode("utf-8"))
        form["settings"] = new
        target = install.target(sys.platform, [])
        if form["on"]:
            install.install(target, lines.append)
        elif target.path.exists():
            install.uninstall(target, lines.append)
    except (OSError, fsio.FsError) as exc:
        lines.append(str(exc))
    return lines
