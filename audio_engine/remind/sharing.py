"""Is the screen being shared or recorded right now? Probes that hold a due reminder back.

Each probe has a `name`, and `check() -> str | None`: None when the screen is not shared, else
the reason the reminder then gives ("the screen was being shared on GNOME"). A probe that does
not work here raises `Unavailable` (from `check`): it is dropped and not asked again.

- `MutterScreenCast(conn)`: GNOME. Mutter exports every screen-cast session as a D-Bus object
  of the service `org.gnome.Mutter.ScreenCast` at `/org/gnome/Mutter/ScreenCast/Session/u<N>`,
  and every remote-desktop session at `/org/gnome/Mutter/RemoteDesktop/Session/u<N>`
  (GNOME/mutter src/backends/meta-screen-cast-session.c, `META_SCREEN_CAST_SESSION_DBUS_PATH
  "/u%u"`, and meta-remote-desktop-session.c, `META_REMOTE_DESKTOP_SESSION_DBUS_PATH "/u%u"`);
  a session's object is unexported when it closes. GDBus answers the standard
  `org.freedesktop.DBus.Introspectable.Introspect` on the folder with a `<node name="u1"/>` per
  object registered below it (GNOME/glib gio/gdbusconnection.c,
  `handle_generic_introspect_unlocked`), so one call lists the live sessions; being answered by
  GDBus itself, not by an interface Mutter exports, it is not behind the sender allow-lists
  Mutter puts on some of its interfaces (meta-dbus-access-checker.c). Screen casts are
  what GNOME's own screen recorder, xdg-desktop-portal-gnome (browsers, video calls) and
  gnome-remote-desktop use. A remote-desktop session with no screen cast is remote input only
  (no picture leaves the machine): not counted.
- `PipeWireGraph()`: portal-based sharing elsewhere. xdg-desktop-portal-wlr makes a PipeWire
  stream with `media.class` `Video/Source` (emersion/xdg-desktop-portal-wlr
  src/screencast/pipewire_screencast.c: `pw_stream_new(..., "xdpw-stream-XXXXXX",
  PW_KEY_MEDIA_CLASS "Video/Source")`); KWin's `pw_stream_new(core, "kwin-screencast-" ...,
  nullptr)` (KDE/kwin src/plugins/screencast/screencaststream.cpp) and Mutter's
  "meta-screen-cast-src" set no class, and PipeWire then gives an output video stream
  `Stream/Output/Video` (PipeWire/pipewire src/pipewire/stream.c, `"Stream/%s/%s"`). So a node of
  either class counts, unless it is a camera: PipeWire's camera nodes say so (spa/plugins/v4l2/
  v4l2-source.c and the libcamera plugin set `device.api` = v4l2 / libcamera and `media.role` =
  Camera), and a node a device monitor made carries a `device.id`. The graph
  is read with `pw-dump` (JSON), run with a 2 s timeout; no `pw-dump`, or a PipeWire that does
  not answer, means the probe does not work here.
- X11 has no standard signal for "the screen is being captured" (any client may read the
  screen with XGetImage or XShm): nothing to probe there; sharing through a portal on a GNOME
  or PipeWire desktop is still seen by the probes above.

`choose(conn)` tries each probe once and returns a `Sharing` with those that work and the
reasons the others do not. `Sharing.check(now_s)` asks them in order; a "being shared" answer
is kept for `recheck_s` (15 s), so a reminder held back by a long call costs one `pw-dump` every
15 s, not one every 5 s tick. The runner asks only when a reminder would be shown now.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

from audio_engine.i18n import _

SCREEN_CAST = "org.gnome.Mutter.ScreenCast"
SCREEN_CAST_SESSIONS = "/org/gnome/Mutter/ScreenCast/Session"
REMOTE_DESKTOP = "org.gnome.Mutter.RemoteDesktop"
REMOTE_DESKTOP_SESSIONS = "/org/gnome/Mutter/RemoteDesktop/Session"
INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"

# PipeWire media classes of a node that produces video: a portal's (xdpw) and a plain output
# video stream's (KWin, Mutter).
VIDEO_CLASSES = ("Video/Source", "Stream/Output/Video")
CAMERA_APIS = ("v4l2", "libcamera")
PW_DUMP_TIMEOUT_S = 2.0
RECHECK_S = 15.0


class Unavailable(Exception):
    """This probe does not work here (said once; the probe is dropped)."""


# -- GNOME -------------------------------------------------------------------------------------


def _children(xml_text: str) -> list[str]:
    """The names of the child nodes in an introspection document."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return []
    return [n.get("name", "") for n in root.findall("node") if n.get("name")]


class MutterScreenCast:
    name = "GNOME Mutter screen cast (D-Bus)"

    def __init__(self, conn):
        self.conn = conn
        self.seen = False  # the service was there once: its leaving is a restart, not "not GNOME"

    def _owned(self, service: str) -> bool:
        from audio_engine.remind.notify import call

        try:
            body = call(
                self.conn,
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "NameHasOwner",
                "s",
                (service,),
            )
        except RuntimeError:
            return False
        return bool(body[0])

    def _sessions(self, service: str, folder: str) -> list[str]:
        from audio_engine.remind.notify import call

        try:
            body = call(self.conn, service, folder, INTROSPECTABLE, "Introspect")
        except RuntimeError:
            return []  # e.g. an UnknownObject answer: no session below the folder
        return _children(body[0])

    def check(self) -> str | None:
        from audio_engine.remind.notify import BusLost

        if self.conn is None:
            raise Unavailable("no session bus")
        try:
            if not self._owned(SCREEN_CAST):
                # Not GNOME (or GNOME Shell gone, e.g. restarting): nothing is cast by it now.
                if self.seen:
                    return None
                raise Unavailable(f"no {SCREEN_CAST} on the session bus (not GNOME)")
            self.seen = True
            if not self._sessions(SCREEN_CAST, SCREEN_CAST_SESSIONS):
                return None
            if self._owned(REMOTE_DESKTOP) and self._sessions(
                REMOTE_DESKTOP, REMOTE_DESKTOP_SESSIONS
            ):
                return _("the screen was being shown over GNOME remote desktop")
            return _("the screen was being shared on GNOME")
        except BusLost as exc:
            raise Unavailable(str(exc)) from None


# -- PipeWire ----------------------------------------------------------------------------------


def _is_camera(props: dict) -> bool:
    if props.get("media.role") == "Camera" or props.get("device.api") in CAMERA_APIS:
        return True
    return "device.id" in props  # made by a device monitor: a camera, a capture card


def screen_casts(dump) -> list[dict]:
    """The properties of each node in a `pw-dump` document that casts the screen."""
    found = []
    for obj in dump if isinstance(dump, list) else []:
        if not isinstance(obj, dict) or obj.get("type") != "PipeWire:Interface:Node":
            continue
        props = (obj.get("info") or {}).get("props") or {}
        if props.get("media.class") in VIDEO_CLASSES and not _is_camera(props):
            found.append(props)
    return found


def _who(props: dict) -> str:
    for key in ("application.name", "node.name", "media.name"):
        value = props.get(key)
        if isinstance(value, str) and value:
            return value
    return _("an application")


class PipeWireGraph:
    name = "PipeWire graph (pw-dump)"

    def __init__(self, exe: str | None = None, timeout_s: float = PW_DUMP_TIMEOUT_S, env=None):
        self.exe = exe or shutil.which("pw-dump")
        self.timeout_s = timeout_s
        self.env = env

    def dump(self) -> list:
        if self.exe is None:
            raise Unavailable("pw-dump is not installed")
        try:
            done = subprocess.run(
                [self.exe, "-N"],
                capture_output=True,
                timeout=self.timeout_s,
                env=self.env if self.env is not None else os.environ,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise Unavailable(f"pw-dump did not answer in {self.timeout_s:g} s") from None
        except OSError as exc:
            raise Unavailable(f"cannot run pw-dump ({exc.strerror or exc})") from None
        if done.returncode != 0:
            why = done.stderr.decode("utf-8", "replace").strip().splitlines()
            text = why[-1] if why else f"exit status {done.returncode}"
            raise Unavailable(f"pw-dump: {text} (is PipeWire running?)")
        try:
            data = json.loads(done.stdout or b"[]")
        except ValueError:
            raise Unavailable("pw-dump printed no JSON") from None
        if not isinstance(data, list):
            raise Unavailable("pw-dump printed no list of objects")
        return data

    def check(self) -> str | None:
        casts = screen_casts(self.dump())
        if not casts:
            return None
        return _("the screen was being shared through {application}").format(
            application=_who(casts[0])
        )


# -- together ----------------------------------------------------------------------------------


class Sharing:
    """The probes that work here, asked in order; "being shared" is kept for `recheck_s`."""

    def __init__(self, probes, say=None, recheck_s: float = RECHECK_S):
        self.probes = list(probes)
        self.say = say or (lambda text: None)
        self.recheck_s = recheck_s
        self.asked = 0  # how many times the probes were asked (for the bench and tests)
        self._held: tuple[float, str] | None = None  # (when, reason)

    @property
    def names(self) -> str:
        return ", ".join(p.name for p in self.probes) or _("none")

    def check(self, now_s: float) -> str | None:
        if self._held is not None and now_s - self._held[0] < self.recheck_s:
            return self._held[1]
        self._held = None
        self.asked += 1
        for probe in list(self.probes):
            try:
                reason = probe.check()
            except Unavailable as exc:
                self.probes.remove(probe)
                self.say(
                    f"relax: screen sharing: {probe.name} stopped working ({exc}); not asked again"
                )
                continue
            if reason:
                self._held = (now_s, reason)
                return reason
        return None


def choose(conn, say=None, env=None) -> tuple[Sharing, list[str]]:
    """The probes that answer here, and why each other one does not."""
    working, tried = [], []
    for probe in (MutterScreenCast(conn), PipeWireGraph(env=env)):
        try:
            probe.check()
        except Unavailable as exc:
            tried.append(f"{probe.name}: {exc}")
            continue
        working.append(probe)
    return Sharing(working, say), tried
