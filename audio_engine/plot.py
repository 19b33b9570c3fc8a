"""A picture of a compiled session: what happens when, drawn with pygame (`relax info --plot`).

Entry points:

- `draw(timeline, sound_lengths=None, width=WIDTH) -> Plot`: the picture on a `pygame.Surface`
  (no display needed), with `Plot.x_of(sample)` and the rectangle of each row, so a caller (or a
  test) can find what is drawn where.
- `save(timeline, path, sound_lengths=None, width=WIDTH) -> Plot`: the same, written to a PNG
  file (through a temporary file and a rename: never half a file).

Rows, top to bottom, under a title line: the sections (chapters, as bands with their titles),
the voice (every spoken line), the breathing (each phase in its colour, the guide tone as a thin
line above), the chimes (a mark where each rings, fading over how long it rings), one row per
background layer (its fade and ducking envelope: the height is the gain the mix applies, a
lighter band where the layer dips under the voice inside one pixel), and a time axis (minutes and
seconds, ticks at a step that keeps them readable from a minute to four hours).

An edge module: it imports pygame. The pure stages never import it.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audio_engine import fsio, render
from audio_engine.model import Binaural, Drone, Noise, SoundFile
from audio_engine.timeline import CHIME, PHASE_KINDS, SPEECH, TONE, Timeline

WIDTH = 1600
LEFT = 200  # the row labels
RIGHT = 24
TITLE_H = 40
ROW_H = 26
LAYER_H = 40
GAP = 6
AXIS_H = 36
TICK_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
MAX_TICKS = 16

BACKGROUND = (252, 252, 250)
ROW_BACK = (241, 241, 238)
INK = (40, 40, 48)
FAINT = (214, 214, 210)
FAINT_TEXT = (150, 150, 146)
SECTION_COLORS = ((214, 226, 244), (232, 220, 244))
VOICE = (52, 100, 180)
PHASE_COLORS = {
    "inhale": (86, 164, 218),
    "hold": (236, 184, 70),
    "exhale": (100, 186, 124),
    "rest": (178, 178, 178),
}
TONE_COLOR = (150, 90, 196)
CHIME_MARK = (196, 52, 36)
CHIME_TAIL = (242, 176, 160)
LAYER_COLORS = {
    Drone: (118, 96, 178),
    Binaural: (64, 150, 150),
    Noise: (128, 128, 128),
    SoundFile: (92, 146, 82),
}


@dataclass
class Plot:
    """The drawn picture and where its parts are."""

    surface: object  # pygame.Surface
    x_of: Callable[[int], int]  # sample -> pixel column
    rows: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)  # name -> x, y, w, h
    layer_rows: list[str] = field(default_factory=list)  # the rows' names, one per layer
    layers: list = field(default_factory=list)  # the layer drawn in each of `layer_rows`


def _pygame():
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    pygame.font.init()
    return pygame


def layer_label(layer) -> str:
    match layer:
        case Drone():
            what = f"drone {layer.frequency_hz:g} Hz"
        case Binaural():
            what = f"binaural {layer.carrier_hz:g}+{layer.beat_hz:g} Hz"
        case Noise():
            what = f"noise {layer.color}"
        case SoundFile():
            what = f"sound {layer.path.name}" + ("" if layer.loop else " (once)")
        case _:
            what = type(layer).__name__.lower()
    return f"{what}, vol {layer.volume:g}, duck {layer.duck:g}"


def tick_step_s(duration_s: float) -> int:
    """The axis step: the smallest of TICK_STEPS_S that gives at most MAX_TICKS ticks."""
    for step in TICK_STEPS_S:
        if duration_s / step <= MAX_TICKS:
            return step
    return TICK_STEPS_S[-1] * math.ceil(duration_s / (TICK_STEPS_S[-1] * MAX_TICKS))


def _clock(seconds: float) -> str:
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def draw(
    timeline: Timeline,
    sound_lengths: Mapping[Path, int] | None = None,
    width: int = WIDTH,
) -> Plot:
    """Draw `timeline` (see the module's docstring for what is where).

    Parameters
    ----------
    timeline : a compiled session.
    sound_lengths : the length in samples of each `sound:` layer's file (a file that does not loop
        is drawn only as long as it plays); without it such a layer is drawn as if it looped.
    width : of the picture, in pixels (the time axis takes all but the label column).
    """
    pygame = _pygame()
    rate = timeline.sample_rate
    total = max(1, timeline.total_samples)
    plot_w = width - LEFT - RIGHT
    layers = list(timeline.background)
    names = ["sections", "voice", "breathing", "chimes"]
    heights = [ROW_H] * len(names)
    layer_rows = [f"layer {i}" for i in range(len(layers))]
    names += layer_rows
    heights += [LAYER_H] * len(layers)
    height = TITLE_H + sum(h + GAP for h in heights) + AXIS_H
    surface = pygame.Surface((width, height))
    surface.fill(BACKGROUND)
    title_font = pygame.font.Font(None, 26)
    font = pygame.font.Font(None, 18)
    small = pygame.font.Font(None, 16)

    def x_of(sample: int) -> int:
        return LEFT + int(round(min(max(sample, 0), total) / total * plot_w))

    def span(start: int, end: int) -> tuple[int, int]:
        x0 = x_of(start)
        return x0, max(1, x_of(end) - x0)

    def text(font_, words: str, color, x: int, y: int, max_w: int | None = None) -> None:
        if max_w is not None and max_w < 12:
            return
        image = font_.render(words, True, color)
        if max_w is not None and image.get_width() > max_w:
            image = image.subsurface((0, 0, max_w, image.get_height()))
        surface.blit(image, (x, y))

    plot = Plot(surface, x_of, layer_rows=layer_rows, layers=layers)
    session = timeline.session
    text(
        title_font,
        f"{session.title}  ({session.id}, {session.language})  {_clock(timeline.duration_s)}",
        INK,
        12,
        12,
    )
    y = TITLE_H
    for name, h in zip(names, heights, strict=True):
        plot.rows[name] = (LEFT, y, plot_w, h)
        pygame.draw.rect(surface, ROW_BACK, (LEFT, y, plot_w, h))
        y += h + GAP
    axis_y = y

    # grid lines under everything, at every tick
    step = tick_step_s(timeline.duration_s)
    ticks = [int(k * step * rate) for k in range(int(timeline.duration_s // step) + 1)]
    for tick in ticks:
        pygame.draw.line(surface, FAINT, (x_of(tick), TITLE_H), (x_of(tick), axis_y - GAP))

    labels = {"sections": "sections", "voice": "voice", "breathing": "breathing"}
    labels["chimes"] = "chimes"
    for i, layer in enumerate(layers):
        labels[f"layer {i}"] = layer_label(layer)
    for name, (_x, y, _w, h) in plot.rows.items():
        text(small if name.startswith("layer") else font, labels[name], INK, 8, y + h // 2 - 6)

    kinds = {e.kind for e in timeline.events}
    empty = {
        "sections": not timeline.chapters,
        "voice": SPEECH not in kinds,
        "breathing": not kinds & set(PHASE_KINDS),
        "chimes": CHIME not in kinds,
    }
    for name, nothing in empty.items():
        if nothing:
            x, y, w, h = plot.rows[name]
            text(small, "none", FAINT_TEXT, x + 6, y + h // 2 - 5)

    # sections: each chapter's band runs to the next one (or the end)
    x, y, w, h = plot.rows["sections"]
    starts = [c.start_sample for c in timeline.chapters] + [total]
    for i, chapter in enumerate(timeline.chapters):
        x0, bw = span(starts[i], starts[i + 1])
        pygame.draw.rect(surface, SECTION_COLORS[i % 2], (x0, y, bw, h))
        pygame.draw.line(surface, INK, (x0, y), (x0, y + h - 1))
        text(font, chapter.title, INK, x0 + 4, y + h // 2 - 6, bw - 6)

    cues = {(e.start_sample, e.text) for e in timeline.events if e.kind in PHASE_KINDS and e.text}
    x, y, w, h = plot.rows["voice"]
    for e in timeline.events:
        if e.kind != SPEECH:
            continue
        x0, bw = span(e.start_sample, e.end_sample)
        pygame.draw.rect(surface, VOICE, (x0, y + 3, bw, h - 6))
        if (e.start_sample, e.text) not in cues and bw >= 40:
            text(small, e.text, BACKGROUND, x0 + 3, y + h // 2 - 5, bw - 5)

    x, y, w, h = plot.rows["breathing"]
    for e in timeline.events:
        if e.kind in PHASE_KINDS:
            x0, bw = span(e.start_sample, e.end_sample)
            pygame.draw.rect(surface, PHASE_COLORS[e.kind], (x0, y + 4, bw, h - 4))
        elif e.kind == TONE:
            x0, bw = span(e.start_sample, e.end_sample)
            pygame.draw.rect(surface, TONE_COLOR, (x0, y, bw, 3))

    x, y, w, h = plot.rows["chimes"]
    chimes = [e for e in timeline.events if e.kind == CHIME]
    for e in chimes:  # tails first, so a later chime's mark is never painted over
        x0, bw = span(e.start_sample, e.end_sample)
        pygame.draw.polygon(
            surface, CHIME_TAIL, [(x0, y + 2), (x0 + bw, y + h - 1), (x0, y + h - 1)]
        )
    for e in chimes:
        x0 = x_of(e.start_sample)
        pygame.draw.rect(surface, CHIME_MARK, (x0, y, 2, h))

    lengths = sound_lengths or {}
    columns = np.arange(plot_w + 1)
    per_px = total / plot_w
    ramp = render.DUCK_RAMP_S * rate
    k = max(4, math.ceil(per_px / (ramp / 2)))
    points = (columns[:-1, None] + (np.arange(k) + 0.5)[None, :] / k) * per_px
    for i, layer in enumerate(layers):
        x, y, w, h = plot.rows[f"layer {i}"]
        gain = render.layer_gain_at(timeline, layer, points.ravel()).reshape(points.shape)
        if isinstance(layer, SoundFile) and not layer.loop and layer.path in lengths:
            gain = gain * (points < lengths[layer.path])
        low, high = gain.min(axis=1), gain.max(axis=1)
        color = LAYER_COLORS.get(type(layer), INK)
        light = tuple(c + (255 - c) * 3 // 5 for c in color)
        inner = h - 4
        for c in range(plot_w):
            top = y + h - int(round(high[c] * inner))
            mid = y + h - int(round(low[c] * inner))
            if high[c] > 0:
                pygame.draw.line(surface, light, (LEFT + c, top), (LEFT + c, y + h - 1))
            if low[c] > 0:
                pygame.draw.line(surface, color, (LEFT + c, mid), (LEFT + c, y + h - 1))

    # the time axis
    pygame.draw.line(surface, INK, (LEFT, axis_y), (LEFT + plot_w, axis_y))
    for tick in ticks:
        tx = x_of(tick)
        pygame.draw.line(surface, INK, (tx, axis_y), (tx, axis_y + 6))
        label = _clock(tick / rate)
        text(font, label, INK, min(tx - font.size(label)[0] // 2, width - RIGHT - 30), axis_y + 10)
    return plot


def save(
    timeline: Timeline,
    path: str | os.PathLike,
    sound_lengths: Mapping[Path, int] | None = None,
    width: int = WIDTH,
) -> Plot:
    """Draw `timeline` and write it to the PNG file `path` (whole, or not at all)."""
    pygame = _pygame()
    target = Path(path)
    plot = draw(timeline, sound_lengths, width)
    if target.is_symlink():  # write through a link to the file it names, as an export does
        target = target.resolve()
    with contextlib.suppress(OSError):
        mode = os.stat(target).st_mode
        if not stat.S_ISREG(mode):  # never renamed over a FIFO or a device
            reason = f"it is {fsio.kind_of(mode)}, not a regular file"
            raise fsio.FsError(f"cannot write {target}: {reason}", reason)
    # The user's own file, so the umask's permissions; written whole or not at all.
    fsio.atomic_write(
        target,
        lambda f: pygame.image.save(plot.surface, f, "plot.png"),
        make_folder=False,
        fsync=False,
        mode=0o666,
    )
    return plot
