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

SETTING_FLAGS = (
    ("every", "DURATION", "a break after this much active time (default 45m; 30m-60m advised)"),
    ("snooze", "DURATION", "Snooze asks again after this much more active time (default 10m)"),
    ("snoozes", "N", "at most N snoozes in a row (default 2)"),
    ("idle", "DURATION", "no input this long is a natural break (default 5m)"),
    ("hours", "H-H", "working hours, e.g. 9-17 or 8:30-17:30 (default all)"),
    ("days", "DAYS", "working days, e.g. mon-fri (default all)"),
    ("breathe", "TIMES", "4-7-8 breathing nudges at these times, e.g. 11:00,15:00"),
    ("session", "SESSION", "what Start plays for a break (default desk-stretches)"),
    (
        "breathe_session",
        "SESSION",
        "what Start plays for a breathing nudge (default breathing-478)",
    ),
    ("notify", "HOW", "auto, dbus or window (default auto)"),
)


def register(sub) -> None:
    parser = sub.add_parser(
        "remind",
        help="break reminders on active time",
        description="Remind you to take a break after --every of activity at the computer "
        "(idle 5 minutes, the screen locked or the machine asleep counts as a break and starts "
        "the count again). Start plays a session in the pacer window; Snooze asks again later "
        "(at most twice in a row); Skip waits for the next one. A due reminder waits (and then "
        "says why) while do-not-disturb is on, a window is fullscreen or the screen is shared or "
        "recorded (settings respect_dnd, respect_fullscreen, respect_screen_sharing). Runs in "
        "the foreground until Ctrl-C; one at a time. Settings: remind.yaml in your settings "
        "folder; flags override it.",
        epilog="Durations: 45m, 1h, 90s. Exit status: 130 after Ctrl-C, 143 after SIGTERM, 1 for "
        "bad settings or no way to show reminders; --status: 0 running, 3 not running. "
        "See docs/remind.md.",
    )
    for name, metavar, help_text in SETTING_FLAGS:
        parser.add_argument(
            f"--{name.replace('_', '-')}", dest=name, metavar=metavar, help=help_text
        )
    parser.add_argument(
        "--settings", type=Path, metavar="FILE", help="read this settings file instead"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--status", action="store_true", help="what is scheduled now and today's counts"
    )
    mode.add_argument(
        "--install",
        action="store_true",
        help="start at login with these flags (a systemd user unit; macOS, Windows: untested)",
    )
    mode.add_argument("--uninstall", action="store_true", help="no longer start at login")
    mode.add_argument(
        "--print-settings",
        action="store_true",
        help="print the settings in force as a commented settings file",
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
    flags = {name: getattr(args, name) for name, _, _ in SETTING_FLAGS}
    try:
        settings, flag_warnings = settings.override(**flags)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for warning in flag_warnings:
        print(f"relax: warning: {warning}", file=sys.stderr)
    return path, settings


def run(args: argparse.Namespace) -> int:
    from audio_engine.remind import settings as st

    if args.tick <= 0:
        raise UsageError("--tick must be positive")
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
    for name, _, _ in SETTING_FLAGS:
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
        raise RelaxError(f"cannot write {t.path}: {exc.strerror or exc}") from None
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
        print(f"relax remind: running (pid {pid})")
    else:
        print("relax remind: not running")
    shown = state["settings"] if state and state.get("settings") else st.describe(settings)
    print(
        f"  every {shown['every']} of activity; snooze {shown['snooze']} (at most "
        f"{shown['snoozes']} in a row); idle {shown['idle']} is a break"
    )
    print(
        f"  working hours {shown['hours']}, days {shown['days']}; breathing nudges "
        f"{shown['breathe']}; session {shown['session']}"
    )
    waits = [
        label
        for key, label in (
            ("respect_dnd", "do-not-disturb"),
            ("respect_fullscreen", "a fullscreen window"),
            ("respect_screen_sharing", "screen sharing"),
        )
        if shown.get(key, "true") == "true"
    ]
    print(f"  reminders wait for: {', '.join(waits) or 'nothing'}")
    if state:
        s = state["schedule"]
        print(f"  reminders: {state['notifier']}; idle time: {state['idle']}")
        if state.get("sharing"):
            print(f"  screen sharing seen by: {state['sharing']}")
        if s["in_session"]:
            print(f"  now: a {s['in_session']} session is playing")
        elif s["showing"]:
            print(f"  now: the {s['showing']} reminder is on screen")
        elif not s["in_working_hours"]:
            print("  now: outside working hours")
        else:
            print(
                f"  next break: after {_mins(s['break_in_s'])} more of activity "
                f"(active {_mins(s['active_s'])} so far"
                + (f", snoozed {s['snoozes_in_a_row']}x" if s["snoozes_in_a_row"] else "")
                + ")"
            )
        if s["next_breathe"]:
            print(f"  next breathing nudge: {s['next_breathe']}")
        for kind, reason in s["postponed"].items():
            print(f"  postponed: the {kind} reminder ({reason})")
    today = dt.date.today()
    counts = stats.read_day_counts(today)
    print(f"today ({today.isoformat()}):")
    for kind, label in (("break", "breaks"), ("breathe", "breathing")):
        c = counts.get(kind, {})
        print(
            f"  {label}: {c.get('due', 0)} due, {c.get('taken', 0)} taken, "
            f"{c.get('stopped', 0)} stopped early, {c.get('snoozed', 0)} snoozed, "
            f"{c.get('skipped', 0)} skipped"
            + (f", {c.get('natural', 0)} natural" if kind == "break" else "")
            + (f", {c.get('postponed', 0)} postponed" if c.get("postponed") else "")
        )
    return 0 if running else 3


def _mins(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


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
            raise RelaxError("notify: window, but there is no display to show a window on")
        return window(), None
    if sys.platform != "linux":
        from audio_engine.remind import desktop

        try:
            return desktop.DesktopNotifier(), fallback
        except notify.NotifyError as exc:
            if fallback is None:
                raise
            _say(f"relax: {exc}; reminders show in a window")
            return window(), None
    try:
        return notify.DBusNotifier(), fallback
    except notify.NotifyError as exc:
        if settings.notify == "dbus" or fallback is None:
            hint = "" if settings.notify == "dbus" else " (and no display for the window)"
            raise RelaxError(f"{exc}{hint}") from None
        _say(f"relax: {exc}; reminders show in a window")
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
        raise RelaxError(f"cannot create {instance.path}: {exc.strerror or exc}") from None
    if not acquired:
        raise lock.AlreadyRunning(
            f"relax remind is already running (pid {instance.holder()}); "
            "see `relax remind --status`"
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
            why = "; ".join(tried) or "no idle source on this platform"
            _say(f"relax: no idle time here ({why}); counting wall-clock time")
        shares, sharing_line = None, "not asked (respect_screen_sharing: false)"
        if settings.respect_screen_sharing:
            shares, not_here = sharing.choose(conn, say=_say)
            sharing_line = (
                shares.names if shares.probes else f"not seen here ({'; '.join(not_here)})"
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
            f"relax remind: a break after every {shown['every']} of activity "
            f"(hours {shown['hours']}, days {shown['days']}); reminders: {notifier.name}; "
            f"idle time: {source.name}; screen sharing: {sharing_line}; settings: {path}"
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
    _say(f"relax remind: stopped ({name}); today's counts are kept")
    return 130 if signum == signal.SIGINT else 128 + signum
