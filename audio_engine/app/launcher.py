"""relax in the app menu: a freedesktop `.desktop` entry and the icon, or a shortcut elsewhere.

Entry points:

- `desktop_entry(command) -> str`: the entry's text (freedesktop Desktop Entry 1.4).
- `install(data_home=None) -> list[Path]` / `uninstall(data_home=None) -> list[Path]`: on Linux
  and the BSDs, `$XDG_DATA_HOME/applications/relax.desktop` and the icon as PNG at 48, 128 and
  256 px in the hicolor theme under `$XDG_DATA_HOME/icons`; on macOS and Windows a shortcut made
  by pyshortcuts (`pip install pyshortcuts`; untested there).
- `command() -> list[str]`: what the entry runs: absolute paths, so it works from any folder.
- `hint_once(launcher)`: the one line, on the first run of the launcher, on how to add relax to
  the app menu.

The window's class (`WM_CLASS` on X11, the app id on Wayland) is `WM_CLASS`, and the entry's
`StartupWMClass` names the same, so the desktop groups the window under the entry.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from audio_engine.app import icon

APP_ID = "relax"
WM_CLASS = "relax"
DESKTOP_FILE = f"{APP_ID}.desktop"
HINT_MARKER = "launcher-hint-shown"
KEYWORDS = ("relax", "breathing", "meditation", "stretching", "ontspanning", "ademhaling")


def data_home() -> Path:
    env = os.environ.get("XDG_DATA_HOME")
    return Path(env) if env and os.path.isabs(env) else Path.home() / ".local" / "share"


def command() -> list[str]:
    """The command the entry runs, with absolute paths: the installed `relax-app` next to this
    Python when there is one, else this Python running the app module."""
    python = Path(sys.executable).absolute()
    script = python.with_name("relax-app")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [str(python), "-m", "audio_engine.app"]


def _exec_quote(word: str) -> str:
    # Desktop Entry spec, "The Exec key": an argument with reserved characters is quoted, and
    # inside quotes ", `, $ and \ are escaped; % is doubled everywhere.
    word = word.replace("%", "%%")
    if word and not any(c in word for c in " \t\n\"'\\><~|&;$*?#()`"):
        return word
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in word)
    return f'"{escaped}"'


def desktop_entry(cmd: list[str]) -> str:
    """The `.desktop` file for `cmd` (English and Dutch names; validated in the tests)."""
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Version=1.4\n"
        "Name=relax\n"
        "GenericName=Relaxation sessions\n"
        "GenericName[nl]=Ontspanningsoefeningen\n"
        "Comment=Voice-guided breathing, body scans and desk stretches\n"
        "Comment[nl]=Ademhaling, bodyscan en rekoefeningen met een rustige stem\n"
        f"Exec={' '.join(_exec_quote(w) for w in cmd)}\n"
        f"Icon={APP_ID}\n"
        "Terminal=false\n"
        "Categories=AudioVideo;Audio;Player;\n"
        f"Keywords={';'.join(KEYWORDS)};\n"
        "Keywords[nl]=ontspanning;ademhaling;rekken;meditatie;relax;\n"
        f"StartupWMClass={WM_CLASS}\n"
        "StartupNotify=false\n"
    )


def _paths(home: Path) -> tuple[Path, list[tuple[int, Path]]]:
    entry = home / "applications" / DESKTOP_FILE
    icons = [
        (size, home / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png")
        for size in icon.SIZES_PX
    ]
    return entry, icons


def _write(path: Path, data: bytes) -> None:
    from audio_engine import fsio

    path.parent.mkdir(parents=True, exist_ok=True)  # shared folders: their modes are the user's
    fsio.atomic_write(path, data, make_folder=False)


def _refresh(home: Path) -> None:
    # Menus pick a new entry up by themselves; these make it sooner where the tools exist.
    for tool in (
        ["update-desktop-database", str(home / "applications")],
        ["gtk-update-icon-cache", "-q", "-t", str(home / "icons" / "hicolor")],
    ):
        if shutil.which(tool[0]):
            subprocess.run(tool, capture_output=True, check=False, timeout=30)


def install(home: Path | None = None) -> list[Path]:
    """Add relax to the app menu; returns the files written."""
    if sys.platform in ("darwin", "win32"):
        _shortcut()
        return []  # pyshortcuts chose where
    home = home or data_home()
    entry, icons = _paths(home)
    written = []
    for size, path in icons:
        _write(path, icon.png_bytes(size))
        written.append(path)
    _write(entry, desktop_entry(command()).encode("utf-8"))
    written.append(entry)
    _refresh(home)
    return written


def uninstall(home: Path | None = None) -> list[Path]:
    """Take relax out of the app menu; returns the files removed (none when it was not there)."""
    if sys.platform in ("darwin", "win32"):
        raise NotImplementedError("remove the relax shortcut by hand (untested on this system)")
    home = home or data_home()
    entry, icons = _paths(home)
    removed = []
    for path in [entry, *(p for _size, p in icons)]:
        if path.exists():
            path.unlink()
            removed.append(path)
    _refresh(home)
    return removed


def installed(home: Path | None = None) -> bool:
    return _paths(home or data_home())[0].exists()


def _shortcut() -> None:
    # macOS (.app in ~/Applications) and Windows (Start menu .lnk): pyshortcuts writes both, with
    # its own icon (it wants .icns or .ico). Untested on those systems.
    try:
        import pyshortcuts
    except ImportError:
        from audio_engine.errors import UsageError

        raise UsageError(
            "on this system the app-menu entry is made by pyshortcuts: pip install pyshortcuts"
        ) from None
    cmd = command()
    script, executable = (" ".join(cmd[1:]), cmd[0]) if len(cmd) > 1 else (cmd[0], None)
    pyshortcuts.make_shortcut(
        script,
        name="relax",
        description="Voice-guided breathing, body scans and desk stretches",
        terminal=False,
        desktop=False,
        startmenu=True,
        executable=executable,
    )


def hint_once(launcher: str) -> str | None:
    """The line on how to add relax to the app menu, the first time only (None after, or when the
    entry is there already)."""
    from audio_engine.safety import settings_dir

    marker = settings_dir() / HINT_MARKER
    if marker.exists() or installed():
        return None
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("The app-menu hint was shown.\n", encoding="utf-8")
    except OSError:
        return None  # shown again next time rather than every time failing
    from audio_engine.i18n import _

    return _("relax: to add relax to your app menu, run: {command}").format(
        command=f"{launcher} install-launcher"
    )
