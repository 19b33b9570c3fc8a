"""Mutter's screen-cast and remote-desktop services served on a test session bus as Mutter
serves them, and a client that opens and stops sessions (as xdg-desktop-portal-gnome does)."""

from __future__ import annotations

import threading

from audio_engine.remind import notify, sharing
from tests._remind_bus import _bus_call

SESSION_IFACE = "org.gnome.Mutter.ScreenCast.Session"
RD_SESSION_IFACE = "org.gnome.Mutter.RemoteDesktop.Session"


class Mutter:
    """org.gnome.Mutter.ScreenCast (and RemoteDesktop) served on the bus as Mutter serves them:
    CreateSession exports `<folder>/u<N>` (meta-screen-cast-session.c), Stop unexports it, and
    Introspect on any path lists the objects below it as GDBus does."""

    def __init__(self, address: str, remote_desktop: bool = False):
        from jeepney.io.blocking import open_dbus_connection

        self.conn = open_dbus_connection(bus=address)
        names = [sharing.SCREEN_CAST] + ([sharing.REMOTE_DESKTOP] if remote_desktop else [])
        for name in names:
            reply = self.conn.send_and_get_reply(
                _bus_call("RequestName", "su", (name, 4)), timeout=5
            )
            assert reply.body[0] == 1, f"could not own {name}"
        self.paths: set[str] = {"/org/gnome/Mutter/ScreenCast"}
        if remote_desktop:
            self.paths.add("/org/gnome/Mutter/RemoteDesktop")
        self.number = 0
        self.introspected = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _children(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        with self._lock:
            return sorted(
                {p[len(prefix) :].split("/")[0] for p in self.paths if p.startswith(prefix)}
            )

    def _serve(self):
        from jeepney import MessageType, new_error, new_method_return
        from jeepney.low_level import HeaderFields

        while not self._stop.is_set():
            try:
                msg = self.conn.receive(timeout=0.05)
            except TimeoutError:
                continue
            except (OSError, ConnectionError, ValueError):
                return
            if msg.header.message_type != MessageType.method_call:
                continue
            f = msg.header.fields
            path, iface, member = (
                f.get(HeaderFields.path),
                f.get(HeaderFields.interface),
                f.get(HeaderFields.member),
            )
            if member == "Introspect":
                self.introspected += 1
                nodes = "".join(f'  <node name="{c}"/>\n' for c in self._children(path))
                xml = f"<!DOCTYPE node>\n<node>\n{nodes}</node>\n"
                out = new_method_return(msg, "s", (xml,))
            elif member == "CreateSession" and path in self.paths:
                with self._lock:
                    self.number += 1
                    session = f"{path}/Session/u{self.number}"
                    self.paths.add(session)
                out = new_method_return(msg, "o", (session,))
            elif (
                member == "Stop"
                and iface in (SESSION_IFACE, RD_SESSION_IFACE)
                and path in self.paths
            ):
                with self._lock:
                    self.paths.discard(path)
                out = new_method_return(msg)
            else:
                out = new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (member,))
            self.conn.send(out)

    def stop(self):
        self._stop.set()
        self.thread.join(5)
        self.conn.close()


class Caster:
    """A client of Mutter's screen cast, as xdg-desktop-portal-gnome or the screen recorder is."""

    def __init__(self, address: str):
        self.conn = notify.connect(address)

    def create(self, remote_desktop: bool = False) -> str:
        if remote_desktop:  # RemoteDesktop.CreateSession() -> o
            service, args = sharing.REMOTE_DESKTOP, ("", ())
        else:  # ScreenCast.CreateSession(a{sv} properties) -> o
            service, args = sharing.SCREEN_CAST, ("a{sv}", ({},))
        folder = "/" + service.replace(".", "/")
        return notify.call(self.conn, service, folder, service, "CreateSession", *args)[0]

    def stop(self, session: str, service=sharing.SCREEN_CAST) -> None:
        notify.call(self.conn, service, session, service + ".Session", "Stop")

    def close(self):
        self.conn.close()
