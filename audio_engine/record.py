"""Recording a session's lines for the recorded voice (`relax record`): what to record, taking
recordings made elsewhere, and capturing from the microphone.

- `lines(session, folder)`: every distinct line the recorded voice speaks, in the order the
  session first speaks it: `Line(number, key, text, language, slot_s, path)` (`slot_s`: the
  time the line has where its slot is fixed, else None; `path`: its recording, if any).
- `write_csv(lines, file)`: number, key, text, slot and whether it is recorded, for a studio.
- `import_folder(lines, source, folder, ...)`: WAV, FLAC and OGG files named by key or by line
  number, checked (each must decode and hold sound) before any is copied.
- `keep(line, samples, folder, ...)`: a captured take saved as the line's recording.
- `Capture`: the microphone through SDL2's capture device (`pygame._sdl2.audio.AudioDevice` with
  `iscapture=True`), float32 mono at 44.1 kHz; `take()` records until asked to stop or until
  `SILENCE_STOP_S` of silence after the voice began.

Every recording is written through `fsio.atomic_write` and listed in the folder's `voice.yaml`
(key, text, language, speaker, licence).
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio_engine import fsio, model, timeline
from audio_engine.errors import RelaxError
from audio_engine.speech import recorded, voices

SILENCE_STOP_S = 1.5  # a take ends after this much silence once the voice has begun
SILENCE_DBFS = -45.0  # quieter than this (RMS of 10 ms) is silence to the stop detector
MAX_TAKE_S = 120.0
COUNT_IN_S = 3


class RecordError(RelaxError):
    """A recording could not be listed, imported, captured or kept."""


@dataclass(frozen=True)
class Line:
    number: int  # from 1, in the order the session first speaks the lines
    key: str
    text: str
    language: str
    slot_s: float | None
    path: Path | None  # its recording in the folder, if any


def voice_folder(session: model.Session, folder: Path | None) -> Path:
    """The folder of recordings: `folder`, else the session's recorded voice's."""
    if folder is not None:
        return Path(folder).resolve()
    if session.voice.folder is not None:
        return session.voice.folder
    raise RecordError(
        "no folder for the recordings: give --voice-folder DIR, or set "
        "`voice: {engine: recorded, folder: DIR}` in the script"
    )


def lines(session: model.Session, folder: Path) -> list[Line]:
    """Every distinct line the recorded voice speaks in `session` (each once, by key), in the
    order the session first speaks it. With no recorded voice in the script: every line."""
    order = timeline.speech_order(session)
    room = timeline.rooms(session)
    any_recorded = any(voices.uses_recordings(u.voice) for u in order)
    found: dict[str, Line] = {}
    slots: dict[str, int] = {}
    for u in order:
        if any_recorded and not voices.uses_recordings(u.voice):
            continue
        key = recorded.line_key(u.text, u.language)
        if u in room:
            slots[key] = min(room[u], slots.get(key, room[u]))
        if key not in found:
            found[key] = Line(len(found) + 1, key, u.text, u.language, None, None)
    return [
        Line(
            line.number,
            line.key,
            line.text,
            line.language,
            slots[line.key] / model.SAMPLE_RATE if line.key in slots else None,
            recorded.find(folder, line.key),
        )
        for line in found.values()
    ]


def write_csv(found: Iterable[Line], out) -> None:
    """`found` as CSV (number, key, text, slot in seconds or empty, recorded yes/no)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["number", "key", "text", "slot_s", "recorded"])
    for line in found:
        slot = "" if line.slot_s is None else f"{line.slot_s:.2f}"
        writer.writerow([line.number, line.key, line.text, slot, "yes" if line.path else "no"])


def csv_text(found: Iterable[Line]) -> str:
    out = io.StringIO()
    write_csv(found, out)
    return out.getvalue()


def _remember(folder: Path, line: Line, speaker: str | None, licence: str | None) -> None:
    manifest = recorded.read_manifest(folder)
    entry = {"text": line.text, "language": line.language}
    old = manifest.get(line.key, {})
    entry["speaker"] = speaker if speaker is not None else old.get("speaker", "")
    entry["licence"] = licence if licence is not None else old.get("licence", "")
    manifest[line.key] = entry
    recorded.write_manifest(folder, manifest)


def _replace(folder: Path, key: str, write: Callable[[Path], None], extension: str) -> Path:
    """Write a line's recording as `<key><extension>`, removing its other recordings after."""
    target = folder / f"{key}{extension}"
    fsio.private_dir(folder)
    write(target)
    for other in recorded.EXTENSIONS:
        if other != extension:
            (folder / f"{key}{other}").unlink(missing_ok=True)
    return target


_NUMBERED = re.compile(r"0*(\d+)(?:\D.*)?")


def import_folder(
    found: list[Line],
    source: Path,
    folder: Path,
    *,
    speaker: str | None = None,
    licence: str | None = None,
) -> tuple[list[Line], list[str]]:
    """Copy the recordings in `source` (named `<key>.wav` or by line number, `7.flac`,
    `007-breathe-in.ogg`) into `folder`; (lines imported, names of files that match no line).

    Every file is checked first (it decodes, and holds sound): a bad one is a `RecordError`
    naming it, and nothing is copied."""

    source = Path(source)
    if not source.is_dir():
        raise RecordError(f"cannot import from {source}: it is not a folder")
    by_key = {line.key: line for line in found}
    by_number = {line.number: line for line in found}
    chosen: dict[str, tuple[Line, Path]] = {}
    unknown = []
    for path in sorted(source.iterdir()):
        if path.suffix.lower() not in recorded.EXTENSIONS or not path.is_file():
            continue
        stem = path.stem.lower()
        number = _NUMBERED.fullmatch(stem)
        line = by_key.get(stem) or (by_number.get(int(number.group(1))) if number else None)
        if line is None:
            unknown.append(path.name)
            continue
        if line.key in chosen:
            raise RecordError(
                f"cannot import from {source}: {chosen[line.key][1].name} and {path.name} are "
                f"both line {line.number} ({line.text!r})"
            )
        chosen[line.key] = (line, path)
    for _line, path in chosen.values():
        try:
            if path.stat().st_size > recorded.MAX_RECORDING_BYTES:
                limit = recorded.MAX_RECORDING_BYTES
                raise ValueError(f"it is larger than the limit of {limit:,} bytes")
            recorded.process(*recorded.decode(path))
        except Exception as exc:  # noqa: BLE001 - any decoder or content problem: name the file
            raise RecordError(f"cannot import {path}: {exc}") from None
    done = []
    for line, path in chosen.values():

        def copy(target: Path, path=path) -> None:
            def write(f) -> None:
                with open(path, "rb") as original:
                    shutil.copyfileobj(original, f)

            fsio.atomic_write(target, write)

        _replace(folder, line.key, copy, path.suffix.lower())
        _remember(folder, line, speaker, licence)
        done.append(line)
    return done, unknown


def keep(
    line: Line,
    samples: np.ndarray,
    folder: Path,
    *,
    speaker: str | None = None,
    licence: str | None = None,
) -> Path:
    """Save a take (float32 mono at 44.1 kHz, as captured) as `line`'s recording (FLAC)."""
    import soundfile

    def write(target: Path) -> None:
        def encode(f) -> None:
            soundfile.write(f, samples, model.SAMPLE_RATE, format="FLAC", subtype="PCM_24")

        fsio.atomic_write(target, encode)

    path = _replace(folder, line.key, write, ".flac")
    _remember(folder, line, speaker, licence)
    return path


def trimmed(samples: np.ndarray) -> np.ndarray:
    """A take as the recorded voice will speak it (`recorded.process`)."""
    return recorded.process(samples, model.SAMPLE_RATE)


# ---- capture -----------------------------------------------------------------------------------


class Capture:
    """The microphone: SDL2's capture device through pygame, float32 mono at 44.1 kHz."""

    def __init__(self, device: str | None = None):
        import os

        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame
        from pygame._sdl2 import audio as sdl_audio

        if not pygame.get_init():
            pygame.init()
        names = sdl_audio.get_audio_device_names(True)
        if not names:
            raise RecordError(
                "no microphone found (SDL lists no capture device); connect one, or record "
                "elsewhere and use `relax record SESSION --import DIR`"
            )
        self.name = device if device is not None else names[0]
        self._lock = threading.Lock()
        self._chunks: list[np.ndarray] = []
        self._audio = sdl_audio
        try:
            self._device = sdl_audio.AudioDevice(
                devicename=self.name,
                iscapture=True,
                frequency=model.SAMPLE_RATE,
                audioformat=sdl_audio.AUDIO_F32,
                numchannels=1,
                chunksize=1024,
                allowed_changes=0,
                callback=self._callback,
            )
        except Exception as exc:  # noqa: BLE001 - SDL raises plain errors: one line
            raise RecordError(f"cannot open the microphone {self.name!r}: {exc}") from None

    def _callback(self, device, memory) -> None:
        chunk = np.frombuffer(bytes(memory), dtype=np.float32).copy()
        with self._lock:
            self._chunks.append(chunk)

    def _drain(self) -> np.ndarray:
        with self._lock:
            chunks, self._chunks = self._chunks, []
        return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)

    def take(
        self,
        stop: Callable[[], bool],
        *,
        max_s: float = MAX_TAKE_S,
        on_level: Callable[[float, float], None] | None = None,
    ) -> np.ndarray:
        """Record until `stop()` says so, `max_s` have passed, or `SILENCE_STOP_S` of silence
        followed the voice; the samples as captured. `on_level(seconds, dBFS)` is told the
        level as it goes."""
        self._drain()
        parts: list[np.ndarray] = []
        frame = round(0.010 * model.SAMPLE_RATE)
        threshold = 10.0 ** (SILENCE_DBFS / 20.0)
        heard = False
        quiet_frames = 0
        total = 0
        pending = np.zeros(0, np.float32)
        self._device.pause(0)
        try:
            while not stop() and total < max_s * model.SAMPLE_RATE:
                time.sleep(0.02)
                got = self._drain()
                if not got.size:
                    continue
                parts.append(got)
                total += got.size
                pending = np.concatenate([pending, got])
                n = pending.size // frame
                if n:
                    frames = pending[: n * frame].reshape(n, frame).astype(np.float64)
                    pending = pending[n * frame :]
                    level = np.sqrt(np.mean(frames * frames, axis=1))
                    for rms in level:
                        if rms > threshold:
                            heard, quiet_frames = True, 0
                        else:
                            quiet_frames += 1
                    if on_level is not None:
                        db = 20 * np.log10(max(float(level.max()), 1e-9))
                        on_level(total / model.SAMPLE_RATE, db)
                    if heard and quiet_frames * frame >= SILENCE_STOP_S * model.SAMPLE_RATE:
                        break
        finally:
            self._device.pause(1)
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def close(self) -> None:
        self._device.close()
