"""MP3 frames by LAME in the imageio-ffmpeg wheel's ffmpeg, by lameenc where there is none: which
frames each gives, and what an ffmpeg that is missing, fails, dies or stalls comes to."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from audio_engine import mp3
from tests import _ffmpeg

RATE = 44100


def _pcm(seconds: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(3)
    return (rng.standard_normal((int(seconds * RATE), 2)) * 3000).astype("<i2")


def _written(pcm: np.ndarray, pieces: int = 3) -> tuple[bytes, str]:
    out = io.BytesIO()
    writer = mp3.Writer(out, 5.0)
    for part in np.array_split(pcm, pieces):
        writer.write(part)
    writer.close()
    return out.getvalue(), writer.encoder


def _script(path, text: str) -> str:
    path.write_text(f"#!/bin/sh\n{text}\n", encoding="utf-8")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def fresh_lookup():
    mp3._ffmpeg_with_lame.cache_clear()
    yield
    mp3._ffmpeg_with_lame.cache_clear()


def test_the_frames_are_those_of_ffmpeg_q_a_from_any_blocks_and_lameencs_without_it(monkeypatch):
    # The reference the bench measures against: `ffmpeg -c:a libmp3lame -q:a 4.95` (LAME's own
    # default algorithm quality), raw frames. The Writer's frames after its info frame are those.
    pcm = _pcm()
    command = [_ffmpeg.FFMPEG, "-v", "error", "-f", "s16le", "-ar", str(RATE), "-ac", "2"]
    command += ["-i", "-", "-c:a", "libmp3lame", "-q:a", "4.95", "-f", "mp3", "-write_xing", "0"]
    command += ["-id3v2_version", "0", "-write_id3v1", "0", "-"]
    reference = subprocess.run(command, input=pcm.tobytes(), capture_output=True, check=True)
    data, encoder = _written(pcm)
    assert encoder == "ffmpeg"
    assert data[417:] == reference.stdout
    assert _written(pcm, pieces=50)[0] == data  # the same bytes however the blocks come
    monkeypatch.setenv(mp3.ENCODER_ENV, "lameenc")
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_channels(2)
    encoder.set_in_sample_rate(RATE)
    encoder.set_out_sample_rate(RATE)
    encoder.set_vbr(4)
    encoder.set_vbr_quality(4.95)
    encoder.set_quality(3)
    encoder.silence()
    fallback, which = _written(pcm)
    assert which == "lameenc"
    assert fallback[417:] == bytes(encoder.encode(pcm.tobytes()) + encoder.flush())
    assert fallback[417:] != data[417:]  # two builds of LAME: the last bits of a frame differ
    assert fallback[:4] == data[:4] and len(fallback) == len(data)


def test_lameenc_where_there_is_no_ffmpeg_or_one_without_lame(monkeypatch, tmp_path, fresh_lookup):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "missing"))
    assert mp3.encoder_name() == "lameenc"
    mp3._ffmpeg_with_lame.cache_clear()
    no_lame = _script(tmp_path / "ffmpeg", "echo \"Codec 'libmp3lame' is not recognized\"")
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", no_lame)
    assert mp3.encoder_name() == "lameenc"
    data, encoder = _written(_pcm(0.5))
    assert encoder == "lameenc" and data[:3] == b"\xff\xfb\x90" and data[36:40] == b"Xing"


def test_an_ffmpeg_killed_midway_is_an_error_not_a_hang():
    writer = mp3.Writer(io.BytesIO(), 5.0)
    writer.write(_pcm(0.5))
    proc = writer._lame._proc
    proc.kill()
    proc.wait()
    started = time.monotonic()
    with pytest.raises(
        mp3.EncoderError, match=r"^the MP3 encoder \(ffmpeg\) was killed \(signal 9\)$"
    ):
        for _ in range(20):
            writer.write(_pcm(0.5))
        writer.close()
    assert time.monotonic() - started < 10


def test_an_ffmpeg_that_takes_no_samples_is_ended(monkeypatch, tmp_path):
    stalled = _script(tmp_path / "ffmpeg", "exec sleep 60")
    monkeypatch.setattr(mp3, "_ffmpeg_with_lame", lambda: stalled)
    monkeypatch.setattr(mp3, "STALL_S", 0.5)
    writer = mp3.Writer(io.BytesIO(), 5.0)
    proc = writer._lame._proc
    started = time.monotonic()
    with pytest.raises(mp3.EncoderError, match="stopped taking samples"):
        writer.write(_pcm(5))  # 0.9 MB: more than a pipe holds
    assert time.monotonic() - started < 10
    assert proc.returncode == -9  # killed and reaped


QUIET = """\
format: 1
title: Quiet
language: en
background:
  - noise: {color: pink, volume: 0.05}
steps:
  - pause: 30s
"""


def test_a_failing_ffmpeg_gives_one_line_and_no_file(tmp_path):
    # The wheel's ffmpeg answers the question for libmp3lame; encoding, it reads 100 kB and fails.
    failing = _script(
        tmp_path / "ffmpeg",
        f'case "$*" in *encoder=libmp3lame*) exec "{_ffmpeg.FFMPEG}" "$@";; esac\n'
        "head -c 100000 >/dev/null\necho 'Error while encoding: no room' >&2\nexit 1",
    )
    (tmp_path / "quiet.en.yaml").write_text(QUIET, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "audio_engine", "export", "quiet.en.yaml", "-o", "out/q.mp3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "IMAGEIO_FFMPEG_EXE": failing},
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        "relax: error: cannot write out/q.mp3: the MP3 encoder (ffmpeg) failed (exit status 1):"
        " Error while encoding: no room"
    ]
    assert list(out.iterdir()) == []


def test_a_writer_left_on_an_error_or_dropped_ends_its_ffmpeg_at_once():
    # The input stays open here (the test holds the process and its pipes): only the kill ends it.
    import gc

    with pytest.raises(KeyboardInterrupt), mp3.Writer(io.BytesIO(), 5.0) as writer:
        writer.write(_pcm(0.5))
        proc = writer._lame._proc
        raise KeyboardInterrupt
    assert proc.returncode == -9
    writer = mp3.Writer(io.BytesIO(), 5.0)
    writer.write(_pcm(0.5))
    proc = writer._lame._proc
    del writer
    gc.collect()
    assert proc.returncode == -9
