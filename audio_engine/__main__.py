"""`python -m audio_engine` is the `relax` command (`run` is also the `relax` console script)."""

import atexit
import os
import signal
import sys


def run() -> None:
    """Run the command line and exit with its code; Ctrl-C always ends with exit code 130."""
    try:
        from audio_engine.cli import main
    except KeyboardInterrupt:  # Ctrl-C while Python is still starting up
        sys.stderr.write("relax: interrupted\n")
        code = 130
    else:
        code = main()
    # The work is done (or cleanly stopped): a Ctrl-C from here on would only turn the exit
    # status into "killed by SIGINT" while Python shuts down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if code == 130:
        # A Ctrl-C that landed inside an import can leave the interpreter set to end by SIGINT
        # (exit status -2) even though it was handled: finish here, cleanly, with 130.
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    raise SystemExit(code)


if __name__ == "__main__":
    run()
