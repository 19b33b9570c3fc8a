"""What the player shows: the state of a session at a sample, and one window frame of it.

Entry points:

- `Pacer(timeline).state_at(sample) -> PacerState`: section, breathing phase, circle size,
  caption, times; a pure function of the timeline and the sample (no clock, no mixer).
- `draw(surface, state) -> list[Placed]`: paints one frame onto any pygame surface (window or
  off-screen) and returns every text it drew with its box.
- `layout(size) -> Layout`: where the circle sits and how large it can grow, the caption's box.
- `fit_caption(...)`: the type size and pages that show the whole of a spoken line.
- `status_line(state, width)`: the same state as one line of text, for the terminal.

The breathing circle follows the timeline's phase events: it grows through the inhale, stays
full through the hold, shrinks through the exhale and stays smallest through the rest, with a
raised-cosine ease so that it starts and stops softly, like a breath.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from pathlib import Path

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

GUIDE_TEXT = (122, 140, 162)  # key hints: 5:1 contrast on the background, apart from MUTED
_KEYS_GAP = "    "
KEYS_HINT = _KEYS_GAP.join(
    ["space pause", "\u2190/\u2192 section", "\u2191/\u2193 volume", "m background", "q quit"]
)
KEYS_MIN_PX = 12  # key hints are never drawn smaller

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
    # How far the caption's line has been spoken, 0..1 (1 while it lingers): a line too long for
    # the room it has is shown a page at a time, in step with the voice.
    caption_fraction: float = 0.0

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
        spoken = 0.0
        si = bisect.bisect_right(self._speech_starts, sample) - 1
        linger = int(CAPTION_LINGER_S * rate)
        for event in reversed(self._speech[max(0, si - 3) : si + 1]):
            if sample < event.end_sample + linger:
                shown = phase is not None and (event.text == cue or event.text.isdigit())
                caption = "" if shown else event.text
                spoken = min(1.0, (sample - event.start_sample) / max(1, event.duration_samples))
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
            caption_fraction=spoken,
        )


# ---- the window frame --------------------------------------------------------------------------

# DejaVu Sans (Bitstream Vera licence, fonts/LICENSE): even spacing at every size. pygame's own
# freesansbold is hinted so that its letters jump apart at small sizes ("com fortable").
FONT_DIR = Path(__file__).resolve().parent / "fonts"
REGULAR_FONT = FONT_DIR / "DejaVuSans.ttf"
BOLD_FONT = FONT_DIR / "DejaVuSans-Bold.ttf"
MIN_TEXT_PX = 10  # nothing is drawn smaller
CAPTION_MIN_PX = 14  # a caption never gets smaller than this: a longer line is paged instead
PAGED_SCALE = 0.8  # a paged caption is drawn at this part of the largest size
LABEL_WIDTH = 1.6  # the phase label is at most this many radii of the circle wide


@dataclass(frozen=True)
class Layout:
    """Where things go in a window: the circle, the caption's box, the progress bar."""

    center: tuple[int, int]
    radius_min_px: int
    radius_max_px: int
    unit_px: int = 12  # the base text size
    caption_box: tuple[int, int, int, int] = (0, 0, 0, 0)  # x, y, width, height
    bar: tuple[int, int, int, int] = (0, 0, 0, 0)  # x, y, width, height

    def radius_px(self, breath: float) -> int:
        return round(self.radius_min_px + (self.radius_max_px - self.radius_min_px) * breath)


def layout(size: tuple[int, int]) -> Layout:
    """Where the circle, the caption and the progress bar go in a window of `size` pixels."""
    w, h = size
    unit = max(12, h // 24)
    r_max = max(8, int(min(w * 0.36, h * 0.205)))
    center = (w // 2, int(h * 0.405))
    halo = max(3, r_max // 9)
    bar_y, bar_h = int(h * 0.86), max(4, h // 120)
    left, right = int(w * 0.08), int(w * 0.92)
    caption_top = center[1] + r_max + halo + unit // 2
    caption_bottom = bar_y - unit // 2
    return Layout(
        center,
        max(4, int(r_max * 0.34)),
        r_max,
        unit,
        (int(w * 0.06), caption_top, int(w * 0.88), max(0, caption_bottom - caption_top)),
        (left, bar_y, right - left, bar_h),
    )


@dataclass(frozen=True)
class Placed:
    """One text a frame drew: its role, the text, and its box (x, y, width, height) in pixels."""

    role: str  # title, section, flags, cue, count, caption, elapsed, remaining, keys
    text: str
    rect: tuple[int, int, int, int]
    size_px: int


def clock_text(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else (f"{seconds // 60}:{seconds % 60:02d}")
    )


def remaining_text(elapsed_s: float, total_s: float) -> str:
    """The time left as the window shows it, "-1:54": the whole seconds of the total less those
    of the elapsed time as `clock_text` shows them (so the two always add up to the total,
    after a skip back too); "0:00" at the end, never "-0:00"."""
    left = max(0, int(max(0.0, total_s) + 0.5) - int(max(0.0, elapsed_s) + 0.5))
    return "-" + clock_text(left) if left else clock_text(0)


_FONTS: dict[tuple[int, bool], object] = {}


def _font(pygame, size_px: int, bold: bool = False):
    size_px = max(MIN_TEXT_PX, int(size_px))
    key = (size_px, bold)
    if key not in _FONTS:
        if not pygame.font.get_init():
            pygame.font.init()
        _FONTS[key] = pygame.font.Font(str(BOLD_FONT if bold else REGULAR_FONT), size_px)
    return _FONTS[key]


def _text(pygame, surface, placed, role, text, size_px, colour, bold=False, **where):
    """Draw `text` with its box placed by one of pygame.Rect's anchors (center=, topleft=, ...)."""
    if not text:
        return None
    font = _font(pygame, size_px, bold)
    image = font.render(text, True, colour)
    rect = image.get_rect(**where)
    surface.blit(image, rect)
    placed.append(Placed(role, text, tuple(rect), max(MIN_TEXT_PX, int(size_px))))
    return rect


def _pieces(font, word: str, width_px: int) -> list[str]:
    """`word` cut into pieces no wider than `width_px` (only a word wider than the box is cut)."""
    if font.size(word)[0] <= width_px:
        return [word]
    pieces, current = [], ""
    for char in word:
        if current and font.size(current + char)[0] > width_px:
            pieces.append(current)
            current = ""
        current += char
    return pieces + [current]


def wrap(font, text: str, width_px: int) -> list[str]:
    """Every word of `text`, in order, on lines no wider than `width_px`."""
    lines: list[str] = []
    for word in text.split():
        for piece in _pieces(font, word, width_px):
            if lines and font.size(f"{lines[-1]} {piece}")[0] <= width_px:
                lines[-1] = f"{lines[-1]} {piece}"
            else:
                lines.append(piece)
    return lines


@dataclass(frozen=True)
class CaptionFit:
    """How a caption fills its box: the type size, the line height and the pages of lines."""

    size_px: int
    line_px: int
    pages: tuple[tuple[str, ...], ...]

    def page_at(self, fraction: float) -> int:
        """The page in step with the voice, `fraction` of the way through the line (by letters)."""
        return _page_at([" ".join(page) for page in self.pages], fraction)


_FITS: dict[tuple, CaptionFit] = {}


def fit_caption(pygame, text: str, box_w: int, box_h: int, largest_px: int) -> CaptionFit:
    """The largest type (from `largest_px` down to CAPTION_MIN_PX) at which the whole of `text`
    fits the box; a line that does not fit even then is split into pages of as many lines as fit,
    at PAGED_SCALE of `largest_px`. Every word is on some page, in order."""
    key = (text, box_w, box_h, largest_px)
    if key in _FITS:
        return _FITS[key]
    smallest = min(largest_px, CAPTION_MIN_PX)
    fit = None
    for size in range(largest_px, smallest - 1, -1):
        font = _font(pygame, size)
        lines = wrap(font, text, box_w)
        if len(lines) * font.get_linesize() <= box_h:
            fit = CaptionFit(max(MIN_TEXT_PX, size), font.get_linesize(), (tuple(lines),))
            break
    if fit is None:  # pages, at a size that reads comfortably: smaller type would not save them
        size = max(smallest, int(largest_px * PAGED_SCALE))
        font = _font(pygame, size)
        line_px = font.get_linesize()
        lines = wrap(font, text, box_w)
        per_page = max(1, box_h // line_px)
        pages = tuple(tuple(lines[i : i + per_page]) for i in range(0, len(lines), per_page))
        fit = CaptionFit(max(MIN_TEXT_PX, size), line_px, pages)
    if len(_FITS) > 64:
        _FITS.clear()
    _FITS[key] = fit
    return fit


def keys_px(unit: int) -> int:
    """The key hints' size where they fit on one or two lines (else smaller, to KEYS_MIN_PX)."""
    return max(KEYS_MIN_PX, int(unit * 0.6))


def label_min_px(unit: int) -> int:
    """The smallest the phase label is drawn: a caption's smallest size, or the key hints'."""
    return max(CAPTION_MIN_PX, keys_px(unit))


def _disc(pygame, surface, center, radius, colour):
    import pygame.gfxdraw as gfx  # smooth edges; present in pygame and pygame-ce

    x, y = center
    gfx.filled_circle(surface, x, y, radius, colour)
    gfx.aacircle(surface, x, y, radius, colour)


def _fitting_size(pygame, text: str, size_px: int, width_px: int, bold: bool) -> int:
    """`size_px`, or smaller so that `text` is no wider than `width_px`."""
    wide = _font(pygame, size_px, bold).size(text)[0]
    if wide > width_px > 0:
        size_px = int(size_px * width_px / wide)
    return max(MIN_TEXT_PX, size_px)


def draw(surface, state: PacerState) -> list[Placed]:
    """Paint one frame of `state` onto `surface` (any size; text scales with the height).

    Returns every text drawn with its box, in drawing order (what tests and tools check).
    """
    import pygame
    import pygame.gfxdraw as gfx

    w, h = surface.get_size()
    geo = layout((w, h))
    unit = geo.unit_px
    placed: list[Placed] = []

    def put(role, text, size_px, colour, bold=False, **where):
        return _text(pygame, surface, placed, role, text, size_px, colour, bold, **where)

    surface.fill(BACKGROUND)
    put(
        "title",
        state.title,
        unit * 0.62,
        MUTED,
        center=(w // 2, int(h * 0.045)),
    )
    section_px = _fitting_size(pygame, state.section, int(unit * 0.92), int(w * 0.9), True)
    put(
        "section",
        state.section,
        section_px,
        TEXT,
        True,
        center=(w // 2, int(h * 0.1)),
    )
    flags = []
    if state.paused:
        flags.append("paused")
    if state.muted:
        flags.append("background off")
    if state.volume < 0.999:
        flags.append(f"volume {round(state.volume * 100)}%")
    put(
        "flags",
        "  ·  ".join(flags),
        unit * 0.55,
        TEXT,
        center=(w // 2, int(h * 0.148)),
    )

    radius = geo.radius_px(state.breath)
    cx, cy = geo.center
    label = ""
    if state.phase is not None:
        # The phase label is never smaller than a caption can be, nor than the key hints: the
        # circle stays large enough to hold it at that size (its smallest size grows by as
        # much, up to its largest).
        label = state.cue or _PHASE_LABEL[state.phase]
        label_min = label_min_px(unit)
        needed = math.ceil(_font(pygame, label_min, True).size(label)[0] / LABEL_WIDTH)
        radius = max(radius, min(geo.radius_max_px, needed))
    # Guide ring at full size, a soft halo, then the breath itself.
    gfx.aacircle(surface, cx, cy, geo.radius_max_px + 2, GUIDE)
    _disc(pygame, surface, geo.center, radius + max(3, radius // 9), HALO)
    _disc(pygame, surface, geo.center, radius, BREATH)
    if state.phase is not None:
        label_px = _fitting_size(
            pygame,
            label,
            max(label_min, min(int(unit * 0.85), int(radius * 0.34))),
            int(radius * LABEL_WIDTH),
            True,
        )
        label_px = max(label_min, label_px)
        count_px = max(MIN_TEXT_PX, min(int(unit * 1.7), int(radius * 0.62)))
        label_h = _font(pygame, label_px, True).get_ascent()
        count_h = _font(pygame, count_px, True).get_ascent()
        top = cy - (label_h + count_h + unit // 3) // 2
        put(
            "cue",
            label,
            label_px,
            BREATH_TEXT,
            True,
            midtop=(cx, top - (_font(pygame, label_px, True).get_height() - label_h) // 2),
        )
        put(
            "count",
            str(state.phase_count),
            count_px,
            BREATH_TEXT,
            True,
            center=(cx, top + label_h + count_h // 2 + unit // 3),
        )

    if state.caption:
        box_x, box_y, box_w, box_h = geo.caption_box
        fit = fit_caption(pygame, state.caption, box_w, box_h, max(CAPTION_MIN_PX, int(unit * 0.8)))
        lines = fit.pages[fit.page_at(state.caption_fraction)]
        top = box_y + (box_h - fit.line_px * len(lines)) // 2
        for i, line in enumerate(lines):
            put(
                "caption",
                line,
                fit.size_px,
                TEXT,
                midtop=(box_x + box_w // 2, top + i * fit.line_px),
            )

    left, bar_y, bar_w, bar_h = geo.bar
    right = left + bar_w
    pygame.draw.rect(surface, TRACK, geo.bar, border_radius=bar_h // 2)
    filled = int(bar_w * state.progress)
    if filled > 0:
        pygame.draw.rect(surface, FILL, (left, bar_y, filled, bar_h), border_radius=bar_h // 2)
    small = max(MIN_TEXT_PX, int(unit * 0.6))
    times_y = bar_y + bar_h + unit // 4
    elapsed = clock_text(state.elapsed_s)
    remaining = remaining_text(state.elapsed_s, state.total_s)
    put("elapsed", elapsed, small, MUTED, topleft=(left, times_y))
    put("remaining", remaining, small, MUTED, topright=(right, times_y))
    _draw_hints(pygame, surface, placed, unit, left, right, times_y, small, elapsed, remaining)
    return placed


def _draw_hints(pygame, surface, placed, unit, left, right, times_y, small, elapsed, remaining):
    # The key hints get a line of their own below the times, as large as fits (two lines in a
    # narrow window); in a window too low for that they sit between the two times, with a gap
    # either side; left out when there is no room anywhere. Never smaller than KEYS_MIN_PX.
    w, h = surface.get_size()
    clock_font = _font(pygame, small)
    largest, smallest = keys_px(unit), KEYS_MIN_PX
    groups = KEYS_HINT.split(_KEYS_GAP)
    half = (len(groups) + 1) // 2
    below = times_y + clock_font.get_height() + unit // 3
    for lines in ([KEYS_HINT], [_KEYS_GAP.join(groups[:half]), _KEYS_GAP.join(groups[half:])]):
        for size in range(largest, smallest - 1, -1):
            font = _font(pygame, size)
            line_px = font.get_linesize()
            if below + line_px * len(lines) <= h and all(
                font.size(line)[0] <= right - left for line in lines
            ):
                for i, line in enumerate(lines):
                    _text(
                        pygame,
                        surface,
                        placed,
                        "keys",
                        line,
                        size,
                        GUIDE_TEXT,
                        midtop=(w // 2, below + i * line_px),
                    )
                return
    room = (right - left) - clock_font.size(elapsed)[0] - clock_font.size(remaining)[0] - 2 * unit
    middle = times_y + clock_font.get_height() // 2
    for size in range(largest, smallest - 1, -1):
        if _font(pygame, size).size(KEYS_HINT)[0] <= room:
            _text(
                pygame,
                surface,
                placed,
                "keys",
                KEYS_HINT,
                size,
                GUIDE_TEXT,
                center=(w // 2, middle),
            )
            return


# ---- the terminal line -------------------------------------------------------------------------


def _pages_at_most(text: str, chars: int) -> list[str]:
    """Every word of `text`, in order, in pages of at most `chars` characters (a longer word is
    cut)."""
    if chars <= 0:
        return [""]
    pages: list[str] = []
    for word in text.split():
        for piece in (word[i : i + chars] for i in range(0, len(word), chars)):
            if pages and len(pages[-1]) + 1 + len(piece) <= chars:
                pages[-1] = f"{pages[-1]} {piece}"
            else:
                pages.append(piece)
    return pages or [""]


def _page_at(pages, fraction: float) -> int:
    lengths = [len(page) + 1 for page in pages]
    spoken = min(1.0, max(0.0, fraction)) * sum(lengths)
    done = 0
    for i, length in enumerate(lengths):
        done += length
        if spoken < done:
            return i
    return len(pages) - 1


CAPTION_MIN_CHARS = 16  # the section name gives way when the caption would get fewer


def status_line(state: PacerState, width: int = 80) -> str:
    """One line of at most `width - 1` characters: section, cue or caption, a text progress bar,
    elapsed / total, flags. A narrow terminal gets a shorter bar, then none, then shorter flags.
    A caption longer than the room left is shown a page of words at a time, in step with the
    voice (`caption_fraction`), so every word is on the line at some moment; the section name
    gives way first when the caption would have fewer than CAPTION_MIN_CHARS."""
    times = f"{clock_text(state.elapsed_s)} / {clock_text(state.total_s)}"
    volume = round(state.volume * 100) if state.volume < 0.999 else None
    paused = " paused" if state.paused else ""
    flags = (
        paused
        + (" background off" if state.muted else "")
        + (f" vol {volume}%" if volume is not None else "")
    )
    limit = max(0, width - 1)
    # The words keep CAPTION_MIN_CHARS: first the flags get short, then the total time goes.
    if len(times) + len(flags) + 1 + CAPTION_MIN_CHARS > limit:
        flags = paused + (" bg off" if state.muted else "")
        flags += f" {volume}%" if volume is not None else ""
    if len(times) + len(flags) + 1 + CAPTION_MIN_CHARS > limit:
        times = clock_text(state.elapsed_s)
    where = state.section or state.title
    caption = state.phase is None and bool(state.caption)
    if state.phase is not None:
        what = f"{state.cue or _PHASE_LABEL[state.phase]} {state.phase_count}"
    else:
        what = state.caption
    head = where + (" · " if where and what else "") + what
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
    if state.phase is not None and len(head) > room:
        # The cue and its count are what the line is for: the bar, the section, the flags (but
        # "paused") and the total time give way to them, in that order.
        short = paused + (" bg off" if state.muted else "")
        short += f" {volume}%" if volume is not None else ""
        elapsed = clock_text(state.elapsed_s)
        for words, rest in (
            (head, f" {times}{flags}"),
            (what, f" {times}{flags}"),
            (what, f" {times}{short}"),
            (what, f" {times}{paused}"),
            (what, f" {elapsed}{paused}"),
            (what, f" {elapsed}"),
        ):
            if len(words) + len(rest) <= limit:
                head, fixed = words, rest
                break
        else:
            head, fixed = what, ""
        room = max(0, limit - len(fixed))
    if caption and len(head) > room:
        prefix = f"{where} · " if where else ""
        if room - len(prefix) < CAPTION_MIN_CHARS:
            prefix = ""
        pages = _pages_at_most(state.caption, room - len(prefix))
        head = prefix + pages[_page_at(pages, state.caption_fraction)]
    elif len(head) > room:
        head = head[: max(0, room - 3)] + "..." if room > 3 else head[:room]
    return (head.ljust(room) + fixed)[:limit]
