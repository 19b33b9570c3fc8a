"""Playing through the real pygame mixer with SDL's disk driver, which writes what it plays."""

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


def play_to_end(raw, timeline, sources, gain, during=None, *, timeout_s=30.0, **options):
    """Play into `raw` until the stream ends; `during(stream, controller)` runs meanwhile.
    Returns the written frames, int16 (n, 2)."""
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
    return np.fromfile(raw, dtype="<i2").reshape(-1, 2)
