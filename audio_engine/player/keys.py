"""Keys to commands, from the window (pygame key events) and from the terminal (raw bytes).

Entry points:

- `from_pygame(event) -> str | None`: the command for a KEYDOWN event.
- `TerminalParser().feed(data) -> list[str]`: commands in bytes read from a terminal; a lone Esc
  is only known once no more bytes follow, so `flush()` turns a pending Esc into `quit`.
- `TerminalKeys(stream)`: context manager that puts a tty into cbreak mode (and always restores
  it), with `read(timeout_s) -> list[str]`.

Commands: `pause` (toggle), `next`, `prev`, `louder`, `softer`, `mute` (background, toggle),
`quit`.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading

from audio_engine.signals import ending_signals as _ending_signals

PAUSE, NEXT, PREV, LOUDER, SOFTER, MUTE, QUIT = (
    "pause",
    "next",
    "prev",
    "louder",
    "softer",
    "mute",
    "quit",
)

_CHARS = {
    " ": PAUSE,
    "n": NEXT,
    "p": PREV,
    "+": LOUDER,
    "=": LOUDER,  # the + key without shift on most layouts
    "-": SOFTER,
    "_": SOFTER,
    "m": MUTE,
    "q": QUIT,
}
_ARROWS = {"A": LOUDER, "B": SOFTER, "C": NEXT, "D": PREV}
_ESC = 0x1B


def from_pygame(event) -> str | None:
    """The command for a pygame KEYDOWN event (None for any other key)."""
    import pygame

    by_key = {
        pygame.K_SPACE: PAUSE,
        pygame.K_RIGHT: NEXT,
        pygame.K_LEFT: PREV,
        pygame.K_UP: LOUDER,
        pygame.K_DOWN: SOFTER,
        pygame.K_KP_PLUS: LOUDER,
        pygame.K_KP_MINUS: SOFTER,
        pygame.K_ESCAPE: QUIT,
    }
    if event.key in by_key:
        return by_key[event.key]
    char = getattr(event, "unicode", "") or ""
    if not char and 0 < event.key < 0x110000:
        char = chr(event.key)
    return _CHARS.get(char.lower())


class TerminalParser:
    """Bytes from a terminal in cbreak mode -> commands (arrow keys are ESC [ A..D)."""

    def __init__(self):
        self._pending = b""

    def feed(self, data: bytes) -> list[str]:
        buf = self._pending + data
        self._pending = b""
        out: list[str] = []
        i = 0
        while i < len(buf):
            byte = buf[i]
            if byte == _ESC:
                if i + 1 >= len(buf):
                    self._pending = buf[i:]  # Esc alone, or the start of a sequence
                    break
                if buf[i + 1 : i + 2] in (b"[", b"O"):
                    if i + 2 >= len(buf):
                        self._pending = buf[i:]
                        break
                    end = i + 2
                    while end < len(buf) and not (0x40 <= buf[end] <= 0x7E):
                        end += 1  # parameters, e.g. ESC [ 1 ; 5 C
                    if end >= len(buf):
                        self._pending = buf[i:]
                        break
                    command = _ARROWS.get(chr(buf[end]))
                    if command:
                        out.append(command)
                    i = end + 1
                    continue
                out.append(QUIT)  # Esc followed by an ordinary key
                i += 1
                continue
            command = _CHARS.get(chr(byte).lower()) if byte < 0x80 else None
            if command:
                out.append(command)
            i += 1
        return out

    def flush(self) -> list[str]:
        """No more bytes came: a pending lone Esc is a quit."""
        pending, self._pending = self._pending, b""
        return [QUIT] if pending == bytes([_ESC]) else []


class TerminalKeys:
    """Read keys from a terminal without Enter; restores the terminal on every way out.

    On a stream that is not a terminal (a pipe, a test) `read` waits out its timeout and returns
    nothing. SIGTERM is turned into SystemExit while active, so that the terminal is restored
    then too.
    """

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stdin
        self.parser = TerminalParser()
        self._fd: int | None = None
        self._saved = None
        self._old_term = None
        self._windows = False

    def __enter__(self) -> TerminalKeys:
        try:
            fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            return self
        if not os.isatty(fd):
            return self
        try:
            import termios
            import tty
        except ImportError:  # Windows: msvcrt reads keys without a mode switch
            self._windows = True
            return self
        self._saved = termios.tcgetattr(fd)
        self._fd = fd
        # TCSANOW, not tty's default TCSAFLUSH: a key pressed while the session was starting
        # (the sound starts before the keys are read) is read, not thrown away.
        tty.setcbreak(fd, termios.TCSANOW)
        if threading.current_thread() is threading.main_thread():
            self._old_term = {s: signal.signal(s, _exit_on_term) for s in _ending_signals()}
        return self

    def __exit__(self, *exc_info) -> None:
        if self._fd is not None:
            import termios

            with contextlib.suppress(OSError):
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._fd = None
        if self._old_term is not None:
            for signum, handler in self._old_term.items():
                signal.signal(signum, handler)
            self._old_term = None

    @property
    def active(self) -> bool:
        return self._fd is not None or self._windows

    def read(self, timeout_s: float) -> list[str]:
        """Commands typed within `timeout_s` (returns early when there are some)."""
        if self._windows:
            return self._read_windows(timeout_s)
        if self._fd is None:
            return []
        ready, _, _ = select.select([self._fd], [], [], timeout_s)
        if not ready:
            return self.parser.flush()
        commands = self.parser.feed(os.read(self._fd, 64))
        if self.parser._pending:
            more, _, _ = select.select([self._fd], [], [], 0.03)
            commands += self.parser.feed(os.read(self._fd, 64)) if more else self.parser.flush()
        return commands

    def _read_windows(self, timeout_s: float) -> list[str]:  # pragma: no cover - Windows only
        import msvcrt
        import time

        deadline = time.monotonic() + timeout_s
        out: list[str] = []
        while not out and time.monotonic() < deadline:
            while msvcrt.kbhit():
                char = msvcrt.getwch()
                if char in ("\x00", "\xe0"):
                    code = msvcrt.getwch()
                    out += (
                        [{"H": LOUDER, "P": SOFTER, "M": NEXT, "K": PREV}.get(code)]
                        if code in "HPMK"
                        else []
                    )
                elif char == "\x1b":
                    out.append(QUIT)
                elif char.lower() in _CHARS:
                    out.append(_CHARS[char.lower()])
            if not out:
                time.sleep(0.02)
        return out


def _exit_on_term(signum, frame):
    raise SystemExit(128 + signum)
