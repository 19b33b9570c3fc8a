"""`relax phone [SESSION...]`: the library as a private podcast on the home network.

Entry point: `register(sub)`. The sessions are exported into the feed folder (only what changed),
`feed.xml` is written for the address served, and the folder is served until Ctrl-C; the link is
printed with a QR code (and saved as a PNG beside the feed). See docs/phone.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audio_engine.cli import _common
from audio_engine.errors import UsageError
from audio_engine.phone import _


def register(sub) -> None:
    parser = sub.add_parser(
        "phone",
        help="your sessions as a private podcast for your phone, on your home network",
        description="Export the sessions (default: the whole library in one language) as MP3 "
        "with chapters and transcripts into a feed folder, write a podcast feed for them and "
        "serve it on this computer's address in the local network. Subscribe in a podcast app "
        "by scanning the QR code; the phone then downloads the sessions and plays them "
        "offline. Only sessions that changed are exported again.",
        epilog="Examples: relax phone -l nl; relax phone breathing-478 body-scan; "
        "relax phone --no-serve (only make the feed)",
    )
    parser.add_argument(
        "sessions",
        nargs="*",
        metavar="SESSION",
        help="built-in session ids (see `relax list`), ids in your sessions folder, or files "
        "(default: every session of the library that has a LANG version)",
    )
    _common.add_language_argument(
        parser, "the feed's language (default: your locale's, else English)"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="the feed folder (default: feed in relax's data folder)",
    )
    parser.add_argument(
        "--port",
        type=int,
        metavar="N",
        help="the port to serve on (default: the one used last, else 8478; 0: any free port)",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="serve to this computer only (127.0.0.1), not to the local network",
    )
    parser.add_argument(
        "--no-serve", action="store_true", help="make the feed folder and stop, without serving"
    )
    parser.add_argument(
        "--new-link",
        action="store_true",
        help="make a new secret link: phones subscribed with the old one can no longer listen",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from audio_engine import library
    from audio_engine.phone import episodes, link, server

    if args.port is not None and not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0-65535, not {args.port}")
    language = args.language or library.locale_language() or "en"
    folder = args.dir if args.dir is not None else episodes.default_folder()
    episodes.make_folder(folder)
    state = episodes.load_state(folder)
    if args.new_link:
        state["token"] = episodes.new_token()
    selection = episodes.select(args.sessions, language)
    for name, reason in selection.missing:
        print(f"relax: error: {name}: {reason}", file=sys.stderr)
    if not selection.scripts:
        if selection.missing:
            return 1
        print(
            _("relax: error: no session of the library has a '{language}' version").format(
                language=language
            ),
            file=sys.stderr,
        )
        return 1
    # The address and port first: one that cannot be had is said before minutes of exporting.
    host, found = link.address(args.local)
    if not found:
        print(
            _("relax: no local network found; only this computer can listen (127.0.0.1)"),
            file=sys.stderr,
        )
    port = link.port(state, args.port)
    serving = None
    if not args.no_serve:
        serving = server.Server(folder, state["token"], (), host, port, log=_log)
        port = serving.port
    try:
        return _make_and_serve(args, selection, folder, state, language, host, port, serving)
    finally:
        if serving is not None:
            serving.close()


def _make_and_serve(args, selection, folder, state, language, host, port, serving) -> int:
    from audio_engine.phone import episodes, feed, link, qr

    progress = _common.Progress(_("exporting sessions for your phone"))
    try:
        result = episodes.update(
            selection.scripts,
            folder,
            language,
            state=state,
            progress=lambda fraction: progress(int(fraction * 1_000_000), 1_000_000),
            weight=_weight,
        )
    finally:
        progress.done()
    for name, reason in result.failed:
        print(f"relax: error: {name}: {reason}", file=sys.stderr)
    print(
        _("relax: {made} exported, {kept} unchanged, in {folder}").format(
            made=len(result.made), kept=len(result.kept), folder=folder
        ),
        file=sys.stderr,
    )
    url = link.publish(folder, state, result.episodes, language, host, port, args.port)
    print(
        _("relax: in a podcast app on your phone, scan this code or add the link under it:"),
        file=sys.stderr,
        flush=True,
    )
    print(qr.terminal_text(url), end="")
    print(url, flush=True)
    failed = bool(result.failed or selection.missing)
    if serving is None:
        return 1 if failed else 0
    serving.app.set_files(feed.served_files(result.episodes))
    print(start_line(host, len(result.episodes)), file=sys.stderr, flush=True)
    serving.serve_forever()
    return 0


def start_line(host: str, count: int) -> str:
    """The line that says who can listen now and how to stop."""
    from audio_engine.i18n import ngettext

    if host.startswith("127.") or host == "::1":
        return ngettext(
            "relax: serving {count} session to this computer only; stop with Ctrl-C",
            "relax: serving {count} sessions to this computer only; stop with Ctrl-C",
            count,
        ).format(count=count)
    return ngettext(
        "relax: serving {count} session on {host}: anyone on this network who has the link can "
        "listen; stop with Ctrl-C",
        "relax: serving {count} sessions on {host}: anyone on this network who has the link can "
        "listen; stop with Ctrl-C",
        count,
    ).format(count=count, host=host)


def _weight(script: Path) -> float:
    from audio_engine.cli.export import _expected_s

    return _expected_s(str(script))


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
