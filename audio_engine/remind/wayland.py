"""A small Wayland client in pure Python (a Unix socket and `struct`; no libwayland): enough
of the wire protocol for `relax remind` to ask the compositor about idle time.

- `Connection.connect(display=None)` connects as libwayland does: `WAYLAND_SOCKET` (a file
  descriptor the compositor handed over; taken and removed from the environment), else
  `WAYLAND_DISPLAY` (an absolute path, or a name in `XDG_RUNTIME_DIR`; default `wayland-0`).
- `conn.globals()` gets the registry (one round trip); `conn.bind(interface, version)` binds a
  global at the highest version both sides speak; `conn.request(proxy, "name", *args)` sends a
  request (a typed new_id argument is given as the `Interface` to create, and the new `Proxy`
  is returned); `proxy.on("event", fn)` handles an event; `conn.dispatch(timeout_s)` reads and
  handles what arrived; `conn.roundtrip()` waits until the compositor has handled everything
  sent before it.
- Every failure is a `WaylandError` with a one-line message: `Disconnected` (no socket, refused,
  the compositor went away) or `ProtocolError` (the compositor's `wl_display.error`).

The wire format (wayland.freedesktop.org, "Wire Format"): each message is the object id
(uint32), then (size << 16 | opcode) (uint32), then the arguments, each padded to 32 bits, in
the host's byte order. Only the interfaces listed in `INTERFACES` are spoken; events for
objects this side does not know (destroyed, not yet confirmed by delete_id) are skipped.
"""

from __future__ import annotations

import array
import collections
import contextlib
import os
import select
import socket
import struct
import time
from dataclasses import dataclass, field

_HEADER = struct.Struct("=II")
_MAX_MESSAGE = 4096  # libwayland's limit for one message
_MAX_FDS = 28  # libwayland's per-read limit for passed file descriptors
_SEND_TIMEOUT_S = 5.0


class WaylandError(Exception):
    """The compositor cannot be used: one line saying why."""


class Disconnected(WaylandError):
    """No compositor at the socket, or the connection to it ended."""


class ProtocolError(WaylandError):
    """The compositor reported a protocol error (wl_display.error); the connection is dead."""


@dataclass(frozen=True)
class Message:
    """One request or event: its name and argument types in libwayland's letters: i int,
    u uint, f fixed (24.8), s string, o object, n new_id, a array, h fd; `?` before s or o
    allows null. `creates` names the interface a new_id argument makes."""

    name: str
    signature: str = ""
    creates: str | None = None


@dataclass(frozen=True)
class Interface:
    name: str
    version: int  # the highest version this client speaks
    requests: tuple[Message, ...] = ()
    events: tuple[Message, ...] = ()

    def opcode(self, request: str) -> int:
        for i, m in enumerate(self.requests):
            if m.name == request:
                return i
        raise KeyError(f"{self.name} has no request {request!r}")


M = Message
WL_DISPLAY = Interface(
    "wl_display",
    1,
    requests=(M("sync", "n", "wl_callback"), M("get_registry", "n", "wl_registry")),
    events=(M("error", "ous"), M("delete_id", "u")),
)
WL_REGISTRY = Interface(
    "wl_registry",
    1,
    requests=(M("bind", "usun"),),  # name, then the untyped new_id: interface, version, id
    events=(M("global", "usu"), M("global_remove", "u")),
)
WL_CALLBACK = Interface("wl_callback", 1, events=(M("done", "u"),))
WL_SEAT = Interface(
    "wl_seat",
    2,
    requests=(
        M("get_pointer", "n", "wl_pointer"),
        M("get_keyboard", "n", "wl_keyboard"),
        M("get_touch", "n", "wl_touch"),
    ),
    events=(M("capabilities", "u"), M("name", "s")),
)
WL_OUTPUT = Interface(  # only as an argument type (zwlr_foreign_toplevel_handle_v1.output_enter)
    "wl_output", 1
)
# staging/ext-idle-notify/ext-idle-notify-v1.xml (wayland-protocols): version 2 added
# get_input_idle_notification, which ignores idle inhibitors.
EXT_IDLE_NOTIFIER_V1 = Interface(
    "ext_idle_notifier_v1",
    2,
    requests=(
        M("destroy"),
        M("get_idle_notification", "nuo", "ext_idle_notification_v1"),  # id, timeout ms, seat
        M("get_input_idle_notification", "nuo", "ext_idle_notification_v1"),  # since 2
    ),
)
EXT_IDLE_NOTIFICATION_V1 = Interface(
    "ext_idle_notification_v1", 2, requests=(M("destroy"),), events=(M("idled"), M("resumed"))
)
# KDE's idle.xml (plasma-wayland-protocols), served by KWin and by wlroots up to 0.17.
ORG_KDE_KWIN_IDLE = Interface(
    "org_kde_kwin_idle",
    1,
    requests=(M("get_idle_timeout", "nou", "org_kde_kwin_idle_timeout"),),  # id, seat, ms
)
ORG_KDE_KWIN_IDLE_TIMEOUT = Interface(
    "org_kde_kwin_idle_timeout",
    1,
    requests=(M("release"), M("simulate_user_activity")),
    events=(M("idle"), M("resumed")),
)
# wlr-foreign-toplevel-management-unstable-v1.xml (wlr-protocols): the windows and their state.
ZWLR_FOREIGN_TOPLEVEL_MANAGER_V1 = Interface(
    "zwlr_foreign_toplevel_manager_v1",
    3,
    requests=(M("stop"),),
    events=(M("toplevel", "n", "zwlr_foreign_toplevel_handle_v1"), M("finished")),
)
ZWLR_FOREIGN_TOPLEVEL_HANDLE_V1 = Interface(
    "zwlr_foreign_toplevel_handle_v1",
    3,
    requests=(
        M("set_maximized"),
        M("unset_maximized"),
        M("set_minimized"),
        M("unset_minimized"),
        M("activate", "o"),
        M("close"),
        M("set_rectangle", "oiiii"),
        M("destroy"),
        M("set_fullscreen", "?o"),  # since 2
        M("unset_fullscreen"),  # since 2
    ),
    events=(
        M("title", "s"),
        M("app_id", "s"),
        M("output_enter", "o"),
        M("output_leave", "o"),
        M("state", "a"),
        M("done"),
        M("closed"),
        M("parent", "?o"),  # since 3
    ),
)
# wlr-virtual-pointer-unstable-v1.xml (wlr-protocols): the tests move the pointer with it.
ZWLR_VIRTUAL_POINTER_MANAGER_V1 = Interface(
    "zwlr_virtual_pointer_manager_v1",
    1,
    requests=(M("create_virtual_pointer", "?on", "zwlr_virtual_pointer_v1"), M("destroy")),
)
ZWLR_VIRTUAL_POINTER_V1 = Interface(
    "zwlr_virtual_pointer_v1",
    1,
    requests=(
        M("motion", "uff"),  # time ms, dx, dy
        M("motion_absolute", "uuuuu"),
        M("button", "uuu"),
        M("axis", "uuf"),
        M("frame"),
        M("axis_source", "u"),
        M("axis_stop", "uu"),
        M("axis_discrete", "uufi"),
        M("destroy"),
    ),
)
del M

INTERFACES = {
    i.name: i
    for i in (
        WL_DISPLAY,
        WL_REGISTRY,
        WL_CALLBACK,
        WL_SEAT,
        WL_OUTPUT,
        EXT_IDLE_NOTIFIER_V1,
        EXT_IDLE_NOTIFICATION_V1,
        ORG_KDE_KWIN_IDLE,
        ORG_KDE_KWIN_IDLE_TIMEOUT,
        ZWLR_FOREIGN_TOPLEVEL_MANAGER_V1,
        ZWLR_FOREIGN_TOPLEVEL_HANDLE_V1,
        ZWLR_VIRTUAL_POINTER_MANAGER_V1,
        ZWLR_VIRTUAL_POINTER_V1,
    )
}


# -- the wire format (used by the client here and by the tests' compositor) --------------


def _types(signature: str) -> list[tuple[str, bool]]:
    out, nullable = [], False
    for c in signature:
        if c == "?":
            nullable = True
            continue
        out.append((c, nullable))
        nullable = False
    return out


def _pad(n: int) -> int:
    return (n + 3) & ~3


def pack(object_id: int, opcode: int, signature: str, args) -> tuple[bytes, list[int]]:
    """One message: its bytes and the file descriptors to pass with it."""
    body, fds = bytearray(), []
    for (kind, nullable), value in zip(_types(signature), args, strict=True):
        if kind == "i":
            body += struct.pack("=i", value)
        elif kind in "uon":  # an object or new_id is its id (0 = null object)
            if value is None and kind == "o" and nullable:
                value = 0
            body += struct.pack("=I", getattr(value, "id", value))
        elif kind == "f":
            body += struct.pack("=i", round(value * 256))
        elif kind == "s":
            if value is None:
                body += struct.pack("=I", 0)
            else:
                data = value.encode() + b"\0"
                body += struct.pack("=I", len(data)) + data + b"\0" * (_pad(len(data)) - len(data))
        elif kind == "a":
            data = bytes(value)
            body += struct.pack("=I", len(data)) + data + b"\0" * (_pad(len(data)) - len(data))
        elif kind == "h":
            fds.append(value)
        else:
            raise ValueError(f"unknown argument type {kind!r}")
    size = _HEADER.size + len(body)
    if size > _MAX_MESSAGE:
        raise ValueError(f"a {size}-byte message is longer than {_MAX_MESSAGE}")
    return _HEADER.pack(object_id, size << 16 | opcode) + bytes(body), fds


def unpack(signature: str, payload: bytes, fds: collections.deque) -> list:
    """The arguments of one message (objects and new_ids as their ids; a null string or
    object as None; fixed as float; an array as bytes)."""
    out, at = [], 0
    for kind, _nullable in _types(signature):
        if kind == "h":
            if not fds:
                raise ProtocolError("Wayland: a message promised a file descriptor that never came")
            out.append(fds.popleft())
            continue
        if at + 4 > len(payload):
            raise ProtocolError("Wayland: a message shorter than its arguments")
        (word,) = struct.unpack_from("=I", payload, at)
        at += 4
        if kind == "i":
            out.append(struct.unpack("=i", struct.pack("=I", word))[0])
        elif kind in "un":
            out.append(word)
        elif kind == "o":
            out.append(word or None)
        elif kind == "f":
            out.append(struct.unpack("=i", struct.pack("=I", word))[0] / 256.0)
        elif kind in "sa":
            if at + word > len(payload):
                raise ProtocolError("Wayland: a string or array longer than its message")
            data = payload[at : at + word]
            at += _pad(word)
            if kind == "a":
                out.append(bytes(data))
            elif word == 0:
                out.append(None)
            else:
                out.append(bytes(data[:-1]).decode("utf-8", "replace"))
    return out


def split(buffer: bytearray) -> list[tuple[int, int, bytes]]:
    """Take the whole messages off the front of `buffer`: (object id, opcode, payload)."""
    out = []
    while len(buffer) >= _HEADER.size:
        object_id, word = _HEADER.unpack_from(buffer)
        size = word >> 16
        if size < _HEADER.size:
            raise ProtocolError(f"Wayland: a message of {size} bytes (less than its header)")
        if len(buffer) < size:
            break
        out.append((object_id, word & 0xFFFF, bytes(buffer[_HEADER.size : size])))
        del buffer[:size]
    return out


def receive(sock: socket.socket, fds: collections.deque) -> bytes:
    """What one read gives (b'' at the end), the passed file descriptors put on `fds`."""
    data, ancillary, _flags, _addr = sock.recvmsg(
        65536, socket.CMSG_SPACE(_MAX_FDS * array.array("i").itemsize)
    )
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            got = array.array("i")
            got.frombytes(payload[: len(payload) - len(payload) % got.itemsize])
            fds.extend(got)
    return data


def send(sock: socket.socket, data: bytes, fds: list[int]) -> None:
    if fds:
        sent = sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        data = data[sent:]
    if data:
        sock.sendall(data)


# -- the client ---------------------------------------------------------------------------


@dataclass
class Proxy:
    """One object on the connection: its id, interface and bound version."""

    id: int
    interface: Interface
    version: int
    handlers: dict = field(default_factory=dict)

    def on(self, event: str, handler) -> Proxy:
        if not any(m.name == event for m in self.interface.events):
            raise KeyError(f"{self.interface.name} has no event {event!r}")
        self.handlers[event] = handler
        return self


@dataclass(frozen=True)
class Global:
    name: int
    interface: str
    version: int


def socket_path(env=None) -> str:
    """Where libwayland would connect for `WAYLAND_DISPLAY` in `env` (default os.environ)."""
    env = os.environ if env is None else env
    display = env.get("WAYLAND_DISPLAY") or "wayland-0"
    if os.path.isabs(display):
        return display
    runtime = env.get("XDG_RUNTIME_DIR")
    if not runtime:
        raise Disconnected(f"Wayland: XDG_RUNTIME_DIR is not set (needed to find {display})")
    return os.path.join(runtime, display)


class Connection:
    """A client connection to a compositor. Not thread-safe: one thread dispatches."""

    def __init__(self, sock: socket.socket, where: str):
        self.sock = sock
        self.where = where
        sock.settimeout(_SEND_TIMEOUT_S)  # sends wait at most this; reads are polled
        self._in = bytearray()
        self._fds: collections.deque = collections.deque()
        self._next_id = 2
        self.objects: dict[int, Proxy] = {}
        self.display = self._add(1, WL_DISPLAY, 1)
        self.display.on("error", self._on_error).on("delete_id", self._on_delete_id)
        self._registry: Proxy | None = None
        self._globals: dict[int, Global] = {}
        self.closed = False

    @classmethod
    def connect(cls, display: str | None = None) -> Connection:
        """Connect to `display` (a socket path or name), else as libwayland does."""
        fd_text = os.environ.get("WAYLAND_SOCKET") if display is None else None
        if fd_text:
            os.environ.pop("WAYLAND_SOCKET", None)  # as libwayland: not passed on to children
            try:
                fd = int(fd_text)
                sock = socket.socket(fileno=fd)
                os.set_inheritable(fd, False)
            except (ValueError, OSError) as exc:
                raise Disconnected(
                    f"Wayland: WAYLAND_SOCKET={fd_text} is not a socket ({exc})"
                ) from None
            return cls(sock, f"WAYLAND_SOCKET={fd_text}")
        env = dict(os.environ)
        if display is not None:
            env["WAYLAND_DISPLAY"] = display
        path = socket_path(env)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(_SEND_TIMEOUT_S)
            sock.connect(path)
        except FileNotFoundError:
            sock.close()
            raise Disconnected(f"Wayland: no compositor socket at {path}") from None
        except ConnectionRefusedError:
            sock.close()
            raise Disconnected(f"Wayland: {path} refused the connection (no compositor)") from None
        except OSError as exc:
            sock.close()
            raise Disconnected(
                f"Wayland: cannot connect to {path} ({exc.strerror or exc})"
            ) from None
        return cls(sock, path)

    # -- requests ----------------------------------------------------------------

    def request(self, proxy: Proxy, name: str, *args, version: int | None = None):
        """Send `proxy.name(*args)`. A typed new_id argument is passed as the Interface to
        create (made at `version`, default the parent's); the new Proxy is returned."""
        opcode = proxy.interface.opcode(name)
        message = proxy.interface.requests[opcode]
        made, wire = None, []
        for (kind, _nullable), value in zip(_types(message.signature), args, strict=True):
            if kind == "n" and message.creates is not None:
                made = self._add(self._new_id(), value, version or proxy.version)
                value = made.id
            wire.append(value)
        self._send(proxy.id, opcode, message.signature, wire)
        return made

    def sync(self) -> Proxy:
        return self.request(self.display, "sync", WL_CALLBACK, version=1)

    def roundtrip(self, timeout_s: float = 5.0) -> None:
        """Wait until the compositor has handled every request sent so far (and their events
        have been dispatched)."""
        done = []
        self.sync().on("done", lambda _data: done.append(True))
        self._dispatch_until(lambda: bool(done), timeout_s, "a round trip")

    def globals(self, timeout_s: float = 5.0) -> dict[int, Global]:
        """The compositor's globals (the registry, fetched with one round trip at first)."""
        if self._registry is None:
            self._registry = self.request(self.display, "get_registry", WL_REGISTRY, version=1)
            self._registry.on("global", self._on_global).on("global_remove", self._on_remove)
            self.roundtrip(timeout_s)
        return dict(self._globals)

    def find(self, interface: str) -> Global | None:
        """The first global of that interface (in the order the compositor listed them)."""
        for g in self.globals().values():
            if g.interface == interface:
                return g
        return None

    def bind(self, interface: Interface, version: int | None = None) -> Proxy:
        """Bind the first global of `interface` at the highest version both sides speak (at
        most `version` if given)."""
        g = self.find(interface.name)
        if g is None:
            raise WaylandError(f"Wayland: the compositor offers no {interface.name}")
        v = min(g.version, interface.version, version or interface.version)
        proxy = self._add(self._new_id(), interface, v)
        self._send(self._registry.id, 0, "usun", [g.name, interface.name, v, proxy.id])
        return proxy

    # -- events ------------------------------------------------------------------

    def fileno(self) -> int:
        return self.sock.fileno()

    def dispatch(self, timeout_s: float | None = 0.0) -> int:
        """Read what has arrived (waiting at most `timeout_s`; None: until something does),
        call the handlers, and return how many events were handled."""
        if self.closed:
            raise Disconnected("Wayland: the connection is closed")
        handled = self._handle()  # whole messages left over from an earlier read
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        wait_ms = None if timeout_s is None else max(0, round(timeout_s * 1000))
        ready = poller.poll(wait_ms)
        while ready:
            try:
                data = receive(self.sock, self._fds)
            except BlockingIOError:
                break
            except OSError as exc:
                raise self._lost(exc) from None
            if not data:
                raise self._lost(None)
            self._in += data
            handled += self._handle()
            ready = poller.poll(0)
        return handled

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            for fd in self._fds:
                os.close(fd)
            self._fds.clear()
            self.sock.close()

    def shutdown(self) -> None:
        """Wake a thread blocked in dispatch (it then sees the end of the connection)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    # -- inside ------------------------------------------------------------------

    def _add(self, object_id: int, interface: Interface, version: int) -> Proxy:
        proxy = Proxy(object_id, interface, version)
        self.objects[object_id] = proxy
        return proxy

    def _new_id(self) -> int:
        # Client ids run from 2 to 0xFEFFFFFF; a long-lived client here makes a few objects.
        i = self._next_id
        self._next_id += 1
        return i

    def _send(self, object_id: int, opcode: int, signature: str, args) -> None:
        if self.closed:
            raise Disconnected("Wayland: the connection is closed")
        data, fds = pack(object_id, opcode, signature, args)
        try:
            send(self.sock, data, fds)
        except OSError as exc:
            raise self._lost(exc) from None

    def _handle(self) -> int:
        count = 0
        for object_id, opcode, payload in split(self._in):
            proxy = self.objects.get(object_id)
            if proxy is None or opcode >= len(proxy.interface.events):
                continue  # an object already destroyed on this side, or an unknown event
            event = proxy.interface.events[opcode]
            args = unpack(event.signature, payload, self._fds)
            if event.creates is not None:  # a new object from the compositor
                for i, (kind, _n) in enumerate(_types(event.signature)):
                    if kind == "n":
                        made = INTERFACES[event.creates]
                        args[i] = self._add(args[i], made, min(proxy.version, made.version))
            count += 1
            handler = proxy.handlers.get(event.name)
            if handler is not None:
                handler(*args)
        return count

    def _dispatch_until(self, done, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaylandError(
                    f"Wayland: the compositor at {self.where} did not answer {what} "
                    f"within {timeout_s:g} s"
                )
            self.dispatch(left)

    def _on_error(self, object_id, code, message) -> None:
        proxy = self.objects.get(object_id)
        what = f"{proxy.interface.name}@{object_id}" if proxy else f"object {object_id}"
        self.close()
        raise ProtocolError(f"Wayland: protocol error on {what} (code {code}): {message}")

    def _on_delete_id(self, object_id) -> None:
        self.objects.pop(object_id, None)

    def _on_global(self, name, interface, version) -> None:
        self._globals[name] = Global(name, interface, version)

    def _on_remove(self, name) -> None:
        self._globals.pop(name, None)

    def _lost(self, exc: Exception | None) -> Disconnected:
        self.close()
        why = f" ({exc.strerror or exc})" if isinstance(exc, OSError) else ""
        return Disconnected(f"Wayland: the compositor at {self.where} closed the connection{why}")


class Toplevels:
    """The windows' states from zwlr_foreign_toplevel_manager_v1 (wlroots compositors):
    `fullscreen` is whether a window is both activated and fullscreen (the state since
    version 2). Updated by whichever thread dispatches the connection."""

    ACTIVATED, FULLSCREEN = 2, 3  # zwlr_foreign_toplevel_handle_v1.state values

    def __init__(self, conn: Connection):
        self.conn = conn
        self.manager = conn.bind(ZWLR_FOREIGN_TOPLEVEL_MANAGER_V1)
        self._pending: dict[int, set[int]] = {}
        self._states: dict[int, set[int]] = {}
        self.fullscreen = False
        self.manager.on("toplevel", self._on_toplevel)

    def _on_toplevel(self, handle: Proxy) -> None:
        self._pending[handle.id] = set()
        handle.on("state", lambda data: self._on_state(handle, data))
        handle.on("done", lambda: self._on_done(handle))
        handle.on("closed", lambda: self._on_closed(handle))

    def _on_state(self, handle: Proxy, data: bytes) -> None:
        values = array.array("I")
        values.frombytes(data[: len(data) - len(data) % values.itemsize])
        self._pending[handle.id] = set(values)

    def _on_done(self, handle: Proxy) -> None:
        self._states[handle.id] = set(self._pending.get(handle.id, ()))
        self._update()

    def _on_closed(self, handle: Proxy) -> None:
        self._pending.pop(handle.id, None)
        self._states.pop(handle.id, None)
        self._update()
        self.conn.request(handle, "destroy")

    def _update(self) -> None:
        want = {self.ACTIVATED, self.FULLSCREEN}
        self.fullscreen = any(want <= s for s in self._states.values())
