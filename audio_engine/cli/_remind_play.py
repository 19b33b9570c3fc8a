"""`python -m audio_engine.cli._remind_play SESSION`: `relax play SESSION`, telling how it ended.

The reminder runs a break's session in this child process (the same interpreter, so the same
environment), with the pacer window. Exit status: 0 when the session played to the end (a break
*taken*), 3 when the listener quit or closed the window, else `relax play`'s own error status.
"""

from __future__ import annotations

import sys

from audio_engine.remind.runner import QUIT_EXIT


def main(argv: list[str]) -> int:
    from audio_engine import cli, player

    outcome: list[str] = []
    play = player.play

    def recorded(*args, **kwargs):
        result = play(*args, **kwargs)
        outcome.append(result)
        return result

    # `relax play` calls `player.play` by attribute at run time: wrapped here, so the command
    # itself stays exactly what the user runs.
    player.play = recorded
    code = cli.main(["play", *argv])
    if code == 0 and outcome[-1:] != ["end"]:  # quit, closed, or written to a file instead
        return QUIT_EXIT
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
