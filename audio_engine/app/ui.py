"""Drawing for the library window: text that stays in its box, buttons with a visible focus.

Entry point: `Kit(surface, focus)`, made anew for every frame. A view draws with it
(`kit.text`, `kit.button`, `kit.bar`, ...); the kit records every text with the box it must
stay in (`kit.texts`), every box it filled (`kit.boxes`) and every control in focus order
(`kit.controls`), which the window uses for Tab, arrows, Enter and clicks, and the tests for
checking a frame. Sizes follow the window's height (and its width when that is the narrower
side), so the same views read at 800x600, at 1920x1080 and on a HiDPI screen; a control is never
lower than `TARGET_MIN_PX`.

Written here rather than taken from pygame-menu: see docs/design.md (the views are a handful of
buttons and lists, and the frames must report their text boxes for the tests, as the pacer does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from audio_engine.player import pacer

TARGET_MIN_PX = 44  # the smallest a control is, either way
TEXT_MIN_PX = 12
SHRINK = 0.8  # a line too long for its box gets at most this much smaller, then is cut
BACKGROUND = pacer.BACKGROUND
TEXT = pacer.TEXT
MUTED = pacer.MUTED
PANEL = (26, 36, 52)
BUTTON = (40, 56, 78)
BUTTON_ON = (62, 112, 118)  # a chosen option
PRIMARY = pacer.BREATH
PRIMARY_TEXT = pacer.BREATH_TEXT
FOCUS = (240, 200, 120)  # a warm ring around the focused control, seen on every colour here
BAR = pacer.FILL
TRACK = pacer.TRACK
NEW = (196, 160, 96)


@dataclass(frozen=True)
class Drawn:
    """One text drawn: its role, the text, its box on screen, its size, and the box it must
    stay inside."""

    role: str
    text: str
    rect: tuple[int, int, int, int]
    size_px: int
    box: tuple[int, int, int, int]


@dataclass
class Control:
    """A focusable control: its id, its box and what activating it does."""

    id: str
    rect: tuple[int, int, int, int]
    action: Callable[[], None]
    label: str = ""


_FONTS: dict[tuple[int, bool], object] = {}


def font(size_px: int, bold: bool = False):
    import pygame

    size_px = max(TEXT_MIN_PX, int(size_px))
    key = (size_px, bold)
    if key not in _FONTS:
        if not pygame.font.get_init():
            pygame.font.init()
        path = pacer.BOLD_FONT if bold else pacer.REGULAR_FONT
        _FONTS[key] = pygame.font.Font(str(path), size_px)
    return _FONTS[key]


class Kit:
    def __init__(self, surface, focus: str | None):
        import pygame

        self.pg = pygame
        self.surface = surface
        self.focus = focus
        self.w, self.h = surface.get_size()
        # The base text size: from the height, held back by a narrow width.
        self.unit = max(14, min(self.h // 30, self.w // 42))
        self.target = max(TARGET_MIN_PX, int(self.unit * 2.4))
        self.pad = max(8, self.unit // 2)
        self.texts: list[Drawn] = []
        self.boxes: list[tuple[str, tuple[int, int, int, int]]] = []
        self.controls: list[Control] = []
        surface.fill(BACKGROUND)

    # ---- text -------------------------------------------------------------------------------

    def fit(self, text: str, size_px: int, width_px: int, bold: bool = False) -> tuple[str, int]:
        """`text` at `size_px` or a little smaller (down to `SHRINK` of it, never under
        TEXT_MIN_PX) to fit `width_px`; cut with an ellipsis when even that is too wide."""
        size = max(TEXT_MIN_PX, int(size_px))
        smallest = max(TEXT_MIN_PX, int(size_px * SHRINK))
        while size > smallest and font(size, bold).size(text)[0] > width_px:
            size -= 1
        f = font(size, bold)
        if f.size(text)[0] <= width_px:
            return text, size
        while text and f.size(text + "\u2026")[0] > width_px:
            text = text[:-1]
        return (text.rstrip() + "\u2026") if text else "", size

    def text(
        self,
        role: str,
        text: str,
        box,
        size_px: int,
        colour=TEXT,
        bold: bool = False,
        align: str = "left",
    ) -> int:
        """One line of `text` in `box` (x, y, w, h), vertically centred; returns its width."""
        x, y, w, h = (int(v) for v in box)
        text, size = self.fit(text, min(size_px, h), w, bold)
        if not text:
            return 0
        image = font(size, bold).render(text, True, colour)
        rect = image.get_rect()
        rect.centery = y + h // 2
        if align == "center":
            rect.centerx = x + w // 2
        elif align == "right":
            rect.right = x + w
        else:
            rect.left = x
        rect.clamp_ip(self.pg.Rect(x, y, w, h))
        self.surface.blit(image, rect)
        self.texts.append(Drawn(role, text, tuple(rect), size, (x, y, w, h)))
        return rect.width

    def paragraph(self, role: str, text: str, box, size_px: int, colour=TEXT) -> int:
        """`text` wrapped in `box`, each of its lines (`\n`) on a line of its own; what does not
        fit ends with an ellipsis. Returns the height."""
        x, y, w, h = (int(v) for v in box)
        f = font(size_px)
        lines = [line for part in text.split("\n") for line in pacer.wrap(f, part, w)]
        line_px = f.get_linesize()
        room = max(0, h // line_px)
        if len(lines) > room:
            lines = lines[:room]
            if lines:
                last, _size = self.fit(lines[-1] + " \u2026", size_px, w)
                lines[-1] = last
        for i, line in enumerate(lines):
            self.text(role, line, (x, y + i * line_px, w, line_px), size_px, colour)
        return len(lines) * line_px

    # ---- shapes and controls ----------------------------------------------------------------

    def panel(self, role: str, rect, colour=PANEL, radius: int | None = None) -> None:
        r = self.pg.Rect(rect)
        self.pg.draw.rect(self.surface, colour, r, border_radius=radius or self.pad)
        self.boxes.append((role, tuple(r)))

    def button(
        self,
        id: str,
        label: str,
        rect,
        action: Callable[[], None],
        *,
        chosen: bool = False,
        primary: bool = False,
        size_px: int | None = None,
    ) -> None:
        """A control: a rounded box with its label, at least TARGET_MIN_PX each way."""
        r = self.pg.Rect(rect)
        r.height = max(r.height, TARGET_MIN_PX)
        r.width = max(r.width, TARGET_MIN_PX)
        colour = PRIMARY if primary else BUTTON_ON if chosen else BUTTON
        text_colour = PRIMARY_TEXT if primary else TEXT
        self.pg.draw.rect(self.surface, colour, r, border_radius=self.pad)
        if chosen and not primary:
            self.pg.draw.rect(self.surface, PRIMARY, r, width=2, border_radius=self.pad)
        inner = r.inflate(-2 * self.pad, -4)
        self.text(
            "button", label, inner, size_px or self.unit, text_colour, bold=primary, align="center"
        )
        self.boxes.append(("button", tuple(r)))
        self.controls.append(Control(id, tuple(r), action, label))
        if id == self.focus:
            self.ring(r)

    def ring(self, r) -> None:
        """The focus: a warm ring just outside the control."""
        width = max(3, self.unit // 6)
        outer = self.pg.Rect(r).inflate(2 * width + 4, 2 * width + 4)
        self.pg.draw.rect(self.surface, FOCUS, outer, width=width, border_radius=self.pad + width)
        self.boxes.append(("focus", tuple(outer)))

    def bar(self, rect, fraction: float, colour=BAR) -> None:
        r = self.pg.Rect(rect)
        self.pg.draw.rect(self.surface, TRACK, r, border_radius=r.height // 2)
        filled = int(r.width * min(1.0, max(0.0, fraction)))
        if filled > 0:
            self.pg.draw.rect(
                self.surface, colour, (r.x, r.y, filled, r.height), border_radius=r.height // 2
            )
        self.boxes.append(("bar", tuple(r)))

    def button_width(self, label: str, size_px: int | None = None, bold: bool = False) -> int:
        return max(
            TARGET_MIN_PX,
            font(size_px or self.unit, bold).size(label)[0] + 3 * self.pad,
        )
