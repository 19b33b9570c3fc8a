"""Fingerprints of every existing script's export, to prove a format change keeps their samples.

`python -m tests.export_reference` prints, for each built-in session and each script in
`tests/scripts/good`, two SHA-256 fingerprints (see `fingerprints`); `--write` stores them with the
speech clip lengths they were made with in `tests/data/export-reference.json`, which
`tests/test_export_reference.py` compares against the code as it is now.

The fingerprints are made of what a script's meaning decides, and nothing a speech engine decides
beyond the clip lengths (which are recorded once, from the real espeak-ng engine):

- `timeline`: every event (kind, start sample, end sample, text, the spoken line's rate and
  volume, the chime and its volume, the guide tone's phases in samples and its cycles), every
  chapter and the total length, compiled with the recorded clip lengths;
- `mix`: the rendered session (float32 stereo, every block `render.blocks` yields at gain 1)
  with each speech clip replaced by silence of its recorded length: guide tones, chimes, and the
  background layers with their fades and their ducking under the (timed) speech.

Given the same speech clips, those two decide every sample of an export. Speech itself is left
out on purpose: English is about to get a different default speech engine, which changes its
clips but not what the script means.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "data" / "export-reference.json"


def scripts() -> list[Path]:
    """Every existing script whose export must not change: the library and the good examples."""
    return sorted((ROOT / "sessions").glob("*.yaml")) + sorted(
        (ROOT / "tests" / "scripts" / "good").glob("*.yaml")
    )


def name_of(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def utterance_key(u) -> str:
    """An utterance as text: what it says and how, without the engine that says it."""
    v = u.voice
    return json.dumps([u.text, u.language, v.name, v.rate_wpm, v.volume], ensure_ascii=False)


class RecordedLengths(Mapping):
    """Clip lengths by `utterance_key` (a `timeline.compile` lengths mapping)."""

    def __init__(self, by_key: Mapping[str, int]):
        self.by_key = dict(by_key)

    def __getitem__(self, utterance) -> int:
        return self.by_key[utterance_key(utterance)]

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return len(self.by_key)


class _Silence(Mapping):
    """Speech clips that are silence of the recorded lengths."""

    def __init__(self, lengths: RecordedLengths):
        self.lengths = lengths

    def __getitem__(self, utterance) -> np.ndarray:
        return np.zeros(self.lengths[utterance], dtype=np.float32)

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0


def timeline_digest(tl) -> str:
    h = hashlib.sha256()

    def put(*items) -> None:
        h.update(json.dumps(items, ensure_ascii=False).encode())

    put("total", tl.total_samples, tl.sample_rate)
    for c in tl.chapters:
        put("chapter", c.title, c.start_sample)
    for e in tl.events:
        voice = e.utterance.voice if e.utterance is not None else None
        put(
            e.kind,
            e.start_sample,
            e.end_sample,
            e.text,
            voice.rate_wpm if voice else None,
            voice.volume if voice else None,
            e.chime,
            e.volume,
            [list(p) for p in e.tone.phases] if e.tone is not None else None,
            e.tone.cycles if e.tone is not None else None,
        )
    return h.hexdigest()


def fingerprints(path: Path, by_key: Mapping[str, int]) -> dict[str, str]:
    """{"timeline": sha256, "mix": sha256} of one script with the given clip lengths."""
    from audio_engine import pipeline, render, script, timeline

    session = script.load(path)
    lengths = RecordedLengths(by_key)
    tl = timeline.compile(session, lengths)
    sounds = pipeline.load_sounds(session)
    sources = render.Sources(speech=_Silence(lengths), sounds=sounds)
    h = hashlib.sha256()
    frames = 0
    for block in render.blocks(tl, sources, gain=1.0):
        block = np.ascontiguousarray(block, dtype=np.float32)
        frames += len(block)
        h.update(block.tobytes())
    h.update(struct.pack("<q", frames))
    return {"timeline": timeline_digest(tl), "mix": h.hexdigest()}


def espeak_lengths(path: Path) -> dict[str, int]:
    """Every clip length the script needs, from the real espeak-ng engine (the cache)."""
    from audio_engine import script, timeline, tts

    session = script.load(path)
    utterances = sorted(timeline.speech_requests(session), key=utterance_key)
    found = tts.clip_lengths(utterances)
    return {utterance_key(u): int(found[u]) for u in utterances}


def record() -> dict:
    from audio_engine import tts

    entries = {}
    for path in scripts():
        lengths = espeak_lengths(path)
        entries[name_of(path)] = {"lengths": lengths, **fingerprints(path, lengths)}
    return {"engine": tts.engine_version(), "scripts": entries}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"store them in {REFERENCE}")
    args = parser.parse_args(argv)
    data = record()
    for name, entry in data["scripts"].items():
        print(f"{entry['timeline'][:16]}  {entry['mix'][:16]}  {name}")
    if args.write:
        REFERENCE.parent.mkdir(parents=True, exist_ok=True)
        REFERENCE.write_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
        print(f"written: {REFERENCE.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
