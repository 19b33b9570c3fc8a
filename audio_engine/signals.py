"""The signals that end a command as an error does (through every `finally`, no temporary file
left behind, exit status 128 + the signal's number): `ending_signals()`.

SIGTERM (a `kill`, a logout), and SIGHUP (the terminal closed) unless it is ignored: `nohup relax
export ...` keeps running. Used by the command line (`cli`), the player's keys and `export --all`.
"""

from __future__ import annotations

import signal


def ending_signals() -> list[int]:
    """SIGTERM, and SIGHUP unless it is ignored (`nohup`)."""
    found = [signal.SIGTERM]
    hup = getattr(signal, "SIGHUP", None)
    if hup is not None and signal.getsignal(hup) not in (signal.SIG_IGN, None):
        found.append(hup)
    return found
