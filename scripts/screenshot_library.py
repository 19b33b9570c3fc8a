#!/usr/bin/env python3
"""Make the README's opening picture: the library window, drawn off-screen, saved as a PNG.

    .venv/bin/python scripts/screenshot_library.py                 # docs/library.png, 960x720
    .venv/bin/python scripts/screenshot_library.py --size 800x600 --ui-language nl -o nl.png

It draws the window with SDL's dummy video driver in a private settings and data folder (no
first-start safety text, nothing marked as played), so the picture is the same on every machine
that has the same sessions.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="960x720", metavar="WxH")
    parser.add_argument("--ui-language", default="en", metavar="LANG")
    parser.add_argument("--view", default="library", choices=("library", "session"))
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "library.png")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    private = Path(tempfile.mkdtemp(prefix="relax-shot-"))
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    os.environ["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"
    os.environ["RELAX_SETTINGS_DIR"] = str(private / "settings")
    os.environ["RELAX_DATA_DIR"] = str(private / "data")
    os.environ["RELAX_SESSIONS_DIR"] = str(private / "sessions")
    (private / "settings").mkdir()
    (private / "settings" / "safety-shown-in-window").write_text("shown\n")

    import pygame

    from audio_engine import i18n
    from audio_engine.app import window

    i18n.set_language(args.ui_language)
    pygame.display.init()
    pygame.font.init()
    screen = pygame.display.set_mode((width, height))
    app = window.App(screen)
    app.items = [
        window.model.replace_new(item, item.id in ("sleep-wind-down", "body-scan"))
        for item in app.items
    ]
    if args.view == "session":
        app.open_item(next(i for i in app.items if i.id == "quick-reset"))
    else:
        app.focus = "item:breathing-478"
    app.frame()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    pygame.image.save(screen, str(args.output))
    pygame.display.quit()
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
