"""The feed's link as a QR code (segno, pure Python): for a terminal, and as a PNG.

Entry points:

- `terminal_text(url) -> str`: the code drawn with half-block characters, two modules a line.
- `write_png(url, path) -> Path`: the same code as a PNG (written only when its bytes change).
- `PNG_NAME`: the PNG's name beside the feed (`relax-phone-qr.png`).
"""

from __future__ import annotations

import io
from pathlib import Path

from audio_engine.phone.episodes import write_bytes

PNG_NAME = "relax-phone-qr.png"
ERROR_LEVEL = "m"  # 15 % of the code may be unreadable (a glare on the screen)
PNG_SCALE = 10  # pixels per module
BORDER = 4  # the quiet zone, in modules, that readers need around the code


def _code(url: str):
    import segno

    return segno.make(url, error=ERROR_LEVEL, micro=False)


def terminal_text(url: str) -> str:
    """The code in half-block characters (segno's compact terminal writer): a block is a light
    module, so it reads as dark on light on a terminal with light text on a dark background."""
    out = io.StringIO()
    _code(url).terminal(out=out, compact=True, border=BORDER)
    return out.getvalue()


def png_bytes(url: str) -> bytes:
    out = io.BytesIO()
    _code(url).save(out, kind="png", scale=PNG_SCALE, border=BORDER)
    return out.getvalue()


def write_png(url: str, path: Path) -> Path:
    write_bytes(path, png_bytes(url))
    return path
