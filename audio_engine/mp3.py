"""MP3 files by LAME, with the LAME info tag.

Entry point: `Writer(file, quality, sample_rate=44100)`: `write(int16 (n, 2) block)` as the
blocks come, `close()` at the end (`abort()`, or leaving a `with` block on an error, ends the
encoder without a file). The same settings as LAME's `-V (10 - q) * 0.99` with its default
algorithm quality (-q 3): variable bit rate, joint stereo.

Which LAME: the one in the static ffmpeg of the imageio-ffmpeg wheel (`encoder == "ffmpeg"`),
fed the 16-bit PCM through a pipe while a thread reads the MPEG frames back: the build of LAME
3.100 in lameenc's wheel takes 1.16-1.3x the CPU of that one. Where there is no such ffmpeg
(imageio-ffmpeg has no binary for every platform; an ffmpeg without libmp3lame), or
`RELAX_MP3_ENCODER=lameenc` is set, LAME through `lameenc` (`encoder == "lameenc"`). The two
builds (and ffmpeg's `-q:a`, which counts in steps of 1/118: 4.95 is given as 4.9492) differ in
the last bits of some frames and a few bytes in size, not in sound; each gives the same bytes
from the same samples. An ffmpeg that fails, dies or stalls (no input taken for
`STALL_S`) is ended and raised as an `EncoderError` (an `OSError`, so the export says "cannot
write FILE: ..." and leaves no file); it runs in a session of its own (a Ctrl-C at the terminal
reaches relax alone) and is ended with relax: on `abort()`, when the Writer is dropped, at exit.

Both return the MPEG frames only. What LAME itself writes first (the frame that makes playback
gapless and seeking fast: a Xing header with the frame and byte counts and a seek table, and the
LAME extension with the encoder delay and padding) is written here, as LAME 3.100 writes it (the
fields LAME derives from its settings taken from LAME's own files at each quality), into room
kept at the file's start. The music CRC is 0 (LAME's own is a CRC-16 of every frame, which no
player checks); the tag's CRC is computed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import select
import struct
import subprocess
import tempfile
import threading
import time
import weakref
from typing import BinaryIO

import numpy as np

ENCODER_DELAY = 576  # samples LAME 3.100 puts before the first input sample (44.1 kHz)
ENCODER_ENV = "RELAX_MP3_ENCODER"  # "lameenc": LAME through lameenc even where ffmpeg is there
STALL_S = 60.0  # an ffmpeg that takes no input (or does not finish) for this long is ended
_WAKE_S = 0.1  # the longest a wait on ffmpeg lasts before it looks again (signals, a dead child)
_READ_BYTES = 1 << 16
_FRAME_SAMPLES = 1152
_TAG_BITRATE_INDEX = 9  # 128 kbit/s: LAME's choice for the tag frame of an MPEG-1 stream
_BITRATES = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_RATES = {44100: 0, 48000: 1, 32000: 2}
# What LAME 3.100 writes at each whole quality 0-10 (-V 9.9 ... -V 0): the lowpass (in 100 Hz),
# the flags and ATH byte; the Xing quality field and the preset follow 10 * q.
_LOWPASS = (0x2B, 0x4F, 0x98, 0x9D, 0xA5, 0xAA, 0xAF, 0xB4, 0xB9, 0xC3, 0xDD)


def _crc16_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC16 = _crc16_table()


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16 (ARC: polynomial 0x8005, reflected), as the LAME tag uses it."""
    for byte in data:
        crc = (crc >> 8) ^ _CRC16[(crc ^ byte) & 0xFF]
    return crc


class EncoderError(OSError):
    """The MP3 encoder failed: its reason in one line (`strerror`)."""

    def __init__(self, reason: str):
        super().__init__(None, reason)

    def __str__(self) -> str:
        return self.strerror


@functools.lru_cache(maxsize=1)
def _ffmpeg_with_lame() -> str | None:
    """The imageio-ffmpeg wheel's ffmpeg (or the one IMAGEIO_FFMPEG_EXE names), if it has
    libmp3lame; else None. Asked once per process (about 30 ms)."""
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        found = subprocess.run(
            [exe, "-hide_banner", "-nostdin", "-h", "encoder=libmp3lame"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=STALL_S,
        )
    except (ImportError, RuntimeError, OSError, subprocess.SubprocessError):
        return None
    return exe if b"Encoder libmp3lame" in found.stdout else None


def encoder_name() -> str:
    """Which LAME a Writer made now uses: "ffmpeg" or "lameenc"."""
    if os.environ.get(ENCODER_ENV, "").strip().lower() == "lameenc":
        return "lameenc"
    return "ffmpeg" if _ffmpeg_with_lame() else "lameenc"


class Writer:
    """An MP3 stream written to `file` (open for writing and seeking, at its start)."""

    def __init__(self, file: BinaryIO, quality: float, sample_rate: int = 44100):
        if sample_rate not in _RATES:
            raise ValueError(f"MP3 at {sample_rate} Hz is not written here")
        self._file = file
        self._quality = float(quality)
        self._rate = sample_rate
        self.encoder = encoder_name()
        vbr_quality = (10.0 - self._quality) * 0.99
        if self.encoder == "ffmpeg":
            exe = _ffmpeg_with_lame()
            assert exe is not None
            self._lame: _Ffmpeg | _Lameenc = _Ffmpeg(exe, vbr_quality, sample_rate)
        else:
            self._lame = _Lameenc(vbr_quality, sample_rate)
        self._tag_size = 144000 * _BITRATES[_TAG_BITRATE_INDEX] // sample_rate
        self._samples = 0
        self._frames: list[int] = []  # each audio frame's offset after the tag frame
        self._pending = bytearray()  # bytes not yet split into frames
        self._offset = 0  # bytes of audio written
        self._first_header = b""
        try:
            file.write(bytes(self._tag_size))  # room for the tag
        except BaseException:
            self.abort()
            raise

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.abort()  # after close(): nothing left to end

    def write(self, block: np.ndarray) -> None:
        """Encode an int16 (n, 2) block."""
        self._samples += len(block)
        try:
            self._put(self._lame.encode(np.ascontiguousarray(block, dtype="<i2").tobytes()))
        except BaseException:
            self.abort()
            raise

    def close(self) -> None:
        """Flush the encoder and write the tag frame at the start."""
        try:
            self._put(self._lame.flush())
        except BaseException:
            self.abort()
            raise
        if self._pending:
            raise EncoderError("the MP3 encoder left a partial frame")
        end = self._file.tell()
        self._file.seek(0)
        self._file.write(self._tag())
        self._file.seek(end)

    def abort(self) -> None:
        """End the encoder at once (the file is left as it is, for the caller to remove)."""
        self._lame.abort()

    # ---- internals -----------------------------------------------------------------------------

    def _put(self, data: bytes) -> None:
        if not data:
            return
        self._file.write(data)
        self._pending += data
        at = 0
        while len(self._pending) - at >= 4:
            head = self._pending[at : at + 4]
            if head[0] != 0xFF or head[1] & 0xE0 != 0xE0 or not 0 < head[2] >> 4 < 15:
                raise EncoderError("the MP3 encoder wrote something that is not an MPEG frame")
            length = 144000 * _BITRATES[head[2] >> 4] // self._rate + ((head[2] >> 1) & 1)
            if len(self._pending) - at < length:
                break
            if not self._first_header:
                self._first_header = bytes(head)
            self._frames.append(self._offset + at)
            at += length
        del self._pending[:at]
        self._offset += at

    def _tag(self) -> bytes:
        frames = len(self._frames)
        audio_bytes = self._offset
        total = self._tag_size + audio_bytes
        q = min(10, max(0, round(self._quality)))
        padding = frames * _FRAME_SAMPLES - ENCODER_DELAY - self._samples
        mode = self._first_header[3] if self._first_header else 0x64
        header = bytes((0xFF, 0xFB, (_TAG_BITRATE_INDEX << 4) | (_RATES[self._rate] << 2), mode))
        toc = bytearray(100)
        for i in range(1, 100):
            frame = min(frames - 1, i * frames // 100) if frames else 0
            position = self._tag_size + (self._frames[frame] if frames else 0)
            toc[i] = min(255, 256 * position // total)
        xing = b"Xing" + struct.pack(">IIII", 0x0F, frames, total, 0)[:12] + bytes(toc)
        xing += struct.pack(">I", min(100, 10 * (q + 1)))
        lame = b"LAME3.100"
        lame += bytes((0x04, _LOWPASS[q]))  # revision 0, VBR method 4 (mtrh); the lowpass
        lame += bytes(8)  # peak amplitude, radio and audiophile replay gain: not set
        lame += bytes((0x15 if q < 2 else 0x35, 0x20))  # flags and ATH type; minimum bit rate
        lame += (ENCODER_DELAY << 12 | max(0, min(padding, 0xFFF))).to_bytes(3, "big")
        lame += bytes((0x4D, 0x00))  # misc (noise shaping, joint stereo, 44.1 kHz); MP3 gain
        lame += struct.pack(">HI", 410 + 10 * min(q, 9), total)  # preset; music length
        lame += struct.pack(">H", 0)  # music CRC: not computed
        frame = bytearray(header + bytes(32) + xing + lame)
        frame += struct.pack(">H", crc16(bytes(frame[:190])))
        frame += bytes(self._tag_size - len(frame))
        return bytes(frame)


# ---- the encoders: encode(pcm bytes) -> frames so far, flush() -> the rest, abort() -------------


class _Lameenc:
    """LAME in this process, through lameenc."""

    def __init__(self, vbr_quality: float, rate: int):
        import lameenc

        self._encoder = lameenc.Encoder()
        self._encoder.set_channels(2)
        self._encoder.set_in_sample_rate(rate)
        self._encoder.set_out_sample_rate(rate)
        self._encoder.set_vbr(4)  # vbr_mtrh, LAME's default VBR method
        self._encoder.set_vbr_quality(vbr_quality)
        self._encoder.set_quality(3)  # LAME's default algorithm quality

    def encode(self, pcm: bytes) -> bytes:
        return bytes(self._encoder.encode(pcm))

    def flush(self) -> bytes:
        return bytes(self._encoder.flush())

    def abort(self) -> None:
        pass


def _end(proc: subprocess.Popen) -> None:
    """Kill `proc` if it still runs, reap it, close its input (a finalizer: it must not hold the
    Writer). Its output is the reader thread's to close, at the end of file the kill gives."""
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STALL_S)
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()


class _Ffmpeg:
    """LAME in an ffmpeg child: PCM written to its stdin from the caller's thread, its frames
    read from its stdout by a thread of its own (so neither pipe can fill up and stop the other),
    its messages into a temporary file."""

    def __init__(self, exe: str, vbr_quality: float, rate: int):
        command = [
            exe,
            "-hide_banner",
            "-nostdin",
            "-nostats",
            "-loglevel",
            "error",
            "-f",
            "s16le",
            "-ar",
            str(rate),
            "-ac",
            "2",
            "-i",
            "pipe:0",
            "-map_metadata",
            "-1",
            "-c:a",
            "libmp3lame",
            "-q:a",
            f"{vbr_quality:.6g}",
            "-compression_level",
            "3",  # LAME's default algorithm quality, as lameenc and `lame -V` run it
            "-flags:a",
            "+bitexact",
            "-fflags",
            "+bitexact",
            "-f",
            "mp3",
            "-write_xing",
            "0",
            "-id3v2_version",
            "0",
            "-write_id3v1",
            "0",
            "pipe:1",
        ]
        self._messages = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _close)
        try:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._messages,
                start_new_session=True,  # a Ctrl-C at the terminal is relax's to act on
            )
        except OSError as exc:
            self._messages.close()
            raise EncoderError(
                f"the MP3 encoder (ffmpeg) could not start: {exc.strerror or exc}"
            ) from None
        self._ender = weakref.finalize(self, _end, self._proc)  # when dropped, and at exit
        self._in = self._proc.stdin.fileno()
        self._room = None  # where there is poll: short waits for room in the pipe (`_write`)
        if os.name == "posix" and hasattr(select, "poll"):
            os.set_blocking(self._in, False)
            self._room = select.poll()
            self._room.register(self._in, select.POLLOUT)
        self._frames: queue.SimpleQueue = queue.SimpleQueue()  # bytes, then None at the end
        self._ended = False
        self._reader = threading.Thread(
            target=_read, args=(self._proc.stdout, self._frames), name="relax mp3", daemon=True
        )
        self._reader.start()

    def encode(self, pcm: bytes) -> bytes:
        self._write(memoryview(pcm))
        return self._take()

    def flush(self) -> bytes:
        self._proc.stdin.close()  # the end of the input: ffmpeg flushes LAME and ends
        deadline = time.monotonic() + STALL_S
        while self._reader.is_alive():
            if time.monotonic() > deadline:
                raise self._failure("the MP3 encoder (ffmpeg) did not finish")
            self._reader.join(_WAKE_S)
        try:
            code = self._proc.wait(max(_WAKE_S, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise self._failure("the MP3 encoder (ffmpeg) did not finish") from None
        data = self._take()
        if code != 0 or not self._ended:
            raise self._failure()
        self._close()
        return data

    def abort(self) -> None:
        self._ender()
        self._close()

    # ---- internals -----------------------------------------------------------------------------

    def _write(self, view: memoryview) -> None:
        if self._room is None:
            try:
                self._proc.stdin.write(view)
            except OSError:
                raise self._failure() from None
            return
        since = time.monotonic()
        while view:
            try:
                done = os.write(self._in, view)
            except BlockingIOError:
                done = 0
            except OSError:  # a broken pipe: ffmpeg has ended
                raise self._failure() from None
            if done:
                view = view[done:]
                since = time.monotonic()
                continue
            if self._proc.poll() is not None:
                raise self._failure()
            if time.monotonic() - since > STALL_S:
                raise self._failure("the MP3 encoder (ffmpeg) stopped taking samples")
            self._room.poll(_WAKE_S * 1000)  # room in the pipe, or a turn ends

    def _take(self) -> bytes:
        parts = []
        while True:
            try:
                part = self._frames.get_nowait()
            except queue.Empty:
                break
            if part is None:
                self._ended = True
                break
            parts.append(part)
        return b"".join(parts)

    def _failure(self, reason: str | None = None) -> EncoderError:
        """The error to raise, after ending ffmpeg: `reason`, else its exit and last message."""
        self._ender()
        if reason is None:
            code = self._proc.returncode
            if code is not None and code < 0:
                reason = f"the MP3 encoder (ffmpeg) was killed (signal {-code})"
            else:
                reason = f"the MP3 encoder (ffmpeg) failed (exit status {code})"
            last = self._last_message()
            if last:
                reason = f"{reason}: {last}"
        self._close()
        return EncoderError(reason)

    def _last_message(self) -> str:
        try:
            self._messages.seek(0)
            lines = self._messages.read().decode("utf-8", "replace").splitlines()
        except (OSError, ValueError):
            return ""
        lines = [line.strip() for line in lines if line.strip()]
        return lines[-1][:200] if lines else ""

    def _close(self) -> None:
        if not self._messages.closed:
            self._messages.close()


def _read(pipe, frames: queue.SimpleQueue) -> None:
    """The reader thread: every chunk of ffmpeg's stdout into `frames`, then None."""
    try:
        with pipe:
            while chunk := os.read(pipe.fileno(), _READ_BYTES):
                frames.put(chunk)
    except OSError:
        pass
    finally:
        frames.put(None)
