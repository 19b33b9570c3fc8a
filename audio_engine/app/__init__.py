"""The library window: the sessions, their choices, playing, history, reminders, all in one
pygame window (the pacer's), for people who never open a terminal.

Entry points:

- `run()`: the `relax-app` GUI script (and `python -m audio_engine.app`); `relax` with no
  arguments opens the same window where a display exists.
- Modules: `model` (the library grouped, the remembered choices; no pygame), `ui` (drawing:
  text in boxes, buttons with a visible focus, every drawn box recorded), `window` (the views
  and the event loop), `saving` (save for your phone: the MP3 in a thread), `reminders` (the
  Reminders view's settings, through remind's own functions), `launcher` (the app-menu entry),
  `icon` (the icon, drawn).

An edge module like the player: it uses the pipeline, the player, history and remind through
their public functions; the pure stages never import it (import-linter). docs/player.md
describes the window.
"""

from __future__ import annotations

import sys


def run() -> None:
    """Open the library window; exit with its status (130 after Ctrl-C)."""
    from audio_engine.errors import RelaxError
    from audio_engine.i18n import _

    try:
        from audio_engine.app import window

        code = window.main(sys.argv[1:])
    except RelaxError as exc:
        print(_("relax: error: {message}").format(message=exc), file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)
