"""Starting `relax remind` at login: the file each platform reads, written and removed.

- Linux: a systemd user unit, `$XDG_CONFIG_HOME/systemd/user/relax-remind.service` (default
  `~/.config/...`), wanted by `graphical-session.target`; then `systemctl --user daemon-reload`
  and `enable` (the command in `RELAX_SYSTEMCTL`, default `systemctl`; empty to skip).
- macOS: a LaunchAgent, `~/Library/LaunchAgents/org.relax.remind.plist` (RunAtLoad). Written,
  untested (no macOS here).
- Windows: `relax-remind.cmd` in the Startup folder
  (`%APPDATA%\\Microsoft\\Windows\\Start Menu\\Programs\\Startup`). Written, untested.

Each runs this interpreter (`sys.executable -m audio_engine remind`) with the flags given
alongside `--install`, so what starts at login is what the user tried.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from audio_engine import fsio
from audio_engine.i18n import _

UNIT = "relax-remind.service"
AGENT = "org.relax.remind"


@dataclass(frozen=True)
class Target:
    platform: str  # "linux", "darwin", "win32"
    path: Path
    text: str


def _command(extra: list[str], python: str | None = None) -> list[str]:
    return [python or sys.executable, "-m", "audio_engine", "remind", *extra]


def target(platform: str, extra: list[str], env=None, home: Path | None = None, python=None):
    env = os.environ if env is None else env
    home = home or Path.home()
    command = _command(extra, python)
    if platform == "darwin":
        path = home / "Library" / "LaunchAgents" / f"{AGENT}.plist"
        text = plistlib.dumps(
            {
                "Label": AGENT,
                "ProgramArguments": command,
                "RunAtLoad": True,
                "KeepAlive": {"SuccessfulExit": False},
                "ProcessType": "Interactive",
            }
        ).decode("utf-8")
        return Target(platform, path, text)
    if platform == "win32":
        appdata = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
        path = appdata / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Startup"
        python_w = Path(command[0]).with_name("pythonw.exe")
        exe = str(python_w) if python_w.exists() else command[0]
        args = subprocess.list2cmdline([exe, *command[1:]])
        text = f'@echo off\r\nrem relax remind: break reminders\r\nstart "" {args}\r\n'
        return Target(platform, path / "relax-remind.cmd", text)
    config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    path = config / "systemd" / "user" / UNIT
    exec_start = " ".join(_systemd_quote(word) for word in command)
    text = (
        "[Unit]\n"
        "Description=relax remind: break reminders on active time\n"
        "PartOf=graphical-session.target\n"
        "After=graphical-session.target\n"
        "\n"
        "[Service]\n"
        f"ExecStart={exec_start}\n"
        # A clean stop (SIGTERM, exit 143) is not a failure; a crash is restarted.
        "SuccessExitStatus=143\n"
        "Restart=on-failure\n"
        "RestartSec=30\n"
        "\n"
        "[Install]\n"
        "WantedBy=graphical-session.target\n"
    )
    return Target("linux", path, text)


def _systemd_quote(word: str) -> str:
    if word and all(c.isalnum() or c in "/._-=:,+@" for c in word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def install(t: Target, say) -> None:
    # The unit file is the user's own, not relax's secret: readable like the other units there.
    fsio.atomic_write(t.path, t.text.encode("utf-8"), mode=0o644)
    say(_("wrote {path}").format(path=t.path))
    if t.platform == "linux":
        if _systemctl(["daemon-reload"], say) and _systemctl(["enable", UNIT], say):
            say(
                _("enabled: starts at your next login (now: {command})").format(
                    command=f"systemctl --user start {UNIT}"
                )
            )
    elif t.platform == "darwin":
        command = f"launchctl load {shlex.quote(str(t.path))}"
        say(_("starts at your next login (now: {command})").format(command=command))
    else:
        say(_("starts at your next login"))


def uninstall(t: Target, say) -> bool:
    if t.platform == "linux":
        _systemctl(["disable", "--now", UNIT], say, quiet=True)
    try:
        t.path.unlink()
    except FileNotFoundError:
        say(_("nothing to remove: {path} does not exist").format(path=t.path))
        return False
    say(_("removed {path}").format(path=t.path))
    if t.platform == "linux":
        _systemctl(["daemon-reload"], say, quiet=True)
    return True


def _systemctl(args: list[str], say, quiet: bool = False) -> bool:
    command = os.environ.get("RELAX_SYSTEMCTL", "systemctl")
    if not command:
        return False
    exe = shutil.which(command)
    if exe is None:
        if not quiet:
            say(
                _("{command} not found: enable the unit yourself ({how})").format(
                    command=command, how=f"systemctl --user enable {UNIT}"
                )
            )
        return False
    try:
        done = subprocess.run([exe, "--user", *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        done = None
        reason = str(exc)
    else:
        reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or [
            f"status {done.returncode}"
        ]
        reason = reason[0]
    if done is not None and done.returncode == 0:
        return True
    if not quiet:
        say(
            _("{command} failed ({reason}); the unit file is written").format(
                command=f"systemctl --user {' '.join(args)}", reason=reason
            )
        )
    return False
