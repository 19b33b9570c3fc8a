"""Session scripts: read a YAML script, check every rule of the format, build the `Session`.

Entry points:

- `load(path)` / `loads(text)`: the `model.Session`, or `errors.ScriptError` listing every
  problem (errors and warnings, each `FILE:LINE:COL: error: PATH: MESSAGE`).
- `check(path)` / `checks(text)`: never raise for a bad script; return `(session_or_None,
  diagnostics)` with warnings too, in file order.
- `json_schema()`: the JSON Schema (draft 2020-12) of the format, for editors and other tools.

Reading is safe: plain YAML data only (no object tags), at most 1 MiB, aliases may not expand the
document past that, nesting is bounded. The speech-length rules need the voice and live in
`timeline.compile`; everything that can be checked without a voice is checked here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from audio_engine import fsio, model
from audio_engine.errors import Diagnostic, ScriptError
from audio_engine.script._check import Checker, default_id, sort_diagnostics, split_file_name
from audio_engine.script._schema import json_schema
from audio_engine.script._yaml import MAX_BYTES, compose

__all__ = [
    "check",
    "checks",
    "default_id",
    "json_schema",
    "sort_diagnostics",
    "split_file_name",
    "load",
    "loads",
    "MAX_BYTES",
]

Diagnostics = tuple[Diagnostic, ...]


def _too_big(file: str, size: int) -> Diagnostic:
    return Diagnostic(
        file, 1, 1, "", f"the file is {size} bytes; the limit is 1 MiB ({MAX_BYTES} bytes)"
    )


def _unreadable(file: str, source: Path, exc: fsio.FsError) -> Diagnostic:
    if not os.path.lexists(source):
        return Diagnostic(file, 1, 1, "", "no such file")
    if "larger than the limit" in exc.reason:
        try:
            return _too_big(file, source.stat().st_size)
        except OSError:
            pass
    return Diagnostic(file, 1, 1, "", f"cannot read the file: {exc.reason}")


def _check_text(
    text: str,
    file: str,
    *,
    base_dir: Path | None,
    allowed_dirs: Sequence[str | os.PathLike],
    source: Path | None,
    partial: list | None = None,
    bound: list | None = None,
    sounds: list | None = None,
) -> tuple[model.Session | None, Diagnostics]:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        return None, (_too_big(file, size),)
    if text.startswith("\ufeff"):
        text = text[1:]
    root, diagnostics = compose(text, file)
    if root is None and diagnostics:
        return None, sort_diagnostics(diagnostics)
    checker = Checker(file, base_dir=base_dir, allowed_dirs=allowed_dirs, source=source)
    checker.diagnostics.extend(diagnostics)
    session = checker.session(root)
    found = sort_diagnostics(checker.diagnostics)
    if any(d.severity == "error" for d in found):
        if partial is not None and (rest := checker.partial_session()) is not None:
            partial.append(rest)
        if bound is not None and (least := checker.bound_session()) is not None:
            bound.append(least)
        if sounds is not None:
            sounds.extend(checker.sound_layers)
        return None, found
    return session, found


def checks(
    text: str,
    *,
    filename: str = "<string>",
    base_dir: str | os.PathLike | None = None,
    allowed_dirs: Sequence[str | os.PathLike] = (),
) -> tuple[model.Session | None, Diagnostics]:
    """Check a script given as text; never raises for problems in the script.

    Parameters
    ----------
    text : str
        The YAML script.
    filename : str
        Shown in diagnostics; its name up to the first dot is the default id (unless it starts
        with "<").
    base_dir : path, optional
        The folder that relative sound file paths start from.
    allowed_dirs : sequence of paths
        Further folders sound files may come from.

    Returns
    -------
    (Session or None, tuple of Diagnostic)
        The session (None if there is any error) and every diagnostic in file order.
    """
    base = None if base_dir is None else Path(base_dir)
    return _check_text(text, filename, base_dir=base, allowed_dirs=allowed_dirs, source=None)


def loads(
    text: str,
    *,
    filename: str = "<string>",
    base_dir: str | os.PathLike | None = None,
    allowed_dirs: Sequence[str | os.PathLike] = (),
) -> model.Session:
    """Like `checks`, but return the session or raise `ScriptError` with every diagnostic.

    Examples
    --------
    >>> s = loads("format: 1\\ntitle: T\\nlanguage: en\\nsteps: [Hello]")
    >>> s.steps[0].text
    'Hello'
    """
    session, diagnostics = checks(
        text, filename=filename, base_dir=base_dir, allowed_dirs=allowed_dirs
    )
    if session is None:
        raise ScriptError(diagnostics)
    return session


def check(
    path: str | os.PathLike,
    *,
    allowed_dirs: Sequence[str | os.PathLike] = (),
    partial: list | None = None,
    bound: list | None = None,
    sounds: list | None = None,
) -> tuple[model.Session | None, Diagnostics]:
    """Check the script file at `path`; never raises for problems in the script or file.

    A missing or unreadable file, one over 1 MiB or not UTF-8 is one error diagnostic. Sound
    layer paths start from the script's folder; they may also point into `allowed_dirs` (the
    callers pass the user's sessions folder there: this stage knows no folders of its own). When the script has errors and `partial` is a list, a session of
    the steps that were built and have speech to fit in their own time (say with a duration,
    breathe, stretch, scan) is appended to it, so the voice can still time them; and to
    `bound`, a session of the valid steps of the script's own step list (it lasts at least as
    long as that); and to `sounds`, the sound layers that were built (their files can still be
    opened to check that they play).

    Returns
    -------
    (Session or None, tuple of Diagnostic)
        The session (None if there is any error) and every diagnostic in file order.
    """
    file = str(path)
    source = Path(path)
    try:
        # A regular file only (a FIFO or /dev/zero is refused without waiting), and never more
        # than the limit read, whatever its size claims.
        data = fsio.read_checked(source, MAX_BYTES)
    except fsio.FsError as exc:
        return None, (_unreadable(file, source, exc),)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        return None, (Diagnostic(file, line, col, "", "the file is not UTF-8 text"),)
    absolute = source.resolve()
    return _check_text(
        text,
        file,
        base_dir=absolute.parent,
        allowed_dirs=allowed_dirs,
        source=absolute,
        partial=partial,
        bound=bound,
        sounds=sounds,
    )


def load(
    path: str | os.PathLike, *, allowed_dirs: Sequence[str | os.PathLike] = ()
) -> model.Session:
    """Load the script file at `path`: the `Session`, or `ScriptError` with every diagnostic.

    Examples
    --------
    >>> session = load("sessions/breathing-478.en.yaml")  # doctest: +SKIP
    >>> session.id
    'breathing-478'
    """
    session, diagnostics = check(path, allowed_dirs=allowed_dirs)
    if session is None:
        raise ScriptError(diagnostics)
    return session
