"""`relax export` folders as the README writes them, and `relax play`'s fallback without an audio
device: files read back and compared with the render, sample for sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import webvtt

from audio_engine import export, pipeline, render, script

RATE = 44100

SHORT = """\
format: 1
id: short
title: Fallback test
language: en
background:
  - noise: {color: pink, volume: 0.05}
steps:
  - section: Arrive
  - say: Hello there. Let us breathe together.
  - pause: 0.5s
  - section: Breathing
  - say: Breathe in.
  - breathe: {inhale: 2, exhale: 2, cycles: 1}
  - chime: soft
  - say: Well done.
"""


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    folder = tmp_path_factory.mktemp("short")
    path = folder / "short.en.yaml"
    path.write_text(SHORT)
    prepared = pipeline.prepare(script.load(path))
    return path, prepared, pipeline.gain(prepared)


def _relax(*args, cwd, shell=False, **env):
    full = dict(os.environ, **env)
    if shell:  # a README line as a shell runs it: `~` expanded by the shell
        cmd = ["bash", "-c", f"{sys.executable} -m audio_engine {args[0]}"]
    else:
        cmd = [sys.executable, "-m", "audio_engine", *args]
    return subprocess.run(cmd, cwd=cwd, env=full, capture_output=True, text=True, timeout=120)


def _render(prepared, gain, start=0):
    blocks = render.blocks(prepared.timeline, prepared.sources, start_sample=start, gain=gain)
    return np.concatenate([render.to_int16(b) for b in blocks])


def _wav(path):
    samples, rate = soundfile.read(path, dtype="int16")
    assert rate == RATE
    return samples


def test_outdir_is_made_like_mkdir_p(short, tmp_path):
    path, prepared, gain = short
    done = _relax("export", str(path), "--outdir", "out/sub/", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    written = tmp_path / "out" / "sub" / "short.en.wav"
    assert done.stdout.splitlines() == [str(written.relative_to(tmp_path))]
    assert np.array_equal(_wav(written), _render(prepared, gain))
    assert (tmp_path / "out" / "sub" / "short.en.vtt").exists()


def test_an_output_ending_in_a_slash_is_a_folder_made_when_missing(short, tmp_path):
    path, prepared, gain = short
    home = tmp_path / "home"
    home.mkdir()
    done = _relax(f"export {path} -o ~/Music/", cwd=tmp_path, shell=True, HOME=str(home))
    assert done.returncode == 0, done.stderr
    written = home / "Music" / "short.en.wav"
    assert done.stdout.splitlines() == [str(written)]
    assert np.array_equal(_wav(written), _render(prepared, gain))


def test_export_all_makes_its_outdir_too(short, tmp_path):
    path, prepared, gain = short
    done = _relax(
        "export", "--all", str(path), "--outdir", "lib/", "--format", "flac", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert np.array_equal(_wav(tmp_path / "lib" / "short.en.flac"), _render(prepared, gain))


def test_a_folder_that_cannot_be_made_is_one_line_and_nothing_is_made_for_a_wrong_session(
    short, tmp_path
):
    path, _, _ = short
    (tmp_path / "taken").write_text("a file")
    done = _relax("export", str(path), "-o", "taken/", cwd=tmp_path)
    assert done.returncode == 1  # a folder that cannot be made: a failure, as with --outdir
    assert done.stderr.strip().splitlines() == [
        "relax: error: taken: there is a file of that name, not a folder"
    ]
    done = _relax("export", "no-such-session", "--outdir", "never/", cwd=tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert not (tmp_path / "never").exists()


# ---- `relax play` without an audio device, from the launcher ----------------------------------


def _fallback(path, cwd, *args, **env):
    return _relax(
        "play",
        str(path),
        "--no-window",
        *args,
        cwd=cwd,
        SDL_AUDIODRIVER="no-such-device",
        RELAX_FALLBACK_EXPORT="1",
        RELAX_SETTINGS_DIR=str(cwd / "settings"),
        **env,
    )


def test_the_fallback_writes_the_session_and_its_transcript_and_names_the_file_once(
    short, tmp_path
):
    path, prepared, gain = short
    done = _fallback(path, tmp_path)
    assert done.returncode == 0, done.stderr
    written = tmp_path / "short.en.wav"
    assert done.stdout.splitlines() == [str(written)]
    assert "short.en.wav" not in done.stderr
    line = [x for x in done.stderr.splitlines() if "no audio output device" in x]
    assert len(line) == 1 and "writing the session to a WAV file and its transcript" in line[0]
    assert np.array_equal(_wav(written), _render(prepared, gain))
    vtt = webvtt.read(str(tmp_path / "short.en.vtt"))
    assert [c.text for c in vtt] == [e.text for e in prepared.timeline.transcript()]


def test_the_fallback_honours_from(short, tmp_path):
    path, prepared, gain = short
    tl = prepared.timeline
    done = _fallback(path, tmp_path, "--from", "2")
    assert done.returncode == 0, done.stderr
    written = tmp_path / "short.en.from-2.wav"
    assert done.stdout.splitlines() == [str(written)]
    assert "from section 2 (Breathing)" in done.stderr
    start = tl.chapters[1].start_sample
    samples = _wav(written)
    assert len(samples) == tl.total_samples - start
    assert np.array_equal(samples, _render(prepared, gain, start))
    # The transcript and the chapters count from the file's start.
    vtt = webvtt.read(str(tmp_path / "short.en.from-2.vtt"))
    later = [e for e in tl.transcript() if e.start_sample >= start]
    assert [c.text for c in vtt] == [e.text for e in later]
    assert later[0].text == "Breathe in." and later[-1].text == "Well done."
    assert vtt[0].start_in_seconds == pytest.approx(
        (later[0].start_sample - start) / RATE, abs=6e-4
    )
    info = json.loads(_relax("info", str(path), "--json", cwd=tmp_path).stdout)
    assert info["total_samples"] == tl.total_samples
    import mutagen

    chaps = mutagen.File(written).tags.getall("CHAP")
    assert [(str(c.sub_frames["TIT2"]), c.start_time) for c in chaps] == [("Breathing", 0)]
    assert export.file_chapters(tl, start) == (export.FileChapter("Breathing", 0),)
    # In a Dutch locale the line is Dutch from end to end (only SDL's own words stay).
    done = _fallback(path, tmp_path, "--from", "2", LANG="nl_NL.UTF-8")
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if "audio" in x)
    assert line.startswith("relax: geen audio-uitvoerapparaat (")
    assert line.endswith(
        "); de sessie wordt vanaf deel 2 (Breathing) in plaats daarvan naar een WAV-bestand met "
        "transcript geschreven"
    )
