"""The feed's picture: the project's icon, drawn in the pacer's colours.

Entry point: `icon_png(size_px=SIZE_PX) -> bytes`, a square PNG. This is the one place the
feed takes its picture from: another icon of the project can take its place here.

The picture: the pacer's breathing circle on its night-blue background, with two soft rings
around it (a breath going out) and a thin horizon under it. Drawn with pygame on a surface
(no window) at twice the size and scaled down smoothly, so its edges are soft.
"""

from __future__ import annotations

import io
import os

SIZE_PX = 1400  # podcast apps ask for square artwork of 1400-3000 px
BACKGROUND = (17, 24, 36)  # the pacer's colours (audio_engine/player/pacer.py)
HALO = (31, 52, 64)
GUIDE = (44, 58, 78)
BREATH = (96, 164, 172)
FILL = (118, 172, 180)


def icon_png(size_px: int = SIZE_PX) -> bytes:
    """The icon as PNG bytes, `size_px` square (the same bytes every time)."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    big = size_px * 2
    surface = pygame.Surface((big, big))
    surface.fill(BACKGROUND)
    centre = (big // 2, int(big * 0.46))
    for radius, colour, width in (
        (0.36, GUIDE, 0.010),
        (0.295, HALO, 0.018),
    ):
        pygame.draw.circle(surface, colour, centre, int(big * radius), max(1, int(big * width)))
    pygame.draw.circle(surface, HALO, centre, int(big * 0.245))
    pygame.draw.circle(surface, BREATH, centre, int(big * 0.215))
    pygame.draw.circle(surface, FILL, centre, int(big * 0.09))
    line_y = int(big * 0.89)
    pygame.draw.line(
        surface, GUIDE, (int(big * 0.3), line_y), (int(big * 0.7), line_y), int(big * 0.012)
    )
    small = pygame.transform.smoothscale(surface, (size_px, size_px))
    out = io.BytesIO()
    pygame.image.save(small, out, "icon.png")
    return out.getvalue()
