"""`python -m audio_engine` is the `relax` command."""

from audio_engine.cli import main

raise SystemExit(main())
