"""The player's main loop: controls, the window or the terminal line, and a clean exit.

Entry points: `open_mixer(sample_rate)`, `play(prepared, gain, ...)`, `Controller`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sys

import numpy as np

from audio_engine import i18n
from audio_engine.errors import AudioDeviceError
from audio_engine.player import keys, pacer
from audio_engine.player.stream import Stream
from audio_engine.render import Mix

MIXER_BUFFER_SAMPLES = 512  # the device buffer: ~12 ms between the mixer and the speaker
RESTART_WITHIN_S = 3.0  # "previous" restarts the current section when this far into it
CHAPTER_WAIT_S = 2.0  # the longest a skip waits for a section whose start is not final
VOLUME_STEP = 0.1
WINDOW_SIZE = (720, 720)
TERMINAL_POLL_S = 0.1
END_TEXT_S = 6.0  # how long the window shows the end-of-session text (a key closes it sooner)


def _pygame():
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    # Ctrl-C must stay Python's KeyboardInterrupt (exit 130), not an SDL quit event.
    os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")
    if "pygame" in sys.modules:
        return sys.modules["pygame"]
    # pygame looks for its data files through pkg_resources when it can import it, which costs
    # ~0.1 s of start-up; without it pygame uses its own folder, which is where they are.
    blocked = "pkg_resources" not in sys.modules
    if blocked:
        sys.modules["pkg_resources"] = None  # makes `import pkg_resources` raise ImportError
    try:
        import pygame
    finally:
        if blocked and sys.modules.get("pkg_resources", 0) is None:
            del sys.modules["pkg_resources"]
    return pygame


def import_pygame() -> None:
    """Import pygame now (about 50 ms), without opening anything."""
    _pygame()


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C libraries (ALSA prints a dozen lines when there is no card) for a moment.

    The failure still reaches the user as one line: pygame's own error message.
    """
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_mixer(sample_rate: int = 44100):
    """Open the audio output at `sample_rate`, stereo, 16-bit; returns the pygame module.

    Raises
    ------
    errors.AudioDeviceError
        There is no audio output device, or it refuses that format.
    """
    pygame = _pygame()
    wanted = (sample_rate, -16, 2)
    if pygame.mixer.get_init() == wanted:
        return pygame
    if pygame.mixer.get_init():
        pygame.mixer.quit()
    try:
        with _quiet_stderr():
            pygame.mixer.init(
                frequency=sample_rate,
                size=-16,
                channels=2,
                buffer=MIXER_BUFFER_SAMPLES,
                allowedchanges=0,
            )
    except pygame.error as exc:
        raise AudioDeviceError(
            i18n._(
                "no audio output device ({problem}); connect or enable one, or write the "
                "session to a file with: relax export SESSION"
            ).format(problem=exc)
        ) from None
    if pygame.mixer.get_init() != wanted:
        got = pygame.mixer.get_init()
        pygame.mixer.quit()
        raise AudioDeviceError(
            i18n._(
                "the audio device does not accept {rate} Hz stereo 16-bit (got {got}); "
                "write the session to a file with: relax export SESSION"
            ).format(rate=sample_rate, got=got)
        )
    return pygame


def make_sound(pygame):
    """int16 (n, 2) frames -> a `pygame.mixer.Sound`, copied as they are (no conversion)."""

    def make(frames: np.ndarray):
        return pygame.mixer.Sound(buffer=np.ascontiguousarray(frames, dtype="<i2").tobytes())

    return make


class Controller:
    """Applies commands to a stream: pause, sections, volume, background mute, quit.

    Example
    -------
    >>> controller.handle(keys.NEXT)   # the next section, from its first sample
    True
    """

    def __init__(self, stream: Stream, volume: float = 1.0):
        self.stream = stream
        self.volume = volume
        self.muted = stream.mix.background_gain == 0
        self.quit = False
        stream.channel.set_volume(volume)

    @property
    def timeline(self):
        return self.stream.timeline

    def handle(self, command: str | None) -> bool:
        """Apply `command`; False once the listener asked to quit."""
        stream = self.stream
        if command == keys.PAUSE:
            stream.resume() if stream.paused else stream.pause()
        elif command == keys.NEXT:
            at = stream.target_sample()
            index = self.timeline.chapter_at(at)
            if index + 1 < len(self.timeline.chapters):
                start = self._chapter_start(index + 1)
                if start is not None:
                    stream.seek(start)
        elif command == keys.PREV:
            at = stream.target_sample()
            index = self.timeline.chapter_at(at)
            chapters = self.timeline.chapters
            restart = int(RESTART_WITHIN_S * self.timeline.sample_rate)
            if index >= 0 and at - chapters[index].start_sample > restart:
                stream.seek(chapters[index].start_sample)
            elif index >= 1:
                stream.seek(chapters[index - 1].start_sample)
            else:
                stream.seek(0)
        elif command in (keys.LOUDER, keys.SOFTER):
            step = VOLUME_STEP if command == keys.LOUDER else -VOLUME_STEP
            self.volume = round(min(1.0, max(0.0, self.volume + step)), 2)
            stream.channel.set_volume(self.volume)
        elif command == keys.MUTE:
            self.muted = not self.muted
            stream.remix(Mix(background_gain=0.0 if self.muted else 1.0))
        elif command == keys.QUIT:
            self.quit = True
            stream.stop()
        return not self.quit

    def _chapter_start(self, index: int) -> int | None:
        # While speech is still being synthesized a later section's start may move: wait (a
        # moment: synthesis runs far ahead of the playhead) until it is where it will stay;
        # None (the key does nothing) if that takes longer than CHAPTER_WAIT_S.
        growing = self.stream.growing
        if growing is not None:
            settled = growing.wait(
                lambda g: g.timeline.chapters[index].start_sample < g.final_until,
                CHAPTER_WAIT_S,
            )
            if not settled or growing.error is not None:
                return None
        return self.timeline.chapters[index].start_sample

    def decorate(self, state: pacer.PacerState) -> pacer.PacerState:
        return dataclasses.replace(
            state, paused=self.stream.paused, muted=self.muted, volume=self.volume
        )


def display_available() -> bool:
    """Whether a window can be opened (an SDL video driver is chosen, or a desktop is running)."""
    if os.environ.get("SDL_VIDEODRIVER"):
        return True
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def play(
    prepared,
    gain: float,
    *,
    start_sample: int = 0,
    window: bool = True,
    volume: float = 1.0,
    status=None,
    stdin=None,
    heard: list[tuple[int, int]] | None = None,
    end_text=None,
    surface=None,
    background: bool = True,
) -> str:
    """Play a prepared session until it ends or the listener quits.

    Parameters
    ----------
    prepared : `pipeline.Prepared`, or a `pipeline.Growing` (speech still being synthesized:
        the stream waits at the edge of what is final, see `Stream`).
    gain : the loudness gain (`pipeline.gain(prepared)`), the same the export uses.
    start_sample : where to begin (a chapter start for `--from`).
    window : open the pacer window when a display is available (else the terminal line).
    volume : the listener's starting volume, 0-1 (applied on the mixer channel).
    status : where the terminal status line goes (default stderr; drawn only on a terminal).
    stdin : where terminal keys come from (default sys.stdin; read only when it is a terminal).
    heard : a list that receives the session-sample ranges the listener heard (`Stream`).
    end_text : called once when the session has played to its end; the text it returns (None or
        "" for none) is shown in the window's caption for `END_TEXT_S` (a key or closing the
        window ends that sooner), or printed as one line to `status` without a window.
    surface : draw into this window (the library's) instead of opening one; it stays open.
    background : False starts with the background off (as the `m` key does).

    Every text the player adds (flags, key hints, phase words, the end text) is in the
    session's language when relax has a catalog for it (`i18n.using`).

    Returns
    -------
    str
        "end" (played to the end), "quit" (q or Esc) or "closed" (the window was closed).

    Raises
    ------
    errors.AudioDeviceError
        No audio output device.
    KeyboardInterrupt
        Ctrl-C; the sound has stopped and the window is closed by then.
    """
    pygame = open_mixer(prepared.timeline.sample_rate)
    status = status if status is not None else sys.stderr
    stream = Stream(
        prepared.timeline,
        prepared.sources,
        gain,
        pygame.mixer.Channel(0),
        make_sound(pygame),
        start_sample=start_sample,
        growing=prepared if hasattr(prepared, "final_until") else None,
        heard=heard,
    )
    language = prepared.timeline.session.language
    try:
        with i18n.using(language):
            controller = Controller(stream, volume)
            if not background:
                controller.handle(keys.MUTE)
            stream.start_feeder()  # sound first: the window may take a moment to open
            first = None
            if window:
                first = controller.decorate(pacer.Pacer(stream.timeline).state_at(start_sample))
            if surface is not None:
                screen = surface
            elif window:
                screen = _open_window(pygame, prepared.timeline, status, first)
            else:
                screen = None
            return _loops(pygame, stream, controller, screen, stdin, status, end_text)
    finally:
        stream.stop()
        if surface is None:
            with contextlib.suppress(Exception):  # noqa: BLE001 - best effort on the way out
                pygame.display.quit()
        pygame.mixer.quit()


def _loops(pygame, stream, controller, screen, stdin, status, end_text) -> str:
    with keys.TerminalKeys(stdin) as terminal:
        if screen is not None:
            result = _window_loop(pygame, stream, controller, terminal)
        else:
            result = _terminal_loop(stream, controller, terminal, status)
        text = end_text() if result == "end" and end_text is not None else None
        if text and screen is not None:
            _show_end_text(pygame, stream, controller, terminal, text)
        elif text:
            print(text, file=status, flush=True)
        return result


def _open_window(pygame, timeline, status, first: pacer.PacerState | None = None):
    """The window, with a first frame on it at once (`first`, else the background and title);
    None when there is no display, with one line on `status` saying why."""
    if not display_available():
        return None
    try:
        with _quiet_stderr():  # SDL's own complaints; the reason is in the line below
            pygame.display.init()
            pygame.display.set_caption(f"{timeline.session.title} - relax")
            screen = pygame.display.set_mode(WINDOW_SIZE, pygame.RESIZABLE)
        driver = pygame.display.get_driver()
        asked = os.environ.get("SDL_VIDEODRIVER", "").strip().lower()
        if driver in _INVISIBLE_DRIVERS and driver != asked:
            # SDL fell back to drawing into memory: the display named in DISPLAY or
            # WAYLAND_DISPLAY could not be reached, and nobody would see the window.
            raise pygame.error("the display cannot be reached")
    except pygame.error as exc:
        print(f"relax: no window ({exc}); showing the session in the terminal", file=status)
        with contextlib.suppress(pygame.error):
            pygame.display.quit()
        return None
    # A frame at once: a new window is black until something is drawn, and the loop's first
    # frame may wait a moment for the speech being synthesized.
    if first is None:
        first = pacer.PacerState(
            timeline.session.title, "", None, "", 0.0, 0.0, 0, 0.0, "", 0.0, 0.0
        )
    pacer.draw(screen, first)
    pygame.display.flip()
    return screen


_INVISIBLE_DRIVERS = ("offscreen", "dummy")  # video drivers that show nothing


def _frame_rate(pygame) -> int:
    rates = []
    with contextlib.suppress(AttributeError, pygame.error):
        rates = pygame.display.get_desktop_refresh_rates()  # pygame-ce, newer pygame
    rate = max(rates, default=0)
    return int(rate) if 30 <= rate <= 240 else 60


def _check(stream: Stream) -> None:
    if stream.error is not None:
        raise stream.error


def _window_loop(pygame, stream, controller, terminal) -> str:
    view = pacer.Pacer(stream.timeline)
    clock = pygame.time.Clock()
    fps = _frame_rate(pygame)
    while True:
        _check(stream)
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                return "closed"
            if event.type == pygame.KEYDOWN and not controller.handle(keys.from_pygame(event)):
                return "quit"
        for command in terminal.read(0) if terminal.active else ():
            if not controller.handle(command):
                return "quit"
        if stream.finished:
            return "end"
        if view.timeline is not stream.timeline:  # more of the speech is known
            view = pacer.Pacer(stream.timeline)
        state = controller.decorate(view.state_at(stream.position_sample()))
        pacer.draw(pygame.display.get_surface(), state)
        pygame.display.flip()
        clock.tick(fps)  # paces the drawing only; the sound is paced by the mixer


def _show_end_text(pygame, stream, controller, terminal, text: str) -> None:
    # The last frame, with `text` in the caption's place, until a key, a close or END_TEXT_S.
    state = controller.decorate(
        pacer.Pacer(stream.timeline).state_at(stream.timeline.total_samples)
    )
    state = dataclasses.replace(state, caption=text)
    clock = pygame.time.Clock()
    deadline = pygame.time.get_ticks() + int(END_TEXT_S * 1000)
    while pygame.time.get_ticks() < deadline:
        for event in pygame.event.get():
            if event.type in (pygame.QUIT, pygame.KEYDOWN):
                return
        if terminal.active and terminal.read(0):
            return
        pacer.draw(pygame.display.get_surface(), state)
        pygame.display.flip()
        clock.tick(20)  # a still frame: redrawn only for a resize


class StatusLine:
    """The terminal status line, redrawn in place at the terminal's width of the moment.

    Each redraw ends with "erase to the end of the line", so a shorter line leaves nothing of a
    longer one behind. When the terminal has been narrowed, the terminal has re-wrapped the last
    line over more rows (as terminals that reflow do: VTE, Konsole, kitty, iTerm2, Windows
    Terminal, tmux); the redraw goes up to its first row and erases to the end of the screen.
    """

    def __init__(self, stream):
        self.stream = stream
        self._drawn = 0  # characters of the line on the terminal now

    def _back_to_start(self, width: int) -> str:
        rows = -(-self._drawn // max(1, width))  # rows the old line takes at this width
        if rows > 1:
            return f"\r\033[{rows - 1}A\033[J"
        return "\r"

    def draw(self, line: str, width: int) -> None:
        self.stream.write(self._back_to_start(width) + line + "\033[K")
        self.stream.flush()
        self._drawn = len(line)

    def clear(self, width: int) -> None:
        self.stream.write(self._back_to_start(width) + "\033[K")
        self.stream.flush()
        self._drawn = 0


def terminal_columns(stream) -> int:
    """The width of the terminal `stream` writes to (80 when that cannot be told)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return shutil.get_terminal_size((80, 24)).columns


def _terminal_loop(stream, controller, terminal, status) -> str:
    view = pacer.Pacer(stream.timeline)
    show = hasattr(status, "isatty") and status.isatty()
    line = StatusLine(status)
    try:
        while True:
            _check(stream)
            for command in terminal.read(TERMINAL_POLL_S) if terminal.active else ():
                if not controller.handle(command):
                    return "quit"
            if stream.finished:
                return "end"
            if not terminal.active:
                stream.wait(TERMINAL_POLL_S)
            if show:
                if view.timeline is not stream.timeline:  # more of the speech is known
                    view = pacer.Pacer(stream.timeline)
                state = controller.decorate(view.state_at(stream.position_sample()))
                width = terminal_columns(status)
                line.draw(pacer.status_line(state, width), width)
    finally:
        if show:
            line.clear(terminal_columns(status))
