"""The live player through the real pygame mixer (SDL's disk driver writes what it plays, in real
time): played samples equal the export, pause loses nothing, a skip lands on the chapter's first
sample, keys move the sample clock, the pacer circle follows the breath, and the command exits
cleanly (no device, q, Ctrl-C)."""

from __future__ import annotations

import dataclasses
import os
import pty
import signal
import subprocess
import sys
import time

import numpy as np
import pygame
import pytest
import soundfile

from audio_engine import export, pipeline, render
from audio_engine.player import Controller, keys, pacer
from audio_engine.player.stream import CHUNK_SAMPLES, CROSSFADE_SAMPLES, Stream, _fade_in
from tests._disk_player import play_to_end, until_difference, without_dropouts

RATE = 44100

SHORT = """\
format: 1
title: Player test
language: en
voice: {rate: 200}
background:
  - drone: {frequency: 110, volume: 0.05, fade_in: 0.5, fade_out: 0.5}
steps:
  - section: One
  - say: Breathe in.
    duration: 1.5s
  - section: Two
  - breathe: {inhale: 1, hold: 1, exhale: 1, rest: 1, cues: {inhale: "", hold: "", exhale: "", rest: ""}}
  - section: Three
  - say: Good.
"""


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    """The short session prepared (real speech), its gain and its 16-bit export."""
    folder = tmp_path_factory.mktemp("player")
    path = folder / "short.yaml"
    path.write_text(SHORT)
    prepared = pipeline.prepare(pipeline.load(str(path)))
    gain = pipeline.gain(prepared)
    wav = export.export(prepared, folder / "short.wav", gain=gain)
    exported, rate = soundfile.read(wav, dtype="int16")
    assert rate == RATE
    return path, prepared, gain, exported


def _play(prepared, gain, raw, during=None, start_sample=0, timeout_s=30.0):
    """Play through the disk driver into `raw`; `during(stream, controller)` runs meanwhile.
    Returns the frames the device wrote and the stream's dropouts (`tests._disk_player`)."""
    dropouts = []
    played = play_to_end(
        raw,
        prepared.timeline,
        prepared.sources,
        gain,
        during,
        start_sample=start_sample,
        timeout_s=timeout_s,
        dropouts=dropouts,
    )
    return played, dropouts


def _wait_until(stream, sample, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while stream.position_sample() < sample:
        assert time.monotonic() < deadline, "playback did not get there"
        time.sleep(0.005)


def _find(haystack, needle, start=0):
    """First index >= start where `needle` occurs in `haystack` exactly, else -1."""
    first = needle[0]
    candidates = np.flatnonzero((haystack[start:] == first).all(axis=1)) + start
    for i in candidates:
        if np.array_equal(haystack[i : i + len(needle)], needle):
            return int(i)
    return -1


def _lead(played, exported):
    """The driver's leading silence: where the export's first sound occurs in the played file."""
    first = int(np.flatnonzero(exported.any(axis=1))[0])
    at = _find(played, exported[first : first + 4096])
    assert at >= 0, "the export's opening is not in the played stream"
    assert not played[: at - first].any(), "only silence may come before the session"
    return at - first


def test_played_samples_equal_the_export(short, tmp_path):
    _, prepared, gain, exported = short
    played, dropouts = _play(prepared, gain, tmp_path / "play.raw")
    lead = _lead(played, exported)
    played = without_dropouts(played, lead, exported, 0, dropouts)
    body = played[lead : lead + len(exported)]
    assert len(body) == len(exported)
    assert np.array_equal(body, exported)
    assert not played[lead + len(exported) :].any(), "nothing but silence after the end"


def test_pause_and_resume_lose_and_repeat_nothing(short, tmp_path):
    _, prepared, gain, exported = short

    def pause_a_while(stream, controller):
        _wait_until(stream, int(0.8 * RATE))
        controller.handle(keys.PAUSE)
        assert stream.paused
        held = stream.position_sample()
        time.sleep(0.5)
        assert stream.position_sample() == held, "the clock stands still while paused"
        controller.handle(keys.PAUSE)
        assert not stream.paused

    played, dropouts = _play(prepared, gain, tmp_path / "pause.raw", pause_a_while)
    lead = _lead(played, exported)
    played, paused_at, later = until_difference(played, lead, exported, 0, dropouts)
    assert 0.5 * RATE < paused_at < 3 * RATE
    resumed = _find(played, exported[paused_at : paused_at + 4096], lead + paused_at)
    gap = resumed - (lead + paused_at)
    assert gap > 0.3 * RATE, "the pause should be audible as silence"
    assert not played[lead + paused_at : resumed].any(), "the pause is silent"
    rest = exported[paused_at:]
    played = without_dropouts(played, resumed, rest, paused_at, later)
    assert np.array_equal(played[resumed : resumed + len(rest)], rest)


def test_next_key_continues_at_the_chapters_first_sample(short, tmp_path):
    _, prepared, gain, exported = short
    timeline = prepared.timeline
    two = timeline.chapters[1].start_sample

    def press_right(stream, controller):
        _wait_until(stream, int(0.3 * RATE))
        event = pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RIGHT, unicode="", mod=0)
        command = keys.from_pygame(event)
        assert command == keys.NEXT
        controller.handle(command)
        assert stream.target_sample() == two
        _wait_until(stream, two)
        assert timeline.chapter_at(stream.clock_sample()) == 1

    played, dropouts = _play(prepared, gain, tmp_path / "skip.raw", press_right)
    lead = _lead(played, exported)
    played, differs, later = until_difference(played, lead, exported, 0, dropouts)
    switch = differs // CHUNK_SAMPLES * CHUNK_SAMPLES
    assert differs - switch < CROSSFADE_SAMPLES, "the skip sounds at a chunk boundary"
    assert switch <= 2 * CHUNK_SAMPLES
    # From the switch on, session sample `two` (dropouts after the skip are in its samples).
    played = without_dropouts(played, lead + switch, exported[two:], two, later)
    after = played[lead + switch : lead + switch + len(exported) - two]
    # Past the crossfade: exactly the export from the chapter's first sample.
    assert np.array_equal(after[CROSSFADE_SAMPLES:], exported[two + CROSSFADE_SAMPLES :])
    # The crossfade: the new position fading in over the old stream's continuation.
    new = next(render.blocks(timeline, prepared.sources, two, CROSSFADE_SAMPLES, gain))
    old = next(render.blocks(timeline, prepared.sources, switch, CROSSFADE_SAMPLES, gain))
    up = _fade_in(CROSSFADE_SAMPLES)[:, None]
    expected = render.to_int16(new * up + old * up[::-1])
    assert np.abs(after[:CROSSFADE_SAMPLES].astype(int) - expected).max() <= 1


def test_mute_rerenders_without_background_from_the_next_chunk(short, tmp_path):
    _, prepared, gain, exported = short
    timeline = prepared.timeline

    def mute(stream, controller):
        _wait_until(stream, int(0.2 * RATE))
        controller.handle(keys.MUTE)
        assert controller.muted and stream.mix.background_gain == 0

    played, dropouts = _play(prepared, gain, tmp_path / "mute.raw", mute)
    lead = _lead(played, exported)
    played, differs, later = until_difference(played, lead, exported, 0, dropouts)
    switch = differs // CHUNK_SAMPLES * CHUNK_SAMPLES
    assert differs - switch < CROSSFADE_SAMPLES, "the remix starts at a chunk boundary"
    muted = render.to_int16(
        np.concatenate(
            list(render.blocks(timeline, prepared.sources, switch, 1 << 16, gain, render.Mix(0.0)))
        )
    )
    played = without_dropouts(played, lead + switch, muted, switch, later)
    body = played[lead + switch : lead + len(exported)]
    assert np.array_equal(body[CROSSFADE_SAMPLES:], muted[CROSSFADE_SAMPLES:])
    # Where the voice is silent the muted stream is silence: the drone is gone.
    two = timeline.chapters[1].start_sample
    assert not body[two - switch + RATE // 2 : two - switch + RATE].any()


# ---- the controls' arithmetic on the sample clock (a channel that only records) -----------------


class _Channel:
    """Stands in for a mixer channel that never finishes a chunk (time stands still)."""

    def __init__(self):
        self.sound = self.queued = None
        self.volume = 1.0

    def play(self, sound):
        self.sound, self.queued = sound, None

    def queue(self, sound):
        self.queued = sound

    def get_queue(self):
        return self.queued

    def get_sound(self):
        return self.sound

    def get_busy(self):
        return self.sound is not None

    def pause(self):
        pass

    def unpause(self):
        pass

    def stop(self):
        self.sound = self.queued = None

    def set_volume(self, volume):
        self.volume = volume


def test_previous_restarts_the_section_or_goes_back_one(short):
    _, prepared, gain, _ = short
    timeline = prepared.timeline
    one, two, three = (c.start_sample for c in timeline.chapters)
    now = [0.0]
    stream = Stream(
        timeline, prepared.sources, gain, _Channel(), lambda a: object(), clock=lambda: now[0]
    )
    controller = Controller(stream)
    stream.pump()
    assert stream.clock_sample() == 0
    controller.handle(keys.NEXT)
    assert stream.target_sample() == two
    controller.handle(keys.NEXT)  # a second press goes on from the pending target
    assert stream.target_sample() == three
    controller.handle(keys.PREV)  # within 3 s of Three's start: back to Two
    assert stream.target_sample() == two
    # Playing 3.5 s into Two: previous restarts Two.
    stream.seek(two)
    stream.channel.sound = stream.channel.queued  # the mixer moved on to the queued chunk
    stream.channel.queued = None
    stream.pump()
    assert stream.clock_sample() == two
    now[0] += 0.1  # inside the chunk (the display interpolates there)
    assert stream.position_sample() == two + int(0.1 * RATE)
    stream.seek(two + int(3.5 * RATE))
    controller.handle(keys.PREV)
    assert stream.target_sample() == two
    controller.handle(keys.LOUDER)
    assert controller.volume == 1.0 and stream.channel.volume == 1.0
    for _ in range(3):
        controller.handle(keys.SOFTER)
    assert stream.channel.volume == pytest.approx(0.7)
    assert controller.handle(keys.QUIT) is False
    assert stream.finished


def test_terminal_bytes_become_commands():
    parser = keys.TerminalParser()
    assert parser.feed(b" np+-=m") == [
        "pause",
        "next",
        "prev",
        "louder",
        "softer",
        "louder",
        "mute",
    ]
    assert parser.feed(b"\x1b[C\x1b[D\x1b[A\x1bOB") == ["next", "prev", "louder", "softer"]
    assert parser.feed(b"\x1b[") == []  # an arrow split over two reads
    assert parser.feed(b"C") == ["next"]
    assert parser.feed(b"\x1b") == []  # Esc alone is only known when nothing follows
    assert parser.flush() == ["quit"]
    assert parser.feed(b"Q") == ["quit"]


def test_terminal_keys_use_cbreak_and_restore_the_terminal():
    import termios

    master, slave = pty.openpty()
    with os.fdopen(slave, "rb", buffering=0) as tty_in:
        before = termios.tcgetattr(slave)
        with keys.TerminalKeys(tty_in) as terminal:
            assert terminal.active
            assert not termios.tcgetattr(slave)[3] & termios.ICANON
            os.write(master, b"n\x1b[D ")
            assert terminal.read(1.0) == ["next", "prev", "pause"]
            os.write(master, b"\x1b")
            assert terminal.read(1.0) == ["quit"]
        assert termios.tcgetattr(slave) == before
    os.close(master)


# ---- the pacer frame ---------------------------------------------------------------------------


def _circle_radius(path):
    image = pygame.image.load(str(path))
    pixels = pygame.surfarray.array3d(image).astype(int)  # (w, h, 3)
    match = np.abs(pixels - np.array(pacer.BREATH)).sum(axis=2) <= 12
    xs = np.flatnonzero(match.any(axis=1))
    return (xs[-1] - xs[0] + 1) / 2


def test_pacer_circle_follows_the_breath(short, tmp_path):
    _, prepared, _, _ = short
    timeline = prepared.timeline
    view = pacer.Pacer(timeline)
    phase = {e.kind: e for e in timeline.events if e.kind in ("inhale", "hold", "exhale", "rest")}
    pygame.font.init()
    surface = pygame.Surface((640, 480))

    def radius(kind, fraction):
        event = phase[kind]
        sample = event.start_sample + int(fraction * event.duration_samples)
        state = view.state_at(sample)
        assert state.phase == kind and state.section == "Two"
        pacer.draw(surface, state)
        path = tmp_path / f"{kind}-{fraction}.png"
        pygame.image.save(surface, str(path))
        return _circle_radius(path)

    geo = pacer.layout((640, 480))
    inhale = [radius("inhale", f) for f in (0.1, 0.5, 0.9)]
    hold = [radius("hold", f) for f in (0.1, 0.5, 0.9)]
    exhale = [radius("exhale", f) for f in (0.1, 0.5, 0.9)]
    rest = [radius("rest", f) for f in (0.1, 0.9)]
    assert inhale[0] < inhale[1] < inhale[2], inhale
    assert hold[0] == hold[1] == hold[2] and abs(hold[0] - geo.radius_max_px) <= 1.5
    assert exhale[0] > exhale[1] > exhale[2], exhale
    assert rest[0] == rest[1] and abs(rest[0] - geo.radius_min_px) <= 1.5
    assert rest[0] < min(inhale + exhale)
    # Halfway through the inhale the circle is halfway (the ease is symmetric).
    assert abs(inhale[1] - (geo.radius_min_px + geo.radius_max_px) / 2) <= 1.5


def test_state_shows_section_caption_and_times(short):
    _, prepared, _, _ = short
    timeline = prepared.timeline
    view = pacer.Pacer(timeline)
    speech = timeline.transcript()[0]
    state = view.state_at(speech.start_sample + 100)
    assert (state.section, state.caption, state.phase) == ("One", "Breathe in.", None)
    assert state.elapsed_s == pytest.approx((speech.start_sample + 100) / RATE)
    assert state.remaining_s == pytest.approx(timeline.duration_s - state.elapsed_s)
    line = pacer.status_line(state, 60)
    assert len(line) == 59 and line.startswith("One · Breathe in.") and "[" in line


# ---- the command -------------------------------------------------------------------------------


def _cli(args, **env):
    full = dict(os.environ, **env)
    full.pop("RELAX_FALLBACK_EXPORT", None)
    return [sys.executable, "-m", "audio_engine", "play", *args], full


def test_no_audio_device_is_one_line_and_exit_1(short, tmp_path):
    path = short[0]
    cmd, env = _cli([str(path), "--no-window"], SDL_AUDIODRIVER="no-such-device")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no audio output device" in lines[0], done.stderr
    assert "relax export" in lines[0]


def _start(path, raw, settings, stdin=None):
    cmd, env = _cli(
        [str(path), "--no-window"], SDL_DISKAUDIOFILE=str(raw), RELAX_SETTINGS_DIR=str(settings)
    )
    return subprocess.Popen(
        cmd, env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_sound(raw, proc, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if raw.exists() and np.fromfile(raw, dtype="<i2").any():
            return
        time.sleep(0.02)
    raise AssertionError("no sound reached the device")


def test_q_quits_at_once_with_exit_0_and_the_pointer_shows_once(short, tmp_path):
    path, prepared, _, _ = short
    settings = tmp_path / "settings"
    master, slave = pty.openpty()
    raw = tmp_path / "q.raw"
    proc = _start(path, raw, settings, stdin=slave)
    os.close(slave)
    try:
        _wait_for_sound(raw, proc)
        os.write(master, b"q")
        out, err = proc.communicate(timeout=20)
    finally:
        os.close(master)
    assert proc.returncode == 0, err
    assert "relax safety" in err and "Traceback" not in err
    written = np.fromfile(raw, dtype="<i2").reshape(-1, 2)
    sounding = np.flatnonzero(written.any(axis=1))
    assert sounding[-1] - sounding[0] < prepared.timeline.total_samples * 0.8, "stopped early"

    raw2 = tmp_path / "int.raw"
    proc = _start(path, raw2, settings)
    _wait_for_sound(raw2, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert "relax safety" not in err, "the pointer shows on the first run only"
    assert err.strip().splitlines()[-1] == "relax: interrupted"


def test_a_key_pressed_before_the_keys_are_read_is_not_lost(short, tmp_path):
    # `q` typed while the session is still starting (before the terminal is switched to
    # reading single keys, which happens after the sound starts): it still quits, early.
    path, prepared, _, _ = short
    master, slave = pty.openpty()
    os.write(master, b"q")
    raw = tmp_path / "ahead.raw"
    proc = _start(path, raw, tmp_path / "settings", stdin=slave)
    os.close(slave)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    assert proc.returncode == 0, err
    written = np.fromfile(raw, dtype="<i2").reshape(-1, 2) if raw.exists() else np.zeros((0, 2))
    assert len(written) < prepared.timeline.total_samples * 0.5, "quit at once"


def test_from_picks_a_section_by_number_title_or_prefix(short):
    from audio_engine.cli.play import chapter_start
    from audio_engine.errors import UsageError

    timeline = short[1].timeline
    two = timeline.chapters[1].start_sample
    assert chapter_start(timeline, None) == 0
    assert chapter_start(timeline, "2") == two
    assert chapter_start(timeline, "two") == two
    assert chapter_start(timeline, "TH") == timeline.chapters[2].start_sample
    with pytest.raises(UsageError, match="1. One, 2. Two, 3. Three"):
        chapter_start(timeline, "four")
    with pytest.raises(UsageError):
        chapter_start(timeline, "9")
    for odd in ("", "   ", "\u00b2"):  # empty, blank, a superscript two (isdigit, not a number)
        with pytest.raises(UsageError, match="section"):
            chapter_start(timeline, odd)


@pytest.mark.parametrize("width", [100, 60, 40, 30, 20, 12, 5, 1])
def test_status_line_fits_the_terminal(short, width):
    timeline = short[1].timeline
    state = dataclasses.replace(
        pacer.Pacer(timeline).state_at(timeline.transcript()[0].start_sample + 10),
        paused=True,
        muted=True,
        volume=0.5,
    )
    line = pacer.status_line(state, width)
    assert len(line) <= max(0, width - 1)
    assert "muted" not in line  # only the background is off: the line says so
    if width >= 60:
        assert line.startswith("One") and "0:00 / 0:" in line
        assert "paused background off vol 50%" in line
    elif width >= 40:
        assert "0:00" in line and "paused bg off 50%" in line
    if width >= 80:
        assert "[" in line


def test_window_falls_back_to_the_terminal_when_the_display_cannot_be_reached():
    # SDL quietly draws into memory when DISPLAY names no reachable X server: nobody would see it.
    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "WAYLAND_DISPLAY")}
    env.update(DISPLAY=":99", XDG_RUNTIME_DIR="")
    code = (
        "import sys, types\n"
        "from audio_engine.player import app\n"
        "pygame = app._pygame()\n"
        "timeline = types.SimpleNamespace(session=types.SimpleNamespace(title='t'))\n"
        "print(app._open_window(pygame, timeline, sys.stdout))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "relax: no window (the display cannot be reached); showing the session in the terminal",
        "None",
    ]


def test_play_from_a_section_plays_the_export_from_there(short, tmp_path):
    _, prepared, gain, exported = short
    three = prepared.timeline.chapters[2].start_sample
    played, dropouts = _play(prepared, gain, tmp_path / "from.raw", start_sample=three)
    rest = exported[three:]
    # Past the fade-in: exactly the export from the chapter's first sample.
    after = rest[CROSSFADE_SAMPLES:]
    at = _find(played, after[:4096]) - CROSSFADE_SAMPLES
    assert at >= 0
    played = without_dropouts(played, at, rest, three, dropouts)
    assert np.array_equal(played[at + CROSSFADE_SAMPLES : at + len(rest)], after)
    # The fade-in: the chapter's start rising from silence (no step from 0 to full level).
    up = _fade_in(CROSSFADE_SAMPLES)[:, None]
    head = played[at : at + CROSSFADE_SAMPLES].astype(np.float64)
    assert np.abs(head - rest[:CROSSFADE_SAMPLES] * up).max() <= 1.0
    assert not played[:at].any()


def test_the_play_command_sounds_exactly_what_the_export_command_writes(short, tmp_path):
    path, _, _, _ = short
    raw = tmp_path / "played.raw"
    env = {
        **os.environ,
        "SDL_AUDIODRIVER": "disk",
        "SDL_DISKAUDIOFILE": str(raw),
        "RELAX_SETTINGS_DIR": str(tmp_path / "settings"),
    }
    relax = [sys.executable, "-m", "audio_engine"]
    done = subprocess.run(
        [*relax, "play", str(path), "--no-window"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    wav = tmp_path / "exported.wav"
    subprocess.run([*relax, "export", str(path), "-o", str(wav)], env=env, check=True, timeout=120)
    exported, _ = soundfile.read(wav, dtype="int16")
    played = np.fromfile(raw, dtype="<i2").reshape(-1, 2)
    lead = _lead(played, exported)
    # Only the driver's own buffer comes first: the device opens when the session is ready.
    assert 0 <= lead <= 2 * 1024
    # The command's stream is out of reach: a dropout may have come at any chunk's start.
    boundaries = range(CHUNK_SAMPLES, len(exported), CHUNK_SAMPLES)
    played = without_dropouts(played, lead, exported, 0, boundaries)
    assert np.array_equal(played[lead : lead + len(exported)], exported)
    assert not played[lead + len(exported) :].any()


@pytest.mark.parametrize("size", [(720, 720), (640, 480), (400, 600), (1280, 400), (300, 300)])
def test_key_hints_never_overlap_the_times(short, size):
    _, prepared, _, _ = short
    view = pacer.Pacer(prepared.timeline)
    state = view.state_at(prepared.timeline.total_samples // 2)
    state = dataclasses.replace(state, elapsed_s=5999.0, total_s=11999.0)  # long clock texts
    pygame.font.init()
    surface = pygame.Surface(size)
    placed = pacer.draw(surface, state)
    boxes = {p.role: pygame.Rect(p.rect) for p in placed if p.role in ("elapsed", "remaining")}
    hints = [pygame.Rect(p.rect) for p in placed if p.role == "keys"]
    window = pygame.Rect((0, 0), size)
    for hint in hints:
        assert window.contains(hint), size
        assert not any(hint.colliderect(box) for box in boxes.values()), size
    if size[1] >= 400:
        assert hints, f"room for the key hints in {size}"
    # The pixels agree: the hint colour inside the hint boxes, elsewhere only at the soft edges
    # of other texts.
    pixels = pygame.surfarray.array3d(surface).astype(int)  # (w, h, 3)
    ink = np.abs(pixels - np.array(pacer.GUIDE_TEXT)).sum(axis=2) <= 6
    inside = np.zeros_like(ink)
    for hint in hints:
        inside[hint.left : hint.right, hint.top : hint.bottom] = True
    assert ink[inside].sum() >= 50 * len(hints)
    for p in placed:
        x, y, w, h = p.rect
        inside[x : x + w, y : y + h] = True
    assert not (ink & ~inside).any()
