"""Playing through the real pygame mixer with SDL's disk driver, which writes what it plays, and
comparing what it wrote with what should have sounded, allowing for the device's dropouts only.

A dropout: the feeder was held up for longer than the queued chunk lasts (a machine starved of
CPU time), the channel ran dry, and the device played silence until the next chunk started
(`Stream.dropouts` records the session sample where the sound resumed). Every sample rendered and
handed over is still compared exactly: only the run of exact zeros before the resumed chunk, and
beyond the silence the expected sound has there itself, is taken out.
"""

from __future__ import annotations

import contextlib
import os
import time

import numpy as np
import pygame

from audio_engine.model import SAMPLE_RATE
from audio_engine.player import Controller, open_mixer
from audio_engine.player.app import make_sound
from audio_engine.player.stream import Stream


@contextlib.contextmanager
def disk_stream(raw, timeline, sources, gain, *, start_sample=0, growing=None):
    """A `Stream` on mixer channel 0, the driver writing into `raw`; on the way out the stream
    stops before the mixer closes (a feeder must never touch a closed mixer)."""
    os.environ["SDL_DISKAUDIOFILE"] = str(raw)
    pygame.mixer.quit()  # the driver opens the file named above when the mixer opens
    pg = open_mixer(SAMPLE_RATE)
    stream = None
    try:
        stream = Stream(
            timeline,
            sources,
            gain,
            pg.mixer.Channel(0),
            make_sound(pg),
            start_sample=start_sample,
            growing=growing,
        )
        yield stream
    finally:
        if stream is not None:
            stream.stop()
        pg.mixer.quit()


def play_to_end(
    raw, timeline, sources, gain, during=None, *, timeout_s=30.0, dropouts=None, **options
):
    """Play into `raw` until the stream ends; `during(stream, controller)` runs meanwhile.
    Returns the written frames, int16 (n, 2); `dropouts`, a list, receives `Stream.dropouts`."""
    with disk_stream(raw, timeline, sources, gain, **options) as stream:
        controller = Controller(stream)
        stream.start_feeder()
        if during is not None:
            during(stream, controller)
        deadline = time.monotonic() + timeout_s
        while not stream.finished and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stream.finished, "the stream did not end"
        assert stream.error is None
        if dropouts is not None:
            dropouts.extend(stream.dropouts)
    return np.fromfile(raw, dtype="<i2").reshape(-1, 2)


def zeros_from(frames: np.ndarray, i: int) -> int:
    """How many frames from `frames[i]` on are exact silence (to the end if all are)."""
    sounding = np.flatnonzero(frames[i:].any(axis=1))
    return int(sounding[0]) if len(sounding) else len(frames) - i


def without_dropouts(played, at, expected, first, dropouts):
    """`played` without the silence the device played while the stream's channel had run dry
    at `dropouts` (session samples where the sound resumed). `expected[0]` is session sample
    `first`, found at `played[at]`. At each dropout only the run of exact zeros before the
    resumed chunk's own samples is taken out: everything else must still match, in order."""
    for sample in sorted(d for d in dropouts if d >= first):
        i = at + sample - first
        gap = zeros_from(played, i) - zeros_from(expected, sample - first)
        assert gap >= 0, f"the sound resumed at {sample} with a sample missing"
        played = np.concatenate([played[:i], played[i + gap :]])
    return played


def first_difference(a, b) -> int:
    """The first index where frames `a` and `b` differ (the shorter length if none does)."""
    n = min(len(a), len(b))
    diff = np.flatnonzero((a[:n] != b[:n]).any(axis=1))
    return int(diff[0]) if diff.size else n


def until_difference(played, at, expected, first, dropouts):
    """Where `played` (from `played[at]`, session sample `first` = `expected[0]`) first really
    differs from `expected`: a listener's pause, skip or remix. Returns `played` without the
    dropouts that came before it, that offset into `expected`, and the dropouts after it."""
    later = sorted(d for d in dropouts if d >= first)
    while True:
        diff = first_difference(played[at:], expected)
        if not later or later[0] - first > diff:
            return played, diff, later
        played = without_dropouts(played, at, expected, first, later[:1])
        later = later[1:]
