"""MP3 files by LAME (through `lameenc`, whose wheels bundle LAME 3.100), with the LAME info tag.

Entry point: `Writer(file, quality, sample_rate=44100)`: `write(int16 (n, 2) block)` as the
blocks come, `close()` at the end. The same settings as LAME's `-V (10 - q) * 0.99` with its
default algorithm quality (-q 3): variable bit rate, joint stereo.

`lameenc` returns the MPEG frames only. What LAME itself writes first (the frame that makes
playback gapless and seeking fast: a Xing header with the frame and byte counts and a seek table,
and the LAME extension with the encoder delay and padding) is written here, as LAME 3.100 writes
it (the fields LAME derives from its settings taken from LAME's own files at each quality), into
room kept at the file's start. The music CRC is 0 (LAME's own is a CRC-16 of every frame, which
no player checks); the tag's CRC is computed.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import numpy as np

ENCODER_DELAY = 576  # samples LAME 3.100 puts before the first input sample (44.1 kHz)
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


class Writer:
    """An MP3 stream written to `file` (open for writing and seeking, at its start)."""

    def __init__(self, file: BinaryIO, quality: float, sample_rate: int = 44100):
        import lameenc

        if sample_rate not in _RATES:
            raise ValueError(f"MP3 at {sample_rate} Hz is not written here")
        self._file = file
        self._quality = float(quality)
        self._rate = sample_rate
        self._encoder = lameenc.Encoder()
        self._encoder.set_channels(2)
        self._encoder.set_in_sample_rate(sample_rate)
        self._encoder.set_out_sample_rate(sample_rate)
        self._encoder.set_vbr(4)  # vbr_mtrh, LAME's default VBR method
        self._encoder.set_vbr_quality((10.0 - self._quality) * 0.99)
        self._encoder.set_quality(3)  # LAME's default algorithm quality
        self._tag_size = 144000 * _BITRATES[_TAG_BITRATE_INDEX] // sample_rate
        self._samples = 0
        self._frames: list[int] = []  # each audio frame's offset after the tag frame
        self._pending = bytearray()  # bytes not yet split into frames
        self._offset = 0  # bytes of audio written
        self._first_header = b""
        file.write(bytes(self._tag_size))  # room for the tag

    def write(self, block: np.ndarray) -> None:
        """Encode an int16 (n, 2) block."""
        self._samples += len(block)
        self._put(self._encoder.encode(np.ascontiguousarray(block, dtype="<i2").tobytes()))

    def close(self) -> None:
        """Flush the encoder and write the tag frame at the start."""
        self._put(self._encoder.flush())
        if self._pending:
            raise ValueError("LAME left a partial frame")
        end = self._file.tell()
        self._file.seek(0)
        self._file.write(self._tag())
        self._file.seek(end)

    # ---- internals -----------------------------------------------------------------------------

    def _put(self, data: bytes) -> None:
        if not data:
            return
        self._file.write(data)
        self._pending += data
        at = 0
        while len(self._pending) - at >= 4:
            head = self._pending[at : at + 4]
            if head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
                raise ValueError("LAME wrote something that is not an MPEG frame")
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
