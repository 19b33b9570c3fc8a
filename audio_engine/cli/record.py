"""`relax record SESSION`: record the lines of a session for the recorded voice."""

from __future__ import annotations

import contextlib
import select
import sys
import time
from pathlib import Path

from audio_engine.cli import _common
from audio_engine.errors import UsageError
from audio_engine.i18n import _, ngettext


def register(sub) -> None:
    parser = sub.add_parser(
        "record",
        help="record a session's lines in your own voice (the recorded voice)",
        description="Walk every line the session speaks that has no recording yet, in the order "
        "it speaks them: see the text, speak after the count-in, hear it back, keep, redo or "
        "skip. Ctrl-C stops and keeps what was kept. The recordings go to the folder of "
        "`voice: {engine: recorded, folder: ...}` in the script, or to --voice-folder.",
    )
    _common.add_session_argument(parser)
    parser.add_argument(
        "--voice-folder", type=Path, metavar="DIR", help="the folder of recordings to fill"
    )
    parser.add_argument(
        "--no-window", action="store_true", help="show the lines in the terminal, not a window"
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--list",
        action="store_true",
        help="print number, key, slot (seconds), recorded and text of every line",
    )
    what.add_argument(
        "--csv", type=Path, metavar="FILE", help="write number, key, text, slot to a CSV file"
    )
    what.add_argument(
        "--import",
        dest="import_dir",
        type=Path,
        metavar="DIR",
        help="take WAV, FLAC or OGG files recorded elsewhere, named by key or by line number",
    )
    parser.add_argument("--speaker", metavar="NAME", help="the speaker's name, for voice.yaml")
    parser.add_argument(
        "--licence", metavar="TEXT", help="the recordings' licence, for voice.yaml (CC-BY-4.0)"
    )
    parser.add_argument(
        "--count-in", type=int, default=3, metavar="N", help="seconds counted before each take"
    )
    parser.set_defaults(run=run)


def run(args) -> int:
    from audio_engine import record

    if args.count_in < 0:
        raise UsageError("--count-in must be 0 or more seconds")
    session = _common.load_session(args)
    folder = record.voice_folder(session, args.voice_folder)
    found = record.lines(session, folder)
    if args.list:
        # number, key, slot in seconds ("-": the line makes its own room), recorded, text
        for line in found:
            slot = "-" if line.slot_s is None else f"{line.slot_s:.2f}"
            mark = _("yes") if line.path else _("no")
            print(f"{line.number:>4}  {line.key}  {slot:>6}  {mark:<3}  {line.text}")
        return 0
    if args.csv is not None:
        from audio_engine import fsio

        fsio.atomic_write(args.csv, record.csv_text(found).encode("utf-8"), make_folder=False)
        print(_("{count} lines written to {file}").format(count=len(found), file=args.csv))
        return 0
    if args.import_dir is not None:
        done, unknown = record.import_folder(
            found, args.import_dir, folder, speaker=args.speaker, licence=args.licence
        )
        missing = len(record.lines(session, folder)) - sum(
            1 for line in record.lines(session, folder) if line.path
        )
        imported = ngettext(
            "imported {n} recording into {folder}",
            "imported {n} recordings into {folder}",
            len(done),
        ).format(n=len(done), folder=folder)
        left = ngettext("{n} line still has none", "{n} lines still have none", missing).format(
            n=missing
        )
        print(f"{imported}; {left}")
        if unknown:
            print(
                _("relax: warning: no line has these names: {names}").format(
                    names=", ".join(unknown)
                ),
                file=sys.stderr,
            )
        return 0
    todo = [line for line in found if line.path is None]
    if not todo:
        print(_("every line already has a recording in {folder}").format(folder=folder))
        return 0
    ui = _Terminal() if args.no_window else _Window()
    capture = record.Capture()
    kept = 0
    try:
        for index, line in enumerate(todo, 1):
            while True:
                ui.show(line, index, len(todo))
                ui.count_in(args.count_in)
                take = capture.take(ui.stop_requested, on_level=ui.level)
                try:
                    clip = record.trimmed(take)
                except Exception:  # noqa: BLE001 - only silence, or too short: say so, again
                    ui.tell(_("nothing heard; once more"))
                    continue
                length_s = clip.size / 44100
                ui.result(length_s, line.slot_s)
                ui.play(clip)
                choice = ui.ask(_("keep, redo or skip? [k/r/s] "), "krs")
                if choice == "k":
                    record.keep(line, take, folder, speaker=args.speaker, licence=args.licence)
                    kept += 1
                    break
                if choice == "s":
                    break
    except _Finished:
        pass
    finally:
        capture.close()
        ui.close()
        kept_text = ngettext(
            "{kept} recording kept in {folder}", "{kept} recordings kept in {folder}", kept
        )
        print(kept_text.format(kept=kept, folder=folder))
    return 0


class _Finished(Exception):
    """The input ended: stop, keeping what was kept."""


class _Terminal:
    """The lines in the terminal; Enter (an empty line) stops a take. A line typed during a take
    that is not empty is kept as the answer to the next question."""

    def __init__(self):
        self._answers: list[str] = []
        self._ended = False

    def show(self, line, index: int, total: int) -> None:
        slot = "" if line.slot_s is None else _(" (it has {s:.2f} s)").format(s=line.slot_s)
        print(f"\n[{index}/{total}] {line.key}{slot}\n\n    {line.text}\n", flush=True)

    def count_in(self, seconds: int) -> None:
        for n in range(seconds, 0, -1):
            print(f"{n}...", end=" ", flush=True)
            time.sleep(1)
        print(_("speak now (Enter stops)"), flush=True)

    def stop_requested(self) -> bool:
        if self._ended:
            return False
        with contextlib.suppress(OSError, ValueError):
            ready, _w, _x = select.select([sys.stdin], [], [], 0)
            if ready:
                typed = sys.stdin.readline()
                if not typed:
                    self._ended = True
                elif typed.strip():
                    self._answers.append(typed)
                else:
                    return True
        return False

    def level(self, seconds: float, db: float) -> None:
        pass

    def tell(self, message: str) -> None:
        print(message, flush=True)

    def result(self, length_s: float, slot_s: float | None) -> None:
        if slot_s is None:
            print(_("{length:.2f} s").format(length=length_s), flush=True)
        else:
            verdict = _("fits") if length_s <= slot_s else _("TOO LONG")
            print(
                _("{length:.2f} s of {slot:.2f} s: {verdict}").format(
                    length=length_s, slot=slot_s, verdict=verdict
                ),
                flush=True,
            )

    def play(self, clip) -> None:
        _play(clip)

    def ask(self, prompt: str, choices: str) -> str:
        while True:
            print(prompt, end="", flush=True)
            answer = self._answers.pop(0) if self._answers else sys.stdin.readline()
            if not answer:  # the end of the input: nothing more is kept
                print(flush=True)
                raise _Finished
            answer = answer.strip().lower()[:1]
            if answer and answer in choices:
                print(answer, flush=True)
                return answer

    def close(self) -> None:
        pass


class _Window(_Terminal):
    """The line large in a window; Enter (or Space) stops a take, K, R and S answer."""

    def __init__(self):
        super().__init__()
        import pygame

        from audio_engine.player.app import display_available

        if not display_available():
            raise UsageError("no display for a window: use --no-window")
        pygame.init()
        self.pygame = pygame
        self.screen = pygame.display.set_mode((1000, 520), pygame.RESIZABLE)
        pygame.display.set_caption("relax record")
        self.big = pygame.font.Font(None, 56)
        self.small = pygame.font.Font(None, 30)
        self.lines: list[str] = []
        self.status = ""

    def _draw(self) -> None:
        pygame = self.pygame
        self.screen.fill((24, 28, 36))
        width = self.screen.get_width() - 80
        y = 60
        for paragraph in self.lines:
            words, row = paragraph.split(), ""
            for word in words:
                trial = f"{row} {word}".strip()
                if self.big.size(trial)[0] > width and row:
                    self.screen.blit(self.big.render(row, True, (235, 235, 235)), (40, y))
                    y += 64
                    row = word
                else:
                    row = trial
            self.screen.blit(self.big.render(row, True, (235, 235, 235)), (40, y))
            y += 80
        status = self.small.render(self.status, True, (170, 190, 210))
        self.screen.blit(status, (40, self.screen.get_height() - 60))
        pygame.display.flip()

    def _events(self) -> list:
        events = self.pygame.event.get()
        for event in events:
            if event.type == self.pygame.QUIT:
                raise KeyboardInterrupt
        return events

    def show(self, line, index: int, total: int) -> None:
        super().show(line, index, total)
        slot = "" if line.slot_s is None else _("  it has {s:.2f} s").format(s=line.slot_s)
        self.lines = [line.text]
        self.status = f"{index}/{total}  {line.key}{slot}"
        self._draw()

    def count_in(self, seconds: int) -> None:
        base = self.status
        for n in range(seconds, 0, -1):
            self.status = f"{base}   {n}..."
            self._draw()
            end = time.monotonic() + 1
            while time.monotonic() < end:
                self._events()
                time.sleep(0.02)
        self.status = f"{base}   " + _("speak now (Enter stops)")
        self._draw()

    def stop_requested(self) -> bool:
        keys = (self.pygame.K_RETURN, self.pygame.K_SPACE, self.pygame.K_KP_ENTER)
        return any(e.type == self.pygame.KEYDOWN and e.key in keys for e in self._events())

    def tell(self, message: str) -> None:
        super().tell(message)
        self.status = message
        self._draw()

    def result(self, length_s: float, slot_s: float | None) -> None:
        super().result(length_s, slot_s)
        fits = "" if slot_s is None else f" / {slot_s:.2f} s"
        self.status = f"{length_s:.2f} s{fits}"
        self._draw()

    def ask(self, prompt: str, choices: str) -> str:
        self.status = f"{self.status}   {prompt}"
        self._draw()
        while True:
            for event in self._events():
                if event.type == self.pygame.KEYDOWN and event.unicode.lower() in choices:
                    return event.unicode.lower()
            time.sleep(0.02)

    def close(self) -> None:
        self.pygame.display.quit()


def _play(clip) -> None:
    """Play a clip back (float32 mono at 44.1 kHz) and wait for its end."""
    import numpy as np

    from audio_engine.player import open_mixer

    pygame = open_mixer(44100)
    frames = np.repeat(np.clip(clip * 32767.0, -32768, 32767).astype("<i2")[:, None], 2, axis=1)
    sound = pygame.mixer.Sound(buffer=np.ascontiguousarray(frames).tobytes())
    channel = sound.play()
    end = time.monotonic() + clip.size / 44100 + 0.2
    while channel is not None and channel.get_busy() and time.monotonic() < end:
        time.sleep(0.02)
