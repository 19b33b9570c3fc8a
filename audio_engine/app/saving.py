"""Save for your phone: a session written as an MP3 with chapters into the user's music folder,
in a thread of its own, with its progress in a dict the window reads at every frame.

Entry points: `music_dir()`, `work(state, path, slower)` (run in a thread: sets `state`'s
`stage`, `fraction`, then `path` or `error`, and `busy` False; `state["cancel"] = True` stops it
and the export removes its temporary file), `open_folder(folder)`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from audio_engine.app import model
from audio_engine.errors import RelaxError


class Cancelled(Exception):
    """Raised in the export's progress callback when the window closes while it writes."""


def music_dir() -> Path:
    """Where "save for your phone" writes: the user's music folder, in `relax`."""
    import platformdirs

    return Path(platformdirs.user_music_dir()) / "relax"


def open_folder(folder: Path) -> None:
    """Show `folder` in the system's file manager."""
    if sys.platform == "win32":
        os.startfile(str(folder))  # noqa: S606 - the documented way on Windows
        return
    opener = "open" if sys.platform == "darwin" else "xdg-open"
    subprocess.Popen(
        [opener, str(folder)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


class _Cancelled(Exception):
    """Raised in the export's progress callback when the window closes while it writes."""


def work(state: dict, path: Path, slower: bool) -> None:
    """Make the MP3 of the script at `path` (with the slower voice when `slower`)."""
    from audio_engine import export, pipeline

    def stage(name, low, high):
        def progress(done, total):
            if state.get("cancel"):
                raise Cancelled  # the window closed: the export removes its temporary file
            state["stage"] = name
            state["fraction"] = low + (high - low) * (done / total if total else 1.0)

        return progress

    try:
        session = pipeline.load(str(path))
        voice = model.slower_voice(session) if slower else None
        prepared = pipeline.prepare(session, voice, progress=stage("speech", 0.0, 0.4))
        form = export.format_for(None, "mp3")
        gain = pipeline.gain(
            prepared,
            progress=stage("loudness", 0.4, 0.5),
            lossy_quality=export.lossy_quality(form, None),
        )
        folder = music_dir()
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / export.default_name(session, form)
        written = export.export(
            prepared,
            target,
            gain=gain,
            fmt="mp3",
            transcript=False,  # a music folder: the audio alone (its chapters are in it)
            progress=stage("file", 0.5, 1.0),
        )
        state["path"] = str(written)
        state["fraction"] = 1.0
    except (RelaxError, OSError) as exc:
        state["error"] = str(exc)
    except Cancelled:
        state["error"] = "cancelled"
    finally:
        state["busy"] = False
