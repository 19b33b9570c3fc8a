"""Showing a reminder and hearing the answer: desktop notifications over D-Bus.

- `DBusNotifier()`: org.freedesktop.Notifications on the session bus (jeepney, pure Python),
  with the actions Start, Snooze and Skip; the answers come back as the server's
  `ActionInvoked` and `NotificationClosed` signals. `inhibited()` reads the server's
  `Inhibited` property (do-not-disturb: KDE Plasma, and servers following the spec's 1.3 draft),
  dunst's `paused`, and, on GNOME, the `show-banners` setting.
- Raises `NoBus` (no session bus), `NoServer` (nobody serves notifications, or without
  actions) when made; `BusLost` from `wait`/`show` when the bus goes away mid-run.

Every notifier (this one, `window.WindowNotifier`, `desktop.DesktopNotifier`) has `name`,
`show(reminder, body)`, `close()`, `wait(timeout_s) -> list[str]` (answers: "start",
"snooze", "skip", "closed"), `inhibited() -> bool | None` and `shutdown()`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections import deque

from audio_engine.errors import RelaxError
from audio_engine.i18n import _

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
# How a notification closed (the spec's reason codes): 3 = by our CloseNotification.
CLOSED_BY_CALL = 3
CALL_TIMEOUT_S = 3.0


class NotifyError(RelaxError):
    """Reminders cannot be shown this way."""


class NoBus(NotifyError):
    """There is no session bus to talk to."""


class NoServer(NotifyError):
    """No notification server (with action buttons) on the session bus."""


class BusLost(NotifyError):
    """The session bus went away while running."""


def actions_for(reminder) -> list[tuple[str, str]]:
    """The buttons, as (answer, label)."""
    buttons = [("start", _("Start"))]
    if reminder.can_snooze:
        buttons.append(("snooze", _("Snooze")))
    buttons.append(("skip", _("Skip")))
    return buttons


def _bus_lost(exc: Exception) -> str:
    return _("the session bus was lost ({problem})").format(problem=exc or type(exc).__name__)


def connect(address: str | None = None):
    """A jeepney connection to the session bus, or `NoBus` saying why not."""
    from jeepney.io.blocking import open_dbus_connection

    address = address or os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    if not address:
        raise NoBus(_("no session bus (DBUS_SESSION_BUS_ADDRESS is not set)"))
    try:
        return open_dbus_connection(bus=address)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        text = _("cannot connect to the session bus at {address}: {problem}")
        raise NoBus(text.format(address=address, problem=exc)) from None


def call(conn, destination: str, path: str, interface: str, method: str, signature="", body=()):
    """One method call; returns the reply body, raises `RuntimeError` for a D-Bus error reply,
    `BusLost` when the connection is gone."""
    from jeepney import DBusAddress, MessageType, new_method_call
    from jeepney.low_level import HeaderFields

    addr = DBusAddress(path, bus_name=destination, interface=interface)
    msg = new_method_call(addr, method, signature or None, tuple(body))
    try:
        reply = conn.send_and_get_reply(msg, timeout=CALL_TIMEOUT_S)
    except TimeoutError:
        text = _("{destination} did not answer {method} in {seconds} s")
        raise RuntimeError(
            text.format(destination=destination, method=method, seconds=f"{CALL_TIMEOUT_S:g}")
        ) from None
    except (OSError, ConnectionError) as exc:
        raise BusLost(_bus_lost(exc)) from None
    if reply.header.message_type == MessageType.error:
        text = reply.body[0] if reply.body else ""
        name = reply.header.fields.get(HeaderFields.error_name, "")
        raise RuntimeError(f"{name}: {text}".strip(": "))
    return reply.body


def get_property(conn, destination, path, interface, name):
    body = call(
        conn,
        destination,
        path,
        "org.freedesktop.DBus.Properties",
        "Get",
        "ss",
        (interface, name),
    )
    return body[0][1]  # a variant: (signature, value)


class DBusNotifier:
    name = "desktop notifications (D-Bus)"

    def __init__(self, address: str | None = None, gnome_dnd: bool | None = None):
        from jeepney import MatchRule

        self.conn = connect(address)
        try:
            info = call(self.conn, NAME, PATH, NAME, "GetServerInformation")
            caps = call(self.conn, NAME, PATH, NAME, "GetCapabilities")[0]
        except RuntimeError as exc:
            self.conn.close()
            text = _("no notification server on the session bus ({problem})")
            raise NoServer(text.format(problem=exc)) from None
        self.server = f"{info[0]} {info[2]}".strip()
        if "actions" not in caps:
            self.conn.close()
            text = _("the notification server ({server}) shows no buttons")
            raise NoServer(text.format(server=self.server))
        self.name = _("desktop notifications ({server})").format(server=self.server)
        rule = MatchRule(type="signal", interface=NAME, path=PATH)
        # The server leaving the bus (a crash, a desktop restart) is heard as NameOwnerChanged.
        owner = MatchRule(
            type="signal",
            sender="org.freedesktop.DBus",
            interface="org.freedesktop.DBus",
            member="NameOwnerChanged",
            path="/org/freedesktop/DBus",
        )
        owner.add_arg_condition(0, NAME)
        self.queue: deque = deque()
        self._filters = [self.conn.filter(r, queue=self.queue) for r in (rule, owner)]
        for r in (rule, owner):
            call(
                self.conn,
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "AddMatch",
                "s",
                (r.serialise(),),
            )
        self.id: int | None = None
        if gnome_dnd is None:
            gnome_dnd = "GNOME" in os.environ.get("XDG_CURRENT_DESKTOP", "").upper()
        self._gnome = gnome_dnd and shutil.which("gsettings") is not None

    def show(self, reminder, body: str) -> None:
        actions: list[str] = []
        for key, label in actions_for(reminder):
            actions += [key, label]
        hints = {
            "urgency": ("y", 1),
            "category": ("s", "x-relax.reminder"),
            "resident": ("b", True),
        }
        try:
            reply = call(
                self.conn,
                NAME,
                PATH,
                NAME,
                "Notify",
                "susssasa{sv}i",
                ("relax", self.id or 0, "", reminder.title, body, actions, hints, 0),
            )
        except RuntimeError as exc:
            text = _("the notification server did not take the reminder ({problem})")
            raise NoServer(text.format(problem=exc)) from None
        self.id = int(reply[0])

    def close(self) -> None:
        if self.id is None:
            return
        notification, self.id = self.id, None
        with contextlib.suppress(RuntimeError):  # already gone
            call(self.conn, NAME, PATH, NAME, "CloseNotification", "u", (notification,))

    def wait(self, timeout_s: float) -> list[str]:
        """Answers that came in within `timeout_s` (returns at the first one)."""
        deadline = time.monotonic() + timeout_s
        answers: list[str] = []
        while True:
            while self.queue:
                answer = self._answer(self.queue.popleft())
                if answer:
                    answers.append(answer)
            left = deadline - time.monotonic()
            if answers or left <= 0:
                return answers
            try:
                message = self.conn.recv_until_filtered(self.queue, timeout=left)
            except TimeoutError:
                return answers
            except (OSError, ConnectionError) as exc:
                raise BusLost(_bus_lost(exc)) from None
            self.queue.appendleft(message)

    def _answer(self, message) -> str | None:
        from jeepney.low_level import HeaderFields

        member = message.header.fields.get(HeaderFields.member)
        body = message.body
        if member == "NameOwnerChanged":
            if body[0] == NAME and not body[2]:
                raise NoServer(_("the notification server left the session bus"))
            return None
        if self.id is None or not body or body[0] != self.id:
            return None  # not about the reminder on screen
        if member == "ActionInvoked":
            if body[1] not in ("start", "snooze", "skip"):
                return None  # e.g. "default" (a click on the body) from some servers: no answer
            self.id = None  # the server closes it (its NotificationClosed is not an answer)
            return body[1]
        if member == "NotificationClosed" and body[1] != CLOSED_BY_CALL:
            self.id = None
            return "closed"
        return None

    def inhibited(self) -> bool | None:
        value = None
        # The spec draft's Inhibited (KDE Plasma), then dunst's own "paused" (dunstctl set-paused).
        for interface, name in ((NAME, "Inhibited"), ("org.dunstproject.cmd0", "paused")):
            try:
                value = bool(get_property(self.conn, NAME, PATH, interface, name))
            except RuntimeError:
                continue
            if value:
                return True
        if self._gnome:
            banners = _gsettings("org.gnome.desktop.notifications", "show-banners")
            if banners == "false":
                return True
            if banners == "true" and value is None:
                return False
        return None if value is None else bool(value)

    def shutdown(self) -> None:
        if not self._filters:
            return  # already shut down
        with contextlib.suppress(NotifyError):
            self.close()
        for f in self._filters:
            f.close()
        self._filters = []
        self.conn.close()


def _gsettings(schema: str, key: str) -> str | None:
    try:
        done = subprocess.run(
            ["gsettings", "get", schema, key], capture_output=True, text=True, timeout=2
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
