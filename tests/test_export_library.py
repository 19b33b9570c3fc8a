"""The README's export examples, run verbatim, and the whole built-in library exported in every
format, each file decoded and measured by ffmpeg's ebur128 meter: -16 LUFS +/- 0.3 LU, true peak
at most -1 dBTP.

Heavy (about three minutes on two cores: the library is 76 minutes of audio, four times, MP3 and
OGG encoding most of it): marked `heavy`; `scripts/test -m "not heavy"` leaves it out. One test,
so that the exports are made once (pytest-xdist would make a module fixture once per worker)."""

from __future__ import annotations

import concurrent.futures
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from audio_engine import export, library, render
from tests import _ffmpeg

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = "scripts/relax"


def readme_export_examples() -> list[str]:
    """The command lines of the README's "Exporting" example block, as written."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Exporting\n", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    lines = [line for line in block.splitlines() if line.strip()]
    assert lines and all(line.startswith(LAUNCHER + " export") for line in lines), lines
    return lines


def _run_line(line: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    # The line as a shell runs it (`~` expanded by bash, the comment dropped), in a folder of
    # its own; only the launcher's path is the checkout's, the arguments are the README's.
    command = str(ROOT / LAUNCHER) + line.removeprefix(LAUNCHER)
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def test_readme_examples_parse():
    lines = readme_export_examples()
    assert any("--all --outdir out/" in line for line in lines)
    assert any("-o ~/Music/" in line for line in lines)


@pytest.mark.heavy
@pytest.mark.timeout(1500)
def test_readme_examples_run_verbatim_and_the_library_is_at_minus_16_lufs_in_every_format(
    tmp_path,
):
    run = tmp_path / "run"
    home = tmp_path / "home"
    run.mkdir()
    home.mkdir()
    # The library alone: a sessions folder of its own (other tests write theirs in the run's).
    env = dict(os.environ, HOME=str(home), RELAX_SESSIONS_DIR=str(tmp_path / "mine"))
    made: list[Path] = []
    for line in readme_export_examples():
        done = _run_line(line, run, env)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        printed = [Path(p) for p in done.stdout.splitlines()]
        assert printed, line
        for path in printed:
            path = path if path.is_absolute() else run / path
            assert path.is_file() and export.transcript_path(path).is_file(), (line, path)
            made.append(path)
        words = shlex.split(line, comments=True)
        if "--outdir" in words:  # the README's folders did not exist before
            assert (run / words[words.index("--outdir") + 1]).is_dir()
    assert (home / "Music" / "body-scan.nl.wav").is_file()
    builtin = sorted(
        (e.path.name.removesuffix(".yaml") for e in library.find_all(()) if e.builtin),
    )
    assert len(builtin) >= 14 and len(builtin) % 2 == 0  # every session in en and nl
    out_mp3 = sorted(p.name for p in (run / "out").glob("*.mp3"))
    assert out_mp3 == [f"{name}.mp3" for name in builtin]
    # The rest of the library in the other formats, as `--all` writes them.
    for name in ("wav", "flac", "ogg"):
        folder = tmp_path / name
        done = subprocess.run(
            [sys.executable, "-m", "audio_engine", "export", "--all", "--format", name]
            + ["--outdir", str(folder)],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stderr
        made += sorted(folder.glob(f"*.{name}"))
    assert len(made) == 3 + 4 * len(builtin)
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        measured = dict(zip(made, pool.map(_ffmpeg.r128, made), strict=True))
    table = "\n".join(
        f"{path.parent.name:>6} {path.name:32} {lufs:7.2f} LUFS {peak:6.2f} dBTP"
        for path, (lufs, peak) in measured.items()
    )
    print(table)
    off = {p: v for p, (v, _) in measured.items() if abs(v + 16.0) > 0.3}
    assert not off, f"off target (ffmpeg ebur128):\n{table}"
    over = {p: tp for p, (_, tp) in measured.items() if tp > render.TRUE_PEAK_DBTP}
    assert not over, f"over {render.TRUE_PEAK_DBTP} dBTP (ffmpeg ebur128):\n{table}"
