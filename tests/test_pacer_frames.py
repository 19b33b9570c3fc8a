"""What the pacer window and the terminal line show, checked on what is drawn: whole captions
(every word, in order, inside the window, at a readable size, paged with the voice when a line
is too long), even type, readable key hints and count, a first frame at once, a status line that
survives a terminal resize."""

from __future__ import annotations

import glob
import os
import re
import sys
import types

import numpy as np
import pygame
import pytest

from audio_engine import pipeline
from audio_engine import timeline as timeline_module
from audio_engine.player import app, pacer
from tests.conftest import ROOT

SIZES = [(720, 720), (640, 480), (400, 600), (1280, 400)]
WORDS_2000 = (
    "Let your breath come and go on its own, and notice the small pause at the end of each "
    "breath out, where nothing needs to happen at all. "
)


def _longest_lines() -> dict[str, str]:
    """The longest spoken line of the built-in sessions, per language, and a 2,000-character one."""
    longest: dict[str, str] = {}
    for path in sorted(glob.glob(str(ROOT / "sessions" / "*.yaml"))):
        session = pipeline.load(path)
        for utterance in timeline_module.speech_requests(session):
            if len(utterance.text) > len(longest.get(session.language, "")):
                longest[session.language] = utterance.text
    assert set(longest) >= {"en", "nl"} and len(longest["en"]) >= 150
    numbered = " ".join(f"({i}) {WORDS_2000}" for i in range(1, 40))  # no two pages alike
    text = numbered[:1990].rsplit(" ", 1)[0]
    longest["2000"] = text + " " + "x" * (1999 - len(text))
    assert len(longest["2000"]) == 2000
    return longest


LINES = _longest_lines()


def _state(caption: str, fraction: float = 0.0, **changes) -> pacer.PacerState:
    base = pacer.PacerState(
        title="Desk stretches",
        section="Closing",
        phase=None,
        cue="",
        phase_fraction=0.0,
        phase_left_s=0.0,
        phase_count=0,
        breath=0.0,
        caption=caption,
        elapsed_s=298.0,
        total_s=323.0,
        caption_fraction=fraction,
    )
    return pacer.PacerState(**{**base.__dict__, **changes})


@pytest.fixture(scope="module")
def font_ready():
    pygame.font.init()
    yield


def _shown_pages(surface, text, steps=400):
    """The caption lines drawn as the voice goes through `text`, one entry per distinct page."""
    pages, sizes = [], set()
    geo = pacer.layout(surface.get_size())
    box = pygame.Rect(geo.caption_box)
    window = surface.get_rect()
    for i in range(steps + 1):
        placed = pacer.draw(surface, _state(text, i / steps))
        captions = [p for p in placed if p.role == "caption"]
        for p in captions:
            rect = pygame.Rect(p.rect)
            assert window.contains(rect) and box.contains(rect), (p, box)
            sizes.add(p.size_px)
        page = [p.text for p in captions]
        if not pages or pages[-1] != page:
            pages.append(page)
    return pages, sizes


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("which", ["en", "nl", "2000"])
def test_the_window_shows_every_word_of_a_caption(font_ready, size, which):
    text = LINES[which]
    surface = pygame.Surface(size)
    pages, sizes = _shown_pages(surface, text, steps=400 if which == "2000" else 60)
    shown = " ".join(" ".join(page) for page in pages)
    assert shown.split() == text.split() or (
        which == "2000" and shown.replace(" ", "") == text.replace(" ", "")
    ), "every word, in order, once"
    assert "..." not in shown
    assert min(sizes) >= pacer.CAPTION_MIN_PX
    geo = pacer.layout(size)
    if which != "2000":  # a line of the built-in sessions fits whole: no paging at all
        assert len(pages) == 1, f"{which} at {size}: {len(pages)} pages"
    # The caption sits under the circle at its largest and above the progress bar.
    assert geo.caption_box[1] > geo.center[1] + geo.radius_max_px
    assert geo.caption_box[1] + geo.caption_box[3] < geo.bar[1]


def test_a_long_line_pages_in_step_with_the_real_voice(font_ready, tmp_path):
    text = LINES["2000"]
    script = tmp_path / "long.yaml"
    script.write_text(
        f"format: 1\ntitle: Long line\nlanguage: en\nsteps:\n  - section: One\n  - say: {text}\n"
    )
    prepared = pipeline.prepare(pipeline.load(str(script)))
    speech = prepared.timeline.transcript()[0]
    view = pacer.Pacer(prepared.timeline)
    surface = pygame.Surface((720, 720))
    pages = []
    step = prepared.timeline.sample_rate // 4
    for sample in range(speech.start_sample, speech.end_sample + step, step):
        state = view.state_at(sample)
        assert state.caption == text
        lines = [p.text for p in pacer.draw(surface, state) if p.role == "caption"]
        if not pages or pages[-1] != lines:
            pages.append(lines)
    assert len(pages) >= 3, "paged"
    shown = " ".join(" ".join(page) for page in pages)
    assert shown.replace(" ", "") == text.replace(" ", "")
    # Each page stays up long enough to read: at least 2 s for these 6-line pages.
    seconds_per_page = (speech.end_sample - speech.start_sample) / 44100 / len(pages)
    assert seconds_per_page > 2.0


_FIXED = re.compile(r" +(?:\[[#-]*\] )?\d+:\d\d(?: / \d+:\d\d)?(?: [a-z0-9% ]+)?$")


@pytest.mark.parametrize("width", [40, 60, 80])
@pytest.mark.parametrize("which", ["en", "nl", "2000"])
@pytest.mark.parametrize("flags", [False, True])
def test_the_terminal_line_shows_every_word_of_a_caption(width, which, flags):
    text = LINES[which]
    extra = {"paused": True, "muted": True, "volume": 0.5} if flags else {}
    pages = []
    steps = 1000
    for i in range(steps + 1):
        line = pacer.status_line(_state(text, i / steps, **extra), width)
        assert len(line) <= width - 1
        fixed = _FIXED.search(line)
        assert fixed, line
        head = line[: fixed.start()].rstrip()
        head = head.removeprefix("Closing · ")
        if not pages or pages[-1] != head:
            pages.append(head)
    shown = " ".join(pages)
    assert "..." not in shown
    if which == "2000":
        assert shown.replace(" ", "") == text.replace(" ", "")
    else:
        assert shown.split() == text.split(), "every word, in order, none cut"


# ---- the type ----------------------------------------------------------------------------------


def _gaps(surface, placed: pacer.Placed):
    """(gaps at the spaces, gaps between two letters of a word) in pixels, measured on the drawn
    pixels of one text; gaps next to punctuation or symbols are left out."""
    x, y, w, h = placed.rect
    band = pygame.surfarray.array3d(surface)[x : x + w, y : y + h].astype(int)
    ink = (np.abs(band - np.array(pacer.BACKGROUND)).sum(axis=2) > 120).any(axis=1)
    font = pacer._font(pygame, placed.size_px)
    text = placed.text
    edges = [font.size(text[:i])[0] for i in range(len(text) + 1)]  # x where char i starts
    between, inside = [], []
    start = None
    for col in range(len(ink)):
        if not ink[col] and start is None:
            start = col
        elif ink[col] and start is not None:
            if start > 0:
                # The character boundary nearest the middle of the gap.
                i = min(range(1, len(text)), key=lambda k: abs(edges[k] - (start + col) / 2))
                before, after = text[i - 1], text[i]
                if " " in (before, after):
                    between.append(col - start)
                elif before.isalpha() and after.isalpha():
                    inside.append(col - start)
            start = None
    return between, inside


@pytest.mark.parametrize("size", [(720, 720), (400, 600)])
def test_word_gaps_are_wider_than_any_gap_inside_a_word(font_ready, size):
    # pygame's freesansbold, as drawn before, had gaps inside words of up to 3/4 of a word gap.
    surface = pygame.Surface(size)
    text = "Sit comfortable in this section, quiet and still, and breathe out. " * 2
    placed = pacer.draw(surface, _state(text))
    texts = [p for p in placed if p.role in ("caption", "keys")]
    assert any(p.role == "keys" for p in texts)
    for p in texts:
        between, inside = _gaps(surface, p)
        assert between and inside
        assert min(between) >= 1.7 * max(inside), (p.text, between, inside)


def _contrast(a, b) -> float:
    def lum(rgb):
        c = np.array(rgb) / 255.0
        c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    high, low = sorted((lum(a), lum(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_key_hints_and_the_count_are_large_and_clear(font_ready):
    surface = pygame.Surface((720, 720))
    state = _state("", phase="hold", cue="Hold", breath=1.0, phase_count=5)
    placed = pacer.draw(surface, state)
    keys = [p for p in placed if p.role == "keys"]
    assert keys and min(p.size_px for p in keys) >= 16
    assert _contrast(pacer.GUIDE_TEXT, pacer.BACKGROUND) >= 4.5  # WCAG AA for small text
    # The count: its digit measured in pixels is a quarter of the circle's radius at least.
    count = next(p for p in placed if p.role == "count")
    x, y, w, h = count.rect
    band = pygame.surfarray.array3d(surface)[x : x + w, y : y + h].astype(int)
    ink = np.abs(band - np.array(pacer.BREATH_TEXT)).sum(axis=2) <= 30
    rows = np.flatnonzero(ink.any(axis=0))
    radius = pacer.layout((720, 720)).radius_max_px
    assert rows[-1] - rows[0] + 1 >= 0.25 * radius


def test_the_window_shows_a_frame_as_soon_as_it_opens(font_ready):
    pygame_module = app._pygame()
    timeline = types.SimpleNamespace(session=types.SimpleNamespace(title="Desk stretches"))
    try:
        for first in (None, _state("Sit comfortably.")):
            screen = app._open_window(pygame_module, timeline, sys.stderr, first)
            assert screen is not None
            pixels = pygame.surfarray.array3d(pygame.display.get_surface()).astype(int)
            background = (np.abs(pixels - np.array(pacer.BACKGROUND)).sum(axis=2) == 0).mean()
            assert background > 0.5, "the window is painted, not black"
            text = (np.abs(pixels - np.array(pacer.MUTED)).sum(axis=2) <= 6).sum()
            assert text > 50, "the title is on it"
            if first is not None:
                assert (np.abs(pixels - np.array(pacer.BREATH)).sum(axis=2) <= 6).sum() > 1000
            pygame.display.quit()
    finally:
        pygame.display.quit()


# ---- the terminal line through a resize --------------------------------------------------------


class _ReflowingTerminal:
    """What a terminal that re-wraps its lines on a resize shows (as VTE, kitty, tmux do): lines
    are kept whole and cut into rows at the width of the moment; the cursor keeps its place in
    its line. Understands text, \\r, \\n, ESC[K, ESC[nA and ESC[J."""

    def __init__(self, width):
        self.width = width
        self.lines = [""]
        self.line = 0
        self.offset = 0

    def _row_of(self):
        return sum(self._rows(s) for s in self.lines[: self.line]) + self.offset // self.width

    def _rows(self, text):
        return max(1, -(-len(text) // self.width))

    def write(self, data):
        for token in re.findall(r"\x1b\[\d*[A-Za-z]|\r|\n|[^\x1b\r\n]+", data):
            current = self.lines[self.line]
            if token == "\r":
                self.offset -= self.offset % self.width
            elif token == "\n":
                self.line += 1
                self.offset = 0
                if self.line == len(self.lines):
                    self.lines.append("")
            elif token == "\x1b[K":
                end = (self.offset // self.width + 1) * self.width
                self.lines[self.line] = current[: self.offset] + current[end:]
            elif token == "\x1b[J":
                self.lines[self.line] = current[: self.offset]
                del self.lines[self.line + 1 :]
            elif token.endswith("A"):
                target = max(0, self._row_of() - int(token[2:-1] or 1))
                column = self.offset % self.width
                row = 0
                for i, text in enumerate(self.lines):
                    if row + self._rows(text) > target:
                        self.line, self.offset = i, (target - row) * self.width + column
                        break
                    row += self._rows(text)
            else:
                padded = current.ljust(self.offset)
                self.lines[self.line] = (
                    padded[: self.offset] + token + padded[self.offset + len(token) :]
                )
                self.offset += len(token)

    def flush(self):
        pass

    def screen(self):
        rows = []
        for text in self.lines:
            rows += [text[i : i + self.width] for i in range(0, max(1, len(text)), self.width)]
        return [row.rstrip() for row in rows]


def test_the_status_line_leaves_no_fragments_when_the_terminal_is_resized():
    terminal = _ReflowingTerminal(100)
    terminal.write("relax: pointer line\n")
    line = app.StatusLine(terminal)
    text = LINES["en"]
    for i, width in enumerate([100, 40, 60, 30, 80, 80, 45, 120]):
        terminal.width = width
        state = _state(text, i / 8, paused=True, muted=True)
        status = pacer.status_line(state, width)
        line.draw(status, width)
        assert terminal.screen() == ["relax: pointer line", status.rstrip()]
    terminal.width = 20
    line.clear(20)
    assert terminal.screen() == ["relax: pointer line", ""]


def test_the_status_line_reads_the_width_of_its_own_terminal():
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 47, 0, 0))
        with os.fdopen(os.dup(slave), "w") as stream:
            assert app.terminal_columns(stream) == 47
    finally:
        os.close(master)
        os.close(slave)
