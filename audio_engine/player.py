"""The live player sink: the render stream through pygame.mixer (first cut: sound only).

Entry points: `open_mixer()` (raises `AudioDeviceError` when there is no output device) and
`play(prepared, gain)`.
"""

from __future__ import annotations

import os
import time

import numpy as np

from audio_engine import render
from audio_engine.errors import AudioDeviceError

CHUNK_SAMPLES = 16384  # ~0.37 s per queued sound: long enough not to stutter


def open_mixer(sample_rate: int = 44100):
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    try:
        pygame.mixer.init(
            frequency=sample_rate, size=-16, channels=2, buffer=2048, allowedchanges=0
        )
    except pygame.error as exc:
        raise AudioDeviceError(
            f"no audio output device ({exc}); export the session instead: relax export SESSION"
        ) from None
    if pygame.mixer.get_init() != (sample_rate, -16, 2):
        got = pygame.mixer.get_init()
        pygame.mixer.quit()
        raise AudioDeviceError(
            f"the audio device does not accept {sample_rate} Hz stereo 16-bit (got {got})"
        )
    return pygame


def play(prepared, gain: float) -> None:
    pygame = open_mixer(prepared.timeline.sample_rate)
    try:
        channel = pygame.mixer.Channel(0)
        for block in render.blocks(
            prepared.timeline, prepared.sources, block_samples=CHUNK_SAMPLES, gain=gain
        ):
            sound = pygame.sndarray.make_sound(np.ascontiguousarray(render.to_int16(block)))
            while channel.get_queue() is not None:
                time.sleep(0.01)
            if channel.get_busy():
                channel.queue(sound)
            else:
                channel.play(sound)
        while channel.get_busy():
            time.sleep(0.01)
    finally:
        pygame.mixer.quit()
