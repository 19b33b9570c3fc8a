"""The gain kept in the cache folder: checked before it is used (a damaged one is measured again),
one measure for every ceiling; and the cache writers of the gain and the generated tables on a
full disk leave nothing behind (a real full disk: a small tmpfs, where this machine allows
`mount`)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import audio_engine.gain as gain_stage
from audio_engine import export, pipeline, render, script


@pytest.fixture
def full_disk(tmp_path):
    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        (folder / "gain").mkdir()
        (folder / "noise").mkdir()
        with contextlib.suppress(OSError), open(folder / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_cache_writers_leave_nothing_behind_on_a_full_disk(full_disk):
    before = sorted(p.name for p in full_disk.rglob("*"))
    pipeline._write_gain(full_disk / "gain" / "abc.json", 1.5, estimated=False)
    pipeline._write_table(
        full_disk / "noise" / "pink.f32", b"RELAXNL1", np.ones(1 << 16, dtype=np.float32)
    )
    assert sorted(p.name for p in full_disk.rglob("*")) == before
    assert pipeline._read_gain(full_disk / "gain" / "abc.json") is None


SHORT = """\
format: 1
id: short
title: Short
language: en
background:
  - drone: {frequency: 110, volume: 0.05}
steps:
  - say: Breathe in, and let it go.
  - pause: 3s
"""


@pytest.mark.parametrize(
    "damage",
    [
        {"gain": 0.5, "estimated": False},  # valid JSON, a plausible gain, no checksum
        "gain: 0.5 with the checksum of the true one",
        "gain: 1e308 with its own checksum",
        "not JSON",
    ],
)
def test_a_damaged_gain_in_the_cache_is_measured_again(tmp_path, damage):
    path = tmp_path / "short.en.yaml"
    path.write_text(SHORT)
    prepared = pipeline.prepare(script.load(path))
    clean = export.export(prepared, tmp_path / "clean.wav", gain=pipeline.gain(prepared))
    key = pipeline._gain_file(prepared.session, None, prepared.sources)
    kept = json.loads(key.read_text())
    assert kept["estimated"] is False and kept["check"]
    if damage == "gain: 0.5 with the checksum of the true one":
        key.write_text(json.dumps(dict(kept, gain=0.5)))
    elif damage == "gain: 1e308 with its own checksum":
        check = pipeline._gain_check(key, 1e308, False)
        key.write_text(json.dumps({"gain": 1e308, "estimated": False, "check": check}))
    elif damage == "not JSON":
        key.write_bytes(b"\x00\xff{")
    else:
        key.write_text(json.dumps(damage))
    again = pipeline.gain(prepared)
    assert again == kept["gain"]  # measured again, not read
    assert json.loads(key.read_text()) == kept  # and the damaged file replaced
    redone = export.export(prepared, tmp_path / "again.wav", gain=again)
    assert redone.read_bytes() == clean.read_bytes()


def test_one_measure_keeps_the_gain_of_every_ceiling(tmp_path, monkeypatch):
    path = tmp_path / "short.en.yaml"
    path.write_text(SHORT)
    prepared = pipeline.prepare(script.load(path))
    passes = []
    real = gain_stage.measure_gains
    monkeypatch.setattr(
        gain_stage, "measure_gains", lambda *a, **k: passes.append(1) or real(*a, **k)
    )
    lossless = pipeline.gain(prepared)
    lossy = pipeline.gain(prepared, lossy_quality=export.DEFAULT_QUALITY)
    assert len(passes) == 1  # the MP3's gain came with the WAV's: the session rendered once
    direct = real(
        prepared.timeline,
        prepared.sources,
        (render.LIMIT_DBTP, render.lossy_ceiling(export.DEFAULT_QUALITY)),
    )
    assert (lossless, lossy) == tuple(direct.values())
