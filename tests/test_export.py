"""Export: every format read back by a decoder other than the one that wrote it.

Decoders used (stated per test): WAV written by libsndfile is read with Python's `wave` module;
FLAC, OGG and MP3 with pygame's mixer (SDL_mixer's own dr_flac, stb_vorbis and minimp3 decoders,
under SDL_AUDIODRIVER=disk); tags and chapters with mutagen (the WAV cue list with a RIFF reader
written here); transcripts with webvtt-py; loudness with pyloudnorm.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile
import webvtt

import audio_engine.gain as gain_stage
from audio_engine import export, pipeline, render, script
from audio_engine.cli import info
from audio_engine.errors import ExportError
from tests import _ffmpeg

RATE = 44100

SHORT = """\
format: 1
id: {id}
title: Export test {id}
language: en
tags: [test, short]
background:
  - noise: {{color: pink, volume: 0.05}}
steps:
  - section: Arrive
  - say: Hello there. Let us breathe together.
  - pause: 0.5s
  - section: Breathing
  - breathe: {{inhale: 2, exhale: 2, cycles: 1}}
  - chime: soft
  - say: Well done.
"""


def _write_session(folder, session_id="short", text=SHORT):
    path = folder / f"{session_id}.en.yaml"
    path.write_text(text.format(id=session_id), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scripts")
    return pipeline.prepare(script.load(_write_session(folder)))


@pytest.fixture(scope="module")
def exports(prepared, tmp_path_factory):
    """The test session in every format, with transcripts; plus a second WAV for determinism."""
    folder = tmp_path_factory.mktemp("exports")
    gain = pipeline.gain(prepared)
    files = {
        name: export.export(prepared, folder / f"short.{name}", gain=gain)
        for name in export.FORMATS
    }
    files["wav2"] = export.export(prepared, folder / "again.wav", gain=gain, transcript=False)
    return files


def _pygame_decode(path) -> np.ndarray:
    """Decode with SDL_mixer's own decoders (not libsndfile): float32 (n, 2)."""
    os.environ.setdefault("SDL_DISKAUDIOFILE", os.devnull)
    import pygame

    if pygame.mixer.get_init() != (RATE, -16, 2):
        pygame.mixer.quit()
        pygame.mixer.init(RATE, -16, 2, allowedchanges=0)
    assert pygame.mixer.get_init() == (RATE, -16, 2)
    sound = pygame.mixer.Sound(str(path))
    return pygame.sndarray.array(sound).astype(np.float32) / 32768.0


def _wave_decode(path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 2, 2)
        data = w.readframes(w.getnframes())
    return np.frombuffer(data, dtype="<i2").reshape(-1, 2)


def _lag(reference: np.ndarray, other: np.ndarray) -> int:
    """Samples by which `other` is late against `reference` (cross-correlation, first channel)."""
    n = 1 << int(np.ceil(np.log2(len(reference) + len(other))))
    c = np.fft.irfft(np.fft.rfft(other[:, 0], n) * np.conj(np.fft.rfft(reference[:, 0], n)), n)
    lag = int(np.argmax(c))
    return lag if lag < n // 2 else lag - n


def test_wav_is_the_render_to_the_sample_and_the_same_bytes_every_time(prepared, exports):
    # Decoder: Python's wave module.
    decoded = _wave_decode(exports["wav"])
    gain = pipeline.gain(prepared)
    rendered = np.concatenate(
        [render.to_int16(b) for b in render.blocks(prepared.timeline, prepared.sources, gain=gain)]
    )
    assert decoded.shape == (prepared.timeline.total_samples, 2)
    assert np.array_equal(decoded, rendered)
    assert np.abs(decoded).max() > 3000, "the export should not be silent"
    assert exports["wav"].read_bytes() == exports["wav2"].read_bytes()


def test_flac_decodes_to_the_wav_samples_exactly(exports):
    # Decoder: pygame (SDL_mixer's dr_flac).
    wav = _wave_decode(exports["wav"]).astype(np.float32) / 32768.0
    flac = _pygame_decode(exports["flac"])
    assert flac.shape == wav.shape
    assert np.array_equal(flac, wav)


@pytest.mark.parametrize("name", ["ogg", "mp3"])
def test_lossy_formats_keep_the_length_and_the_content(prepared, exports, name):
    # Decoder: pygame (stb_vorbis for OGG, minimp3 for MP3); libsndfile only wrote them.
    wav = _wave_decode(exports["wav"]).astype(np.float32) / 32768.0
    decoded = _pygame_decode(exports[name])
    total = prepared.timeline.total_samples
    # The LAME header carries encoder delay and padding, Ogg its exact granule position: both
    # decoders give back the predicted length. docs/export.md allows one MP3 frame for others.
    assert abs(len(decoded) - total) <= 1152
    lag = _lag(wav, decoded)
    assert abs(lag) <= 1152
    a = wav[max(0, -lag) : total - max(0, lag)]
    b = decoded[max(0, lag) : max(0, lag) + len(a)]
    corr = np.corrcoef(a.ravel(), b[: len(a)].ravel())[0, 1]
    assert corr > 0.99, f"{name}: correlation {corr:.4f} with the WAV"
    # Loudness: pyloudnorm (BS.1770) on the decoded audio, within 1 LU of the WAV's.
    meter = pyloudnorm.Meter(RATE)
    assert abs(meter.integrated_loudness(decoded) - meter.integrated_loudness(wav)) < 1.0


def test_flac_loudness_matches_the_wav(exports):
    meter = pyloudnorm.Meter(RATE)
    wav = _wave_decode(exports["wav"]).astype(np.float32) / 32768.0
    flac = _pygame_decode(exports["flac"])
    assert abs(meter.integrated_loudness(flac) - meter.integrated_loudness(wav)) < 0.01


def _chapter_ms(timeline):
    return [round(c.start_sample * 1000 / timeline.sample_rate) for c in timeline.chapters]


@pytest.mark.parametrize("name", ["flac", "ogg"])
def test_vorbis_comments_carry_tags_and_chapters(prepared, exports, name):
    import mutagen

    audio = mutagen.File(exports[name])
    tl = prepared.timeline
    assert audio["TITLE"] == ["Export test short"]
    assert audio["ARTIST"] == ["relax"]
    assert audio["ALBUM"] == ["test, short"]
    assert audio["LANGUAGE"] == ["en"]
    assert audio["GENRE"] == ["Meditation"]
    assert "short" in audio["COMMENT"][0] and "0.1" in audio["COMMENT"][0]
    assert [audio["CHAPTER001NAME"][0], audio["CHAPTER002NAME"][0]] == ["Arrive", "Breathing"]
    got = []
    for key in ("CHAPTER001", "CHAPTER002"):
        h, m, s = audio[key][0].split(":")
        got.append(round((int(h) * 3600 + int(m) * 60 + float(s)) * 1000))
    assert got == _chapter_ms(tl)
    assert got[1] > got[0] >= 0
    assert abs(audio.info.length * RATE - tl.total_samples) < 2


@pytest.mark.parametrize("name", ["mp3", "wav"])
def test_id3_tags_and_chapter_frames(prepared, exports, name):
    import mutagen

    audio = mutagen.File(exports[name])
    tags = audio.tags
    tl = prepared.timeline
    assert str(tags["TIT2"]) == "Export test short"
    assert str(tags["TPE1"]) == "relax"
    assert str(tags["TALB"]) == "test, short"
    assert str(tags["TLAN"]) == "eng"
    assert str(tags["TCON"]) == "Meditation"
    assert "short" in str(tags.getall("COMM")[0])
    toc = tags.getall("CTOC")[0]
    chaps = {c.element_id: c for c in tags.getall("CHAP")}
    ordered = [chaps[i] for i in toc.child_element_ids]
    assert [str(c.sub_frames["TIT2"]) for c in ordered] == ["Arrive", "Breathing"]
    assert [c.start_time for c in ordered] == _chapter_ms(tl)
    assert ordered[0].end_time == ordered[1].start_time
    assert ordered[1].end_time == round(tl.total_samples * 1000 / RATE)
    assert abs(audio.info.length * RATE - tl.total_samples) < 2


def _riff_chunks(path):
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    chunks, pos = {}, 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunks.setdefault(cid, []).append(data[pos + 8 : pos + 8 + size])
        pos += 8 + size + (size % 2)
    return chunks


def test_wav_cue_list_marks_the_chapters(prepared, exports):
    chunks = _riff_chunks(exports["wav"])
    cue = chunks[b"cue "][0]
    count = struct.unpack("<I", cue[:4])[0]
    points = [struct.unpack("<II4sIII", cue[4 + 24 * i : 28 + 24 * i]) for i in range(count)]
    assert [p[5] for p in points] == [c.start_sample for c in prepared.timeline.chapters]
    adtl = next(c for c in chunks[b"LIST"] if c[:4] == b"adtl")
    labels = []
    pos = 4
    while pos < len(adtl):
        size = struct.unpack("<I", adtl[pos + 4 : pos + 8])[0]
        labels.append(adtl[pos + 12 : pos + 8 + size].rstrip(b"\0").decode())
        pos += 8 + size + size % 2
    assert labels == ["Arrive", "Breathing"]


def test_transcript_cues_agree_with_info_json(prepared, exports):
    vtt = webvtt.read(str(export.transcript_path(exports["mp3"])))
    data = info.as_json(prepared.timeline)
    speech = [e for e in data["events"] if e["kind"] == "speech"]
    assert [c.text for c in vtt.captions] == [e["text"] for e in speech]
    assert len(speech) >= 4  # two says and two breathing cues
    for cue, event in zip(vtt.captions, speech, strict=True):
        # Rounded to the nearest millisecond: within half a millisecond of the exact time.
        # (webvtt-py's `start_in_seconds` is whole seconds: use its milliseconds.)
        start_ms, end_ms = cue.start_time.in_milliseconds(), cue.end_time.in_milliseconds()
        assert abs(start_ms - event["start_s"] * 1000) <= 0.5 + 1e-6
        assert abs(end_ms - event["end_s"] * 1000) <= 0.5 + 1e-6
        assert end_ms > start_ms
    notes = [n for c in vtt.captions for n in c.comments] + list(vtt.header_comments)
    assert any("Section: Arrive" in n for n in notes)
    assert any("Section: Breathing" in n for n in notes)
    breathing = next(c for c in vtt.captions if "Section: Breathing" in " ".join(c.comments))
    assert breathing.text == "Breathe in"


def test_transcript_escapes_markup_and_rounds_half_up():
    assert export.vtt_time(22, RATE) == "00:00:00.000"  # 0.4989 ms
    assert export.vtt_time(23, RATE) == "00:00:00.001"  # 0.5215 ms
    assert export.vtt_time(RATE * 3723 + 441, RATE) == "01:02:03.010"
    assert export._cue_text("a < b &\n c") == "a &lt; b &amp; c"


def test_a_failing_export_leaves_nothing_behind(prepared, tmp_path):
    def explode(done, total):
        if done > 0:
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        export.export(prepared, tmp_path / "x.ogg", gain=1.0, progress=explode)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ExportError, match="lossless"):
        export.export(prepared, tmp_path / "x.flac", gain=1.0, quality=3)
    with pytest.raises(ExportError, match="unknown audio format"):
        export.export(prepared, tmp_path / "x.aiff", gain=1.0)
    assert list(tmp_path.iterdir()) == []


def test_float_wav_and_24_bit_flac(prepared, tmp_path):
    gain = pipeline.gain(prepared)
    wav = export.export(prepared, tmp_path / "f.wav", gain=gain, float32=True, transcript=False)
    flac = export.export(prepared, tmp_path / "f.flac", gain=gain, float32=True, transcript=False)
    reference = np.concatenate(list(render.blocks(prepared.timeline, prepared.sources, gain=gain)))
    data, rate = soundfile.read(wav, dtype="float32")
    assert soundfile.info(wav).subtype == "FLOAT" and rate == RATE
    # libsndfile's PEAK chunk carries no time of writing: the same bytes on every export.
    raw = wav.read_bytes()
    peak = raw.index(b"PEAK")
    assert raw[peak + 12 : peak + 16] == bytes(4)
    again = export.export(prepared, tmp_path / "g.wav", gain=gain, float32=True, transcript=False)
    assert again.read_bytes() == raw
    assert np.array_equal(data, reference)
    assert soundfile.info(flac).subtype == "PCM_24"
    # Decoder for the 24-bit FLAC: mutagen for the header, libsndfile would be the writer, so
    # the samples are checked against the float render to 24-bit precision.
    import mutagen.flac

    assert mutagen.flac.FLAC(flac).info.bits_per_sample == 24
    decoded, _ = soundfile.read(flac, dtype="float32")
    assert decoded.shape == reference.shape
    assert np.abs(decoded - reference).max() < 2.0 / (1 << 23)


def _relax(*args, cwd, timeout=300, **popen):
    return subprocess.run(
        [sys.executable, "-m", "audio_engine", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
        **popen,
    )


def test_export_all_reports_a_failing_session_and_keeps_going(tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    good = [_write_session(scripts, name) for name in ("one", "two")]
    bad = scripts / "bad.en.yaml"
    # Valid YAML that only fails when compiled with the real voice (speech too long).
    bad.write_text(
        "format: 1\ntitle: Bad\nlanguage: en\nsteps:\n"
        "  - say: This sentence is far too long for the tenth of a second it is given.\n"
        "    duration: 0.1s\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    out.mkdir()
    result = _relax(
        "export", "--all", *map(str, [*good, bad]), "--outdir", str(out), "--format", "ogg",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "bad.en.yaml" in result.stderr and "1 of 3 sessions failed" in result.stderr
    assert "Traceback" not in result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["one.en.ogg", "one.en.vtt", "two.en.ogg", "two.en.vtt"]
    expected = pipeline.prepare(script.load(good[0])).timeline.total_samples
    assert len(_pygame_decode(out / "one.en.ogg")) == expected


# No background: rendering silence is quick, encoding 20 minutes of MP3 is not.
LONG_SESSION = "format: 1\ntitle: Long\nlanguage: en\nsteps:\n  - say: Rest.\n  - pause: 20m\n"


def _wait_for_a_temporary_file(proc, out) -> None:
    """Until the export in `proc` has begun writing into `out` (a `.part` file is there)."""
    deadline = time.monotonic() + 120
    while not any(p.name.endswith(".part") for p in out.iterdir()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the export never started writing"
        time.sleep(0.05)


@pytest.mark.parametrize(("how", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_export_leaves_nothing_and_exits_130(tmp_path, how, code):
    long_session = tmp_path / "long.en.yaml"
    long_session.write_text(
        LONG_SESSION,
        encoding="utf-8",
    )
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "audio_engine",
            "export",
            str(long_session),
            "-o",
            str(out / "l.mp3"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for_a_temporary_file(proc, out)
    encoders = _ffmpeg_children(proc)  # LAME in ffmpeg: it ends with relax
    time.sleep(0.5)  # well inside the encoding of 20 minutes
    proc.send_signal(how)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert how != signal.SIGINT or "interrupted" in stderr
    assert list(out.iterdir()) == []
    assert [pid for pid in encoders if _running(pid)] == []


def _process_state(pid: int) -> tuple[str, str, int] | None:
    """(name, state, parent) of a process, from /proc; None when there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 1 :]
    fields = rest.split()
    return name, fields[0], int(fields[1])


def _running(pid: int) -> bool:
    state = _process_state(pid)
    return state is not None and state[1] != "Z"


def _ffmpeg_children(proc) -> list[int]:
    """The ffmpeg processes `proc` has started, once there is one."""
    deadline = time.monotonic() + 30
    while True:
        found = []
        for entry in os.listdir("/proc"):
            state = _process_state(int(entry)) if entry.isdigit() else None
            if state and state[2] == proc.pid and state[0].startswith("ffmpeg"):
                found.append(int(entry))
        if found:
            return found
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no ffmpeg encodes the MP3"
        time.sleep(0.05)


# The `relax` console script (`from audio_engine.__main__ import run; run()`), writing one byte to
# the pipe at `fd` just before `run`: from then on a Ctrl-C is the command's to handle. One that
# lands earlier, while Python itself is still starting (a loaded machine can take 0.3 s to get
# there: "Could not import runpy module", "Failed to import the site module", death by SIGINT),
# is outside its reach.
_SIGNAL_WHEN_RUNNING = (
    "import os, sys; from audio_engine.__main__ import run; fd = int(sys.argv.pop(1)); "
    "os.write(fd, b'.'); os.close(fd); run()"
)


def _start_relax_when_running(*args, cwd) -> subprocess.Popen:
    """A `relax` command, returned once it runs the command's code (its modules are then still
    to import: numpy, the script loader, the speech engine)."""
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SIGNAL_WHEN_RUNNING, str(write_end), *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=(write_end,),
        )
        os.close(write_end)
        write_end = -1
        started = os.read(read_end, 1)  # b"" only if it died before running anything
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    assert started == b".", proc.communicate(timeout=60)
    return proc


@pytest.mark.parametrize("after_s", [0.1, 0.2, 0.3])
def test_ctrl_c_while_starting_up_exits_130_without_a_traceback(tmp_path, after_s):
    # While the modules are still being imported (numpy, the script loader, the speech engine):
    # timed from the moment the command's code runs, however loaded the machine is.
    proc = _start_relax_when_running("export", "quick-reset", "-o", "q.wav", cwd=tmp_path)
    time.sleep(after_s)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    if proc.returncode == 0:  # a fast machine finished first: a whole file, nothing else
        assert sorted(p.name for p in tmp_path.iterdir()) == ["q.vtt", "q.wav"]
        return
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.strip().endswith("relax: interrupted")
    assert list(tmp_path.iterdir()) == []


def test_builtin_session_to_mp3_through_the_command(tmp_path):
    result = _relax("export", "quick-reset", "-l", "en", "--format", "mp3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "quick-reset.en.mp3"
    data = json.loads(_relax("info", "quick-reset", "-l", "en", "--json", cwd=tmp_path).stdout)
    import mutagen

    audio = mutagen.File(tmp_path / "quick-reset.en.mp3")
    starts = [c.start_time for c in audio.tags.getall("CHAP")]
    assert sorted(starts) == [round(c["start_s"] * 1000) for c in data["chapters"]]
    decoded = _pygame_decode(tmp_path / "quick-reset.en.mp3")
    assert abs(len(decoded) - data["total_samples"]) <= 1152
    vtt = webvtt.read(str(tmp_path / "quick-reset.en.vtt"))
    speech = [e for e in data["events"] if e["kind"] == "speech"]
    assert [c.start_time.in_milliseconds() for c in vtt.captions] == [
        round(e["start_s"] * 1000) for e in speech
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "quick-reset.en.mp3",
        "quick-reset.en.vtt",
    ]


def test_command_line_mistakes_are_one_line_errors(tmp_path):
    result = _relax("export", "quick-reset", "-o", "x.wav", "--quality", "3", cwd=tmp_path)
    assert result.returncode == 2 and "lossless" in result.stderr
    result = _relax("export", "quick-reset", "-o", "x.wav", "--format", "mp3", cwd=tmp_path)
    assert result.returncode == 2 and "--format says mp3" in result.stderr
    result = _relax("export", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


TONES = """
format: 1
title: Tones
language: en
background:
  - drone: {frequency: 110, volume: 0.05}
steps:
  - breathe:
      inhale: 5.5
      exhale: 5.5
      cycles: 3
      guide_tone: true
      cues: {inhale: "", exhale: ""}
  - chime: bell
    volume: 1
"""


@pytest.mark.parametrize("name", ["mp3", "ogg"])
@pytest.mark.parametrize("quality", [0, None])
def test_lossy_exports_decode_with_peaks_under_minus_1_dbfs(tmp_path, name, quality):
    # A guide tone brought up to -16 LUFS, then a bell: pure tones at the soft ceiling, what
    # makes an encoder overshoot the most.
    prepared = pipeline.prepare(script.loads(TONES, filename="tones.yaml"))
    gain = gain_stage.measure_gain(prepared.timeline, prepared.sources)
    wav = _wave_decode(export.export(prepared, tmp_path / "t.wav", gain=gain, transcript=False))
    wav = wav / 32768.0
    path = export.export(prepared, tmp_path / f"t.{name}", gain=gain, quality=quality)
    decoded = _pygame_decode(path)
    assert 20 * np.log10(np.abs(decoded).max()) < -1.0
    meter = pyloudnorm.Meter(RATE)
    lufs = meter.integrated_loudness(decoded.astype(np.float64))
    assert abs(lufs - meter.integrated_loudness(wav.astype(np.float64))) < 1.0


def test_output_names_a_missing_folder_or_a_file_without_extension(tmp_path):
    # A file in a folder that does not exist: an error (a folder is made only when -o names
    # one, ending in /).
    result = _relax("export", "quick-reset", "-o", "missing/x.mp3", cwd=tmp_path)
    assert result.returncode == 2 and "folder missing does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []
    result = _relax("export", "quick-reset", "-o", "take1", "--no-transcript", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["take1.wav"]  # WAV, the default format
    assert _wave_decode(tmp_path / "take1.wav").any()


@pytest.mark.parametrize("after_s", [0.3, 0.45])
def test_ctrl_c_while_the_all_workers_start_prints_no_traceback(tmp_path, after_s):
    # Ctrl-C in a terminal reaches the whole process group: the workers too, maybe while they
    # are still importing.
    proc = subprocess.Popen(
        [sys.executable, "-m", "audio_engine", "export", "--all", "--outdir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    time.sleep(after_s)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.strip().endswith("relax: interrupted")
    assert list(tmp_path.iterdir()) == []


def test_export_through_a_link_writes_the_file_it_names(prepared, tmp_path):
    real = tmp_path / "real.wav"
    real.write_bytes(b"old")
    link = tmp_path / "link.wav"
    link.symlink_to(real)
    export.export(prepared, link, gain=1.0, transcript=False)
    assert link.is_symlink() and link.resolve() == real
    assert len(_wave_decode(real)) == prepared.timeline.total_samples


def test_export_all_in_one_language_does_not_read_the_others(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "broken.en.yaml").write_text("format: 1\ntitle: [unclosed\n", encoding="utf-8")
    (folder / "rust.nl.yaml").write_text(
        "format: 1\ntitle: Rust\nlanguage: nl\nsteps:\n  - pause: 1\n", encoding="utf-8"
    )
    out = tmp_path / "out"
    out.mkdir()
    args = ("export", "--all", "--dir", str(folder), "--outdir", str(out), "--language", "nl")
    result = _relax(*args, "--no-transcript", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "broken" not in result.stderr
    assert "rust.nl.wav" in {p.name for p in out.iterdir()}


def test_export_all_weighs_each_session_by_its_expected_length():
    from audio_engine import library
    from audio_engine.cli.export import _expected_s

    for entry in library.find_all():
        if entry.language != "en":
            continue
        expected = _expected_s(str(entry.path)) - 30.0  # less the fixed work per session
        real = pipeline.prepare(pipeline.load(str(entry.path))).timeline.duration_s
        assert abs(expected - real) < 0.1 * real, entry.id


def test_sigterm_to_the_group_during_export_all_leaves_no_temporary_file(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "long.en.yaml").write_text(
        LONG_SESSION,
        encoding="utf-8",
    )
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "audio_engine", "export", "--all", str(folder / "long.en.yaml")]
        + ["--outdir", str(out), "--format", "mp3", "--no-transcript"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _wait_for_a_temporary_file(proc, out)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    time.sleep(0.5)  # the workers' own cleanup
    assert list(out.iterdir()) == []


def test_mp3_carries_lames_info_tag_for_gapless_playback(prepared, exports, tmp_path):
    # The MP3 frames come from LAME in ffmpeg, the info tag is written by relax: read it back
    # field by field, and let ffmpeg (which trims by it) decode exactly the session's samples, in
    # line with the WAV export's to the sample.
    from mutagen.id3 import ID3

    from audio_engine import mp3

    assert mp3.encoder_name() == "ffmpeg"
    data = exports["mp3"].read_bytes()
    audio = data[ID3(exports["mp3"]).size :]
    total = prepared.timeline.total_samples
    head = audio[:4]
    assert head[:2] == b"\xff\xfb" and head[2] >> 4 == 9  # MPEG-1 layer III, 128 kbit/s
    xing = audio[36:156]
    assert xing[:4] == b"Xing" and int.from_bytes(xing[4:8], "big") == 0x0F
    frames, size = int.from_bytes(xing[8:12], "big"), int.from_bytes(xing[12:16], "big")
    assert size == len(audio)
    lame = audio[156:192]
    assert lame[:9] == b"LAME3.100"
    delay_padding = int.from_bytes(lame[21:24], "big")
    assert delay_padding >> 12 == mp3.ENCODER_DELAY
    assert delay_padding & 0xFFF == frames * 1152 - mp3.ENCODER_DELAY - total
    assert int.from_bytes(lame[28:32], "big") == len(audio)
    assert int.from_bytes(lame[34:36], "big") == mp3.crc16(audio[:190])
    assert mp3.crc16(b"123456789") == 0xBB3D  # CRC-16/ARC's check value
    # The frames after the tag: as many as it says, each a valid header.
    count, at = 0, 417
    while at < len(audio):
        b2 = audio[at + 2]
        assert audio[at] == 0xFF
        at += 144000 * (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)[
            b2 >> 4
        ] // RATE + ((b2 >> 1) & 1)
        count += 1
    assert (count, at) == (frames, len(audio))
    pcm = subprocess.run(
        [_ffmpeg.FFMPEG, "-v", "error", "-i", str(exports["mp3"]), "-f", "s16le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    assert len(pcm) == 4 * total
    decoded = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2).astype(np.float32)
    assert _lag(_wave_decode(exports["wav"]).astype(np.float32), decoded) == 0
    again = export.export(prepared, tmp_path / "again.mp3", gain=pipeline.gain(prepared))
    assert again.read_bytes() == data  # the same bytes from the same input


def test_lame_runs_at_the_algorithm_quality_lame_and_ffmpeg_leave_it_at(monkeypatch):
    # `lame -V` and ffmpeg's libmp3lame leave LAME's default (-q 3); in LAME's VBR mode 0-4 are
    # one quality (0), 5 another: the Writer's frames through lameenc are those of that setting
    # (through ffmpeg, those of ffmpeg's own default: tests/test_mp3.py).
    import io

    import lameenc

    from audio_engine import mp3

    rng = np.random.default_rng(3)
    pcm = (rng.standard_normal((2 * RATE, 2)) * 3000).astype("<i2")

    def frames(algorithm_quality: int) -> bytes:
        encoder = lameenc.Encoder()
        encoder.set_channels(2)
        encoder.set_in_sample_rate(RATE)
        encoder.set_out_sample_rate(RATE)
        encoder.set_vbr(4)
        encoder.set_vbr_quality(4.95)
        encoder.set_quality(algorithm_quality)
        encoder.silence()
        return bytes(encoder.encode(pcm.tobytes()) + encoder.flush())

    assert frames(0) == frames(3) == frames(4) != frames(5)
    monkeypatch.setenv(mp3.ENCODER_ENV, "lameenc")
    written = io.BytesIO()
    writer = mp3.Writer(written, 5.0)
    writer.write(pcm)
    writer.close()
    assert writer.encoder == "lameenc"
    assert written.getvalue()[417:] == frames(3)  # after the info frame
