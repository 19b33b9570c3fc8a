"""`relax history`: your practice history (local only): last sessions, minutes, streaks, export."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import date

from audio_engine import history
from audio_engine.errors import UsageError
from audio_engine.i18n import _, ngettext

DEFAULT_LIMIT = 10


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a number of sessions (0 or more): {text!r}")
    return value


def _hour(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 23:
        raise argparse.ArgumentTypeError(f"not an hour (0-23): {text!r}")
    return value


def register(sub) -> None:
    parser = sub.add_parser(
        "history",
        help="your practice history: last sessions, minutes, streaks",
        description="Every `relax play` adds one row to a local SQLite file (RELAX_DATA_DIR, "
        "else your user data folder, e.g. ~/.local/share/relax/history.sqlite3): when it started "
        "and ended (local time with its UTC offset), the session and language, the seconds you "
        "listened (pauses excluded), whether it played to the end, and the breathing cycles "
        "done. Nothing leaves the machine. Without options: the last sessions, today's and this "
        "week's minutes (Monday to Sunday), and the current and longest streak of days, counted "
        "on your local clock (a session counts for the day it started; a day ends at 04:00, so "
        "a session at 00:30 counts for the evening before, see --day-ends; a day counts with 1 "
        "minute listened or a session completed).",
        epilog="examples: relax history --since 2026-11-01 | relax history --csv > plays.csv | "
        "relax history --off | relax history --forget --yes",
    )
    show = parser.add_argument_group("showing and exporting")
    show.add_argument(
        "--since",
        type=_date,
        metavar="DATE",
        help="only sessions on or after DATE (YYYY-MM-DD, your local date); lists all of them",
    )
    show.add_argument(
        "--limit",
        type=_limit,
        metavar="N",
        help=f"how many of the last sessions to list (default {DEFAULT_LIMIT}; 0 = all)",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--json",
        action="store_true",
        help="every session (since DATE) and the totals and streaks as JSON",
    )
    action.add_argument(
        "--csv", action="store_true", help="every session (since DATE) as CSV, one row each"
    )
    action.add_argument(
        "--off",
        action="store_true",
        help="stop recording plays (what is recorded stays; --forget deletes it)",
    )
    action.add_argument("--on", action="store_true", help="record plays again")
    action.add_argument(
        "--forget",
        action="store_true",
        help="delete every recorded session, after asking (needs a terminal, or --yes)",
    )
    action.add_argument(
        "--summary",
        choices=("on", "off"),
        help="whether `relax play` shows today's minutes at the end of a session (default on; "
        "`relax play --no-summary` skips it once)",
    )
    action.add_argument(
        "--streaks",
        choices=("on", "off"),
        help="show streaks (default on) or hide them everywhere: here, at the end of a session "
        "and in the window",
    )
    action.add_argument(
        "--day-ends",
        type=_hour,
        metavar="HOUR",
        help=f"the hour (0-23, local time) at which a practice day ends (default "
        f"{history.DAY_ENDS_H}: a session at 00:30 counts for the evening before; 0 = midnight)",
    )
    parser.add_argument(
        "--yes", "-y", action="store_true", help="with --forget: delete without asking"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    listing = not (args.off or args.on or args.forget or args.summary or args.streaks) and (
        args.day_ends is None
    )
    if not listing and (args.since is not None or args.limit is not None):
        raise UsageError("--since and --limit go with the listing (or --json, --csv)")
    if args.yes and not args.forget:
        raise UsageError("--yes goes with --forget")
    if args.off or args.on:
        return _switch(args.on)
    if args.summary:
        history.set_summary(args.summary == "on")
        if args.summary == "on":
            print(_("relax play shows today's minutes of practice at the end of a session."))
        else:
            print(_("relax play no longer shows today's minutes at the end of a session."))
        return 0
    if args.streaks:
        history.set_streaks(args.streaks == "on")
        if args.streaks == "on":
            print(_("Streaks are shown again."))
        else:
            print(
                _(
                    "Streaks are hidden: in `relax history`, at the end of a session and in the "
                    "window."
                )
            )
        return 0
    if args.day_ends is not None:
        history.set_day_ends_h(args.day_ends)
        print(_("A practice day ends at {hour:02d}:00 local time.").format(hour=args.day_ends))
        return 0
    if args.forget:
        return _forget(args.yes)
    day_ends = history.day_ends_h()
    everything = history.plays(day_ends=day_ends)
    shown = [
        p for p in everything if args.since is None or history.day_of(p, day_ends) >= args.since
    ]
    today = history.today(day_ends=day_ends)
    totals = history.summary(everything, today, day_ends)
    if args.json:
        _print_json(shown, totals, args.since)
    elif args.csv:
        _print_csv(shown)
    else:
        limit = args.limit if args.limit is not None else DEFAULT_LIMIT
        if args.since is None and limit:
            shown = shown[-limit:]
        _print_text(shown, totals, args.since, len(everything))
    return 0


def _switch(on: bool) -> int:
    history.set_recording(on)
    if on:
        print(_("Recording plays again, in {file}.").format(file=history.db_path()))
    else:
        try:
            kept = history.count()
        except history.HistoryError:
            kept = None
        if kept:
            what = ngettext(
                "the {n} recorded session stays", "the {n} recorded sessions stay", kept
            ).format(n=kept)
        else:
            what = _("what is recorded stays")
        print(
            _(
                "Recording is off: plays are not recorded until `relax history --on` ({what}; "
                "`relax history --forget` deletes them)."
            ).format(what=what)
        )
    return 0


def _is_terminal(stream) -> bool:
    """Whether `stream` is a terminal; False for a closed one (`relax history --forget <&-`,
    where Python's stream is None)."""
    try:
        return stream is not None and stream.isatty()
    except (OSError, ValueError):
        return False


def _forget(yes: bool) -> int:
    path = history.db_path()
    n = history.count()
    if n == 0:
        print(_("Nothing to forget: no sessions are recorded."))
        return 0
    if not yes:
        if not (_is_terminal(sys.stdin) and _is_terminal(sys.stdout)):
            raise UsageError(
                "--forget deletes your practice history and asks first: run it in a terminal, "
                "or add --yes"
            )
        try:
            answer = input(
                ngettext(
                    "Delete the {n} recorded session from {file}? This cannot be undone. [y/N] ",
                    "Delete all {n} recorded sessions from {file}? This cannot be undone. [y/N] ",
                    n,
                ).format(n=n, file=path)
            )
        except EOFError:
            answer = ""
        if answer.strip().casefold() not in ("y", "yes", _("y"), _("yes")):
            print(_("Nothing deleted."))
            return 1
    deleted = history.forget(path)
    print(
        ngettext(
            "Deleted {n} recorded session from {file}.",
            "Deleted {n} recorded sessions from {file}.",
            deleted,
        ).format(n=deleted, file=path)
    )
    return 0


def _print_json(shown, totals: history.Summary, since) -> None:
    data = {
        "file": str(history.db_path()),
        "recording": history.recording_on(),
        "since": since.isoformat() if since else None,
        "plays": [p.as_dict() for p in shown],
        "today": {
            "date": totals.today.isoformat(),
            "listened_s": round(totals.today_s, 3),
            "sessions": totals.today_sessions,
        },
        "week": {
            "from": totals.week_start.isoformat(),
            "listened_s": round(totals.week_s, 3),
            "sessions": totals.week_sessions,
        },
        "day_ends_h": history.day_ends_h(),
    }
    if history.streaks_on():
        data["streak"] = {
            "current_days": totals.streaks.current_days,
            "longest_days": totals.streaks.longest_days,
        }
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _print_csv(shown) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    columns = ("started", "ended", "session_id", "language", "listened_s", "completed", "cycles")
    writer.writerow(columns)
    for play in shown:
        row = play.as_dict()
        row["completed"] = int(play.completed)
        writer.writerow([row[c] for c in columns])


def _days(n: int) -> str:
    return ngettext("{n} day", "{n} days", n).format(n=n)


def _sessions(n: int) -> str:
    return ngettext("{n} session", "{n} sessions", n).format(n=n)


def _print_text(shown, totals: history.Summary, since, total: int) -> None:
    """The listing, in the interface language (`--ui-language`, else the system locale's)."""
    out = sys.stdout
    if not history.recording_on():
        print(_("Recording is off (`relax history --on` records plays again)."), file=out)
    if total == 0:
        print(
            _("No sessions recorded yet: each `relax play` is recorded in {file}.").format(
                file=history.db_path()
            ),
            file=out,
        )
        return
    if since is not None:
        print(
            _("Sessions since {date}: {count}").format(date=since.isoformat(), count=len(shown)),
            file=out,
        )
    elif len(shown) < total:
        print(
            ngettext(
                "The last {shown} of {total} session:",
                "The last {shown} of {total} sessions:",
                total,
            ).format(shown=len(shown), total=total),
            file=out,
        )
    else:
        print(ngettext("{n} session:", "{n} sessions:", total).format(n=total), file=out)
    if shown:
        width = max(len(p.session_id) for p in shown)
        states = (_("stopped"), _("completed"))
        state_width = max(len(s) for s in states)
        for play in reversed(shown):
            started = play.started
            when = f"{history.weekday_short(started.date())} {started:%Y-%m-%d %H:%M}"
            done = states[bool(play.completed)]
            cycles = ngettext("{n} cycle", "{n} cycles", play.cycles).format(n=play.cycles)
            print(
                f"  {when}  {play.session_id:<{width}}  {play.language:<5} "
                f"{history.clock_text(play.listened_s):>7}  {done:<{state_width}}  {cycles}",
                file=out,
            )
    labels = (_("Today:"), _("This week:"), _("Streak:"))
    pad = max(len(label) for label in labels) + 1
    print(file=out)
    print(
        f"{labels[0]:<{pad}}"
        + _("{minutes} in {sessions}").format(
            minutes=history.minutes_text(totals.today_s),
            sessions=_sessions(totals.today_sessions),
        ),
        file=out,
    )
    print(
        f"{labels[1]:<{pad}}"
        + _("{minutes} in {sessions} (since Monday {date})").format(
            minutes=history.minutes_text(totals.week_s),
            sessions=_sessions(totals.week_sessions),
            date=totals.week_start.isoformat(),
        ),
        file=out,
    )
    streak = totals.streaks
    if not history.streaks_on():
        return
    print(
        f"{labels[2]:<{pad}}"
        + _("{current} (longest {longest})").format(
            current=_days(streak.current_days), longest=_days(streak.longest_days)
        ),
        file=out,
    )
