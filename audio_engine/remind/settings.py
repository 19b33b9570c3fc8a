"""The reminder's settings: one YAML file in the user's settings folder, overridden by flags.

- `settings_path()`: `remind.yaml` in the settings folder (`RELAX_SETTINGS_DIR`, else the
  per-user config folder of relax, e.g. `~/.config/relax/remind.yaml`).
- `load(path) -> (Settings, warnings)`: read the file (a missing file gives the defaults);
  every bad value is reported at FILE:LINE:COL, all at once, as a `SettingsError`.
- `Settings.override(**flags) -> (Settings, warnings)`: the command line's values on top.
- `template(settings)`: the settings written out as a commented file (`--print-settings`).

YAML, not TOML: session scripts are YAML already, so the user reads one syntax, and the
project's reader (`audio_engine.script._yaml`) gives every value its line and column. Values
are read from the raw text of each scalar, so `11:00` is a time (YAML 1.1 would read it as the
number 660) and `9-17` is hours.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from audio_engine import fsio
from audio_engine.errors import Diagnostic, ScriptError
from audio_engine.i18n import _
from audio_engine.remind.schedule import DAY_NAMES, Config
from audio_engine.script import _yaml
from audio_engine.script._yaml import MAX_BYTES

FILE_NAME = "remind.yaml"
EVERY_ADVISED_S = (30 * 60, 60 * 60)  # the guide: a break every 30 to 60 minutes of sitting
NOTIFY_CHOICES = ("auto", "dbus", "window")


class SettingsError(ScriptError):
    """The settings file (or a flag) has a bad value; carries every diagnostic found."""


@dataclass(frozen=True)
class Settings:
    every_s: float = 45 * 60
    snooze_s: float = 10 * 60
    snoozes: int = 2
    idle_s: float = 5 * 60
    hours: tuple[int, int] | None = None
    days: frozenset[int] = frozenset(range(7))
    breathe: tuple[int, ...] = ()
    session: str = "desk-stretches"
    breathe_session: str = "breathing-478"
    notify: str = "auto"
    respect_dnd: bool = True
    respect_fullscreen: bool = True
    respect_screen_sharing: bool = True

    def config(self) -> Config:
        return Config(
            every_s=self.every_s,
            idle_break_s=self.idle_s,
            snooze_s=self.snooze_s,
            max_snoozes=self.snoozes,
            hours=self.hours,
            days=self.days,
            breathe_at=self.breathe,
            session=self.session,
            breathe_session=self.breathe_session,
        )

    def override(self, **flags) -> tuple[Settings, list[str]]:
        """Apply command-line values (text, as typed; None = not given). Raises `ValueError`
        with the flag named for a bad one; returns the new settings and warnings."""
        changes = {}
        warnings: list[str] = []
        for name, text in flags.items():
            if text is None:
                continue
            key = _FLAG_KEYS[name]
            try:
                value, warning = _PARSERS[key](str(text))
            except ValueError as exc:
                raise ValueError(f"--{name.replace('_', '-')} {text}: {exc}") from None
            if warning:
                warnings.append(f"--{name.replace('_', '-')} {text}: {warning}")
            changes[_FIELDS[key]] = value
        return replace(self, **changes), warnings


# -- values: text -> (value, warning or None); ValueError with the reason ------------------


def parse_duration(text: str) -> float:
    """`45m`, `1h`, `1h30m`, `90s`, `2.5m` -> seconds."""
    t = text.strip().lower().replace(" ", "")
    if not t:
        raise ValueError(_("a duration is needed, e.g. 45m"))
    total = 0.0
    number = ""
    seen_unit = False
    units = {"h": 3600, "m": 60, "s": 1}
    for ch in t:
        if ch.isdigit() or ch == ".":
            number += ch
        elif ch in units and number:
            try:
                total += float(number) * units[ch]
            except ValueError:
                raise ValueError(_not_a_duration(text)) from None
            number = ""
            seen_unit = True
        else:
            raise ValueError(_not_a_duration(text))
    if number:
        raise ValueError(
            _("{text!r} needs a unit: h, m or s (e.g. {number}m)").format(text=text, number=number)
        )
    if not seen_unit:
        raise ValueError(_not_a_duration(text))
    return total


def _not_a_duration(text: str) -> str:
    return _("{text!r} is not a duration (e.g. 45m, 1h, 90s)").format(text=text)


def _every(text):
    s = parse_duration(text)
    if not 5 * 60 <= s <= 4 * 3600:
        raise ValueError(_("must be between 5m and 4h"))
    lo, hi = EVERY_ADVISED_S
    warning = None
    if not lo <= s <= hi:
        warning = _("the guide advises a break every 30m to 60m of sitting; using it anyway")
    return s, warning


def _snooze(text):
    s = parse_duration(text)
    if not 60 <= s <= 60 * 60:
        raise ValueError(_("must be between 1m and 60m"))
    return s, None


def _idle(text):
    s = parse_duration(text)
    if not 60 <= s <= 30 * 60:
        raise ValueError(_("must be between 1m and 30m"))
    return s, None


def _snoozes(text):
    t = text.strip()
    if not (t.isascii() and t.isdigit()) or not 0 <= int(t) <= 5:
        raise ValueError(_("must be a whole number from 0 to 5"))
    return int(t), None


def _clock_minute(text: str) -> int:
    t = text.strip()
    hour, sep, minute = t.partition(":")
    if not (hour.isascii() and hour.isdigit()) or (
        sep and not (minute.isdigit() and len(minute) == 2)
    ):
        raise ValueError(_("{text!r} is not a time of day (e.g. 9, 9:30, 17:00)").format(text=text))
    h, m = int(hour), int(minute or 0)
    if h == 24 and m == 0:
        return 24 * 60
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ValueError(_("{text!r} is not a time of day (00:00 to 24:00)").format(text=text))
    return h * 60 + m


def _hours(text):
    t = text.strip().lower()
    if t in ("all", "any", "always"):
        return None, None
    start, sep, end = t.partition("-")
    if not sep:
        raise ValueError(
            _("{text!r} is not a range of hours (e.g. 9-17, 8:30-17:30, all)").format(text=text)
        )
    a, b = _clock_minute(start), _clock_minute(end)
    if a == b:
        raise ValueError(
            _("{text!r} starts and ends at the same time (use `all` for all day)").format(text=text)
        )
    return (a % (24 * 60), b if b == 24 * 60 else b % (24 * 60)), None


def _day(word: str) -> int:
    w = word.strip().lower()[:3]
    if w not in DAY_NAMES or len(word.strip()) < 3:
        raise ValueError(
            _("{word!r} is not a day (mon, tue, wed, thu, fri, sat, sun)").format(word=word.strip())
        )
    return DAY_NAMES.index(w)


def _days(text):
    t = text.strip().lower()
    if t in ("all", "every", "daily"):
        return frozenset(range(7)), None
    days: set[int] = set()
    for part in t.split(","):
        if "-" in part:
            first, _dash, last = part.partition("-")
            a, b = _day(first), _day(last)
            i = a
            while True:
                days.add(i)
                if i == b:
                    break
                i = (i + 1) % 7
        else:
            days.add(_day(part))
    return frozenset(days), None


def _breathe(text):
    t = text.strip().lower()
    if t in ("", "none", "off", "no"):
        return (), None
    minutes = sorted({_clock_minute(p) % (24 * 60) for p in t.split(",")})
    return tuple(minutes), None


def _session(text):
    t = text.strip()
    if not t:
        raise ValueError(_("a session id or file is needed (see `relax list`)"))
    return t, None


def _notify(text):
    t = text.strip().lower()
    if t not in NOTIFY_CHOICES:
        raise ValueError(_("must be one of {choices}").format(choices=", ".join(NOTIFY_CHOICES)))
    return t, None


def _bool(text):
    t = text.strip().lower()
    if t in ("true", "yes", "on"):
        return True, None
    if t in ("false", "no", "off"):
        return False, None
    raise ValueError(_("must be true or false"))


# file key -> (parser, Settings field)
_KEYS = {
    "every": (_every, "every_s"),
    "snooze": (_snooze, "snooze_s"),
    "snoozes": (_snoozes, "snoozes"),
    "idle": (_idle, "idle_s"),
    "hours": (_hours, "hours"),
    "days": (_days, "days"),
    "breathe": (_breathe, "breathe"),
    "session": (_session, "session"),
    "breathe_session": (_session, "breathe_session"),
    "notify": (_notify, "notify"),
    "respect_dnd": (_bool, "respect_dnd"),
    "respect_fullscreen": (_bool, "respect_fullscreen"),
    "respect_screen_sharing": (_bool, "respect_screen_sharing"),
}
_PARSERS = {k: v[0] for k, v in _KEYS.items()}
_FIELDS = {k: v[1] for k, v in _KEYS.items()}
_LIST_KEYS = ("days", "breathe")  # may also be written as YAML lists
# command-line dest -> file key
_FLAG_KEYS = {k: k for k in _KEYS}
assert set(_FIELDS.values()) == {f.name for f in fields(Settings)}


def settings_path() -> Path:
    from audio_engine.safety import settings_dir

    return settings_dir() / FILE_NAME


def load(path: Path) -> tuple[Settings, list[Diagnostic]]:
    """The settings in `path` (the defaults when it does not exist) and the warnings found."""
    name = str(path)
    if not os.path.lexists(path):
        return Settings(), []
    try:
        # A regular file of at most 1 MiB, like a session script (a FIFO is never waited on).
        data = fsio.read_checked(path, MAX_BYTES)
    except fsio.FsError as exc:
        message = _("cannot read: {reason}").format(reason=exc.reason)
        raise SettingsError([Diagnostic(name, 1, 1, "", message)]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(
            [Diagnostic(name, 1, 1, "", _("not UTF-8 text (byte {byte})").format(byte=exc.start))]
        ) from None
    return parse(text, name)


def parse(text: str, name: str) -> tuple[Settings, list[Diagnostic]]:
    root, diagnostics = _yaml.compose(text, name)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise SettingsError(diagnostics)
    if root is None:  # an empty file
        return Settings(), []
    warnings: list[Diagnostic] = []

    def at(node, key, message, severity="error"):
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        d = Diagnostic(name, line, col, key, message, severity)
        (warnings if severity == "warning" else errors).append(d)

    if not isinstance(root, MappingNode):
        at(root, "", _("expected a mapping of settings (`every: 45m` lines)"))
        raise SettingsError(errors)
    changes = {}
    seen: set[str] = set()
    for key_node, value_node in root.value:
        if not isinstance(key_node, ScalarNode):
            at(key_node, "", _("a setting's name must be plain text"))
            continue
        key = key_node.value
        if key in seen:
            at(key_node, key, _("this setting is given twice"))
            continue
        seen.add(key)
        if key not in _KEYS:
            close = difflib.get_close_matches(key, list(_KEYS), n=1)
            if close:
                message = _("unknown setting; did you mean '{name}'?").format(name=close[0])
            else:
                message = _("unknown setting (known: {names})").format(names=", ".join(_KEYS))
            at(key_node, key, message)
            continue
        if isinstance(value_node, SequenceNode) and key in _LIST_KEYS:
            parts = []
            bad = False
            for item in value_node.value:
                if not isinstance(item, ScalarNode):
                    at(item, key, _("expected plain values in this list"))
                    bad = True
                elif key == "breathe":
                    try:
                        _clock_minute(item.value)
                    except ValueError as exc:
                        at(item, key, str(exc))
                        bad = True
                parts.append(getattr(item, "value", ""))
            if bad:
                continue
            raw = ",".join(parts)
            if key == "breathe" and not parts:
                raw = "none"
        elif isinstance(value_node, ScalarNode):
            raw = value_node.value
            if value_node.tag.endswith(":null") and value_node.style is None:
                raw = "none" if key == "breathe" else ""
        else:
            at(value_node, key, _("expected a single value here"))
            continue
        try:
            value, warning = _PARSERS[key](raw)
        except ValueError as exc:
            at(value_node, key, str(exc))
            continue
        if warning:
            at(value_node, key, warning, "warning")
        changes[_FIELDS[key]] = value
    if errors:
        raise SettingsError(errors + warnings)
    return replace(Settings(), **changes), warnings


def _duration_text(seconds: float) -> str:
    s = int(round(seconds))
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"


def _clock_text(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _days_text(days: frozenset[int]) -> str:
    if days == frozenset(range(7)):
        return "all"
    runs: list[list[int]] = []
    for d in sorted(days):
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{DAY_NAMES[run[0]]}-{DAY_NAMES[run[-1]]}")
        else:
            parts += [DAY_NAMES[d] for d in run]
    return ",".join(parts)


def describe(s: Settings) -> dict[str, str]:
    """Each setting as the text the file would hold."""
    return {
        "every": _duration_text(s.every_s),
        "snooze": _duration_text(s.snooze_s),
        "snoozes": str(s.snoozes),
        "idle": _duration_text(s.idle_s),
        "hours": "all" if s.hours is None else "-".join(_clock_text(m) for m in s.hours),
        "days": _days_text(s.days),
        "breathe": ",".join(_clock_text(m) for m in s.breathe) or "none",
        "session": s.session,
        "breathe_session": s.breathe_session,
        "notify": s.notify,
        "respect_dnd": "true" if s.respect_dnd else "false",
        "respect_fullscreen": "true" if s.respect_fullscreen else "false",
        "respect_screen_sharing": "true" if s.respect_screen_sharing else "false",
    }


def _comments() -> dict[str, str]:
    """What each setting is, for the settings file `template` writes (in the interface
    language)."""
    return {
        "every": _("a break after this much active time (30m-60m advised; 5m-4h accepted)"),
        "snooze": _("Snooze asks again after this much more active time (1m-60m)"),
        "snoozes": _("at most this many snoozes in a row (0-5)"),
        "idle": _("this long without input is a natural break and starts the count again (1m-30m)"),
        "hours": _("working hours, e.g. 9-17 or 8:30-17:30; `all` for all day"),
        "days": _("working days, e.g. mon-fri or mon,wed,fri; `all` for every day"),
        "breathe": _("4-7-8 breathing nudges at these times, e.g. 11:00,15:00; `none` for none"),
        "session": _("what Start plays for a break: a session id (see `relax list`) or a file"),
        "breathe_session": _("what Start plays for a breathing nudge"),
        "notify": _("auto (desktop notification, else a small window), dbus, or window"),
        "respect_dnd": _("hold reminders back while do-not-disturb is on"),
        "respect_fullscreen": _("hold reminders back while a window is fullscreen"),
        "respect_screen_sharing": _("hold reminders back while the screen is shared or recorded"),
    }


def template(s: Settings) -> str:
    lines = [
        _("# relax remind: settings (this file is read at start; flags override it)."),
        _("# Durations: 45m, 1h, 90s. Times of day: 11:00. See docs/remind.md."),
    ]
    comments = _comments()
    for key, value in describe(s).items():
        lines.append(f"# {comments[key]}")
        lines.append(f"{key}: {_quote(value)}")
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    # Values are read from their text, so only YAML's syntax needs care: plain when safe,
    # else a double-quoted string (JSON's escapes are YAML's).
    if re.fullmatch(r"[A-Za-z0-9_./,+-]+", value) and not value.startswith("-"):
        return value
    return json.dumps(value, ensure_ascii=False)
