"""The library window's views, drawn off-screen (SDL's dummy video driver): every text inside its
box, nothing drawn outside the recorded boxes, controls of at least 44 px, a visible focus; the
keys and clicks that move through it; the library's groups; the remembered choices; the
reminders' settings written as `relax remind` reads them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from audio_engine import history, i18n
from audio_engine.app import model, saving, ui, window

pygame = pytest.importorskip("pygame")

SIZES = [(800, 600), (1920, 1080), (2880, 1800)]  # the last: a HiDPI laptop screen
VIEWS = ["library", "session", "history", "reminders", "safety", "summary", "saving", "phone"]
PHONE_URL = "http://192.168.178.20:8478/" + "k" * 32 + "/feed.xml"


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("RELAX_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("RELAX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("RELAX_SYSTEMCTL", "")
    pygame.display.init()
    pygame.font.init()

    def make(size=(800, 600)):
        screen = pygame.display.set_mode(size)
        return window.App(screen)

    yield make
    pygame.display.quit()
    i18n.set_language(None)


def _show(app, view):
    if view in ("session", "saving", "summary"):
        app.open_item(next(i for i in app.items if i.id == "quick-reset"))
    if view == "summary":
        app.summary = ("nl", "Korte reset", "Vandaag: 1 min geoefend · 2 dagen op rij")
    if view == "saving":
        app.save_state = {"busy": True, "fraction": 0.4, "stage": "loudness", "title": "Quick"}
    if view == "phone":
        from audio_engine.phone import qr

        app.phone_state = {"busy": False, "url": PHONE_URL, "png": qr.png_bytes(PHONE_URL)}
    if view != "session":
        app.go(view)
    app.frame()
    app._move(1)  # the focus on the second control: a ring that is not where it starts
    return app.frame()


def _check_frame(kit):
    w, h = kit.w, kit.h
    surface = pygame.display.get_surface()
    for text in kit.texts:
        x, y, tw, th = text.rect
        bx, by, bw, bh = text.box
        assert bx <= x and by <= y and x + tw <= bx + bw and y + th <= by + bh, text
        assert x >= 0 and y >= 0 and x + tw <= w and y + th <= h, text
        assert text.size_px >= ui.TEXT_MIN_PX
    for control in kit.controls:
        if control.rect is not None:
            cx, cy, cw, ch = control.rect
            assert cw >= ui.TARGET_MIN_PX and ch >= ui.TARGET_MIN_PX, control
            assert cx >= 0 and cy >= 0 and cx + cw <= w and cy + ch <= h, control
    # By pixels: outside every recorded box and text there is only the background.
    pixels = pygame.surfarray.array3d(surface)  # (w, h, 3)
    covered = np.zeros((w, h), dtype=bool)
    for rect in [t.rect for t in kit.texts] + [r for _role, r in kit.boxes]:
        x, y, bw, bh = rect
        covered[max(0, x) : max(0, x + bw), max(0, y) : max(0, y + bh)] = True
    stray = ~covered & np.any(pixels != ui.BACKGROUND, axis=2)
    assert not stray.any(), np.argwhere(stray)[:5]
    # The focus: a ring of its own colour around the focused control, and only there.
    focused = next(c for c in kit.controls if c.id == kit.focus)
    ring = np.all(pixels == ui.FOCUS, axis=2)
    assert ring.sum() > 100, "no visible focus"
    x, y, cw, ch = pygame.Rect(focused.rect).inflate(40, 40)
    inside = ring[max(0, x) : x + cw, max(0, y) : y + ch].sum()
    assert inside == ring.sum()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("language", ["en", "nl"])
def test_every_view_keeps_its_text_in_its_boxes_with_a_visible_focus(app, size, language):
    i18n.set_language(language)
    a = app(size)
    for view in VIEWS:
        kit = _show(a, view)
        assert a.view == view
        _check_frame(kit)
        if language == "nl" and view == "library":
            assert "Geschiedenis" in [c.label for c in kit.controls]
    kit = _show(a, "library")
    titles = [c.label for c in kit.controls if c.id.startswith("item:") and c.rect]
    assert len(titles) >= 4


@pytest.mark.parametrize("language", ["en", "nl"])
def test_a_built_in_sessions_description_is_shown_whole_at_800x600(app, language):
    # Its last sentence is the "not medical advice" note: it was cut with an ellipsis at four
    # lines while the view had room under its buttons.
    i18n.set_language(language)
    a = app()
    for item in [i for i in a.items if i.builtin]:
        a.open_item(item)
        a.language = language
        kit = a.frame()
        lines = [t.text for t in kit.texts if t.role == "description"]
        assert " ".join(lines) == " ".join(item.version(language).description.split()), item.id
        _check_frame(kit)


@pytest.mark.parametrize(
    ("args", "heading", "size_help"),
    [
        (["--help"], "options:", "the window's size in pixels"),
        (["--ui-language", "nl", "--help"], "opties:", "de grootte van het venster in pixels"),
    ],
)
def test_relax_app_help_explains_every_option(capsys, args, heading, size_help):
    try:
        with pytest.raises(SystemExit) as done:
            window.main(args)
    finally:
        i18n.set_language(None)
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert heading in out and size_help in " ".join(out.split())
    for option in ("--size WxH", "--ui-language LANG"):
        line = next(x for x in out.splitlines() if x.strip().startswith(option))
        assert line.strip() != option, f"{option} has no help"


def test_the_apps_name_stays_in_the_dutch_header_at_the_default_size(app):
    # The Dutch buttons are wider: the name was left out at 960x720 rather than made smaller.
    i18n.set_language("nl")
    a = app(window.DEFAULT_SIZE)
    a.back()  # past the safety text
    kit = a.frame()
    assert [t.text for t in kit.texts if t.role == "heading"] == ["relax"]
    _check_frame(kit)


def test_the_safety_text_shows_at_the_first_start_only(app):
    a = app()
    assert a.view == "safety"
    kit = a.frame()
    assert any("doctor" in t.text for t in kit.texts)
    a.back()
    assert a.view == "library"
    assert app().view == "library"


def _key(a, name, mod=0):
    a.handle(pygame.event.Event(pygame.KEYDOWN, key=getattr(pygame, name), mod=mod))
    return a.frame()


def test_keys_move_the_focus_open_a_session_and_go_back(app):
    a = app()
    a.back()  # past the safety text
    a.frame()
    first = a.focus
    # The first session has the focus, not "Listen on your phone" (Enter would serve the feed).
    assert first == "item:" + a.items[0].id
    kit = _key(a, "K_TAB")
    assert a.focus != first
    _key(a, "K_TAB", pygame.KMOD_SHIFT)
    assert a.focus == first
    while not a.focus.startswith("item:"):
        _key(a, "K_DOWN")
    # Down through the whole list: a row below the window is scrolled into view.
    for _ in range(len(a.items) - 1):
        kit = _key(a, "K_DOWN")
    last = next(c for c in kit.controls if c.id == a.focus)
    assert last.rect is not None and last.rect[1] + last.rect[3] <= kit.h
    assert a.scroll > 0
    _key(a, "K_RETURN")
    assert a.view == "session" and a.focus == "start"
    _key(a, "K_ESCAPE")
    assert a.view == "library" and a.focus == last.id


def test_clicks_choose_the_language_and_the_choices_are_remembered(app):
    a = app()
    a.back()
    kit = a.frame()
    row = next(c for c in kit.controls if c.id == "item:quick-reset")
    a.handle(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=pygame.Rect(row.rect).center))
    assert a.view == "session" and a.item.id == "quick-reset"
    for cid in ("lang:nl", "voice:slower", "bg:off"):
        kit = a.frame()
        control = next(c for c in kit.controls if c.id == cid)
        a.handle(
            pygame.event.Event(
                pygame.MOUSEBUTTONDOWN, button=1, pos=pygame.Rect(control.rect).center
            )
        )
    assert a.language == "nl"
    kit = a.frame()
    assert any(t.text == "Korte reset" for t in kit.texts)
    prefs = model.load_prefs()
    assert (prefs.language, prefs.slower, prefs.background) == ("nl", True, False)
    b = app()
    b.open_item(next(i for i in b.items if i.id == "quick-reset"))
    assert b.language == "nl" and b.prefs.slower and not b.prefs.background


def test_the_library_is_grouped_and_marks_what_was_never_played(app, tmp_path, monkeypatch):
    own = tmp_path / "own"
    own.mkdir()
    (own / "my-calm.yaml").write_text(
        "format: 1\nid: my-calm\ntitle: My calm\nlanguage: en\ndescription: Mine.\n"
        "steps:\n  - say: Hello.\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("RELAX_SESSIONS_DIR", str(own))
    start = history.now()
    history.record(history.Play(start, start, "quick-reset", "nl", 60.0, True, 3))
    a = app()
    groups = [i.group for i in a.items]
    assert groups == sorted(groups, key=model.GROUPS.index)
    by_id = {i.id: i for i in a.items}
    assert by_id["my-calm"].group == "your own"
    assert by_id["body-scan"].group == "body scan"
    assert by_id["desk-stretches"].group == "stretches"
    assert by_id["sleep-wind-down"].group == "sleep"
    assert by_id["breathing-478"].group == "breathing"
    assert not by_id["quick-reset"].new and by_id["body-scan"].new
    assert by_id["quick-reset"].languages == ("en", "nl")
    assert model.slower_voice(model_session("quick-reset")).rate_wpm == 119  # 0.85 x 140


def model_session(session_id):
    from audio_engine import pipeline

    return pipeline.load(session_id, "nl")


def test_the_reminders_view_writes_the_settings_and_installs_the_login_unit(app, tmp_path):
    from audio_engine.remind import settings as st

    a = app()
    a.go("reminders")
    kit = a.frame()
    assert any("not running" in t.text for t in kit.texts)

    def click(cid):
        control = next(c for c in a.frame().controls if c.id == cid)
        a.handle(
            pygame.event.Event(
                pygame.MOUSEBUTTONDOWN, button=1, pos=pygame.Rect(control.rect).center
            )
        )

    click("remind:on")
    for _ in range(3):
        click("every:more")  # 45 -> 60, no further
    click("every:less")
    click("hours:on")
    click("from:more")  # 9 -> 10
    click("remind:save")
    # Each line the install says stands on its own under "Saved.", not run together with it.
    said = [t.text for t in a.frame().texts if t.role == "message"]
    assert said[0] == "Saved." and said[1].startswith("wrote"), said
    saved, warnings = st.load(st.settings_path())
    assert not warnings
    assert saved.every_s == 55 * 60 and saved.hours == (10 * 60, 17 * 60)
    unit = tmp_path / "config" / "systemd" / "user" / "relax-remind.service"
    assert unit.exists() and "remind" in unit.read_text()
    click("remind:off")
    click("remind:save")
    assert not unit.exists()


class _CancelWhileWriting(dict):
    """A save state whose `cancel` turns on once the MP3 is being written (the window closed)."""

    def get(self, key, default=None):
        if key == "cancel":
            return dict.get(self, "stage") == "file" and dict.get(self, "fraction", 0) > 0.6
        return dict.get(self, key, default)


def test_closing_the_window_while_saving_leaves_no_partial_file(tmp_path, monkeypatch):
    from audio_engine import pipeline

    music = tmp_path / "Music"
    monkeypatch.setenv("XDG_MUSIC_DIR", str(music))
    path = pipeline.load("quick-reset", "nl").source
    state = _CancelWhileWriting(busy=True)
    saving.work(state, path, False)
    assert state["error"] == "cancelled" and state["busy"] is False
    assert list((music / "relax").iterdir()) == []
    state = {"busy": True}
    saving.work(state, path, True)
    assert "error" not in state and Path(state["path"]).parent == music / "relax"
    assert [p.name for p in (music / "relax").iterdir()] == ["quick-reset.nl.mp3"]
    # "Slower" is the --rate path: in this session every line must fit a set time, so each is
    # spoken as slowly as still fits, between 0.85 of the script's rate and its own.
    session = pipeline.load(str(path))
    slower = model.slower_voice(session)
    rates = pipeline.prepare(session, slower).rates
    assert rates and all(slower.rate_wpm <= r <= 140 for r in rates.values())
    assert min(rates.values()) < 140


def test_a_setting_that_cannot_be_written_is_one_line_in_the_window(app, tmp_path, monkeypatch):
    a = app()
    a.go("history")
    a.frame()
    settings = tmp_path / "settings"
    monkeypatch.setenv("RELAX_SETTINGS_DIR", str(settings / "history-streaks-off" / "x"))
    settings.mkdir(exist_ok=True)
    (settings / "history-streaks-off").write_text("a file where a folder must be")
    _key(a, "K_TAB")  # from Back to Hide streaks
    kit = _key(a, "K_RETURN")
    assert a.focus == "streaks"
    assert "cannot change the setting" in a.message
    assert any(t.role == "message" and "cannot" in t.text for t in kit.texts)
    _check_frame(kit)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="xdg-open is Linux's opener")
def test_no_file_manager_to_open_the_folder_is_said_in_the_interface_language(
    app, tmp_path, monkeypatch
):
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))
    i18n.set_language("nl")
    a = app()
    a.open_item(next(i for i in a.items if i.id == "quick-reset"))
    a.save_state = {"busy": False, "path": str(tmp_path / "quick-reset.nl.mp3"), "title": "Korte"}
    a.go("saving")
    a.frame()
    assert a.focus == "open-folder"
    kit = _key(a, "K_RETURN")
    expected = "De map kon niet worden geopend: xdg-open is niet ge\u00efnstalleerd"
    assert a.message == expected
    assert [t.text for t in kit.texts if t.role == "message"] == [expected]
    _check_frame(kit)


def test_no_audio_device_is_said_for_the_window_not_as_a_command(app, monkeypatch):
    # A person who started relax from the app menu is pointed at the button beside Start, not
    # at `relax export SESSION`.
    monkeypatch.setenv("SDL_AUDIODRIVER", "no-such-device")
    i18n.set_language("nl")
    a = app()
    a.open_item(next(i for i in a.items if i.id == "quick-reset"))
    a.language = "nl"
    a._play()
    kit = a.frame()
    assert a.view == "session"
    assert a.message.startswith("Afspelen lukt niet: geen audio-uitvoerapparaat (")
    assert a.message.endswith(
        "of kies \u201cBewaar voor je telefoon\u201d om op een ander apparaat te luisteren."
    )
    assert "relax export" not in a.message
    said = " ".join(t.text for t in kit.texts if t.role == "message")
    assert said == " ".join(a.message.split())
    _check_frame(kit)


def test_the_reminders_view_says_when_the_next_break_is_while_the_reminder_runs(app, tmp_path):
    import json

    from audio_engine.remind import lock, runner

    data = tmp_path / "data"
    held = lock.InstanceLock(data / lock.LOCK_NAME)
    assert held.acquire()
    try:
        schedule = {"in_working_hours": True, "showing": None, "break_in_s": 1250.0}
        (data / runner.STATUS_NAME).write_text(json.dumps({"schedule": schedule}))
        i18n.set_language("nl")
        a = app()
        a.go("reminders")
        kit = a.frame()
        status = next(t.text for t in kit.texts if t.role == "status")
        assert status == "De herinneringen lopen nu: de volgende pauze na 21 min activiteit."
    finally:
        held.release()
    assert next(t.text for t in a.frame().texts if t.role == "status") == (
        "De herinneringen lopen nu niet."
    )


def test_the_readme_picture_can_be_made_again(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "library.png"
    done = subprocess.run(
        [sys.executable, str(root / "scripts" / "screenshot_library.py"), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    made = pygame.image.load(str(out))
    committed = pygame.image.load(str(root / "docs" / "library.png"))
    assert made.get_size() == committed.get_size() == (960, 720)
    assert "docs/library.png" in (root / "README.md").read_text().split("\n\n")[1]


SHORT_NL = """\
format: 1
id: kort
title: Kort
language: nl
description: Een korte test.
steps:
  - say: Hallo daar.
  - pause: 0.5s
"""


def _refused(url: str) -> bool:
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(url)
    try:
        socket.create_connection((where.hostname, where.port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def _wait_for_the_feed(a, timeout_s=240):
    import time

    deadline = time.monotonic() + timeout_s
    while a.phone_state.get("busy"):
        kit = a.frame()
        assert "bar" in [role for role, _r in kit.boxes] or not a.phoning.get("busy")
        assert time.monotonic() < deadline, "the feed was not made in time"
        time.sleep(0.1)
    return a.frame()


def test_listen_on_your_phone_serves_the_feed_with_a_qr_code_and_stops_on_leaving(
    app, tmp_path, monkeypatch
):
    import urllib.request

    import feedparser
    import zxingcpp

    sessions = tmp_path / "sessions"
    sessions.mkdir()
    (sessions / "kort.nl.yaml").write_text(SHORT_NL)
    monkeypatch.setenv("RELAX_SESSIONS_DIR", str(sessions))
    i18n.set_language("nl")
    a = app()
    a.back()  # past the safety text
    a.items = [i for i in a.items if not i.builtin]  # a short export: the own session only
    a.phone_local, a.phone_port = True, 0  # this computer only, any free port
    kit = a.frame()
    button = next(c for c in kit.controls if c.id == "phone")
    assert button.label == "Luister op je telefoon"
    a.handle(
        pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=pygame.Rect(button.rect).center)
    )
    assert a.view == "phone"
    kit = _wait_for_the_feed(a)
    assert "error" not in a.phone_state, a.phone_state.get("error")
    url = a.phone_state["url"]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/feed.xml")
    # The code on the screen reads back as the link, which is written under it.
    (x, y, w, h) = next(r for role, r in kit.boxes if role == "qr")
    assert w == h >= 200
    pixels = pygame.surfarray.array3d(pygame.display.get_surface())[x : x + w, y : y + h]
    (code,) = zxingcpp.read_barcodes(np.ascontiguousarray(pixels.transpose(1, 0, 2)))
    assert code.text == url
    texts = {t.role: t.text for t in kit.texts}
    assert texts["url"] == url
    assert texts["note"] == "Alleen deze computer kan luisteren."
    # A real GET: the feed lists the session, and its episode is served.
    with urllib.request.urlopen(url, timeout=30) as answer:
        parsed = feedparser.parse(answer.read())
    assert [e.title for e in parsed.entries] == ["Kort"]
    enclosure = parsed.entries[0].enclosures[0]
    with urllib.request.urlopen(enclosure.href, timeout=30) as answer:
        assert answer.headers["Content-Type"] == "audio/mpeg"
        assert len(answer.read()) == int(enclosure.length) > 1000
    # Esc leaves the view: the server is stopped, the port refuses connections.
    _key(a, "K_ESCAPE")
    assert a.view == "library" and a.focus == "phone"
    assert _refused(url)
    # Again (nothing to export), then the window is closed: stopped as well.
    _key(a, "K_RETURN")
    assert a.view == "phone"
    _wait_for_the_feed(a)
    again = a.phone_state["url"]
    with urllib.request.urlopen(again, timeout=30) as answer:
        assert answer.status == 200
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert a.run() == 0
    assert _refused(again)


def test_the_phone_view_says_who_can_listen(app):
    from audio_engine.phone import qr

    i18n.set_language("nl")
    a = app()
    a.back()
    a.go("phone")
    a.phone_state = {"busy": False, "url": PHONE_URL, "png": qr.png_bytes(PHONE_URL)}
    note = next(t.text for t in a.frame().texts if t.role == "note")
    assert note == "Iedereen op dit netwerk die de link heeft, kan luisteren."
    a.phone_state = {"busy": True, "fraction": 0.5}
    kit = a.frame()
    assert [t.text for t in kit.texts if t.role == "status"] == [
        "De sessies voor je telefoon exporteren\u2026"
    ]
    (bar,) = [r for role, r in kit.boxes if role == "bar"]
