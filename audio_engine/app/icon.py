"""relax's icon, drawn here with pygame in the pacer's colours: the breathing circle.

Entry points: `draw(size_px) -> pygame.Surface` (square, with alpha), `save_png(path, size_px)`.
Drawn when needed (the app-menu entry installs it at 48, 128 and 256 px; the window uses it as its
own icon), so there is no image file to keep in step with the look.
"""

from __future__ import annotations

from pathlib import Path

from audio_engine.player import pacer

SIZES_PX = (48, 128, 256)


def draw(size_px: int):
    """The icon at `size_px` x `size_px`: a rounded night-blue square, a guide ring, the breath."""
    from audio_engine.player.app import import_pygame

    import_pygame()
    import pygame
    import pygame.gfxdraw as gfx

    # Drawn 4x larger and scaled down smoothly: even edges at 48 px.
    big = size_px * 4
    surface = pygame.Surface((big, big), pygame.SRCALPHA)
    pygame.draw.rect(surface, pacer.BACKGROUND, (0, 0, big, big), border_radius=big // 5)
    c = big // 2
    ring = int(big * 0.40)
    for width in range(max(2, big // 64)):
        gfx.aacircle(surface, c, c, ring - width, pacer.MUTED)
    gfx.filled_circle(surface, c, c, int(big * 0.31), pacer.HALO)
    gfx.filled_circle(surface, c, c, int(big * 0.26), pacer.BREATH)
    gfx.aacircle(surface, c, c, int(big * 0.26), pacer.BREATH)
    return pygame.transform.smoothscale(surface, (size_px, size_px))


def png_bytes(size_px: int) -> bytes:
    """The icon at `size_px` as the bytes of a PNG file."""
    import io

    surface = draw(size_px)
    import pygame

    out = io.BytesIO()
    pygame.image.save(surface, out, "icon.png")
    return out.getvalue()


def save_png(path: Path, size_px: int) -> Path:
    """Write the icon at `size_px` to `path` (PNG); returns `path`."""
    surface = draw(size_px)
    import pygame

    path.parent.mkdir(parents=True, exist_ok=True)
    pygame.image.save(surface, str(path))
    return path
