"""The fallback reminder window (pygame, dummy video driver): drawn, answered by keys and clicks."""

from __future__ import annotations

import numpy as np
import pytest

from audio_engine.remind.schedule import BREAK, Config, Reminder
from audio_engine.remind.window import BACKGROUND, SIZE, WindowNotifier

pygame = pytest.importorskip("pygame")


@pytest.fixture
def window():
    w = WindowNotifier()
    yield w
    w.shutdown()


def _show(w, can_snooze=True):
    r = Reminder(BREAK, can_snooze=can_snooze, note="a window was fullscreen")
    w.show(r, r.body(Config()))
    return r


def test_the_window_is_calm_and_shows_three_buttons(window, tmp_path):
    _show(window)
    surface = pygame.display.get_surface()
    assert surface.get_size() == SIZE
    pixels = pygame.surfarray.array3d(surface)
    # Mostly the dark background; text and buttons take a small part.
    share = np.mean(np.all(pixels == BACKGROUND, axis=2))
    assert 0.6 < share < 0.97
    assert [key for key, _ in window.buttons] == ["start", "snooze", "skip"]
    pygame.image.save(surface, str(tmp_path / "remind-window.png"))
    assert window.wait(0.05) == []


@pytest.mark.parametrize(
    ("key", "answer"),
    [
        ("K_RETURN", "start"),
        ("K_s", "start"),
        ("K_z", "snooze"),
        ("K_ESCAPE", "skip"),
        ("K_k", "skip"),
    ],
)
def test_keys(window, key, answer):
    _show(window)
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=getattr(pygame, key)))
    assert window.wait(1) == [answer]
    assert pygame.display.get_surface() is None  # closed after the answer


def test_snooze_key_does_nothing_when_snooze_is_not_offered(window):
    _show(window, can_snooze=False)
    assert [key for key, _ in window.buttons] == ["start", "skip"]
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_z))
    assert window.wait(0.2) == []


def test_clicks_on_buttons_and_closing_the_window(window):
    _show(window)
    rect = dict(window.buttons)["skip"]
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=rect.center))
    assert window.wait(1) == ["skip"]
    _show(window)
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=(5, 5)))
    assert window.wait(0.2) == []
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert window.wait(1) == ["closed"]
