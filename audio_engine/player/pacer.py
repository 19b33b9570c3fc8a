"""What the player shows: the state of a session at a sample, and one window frame of it.

Entry points:

- `Pacer(timeline).state_at(sample) -> PacerState`: section, breathing phase, circle size,
  caption, times; a pure function of the timeline and the sample (no clock, no mixer).
- `draw(surface, state)`: paints one frame onto any pygame surface (window or off-screen).
- `layout(size) -> Layout`: where the circle sits and how large it can grow.
- `status_line(state, width)`: the same state as one line of text, for the terminal.

The breathing circle follows the timeline's phase events: it grows through the inhale, stays
full through the hold, shrinks through the exhale and stays smallest through the rest, with a
raised-cosine ease so that it starts and stops softly, like a breath.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from audio_engine.timeline import SPEECH, Timeline

CAPTION_LINGER_S = 2.0  # a spoken line stays readable this long after it ends

# Calm palette: deep blue-grey night, a muted teal breath, soft off-white text.
BACKGROUND = (17, 24, 36)
GUIDE = (44, 58, 78)
HALO = (31, 52, 64)
BREATH = (96, 164, 172)
BREATH_TEXT = (14, 30, 38)
TEXT = (226, 232, 240)
MUTED = (138, 154, 176)
TRACK = (38, 50, 68)
FILL = (118, 172, 180)

GUIDE_TEXT = (84, 100, 122)
KEYS_HINT = "space pause    left/right section    up/down volume    m background    q quit"

_PHASE_LABEL = {"inhale": "in", "hold": "hold", "exhale": "out", "rest": "rest"}


@dataclass(frozen=True)
class PacerState:
    """Everything one frame (or one status line) shows."""

    title: str
    section: str
    phase: str | None  # inhale, hold, exhale, rest; None outside breathing
    cue: str  # the phase's cue word(s), "" when silent or outside breathing
    phase_fraction: float  # 0..1 through the current phase
    phase_left_s: float
    phase_count: int  # whole seconds into the phase, counting from 1 (like a spoken count)
    breath: float  # 0 (smallest circle) .. 1 (largest)
    caption: str
    elapsed_s: float
    total_s: float
    paused: bool = False
    muted: bool = False
    volume: float = 1.0

    @property
    def remaining_s(self) -> float:
        return max(0.0, self.total_s - self.elapsed_s)

    @property
    def progress(self) -> float:
        return min(1.0, self.elapsed_s / self.total_s) if self.total_s > 0 else 1.0


def ease(x: float) -> float:
    """Raised cosine from 0 to 1: soft at both ends."""
    x = min(1.0, max(0.0, x))
    return 0.5 - 0.5 * math.cos(math.pi * x)


class Pacer:
    """Looks up the state of `timeline` at any sample (indexes built once)."""

    def __init__(self, timeline: Timeline):
        self.timeline = timeline
        self._phases = [e for e in timeline.events if e.kind in _PHASE_LABEL]
        self._phase_starts = [e.start_sample for e in self._phases]
        self._speech = [e for e in timeline.events if e.kind == SPEECH]
        self._speech_starts = [e.start_sample for e in self._speech]
        self._chapter_starts = [c.start_sample for c in timeline.chapters]

    def state_at(self, sample: int) -> PacerState:
        """The state at `sample` (clamped to the session)."""
        tl = self.timeline
        rate = tl.sample_rate
        sample = max(0, min(int(sample), tl.total_samples))
        ci = bisect.bisect_right(self._chapter_starts, sample) - 1
        section = tl.chapters[ci].title if ci >= 0 else ""

        phase, cue, fraction, left_s, breath, count = None, "", 0.0, 0.0, 0.0, 0
        pi = bisect.bisect_right(self._phase_starts, sample) - 1
        if pi >= 0 and sample < self._phases[pi].end_sample:
            event = self._phases[pi]
            phase, cue = event.kind, event.text
            fraction = (sample - event.start_sample) / max(1, event.duration_samples)
            left_s = (event.end_sample - sample) / rate
            count = (sample - event.start_sample) // rate + 1
            breath = {
                "inhale": ease(fraction),
                "hold": 1.0,
                "exhale": 1.0 - ease(fraction),
                "rest": 0.0,
            }[phase]

        caption = ""  # (a cue is already shown in the circle: not repeated as a caption)
        si = bisect.bisect_right(self._speech_starts, sample) - 1
        linger = int(CAPTION_LINGER_S * rate)
        for event in reversed(self._speech[max(0, si - 3) : si + 1]):
            if sample < event.end_sample + linger:
                shown = phase is not None and (event.text == cue or event.text.isdigit())
                caption = "" if shown else event.text
                break

        return PacerState(
            title=tl.session.title,
            section=section,
            phase=phase,
            cue=cue,
            phase_fraction=fraction,
            phase_left_s=left_s,
            phase_count=count,
            breath=breath,
            caption=caption,
            elapsed_s=sample / rate,
            total_s=tl.total_samples / rate,
        )


# ---- the window frame --------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    center: tuple[int, int]
    radius_min_px: int
    radius_max_px: int

    def radius_px(self, breath: float) -> int:
        return round(self.radius_min_px + (self.radius_max_px - self.radius_min_px) * breath)


def layout(size: tuple[int, int]) -> Layout:
    """Where the circle goes in a window of `size` (width, height) pixels."""
    w, h = size
    r_max = max(8, int(min(w * 0.36, h * 0.24)))
    return Layout((w // 2, int(h * 0.47)), max(4, int(r_max * 0.34)), r_max)


def clock_text(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else (f"{seconds // 60}:{seconds % 60:02d}")
    )


_FONTS: dict[int, object] = {}


def _font(pygame, size_px: int):
    size_px = max(10, size_px)
    if size_px not in _FONTS:
        if not pygame.font.get_init():
            pygame.font.init()
        _FONTS[size_px] = pygame.font.Font(None, size_px)
    return _FONTS[size_px]


def _text(pygame, surface, text, size_px, colour, center=None, topleft=None, topright=None):
    if not text:
        return
    image = _font(pygame, size_px).render(text, True, colour)
    rect = image.get_rect()
    if center is not None:
        rect.center = center
    elif topleft is not None:
        rect.topleft = topleft
    else:
        rect.topright = topright
    surface.blit(image, rect)


def _wrap(font, text: str, width_px: int, max_lines: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and font.size(f"{lines[-1]} {word}")[0] <= width_px:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [" ".join(lines[max_lines - 1 :])]
        while font.size(lines[-1] + "...")[0] > width_px and " " in lines[-1]:
            lines[-1] = lines[-1].rsplit(" ", 1)[0]
        lines[-1] += "..."
    return lines


def _disc(pygame, surface, center, radius, colour):
    import pygame.gfxdraw as gfx  # smooth edges; present in pygame and pygame-ce

    x, y = center
    gfx.filled_circle(surface, x, y, radius, colour)
    gfx.aacircle(surface, x, y, radius, colour)


def draw(surface, state: PacerState) -> None:
    """Paint one frame of `state` onto `surface` (any size; text scales with the height)."""
    import pygame

    w, h = surface.get_size()
    unit = max(12, h // 24)  # base text size
    surface.fill(BACKGROUND)
    _text(pygame, surface, state.title, int(unit * 0.9), MUTED, center=(w // 2, int(h * 0.05)))
    _text(pygame, surface, state.section, int(unit * 1.35), TEXT, center=(w // 2, int(h * 0.11)))
    flags = []
    if state.paused:
        flags.append("paused")
    if state.muted:
        flags.append("background off")
    if state.volume < 0.999:
        flags.append(f"volume {round(state.volume * 100)}%")
    _text(
        pygame,
        surface,
        "  ·  ".join(flags),
        int(unit * 0.8),
        MUTED,
        topright=(w - unit // 2, unit // 2),
    )

    geo = layout((w, h))
    radius = geo.radius_px(state.breath)
    # Guide ring at full size, a soft halo, then the breath itself.
    import pygame.gfxdraw as gfx

    gfx.aacircle(surface, geo.center[0], geo.center[1], geo.radius_max_px + 2, GUIDE)
    _disc(pygame, surface, geo.center, radius + max(3, radius // 9), HALO)
    _disc(pygame, surface, geo.center, radius, BREATH)
    if state.phase is not None:
        label = state.cue or _PHASE_LABEL[state.phase]
        size = max(12, min(int(unit * 1.2), int(radius * 0.42)))
        _text(pygame, surface, label, size, BREATH_TEXT, center=geo.center)
        seconds = state.phase_count
        _text(
            pygame,
            surface,
            str(seconds),
            int(size * 0.8),
            BREATH_TEXT,
            center=(geo.center[0], geo.center[1] + int(size * 0.9)),
        )

    font = _font(pygame, int(unit * 1.1))
    lines = _wrap(font, state.caption, int(w * 0.86), 2)
    top = int(h * 0.78)
    for i, line in enumerate(lines):
        _text(
            pygame,
            surface,
            line,
            int(unit * 1.1),
            TEXT,
            center=(w // 2, top + i * int(unit * 1.25)),
        )

    bar_y = int(h * 0.92)
    bar_h = max(4, h // 120)
    left, right = int(w * 0.08), int(w * 0.92)
    pygame.draw.rect(surface, TRACK, (left, bar_y, right - left, bar_h), border_radius=bar_h // 2)
    filled = int((right - left) * state.progress)
    if filled > 0:
        pygame.draw.rect(surface, FILL, (left, bar_y, filled, bar_h), border_radius=bar_h // 2)
    small = int(unit * 0.8)
    times_y = bar_y + bar_h + unit // 3
    elapsed = clock_text(state.elapsed_s)
    remaining = "-" + clock_text(state.remaining_s)
    _text(pygame, surface, elapsed, small, MUTED, topleft=(left, times_y))
    _text(pygame, surface, remaining, small, MUTED, topright=(right, times_y))
    # The key hints sit between the two times, as large as fits with a gap either side; else
    # below them, on one line or two; left out when there is no room there either.
    clock_font = _font(pygame, small)
    room = (right - left) - clock_font.size(elapsed)[0] - clock_font.size(remaining)[0] - 2 * unit
    largest, smallest = int(unit * 0.7), max(12, int(unit * 0.55))  # smaller is hard to read
    for size in range(largest, smallest - 1, -1):
        if _font(pygame, size).size(KEYS_HINT)[0] <= room:
            _text(
                pygame, surface, KEYS_HINT, size, GUIDE_TEXT, center=(w // 2, times_y + small // 2)
            )
            return
    groups = KEYS_HINT.split("    ")
    half = (len(groups) + 1) // 2
    for lines in ([KEYS_HINT], ["    ".join(groups[:half]), "    ".join(groups[half:])]):
        for size in range(largest, smallest - 1, -1):
            font = _font(pygame, size)
            bottom = times_y + small + int(size * 1.3) * len(lines)
            if bottom <= h and all(font.size(line)[0] <= right - left for line in lines):
                for i, line in enumerate(lines):
                    y = times_y + small + size // 2 + int(size * 1.3) * i + unit // 4
                    _text(pygame, surface, line, size, GUIDE_TEXT, center=(w // 2, y))
                return


# ---- the terminal line -------------------------------------------------------------------------


def status_line(state: PacerState, width: int = 80) -> str:
    """One line of at most `width - 1` characters: section, cue or caption, a text progress bar,
    elapsed / total, flags. A narrow terminal gets a shorter bar, then none, then fewer words."""
    times = f"{clock_text(state.elapsed_s)} / {clock_text(state.total_s)}"
    flags = "".join(
        [" paused" if state.paused else "", " muted" if state.muted else ""]
        + ([f" vol {round(state.volume * 100)}%"] if state.volume < 0.999 else [])
    )
    if state.phase is not None:
        what = f"{state.cue or _PHASE_LABEL[state.phase]} {state.phase_count}"
    else:
        what = state.caption
    where = state.section or state.title
    head = where + (" · " if where and what else "") + what
    limit = max(0, width - 1)
    wanted_head = min(len(head), 24)  # room the words keep before the bar shrinks
    bar_w = 20
    while bar_w > 0 and len(times) + len(flags) + bar_w + 4 + wanted_head > limit:
        bar_w = bar_w - 1 if bar_w > 6 else 0  # a bar under 6 cells says little: none
    if bar_w:
        filled = int(bar_w * state.progress)
        fixed = f" [{'#' * filled}{'-' * (bar_w - filled)}] {times}{flags}"
    else:
        fixed = f" {times}{flags}"
    room = max(0, limit - len(fixed))
    if len(head) > room:
        head = head[: max(0, room - 3)] + "..." if room > 3 else head[:room]
    return (head.ljust(room) + fixed)[:limit]
