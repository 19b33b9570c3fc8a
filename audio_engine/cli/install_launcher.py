"""`relax install-launcher`: add relax to the desktop's app menu (or take it out again)."""

from __future__ import annotations

import argparse

from audio_engine.errors import RelaxError
from audio_engine.i18n import _


def register(sub) -> None:
    parser = sub.add_parser(
        "install-launcher",
        help="add relax to your app menu",
        description="Add relax to the app menu: on Linux a freedesktop entry in "
        "$XDG_DATA_HOME/applications (relax.desktop) and its icon (PNG, 48, 128 and 256 px) in "
        "the hicolor theme under $XDG_DATA_HOME/icons; the entry opens the session library. On "
        "macOS and Windows pyshortcuts makes the shortcut (pip install pyshortcuts; untested "
        "there).",
    )
    parser.add_argument(
        "--uninstall", action="store_true", help="take relax out of the app menu again"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from audio_engine.app import launcher

    try:
        if args.uninstall:
            removed = launcher.uninstall()
            for path in removed:
                print(_("removed {path}").format(path=path))
            if not removed:
                print(_("relax was not in the app menu: nothing to remove"))
            return 0
        for path in launcher.install():
            print(_("wrote {path}").format(path=path))
    except (OSError, NotImplementedError) as exc:
        raise RelaxError(_("cannot change the app menu: {reason}").format(reason=exc)) from None
    print(_("relax is in your app menu (search for relax, or ontspanning)"))
    return 0
