"""The fallback reminder: a small calm pygame window with Start, Snooze and Skip.

Used where no notification server exists (or with `notify: window`). The window opens only
while a reminder is shown. Keys: Enter or S = Start, Z = Snooze, Esc or K = Skip; closing the
window is "closed" (a snooze while snoozes are left). Same interface as `notify.DBusNotifier`.
"""

from __future__ import annotations

import os
import time

from audio_engine.i18n import _
from audio_engine.remind.notify import actions_for

SIZE = (460, 200)
BACKGROUND = (28, 40, 56)
TEXT = (226, 232, 240)
MUTED = (150, 166, 186)
BUTTON = (52, 78, 104)
BUTTON_FIRST = (74, 124, 110)
KEYS = {"start": ("return", "s"), "snooze": ("z",), "skip": ("escape", "k")}


class WindowNotifier:
    @property
    def name(self) -> str:
        return _("a reminder window (pygame)")

    def __init__(self):
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame

        self.pg = pygame
        self.surface = None
        self.buttons: list[tuple[str, object]] = []
        self.reminder = None

    def show(self, reminder, body: str) -> None:
        pg = self.pg
        if not pg.display.get_init():
            pg.display.init()
        if not pg.font.get_init():
            pg.font.init()
        pg.display.set_caption(_("relax: {title}").format(title=reminder.title))
        self.surface = pg.display.set_mode(SIZE)
        self.reminder = reminder
        self._draw(reminder, body)
        pg.event.clear()

    def _draw(self, reminder, body: str) -> None:
        pg = self.pg
        s = self.surface
        s.fill(BACKGROUND)
        title_font = pg.font.Font(None, 34)
        font = pg.font.Font(None, 24)
        s.blit(title_font.render(reminder.title, True, TEXT), (24, 20))
        y = 60
        for line in _wrap(body, font, SIZE[0] - 48):
            s.blit(font.render(line, True, MUTED), (24, y))
            y += 22
        self.buttons = []
        actions = actions_for(reminder)
        width, gap = 124, 14
        x = SIZE[0] - 24 - len(actions) * width - (len(actions) - 1) * gap
        for i, (key, label) in enumerate(actions):
            rect = pg.Rect(x, SIZE[1] - 58, width, 38)
            pg.draw.rect(s, BUTTON_FIRST if i == 0 else BUTTON, rect, border_radius=8)
            hint = {"start": _("Enter"), "snooze": "Z", "skip": _("Esc")}[key]
            text = font.render(_("{label} ({key})").format(label=label, key=hint), True, TEXT)
            s.blit(text, text.get_rect(center=rect.center))
            self.buttons.append((key, rect))
            x += width + gap
        pg.display.flip()

    def close(self) -> None:
        if self.surface is not None:
            self.pg.display.quit()
            self.surface = None
            self.reminder = None

    def wait(self, timeout_s: float) -> list[str]:
        if self.surface is None:
            time.sleep(timeout_s)
            return []
        pg = self.pg
        deadline = time.monotonic() + timeout_s
        while True:
            for event in pg.event.get():
                answer = self._answer(event)
                if answer:
                    self.close()
                    return [answer]
            if time.monotonic() >= deadline:
                return []
            time.sleep(0.03)

    def _answer(self, event) -> str | None:
        pg = self.pg
        if event.type == pg.QUIT:
            return "closed"
        if event.type == pg.KEYDOWN:
            name = pg.key.name(event.key)
            offered = {key for key, _label in self.buttons}
            for answer, names in KEYS.items():
                if name in names and answer in offered:
                    return answer
        if event.type == pg.MOUSEBUTTONDOWN and event.button == 1:
            for key, rect in self.buttons:
                if rect.collidepoint(event.pos):
                    return key
        return None

    def inhibited(self) -> bool | None:
        return None

    def shutdown(self) -> None:
        self.close()


def _wrap(text: str, font, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if font.size(candidate)[0] <= width or not line:
            line = candidate
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines
