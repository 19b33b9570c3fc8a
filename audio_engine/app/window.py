"""The library window's views and event loop.

Entry point: `main(argv) -> int` opens the window (`--size WxH`, `--ui-language LANG`) and runs
until it is closed. `App` holds the state; each view is a `_draw_<view>(kit)` method that draws
one frame and registers its controls, and the loop turns keys and clicks into their actions:

- Tab / Shift+Tab and the arrow keys move the focus (a warm ring), Enter or Space activates,
  Esc goes back; the mouse clicks, its wheel scrolls.
- library -> session (language, voice speed, background; Start, Save for your phone) ->
  the pacer in this window -> summary -> library; Listen on your phone (the library as
  `relax phone`'s podcast feed, served while that view is open, with its QR code), History,
  Reminders and Safety from the library's header. The safety text is shown once, at the first start.

With `RELAX_APP_TRACE=FILE` each new frame's controls, texts and boxes are written to FILE as
JSON (what the tests drive the window by, through real X input).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import threading
from pathlib import Path

from audio_engine import history, i18n
from audio_engine.app import model, phoning, reminders, saving, ui
from audio_engine.app.launcher import WM_CLASS
from audio_engine.errors import AudioDeviceError, RelaxError
from audio_engine.i18n import _

DEFAULT_SIZE = (960, 720)
FPS = 30  # while something moves (the export's progress bar)
IDLE_REDRAW_MS = 500
LANGUAGE_NAMES = {"en": "English", "nl": "Nederlands"}
EVERY_MIN, EVERY_MAX, EVERY_STEP = 30, 60, 5
OWN_MESSAGE = (
    "session",
    "saving",
    "reminders",
    "phone",
)  # views that show `message` in their own place
SAFETY_SHOWN = "safety-shown-in-window"  # marker: the window showed the safety text once
# Where Esc goes from each view.
PARENT = {
    "session": "library",
    "summary": "library",
    "safety": "library",
    "history": "library",
    "reminders": "library",
    "saving": "session",
    "phone": "library",
}


def _group_name(group: str) -> str:
    names = {
        "breathing": _("Breathing"),
        "body scan": _("Body scan"),
        "stretches": _("Stretches"),
        "sleep": _("Sleep"),
        "your own": _("Your own"),
    }
    return names[group]


class App:
    def __init__(self, screen):
        self.screen = screen
        self.view = "library"
        self.focus: str | None = None
        self.controls: list[ui.Control] = []
        self.prefs = model.load_prefs()
        self.items = self._load_items()
        self.item: model.Item | None = None
        self.language: str | None = None
        self.scroll = 0
        self.text_scroll = 0
        self.pending = None  # an action to run outside drawing (playing)
        self.message = ""
        self.summary: tuple[str, str, str] | None = None  # language, title, text
        self.save_state: dict = {}
        self.saving: dict = {}
        self.phoning: dict = {}
        self.phone_state: dict = {}  # the feed served while the phone view is open
        self.phone_local = False  # serve the feed to this computer only (127.0.0.1)
        self.phone_port: int | None = None  # None: the port `relax phone` uses; 0: any free one
        self._qr: tuple[str, object] | None = None  # (url, its QR code as a pygame surface)
        self.remind_form: dict = {}
        self.running = True
        self._trace = os.environ.get("RELAX_APP_TRACE")
        self._traced = None
        if _first_time(SAFETY_SHOWN):  # the first start: the safety text, once
            self.go("safety")

    # ---- data -------------------------------------------------------------------------------

    def _load_items(self) -> list[model.Item]:
        try:
            played = {p.session_id for p in history.plays()}
        except history.HistoryError:
            played = None
        return model.load_library(played_ids=played)

    # ---- navigation -------------------------------------------------------------------------

    def go(self, view: str, focus: str | None = None) -> None:
        self.view = view
        self.focus = focus
        self.text_scroll = 0
        self.message = ""
        if view == "reminders":
            self.remind_form = reminders.load_form()

    def back(self) -> None:
        """Esc and the Back buttons: up to the view this one was opened from."""
        if self.view == "library":
            return
        if self.view == "saving" and self.save_state.get("busy"):
            return  # the file is being written; Back comes when it is done
        target = PARENT[self.view]
        focus = None
        if self.view == "phone":
            self._stop_phone()
            focus = "phone"
        elif target == "library" and self.item is not None:
            focus = f"item:{self.item.id}"
        elif target == "session":
            focus = "start"
        self.view, self.focus = target, focus
        self.message = ""

    def open_item(self, item: model.Item) -> None:
        self.item = item
        if self.prefs.language and self.prefs.language in item.languages:
            self.language = self.prefs.language
        else:
            self.language = item.version(None).language
        self.go("session", "start")

    def choose_language(self, language: str) -> None:
        self.language = language
        self.prefs.language = language
        model.save_prefs(self.prefs)

    def set_pref(self, **changes) -> None:
        for key, value in changes.items():
            setattr(self.prefs, key, value)
        model.save_prefs(self.prefs)

    # ---- the loop ---------------------------------------------------------------------------

    def run(self) -> int:
        import pygame

        clock = pygame.time.Clock()
        drawn = False  # the frame on screen shows the state as it is
        while self.running:
            events = pygame.event.get()
            still = drawn and self.saving == self.save_state  # the export's progress is shown
            still = still and self.phoning == self.phone_state
            busy = self.save_state.get("busy") or self.phone_state.get("busy")
            if not events and still and not busy:
                # Nothing moves: sleep until something happens (a key, the mouse, an expose);
                # only the reminder's status changes by itself, and is looked at again.
                event = pygame.event.wait(IDLE_REDRAW_MS)
                if event.type == pygame.NOEVENT and self.view != "reminders":
                    continue
                events = [] if event.type == pygame.NOEVENT else [event]
            for event in events:
                self.handle(event)
            if self.pending is not None:
                work, self.pending = self.pending, None
                work()
                pygame.event.clear()
                drawn = False
                continue
            self.frame()
            drawn = True
            clock.tick(FPS)
        self._stop_saving()
        self._stop_phone()
        return 0

    def _stop_saving(self) -> None:
        thread = self.save_state.get("thread")
        if thread is not None and thread.is_alive():
            self.save_state["cancel"] = True
            thread.join(30)

    def frame(self) -> ui.Kit:
        import pygame

        surface = pygame.display.get_surface()
        # One look at the export's progress per frame: what is drawn is what the trace says.
        self.saving = dict(self.save_state)
        self.phoning = dict(self.phone_state)
        if self.view == "saving" and self.saving.get("path") and not self.saving.get("focused"):
            self.save_state["focused"] = True  # done: the next thing to do has the focus
            self.focus = "open-folder"
        kit = ui.Kit(surface, self.focus)
        language = self.summary[0] if self.view == "summary" and self.summary else None
        self._draw(kit, language)
        ids = [c.id for c in kit.controls]
        if kit.controls and self.focus not in ids:
            # The library starts on its first session, not on the header's "Listen on your
            # phone" (Enter there would export and serve the whole library).
            items = [i for i in ids if i.startswith("item:")] if self.view == "library" else []
            self.focus = (items or ids)[0]
            kit = ui.Kit(surface, self.focus)  # draw again with the focus ring
            self._draw(kit, language)
        self.controls = kit.controls
        pygame.display.flip()
        self._write_trace(kit)
        return kit

    def _draw(self, kit: ui.Kit, language: str | None) -> None:
        with i18n.using(language) if language else contextlib.nullcontext():
            getattr(self, f"_draw_{self.view}")(kit)
        if self.message and self.view not in OWN_MESSAGE:
            # At the bottom, over whatever is there: the message matters more than a last row.
            line_h = int(kit.unit * 1.6)
            box = (0, kit.h - line_h - kit.pad, kit.w, line_h + kit.pad)
            kit.panel("message", box, ui.PANEL, radius=1)
            kit.text(
                "message",
                self.message,
                (kit.pad * 2, box[1] + kit.pad // 2, kit.w - kit.pad * 4, line_h),
                int(kit.unit * 0.85),
                ui.NEW,
            )

    def _write_trace(self, kit: ui.Kit) -> None:
        if not self._trace:
            return
        data = {
            "view": self.view,
            "focus": self.focus,
            "size": [kit.w, kit.h],
            "controls": [{"id": c.id, "rect": c.rect, "label": c.label} for c in kit.controls],
            "texts": [
                {"role": t.role, "text": t.text, "rect": t.rect, "box": t.box, "size": t.size_px}
                for t in kit.texts
            ],
            "boxes": [[role, list(rect)] for role, rect in kit.boxes],
            "message": self.message,
            "save": {k: str(v) for k, v in self.saving.items() if k != "thread"},
            "phone": {
                k: str(self.phoning[k]) for k in ("busy", "url", "error") if k in self.phoning
            },
        }
        text = json.dumps(data, ensure_ascii=False)
        if text == self._traced:
            return
        self._traced = text
        tmp = self._trace + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self._trace)

    def handle(self, event) -> None:
        import pygame

        if event.type == pygame.QUIT:
            self.running = False
        elif event.type == pygame.KEYDOWN:
            self._key(event)
        elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            for control in self.controls:
                if control.rect and pygame.Rect(control.rect).collidepoint(event.pos):
                    self.focus = control.id
                    self._activate(control)
                    return
        elif event.type == pygame.MOUSEWHEEL:
            self._scroll_by(-event.y)

    def _key(self, event) -> None:
        import pygame

        key = event.key
        if key == pygame.K_ESCAPE:
            self.back()
        elif key in (pygame.K_RETURN, pygame.K_KP_ENTER, pygame.K_SPACE):
            control = next((c for c in self.controls if c.id == self.focus), None)
            if control is not None:
                self._activate(control)
        elif self.view == "safety" and key in (pygame.K_UP, pygame.K_DOWN):
            self._scroll_by(-1 if key == pygame.K_UP else 1)
        elif key == pygame.K_PAGEDOWN or key == pygame.K_PAGEUP:
            self._scroll_by(5 if key == pygame.K_PAGEDOWN else -5)
        elif key in (pygame.K_TAB, pygame.K_DOWN, pygame.K_RIGHT, pygame.K_UP, pygame.K_LEFT):
            backwards = key in (pygame.K_UP, pygame.K_LEFT) or (
                key == pygame.K_TAB and event.mod & pygame.KMOD_SHIFT
            )
            self._move(-1 if backwards else 1)

    def _activate(self, control: ui.Control) -> None:
        # A setting that cannot be written, a history that cannot be read: one line in the
        # window, never a traceback.
        try:
            control.action()
        except RelaxError as exc:
            self.message = str(exc)

    def _move(self, step: int) -> None:
        ids = [c.id for c in self.controls]
        if not ids:
            return
        i = ids.index(self.focus) if self.focus in ids else -step
        self.focus = ids[(i + step) % len(ids)]

    def _scroll_by(self, lines: int) -> None:
        if self.view == "library":
            self.scroll = max(0, self.scroll + lines * 40)
        elif self.view == "safety":
            self.text_scroll = max(0, self.text_scroll + lines)

    # ---- header -----------------------------------------------------------------------------

    def _header(self, kit: ui.Kit, title: str, back: bool = True) -> int:
        """The top row: Back (or the app's name) and the title; returns the y below it."""
        pad, y = kit.pad, kit.pad
        x = pad * 2
        if back:
            label = "\u2190 " + _("Back")
            width = kit.button_width(label)
            kit.button("back", label, (x, y, width, kit.target), self.back)
            x += width + pad * 2
        kit.text(
            "heading",
            title,
            (x, y, kit.w - x - pad * 2, kit.target),
            int(kit.unit * 1.3),
            bold=True,
        )
        return y + kit.target + pad

    # ---- library ----------------------------------------------------------------------------

    def _draw_library(self, kit: ui.Kit) -> None:
        pad, unit = kit.pad, kit.unit
        y = pad
        # Header: the name, then History, Reminders, Safety on the right.
        labels = [
            ("phone", _("Listen on your phone")),
            ("history", _("History")),
            ("reminders", _("Reminders")),
            ("safety", _("Safety")),
        ]
        widths = [kit.button_width(label) for _id, label in labels]
        x = kit.w - pad * 2 - sum(widths) - pad * (len(widths) - 1)
        name_w = max(0, x - pad * 4)
        # The name whole, a little smaller where the buttons leave less room (the Dutch labels
        # are longer), or not at all.
        for size in (int(unit * 1.4), int(unit * 1.2), unit):
            if ui.font(size, bold=True).size("relax")[0] <= name_w:
                kit.text("heading", "relax", (pad * 2, y, name_w, kit.target), size, bold=True)
                break
        header_controls = []
        for (view, label), width in zip(labels, widths, strict=True):
            header_controls.append((view, label, (x, y, width, kit.target)))
            x += width + pad
        top = y + kit.target + pad * 2
        bottom = kit.h - pad
        left, width = pad * 2, kit.w - pad * 4 - max(6, unit // 3) - pad

        row_h = max(kit.target, int(unit * 3.6))
        head_h = int(unit * 2.0)
        rows = []  # (kind, y in the list, height, data)
        at = 0
        for group in model.GROUPS:
            members = [i for i in self.items if i.group == group]
            if not members:
                continue
            rows.append(("group", at, head_h, group))
            at += head_h
            for item in members:
                rows.append(("item", at, row_h, item))
                at += row_h + pad // 2
        total = at
        room = bottom - top
        self.scroll = max(0, min(self.scroll, max(0, total - room)))
        focused = next(
            (r for r in rows if r[0] == "item" and f"item:{r[3].id}" == self.focus), None
        )
        if focused is not None:
            # The focused row in view (with its group's heading when it is the first).
            if focused[1] - self.scroll < 0:
                self.scroll = max(0, focused[1] - head_h)
            elif focused[1] + focused[2] - self.scroll > room:
                self.scroll = focused[1] + focused[2] - room

        for view, label, rect in header_controls:
            action = self._listen if view == "phone" else (lambda v=view: self.go(v))
            kit.button(view, label, rect, action)
        shown = [
            top <= top + ry - self.scroll and top + ry - self.scroll + rh <= bottom
            for _kind, ry, rh, _data in rows
        ]
        for n, (kind, ry, rh, data) in enumerate(rows):
            y = top + ry - self.scroll
            visible = shown[n]
            if kind == "group":
                if visible and n + 1 < len(rows) and shown[n + 1]:  # not alone at the bottom
                    kit.text(
                        "group",
                        _group_name(data),
                        (left, y, width, rh),
                        int(unit * 0.9),
                        ui.MUTED,
                        bold=True,
                    )
                continue
            item = data
            cid = f"item:{item.id}"
            if not visible:
                kit.controls.append(ui.Control(cid, None, lambda i=item: self.open_item(i)))
                continue
            self._item_row(kit, item, (left, y, width, rh), cid)
        if total > room:  # a scroll bar: where this part of the list is
            bar_x = kit.w - pad * 2 - max(6, unit // 3)
            track = (bar_x, top, max(6, unit // 3), room)
            kit.panel("scroll", track, ui.TRACK, radius=3)
            thumb_h = max(kit.target // 2, room * room // total)
            thumb_y = top + (room - thumb_h) * self.scroll // max(1, total - room)
            kit.panel("scroll", (bar_x, thumb_y, track[2], thumb_h), ui.MUTED, radius=3)

    def _item_row(self, kit: ui.Kit, item: model.Item, rect, cid: str) -> None:
        import pygame

        pad, unit = kit.pad, kit.unit
        x, y, w, h = rect
        version = item.version(i18n.language())
        r = pygame.Rect(rect)
        pygame.draw.rect(
            kit.surface, ui.PANEL if cid != self.focus else ui.BUTTON, r, border_radius=pad
        )
        kit.boxes.append(("row", tuple(r)))
        kit.controls.append(ui.Control(cid, tuple(r), lambda: self.open_item(item), version.title))
        if cid == self.focus:
            kit.ring(r)
        inner_x, inner_w = x + pad * 2, w - pad * 4
        line_h = (h - pad) // 2
        meta = "  ".join(
            [
                model.length_text(version.length_s, version.estimated),
                " ".join(lang.upper() for lang in item.languages),
            ]
        )
        meta_w = ui.font(int(unit * 0.85)).size(meta)[0] + pad
        title_w = inner_w - meta_w - pad
        used = kit.text(
            "title", version.title, (inner_x, y + pad // 2, title_w, line_h), unit, bold=True
        )
        if item.new:
            badge = _("new")
            room = title_w - used - pad
            if room > ui.font(int(unit * 0.75)).size(badge)[0]:
                kit.text(
                    "new",
                    badge,
                    (inner_x + used + pad, y + pad // 2, room, line_h),
                    int(unit * 0.75),
                    ui.NEW,
                    bold=True,
                )
        kit.text(
            "meta",
            meta,
            (inner_x + inner_w - meta_w, y + pad // 2, meta_w, line_h),
            int(unit * 0.85),
            ui.MUTED,
            align="right",
        )
        kit.text(
            "description",
            version.description,
            (inner_x, y + pad // 2 + line_h, inner_w, line_h),
            int(unit * 0.8),
            ui.MUTED,
        )

    # ---- one session ------------------------------------------------------------------------

    def _draw_session(self, kit: ui.Kit) -> None:
        item = self.item
        version = item.version(self.language)
        pad, unit = kit.pad, kit.unit
        y = self._header(kit, version.title)
        left, width = pad * 2, kit.w - pad * 4
        meta = f"{model.length_text(version.length_s, version.estimated)} \u00b7 " + _group_name(
            item.group
        )
        kit.text("meta", meta, (left, y, width, int(unit * 1.5)), int(unit * 0.9), ui.MUTED)
        y += int(unit * 1.5) + pad
        # The description takes the room the controls under it leave (at least 4 lines; two
        # lines kept for a message under the buttons), so it is cut only when it must be.
        below = 3 * (kit.target + pad * 2) + pad + kit.target + pad + int(unit * 1.3) * 2
        room = max(int(unit * 1.3) * 4, kit.h - y - pad * 2 - below)
        used = kit.paragraph("description", version.description, (left, y, width, room), unit)
        y += used + pad * 2
        label_w = min(int(unit * 10), width // 3)

        def option_row(label, options, y):
            kit.text("label", label, (left, y, label_w - pad, kit.target), unit, ui.MUTED)
            x = left + label_w
            for cid, text, chosen, action in options:
                bw = kit.button_width(text)
                kit.button(cid, text, (x, y, bw, kit.target), action, chosen=chosen)
                x += bw + pad
            return y + kit.target + pad * 2

        y = option_row(
            _("Language"),
            [
                (
                    f"lang:{lang}",
                    LANGUAGE_NAMES.get(lang, lang),
                    lang == self.language,
                    lambda lang=lang: self.choose_language(lang),
                )
                for lang in item.languages
            ],
            y,
        )
        y = option_row(
            _("Voice"),
            [
                (
                    "voice:normal",
                    _("Normal"),
                    not self.prefs.slower,
                    lambda: self.set_pref(slower=False),
                ),
                (
                    "voice:slower",
                    _("Slower"),
                    self.prefs.slower,
                    lambda: self.set_pref(slower=True),
                ),
            ],
            y,
        )
        y = option_row(
            _("Background"),
            [
                (
                    "bg:on",
                    _("On"),
                    self.prefs.background,
                    lambda: self.set_pref(background=True),
                ),
                (
                    "bg:off",
                    _("Off"),
                    not self.prefs.background,
                    lambda: self.set_pref(background=False),
                ),
            ],
            y,
        )
        y += pad
        start = _("Start")
        sw = max(kit.button_width(start, bold=True), int(unit * 8))
        kit.button("start", start, (left, y, sw, kit.target), self._start, primary=True)
        save = _("Save for your phone")
        kit.button(
            "save", save, (left + sw + pad * 2, y, kit.button_width(save), kit.target), self._save
        )
        if self.message:
            kit.paragraph(
                "message",
                self.message,
                (left, y + kit.target + pad, width, kit.h - y - kit.target - 2 * pad),
                unit,
                ui.NEW,
            )

    # ---- playing ----------------------------------------------------------------------------

    def _start(self) -> None:
        self.pending = self._play

    def _busy_frame(self, text: str) -> None:
        import pygame

        kit = ui.Kit(pygame.display.get_surface(), None)
        kit.text(
            "status", text, (0, 0, kit.w, kit.h), int(kit.unit * 1.2), ui.MUTED, align="center"
        )
        pygame.display.flip()
        self._write_trace(kit)

    def _play(self) -> None:
        import pygame

        from audio_engine import pipeline, player

        version = self.item.version(self.language)
        heard: list[tuple[int, int]] = []
        result = None
        try:
            session = pipeline.load(str(version.path))
            voice = model.slower_voice(session) if self.prefs.slower else None
            with i18n.using(session.language):
                self._busy_frame(_("Getting ready\u2026"))
            growing = pipeline.Growing(session, voice)
            try:
                gain = growing.gain()
                player.open_mixer(growing.timeline.sample_rate)
                recording = history.start(session.id, session.language)
                pygame.display.set_caption(f"{session.title} - relax")
                try:
                    result = player.play(
                        growing,
                        gain,
                        surface=pygame.display.get_surface(),
                        heard=heard,
                        stdin=io.StringIO(),
                        background=self.prefs.background,
                    )
                finally:
                    played = None
                    if recording is not None:
                        played = recording.finish(growing.timeline, heard, result == "end")
                if growing.error is not None:
                    raise growing.error
            finally:
                growing.close()
        except AudioDeviceError as exc:
            # Said for the window: no command to type, the button beside Start named instead.
            self.message = _(
                "Cannot play: {problem}. Connect or turn on speakers or headphones, or use "
                "\u201c{save}\u201d to listen on another device."
            ).format(problem=str(exc).split(";")[0], save=_("Save for your phone"))
            self.view = "session"
            return
        except RelaxError as exc:
            self.message = str(exc)
            self.view = "session"
            return
        finally:
            pygame.display.set_caption("relax")
        if result == "closed":
            self.running = False
            return
        self.items = self._load_items()
        self.item = next((i for i in self.items if i.id == self.item.id), self.item)
        if result != "end":
            self.view, self.focus = "session", "start"
            return
        with i18n.using(session.language):
            text = history.end_text_for(played) if played is not None else ""
            if not history.summary_on():
                text = ""
        self.summary = (session.language, session.title, text or "")
        self.go("summary", "library")

    def _draw_summary(self, kit: ui.Kit) -> None:
        _language, title, text = self.summary
        pad, unit = kit.pad, kit.unit
        w, h = kit.w, kit.h
        y = int(h * 0.22)
        kit.text(
            "title",
            title,
            (pad * 2, y, w - pad * 4, int(unit * 1.6)),
            unit,
            ui.MUTED,
            align="center",
        )
        y += int(unit * 1.6) + pad
        kit.text(
            "heading",
            _("Well done."),
            (pad * 2, y, w - pad * 4, int(unit * 2.6)),
            int(unit * 2),
            bold=True,
            align="center",
        )
        y += int(unit * 2.6) + pad * 2
        if text:
            kit.text(
                "summary",
                text,
                (pad * 2, y, w - pad * 4, int(unit * 1.8)),
                int(unit * 1.1),
                align="center",
            )
        y += int(unit * 1.8) + pad * 4
        label = _("Back to the library")
        bw = kit.button_width(label, bold=True)
        kit.button(
            "library", label, ((w - bw) // 2, y, bw, kit.target), self._to_library, primary=True
        )

    def _to_library(self) -> None:
        self.view = "library"
        self.focus = f"item:{self.item.id}" if self.item else None

    # ---- save for your phone ----------------------------------------------------------------

    def _save(self) -> None:
        version = self.item.version(self.language)
        state = {"busy": True, "fraction": 0.0, "stage": "speech", "title": version.title}
        self.save_state = state
        slower = self.prefs.slower
        thread = threading.Thread(
            target=saving.work, args=(state, version.path, slower), daemon=True
        )
        state["thread"] = thread
        self.go("saving")
        thread.start()

    def _draw_saving(self, kit: ui.Kit) -> None:
        state = self.saving
        pad, unit = kit.pad, kit.unit
        y = self._header(kit, _("Save for your phone"))
        left, width = pad * 2, kit.w - pad * 4
        kit.text("title", state.get("title", ""), (left, y, width, int(unit * 1.6)), unit, ui.MUTED)
        y += int(unit * 1.6) + pad * 2
        if state.get("busy"):
            stage = {
                "speech": _("Making the speech\u2026"),
                "loudness": _("Measuring the loudness\u2026"),
                "file": _("Writing the MP3 file\u2026"),
            }[state.get("stage", "speech")]
            kit.text("status", stage, (left, y, width, int(unit * 1.6)), unit)
            y += int(unit * 1.6) + pad
            kit.bar((left, y, width, max(8, unit // 2)), state.get("fraction", 0.0))
            return
        if state.get("error"):
            kit.paragraph("error", state["error"], (left, y, width, unit * 6), unit, ui.NEW)
            return
        path = Path(state["path"])
        kit.text(
            "status",
            _("Saved, with chapters, in your music folder:"),
            (left, y, width, int(unit * 1.6)),
            unit,
        )
        y += int(unit * 1.6) + pad
        used = kit.paragraph(
            "path", str(path), (left, y, width, int(unit * 1.3) * 3), unit, ui.MUTED
        )
        y += used + pad * 3
        label = _("Open folder")
        kit.button(
            "open-folder",
            label,
            (left, y, kit.button_width(label), kit.target),
            lambda: self._open(path.parent),
            primary=True,
        )
        if self.message:
            kit.paragraph(
                "message", self.message, (left, y + kit.target + pad, width, unit * 4), unit, ui.NEW
            )

    def _open(self, folder: Path) -> None:
        try:
            saving.open_folder(folder)
        except FileNotFoundError as exc:  # no file manager opener installed
            reason = _("{program} is not installed").format(program=exc.filename or "xdg-open")
            self.message = _("Could not open the folder: {reason}").format(reason=reason)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            self.message = _("Could not open the folder: {reason}").format(reason=reason)

    # ---- listen on your phone ---------------------------------------------------------------

    def _listen(self) -> None:
        """The library in the interface's language made into the feed, then served."""
        language = i18n.language()
        scripts = [
            v.path
            for item in self.items
            for v in item.versions
            if model.primary_language(v.language) == model.primary_language(language)
        ]
        self._stop_phone()
        state = {"busy": True, "fraction": 0.0, "lock": threading.Lock()}
        self.phone_state = state
        thread = threading.Thread(
            target=phoning.work,
            args=(state, scripts, language, self.phone_local, self.phone_port),
            daemon=True,
        )
        state["thread"] = thread
        self.go("phone", "back")
        thread.start()

    def _stop_phone(self) -> None:
        if self.phone_state:
            phoning.stop(self.phone_state)

    def _qr_image(self, url: str, png: bytes):
        import pygame

        if self._qr is None or self._qr[0] != url:
            self._qr = (url, pygame.image.load(io.BytesIO(png), "qr.png").convert())
        return self._qr[1]

    def _draw_phone(self, kit: ui.Kit) -> None:
        import pygame

        state = self.phoning
        pad, unit = kit.pad, kit.unit
        y = self._header(kit, _("Listen on your phone"))
        left, width = pad * 2, kit.w - pad * 4
        line_h = int(unit * 1.5)
        if state.get("busy"):
            kit.text(
                "status",
                _("Exporting the sessions for your phone\u2026"),
                (left, y, width, int(unit * 1.6)),
                unit,
            )
            y += int(unit * 1.6) + pad
            kit.bar((left, y, width, max(8, unit // 2)), state.get("fraction", 0.0))
            return
        if state.get("error") or not state.get("url"):
            kit.paragraph("error", state.get("error", ""), (left, y, width, unit * 6), unit, ui.NEW)
            return
        url = state["url"]
        small = int(unit * 0.85)
        used = kit.paragraph(
            "status",
            _("In a podcast app on your phone, scan this code or add the link under it:"),
            (left, y, width, ui.font(small).get_linesize() * 2),
            small,
        )
        y += used + pad
        if state.get("host_found", True) and not url.startswith("http://127."):
            note = _("Anyone on this network who has the link can listen.")
        elif state.get("host_found", True):
            note = _("Only this computer can listen.")
        else:
            note = _("No local network found; only this computer can listen.")
        # The code as large as the room under the text allows, whole pixels per module (sharp).
        image = self._qr_image(url, state["png"])
        modules = image.get_width() // qr_scale()
        room = min(width, kit.h - y - 2 * line_h - 3 * pad)
        side = max(modules, room // modules * modules)
        scaled = pygame.transform.scale(image, (side, side))
        rect = pygame.Rect(0, y, side, side)
        rect.centerx = kit.w // 2
        kit.surface.blit(scaled, rect)
        kit.boxes.append(("qr", tuple(rect)))
        y += side + pad
        kit.text("url", url, (left, y, width, line_h), small, align="center")
        y += line_h
        kit.text("note", note, (left, y, width, line_h), small, ui.MUTED, align="center")

    # ---- history ----------------------------------------------------------------------------

    def _draw_history(self, kit: ui.Kit) -> None:
        pad, unit = kit.pad, kit.unit
        y = self._header(kit, _("History"))
        left, width = pad * 2, kit.w - pad * 4
        try:
            day_ends = history.day_ends_h()
            played = history.plays(day_ends=day_ends)
        except history.HistoryError as exc:
            kit.paragraph("error", str(exc), (left, y, width, unit * 6), unit, ui.NEW)
            return
        today = history.today(day_ends=day_ends)
        days = history.minutes_per_day(played, today, 14, day_ends)
        show_streaks = history.streaks_on()
        # 14 bars: minutes per day, today on the right.
        kit.text(
            "label",
            _("Minutes per day, the last 14 days"),
            (left, y, width, unit * 2),
            unit,
            ui.MUTED,
        )
        y += unit * 2
        chart_h = max(unit * 4, int(kit.h * 0.22))
        label_h = int(unit * 1.4)
        slot = width // 14
        most = max((s for _d, s in days), default=0.0)
        scale = max(most, 60.0)
        for i, (day, seconds) in enumerate(days):
            x = left + i * slot
            bar_h = int((chart_h - label_h) * seconds / scale)
            bx, bw = x + slot // 6, max(4, slot - slot // 3)
            kit.panel("track", (bx, y, bw, chart_h - label_h), ui.TRACK, radius=3)
            if bar_h > 0:
                kit.panel("day", (bx, y + chart_h - label_h - bar_h, bw, bar_h), ui.BAR, radius=3)
            kit.text(
                "day",
                str(day.day),
                (x, y + chart_h - label_h, slot, label_h),
                int(unit * 0.75),
                ui.TEXT if day == today else ui.MUTED,
                align="center",
            )
        y += chart_h + pad * 2
        if show_streaks:
            streaks = history.summary(played, today, day_ends).streaks
            line = _("Streak: {current} · longest: {longest}").format(
                current=i18n.ngettext("{n} day", "{n} days", streaks.current_days).format(
                    n=streaks.current_days
                ),
                longest=i18n.ngettext("{n} day", "{n} days", streaks.longest_days).format(
                    n=streaks.longest_days
                ),
            )
            kit.text("streak", line, (left, y, width, int(unit * 1.6)), unit)
            y += int(unit * 1.6) + pad
        label = _("Hide streaks") if show_streaks else _("Show streaks")
        kit.button(
            "streaks",
            label,
            (left, y, kit.button_width(label), kit.target),
            lambda: history.set_streaks(not show_streaks),
        )
        y += kit.target + pad * 2
        titles = {i.id: i.version(i18n.language()).title for i in self.items}
        kit.text("label", _("Last sessions"), (left, y, width, int(unit * 1.6)), unit, ui.MUTED)
        y += int(unit * 1.6)
        line_h = int(unit * 1.5)
        if not played:
            kit.text("empty", _("No sessions yet."), (left, y, width, line_h), unit)
        for play in reversed(played[-max(0, (kit.h - y - pad) // line_h) :]):
            when = play.started
            line = f"{history.weekday_name(when.date())[:2]} {when:%d-%m %H:%M}   {titles.get(play.session_id, play.session_id)}   {history.minutes_text(play.listened_s)}"
            kit.text("play", line, (left, y, width, line_h), int(unit * 0.9))
            y += line_h

    # ---- reminders --------------------------------------------------------------------------

    def _draw_reminders(self, kit: ui.Kit) -> None:
        form = self.remind_form
        pad, unit = kit.pad, kit.unit
        y = self._header(kit, _("Reminders"))
        left, width = pad * 2, kit.w - pad * 4
        kit.text(
            "status", reminders.status_text(), (left, y, width, int(unit * 1.5)), unit, ui.MUTED
        )
        y += int(unit * 1.5) + pad
        label_w = min(int(unit * 11), width // 3)

        def set_form(**changes):
            form.update(changes)

        def row(label, y):
            kit.text("label", label, (left, y, label_w - pad, kit.target), unit, ui.MUTED)
            return left + label_w

        x = row(_("Break reminders"), y)
        for cid, text, value in (("remind:on", _("On"), True), ("remind:off", _("Off"), False)):
            bw = kit.button_width(text)
            kit.button(
                cid,
                text,
                (x, y, bw, kit.target),
                lambda v=value: set_form(on=v),
                chosen=form["on"] == value,
            )
            x += bw + pad
        y += kit.target + pad * 2

        def stepper(cid, label, value, low, high, step, key, y, fmt):
            x = row(label, y)
            kit.button(
                f"{cid}:less",
                "\u2212",
                (x, y, kit.target, kit.target),
                lambda: set_form(**{key: max(low, form[key] - step)}),
            )
            x += kit.target + pad
            vw = int(unit * 5)
            kit.text("value", fmt(value), (x, y, vw, kit.target), unit, align="center")
            x += vw + pad
            kit.button(
                f"{cid}:more",
                "+",
                (x, y, kit.target, kit.target),
                lambda: set_form(**{key: min(high, form[key] + step)}),
            )
            return y + kit.target + pad * 2

        y = stepper(
            "every",
            _("Every"),
            form["every"],
            EVERY_MIN,
            EVERY_MAX,
            EVERY_STEP,
            "every",
            y,
            lambda v: _("{minutes} min").format(minutes=v),
        )
        x = row(_("Working hours"), y)
        for cid, text, value in (
            ("hours:on", _("Only then"), True),
            ("hours:off", _("All day"), False),
        ):
            bw = kit.button_width(text)
            kit.button(
                cid,
                text,
                (x, y, bw, kit.target),
                lambda v=value: set_form(hours_on=v),
                chosen=form["hours_on"] == value,
            )
            x += bw + pad
        y += kit.target + pad * 2
        if form["hours_on"]:
            y = stepper(
                "from",
                _("From"),
                form["start"],
                0,
                form["end"] - 1,
                1,
                "start",
                y,
                lambda v: f"{v:02d}:00",
            )
            y = stepper(
                "until",
                _("Until"),
                form["end"],
                form["start"] + 1,
                24,
                1,
                "end",
                y,
                lambda v: f"{v:02d}:00",
            )
        label = _("Save")
        kit.button(
            "remind:save",
            label,
            (left, y, max(kit.button_width(label), unit * 6), kit.target),
            self._save_reminders,
            primary=True,
        )
        y += kit.target + pad
        if self.message:
            kit.paragraph(
                "message",
                self.message,
                (left, y, width, kit.h - y - pad),
                int(unit * 0.85),
                ui.MUTED,
            )

    def _save_reminders(self) -> None:
        # What the login unit's install said (`relax remind --install`'s lines), one a line.
        self.message = "\n".join([_("Saved."), *reminders.save(self.remind_form)])

    # ---- safety -----------------------------------------------------------------------------

    def _draw_safety(self, kit: ui.Kit) -> None:
        from audio_engine import safety

        pad, unit = kit.pad, kit.unit
        y = self._header(kit, _("Safety"))
        left, width = pad * 2, kit.w - pad * 4
        size = int(unit * 0.85)
        f = ui.font(size)
        lines: list[str] = []
        for paragraph in safety.safety_text(i18n.language()).split("\n\n"):
            for source in paragraph.replace("\n  - ", "\n\u2022 ").split("\n"):
                text = source.strip()
                if text.startswith("\u2022 ") or not lines or lines[-1] == "":
                    lines += pacer_wrap(f, text, width)
                else:
                    # a paragraph's lines were wrapped for the terminal: joined, wrapped again
                    joined = lines.pop() + " " + text
                    lines += pacer_wrap(f, joined, width)
            lines.append("")
        line_h = f.get_linesize()
        bottom = kit.h - kit.target - pad * 3
        room = max(1, (bottom - y) // line_h)
        self.text_scroll = max(0, min(self.text_scroll, max(0, len(lines) - room)))
        for i, line in enumerate(lines[self.text_scroll : self.text_scroll + room]):
            if line:
                kit.text("safety", line, (left, y + i * line_h, width, line_h), size)
        label = _("I have read this")
        kit.button(
            "ok",
            label,
            (left, kit.h - kit.target - pad * 2, kit.button_width(label), kit.target),
            self.back,
            primary=True,
        )
        if len(lines) > room:
            hint = _("\u2191/\u2193 or the wheel: more text")
            x = left + kit.button_width(label) + pad * 2
            kit.text(
                "hint",
                hint,
                (x, kit.h - kit.target - pad * 2, kit.w - x - pad * 2, kit.target),
                int(unit * 0.8),
                ui.MUTED,
                align="right",
            )


def _first_time(marker: str) -> bool:
    """True the first time it is asked about `marker` on this user account (a file in the
    settings folder records it); a folder that cannot be written answers True (the safe side)."""
    from audio_engine import safety

    path = safety.settings_dir() / marker
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8") as f:
            f.write("The library window has shown this once.\n")
    except FileExistsError:
        return False
    except OSError:
        return True
    safety.mark_pointer_shown()  # the whole text was shown: the terminal's pointer is not needed
    return True


def qr_scale() -> int:
    from audio_engine.phone import qr

    return qr.PNG_SCALE


def pacer_wrap(font, text: str, width: int) -> list[str]:
    from audio_engine.player import pacer

    return pacer.wrap(font, text, width) or [""]


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"relax-app: --size must be WIDTHxHEIGHT, not {text!r}") from None
    return max(320, w), max(320, h)


def main(argv: list[str] | None = None) -> int:
    """Open the library window and run it until it is closed; the exit status."""
    import argparse

    argv = list(argv) if argv is not None else []
    # The language first: the help is written in it.
    tag = i18n.language_option(argv)
    if tag is not None:
        i18n.set_language(tag)

    class Help(argparse.HelpFormatter):  # argparse's heading "usage:" in that language too
        def add_usage(self, usage, actions, groups, prefix=None):
            super().add_usage(usage, actions, groups, _("usage: ") if prefix is None else prefix)

    parser = argparse.ArgumentParser(
        prog="relax-app",
        description=_(
            "The relax session library in a window: choose a session, its language, voice and "
            "background, and play it with the breathing pacer; save it for your phone, see your "
            "history, turn break reminders on or off. The same window as `relax` with no "
            "arguments and the app-menu entry."
        ),
        formatter_class=Help,
        add_help=False,
    )
    parser._optionals.title = _("options")
    parser.add_argument("-h", "--help", action="help", help=_("show this help message and exit"))
    parser.add_argument(
        "--size",
        type=_size,
        default=None,
        metavar="WxH",
        help=_(
            "the window's size in pixels, e.g. 1280x800 (default 960x720, less on a small screen)"
        ),
    )
    parser.add_argument(
        "--ui-language",
        metavar="LANG",
        help=_("the language of the window: en or nl (default: your locale's)"),
    )
    args = parser.parse_args(argv)
    if args.ui_language:
        if not i18n.has_interface(args.ui_language):
            print("relax-app: " + i18n.unknown_language_error(args.ui_language), file=sys.stderr)
            return 2  # a usage error
        i18n.set_language(args.ui_language)
    # The window's class names the app-menu entry's StartupWMClass (X11 and Wayland).
    os.environ.setdefault("SDL_VIDEO_X11_WMCLASS", WM_CLASS)
    # Windows: sharp at the screen's own scale, not scaled up blurred (untested there).
    os.environ.setdefault("SDL_WINDOWS_DPI_AWARENESS", "permonitorv2")
    os.environ.setdefault("SDL_VIDEO_WAYLAND_WMCLASS", WM_CLASS)
    from audio_engine.app import icon
    from audio_engine.player.app import _quiet_stderr, import_pygame

    import_pygame()
    import pygame

    try:
        with _quiet_stderr():  # SDL's own complaints; the reason is in the one line below
            pygame.display.init()
            pygame.font.init()
            pygame.display.set_icon(icon.draw(64))
            pygame.display.set_caption("relax")
            size = args.size or DEFAULT_SIZE
            if args.size is None:
                with contextlib.suppress(pygame.error, IndexError):
                    desktop = pygame.display.get_desktop_sizes()[0]
                    size = (min(size[0], desktop[0] * 9 // 10), min(size[1], desktop[1] * 9 // 10))
            screen = pygame.display.set_mode(size, pygame.RESIZABLE)
        driver = pygame.display.get_driver()
        asked = os.environ.get("SDL_VIDEODRIVER", "").strip().lower()
        if driver in ("offscreen", "dummy") and driver != asked:
            # SDL fell back to drawing into memory: nobody would see the window.
            raise pygame.error("the display cannot be reached")
    except pygame.error as exc:
        pygame.display.quit()
        raise RelaxError(
            _("cannot open the library window ({problem}); see relax --help").format(problem=exc)
        ) from None
    try:
        return App(screen).run()
    finally:
        pygame.display.quit()
