"""Reminders on macOS and Windows through desktop-notifier (the optional `notify` extra).

Written to desktop-notifier's documented API (`DesktopNotifierSync`, `Button`, `on_dismissed`),
untested here (this project's machines run Linux, where `notify.DBusNotifier` is used). Without
the package, `relax remind` uses the pygame window. Same interface as `notify.DBusNotifier`.
"""

from __future__ import annotations

import queue

from audio_engine.i18n import _
from audio_engine.remind.notify import NoServer, actions_for


class DesktopNotifier:
    @property
    def name(self) -> str:
        return _("desktop notifications (desktop-notifier)")

    def __init__(self):
        try:
            from desktop_notifier import Button, DesktopNotifierSync
        except ImportError:
            raise NoServer(
                "desktop-notifier is not installed (pip install 'relax[notify]')"
            ) from None
        self._button = Button
        self.notifier = DesktopNotifierSync(app_name="relax")
        self.answers: queue.Queue[str] = queue.Queue()
        self.current = None

    def show(self, reminder, body: str) -> None:
        self.close()
        buttons = [
            self._button(title=label, on_pressed=lambda key=key: self.answers.put(key))
            for key, label in actions_for(reminder)
        ]
        self.current = self.notifier.send(
            title=reminder.title,
            message=body,
            buttons=buttons,
            on_dismissed=lambda: self.answers.put("closed"),
        )

    def close(self) -> None:
        if self.current is not None:
            current, self.current = self.current, None
            self.notifier.clear(current)

    def wait(self, timeout_s: float) -> list[str]:
        try:
            answer = self.answers.get(timeout=timeout_s)
        except queue.Empty:
            return []
        self.current = None
        return [answer]

    def inhibited(self) -> bool | None:
        return None

    def shutdown(self) -> None:
        self.close()
