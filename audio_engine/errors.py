"""The project's error types: one base, a subclass per layer.

The command line turns any `RelaxError` into one line on stderr and a non-zero exit code; nothing
else in the package catches broad exceptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# C0 and C1 control characters: never printed as they are (a script's key or a file's name could
# otherwise move the cursor, retitle the terminal or break a message's one line).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with each control character written as an escape (`\\u001b`)."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class RelaxError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a script, in the compiler convention `FILE:LINE:COL: error: MESSAGE`."""

    file: str
    line: int  # 1-based
    col: int  # 1-based
    path: str  # value path, e.g. "steps[3].breathe.inhale"; "" for the document
    message: str
    severity: str = "error"  # "error", "warning", or "note" (a second place of a problem)
    notes: tuple[Diagnostic, ...] = ()  # other places of the same problem, printed after it

    def __str__(self) -> str:
        """The problem's line, then one `FILE:LINE:COL: note: ...` line per other place."""
        where = f"{self.path}: " if self.path else ""
        head = f"{self.file}:{self.line}:{self.col}: {self.severity}: {where}{self.message}"
        head = printable(head)
        return "\n".join([head, *(str(note) for note in self.notes)])


class ScriptError(RelaxError):
    """A session script is invalid; carries every diagnostic found in it."""

    def __init__(self, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]):
        self.diagnostics = tuple(diagnostics)
        errors = [d for d in self.diagnostics if d.severity == "error"]
        super().__init__("\n".join(str(d) for d in (errors or self.diagnostics)))

    @property
    def first(self) -> Diagnostic:
        return self.diagnostics[0]


class SessionNotFound(RelaxError):
    """A SESSION argument names no built-in session, user session or file."""


class TimingError(ScriptError):
    """Speech does not fit the time the script gives it (found when compiling with a voice)."""


class TTSError(RelaxError):
    """The text-to-speech engine is missing, failed, or has no voice for a language."""


class AudioDeviceError(RelaxError):
    """No audio output device could be opened."""


class ExportError(RelaxError):
    """An export could not be written."""


class UsageError(RelaxError):
    """The command line was used wrongly."""

    exit_code = 2
