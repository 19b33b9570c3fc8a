"""The library window as a person uses it: a real X server (Xvfb), the window in its own process
(`python -m audio_engine.app`), clicks and keys sent through XTest at its controls, the sound
through SDL's disk audio driver. Open, choose quick-reset, choose Dutch, start, skip to the end,
see the summary, go back to the library, save for the phone; screenshots of the X screen checked
by pixels; and the app-menu entry, validated by desktop-file-validate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from audio_engine.app import launcher, ui

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def xvfb():
    pytest.importorskip("Xlib")
    from tests._remind_bus import Xvfb

    server = Xvfb("1920x1080")
    yield server
    server.stop()


class Person:
    """Looks at the window (its trace and the X screen) and uses it through XTest."""

    def __init__(self, display: str, trace: Path):
        from Xlib import display as xdisplay

        self.d = xdisplay.Display(display)
        self.root = self.d.screen().root
        self.trace = trace

    def state(self) -> dict:
        try:
            return json.loads(self.trace.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def wait(self, test, timeout_s=60.0, what="") -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.state()
            if state and test(state):
                return state
            time.sleep(0.05)
        raise AssertionError(f"waited {timeout_s:g} s for {what}; last: {self.state()}")

    def window(self):
        """The app's top-level window, found by its class (what StartupWMClass names)."""
        for child in self.root.query_tree().children:
            cls = child.get_wm_class()
            if cls and launcher.WM_CLASS in cls:
                return child
        return None

    def origin(self) -> tuple[int, int]:
        win = self.window()
        pos = win.translate_coords(self.root, 0, 0)
        return -pos.x, -pos.y

    def click(self, control_id: str) -> None:
        from Xlib import X
        from Xlib.ext import xtest

        state = self.wait(
            lambda s: any(c["id"] == control_id and c["rect"] for c in s.get("controls", [])),
            what=control_id,
        )
        rect = next(c["rect"] for c in state["controls"] if c["id"] == control_id)
        ox, oy = self.origin()
        x, y = ox + rect[0] + rect[2] // 2, oy + rect[1] + rect[3] // 2
        xtest.fake_input(self.d, X.MotionNotify, x=x, y=y)
        self.d.sync()
        time.sleep(0.05)
        xtest.fake_input(self.d, X.ButtonPress, 1)
        xtest.fake_input(self.d, X.ButtonRelease, 1)
        self.d.sync()

    def key(self, name: str) -> None:
        from Xlib import XK, X
        from Xlib.ext import xtest

        # Without a window manager the keyboard follows the pointer: it goes over the window.
        win = self.window()
        if win is not None:
            ox, oy = self.origin()
            geometry = win.get_geometry()
            x, y = ox + geometry.width // 2, oy + geometry.height // 2
            xtest.fake_input(self.d, X.MotionNotify, x=x, y=y)
        code = self.d.keysym_to_keycode(XK.string_to_keysym(name))
        xtest.fake_input(self.d, X.KeyPress, code)
        xtest.fake_input(self.d, X.KeyRelease, code)
        self.d.sync()
        time.sleep(0.05)

    def screenshot(self, size) -> np.ndarray:
        """The window's pixels as the X server has them, (height, width, RGB)."""
        from Xlib import X

        ox, oy = self.origin()
        image = self.root.get_image(ox, oy, size[0], size[1], X.ZPixmap, 0xFFFFFFFF)
        data = np.frombuffer(image.data, dtype=np.uint8).reshape(size[1], size[0], 4)
        return data[:, :, 2::-1]  # BGRX -> RGB


def _check_screen(pixels: np.ndarray, state: dict, path: Path) -> None:
    """No text outside its box; outside the recorded boxes only the background; the focus
    ring visible around the focused control."""
    import pygame

    h, w = pixels.shape[:2]
    assert state["size"] == [w, h]
    covered = np.zeros((h, w), dtype=bool)
    for text in state["texts"]:
        x, y, tw, th = text["rect"]
        bx, by, bw, bh = text["box"]
        assert bx <= x and by <= y and x + tw <= bx + bw and y + th <= by + bh, text
        covered[y : y + th, x : x + tw] = True
    for _role, (x, y, bw, bh) in state["boxes"]:
        covered[max(0, y) : y + bh, max(0, x) : x + bw] = True
    stray = ~covered & np.any(pixels != ui.BACKGROUND, axis=2)
    assert not stray.any(), (path, np.argwhere(stray)[:5])
    ring = np.all(pixels == ui.FOCUS, axis=2)
    focused = next(c for c in state["controls"] if c["id"] == state["focus"])
    x, y, cw, ch = pygame.Rect(focused["rect"]).inflate(40, 40)
    assert ring.sum() > 100 and ring[max(0, y) : y + ch, max(0, x) : x + cw].sum() == ring.sum()
    surface = pygame.Surface((w, h))
    pygame.surfarray.blit_array(surface, pixels.swapaxes(0, 1).copy())
    pygame.image.save(surface, str(path))


def _start(xvfb, tmp_path, size):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update(
        DISPLAY=xvfb.display,
        SDL_VIDEODRIVER="x11",
        SDL_AUDIODRIVER="disk",
        SDL_DISKAUDIOFILE=str(tmp_path / "sound.raw"),
        SDL_VIDEO_WINDOW_POS="0,0",
        HOME=str(home),
        XDG_MUSIC_DIR=str(home / "Music"),
        RELAX_SETTINGS_DIR=str(tmp_path / "settings"),
        RELAX_DATA_DIR=str(tmp_path / "data"),
        RELAX_APP_TRACE=str(tmp_path / "trace.json"),
        LANG="C.UTF-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "audio_engine.app", "--size", f"{size[0]}x{size[1]}"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, Person(xvfb.display, tmp_path / "trace.json"), home


def _texts(state) -> list[str]:
    return [t["text"] for t in state.get("texts", [])]


def test_open_choose_dutch_play_to_the_summary_and_save_for_the_phone(xvfb, tmp_path):
    size = (800, 600)
    proc, person, home = _start(xvfb, tmp_path, size)
    try:
        # 1. Open: the safety text first (the first start), then the library.
        state = person.wait(lambda s: s.get("view") == "safety", what="the safety text")
        assert person.window() is not None, "no window with the class StartupWMClass names"
        person.click("ok")
        state = person.wait(lambda s: s.get("view") == "library", what="the library")
        _check_screen(person.screenshot(size), state, tmp_path / "library-800x600.png")
        # 2. quick-reset; 3. Dutch.
        person.click("item:quick-reset")
        person.wait(lambda s: s.get("view") == "session", what="the session view")
        person.click("lang:nl")
        state = person.wait(
            lambda s: "Korte reset" in _texts(s) and s.get("focus") == "lang:nl", what="Dutch"
        )
        _check_screen(person.screenshot(size), state, tmp_path / "session-800x600.png")
        # 4. Start.
        person.click("start")
        person.wait(
            lambda s: s.get("view") == "playing" or "Even klaarzetten\u2026" in _texts(s),
            what="the start",
        )
        time.sleep(2.0)
        # 5. Skip to the last section; it plays to its end.
        for _ in range(3):
            person.key("Right")
            time.sleep(0.5)
        # 6. The summary, in the session's language.
        state = person.wait(lambda s: s.get("view") == "summary", 120, "the summary")
        texts = _texts(state)
        assert "Goed gedaan." in texts and any(t.startswith("Vandaag: ") for t in texts), texts
        _check_screen(person.screenshot(size), state, tmp_path / "summary-800x600.png")
        # 7. Back to the library (Esc).
        person.key("Escape")
        state = person.wait(lambda s: s.get("view") == "library", what="the library again")
        assert state["focus"] == "item:quick-reset"
        row = next(c for c in state["controls"] if c["id"] == "item:quick-reset")
        assert row["label"] == "Korte reset" or "Quick reset" in row["label"]
        # 8. Save for the phone.
        person.key("Return")
        person.wait(lambda s: s.get("view") == "session", what="the session view again")
        person.click("save")
        state = person.wait(
            lambda s: s.get("view") == "saving" and s.get("save", {}).get("busy") == "False",
            180,
            "the MP3",
        )
        assert "error" not in state["save"], state["save"]
        assert [c["id"] for c in state["controls"]] == ["back", "open-folder"]
        assert state["focus"] == "open-folder"
        mp3 = Path(state["save"]["path"])
        assert "".join(t["text"] for t in state["texts"] if t["role"] == "path") == str(mp3)
        assert mp3 == home / "Music" / "relax" / "quick-reset.nl.mp3"
        _check_screen(person.screenshot(size), state, tmp_path / "saved-800x600.png")
        person.key("Escape")
        person.wait(lambda s: s.get("view") == "session", what="back from saving")
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err
    # The MP3: Dutch chapters, the length of the session.
    from mutagen.id3 import ID3
    from mutagen.mp3 import MP3

    chapters = [f for f in ID3(mp3).getall("CHAP")]
    titles = {ID3(mp3)[f"CHAP:{c.element_id}"].sub_frames["TIT2"].text[0] for c in chapters}
    assert {"Drie langzame ademhalingen", "Schouders los"} <= titles
    assert 40 < MP3(mp3).info.length < 120
    # The play was recorded, with the sound heard through the disk driver.
    from audio_engine import history

    plays = history.plays(path=tmp_path / "data" / history.FILE_NAME)
    assert [(p.session_id, p.language, p.completed) for p in plays] == [("quick-reset", "nl", True)]
    raw = np.fromfile(tmp_path / "sound.raw", dtype="<i2")
    assert raw.size > 44100 * 2 * 5 and np.abs(raw).max() > 1000


def test_the_library_at_1920x1080(xvfb, tmp_path):
    size = (1920, 1080)
    (tmp_path / "settings").mkdir()
    (tmp_path / "settings" / "safety-shown-in-window").write_text("shown\n")
    proc, person, _home = _start(xvfb, tmp_path, size)
    try:
        state = person.wait(lambda s: s.get("view") == "library", what="the library")
        first = state["focus"]
        assert first.startswith("item:"), first  # the first session, not Listen on your phone
        person.key("Tab")
        state = person.wait(lambda s: s.get("focus") not in (None, first), what="Tab")
        _check_screen(person.screenshot(size), state, tmp_path / "library-1920x1080.png")
        assert min(t["size"] for t in state["texts"]) >= 20  # scaled with the window
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_the_app_menu_entry_validates_and_names_the_window_class(tmp_path, monkeypatch):
    validate = shutil.which("desktop-file-validate")
    if validate is None:
        pytest.skip("desktop-file-validate is not installed (scripts/test installs it with apt)")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    done = subprocess.run(
        [sys.executable, "-m", "audio_engine", "install-launcher"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    entry = tmp_path / "share" / "applications" / "relax.desktop"
    checked = subprocess.run([validate, str(entry)], capture_output=True, text=True)
    assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout
    fields = dict(line.split("=", 1) for line in entry.read_text().splitlines() if "=" in line)
    exe = fields["Exec"].split()[0]
    assert os.path.isabs(exe) and os.access(exe, os.X_OK)
    assert fields["StartupWMClass"] == launcher.WM_CLASS
    assert {"ontspanning", "ademhaling", "breathing"} <= set(fields["Keywords"].split(";"))
    import pygame

    for px in (48, 128, 256):
        icon = tmp_path / "share" / "icons" / "hicolor" / f"{px}x{px}" / "apps" / "relax.png"
        image = pygame.image.load(str(icon))
        assert image.get_size() == (px, px)
    # The command works from any folder: it opens the window's module.
    assert (
        subprocess.run(
            [*fields["Exec"].split(), "--help"], capture_output=True, timeout=60, cwd="/"
        ).returncode
        == 0
    )
    done = subprocess.run(
        [sys.executable, "-m", "audio_engine", "install-launcher", "--uninstall"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LANG": "nl_NL.UTF-8"},
    )
    assert done.returncode == 0 and not entry.exists() and not icon.exists()
    assert done.stdout.splitlines()[0] == f"{entry} verwijderd"  # in the interface's language


def test_relax_alone_opens_the_library_where_there_is_a_display_else_prints_help(xvfb, tmp_path):
    env = dict(
        os.environ,
        DISPLAY=xvfb.display,
        SDL_VIDEODRIVER="x11",
        SDL_VIDEO_WINDOW_POS="0,0",
        RELAX_SETTINGS_DIR=str(tmp_path / "settings"),
        RELAX_APP_TRACE=str(tmp_path / "trace.json"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "audio_engine", "--ui-language", "nl"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        person = Person(xvfb.display, tmp_path / "trace.json")
        state = person.wait(lambda s: s.get("view") == "safety", what="the window")
        assert any("arts" in t for t in _texts(state))  # the Dutch safety text: "huisarts"
        person.key("Return")
        state = person.wait(lambda s: s.get("view") == "library", what="the library")
        assert "Geschiedenis" in [c["label"] for c in state["controls"]]
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    env.pop("DISPLAY")
    env["SDL_VIDEODRIVER"] = "dummy"
    done = subprocess.run(
        [sys.executable, "-m", "audio_engine"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "usage: relax" in done.stdout


def test_relax_app_with_no_display_says_so_in_one_line(tmp_path):
    # SDL's own complaint (no XDG_RUNTIME_DIR for Wayland) came before relax's line.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("XDG_RUNTIME_DIR", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")
    }
    env.update(DISPLAY=":97", RELAX_SETTINGS_DIR=str(tmp_path / "settings"))
    done = subprocess.run(
        [sys.executable, "-m", "audio_engine.app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "relax: error: cannot open the library window (the display cannot be reached); "
        "see relax --help"
    ]


def test_the_launchers_first_run_says_once_how_to_add_relax_to_the_app_menu(tmp_path):
    import pty

    env = dict(
        os.environ,
        RELAX_LAUNCHER="scripts/relax",
        RELAX_SETTINGS_DIR=str(tmp_path / "settings"),
        XDG_DATA_HOME=str(tmp_path / "share"),
    )

    def run():
        main, secondary = pty.openpty()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "audio_engine", "schema"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=secondary,
                timeout=60,
            )
            os.close(secondary)
            chunks = []
            while True:
                try:
                    chunk = os.read(main, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return done.returncode, b"".join(chunks).decode()
        finally:
            os.close(main)

    code, err = run()
    assert code == 0
    assert err.strip() == (
        "relax: to add relax to your app menu, run: scripts/relax install-launcher"
    )
    assert run() == (0, "")
    # In the interface's language, like the session it comes before.
    env.update(RELAX_SETTINGS_DIR=str(tmp_path / "settings-nl"), LANG="nl_NL.UTF-8")
    code, err = run()
    assert code == 0
    assert err.strip() == (
        "relax: om relax aan je appmenu toe te voegen: scripts/relax install-launcher"
    )
