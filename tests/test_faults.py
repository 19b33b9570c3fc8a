"""Faults and hostile input, replayed with real files, real signals and a real full disk: links
planted in relax's folders, an open umask, non-finite samples, devices and FIFOs given as files,
huge numbers, damaged files, closed streams, a non-UTF-8 locale, SIGHUP and kill -9 during an
export, and a disk that fills up. Each gives its exit code and one clear line, never a traceback,
a hang, a byte outside relax's folders or a half-written file."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import signal
import stat
import struct
import subprocess
import sys
import termios
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import soundfile

import audio_engine.gain as gain_stage
from audio_engine import assets, fsio, history, render
from audio_engine.remind import lock, stats

ROOT = Path(__file__).resolve().parent.parent
RATE = 44100

# No speech: these sessions need no voice, so each command is quick.
QUIET = """\
format: 1
id: quiet
title: Quiet
language: en
background:
  - noise: {{color: white, volume: 0.5, fade_in: 0, fade_out: 0}}
steps:
  - chime: soft
  - pause: {seconds}
"""


def _relax(*args, env=None, timeout=120, **run) -> subprocess.CompletedProcess:
    full = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "audio_engine", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        **run,
    )


def _one_clear_line(done: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """The command's exit code is `code` and its stderr one line holding `words`."""
    err = done.stderr.strip()
    assert done.returncode == code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "checking timing with the voice" not in line]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], err
    return lines[0]


def _quiet(folder: Path, seconds: float = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "quiet.en.yaml"
    path.write_text(QUIET.format(seconds=seconds))
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _play(day: datetime | None = None) -> history.Play:
    started = day or datetime(2026, 3, 2, 9, 0, tzinfo=UTC).astimezone()
    return history.Play(started, started + timedelta(minutes=5), "s", "en", 300.0, True, 2)


@pytest.fixture
def folders(tmp_path_factory, monkeypatch):
    """Data, settings and cache folders of this test's own (in this process and its children)."""
    found = {}
    home = tmp_path_factory.mktemp("home")
    for name, var in (("data", "DATA"), ("settings", "SETTINGS"), ("cache", "CACHE")):
        found[name] = home / name
        monkeypatch.setenv(f"RELAX_{var}_DIR", str(found[name]))
    return found


# ---- links planted in relax's folders ----------------------------------------------------------


def test_a_lock_file_linked_elsewhere_is_refused_and_its_target_kept(tmp_path, folders):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    folders["data"].mkdir()
    (folders["data"] / lock.LOCK_NAME).symlink_to(victim)
    instance = lock.InstanceLock(folders["data"] / lock.LOCK_NAME)
    with pytest.raises(fsio.FsError, match="symbolic link"):
        instance.acquire()
    instance.release()
    assert victim.read_text() == "keep me\n"
    assert not lock.is_running(folders["data"] / lock.LOCK_NAME)
    done = _relax("remind", timeout=60)
    _one_clear_line(done, 1, "remind.lock", "symbolic link, which relax does not follow")
    assert victim.read_text() == "keep me\n"


@pytest.mark.parametrize(
    "name", ["history.sqlite3", "history.sqlite3-journal", "history.sqlite3-wal"]
)
def test_a_history_file_linked_elsewhere_is_not_written_and_the_play_says_why(
    tmp_path, folders, name
):
    victim = tmp_path / "empty-elsewhere"
    victim.write_bytes(b"")
    if name != "history.sqlite3":
        history.record(_play())  # the history exists; only SQLite's file beside it is a link
    folders["data"].mkdir(exist_ok=True)
    (folders["data"] / name).symlink_to(victim)
    said = []
    recording = history.Recording("s", "en", warn=said.append)

    class Timeline:
        sample_rate = RATE
        events = ()

    assert recording.finish(Timeline(), [(0, RATE * 90)], completed=False) is None
    assert len(said) == 1 and "not recorded" in said[0] and "symbolic link" in said[0], said
    assert name in said[0]
    assert victim.read_bytes() == b""
    assert (folders["data"] / name).is_symlink()


def test_a_dangling_history_off_link_is_off_and_nothing_is_made_outside(tmp_path, folders):
    outside = tmp_path / "outside" / "made-here"
    (tmp_path / "outside").mkdir()
    folders["settings"].mkdir()
    (folders["settings"] / history.RECORDING_OFF_MARKER).symlink_to(outside)
    assert history.recording_on() is False  # the name is taken: the safe reading is off
    done = _relax("history", "--off")
    assert done.returncode == 0, done.stderr
    assert not outside.exists()
    done = _relax("history", "--on")
    assert done.returncode == 0, done.stderr
    assert history.recording_on() is True
    assert not os.path.lexists(folders["settings"] / history.RECORDING_OFF_MARKER)


def test_an_english_export_writes_nothing_outside_relax_folders(tmp_path, folders):
    """The neural voice's onnxruntime keeps no device id or telemetry store in the home folder."""
    home = tmp_path / "home"
    home.mkdir()
    script = tmp_path / "s.en.yaml"
    script.write_text("format: 1\ntitle: T\nlanguage: en\nsteps:\n  - say: Hello there.\n")
    env = {"HOME": str(home)}
    env |= {f"XDG_{name}_HOME": str(home / name) for name in ("CACHE", "CONFIG", "DATA", "STATE")}
    done = _relax("export", str(script), "-o", str(tmp_path / "out.wav"), env=env)
    assert done.returncode == 0, done.stderr
    assert soundfile.info(tmp_path / "out.wav").frames > RATE // 2
    assert [str(p.relative_to(home)) for p in home.rglob("*")] == []


# ---- an open umask -----------------------------------------------------------------------------


def test_folders_are_0700_and_files_0600_under_umask_000(tmp_path, folders):
    old = os.umask(0)
    try:
        history.record(_play())
        journal_modes = []
        with history._transaction(folders["data"] / history.FILE_NAME) as conn:
            conn.execute("CREATE TABLE scratch (x)")
            journal = folders["data"] / (history.FILE_NAME + "-journal")
            journal_modes.append(_mode(journal))
        history.set_recording(False)
        instance = lock.InstanceLock(folders["data"] / lock.LOCK_NAME)
        assert instance.acquire()
        instance.release()
        wav = tmp_path / "rain.wav"
        soundfile.write(wav, np.zeros((800, 1), np.float32), 8000)
        assets.load_sound.cache_clear()
        data = assets.load_sound(wav)
        assert isinstance(data, np.memmap)
    finally:
        os.umask(old)
    for folder in (
        folders["data"],
        folders["settings"],
        folders["cache"],
        folders["cache"] / "sounds",
    ):
        assert _mode(folder) == 0o700, folder
    assert _mode(folders["data"] / history.FILE_NAME) == 0o600
    assert journal_modes == [0o600]
    assert _mode(folders["data"] / lock.LOCK_NAME) == 0o600
    assert _mode(folders["settings"] / history.RECORDING_OFF_MARKER) == 0o600
    (cached,) = (folders["cache"] / "sounds").iterdir()
    assert _mode(cached) == 0o600


def test_an_export_and_a_setting_under_umask_000_make_only_private_files(tmp_path, folders):
    rng = np.random.default_rng(3)
    soundfile.write(tmp_path / "rain.wav", 0.1 * rng.standard_normal((22050, 2)), 22050)
    script = tmp_path / "private.en.yaml"
    script.write_text(
        "format: 1\nid: private\ntitle: T\nlanguage: en\nbackground:\n"
        "  - sound: {file: rain.wav, volume: 0.3}\n  - noise: {color: pink, volume: 0.1}\n"
        "steps:\n  - chime: soft\n  - pause: 2\n"
    )
    # As where the environment's setup has made no noise loops: the export makes and keeps one.
    relax = (
        "import sys; from audio_engine import pipeline; from audio_engine.__main__ import run; "
        f"pipeline.BUILT_FOLDER = pipeline.Path({str(tmp_path / 'none built')!r}); "
        "sys.argv[0] = 'relax'; run()"
    )
    for args in (["export", str(script), "-o", str(tmp_path / "out.wav")], ["history", "--off"]):
        done = subprocess.run(
            [sys.executable, "-c", relax, *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            preexec_fn=lambda: os.umask(0),
        )
        assert done.returncode == 0, done.stderr
    made = [p for name in ("cache", "settings") for p in [folders[name], *folders[name].rglob("*")]]
    # (The speech engines' own cache files are checked with the speech engines.)
    made = [p for p in made if not p.name.startswith(("neural-", "espeak-", "speech"))]
    assert {p.name for p in made} >= {"gain", "noise", "chime", "sounds", "history-off"}
    for path in made:
        assert _mode(path) == (0o700 if path.is_dir() else 0o600), path
    assert _mode(tmp_path / "out.wav") == 0o666  # the person's own file: the umask's choice


def test_a_data_folder_that_is_a_regular_file_is_named(tmp_path, folders, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("RELAX_DATA_DIR", str(blocker))
    with pytest.raises(history.HistoryError, match="is a file, not a folder") as caught:
        history.record(_play())
    assert "File exists" not in str(caught.value)
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_history_file_that_is_a_fifo_or_a_folder_is_said_without_waiting(folders, kind):
    folders["data"].mkdir()
    target = folders["data"] / history.FILE_NAME
    os.mkfifo(target) if kind == "fifo" else target.mkdir()
    done = _relax("history", timeout=30)
    said = "a pipe (FIFO), not a regular file" if kind == "fifo" else "it is a folder"
    _one_clear_line(done, 1, "history.sqlite3", said)
    with pytest.raises(history.HistoryError, match=re.escape(said)):
        history.record(_play())


# ---- non-finite samples ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 3e38])
def test_a_float_wav_with_non_finite_samples_is_an_error_at_its_file_value(tmp_path, folders, bad):
    # (3e38 is finite, but mixed it overflows to infinity and the mix to NaN: silence, exit 0.)
    samples = np.full((RATE, 2), 0.1, np.float32)
    samples[RATE // 2, 1] = bad
    soundfile.write(tmp_path / "bad.wav", samples, RATE, subtype="FLOAT")
    script = tmp_path / "layer.en.yaml"
    script.write_text(
        "format: 1\ntitle: T\nlanguage: en\nbackground:\n"
        "  - sound: {file: bad.wav, volume: 0.5}\nsteps:\n  - pause: 1\n"
    )
    for command in (["validate", str(script)], ["export", str(script), "-o", str(tmp_path)]):
        done = _relax(*command)
        said = "NaN or infinite" if not np.isfinite(bad) else "far outside -1 to 1"
        line = _one_clear_line(done, 1, "layer.en.yaml:5:19:", said, "0.500 s")
        assert "background[0].sound.file" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.wav", "layer.en.yaml"]


def test_the_16_and_24_bit_writers_never_cast_a_non_finite_value():
    block = np.array([[np.nan, np.inf], [-np.inf, 0.5]], np.float32)
    assert render.to_int16(block).tolist() == [[0, 32767], [-32767, 16384]]
    from audio_engine import export

    assert (export._to_int24(block) >> 8).tolist() == [[0, 8388607], [-8388607, 4194304]]


# ---- devices and FIFOs given as files ----------------------------------------------------------


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("command", ["validate", "info", "play", "export"])
@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom", "fifo"])
def test_devices_and_fifos_are_refused_without_reading_them(command, target, fifo, tmp_path):
    path = str(fifo) if target == "fifo" else target
    extra = ["-o", str(tmp_path / "out.wav")] if command == "export" else []
    extra += ["--no-window"] if command == "play" else []
    done = _relax(command, path, *extra, timeout=30)
    kind = "a pipe (FIFO)" if target == "fifo" else "a device"
    _one_clear_line(done, 1, f"{kind}, not a regular file")
    assert not (tmp_path / "out.wav").exists()


def test_an_export_never_renames_over_a_fifo(tmp_path):
    script = _quiet(tmp_path / "s")
    os.mkfifo(tmp_path / "out.wav")
    done = _relax("export", str(script), "-o", str(tmp_path / "out.wav"), timeout=60)
    _one_clear_line(done, 1, "out.wav: it is a pipe (FIFO), not a regular file")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "out.wav").st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav", "s"]


def test_a_sound_layer_that_is_a_fifo_is_said_as_one(tmp_path):
    os.mkfifo(tmp_path / "rain.wav")
    script = tmp_path / "s.en.yaml"
    script.write_text(
        "format: 1\ntitle: T\nlanguage: en\nbackground:\n"
        "  - sound: {file: rain.wav, volume: 0.5}\nsteps:\n  - pause: 1\n"
    )
    done = _relax("validate", str(script), timeout=30)
    _one_clear_line(done, 1, "s.en.yaml:5:19:", '"rain.wav" is a pipe (FIFO), not a regular file')


@pytest.mark.parametrize("planted", ["fifo", "not-utf-8"])
def test_a_day_ends_setting_that_is_a_fifo_or_not_text_is_the_default(folders, planted):
    history.record(_play())
    folders["settings"].mkdir()
    setting = folders["settings"] / history.DAY_ENDS_FILE
    if planted == "fifo":
        os.mkfifo(setting)
    else:
        setting.write_bytes(b"\xff\xfe7")
    done = _relax("history", "--json", timeout=30)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert '"day_ends_h": 4' in done.stdout


def test_the_windows_settings_that_are_fifos_are_not_waited_on(folders):
    from audio_engine.app import model as app_model
    from audio_engine.app import reminders

    folders["settings"].mkdir()
    os.mkfifo(folders["settings"] / app_model.PREFS_FILE)
    folders["data"].mkdir()
    os.mkfifo(folders["data"] / "remind-status.json")
    instance = lock.InstanceLock(folders["data"] / lock.LOCK_NAME)
    assert instance.acquire()
    found = []
    try:
        reader = lambda: found.extend([app_model.load_prefs(), reminders.status_text()])  # noqa: E731
        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        thread.join(10)
    finally:
        instance.release()
    assert found == [app_model.Prefs(), "Reminders are running now."]


def test_a_settings_file_over_1_mib_is_refused(folders):
    folders["settings"].mkdir()
    (folders["settings"] / "remind.yaml").write_bytes(b"# " + b"x" * (1 << 20) + b"\n")
    done = _relax("remind", "--status", timeout=30)
    _one_clear_line(done, 1, "remind.yaml:1:1:", "larger than the limit of 1,048,576 bytes")


# ---- sound files: memory does not grow with their length ---------------------------------------


def test_a_long_sound_layer_is_decoded_to_the_cache_in_bounded_memory(tmp_path, folders):
    # 10 minutes at 8 kHz mono: 9.6 MB of file, 212 MB once stereo float32 at 44.1 kHz.
    wav = tmp_path / "long.wav"
    minutes = 10
    with soundfile.SoundFile(wav, "w", samplerate=8000, channels=1, subtype="PCM_16") as f:
        tone = (0.3 * np.sin(np.arange(8000 * 60) * 2 * np.pi * 220 / 8000)).astype(np.float32)
        for _ in range(minutes):
            f.write(tone)
    probe = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "import numpy as np\n"
        "from audio_engine import assets\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "data = assets.load_sound(Path(sys.argv[1]))\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(type(data).__name__, data.shape[0], data.shape[1], (after - before) // 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(wav)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    kind, frames, channels, grown_mb = done.stdout.split()
    assert (kind, int(channels)) == ("memmap", 2)
    assert int(frames) == minutes * 60 * RATE
    decoded_mb = int(frames) * 8 / 2**20
    assert int(grown_mb) < decoded_mb / 4, (grown_mb, decoded_mb)


def test_the_gain_estimate_weighs_a_long_sound_file_in_blocks(tmp_path, folders):
    import tracemalloc

    from audio_engine import loudness, pipeline

    rng = np.random.default_rng(2)
    x = (0.3 * rng.standard_normal((200_003, 2))).astype(np.float32)
    whole = loudness.energy_profile(x * np.float32(0.37), RATE)
    assert np.array_equal(loudness.energy_profile_scaled(x, RATE, 0.37), whole)
    # Five minutes at 8 kHz: 106 MB once decoded; the estimate holds far less at any time.
    wav = tmp_path / "long.wav"
    tone = (0.3 * np.sin(np.arange(8000 * 300) * 2 * np.pi * 220 / 8000)).astype(np.float32)
    soundfile.write(wav, tone, 8000, subtype="PCM_16")
    script = tmp_path / "long.en.yaml"
    script.write_text(
        "format: 1\ntitle: T\nlanguage: en\nbackground:\n"
        "  - sound: {file: long.wav, volume: 0.5, loop: false}\nsteps:\n  - pause: 300\n"
    )
    assets.load_sound.cache_clear()
    prepared = pipeline.prepare(pipeline.load(str(script)))
    tracemalloc.start()
    try:
        gain = gain_stage.estimate_gain(prepared.timeline, prepared.sources)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 0 < gain < 100
    assert peak < 40 * 2**20, peak / 2**20


def test_a_damaged_sound_cache_entry_is_decoded_again_never_played(tmp_path, folders):
    wav = tmp_path / "rain.wav"
    rng = np.random.default_rng(7)
    soundfile.write(wav, (0.2 * rng.standard_normal((20000, 2))).astype(np.float32), 22050)
    assets.load_sound.cache_clear()
    clean = np.array(assets.load_sound(wav))
    (cached,) = (folders["cache"] / "sounds").iterdir()
    with open(cached, "r+b") as f:  # one flipped byte in the samples, the size unchanged
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0x40]))
    assets.load_sound.cache_clear()
    again = assets.load_sound(wav)
    assert np.array_equal(np.asarray(again), clean)
    with open(cached, "rb") as f:
        f.seek(1000)
        assert f.read(1) == byte  # written anew
    # A link planted there, to a valid entry of other samples: not followed, replaced.
    other = tmp_path / "other.wav"
    soundfile.write(other, np.full((20000, 2), 0.25, np.float32), 22050)
    assets.load_sound.cache_clear()
    assets.load_sound(other)
    (planted,) = [p for p in (folders["cache"] / "sounds").iterdir() if p != cached]
    cached.unlink()
    cached.symlink_to(planted)
    assets.load_sound.cache_clear()
    assert np.array_equal(np.asarray(assets.load_sound(wav)), clean)
    assert not cached.is_symlink()


# ---- huge numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("1.0e+308", "at most 4 h (the session limit), found 1.0e+308"),
        ("1e300", 'expected a duration (seconds, "4s", "1m30s", "500ms"), found "1e300"'),
        ("9" * 300 + "h", "at most 4 h (the session limit), found"),
        ("14400.001", "at most 4 h (the session limit), found 14400.001"),
    ],
)
def test_huge_durations_are_located_errors_with_readable_numbers(tmp_path, value, said):
    script = tmp_path / "huge.en.yaml"
    script.write_text(f"format: 1\ntitle: T\nlanguage: en\nsteps:\n  - pause: {value}\n")
    done = _relax("validate", str(script), timeout=30)
    line = _one_clear_line(done, 1, "huge.en.yaml:5:12: error: steps[0].pause:", said)
    assert not re.search(r"\d{20}", line.split("found")[0])


def test_a_session_just_over_4_hours_says_by_how_much(tmp_path):
    script = tmp_path / "long.en.yaml"
    script.write_text("format: 1\ntitle: T\nlanguage: en\nsteps:\n  - pause: 4h\n  - pause: 1ms\n")
    done = _relax("validate", str(script), timeout=30)
    assert done.returncode == 1
    assert "at least 4 h 0.001 s (before counting its speech); the limit is 4 hours" in done.stderr


@pytest.mark.parametrize(
    "steps",
    [
        "  - breathe: {pattern: 4-7-8, unit: 1000, cycles: 1000}\n",
        "  - repeat: 1000\n    steps:\n      - repeat: 1000\n        steps: [{pause: 4h}]\n",
    ],
    ids=["breathe", "repeats"],
)
def test_huge_sessions_are_said_at_the_script_in_readable_numbers(tmp_path, steps):
    script = tmp_path / "huge.en.yaml"
    script.write_text("format: 1\ntitle: T\nlanguage: en\nsteps:\n" + steps)
    done = _relax("validate", str(script), timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    for line in done.stderr.splitlines():
        assert line.startswith(str(script)), line  # never "<memory>:1:1"
        assert not re.search(r"\d{7}", line), line


@pytest.mark.parametrize(
    "steps",
    [
        "  - repeat: 1000\n    steps:\n      - repeat: 1000\n        steps:\n"
        "          - repeat: 1000\n            steps: [{pause: 1}]\n",
        "  - repeat: 1000\n    steps:\n      - repeat: 100\n        steps:\n          - breathe:"
        ' {inhale: 0.0001, exhale: 0.0001, cycles: 500, cues: {inhale: "", exhale: ""}}\n',
    ],
    ids=["pauses", "breaths"],
)
def test_a_billion_events_are_refused_at_once_not_timed(tmp_path, steps):
    """Never timed with the voice (not even the script's valid part): that took hours and all the
    memory there is."""
    script = tmp_path / "many.en.yaml"
    script.write_text("format: 1\ntitle: T\nlanguage: en\nsteps:\n" + steps)
    done = _relax("validate", str(script), timeout=60)
    _one_clear_line(done, 1, "many.en.yaml:5:3: error: steps: the session unrolls to", "100,000")


def _say_limited(tmp_path, text):
    """Export a session that says `text`, the command given 4 GB of address space."""
    import resource

    script = tmp_path / "long.en.yaml"
    script.write_text(f"format: 1\ntitle: T\nlanguage: en\nsteps:\n  - say: '{text}'\n")

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    return _relax("export", str(script), "-o", str(tmp_path / "o.wav"), preexec_fn=limited)


def test_a_long_line_the_voice_cannot_say_is_one_short_line(tmp_path):
    """The line is quoted by its start, and onnxruntime's own log stays quiet."""
    text = "漢" * 1999
    done = _say_limited(tmp_path, text)
    line = _one_clear_line(done, 1, f"could not synthesize {text[:57]!r}"[:-1] + "...'")
    assert len(line) < 400, line
    assert not (tmp_path / "o.wav").exists()


def test_a_line_of_long_numbers_is_said_within_bounded_memory(tmp_path):
    """64 numbers of 30 digits, read out in words, are one very long sentence: said whole it
    took more memory than the 4 GB given here; said in parts it fits."""
    done = _say_limited(tmp_path, " ".join(["9" * 30] * 64))
    assert done.returncode == 0, done.stderr
    audio, rate = soundfile.read(tmp_path / "o.wav")
    assert len(audio) / rate > 300  # every number said


# ---- damaged files, closed streams -------------------------------------------------------------


def test_remind_status_with_a_damaged_history_is_one_line(folders):
    folders["data"].mkdir()
    (folders["data"] / history.FILE_NAME).write_bytes(b"not a database" * 200)
    done = _relax("remind", "--status", timeout=30)
    _one_clear_line(done, 1, "history.sqlite3 is damaged", "move it away")
    with pytest.raises(stats.StatsError, match="damaged"):
        stats.read_day_counts(datetime.now().date())


def test_history_forget_with_stdin_closed_asks_for_yes_and_deletes_nothing(folders):
    history.record(_play())
    done = subprocess.run(
        ["bash", "-c", f"exec {sys.executable} -m audio_engine history --forget <&-"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    _one_clear_line(done, 2, "add --yes")
    assert history.count() == 1


# ---- a locale that is not UTF-8 ----------------------------------------------------------------

C_LOCALE = {"PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "LC_ALL": "C", "LANG": "C"}


@pytest.mark.parametrize("env", [C_LOCALE, {"PYTHONIOENCODING": "latin-1"}], ids=["C", "latin-1"])
def test_text_the_terminal_cannot_show_is_replaced(env, tmp_path):
    script = tmp_path / "snow.en.yaml"
    script.write_text("format: 1\ntitle: Knieën ☃\nlanguage: en\nsteps:\n  - pause: 1\n")
    encoding = "latin-1" if "PYTHONIOENCODING" in env else "ascii"
    done = _relax("info", str(script), env=env, timeout=300, encoding=encoding)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    title = done.stdout.splitlines()[0]
    assert title.startswith("Knie?n ?" if env is C_LOCALE else "Knieën ?"), title


def test_an_export_to_a_non_ascii_name_under_the_c_locale(tmp_path):
    script = _quiet(tmp_path)
    plain = _relax("export", str(script), "-o", str(tmp_path / "plain.wav"))
    assert plain.returncode == 0, plain.stderr
    done = _relax("export", str(script), "-o", str(tmp_path / "ascii ö.wav"), env=C_LOCALE)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ascii ö.wav").read_bytes() == (tmp_path / "plain.wav").read_bytes()
    assert not list(tmp_path.glob(".*"))


def test_a_sound_file_name_the_locale_cannot_spell_is_a_located_error(tmp_path):
    soundfile.write(tmp_path / "regen ö.wav", np.zeros((100, 2), np.float32), RATE)
    script = tmp_path / "named.en.yaml"
    script.write_text(
        'format: 1\ntitle: T\nlanguage: en\nbackground:\n  - sound: {file: "regen ö.wav", volume: 0.5}\n'
        "steps:\n  - pause: 1\n"
    )
    assert _relax("validate", "--no-voice", str(script)).returncode == 0
    done = _relax("validate", "--no-voice", str(script), env=C_LOCALE, encoding="ascii")
    _one_clear_line(done, 1, "named.en.yaml:5:19:", "file name encoding (ascii)", "UTF-8 locale")


def test_a_recordings_folder_the_locale_cannot_spell_is_a_located_error(tmp_path):
    # The same rule and the same one line as for a sound file: before, the recordings folder's
    # check let the encoding error out as a traceback.
    (tmp_path / "stem ö").mkdir()
    script = tmp_path / "named.en.yaml"
    script.write_text(
        "format: 1\ntitle: T\nlanguage: en\n"
        'voice: {engine: recorded, folder: "stem ö", fallback: espeak}\nsteps:\n  - pause: 1\n'
    )
    assert _relax("validate", "--no-voice", str(script)).returncode == 0
    done = _relax("validate", "--no-voice", str(script), env=C_LOCALE, encoding="ascii")
    _one_clear_line(done, 1, "named.en.yaml:4:", "file name encoding (ascii)", "UTF-8 locale")


# ---- signals during an export and a play -------------------------------------------------------


def _start_export(script: Path, target: Path, *options) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "audio_engine", "export", str(script), "-o", str(target), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _wait_for_part(folder: Path, proc: subprocess.Popen, at_least: int = 1 << 20) -> Path:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        parts = [p for p in folder.glob(".*.part") if p.stat().st_size >= at_least]
        if parts:
            return parts[0]
        time.sleep(0.01)
    raise AssertionError("the export wrote no .part file")


@pytest.fixture(scope="module")
def long_script(tmp_path_factory):
    """Ten minutes of white noise: long enough to be stopped halfway."""
    return _quiet(tmp_path_factory.mktemp("long"), seconds=600)


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_sighup_and_sigterm_end_an_export_cleanly(long_script, tmp_path, folders, signum):
    target = tmp_path / "out.flac"
    proc = _start_export(long_script, target)
    _wait_for_part(tmp_path, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_sighup_to_the_process_group_ends_a_batch_export_cleanly(tmp_path, folders):
    # Closing the terminal signals every process of the group: workers and multiprocessing's
    # resource tracker too.
    scripts = []
    for name in ("one", "two"):
        path = tmp_path / f"{name}.en.yaml"
        path.write_text(QUIET.format(seconds=600).replace("id: quiet", f"id: {name}"))
        scripts.append(str(path))
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "audio_engine", "export", "--all", *scripts, "--outdir", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=True,
    )
    _wait_for_part(out, proc)
    os.killpg(proc.pid, signal.SIGHUP)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 129, err
    assert "Traceback" not in err and "Error" not in err, err
    assert list(out.iterdir()) == []


def test_a_part_left_by_kill_9_is_removed_by_the_next_export_to_that_file(
    long_script, tmp_path, folders
):
    target = tmp_path / "out.wav"
    proc = _start_export(long_script, target)
    left = _wait_for_part(tmp_path, proc)
    proc.kill()
    proc.communicate(timeout=60)
    assert left.exists()  # nothing could clean up after SIGKILL
    # Another export's .part (held: its writer is alive) and another file's stay.
    busy = tmp_path / ".out.wav.0123abcd.part"
    busy.write_bytes(b"busy")
    other = tmp_path / ".other.wav.89abcdef.part"
    other.write_bytes(b"other")
    short = _quiet(tmp_path / "short", 1)
    clean = tmp_path / "short" / "clean.wav"
    assert _relax("export", str(short), "-o", str(clean)).returncode == 0
    with open(busy, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        done = _relax("export", str(short), "-o", str(target))
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([busy.name, other.name, "out.vtt", "out.wav", "short"])
    assert target.read_bytes() == clean.read_bytes()


@pytest.fixture(scope="module")
def tiny_play(tmp_path_factory):
    folder = tmp_path_factory.mktemp("play")
    path = folder / "tiny.en.yaml"
    path.write_text(
        "format: 1\nid: tiny\ntitle: T\nlanguage: en\nbackground:\n"
        "  - drone: {frequency: 110, volume: 0.05, fade_in: 0.02, fade_out: 0.02}\n"
        "steps:\n  - chime: soft\n  - pause: 30\n"
    )
    return path


def test_sighup_ends_a_play_with_its_history_row(tiny_play, tmp_path, folders):
    folders["settings"].mkdir()
    (folders["settings"] / "safety-pointer-shown").write_text("shown\n")
    raw = tmp_path / "out.raw"
    env = dict(os.environ, SDL_AUDIODRIVER="disk", SDL_DISKAUDIOFILE=str(raw))
    env.pop("RELAX_FALLBACK_EXPORT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "audio_engine", "play", str(tiny_play), "--no-window"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while not (raw.exists() and np.fromfile(raw, dtype="<i2").any()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    time.sleep(1.0)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 129, err
    assert "Traceback" not in err and "not recorded" not in err
    (play,) = history.plays()
    assert play.session_id == "tiny" and play.completed is False
    assert 0.5 < play.listened_s < 10


# ---- a full disk -------------------------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path):
    """A 2 MiB tmpfs, unmounted afterwards (needs the right to mount: root here)."""
    mount = tmp_path / "small"
    mount.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a small tmpfs for a real full disk here: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for a real full disk here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_a_full_disk_says_so_and_which_file_and_leaves_nothing(full_disk, tmp_path, fmt):
    script = _quiet(tmp_path, seconds=60)  # white noise: 10 MB even as FLAC
    target = full_disk / f"out.{fmt}"
    done = _relax("export", str(script), "-o", str(target))
    _one_clear_line(done, 1, f"cannot write {target}", "the disk is full")
    assert list(full_disk.iterdir()) == []


def test_the_atomic_writer_on_a_full_disk_leaves_nothing(full_disk):
    with pytest.raises(fsio.FsError, match="the disk is full"):
        fsio.atomic_write(full_disk / "cache" / "big.bin", os.urandom(3 << 20))
    assert list((full_disk / "cache").iterdir()) == []


def test_a_full_cache_disk_costs_nothing_but_time(full_disk, tmp_path):
    # A sound layer (3.5 MB once decoded), noise and a chime: their caches do not fit in 2 MiB.
    rng = np.random.default_rng(5)
    soundfile.write(tmp_path / "rain.wav", 0.1 * rng.standard_normal((10 * 22050, 2)), 22050)
    script = tmp_path / "cached.en.yaml"
    script.write_text(
        "format: 1\nid: cached\ntitle: T\nlanguage: en\nbackground:\n"
        "  - sound: {file: rain.wav, volume: 0.3}\n  - noise: {color: brown, volume: 0.1}\n"
        "steps:\n  - chime: soft\n  - pause: 12\n"
    )
    clean = _relax("export", str(script), "-o", str(tmp_path / "clean.wav"))
    assert clean.returncode == 0, clean.stderr
    done = _relax(
        "export",
        str(script),
        "-o",
        str(tmp_path / "full.wav"),
        env={"RELAX_CACHE_DIR": str(full_disk / "cache")},
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "full.wav").read_bytes() == (tmp_path / "clean.wav").read_bytes()
    left = [p.name for p in (full_disk / "cache").rglob("*") if p.is_file()]
    assert not [name for name in left if name.endswith(".tmp")], left


def test_a_cache_folder_that_is_a_file_costs_nothing_but_time(tmp_path):
    script = _quiet(tmp_path / "s", seconds=2)
    clean = _relax("export", str(script), "-o", str(tmp_path / "clean.wav"))
    assert clean.returncode == 0, clean.stderr
    blocker = tmp_path / "cache-file"
    blocker.write_text("not a folder")
    env = {"RELAX_CACHE_DIR": str(blocker)}
    done = _relax("export", str(script), "-o", str(tmp_path / "odd.wav"), env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "odd.wav").read_bytes() == (tmp_path / "clean.wav").read_bytes()
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("planted", ["fifo", "device", "folder"])
def test_pipes_devices_and_folders_in_place_of_cache_files_cost_nothing_but_time(
    tmp_path, folders, planted
):
    """Every kind of cache file (speech clips, the neural voice's model and tables, chimes, noise
    loops, decoded sounds, the gain and the engines' answers) replaced: never waited on, read
    without end or a traceback; the export is the same."""
    soundfile.write(tmp_path / "rain.wav", 0.1 * np.ones((4410, 1)), 44100)
    script = tmp_path / "c.en.yaml"
    script.write_text(
        "format: 1\ntitle: C\nlanguage: en\nbackground:\n  - noise: {color: pink, volume: 0.1}\n"
        "  - sound: {file: rain.wav, volume: 0.2}\nsteps:\n  - chime: soft\n  - say: Hello.\n"
    )
    relax = (  # as where the environment's setup has made no noise loops or voice tables
        "import sys; from audio_engine import pipeline; from audio_engine.speech import neural; "
        "from audio_engine.__main__ import run; "
        f"pipeline.BUILT_FOLDER = neural.BUILT_TABLES_FOLDER = pipeline.Path({str(tmp_path)!r}); "
        "sys.argv[0] = 'relax'; run()"
    )

    def export(name: str) -> subprocess.CompletedProcess:
        args = ["export", str(script), "-o", str(tmp_path / name)]
        return subprocess.run(
            [sys.executable, "-c", relax, *args], capture_output=True, text=True, timeout=60
        )

    assert export("clean.wav").returncode == 0
    time.sleep(1)  # (the neural voice's tables are written in the background)
    assert export("warm.wav").returncode == 0
    replaced = sorted(p for p in folders["cache"].rglob("*") if p.is_file())
    kinds = {p.parent.name if len(p.parent.name) != 2 else "speech" for p in replaced}
    assert kinds >= {"speech", "neural", "chime", "noise", "sounds", "gain"}, kinds
    for path in replaced:
        path.unlink()
        if planted == "fifo":
            os.mkfifo(path)
        elif planted == "device":
            path.symlink_to("/dev/zero")
        else:
            path.mkdir()
    done = export("odd.wav")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert (tmp_path / "odd.wav").read_bytes() == (tmp_path / "clean.wav").read_bytes()


# ---- the progress line -------------------------------------------------------------------------


def test_the_export_progress_line_fits_a_narrow_terminal(long_script, tmp_path, folders):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 30, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "audio_engine", "export", str(long_script), "-o", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=slave,
        cwd=ROOT,
    )
    os.close(slave)
    shown = b""
    try:
        deadline = time.monotonic() + 60
        while b"%" not in shown.split(b"\r")[-1] or shown.count(b"%") < 3:
            assert time.monotonic() < deadline, shown
            with contextlib.suppress(OSError):
                shown += os.read(master, 4096)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        with contextlib.suppress(OSError):
            while chunk := os.read(master, 4096):
                shown += chunk
        os.close(master)
    lines = [s for s in shown.decode("utf-8", "replace").split("\r") if "%" in s]
    assert lines
    for line in lines:
        visible = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line).rstrip("\r\n")
        assert len(visible) <= 29, repr(visible)
