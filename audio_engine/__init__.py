"""relax: voice-guided relaxation sessions, from YAML scripts to sound.

The pipeline, one module per stage (see docs/design in the README):

- `script.load(path)` -> `model.Session` (validated, with file:line:col diagnostics)
- `tts.synthesize_many(utterances)` -> speech clips (float32, 44.1 kHz), cached on disk
- `timeline.compile(session, clip_lengths)` -> `Timeline` (events on a sample clock)
- `render.blocks(timeline, sources, start_sample=0)` -> stereo float32 blocks
- sinks: `export.export(...)` (audio files) and `player.play(...)` (pygame)
"""

__version__ = "0.1.0"
