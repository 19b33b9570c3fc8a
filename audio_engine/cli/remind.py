"""`relax remind`: break reminders on active time (see docs/remind.md)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import signal
import sys
from pathlib import Path

from audio_engine import fsio, history
from audio_engine.cli import ending_signals
from audio_engine.errors import RelaxError, UsageError
from audio_engine.i18n import _, ngettext

SETTING_FLAGS = (
    "every",
    "snooze",
    "snoozes",
    "idle",
    "hours",
    "days",
    "breathe",
    "session",
    "breathe_session",
    "notify",
)


def _flag_help() -> dict[str, tuple[str, str]]:
    """Each setting flag's metavar and help, in the interface language (asked when the parser
    is built, after the language is chosen)."""
    duration, session = _("DURATION"), _("SESSION")
    return {
        "every": (
            duration,
            _("a break after this much active time (default 45m; 30m-60m advised)"),
        ),
        "snooze": (
            duration,
            _("Snooze asks again after this much more active time (default 10m)"),
        ),
        "snoozes": ("N", _("at most N snoozes in a row (default 2)")),
        "idle": (duration, _("no input this long is a natural break (default 5m)")),
        "hours": (_("H-H"), _("working hours, e.g. 9-17 or 8:30-17:30 (default all)")),
        "days": (_("DAYS"), _("working days, e.g. mon-fri (default all)")),
        "breathe": (_("TIMES"), _("4-7-8 breathing nudges at these times, e.g. 11:00,15:00")),
        "session": (session, _("what Start plays for a break (default desk-stretches)")),
        "breathe_session": (
            session,
            _("what Start plays for a breathing nudge (default breathing-478)"),
        ),
        "notify": (_("HOW"), _("auto, dbus or window (default auto)")),
    }


class _Help(argparse.HelpFormatter):
    """argparse's help with its heading "usage:" in the interface language too."""

    def add_usage(self, usage, actions, groups, prefix=None):
        super().add_usage(usage, actions, groups, _("usage: ") if prefix is None else prefix)


def register(sub) -> None:
    parser = sub.add_parser(
        "remind",
        help="break reminders on active time",
        description=_(
            "Remind you to take a break after --every of activity at the computer "
            "(idle 5 minutes, the screen locked or the machine asleep counts as a break and "
            "starts the count again). Start plays a session in the pacer window; Snooze asks "
            "again later (at most twice in a row); Skip waits for the next one. A due reminder "
            "waits (and then says why) while do-not-disturb is on, a window is fullscreen or the "
            "screen is shared or recorded (settings respect_dnd, respect_fullscreen, "
            "respect_screen_sharing). Runs in the foreground until Ctrl-C; one at a time. "
            "Settings: remind.yaml in your settings folder; flags override it."
        ),
        epilog=_(
            "Durations: 45m, 1h, 90s. Exit status: 130 after Ctrl-C, 143 after SIGTERM, 1 for "
            "bad settings or no way to show reminders; --status: 0 running, 3 not running. "
            "See docs/remind.md."
        ),
        formatter_class=_Help,
        add_help=False,
    )
    parser.translated = True  # its usage errors in the interface language too
    # argparse's own -h and heading, in the interface language (the same English as argparse's).
    parser._optionals.title = _("options")
    parser.add_argument("-h", "--help", action="help", help=_("show this help message and exit"))
    helps = _flag_help()
    for name in SETTING_FLAGS:
        metavar, help_text = helps[name]
        parser.add_argument(
            f"--{name.replace('_', '-')}", dest=name, metavar=metavar, help=help_text
        )
    parser.add_argument(
        "--settings", type=Path, metavar=_("FILE"), help=_("read this settings file instead")
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--status", action="store_true", help=_("what is scheduled now and today's counts")
    )
    mode.add_argument(
        "--install",
        action="store_true",
        help=_("start at login with these flags (a systemd user unit; macOS, Windows: untested)"),
    )
    mode.add_argument("--uninstall", action="store_true", help=_("no longer start at login"))
    mode.add_argument(
        "--print-settings",
        action="store_true",
        help=_("print the settings in force as a commented settings file"),
    )
    parser.add_argument("--tick", type=float, default=5.0, help=argparse.SUPPRESS)
    parser.set_defaults(run=run)


def _say(text: str) -> None:
    stream = sys.stderr if text.startswith("relax:") else sys.stdout
    if stream is sys.stdout:
        text = f"{dt.datetime.now():%H:%M:%S} {text}"
    print(text, file=stream, flush=True)


def _settings(args):
    from audio_engine.remind import settings as st

    path = args.settings or st.settings_path()
    settings, warnings = st.load(path)
    for warning in warnings:
        print(warning, file=sys.stderr)
    flags = {name: getattr(args, name) for name in SETTING_FLAGS}
    try:
        settings, flag_warnings = settings.override(**flags)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for warning in flag_warnings:
        print(_("relax: warning: {warning}").format(warning=warning), file=sys.stderr)
    return path, settings


def run(args: argparse.Namespace) -> int:
    from audio_engine.remind import settings as st

    if args.tick <= 0:
        raise UsageError(_("--tick must be positive"))
    path, settings = _settings(args)
    if args.print_settings:
        sys.stdout.write(st.template(settings))
        return 0
    if args.status:
        return _status(settings)
    if args.install or args.uninstall:
        return _install(args)
    return _foreground(args, path, settings)


def _given_flags(args) -> list[str]:
    words: list[str] = []
    for name in SETTING_FLAGS:
        value = getattr(args, name)
        if value is not None:
            words += [f"--{name.replace('_', '-')}", value]
    if args.settings is not None:
        words += ["--settings", str(args.settings.resolve())]
    return words


def _install(args) -> int:
    from audio_engine.remind import install

    t = install.target(sys.platform, _given_flags(args))
    try:
        if args.install:
            install.install(t, _print)
        else:
            install.uninstall(t, _print)
    except OSError as exc:
        raise RelaxError(
            _("cannot write {path}: {reason}").format(path=t.path, reason=exc.strerror or exc)
        ) from None
    return 0


def _print(text: str) -> None:
    print(f"relax remind: {text}")


def _status(settings) -> int:
    from audio_engine.remind import lock, runner, stats
    from audio_engine.remind import settings as st

    folder = history.data_dir()
    running = lock.is_running(folder / lock.LOCK_NAME)
    state = None
    if running:
        try:
            state = json.loads(
                fsio.read_checked(folder / runner.STATUS_NAME, 1 << 20, follow=False)
            )
        except (fsio.FsError, ValueError):
            state = None
    if running:
        pid = state["pid"] if state else lock.InstanceLock(folder / lock.LOCK_NAME).holder()
        print(_("relax remind: running (pid {pid})").format(pid=pid))
    else:
        print(_("relax remind: not running"))
    shown = state["settings"] if state and state.get("settings") else st.describe(settings)
    snoozes = int(shown["snoozes"]) if str(shown["snoozes"]).isdigit() else 2
    line = ngettext(
        "  every {every} of activity; snooze {snooze} (at most {snoozes} in a row); "
        "idle {idle} is a break",
        "  every {every} of activity; snooze {snooze} (at most {snoozes} in a row); "
        "idle {idle} is a break",
        snoozes,
    )
    print(
        line.format(
            every=_duration(shown["every"]),
            snooze=_duration(shown["snooze"]),
            snoozes=shown["snoozes"],
            idle=_duration(shown["idle"]),
        )
    )
    breathe = shown["breathe"]
    nudges = (
        _("breathing nudges none")
        if breathe == "none"
        else _("breathing nudges {times}").format(times=breathe)
    )
    print(
        _("  {hours_and_days}; {breathing_nudges}; {session}").format(
            hours_and_days=_hours_and_days(shown["hours"], shown["days"]),
            breathing_nudges=nudges,
            session=_("session {session}").format(session=shown["session"]),
        )
    )
    waits = [
        label
        for key, label in (
            ("respect_dnd", _("do-not-disturb")),
            ("respect_fullscreen", _("a fullscreen window")),
            ("respect_screen_sharing", _("screen sharing")),
        )
        if shown.get(key, "true") == "true"
    ]
    if waits:
        print(_("  reminders wait for: {what}").format(what=", ".join(waits)))
    else:
        print(_("  reminders wait for: nothing"))
    if state:
        s = state["schedule"]
        print(
            _("  reminders: {notifier}; idle time: {idle}").format(
                notifier=state["notifier"], idle=state["idle"]
            )
        )
        if state.get("sharing"):
            print(_("  screen sharing seen by: {names}").format(names=state["sharing"]))
        if s["in_session"]:
            print(_kind_line(s["in_session"], PLAYING))
        elif s["showing"]:
            print(_kind_line(s["showing"], SHOWING))
        elif not s["in_working_hours"]:
            print(_("  now: outside working hours"))
        else:
            snoozed = s["snoozes_in_a_row"]
            if snoozed:
                line = ngettext(
                    "  next break: after {left} more of activity (active {active} so far, "
                    "snoozed {n}x)",
                    "  next break: after {left} more of activity (active {active} so far, "
                    "snoozed {n}x)",
                    snoozed,
                )
            else:
                line = _("  next break: after {left} more of activity (active {active} so far)")
            print(line.format(left=_mins(s["break_in_s"]), active=_mins(s["active_s"]), n=snoozed))
        if s["next_breathe"]:
            when = _nudge_time(s["next_breathe"])
            print(_("  next breathing nudge: {when}").format(when=when))
        for kind, reason in s["postponed"].items():
            print(_kind_line(kind, POSTPONED).format(kind=kind, reason=reason))
    today = dt.date.today()
    counts = stats.read_day_counts(today)
    print(_("today ({date}):").format(date=today.isoformat()))
    for kind in ("break", "breathe"):
        c = counts.get(kind, {})
        told = [
            ngettext("{n} due", "{n} due", c.get("due", 0)),
            ngettext("{n} taken", "{n} taken", c.get("taken", 0)),
            ngettext("{n} stopped early", "{n} stopped early", c.get("stopped", 0)),
            ngettext("{n} snoozed", "{n} snoozed", c.get("snoozed", 0)),
            ngettext("{n} skipped", "{n} skipped", c.get("skipped", 0)),
        ]
        events = ["due", "taken", "stopped", "snoozed", "skipped"]
        if kind == "break":
            told.append(ngettext("{n} natural", "{n} natural", c.get("natural", 0)))
            events.append("natural")
        if c.get("postponed"):
            told.append(ngettext("{n} postponed", "{n} postponed", c["postponed"]))
            events.append("postponed")
        counted = ", ".join(
            text.format(n=c.get(event, 0)) for text, event in zip(told, events, strict=True)
        )
        line = _("  breaks: {counts}") if kind == "break" else _("  breathing: {counts}")
        print(line.format(counts=counted))
    return 0 if running else 3


PLAYING, SHOWING, POSTPONED = "playing", "showing", "postponed"


def _kind_line(kind: str, what: str) -> str:
    """A status line about the reminder of `kind` (`break`, `breathe`) that is PLAYING, SHOWING
    or POSTPONED (that one with `{reason}` still to fill in)."""
    lines = {
        ("break", PLAYING): _("  now: a break session is playing"),
        ("breathe", PLAYING): _("  now: a breathe session is playing"),
        ("break", SHOWING): _("  now: the break reminder is on screen"),
        ("breathe", SHOWING): _("  now: the breathe reminder is on screen"),
        ("break", POSTPONED): _("  postponed: the break reminder ({reason})"),
        ("breathe", POSTPONED): _("  postponed: the breathe reminder ({reason})"),
    }
    if (kind, what) in lines:
        return lines[kind, what]
    if what == PLAYING:
        return _("  now: a {kind} session is playing").format(kind=kind)
    if what == SHOWING:
        return _("  now: the {kind} reminder is on screen").format(kind=kind)
    return _("  postponed: the {kind} reminder ({reason})")


def _hours_and_days(hours: str, days: str) -> str:
    """The working hours and days (as `settings.describe` writes them) for `--status`."""
    days = _days(days)
    if hours == "all":
        if days == "all":
            return _("working hours all, days all")
        return _("working hours all, days {days}").format(days=days)
    if days == "all":
        return _("working hours {hours}, days all").format(hours=hours)
    return _("working hours {hours}, days {days}").format(hours=hours, days=days)


def _start_hours_and_days(hours: str, days: str) -> str:
    """The same for the line said at the start."""
    days = _days(days)
    if hours == "all":
        if days == "all":
            return _("hours all, days all")
        return _("hours all, days {days}").format(days=days)
    if days == "all":
        return _("hours {hours}, days all").format(hours=hours)
    return _("hours {hours}, days {days}").format(hours=hours, days=days)


def _days(text: str) -> str:
    """Working days as `settings.describe` writes them (`mon-fri`, `mon,wed,fri`, `all`), the
    days' names in the interface language."""
    import re

    names = {
        "mon": _("mon"),
        "tue": _("tue"),
        "wed": _("wed"),
        "thu": _("thu"),
        "fri": _("fri"),
        "sat": _("sat"),
        "sun": _("sun"),
    }
    return re.sub(r"[a-z]{3}", lambda m: names.get(m.group(0), m.group(0)), text)


def _duration(text: str) -> str:
    """A setting's duration (`45m`, `1h`, `90s`: `settings.describe`'s text) written the way the
    interface language writes it."""
    from audio_engine.remind.settings import parse_duration

    try:
        seconds = round(parse_duration(text))
    except ValueError:
        return text
    if seconds and seconds % 3600 == 0:
        return _("{hours}h").format(hours=seconds // 3600)
    if seconds and seconds % 60 == 0:
        return _("{minutes}m").format(minutes=seconds // 60)
    return _("{seconds}s").format(seconds=seconds)


def _nudge_time(text: str) -> str:
    """When the next breathing nudge comes (the schedule's `today 15:00`, `tue 11:00`), in the
    interface language."""
    when, _space, clock = text.partition(" ")
    if when == "today":
        return _("today {time}").format(time=clock)
    return _("{day} {time}").format(day=_days(when), time=clock)


def _mins(seconds: float) -> str:
    if seconds >= 60:
        return _("{minutes} min").format(minutes=f"{seconds / 60:.0f}")
    return _("{seconds} s").format(seconds=f"{seconds:.0f}")


def _notifier(settings):
    """The notifier to use and a maker for the fallback window (None where there is none)."""
    import os

    from audio_engine.remind import notify

    def window():
        from audio_engine.remind.window import WindowNotifier

        return WindowNotifier()

    has_display = bool(
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("SDL_VIDEODRIVER")
        or sys.platform in ("win32", "darwin")
    )
    fallback = window if has_display else None
    if settings.notify == "window":
        if not has_display:
            raise RelaxError(_("notify: window, but there is no display to show a window on"))
        return window(), None
    if sys.platform != "linux":
        from audio_engine.remind import desktop

        try:
            return desktop.DesktopNotifier(), fallback
        except notify.NotifyError as exc:
            if fallback is None:
                raise
            _say(_("relax: {problem}; reminders show in a window").format(problem=exc))
            return window(), None
    try:
        return notify.DBusNotifier(), fallback
    except notify.NotifyError as exc:
        if settings.notify == "dbus":
            raise RelaxError(str(exc)) from None
        if fallback is None:
            hint = _("{problem} (and no display for the window)")
            raise RelaxError(hint.format(problem=exc)) from None
        _say(_("relax: {problem}; reminders show in a window").format(problem=exc))
        return window(), None


def _foreground(args, path, settings) -> int:
    from audio_engine import library
    from audio_engine.remind import idle, lock, notify, runner, sharing, stats
    from audio_engine.remind import settings as st
    from audio_engine.remind.notify import NotifyError

    # A wrong session is said now, not when the first break's Start is pressed.
    library.resolve(settings.session)
    if settings.breathe:
        library.resolve(settings.breathe_session)
    folder = history.data_dir()
    instance = lock.InstanceLock(folder / lock.LOCK_NAME)
    try:
        acquired = instance.acquire()
    except OSError as exc:
        raise RelaxError(
            _("cannot create {path}: {reason}").format(
                path=instance.path, reason=exc.strerror or exc
            )
        ) from None
    if not acquired:
        raise lock.AlreadyRunning(
            _("relax remind is already running (pid {pid}); see `relax remind --status`").format(
                pid=instance.holder()
            )
        )
    stop: list[int] = []

    def on_signal(signum, frame):
        stop.append(signum)

    # The terminal closing (SIGHUP) stops it like SIGTERM, unless started with `nohup`.
    ending = [signal.SIGINT, *ending_signals()]
    old = {s: signal.signal(s, on_signal) for s in ending}
    store = None
    conn = None
    source = None
    notifier = None
    try:
        store = stats.Stats(warn=lambda text: _say(f"relax: {text}"))
        notifier, fallback = _notifier(settings)
        try:
            conn = notify.connect()
        except notify.NoBus:
            conn = None
        source, tried = idle.choose(conn)
        if isinstance(source, idle.WallClock):
            why = "; ".join(tried) or _("no idle source on this platform")
            _say(_("relax: no idle time here ({why}); counting wall-clock time").format(why=why))
        shares, sharing_line = None, _("not asked (respect_screen_sharing: false)")
        if settings.respect_screen_sharing:
            shares, not_here = sharing.choose(conn, say=_say)
            sharing_line = (
                shares.names
                if shares.probes
                else _("not seen here ({reasons})").format(reasons="; ".join(not_here))
            )
        info = {"settings": st.describe(settings), "notifier": notifier.name}
        r = runner.Runner(
            settings,
            notifier,
            source,
            store,
            _say,
            fallback=fallback,
            status_path=folder / runner.STATUS_NAME,
            tick_s=args.tick,
            info=info,
            sharing=shares,
        )
        shown = st.describe(settings)
        _say(
            _(
                "relax remind: a break after every {every} of activity ({hours_and_days}); "
                "reminders: {notifier}; idle time: {idle}; screen sharing: {sharing}; "
                "settings: {path}"
            ).format(
                every=_duration(shown["every"]),
                hours_and_days=_start_hours_and_days(shown["hours"], shown["days"]),
                notifier=notifier.name,
                idle=source.name,
                sharing=sharing_line,
                path=path,
            )
        )
        try:
            r.run(lambda: bool(stop))
        finally:
            notifier = r.notifier  # the window, if the bus was lost
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if notifier is not None:
            with contextlib.suppress(NotifyError, OSError):  # a bus already gone
                notifier.shutdown()
        if source is not None:
            source.close()
        if conn is not None:
            conn.close()
        if store is not None:
            store.close()
        instance.release()
    signum = stop[0]
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    _say(_("relax remind: stopped ({signal}); today's counts are kept").format(signal=name))
    return 130 if signum == signal.SIGINT else 128 + signum
