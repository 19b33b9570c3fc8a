"""Export renders ahead in a thread of its own while the encoder works on the blocks before.

What is checked: the render really is asked for later blocks while the encoder still holds an
earlier one (no timing: an event the render sets, which a render in the encoder's thread could
never set in time); the blocks arrive in order, converted, each an array of its own; a render
error is raised where the encoder runs; an encoder that stops early stops the render too (its
generator closed, the thread gone); and the file's bytes are those of the same blocks encoded one
after the other.
"""

from __future__ import annotations

import io
import itertools
import threading

import numpy as np
import pytest

from audio_engine import export, mp3, pipeline, render, script
from audio_engine.errors import ExportError

SESSION = """\
format: 1
id: ahead
title: Render ahead
language: en
background:
  - noise: {color: pink, volume: 0.05}
steps:
  - say: Breathe in.
  - breathe: {inhale: 2, exhale: 2, cycles: 1}
  - chime: soft
"""


def _block(k: int) -> np.ndarray:
    return np.full((4, 2), k, dtype=np.float32)


def _render_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "relax render"]


def test_the_render_goes_on_while_the_encoder_holds_a_block():
    asked_for_third = threading.Event()
    makers: list[threading.Thread] = []

    def source():
        for k in range(6):
            makers.append(threading.current_thread())
            if k == 2:
                asked_for_third.set()
            yield _block(k)

    got = []
    with export._RenderAhead(source(), lambda b: b * 2) as ahead:
        for block in ahead:
            if not got:  # the encoder is still busy with block 0
                assert asked_for_third.wait(30), "the render waited for the encoder"
            got.append(block)
    assert [float(b[0, 0]) for b in got] == [0, 2, 4, 6, 8, 10]
    assert threading.main_thread() not in makers
    assert _render_threads() == []


def test_each_block_handed_over_is_its_own_though_the_render_reuses_its_array():
    reused = _block(0)

    def source():
        for k in range(6):
            reused[:] = k  # the next block written where the last one was
            yield reused

    with export._RenderAhead(source()) as ahead:
        got = list(ahead)
    assert [float(b[0, 0]) for b in got] == [0, 1, 2, 3, 4, 5]


def test_a_render_error_is_raised_where_the_encoder_runs():
    def source():
        yield _block(0)
        raise ExportError("the render broke")

    got = []
    with (
        pytest.raises(ExportError, match="the render broke"),
        export._RenderAhead(source()) as ahead,
    ):
        got.extend(ahead)
    assert len(got) == 1
    assert _render_threads() == []


def test_an_encoder_that_stops_stops_the_render():
    made = []
    closed = threading.Event()

    def source():
        try:
            for k in itertools.count():
                made.append(k)
                yield _block(k)
        finally:
            closed.set()

    with (
        pytest.raises(OSError, match="disk full"),
        export._RenderAhead(source(), depth=2) as ahead,
    ):
        next(iter(ahead))
        raise OSError("disk full")
    assert closed.is_set()  # the generator was closed, in the render's thread
    assert _render_threads() == []
    assert len(made) <= 5  # the one taken, two queued, one waiting to be queued, one more


def test_mp3_frames_are_the_blocks_encoded_in_order(tmp_path):
    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "ahead.en.yaml").write_text(SESSION, encoding="utf-8")
    prepared = pipeline.prepare(script.load(folder / "ahead.en.yaml"))
    gain = pipeline.gain(prepared, lossy_quality=export.DEFAULT_QUALITY)
    path = export.export(prepared, tmp_path / "a.mp3", gain=gain, transcript=False)
    from mutagen.id3 import ID3

    data = path.read_bytes()[ID3(path).size :]
    expected = io.BytesIO()
    writer = mp3.Writer(expected, export.DEFAULT_QUALITY)
    for block in render.blocks(
        prepared.timeline,
        prepared.sources,
        block_samples=export.EXPORT_BLOCK_SAMPLES,
        gain=gain,
        ceiling_dbtp=render.lossy_ceiling(export.DEFAULT_QUALITY),
    ):
        writer.write(render.to_int16(block))
    writer.close()
    assert data == expected.getvalue()


class _Ended(Exception):
    pass


def test_a_signal_another_thread_receives_ends_the_wait_for_a_block():
    # The kernel hands a process's SIGTERM to any of its threads; Python runs the handler in the
    # main thread only when that thread runs again. A render that gives nothing for a while (a
    # stalled disk, a long piece) must not keep the encoder's wait from ending: the signal is
    # sent to the render thread itself here, and the wait ends in its next turn.
    import signal

    release = threading.Event()
    started = threading.Event()
    gave_up = []

    def stalled():
        started.set()
        if not release.wait(10):
            gave_up.append(True)  # the handler never ran while the render stalled
        yield _block(0)

    def end(signum, frame):
        release.set()
        raise _Ended

    old = signal.signal(signal.SIGUSR1, end)
    try:
        ahead = export._RenderAhead(stalled())
        with ahead, pytest.raises(_Ended):
            started.wait(10)
            signal.pthread_kill(ahead._thread.ident, signal.SIGUSR1)
            next(iter(ahead))
    finally:
        release.set()
        signal.signal(signal.SIGUSR1, old)
    assert not ahead._thread.is_alive()
    assert not gave_up, "the signal was acted on only once the render gave a block"
