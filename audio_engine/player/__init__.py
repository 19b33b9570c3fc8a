"""The live player sink: the render stream through pygame.mixer, with controls and a pacer.

Entry points:

- `open_mixer(sample_rate)`: open the audio output (raises `AudioDeviceError` without one).
- `play(prepared, gain, start_sample=0, window=True, volume=1.0) -> str`: play until the end or
  until the listener quits; the pacer window when a display is available, else a terminal line.

Modules: `stream` (blocks onto a mixer channel, the sample clock, skip/mute/pause), `pacer` (the
state at a sample and the window frame, pure), `keys` (window and terminal keys), `app` (the main
loop). See docs/player.md.
"""

from __future__ import annotations

from audio_engine.player.app import Controller, display_available, import_pygame, open_mixer, play

__all__ = ["Controller", "display_available", "import_pygame", "open_mixer", "play"]
