"""Checking a composed YAML node tree against the session format, and building the model.

`build(root, file, ...)` walks the tree once, collects every problem as a `Diagnostic` with its
line, column and value path, and returns the `Session` when there was no error. The rules are
those of SESSION-FORMAT.md (format version 1); the tables at the top are shared with the JSON
Schema so the two cannot drift.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import stat
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from audio_engine import fsio, model
from audio_engine.errors import Diagnostic
from audio_engine.script._breathe import BREATHE_KEYS, check_breathe  # noqa: F401 (a table)
from audio_engine.script._yaml import BAD_TAG, MERGE_TAG

# ---- the format's limits and tables (the JSON Schema reads these too) --------------------------

MAX_TEXT_CHARS = 2000
MAX_TITLE_CHARS = 120
MAX_ID_CHARS = 100
MAX_REPEAT_DEPTH = 8
MAX_REPEAT = 1000
MAX_CYCLES = 1000
MAX_SESSION_S = 4 * 3600.0
WARN_SESSION_S = 2 * 3600.0
WARN_PAUSE_S = 10 * 60.0
WARN_COUNT_PHASE_S = 2.0
RATE_RANGE_WPM = (80, 300)
DRONE_RANGE_HZ = (20.0, 2000.0)
CARRIER_RANGE_HZ = (20.0, 2000.0)
BEAT_RANGE_HZ = (0.5, 40.0)
SOUND_EXTENSIONS = (".wav", ".flac", ".ogg")
DEFAULT_FADE_IN_S = 3.0
DEFAULT_FADE_OUT_S = 5.0
DEFAULT_DUCK = 0.5
DEFAULT_STRETCH_REST_S = 3.0

ID_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
LANGUAGE_PATTERN = r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{1,8})*$"
_NUM = r"\d+(?:\.\d+)?"
# A duration string: plain seconds, or h/m/s/ms parts in that order ("1m30s", "500ms", "2.5s").
DURATION_PATTERN = (
    rf"^\s*(?:{_NUM}|(?=\d)(?:{_NUM}\s*h\s*)?(?:{_NUM}\s*m(?!s)\s*)?"
    rf"(?:{_NUM}\s*s\s*)?(?:{_NUM}\s*ms\s*)?)\s*$"
)
POSITIVE_DURATION_PATTERN = r"^(?=.*[1-9])" + DURATION_PATTERN[1:]
_DURATION_PARTS = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|h|m|s)?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # what a text may not hold (not \t, \n)
_SPEAKABLE = re.compile(r"\w")  # a letter or digit: something a voice can say
DURATION_HINT = 'a duration (seconds, "4s", "1m30s", "500ms")'

TOP_KEYS = (
    "format",
    "title",
    "language",
    "id",
    "description",
    "tags",
    "voice",
    "background",
    "steps",
)
TOP_REQUIRED = ("format", "title", "language", "steps")
VOICE_KEYS = ("engine", "name", "rate", "volume", "folder", "fallback")
ACTIONS = ("say", "pause", "chime", "section", "breathe", "stretch", "scan", "repeat")
STEP_OPTIONS: dict[str, tuple[str, ...]] = {
    "say": ("duration", "voice"),
    "pause": ("voice",),
    "chime": ("volume", "voice"),
    "section": ("voice",),
    "breathe": ("voice",),
    "stretch": ("voice",),
    "scan": ("voice",),
    "repeat": ("steps", "voice"),
}
SILENT_ACTIONS = ("pause", "chime", "section")  # a voice on these has nothing to speak
MAX_EXPANDED_STEPS = 100_000  # steps once every repeat is unrolled
STRETCH_KEYS = ("name", "say", "sides", "hold", "countdown", "rest")
SCAN_KEYS = ("prompt", "regions", "dwell")
ACTION_SETTINGS = {"breathe": BREATHE_KEYS, "stretch": STRETCH_KEYS, "scan": SCAN_KEYS}
LAYER_KINDS = ("drone", "binaural", "noise", "sound")
LAYER_SHARED = ("volume", "fade_in", "fade_out", "duck")
LAYER_OPTIONS: dict[str, tuple[str, ...]] = {
    "drone": ("frequency",),
    "binaural": ("carrier", "beat"),
    "noise": ("color",),
    "sound": ("file", "loop"),
}
LAYER_REQUIRED: dict[str, tuple[str, ...]] = {
    "drone": ("frequency", "volume"),
    "binaural": ("carrier", "beat", "volume"),
    "noise": ("color", "volume"),
    "sound": ("file", "volume"),
}

_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_QUOTABLE = (_INT, _FLOAT, _BOOL, _TIMESTAMP)


def _looks_like_ramp(node: Node) -> bool:
    """A mapping with a ramp's keys (`{from: 4, to: 6}`) where a single value is wanted."""
    if not isinstance(node, MappingNode):
        return False
    keys = {k.value for k, _ in node.value if isinstance(k, ScalarNode)}
    return bool(keys & {"from", "to", "step"})


class _Bad:
    """Marks a value that was wrong (and reported); never stored in the model."""

    def __repr__(self) -> str:
        return "<bad>"


BAD: Any = _Bad()


@dataclass
class _Pair:
    name: str
    key: Node
    value: Node


def _join(path: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{path}[{name}]"
    return f"{path}.{name}" if path else name


def _format_seconds(seconds: float) -> str:
    """`45 s`, `12 min 30 s`, `4 h 0.001 s`: never rounded to a value that hides a limit's
    excess, and never a 300-digit count (a huge value is said in powers of ten)."""
    if not math.isfinite(seconds):
        return "forever"
    if seconds < 60:
        return f"{_plain(seconds)} s"
    if seconds >= 1e9:
        return f"{seconds:.3g} s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    fraction = round(seconds - whole, 6)
    parts = [f"{hours} h"] if hours else []
    if minutes:
        parts.append(f"{minutes} min")
    if secs or fraction:
        parts.append(f"{_plain(secs + fraction)} s")
    return " ".join(parts)


def _plain(seconds: float) -> str:
    """Seconds as `:g` writes them, but never in powers of ten (`0.000011`, not `1.1e-05`)."""
    text = f"{seconds:g}"
    if "e" in text:
        text = f"{seconds:.6f}".rstrip("0").rstrip(".")
    return text


def describe(node: Node) -> str:
    """How a found value is named in messages: `"fast"`, `-4`, `true`, `a list`."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    value = node.value
    shown = value if len(value) <= 60 else value[:57] + "..."
    if node.tag == _STR:
        return json.dumps(shown, ensure_ascii=False)
    if node.tag == _NULL:
        return "nothing (null)"
    if node.tag == _TIMESTAMP:
        return f"a date {shown}"
    return shown


def parse_duration_text(text: str) -> float | None:
    """Seconds for a duration string such as "1m30s", or None when it is not one."""
    if not re.match(DURATION_PATTERN, text) or text.endswith("\n"):
        return None
    factors = {"": 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0}
    return sum(float(n) * factors[unit] for n, unit in _DURATION_PARTS.findall(text))


def _suggest(name: str, known: Iterable[str]) -> str:
    known = list(known)
    lowered = {k.lower(): k for k in known}
    if name.lower() in lowered:
        return f"; did you mean '{lowered[name.lower()]}'?"
    close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f" (known keys: {', '.join(known)})" if known else " (it takes no options)"


_ASCII_SPELLING = str.maketrans(
    {"æ": "ae", "ø": "o", "œ": "oe", "ß": "ss", "đ": "d", "ð": "d", "ł": "l", "þ": "th"}
)
_LANGUAGE_PART = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*")


def split_file_name(file_name: str) -> tuple[str, str | None]:
    """(id, language) from a script's file name: `body-scan.nl.yaml` -> ("body-scan", "nl").

    The suffix goes; a last dotted part that is a language tag is the language; the rest becomes
    an id: lower case, with every run of other characters than a-z and 0-9 turned into one `-`
    (`My Session.yaml` -> `my-session`, `scan.v2.yaml` -> `scan-v2`).
    """
    name = Path(file_name).name
    stem, dot, _ = name.rpartition(".")
    stem = stem if dot else name
    language = None
    head, dot, last = stem.rpartition(".")
    if dot and head and _LANGUAGE_PART.fullmatch(last):
        stem, language = head, last
    spelled = stem.lower().translate(_ASCII_SPELLING)  # letters NFKD does not take apart
    ascii_name = unicodedata.normalize("NFKD", spelled).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-"), language


def default_id(file_name: str) -> str:
    """The id a script without `id:` gets from its file name (see `split_file_name`)."""
    return split_file_name(file_name)[0]


class Checker:
    """One pass over one document: diagnostics in `self.diagnostics`, the model from `session()`."""

    def __init__(
        self,
        file: str,
        *,
        base_dir: Path | None,
        allowed_dirs: Sequence[str | os.PathLike] = (),
        source: Path | None = None,
    ):
        self.file = file
        self.base_dir = base_dir
        self.allowed_dirs = tuple(allowed_dirs)
        self.source = source
        self.diagnostics: list[Diagnostic] = []
        self.language: str | None = None
        # Steps whose speech must fit their own time, as built (also when others are bad): the
        # voice can still check them in a script with errors (`partial_session`).
        self.timed_steps: list[model.Step] = []
        self.top_steps: list[model.Step] = []  # the valid steps of the session's own list
        # Sound layers that were built (also when others are bad): their files can still be
        # opened to check that they play.
        self.sound_layers: list[model.SoundFile] = []
        self.steps_origin = model.NO_ORIGIN
        self.session_voice: Any = None
        self.session_language: Any = None
        self.origins: dict[str, tuple[int, int]] = {}  # value path -> its (line, column)

    # ---- reporting -------------------------------------------------------------------------

    def report(
        self,
        node: Node | None,
        path: str,
        message: str,
        severity: str = "error",
        notes: tuple[Diagnostic, ...] = (),
    ) -> None:
        line, col = self._place(node)
        self.diagnostics.append(Diagnostic(self.file, line, col, path, message, severity, notes))

    def note(self, node: Node | None, path: str, message: str) -> Diagnostic:
        """A second place of a problem, for `report(..., notes=...)`."""
        line, col = self._place(node)
        return Diagnostic(self.file, line, col, path, message, "note")

    @staticmethod
    def _place(node: Node | None) -> tuple[int, int]:
        if node is None or node.start_mark is None:
            return 1, 1
        return node.start_mark.line + 1, node.start_mark.column + 1

    def expected(self, node: Node, path: str, what: str, *, text_wanted: bool = False) -> _Bad:
        if node.tag == BAD_TAG:
            return BAD  # its tag was reported already
        hint = ""
        if text_wanted and isinstance(node, ScalarNode) and node.tag in _QUOTABLE:
            hint = " (put it in quotes to use it as text)"
        if _looks_like_ramp(node):
            hint = (
                " with ramp keys (from, to, step): only a breathe step's phase lengths (inhale, "
                "hold, exhale, rest) can change over the cycles"
            )
        self.report(node, path, f"expected {what}, found {describe(node)}{hint}")
        return BAD

    # ---- mappings --------------------------------------------------------------------------

    def seen(self, node: Node, path: str) -> None:
        """Remember where the value at `path` is (for problems found later, with the voice)."""
        mark = node.start_mark
        if mark is not None:
            self.origins[path] = (mark.line + 1, mark.column + 1)

    def pairs(self, node: Node, path: str, what: str) -> list[_Pair] | None:
        """The key/value pairs of a mapping (merge keys applied), or None if it is not one."""
        self.seen(node, path)
        if not isinstance(node, MappingNode) or node.tag == BAD_TAG:
            self.expected(node, path, what)
            return None
        explicit: list[_Pair] = []
        merged: list[_Pair] = []
        seen: dict[str, Node] = {}
        for key, value in node.value:
            if key.tag == MERGE_TAG:
                merged.extend(self._merged(value, path))
                continue
            if not isinstance(key, ScalarNode):
                self.report(key, path, f"expected a key (a name), found {describe(key)}")
                continue
            name = key.value
            if name in seen:
                first = seen[name].start_mark.line + 1
                self.report(
                    key,
                    _join(path, name),
                    f"duplicate key '{name}' (first given on line {first})",
                    notes=(self.note(seen[name], _join(path, name), "first given here"),),
                )
                continue
            seen[name] = key
            explicit.append(_Pair(name, key, value))
        for pair in merged:
            if pair.name not in seen:
                seen[pair.name] = pair.key
                explicit.append(pair)
        return explicit

    def _merged(self, value: Node, path: str) -> list[_Pair]:
        sources = value.value if isinstance(value, SequenceNode) else [value]
        out: list[_Pair] = []
        for source in sources:
            if not isinstance(source, MappingNode):
                self.report(source, path, f"expected a mapping to merge, found {describe(source)}")
                continue
            sub = self.pairs(source, path, "a mapping") or []
            names = {p.name for p in out}
            out.extend(p for p in sub if p.name not in names)
        return out

    def known(
        self, pairs: list[_Pair], path: str, known: Sequence[str], where: str = ""
    ) -> dict[str, _Pair]:
        """Report keys not in `known`; return the known ones by name."""
        out: dict[str, _Pair] = {}
        for pair in pairs:
            if pair.name in known:
                out[pair.name] = pair
            else:
                place = f" in {where}" if where else ""
                self.report(
                    pair.key,
                    _join(path, pair.name),
                    f"unknown key '{pair.name}'{place}{_suggest(pair.name, known)}",
                )
        return out

    def required(self, node: Node, path: str, got: dict[str, _Pair], names: Sequence[str]) -> bool:
        ok = True
        for name in names:
            if name not in got:
                self.report(node, path, f"missing required key '{name}'")
                ok = False
        return ok

    # ---- scalars ---------------------------------------------------------------------------

    def text(
        self,
        node: Node,
        path: str,
        *,
        what: str = "a text",
        max_chars: int = MAX_TEXT_CHARS,
        allow_empty: bool = False,
        spoken: bool = False,
    ) -> Any:
        self.seen(node, path)
        if not isinstance(node, ScalarNode) or node.tag != _STR:
            return self.expected(node, path, what, text_wanted=True)
        value = node.value
        if not allow_empty and not value.strip():
            self.report(node, path, f"expected {what}, found an empty text")
            return BAD
        if spoken and value.strip() and not _SPEAKABLE.search(value):
            self.report(
                node,
                path,
                f"expected {what} with words in it, found {describe(node)}: nothing to say",
            )
            return BAD
        if len(value) > max_chars:
            self.report(
                node,
                path,
                f"the text is {len(value)} characters long; the limit is {max_chars}",
            )
            return BAD
        if found := _CONTROL.search(value):
            self.report(
                node,
                path,
                f"expected {what} without control characters (line breaks and tabs are fine), "
                f"found U+{ord(found.group()):04X} in {describe(node)}",
            )
            return BAD
        return value

    def boolean(self, node: Node, path: str) -> Any:
        self.seen(node, path)
        if isinstance(node, ScalarNode) and node.tag == _BOOL:
            try:
                return bool(_CONSTRUCTOR.construct_yaml_bool(node))
            except KeyError:
                pass
        return self.expected(node, path, "true or false")

    def number(
        self,
        node: Node,
        path: str,
        what: str,
        *,
        low: float | None = None,
        high: float | None = None,
        integer: bool = False,
        low_exclusive: bool = False,
    ) -> Any:
        """A finite number in [low, high] (or (low, high] with low_exclusive); else BAD."""
        self.seen(node, path)
        value = self._numeric(node)
        if value is BAD:
            return self.expected(node, path, what)
        if isinstance(value, str):
            self.report(node, path, f"expected {what}, found {value}")
            return BAD
        if integer and value != int(value):
            self.report(node, path, f"expected {what}, found {describe(node)}")
            return BAD
        too_low = low is not None and (value <= low if low_exclusive else value < low)
        too_high = high is not None and value > high
        if too_low or too_high:
            self.report(node, path, f"expected {what}, found {describe(node)}")
            return BAD
        return int(value) if integer else float(value)

    def _numeric(self, node: Node) -> Any:
        """The number in a scalar; BAD if not a number; a message string if not finite."""
        if not isinstance(node, ScalarNode) or node.tag not in (_INT, _FLOAT):
            return BAD
        try:
            if node.tag == _INT:
                value = _CONSTRUCTOR.construct_yaml_int(node)
                if abs(value) > 1e15:
                    return f"{describe(node)}, a number too large"
                return value
            value = _CONSTRUCTOR.construct_yaml_float(node)
        except (ValueError, OverflowError):
            return "a malformed or too large number " + describe(node)
        if math.isnan(value):
            return "NaN (not a number)"
        if math.isinf(value):
            return "infinity"
        return value

    def duration(self, node: Node, path: str, *, positive: bool) -> Any:
        """Seconds from a number or a duration string; BAD (reported) when it is not one."""
        self.seen(node, path)
        value = self._numeric(node)
        if isinstance(node, ScalarNode) and node.tag == _STR:
            seconds = parse_duration_text(node.value)
            if seconds is None:
                text = node.value.strip()
                if text.startswith("-") and parse_duration_text(text[1:].strip()) is not None:
                    wanted = "longer than zero" if positive else "of zero or more"
                    self.report(
                        node,
                        path,
                        f"expected a duration {wanted}, found {describe(node)}: a duration "
                        "cannot be negative",
                    )
                    return BAD
                if parse_duration_text(node.value.lower()) is not None:
                    self.report(
                        node,
                        path,
                        f"expected {DURATION_HINT}, found {describe(node)}: units are lower-case "
                        f'(h, m, s, ms), e.g. "{node.value.lower()}"',
                    )
                    return BAD
                return self.expected(node, path, DURATION_HINT)
            value = seconds
        elif value is BAD:
            return self.expected(node, path, DURATION_HINT)
        elif isinstance(value, str):
            self.report(node, path, f"expected {DURATION_HINT}, found {value}")
            return BAD
        if not math.isfinite(value):
            self.report(node, path, f"expected {DURATION_HINT}, found a value too large")
            return BAD
        if value > MAX_SESSION_S:
            # Said here, at the value, in words: no sum of such values can fit a session.
            self.report(
                node,
                path,
                f"expected a duration of at most {_format_seconds(MAX_SESSION_S)} (the "
                f"session limit), found {describe(node)}",
            )
            return BAD
        if value < 0:
            wanted = "longer than zero" if positive else "of zero or more"
            self.report(
                node,
                path,
                f"expected a duration {wanted}, found {describe(node)}: a duration cannot be "
                "negative",
            )
            return BAD
        if positive and value == 0:
            self.report(node, path, f"expected a duration longer than zero, found {describe(node)}")
            return BAD
        if positive and round(value * model.SAMPLE_RATE) == 0:  # as the timeline rounds it
            self.report(
                node,
                path,
                f"expected a duration longer than 1/{2 * model.SAMPLE_RATE} s (half a sample: "
                f"durations are rounded to whole samples at {model.SAMPLE_RATE} Hz, and this "
                f"one would last none), found {describe(node)}",
            )
            return BAD
        return float(value)

    def choice(self, node: Node, path: str, options: Sequence[str], what: str) -> Any:
        self.seen(node, path)
        if not isinstance(node, ScalarNode) or node.tag != _STR:
            return self.expected(node, path, f"{what}: one of {', '.join(options)}")
        if node.value in options:
            return node.value
        close = difflib.get_close_matches(node.value.lower(), options, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        self.report(
            node,
            path,
            f"expected {what}: one of {', '.join(options)}, found {describe(node)}{hint}",
        )
        return BAD

    def volume(self, node: Node, path: str) -> Any:
        return self.number(node, path, "a volume from 0 to 1", low=0.0, high=1.0)

    def text_list(
        self, node: Node, path: str, what: str, *, spoken: bool = False, allow_empty=False
    ) -> Any:
        if not isinstance(node, SequenceNode) or node.tag == BAD_TAG:
            listed = "a list" if allow_empty else "a non-empty list"
            return self.expected(node, path, f"{listed} of {what}")
        if not node.value and allow_empty:
            return ()
        if not node.value:
            self.report(node, path, f"expected a non-empty list of {what}, found an empty list")
            return BAD
        values = [
            self.text(item, _join(path, i), spoken=spoken) for i, item in enumerate(node.value)
        ]
        return BAD if any(v is BAD for v in values) else tuple(values)

    # ---- the document ----------------------------------------------------------------------

    def session(self, root: Node | None) -> model.Session | None:
        if root is None:
            self.report(
                None,
                "",
                "the file is empty; a session needs at least format, title, language and steps",
            )
            return None
        pairs = self.pairs(root, "", "a mapping of session settings (format, title, steps, ...)")
        if pairs is None:
            return None
        got = self.known(pairs, "", TOP_KEYS, "the session")
        self.required(root, "", got, TOP_REQUIRED)
        values: dict[str, Any] = {}

        if "format" in got:
            node = got["format"].value
            version = self._numeric(node) if node.tag == _INT else None  # `1`, not `1.0`
            supported = ", ".join(str(v) for v in model.FORMAT_VERSIONS)
            if isinstance(version, int) and version in model.FORMAT_VERSIONS:
                values["format"] = int(version)
            else:
                self.report(
                    node,
                    "format",
                    f"unsupported format {describe(node)}; supported format versions: {supported}",
                )
                values["format"] = BAD
        if "title" in got:
            values["title"] = self.text(
                got["title"].value,
                "title",
                what="a title (1 to 120 characters)",
                max_chars=MAX_TITLE_CHARS,
            )
        if "language" in got:
            node = got["language"].value
            lang = self.text(node, "language", what="a language tag such as en, nl or en-GB")
            if lang is not BAD and not re.match(LANGUAGE_PATTERN, lang):
                self.report(
                    node,
                    "language",
                    f"expected a language tag such as en, nl or en-GB, found {describe(node)}",
                )
                lang = BAD
            values["language"] = lang
            if lang is not BAD:
                self.language = model.primary_language(lang)
                self.session_language = lang
                named = None
                if self.file and not self.file.startswith("<"):
                    named = split_file_name(self.file)[1]
                if named and model.primary_language(named.replace("_", "-")) != self.language:
                    self.report(
                        node,
                        "language",
                        f"the file name says '{named}' but the script says '{lang}'; sessions "
                        "are found by the language in their file name: rename the file or fix "
                        "`language:`",
                        "warning",
                    )
        if "id" in got:
            values["id"] = self._id(got["id"].value)
        else:
            values["id"] = self._default_id(root)
        if "description" in got:
            values["description"] = self.text(
                got["description"].value, "description", allow_empty=True
            )
        if "tags" in got:
            node = got["tags"].value
            values["tags"] = self.text_list(node, "tags", "tags (texts)", allow_empty=True)
        if "voice" in got:
            values["voice"] = self.voice(got["voice"].value, "voice")
            values["voice_origin"] = self._origin(got["voice"].value, "voice")
            self.session_voice = values["voice"]
        if "background" in got:
            values["background"] = self.background(got["background"].value)
        if "steps" in got:
            node = got["steps"].value
            steps, min_s = self.steps(node, "steps", depth=0)
            values["steps"] = steps
            values["origin"] = self.steps_origin = self._origin(node, "steps")
            expanded = _expanded_steps(steps) if steps is not BAD else 0
            if expanded > MAX_EXPANDED_STEPS:
                self.report(
                    node,
                    "steps",
                    f"the session unrolls to {expanded:,} steps (every repeat repeated; each "
                    "breathing phase, stretch side and scan region counted); the limit is "
                    f"{MAX_EXPANDED_STEPS:,}",
                )
            elif steps is not BAD and not _takes_time(steps):
                self.report(
                    node,
                    "steps",
                    "the session has no length: it only starts sections; add something that "
                    "speaks or takes time (say, pause, chime, breathe, stretch, scan)",
                )
            elif min_s > MAX_SESSION_S:
                self.report(
                    node,
                    "steps",
                    f"the session lasts at least {_format_seconds(min_s)} (before counting its "
                    "speech); the limit is 4 hours",
                )
            elif min_s > WARN_SESSION_S:
                self.report(
                    node,
                    "steps",
                    f"the session lasts at least {_format_seconds(min_s)}, over 2 hours",
                    "warning",
                )

        if any(d.severity == "error" for d in self.diagnostics):
            return None
        return model.Session(
            title=values["title"],
            language=values["language"],
            steps=values["steps"],
            id=values["id"],
            format=values["format"],
            description=values.get("description", ""),
            tags=values.get("tags", ()),
            voice=values.get("voice", model.Voice()),
            background=values.get("background", ()),
            source=self.source,
            origin=values["origin"],
            voice_origin=values.get("voice_origin", model.NO_ORIGIN),
            value_origins=model.Origins(self.file, self.origins),
        )

    def partial_session(self) -> model.Session | None:
        """The steps that were built, as a session the voice can time and check the voice names
        and engines of; None if none can be."""
        steps = self.timed_steps
        voice = self.session_voice
        if not steps and isinstance(voice, model.Voice) and voice.chooses:
            steps = self.top_steps[:1]  # the session's own voice, checked with any valid step
        return self._session_of(steps, "partial")

    def bound_session(self) -> model.Session | None:
        """The valid steps of the session's own list, as a session: whatever the rest turns out
        to be, the script lasts at least as long (for the 4-hour limit with speech)."""
        return self._session_of(self.top_steps, "bound", self.steps_origin)

    def _session_of(self, steps, title: str, origin=model.NO_ORIGIN) -> model.Session | None:
        if not steps or self.session_language in (None, BAD):
            return None
        if _expanded_steps(steps) > MAX_EXPANDED_STEPS:  # (an error already: timing it never ends)
            return None
        voice = self.session_voice if isinstance(self.session_voice, model.Voice) else None
        return model.Session(
            title=title,
            language=self.session_language,
            steps=tuple(steps),
            voice=voice or model.Voice(),
            origin=origin,
            value_origins=model.Origins(self.file, self.origins),
        )

    def _id(self, node: Node) -> Any:
        value = self.text(node, "id", what="an id (a-z, 0-9 and -)", max_chars=MAX_ID_CHARS)
        if value is not BAD and not re.match(ID_PATTERN, value):
            self.report(
                node,
                "id",
                "expected an id of lower-case letters, digits and '-', starting with a letter "
                f"or digit, found {describe(node)}",
            )
            return BAD
        return value

    def _default_id(self, root: Node) -> Any:
        if self.source is None and (not self.file or self.file.startswith("<")):
            return "session"
        name = Path(self.file).name
        derived = default_id(name)
        if not re.match(ID_PATTERN, derived) or len(derived) > MAX_ID_CHARS:
            self.report(
                root,
                "id",
                f"the file name '{name}' gives the id '{derived}', which is not a valid id "
                "(lower-case letters, digits and '-'); rename the file or set `id:`",
            )
            return BAD
        return derived

    def voice(self, node: Node, path: str) -> Any:
        pairs = self.pairs(node, path, "voice settings (a mapping with engine, name, rate, volume)")
        if pairs is None:
            return BAD
        got = self.known(pairs, path, VOICE_KEYS, "voice")
        name = rate = volume = engine = folder = fallback = None
        if "engine" in got:
            engine = self.choice(
                got["engine"].value, _join(path, "engine"), model.SCRIPT_ENGINES, "a speech engine"
            )
        folder, fallback = self._recorded_voice(got, path, engine)
        if "name" in got:
            name = self.text(got["name"].value, _join(path, "name"), what="a voice name")
        if "rate" in got:
            low, high = RATE_RANGE_WPM
            rate = self.number(
                got["rate"].value,
                _join(path, "rate"),
                f"a rate in words per minute from {low} to {high}",
                low=low,
                high=high,
            )
            if rate is not BAD:
                rate = int(math.floor(rate + 0.5))  # the engine's unit: whole words per minute
        if "volume" in got:
            volume = self.volume(got["volume"].value, _join(path, "volume"))
        if BAD in (name, rate, volume, engine, folder, fallback):
            return BAD
        return model.Voice(
            name=name, rate_wpm=rate, volume=volume, engine=engine, folder=folder, fallback=fallback
        )

    def _recorded_voice(self, got: dict[str, _Pair], path: str, engine: Any) -> tuple[Any, Any]:
        """A recorded voice's `folder` (absolute, inside the script's folder or the sessions
        folder, as sound files) and `fallback`; both only with `engine: recorded`."""
        folder = fallback = None
        if "fallback" in got:
            fallback = self.choice(
                got["fallback"].value, _join(path, "fallback"), model.FALLBACKS, "a fallback"
            )
        if "folder" in got:
            folder = self.recording_folder(got["folder"].value, _join(path, "folder"))
        if engine is BAD:
            return folder, fallback
        for key in ("folder", "fallback"):
            if key in got and engine != model.RECORDED:
                self.report(
                    got[key].key,
                    _join(path, key),
                    f"'{key}' belongs to the recorded voice: add `engine: recorded`",
                )
                return BAD, BAD
        if engine == model.RECORDED and "folder" not in got:
            self.report(
                got["engine"].key,
                _join(path, "engine"),
                "the recorded voice needs `folder:`, the folder of its recordings (relative to "
                "the script)",
            )
            return BAD, BAD
        return folder, fallback

    def recording_folder(self, node: Node, path: str) -> Any:
        raw = self.text(node, path, what="a folder of recordings")
        if raw is BAD:
            return BAD
        full, mode = self.inside_allowed(node, path, raw, "the recordings folder", "move it")
        if full is BAD:
            return BAD
        clash = mode is not None and not stat.S_ISDIR(mode)
        if clash:
            self.report(node, path, f"the recordings folder {describe(node)} is not a folder")
            return BAD
        return full

    def inside_allowed(self, node: Node, path: str, raw: str, what: str, hint: str) -> Any:
        """Where the path `raw` that `node` holds leads, and the mode of what is there (None:
        nothing), when it lies in the script's folder or the sessions folder (the same rule
        for sound files and recordings: docs/authoring.md); (BAD, None) after reporting why
        not. `what` names the thing ("the sound file"), `hint` the remedy ("copy it")."""
        written = Path(raw)
        if not written.is_absolute() and self.base_dir is None:
            self.report(
                node,
                path,
                f"{what} {describe(node)} is relative to the script's folder, but this script "
                "was not read from a file",
            )
            return BAD, None
        roots = [] if self.base_dir is None else [self.base_dir]
        roots += [Path(d) for d in self.allowed_dirs]  # the callers add the sessions folder
        try:
            full = (written if written.is_absolute() else self.base_dir / written).resolve()
            inside = any(full.is_relative_to(r.resolve()) for r in roots)
            mode = full.stat().st_mode if full.exists() else None
        except UnicodeError:
            self.report(
                node,
                path,
                f"cannot use {what} {describe(node)}: its name cannot be written in this "
                f"system's file name encoding ({sys.getfilesystemencoding()}); use a UTF-8 locale "
                "(LANG=C.UTF-8) or rename it",
            )
            return BAD, None
        except (OSError, ValueError, RuntimeError) as exc:
            self.report(node, path, f"cannot use {what} {describe(node)}: {exc}")
            return BAD, None
        if not inside:
            self.report(
                node,
                path,
                f"{what} {describe(node)} is outside the script's folder and the sessions "
                f"folder; {hint} next to the script",
            )
            return BAD, None
        return full, mode

    # ---- background ------------------------------------------------------------------------

    def background(self, node: Node) -> Any:
        if not isinstance(node, SequenceNode) or node.tag == BAD_TAG:
            return self.expected(node, "background", "a list of layers (drone, noise, ...)")
        layers = [self.layer(item, _join("background", i)) for i, item in enumerate(node.value)]
        self.sound_layers = [x for x in layers if isinstance(x, model.SoundFile)]
        return BAD if any(layer is BAD for layer in layers) else tuple(layers)

    def layer(self, node: Node, path: str) -> Any:
        kinds = ", ".join(LAYER_KINDS)
        pairs = self.pairs(node, path, f"a layer (a mapping with one of {kinds})")
        if pairs is None:
            return BAD
        found = [p for p in pairs if p.name in LAYER_KINDS]
        all_options = sorted(
            {o for opts in LAYER_OPTIONS.values() for o in opts} | set(LAYER_SHARED)
        )
        if len(found) == 1 and _is_null(found[0].value):  # `drone:`, its options unindented
            inner = LAYER_OPTIONS[found[0].name] + LAYER_SHARED
            beside = [p for p in pairs if p.name in inner]
            if beside:
                self._beside(found[0], beside, path)
                for pair in pairs:
                    if pair.name not in inner and pair is not found[0]:
                        hint = _suggest(pair.name, [*LAYER_KINDS, *inner])
                        self.report(
                            pair.key,
                            _join(path, pair.name),
                            f"unknown key '{pair.name}' in a layer{hint}",
                        )
                return BAD
        for pair in pairs:
            if pair.name in LAYER_KINDS:
                continue
            if pair.name in all_options:
                inside = found[0].name if found else "the layer kind"
                self.report(
                    pair.key,
                    _join(path, pair.name),
                    f"'{pair.name}' belongs inside the layer's mapping, e.g. "
                    f"`{inside}: {{{pair.name}: ...}}`",
                )
            else:
                self.report(
                    pair.key,
                    _join(path, pair.name),
                    f"unknown key '{pair.name}' in a layer{_suggest(pair.name, LAYER_KINDS)}",
                )
        if not found:
            self.report(node, path, f"a layer needs one kind key: {kinds}")
            return BAD
        if len(found) > 1:
            self.report(
                found[1].key,
                _join(path, found[1].name),
                f"a layer has exactly one kind, found '{found[0].name}' and also "
                f"'{found[1].name}'; make them two layers",
                notes=(
                    self.note(found[0].key, _join(path, found[0].name), "the first kind is here"),
                ),
            )
            return BAD
        kind = found[0].name
        return self._layer_body(kind, found[0].value, _join(path, kind))

    def _layer_body(self, kind: str, node: Node, path: str) -> Any:
        keys = LAYER_OPTIONS[kind] + LAYER_SHARED
        pairs = self.pairs(node, path, f"the {kind} options (a mapping with {', '.join(keys)})")
        if pairs is None:
            return BAD
        got = self.known(pairs, path, keys, kind)
        ok = self.required(node, path, got, LAYER_REQUIRED[kind])

        def get(name: str, read: Callable[[Node, str], Any], default: Any = BAD) -> Any:
            if name in got:
                return read(got[name].value, _join(path, name))
            return default

        shared = {
            "volume": get("volume", self.volume),
            "fade_in_s": get(
                "fade_in", lambda n, p: self.duration(n, p, positive=False), DEFAULT_FADE_IN_S
            ),
            "fade_out_s": get(
                "fade_out", lambda n, p: self.duration(n, p, positive=False), DEFAULT_FADE_OUT_S
            ),
            "duck": get(
                "duck",
                lambda n, p: self.number(
                    n, p, "a duck amount from 0 (none) to 1", low=0.0, high=1.0
                ),
                DEFAULT_DUCK,
            ),
        }

        def hz(name: str, limits: tuple[float, float], what: str) -> Any:
            low, high = limits
            return get(
                name,
                lambda n, p: self.number(
                    n, p, f"{what} from {low:g} to {high:g} Hz", low=low, high=high
                ),
            )

        if kind == "drone":
            specific = {"frequency_hz": hz("frequency", DRONE_RANGE_HZ, "a frequency")}
            make = model.Drone
        elif kind == "binaural":
            specific = {
                "carrier_hz": hz("carrier", CARRIER_RANGE_HZ, "a carrier frequency"),
                "beat_hz": hz("beat", BEAT_RANGE_HZ, "a beat frequency"),
            }
            make = model.Binaural
        elif kind == "noise":
            specific = {
                "color": get("color", lambda n, p: self.choice(n, p, model.NOISE_COLORS, "a color"))
            }
            make = model.Noise
        else:
            specific = {
                "path": get("file", self.sound_file),
                "loop": get("loop", self.boolean, True),
            }
            if "file" in got:
                specific["origin"] = self._origin(got["file"].value, _join(path, "file"))
            make = model.SoundFile
        values = {**specific, **shared}
        if not ok or any(v is BAD for v in values.values()):
            return BAD
        return make(**values)

    def sound_file(self, node: Node, path: str) -> Any:
        raw = self.text(node, path, what="a sound file path (WAV, FLAC or OGG)")
        if raw is BAD:
            return BAD
        if Path(raw).suffix.lower() not in SOUND_EXTENSIONS:
            self.report(node, path, f"expected a .wav, .flac or .ogg file, found {describe(node)}")
            return BAD
        full, mode = self.inside_allowed(node, path, raw, "the sound file", "copy it")
        if full is BAD:
            return BAD
        if mode is None:
            self.report(node, path, f"the sound file {describe(node)} does not exist ({full})")
            return BAD
        if not stat.S_ISREG(mode):
            # A FIFO or a device is never opened: it could block, or never end.
            self.report(
                node,
                path,
                f"the sound file {describe(node)} is {fsio.kind_of(mode)}, not a regular file",
            )
            return BAD
        return full

    # ---- steps -----------------------------------------------------------------------------

    def steps(self, node: Node, path: str, *, depth: int) -> tuple[Any, float]:
        """The steps of a list and a lower bound of their length in seconds (speech not counted)."""
        if not isinstance(node, SequenceNode) or node.tag == BAD_TAG:
            return self.expected(node, path, "a non-empty list of steps"), 0.0
        if not node.value:
            self.report(node, path, "expected a non-empty list of steps, found an empty list")
            return BAD, 0.0
        out = []
        total_s = 0.0
        for i, item in enumerate(node.value):
            step, min_s = self.step(item, _join(path, i), depth=depth)
            out.append(step)
            total_s += min_s
            if depth == 0 and step is not BAD:
                self.top_steps.append(step)
        return (BAD if any(s is BAD for s in out) else tuple(out)), total_s

    def _origin(self, node: Node, path: str) -> model.Origin:
        return model.Origin(self.file, node.start_mark.line + 1, node.start_mark.column + 1, path)

    def step(self, node: Node, path: str, *, depth: int) -> tuple[Any, float]:
        if isinstance(node, ScalarNode) and node.tag == _STR:
            text = self.text(node, path, what="a text to say", spoken=True)
            if text is BAD:
                return BAD, 0.0
            return model.Say(text=text, origin=self._origin(node, path)), 0.0
        actions = ", ".join(ACTIONS)
        what = f"a step (a text to say, or a mapping with one of {actions})"
        if isinstance(node, ScalarNode) and node.tag in _QUOTABLE:
            return self.expected(node, path, what, text_wanted=True), 0.0
        pairs = self.pairs(node, path, what)
        if pairs is None:
            return BAD, 0.0
        found = [p for p in pairs if p.name in ACTIONS]
        all_options = sorted({o for opts in STEP_OPTIONS.values() for o in opts})
        action = found[0].name if found else None
        allowed = STEP_OPTIONS.get(action, ()) if action else ()
        # `breathe:` and then `inhale:` under it at the same indent: options beside the action.
        inner = ACTION_SETTINGS.get(action, ())
        beside = [p for p in pairs[1:] if p.name in inner and p.name not in allowed]
        beside = [p for p in beside if p is not found[0]]
        if beside:
            self._beside(found[0], beside, path)
            found = [p for p in found if p not in beside]
        for pair in pairs:
            if pair.name in ACTIONS or pair.name in allowed or pair in beside:
                continue
            if pair.name in all_options and action is not None:
                takes = ", ".join(allowed) if allowed else "no options"
                self.report(
                    pair.key,
                    _join(path, pair.name),
                    f"'{pair.name}' is not an option of '{action}' ({action} takes {takes})",
                )
            elif pair.name not in all_options:
                near = [*allowed, *ACTIONS, *(inner if beside else ())] if action else ACTIONS
                hint = _suggest(pair.name, near)
                self.report(
                    pair.key, _join(path, pair.name), f"unknown key '{pair.name}' in a step{hint}"
                )
        if not found:
            if not any(p.name not in all_options for p in pairs):
                self.report(node, path, f"a step needs one action key: {actions}")
            return BAD, 0.0
        if len(found) > 1:
            first = found[0]
            self.report(
                found[1].key,
                _join(path, found[1].name),
                f"a step has exactly one action, found '{first.name}' and also "
                f"'{found[1].name}'; make them two steps",
                notes=(self.note(first.key, _join(path, first.name), "the first action is here"),),
            )
            return BAD, 0.0
        if beside:
            return BAD, 0.0
        options = {p.name: p for p in pairs if p.name in allowed}
        value = found[0].value
        origin = self._origin(node, path)
        if action in SILENT_ACTIONS and "voice" in options:
            voice = self.voice(options["voice"].value, _join(path, "voice"))
            if voice is BAD:
                return BAD, 0.0
            self.report(
                options["voice"].key,
                _join(path, "voice"),
                f"a voice on a '{action}' step has no effect: it does not speak",
                "warning",
            )
        step, min_s = getattr(self, f"_{action}")(
            value, _join(path, action), options, origin, depth
        )
        timed = isinstance(step, model.Breathe | model.Stretch | model.Scan) or (
            isinstance(step, model.Say) and step.duration_s is not None
        )
        if timed or (isinstance(step, model.Say) and step.voice is not None and step.voice.chooses):
            self.timed_steps.append(step)
        return step, min_s

    def _beside(self, action: _Pair, beside: list[_Pair], path: str) -> None:
        names = ", ".join(f"`{p.name}`" for p in beside)
        are = "is an option" if len(beside) == 1 else "are options"
        these = "it" if len(beside) == 1 else "these"
        if isinstance(action.value, MappingNode) and action.value.flow_style:
            fix = f"move {these} inside `{action.name}: {{...}}`"
        else:
            fix = f"indent {these} under `{action.name}:`"
        self.report(
            beside[0].key,
            _join(path, action.name),
            f"{names} {are} of `{action.name}:` but written beside it: {fix}",
            notes=(self.note(action.key, _join(path, action.name), f"`{action.name}:` is here"),),
        )

    def _say(self, node, path, options, origin, depth) -> tuple[Any, float]:
        base = path.rsplit(".", 1)[0]
        text = self.text(node, path, what="a text to say", spoken=True)
        duration_s = voice = None
        if "duration" in options:
            duration_s = self.duration(
                options["duration"].value, _join(base, "duration"), positive=True
            )
        if "voice" in options:
            voice = self.voice(options["voice"].value, _join(base, "voice"))
        min_s = duration_s if isinstance(duration_s, float) else 0.0
        if BAD in (text, duration_s, voice):
            return BAD, min_s
        return model.Say(text=text, duration_s=duration_s, voice=voice, origin=origin), min_s

    def _pause(self, node, path, options, origin, depth) -> tuple[Any, float]:
        seconds = self.duration(node, path, positive=True)
        if seconds is BAD:
            return BAD, 0.0
        if seconds > WARN_PAUSE_S:
            self.report(
                node, path, f"a pause of {_format_seconds(seconds)} is over 10 minutes", "warning"
            )
        return model.Pause(duration_s=seconds, origin=origin), seconds

    def _chime(self, node, path, options, origin, depth) -> tuple[Any, float]:
        base = path.rsplit(".", 1)[0]
        name = self.choice(node, path, model.CHIMES, "a chime")
        volume = model.DEFAULT_CHIME_VOLUME
        if "volume" in options:
            volume = self.volume(options["volume"].value, _join(base, "volume"))
        if BAD in (name, volume):
            return BAD, 0.0
        return model.Chime(name=name, volume=volume, origin=origin), 0.0

    def _section(self, node, path, options, origin, depth) -> tuple[Any, float]:
        title = self.text(node, path, what="a section title")
        if title is BAD:
            return BAD, 0.0
        return model.Section(title=title, origin=origin), 0.0

    def _step_voice(self, options, path) -> Any:
        """The step's own `voice:` (a sibling of the action key), or None."""
        if "voice" not in options:
            return None
        return self.voice(options["voice"].value, _join(path.rsplit(".", 1)[0], "voice"))

    def _breathe(self, node, path, options, origin, depth) -> tuple[Any, float]:
        return check_breathe(self, node, path, options, origin)  # see _breathe.py

    def _stretch(self, node, path, options, origin, depth) -> tuple[Any, float]:
        pairs = self.pairs(node, path, "stretch settings (a mapping with say or sides, hold, ...)")
        if pairs is None:
            return BAD, 0.0
        got = self.known(pairs, path, STRETCH_KEYS, "stretch")
        ok = self.required(node, path, got, ("hold",))
        values: dict[str, Any] = {}
        if "name" in got:
            values["name"] = self.text(got["name"].value, _join(path, "name"), what="a name")
        if "say" in got and "sides" in got:
            self.report(
                got["sides"].key,
                _join(path, "sides"),
                "a stretch has either `say: TEXT` or `sides: [TEXT, ...]`, not both",
            )
            ok = False
        elif "say" in got:
            text = self.text(
                got["say"].value, _join(path, "say"), what="a text to say", spoken=True
            )
            values["sides"] = BAD if text is BAD else (text,)
        elif "sides" in got:
            values["sides"] = self.text_list(
                got["sides"].value, _join(path, "sides"), "instructions (one per side)", spoken=True
            )
        else:
            self.report(
                node, path, "a stretch needs `say: TEXT` or `sides: [TEXT, ...]` (one per side)"
            )
            ok = False
        if "hold" in got:
            values["hold_s"] = self.duration(got["hold"].value, _join(path, "hold"), positive=True)
        if "rest" in got:
            values["rest_s"] = self.duration(got["rest"].value, _join(path, "rest"), positive=False)
        if "countdown" in got:
            cnode = got["countdown"].value
            cpath = _join(path, "countdown")
            hold_s = values.get("hold_s")
            count = self.number(
                cnode, cpath, "a countdown: a whole number from 1", low=1, integer=True
            )
            if count is not BAD and isinstance(hold_s, float) and count > hold_s:
                room = (
                    f"expected a whole number from 1 to {int(hold_s)}"
                    if hold_s >= 1
                    else "a hold shorter than 1 s has no room for one: leave `countdown` out"
                )
                self.report(
                    cnode,
                    cpath,
                    f"a countdown of {count} does not fit in a hold of {hold_s:g} s ({room})",
                )
                count = BAD
            values["countdown"] = count
        sides = values.get("sides")
        n_sides = len(sides) if isinstance(sides, tuple) else 1
        hold_s = values.get("hold_s")
        rest_s = values.get("rest_s", DEFAULT_STRETCH_REST_S)
        min_s = 0.0
        if isinstance(hold_s, float) and isinstance(rest_s, float):
            min_s = n_sides * hold_s + (n_sides - 1) * rest_s
        values["voice"] = self._step_voice(options, path)
        if not ok or any(v is BAD for v in values.values()):
            return BAD, min_s
        return model.Stretch(**values, origin=origin), min_s

    def _scan(self, node, path, options, origin, depth) -> tuple[Any, float]:
        pairs = self.pairs(node, path, "body scan settings (a mapping with prompt, regions, dwell)")
        if pairs is None:
            return BAD, 0.0
        got = self.known(pairs, path, SCAN_KEYS, "scan")
        ok = self.required(node, path, got, SCAN_KEYS)
        prompt = regions = dwell_s = BAD
        if "prompt" in got:
            pnode = got["prompt"].value
            prompt = self.text(
                pnode, _join(path, "prompt"), what="a prompt containing {region}", spoken=True
            )
            if prompt is not BAD and "{region}" not in prompt:
                self.report(
                    pnode,
                    _join(path, "prompt"),
                    f"expected a prompt containing {{region}}, found {describe(pnode)}",
                )
                prompt = BAD
        if "regions" in got:
            regions = self.text_list(
                got["regions"].value, _join(path, "regions"), "body regions (texts)"
            )
        if "dwell" in got:
            dwell_s = self.duration(got["dwell"].value, _join(path, "dwell"), positive=True)
        min_s = 0.0
        if isinstance(regions, tuple) and isinstance(dwell_s, float):
            min_s = len(regions) * dwell_s
        voice = self._step_voice(options, path)
        if not ok or BAD in (prompt, regions, dwell_s, voice):
            return BAD, min_s
        return (
            model.Scan(prompt=prompt, regions=regions, dwell_s=dwell_s, voice=voice, origin=origin),
            min_s,
        )

    def _repeat(self, node, path, options, origin, depth) -> tuple[Any, float]:
        base = path.rsplit(".", 1)[0]
        times = self.number(
            node,
            path,
            f"a whole number of repeats from 1 to {MAX_REPEAT}",
            low=1,
            high=MAX_REPEAT,
            integer=True,
        )
        if depth + 1 > MAX_REPEAT_DEPTH:
            self.report(
                node,
                path,
                f"repeat is nested {depth + 1} deep; the limit is {MAX_REPEAT_DEPTH}",
            )
            return BAD, 0.0
        if "steps" not in options:
            self.report(node, path, "missing required key 'steps' (the steps to repeat)")
            return BAD, 0.0
        voice = self._step_voice(options, path)
        steps, body_s = self.steps(options["steps"].value, _join(base, "steps"), depth=depth + 1)
        min_s = body_s * (times if isinstance(times, int) else 1)
        if BAD in (times, steps, voice):
            return BAD, min_s
        return model.Repeat(times=times, steps=steps, voice=voice, origin=origin), min_s


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


def _expanded_steps(steps) -> int:
    """How many steps run once every repeat is unrolled, each breathing phase, stretch side and
    scan region counted as one (stops counting past the limit)."""
    total = 0
    for step in steps:
        if isinstance(step, model.Repeat):
            total += step.times * _expanded_steps(step.steps)
        elif isinstance(step, model.Breathe):
            total += step.cycles * max(1, len(step.phases()))
        elif isinstance(step, model.Stretch):
            total += max(1, len(step.sides))
        elif isinstance(step, model.Scan):
            total += max(1, len(step.regions))
        else:
            total += 1
        if total > MAX_EXPANDED_STEPS:
            return total
    return total


def _takes_time(steps) -> bool:
    """Whether any step speaks or lasts (everything but a section does)."""
    return any(
        _takes_time(step.steps)
        if isinstance(step, model.Repeat)
        else not isinstance(step, model.Section)
        for step in steps
    )


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    """Diagnostics in file order (line, then column), keeping the order of equal positions."""
    return tuple(sorted(diagnostics, key=lambda d: (d.line, d.col)))
