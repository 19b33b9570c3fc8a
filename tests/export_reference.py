"""Fingerprints of every existing script's export, to prove a format change keeps their samples.

`python -m tests.export_reference` prints, for each built-in session and each script in
`tests/scripts/good`, its two fingerprints (see `fingerprints`); `--write` stores them with the
speech clip lengths they were made with: the lengths and the timeline digests in
`tests/data/export-reference.json`, the mix summaries in `tests/data/export-reference-mix.npz`.
`tests/test_export_reference.py` compares them against the code as it is now.

The fingerprints are made of what a script's meaning decides, and nothing a speech engine decides
beyond the clip lengths (which are recorded once, from the real espeak-ng engine):

- `timeline`: a SHA-256 of every event (kind, start sample, end sample, text, the spoken line's
  rate and volume, the chime and its volume, the guide tone's phases in samples and its cycles),
  every chapter and the total length, compiled with the recorded clip lengths. Integers and
  text only, so it is exact on every machine.
- `mix`: a summary of the rendered session (float32 stereo, every block `render.blocks` yields at
  gain 1) with each speech clip replaced by silence of its recorded length: guide tones, chimes,
  and the background layers with their fades and their ducking under the (timed) speech. The
  summary is the frame count, the mean square of each channel in every quarter second, and the
  sum of each channel in every second. It is compared with a tolerance (`mix_differences`), not
  byte for byte: BLAS and numpy choose their float kernels by CPU (OpenBLAS's AVX2 and AVX-512
  matrix products, numpy's SIMD `sin`, `exp` and `tanh` differ in the last bits), and a change
  of 1e-8 in a sample is not a change in what a script means. A one-sample change in where the
  voice ducks the background, or any change in a layer, moves a quarter second's energy by far
  more than the tolerance (tested).

Given the same speech clips, those two decide every sample of an export. Speech itself is left
out on purpose: English is about to get a different default speech engine, which changes its
clips but not what the script means.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "data" / "export-reference.json"
MIX_REFERENCE = ROOT / "tests" / "data" / "export-reference-mix.npz"

ENERGY_FRAMES = 11_025  # a quarter second at 44.1 kHz: each channel's mean square over it
SUM_FRAMES = 44_100  # a second: each channel's sum over it
# Measured between OpenBLAS's AVX2 and AVX-512 kernels: quarter-second energies differ by up to
# 3e-9 relative, one-second sums by 1e-9 of the second's L2 norm. A clip one sample longer moves
# the ducking and with it a quarter second's energy by 2.7e-6 or more; a layer's volume 0.1 %
# up moves it by 2e-3.
ENERGY_RTOL = 1e-6
ENERGY_ATOL = 1e-12  # a mean square of -120 dBFS: where the mix is silent or nearly so
SUM_TOL = 1e-6  # of the second's L2 norm
SUM_ATOL = 1e-6  # where the second is silent or nearly so


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


@dataclass(frozen=True)
class MixSummary:
    """What the mix fingerprint keeps of a rendered session (see the module docstring)."""

    frames: int
    energy: np.ndarray  # (quarter seconds, 2) float32: mean square per channel
    sums: np.ndarray  # (seconds, 2) float64: sum per channel
    norms: np.ndarray  # (seconds, 2) float64: L2 norm per channel (the sums' scale)


def _summarize(blocks) -> MixSummary:
    energy, sums, norms = [], [], []
    carry_e = np.zeros((0, 2))
    carry_s = np.zeros((0, 2))
    frames = 0

    def windows(b: np.ndarray, size: int, final: bool):
        n = len(b) // size * size
        parts = []
        if n:
            parts.append(b[:n].reshape(-1, size, 2))
        rest = b[n:]
        if final and len(rest):
            parts.append(rest[None])
            rest = rest[:0]
        return parts, rest

    for block in itertools.chain(blocks, [None]):
        final = block is None
        if not final:
            b = np.asarray(block, dtype=np.float64)
            frames += len(b)
            carry_e = np.concatenate([carry_e, b])
            carry_s = np.concatenate([carry_s, b])
        parts, carry_e = windows(carry_e, ENERGY_FRAMES, final)
        energy += [(x * x).mean(axis=1) for x in parts]
        parts, carry_s = windows(carry_s, SUM_FRAMES, final)
        sums += [x.sum(axis=1) for x in parts]
        norms += [np.sqrt((x * x).sum(axis=1)) for x in parts]

    def stack(items, dtype):
        return np.concatenate(items).astype(dtype) if items else np.zeros((0, 2), dtype)

    return MixSummary(
        frames, stack(energy, np.float32), stack(sums, np.float64), stack(norms, np.float64)
    )


def mix_differences(found: MixSummary, reference: MixSummary) -> list[str]:
    """Where `found` differs from `reference` by more than the kernels' tolerance ([] if not)."""
    if found.frames != reference.frames:
        return [f"{found.frames} frames, the reference has {reference.frames}"]
    out = []
    e, r = found.energy.astype(np.float64), reference.energy.astype(np.float64)
    bad = np.argwhere(np.abs(e - r) > ENERGY_RTOL * np.abs(r) + ENERGY_ATOL)
    for w, ch in bad[:5]:
        out.append(
            f"energy at {w * ENERGY_FRAMES / 44100:.2f} s, channel {ch}: {e[w, ch]:.9g}, "
            f"the reference has {r[w, ch]:.9g}"
        )
    d = np.abs(found.sums - reference.sums)
    bad = np.argwhere(d > SUM_TOL * reference.norms + SUM_ATOL)
    for w, ch in bad[:5]:
        out.append(
            f"sum at {w} s, channel {ch}: {found.sums[w, ch]:.9g}, "
            f"the reference has {reference.sums[w, ch]:.9g}"
        )
    return out


def render_mix(path: Path, by_key: Mapping[str, int], *, edit=None):
    """The timeline and the rendered blocks (a generator) of one script with these clip lengths.

    `edit`, if given, maps the loaded `Session` to another before compiling (for the tests that
    prove a changed layer is seen)."""
    from audio_engine import pipeline, render, script, timeline

    session = script.load(path)
    if edit is not None:
        session = edit(session)
    lengths = RecordedLengths(by_key)
    tl = timeline.compile(session, lengths)
    sounds = pipeline.load_sounds(session)
    sources = render.Sources(speech=_Silence(lengths), sounds=sounds)
    return tl, render.blocks(tl, sources, gain=1.0)


def fingerprints(path: Path, by_key: Mapping[str, int], *, edit=None) -> dict:
    """{"timeline": sha256 hex, "mix": MixSummary} of one script with the given clip lengths."""
    tl, blocks = render_mix(path, by_key, edit=edit)
    return {"timeline": timeline_digest(tl), "mix": _summarize(blocks)}


def load_mix_reference() -> dict[str, MixSummary]:
    with np.load(MIX_REFERENCE) as data:
        names = {k.rsplit("::", 1)[0] for k in data.files}
        return {
            n: MixSummary(
                int(data[f"{n}::frames"]),
                data[f"{n}::energy"],
                data[f"{n}::sums"],
                data[f"{n}::norms"],
            )
            for n in names
        }


def _save_mix_reference(mixes: Mapping[str, MixSummary]) -> None:
    arrays = {}
    for n, m in mixes.items():
        arrays[f"{n}::frames"] = np.int64(m.frames)
        arrays[f"{n}::energy"] = m.energy
        arrays[f"{n}::sums"] = m.sums
        arrays[f"{n}::norms"] = m.norms
    np.savez_compressed(MIX_REFERENCE, **arrays)


def espeak_lengths(path: Path) -> dict[str, int]:
    """Every clip length the script needs, from the real espeak-ng engine (the cache)."""
    from audio_engine import script, timeline, tts

    session = script.load(path)
    utterances = sorted(timeline.speech_requests(session), key=utterance_key)
    found = tts.clip_lengths(utterances)
    return {utterance_key(u): int(found[u]) for u in utterances}


def record() -> tuple[dict, dict[str, MixSummary]]:
    from audio_engine import tts

    entries, mixes = {}, {}
    for path in scripts():
        lengths = espeak_lengths(path)
        found = fingerprints(path, lengths)
        entries[name_of(path)] = {"lengths": lengths, "timeline": found["timeline"]}
        mixes[name_of(path)] = found["mix"]
    return {"engine": tts.engine_version(), "scripts": entries}, mixes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"store them in {REFERENCE}")
    args = parser.parse_args(argv)
    data, mixes = record()
    for name, entry in data["scripts"].items():
        m = mixes[name]
        rms = float(np.sqrt(m.energy.astype(np.float64).mean())) if m.energy.size else 0.0
        print(f"{entry['timeline'][:16]}  {m.frames:>9} frames  rms {rms:.6f}  {name}")
    if args.write:
        REFERENCE.parent.mkdir(parents=True, exist_ok=True)
        REFERENCE.write_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
        _save_mix_reference(mixes)
        for f in (REFERENCE, MIX_REFERENCE):
            print(f"written: {f.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
