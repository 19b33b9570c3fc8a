"""The JSON Schema (draft 2020-12) of the session format, built from the loader's own tables.

`json_schema()` returns a fresh dict. It is generated rather than shipped as a file so that it
works from any install and cannot drift from the loader. What a schema cannot say (duplicate
keys, file existence, a countdown that must fit its hold, a falling ramp that must stay above 0
over its cycles, a ramp's `max`/`min` on the right side of its `from`, missing cue words for a language
without built-in cues, a spoken text of punctuation alone, the session's total length, NaN)
only the loader checks.
"""

from __future__ import annotations

from typing import Any

from audio_engine import model
from audio_engine.script import _breathe as b
from audio_engine.script import _check as c

_TEXT_PATTERN = r"\S"
# The control characters a text may not hold (all but tab and line feed).
_NO_CONTROL = {"not": {"pattern": "[\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]"}}


def _text(max_chars: int = c.MAX_TEXT_CHARS, *, allow_empty: bool = False, **extra) -> dict:
    schema: dict[str, Any] = {"type": "string", "maxLength": max_chars, **_NO_CONTROL}
    if not allow_empty:
        schema["minLength"] = 1
        schema["pattern"] = _TEXT_PATTERN
    schema.update(extra)
    return schema


def _range(low: float, high: float, description: str, *, integer: bool = False) -> dict:
    return {
        "type": "integer" if integer else "number",
        "minimum": low,
        "maximum": high,
        "description": description,
    }


def _object(properties: dict, required: tuple[str, ...] = (), description: str = "") -> dict:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    return schema


# `folder` and `fallback` belong to the recorded voice, which needs its folder.
_RECORDED_VOICE = {
    "if": {"required": ["engine"], "properties": {"engine": {"const": model.RECORDED}}},
    "then": {"required": ["folder"]},
    "else": {"not": {"anyOf": [{"required": ["folder"]}, {"required": ["fallback"]}]}},
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/$defs/{name}"}


# ---- breathe: phases that ramp, and patterns -----------------------------------------------------

_NUMBER = r"\d+(?:\.\d+)?"
_NON_ZERO = r"(?=[\d.]*[1-9])" + _NUMBER
_DASH = r"\s*-\s*"
# Like the loader's pattern, and inhale and exhale (first, and last of the first three) not 0.
_PATTERN = (
    rf"^\s*(?:{_NON_ZERO}{_DASH}{_NON_ZERO}|"
    rf"{_NON_ZERO}{_DASH}{_NUMBER}{_DASH}{_NON_ZERO}(?:{_DASH}{_NUMBER})?)\s*$"
)
# `step:` durations with a sign: rising (no sign or "+") and falling ("-").
_DURATION_BODY = c.POSITIVE_DURATION_PATTERN[1:]  # without its "^"
_RISING_TEXT = r"^\s*\+?" + _DURATION_BODY
_FALLING_TEXT = r"^\s*-" + _DURATION_BODY


def _breathe_defs() -> dict:
    every = _range(1, c.MAX_CYCLES, "change every this many cycles (default 1)", integer=True)
    return {
        "ramp": {
            "description": "a phase that changes over the cycles: {from, to} (linear), "
            "{from, step, every, max} (rising) or {from, step, every, min} (falling)",
            "oneOf": [
                _object(
                    {"from": _ref("positiveDuration"), "to": _ref("positiveDuration")},
                    ("from", "to"),
                    "linear: cycle c of N lasts from + (to - from) * c / (N - 1)",
                ),
                _object(
                    {
                        "from": _ref("positiveDuration"),
                        "step": {
                            "anyOf": [
                                {"type": "number", "exclusiveMinimum": 0},
                                {"type": "string", "pattern": _RISING_TEXT},
                            ]
                        },
                        "every": every,
                        "max": _ref("positiveDuration"),
                    },
                    ("from", "step"),
                    "rising: from + step * (c // every), at most max",
                ),
                _object(
                    {
                        "from": _ref("positiveDuration"),
                        "step": {
                            "anyOf": [
                                {"type": "number", "exclusiveMaximum": 0},
                                {"type": "string", "pattern": _FALLING_TEXT},
                            ]
                        },
                        "every": every,
                        "min": _ref("positiveDuration"),
                    },
                    ("from", "step"),
                    "falling: from + step * (c // every), at least min (never 0 or below)",
                ),
            ],
        },
    }


def _phase(*, positive: bool) -> dict:
    plain = _ref("positiveDuration" if positive else "duration")
    return {"anyOf": [plain, _ref("ramp")]}


def json_schema() -> dict:
    """The JSON Schema of session scripts, format 1 (draft 2020-12).

    Examples
    --------
    >>> import jsonschema, yaml
    >>> doc = yaml.safe_load("format: 1\\ntitle: T\\nlanguage: en\\nsteps: [Hi]")
    >>> jsonschema.Draft202012Validator(json_schema()).is_valid(doc)
    True
    """
    volume = _range(0, 1, "0 (silent) to 1 (full)")
    low_rate, high_rate = c.RATE_RANGE_WPM
    defs: dict[str, Any] = {
        "duration": {
            "description": 'seconds (a number), or a text such as "90s", "2m", "1m30s", "500ms"',
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": c.MAX_SESSION_S},
                {"type": "string", "pattern": c.DURATION_PATTERN},
            ],
        },
        "positiveDuration": {
            "description": "a duration longer than zero",
            "anyOf": [
                # More than half a sample, or it would round to no sample at all (a text that
                # small is the loader's to refuse).
                {
                    "type": "number",
                    "exclusiveMinimum": 0.5 / model.SAMPLE_RATE,
                    "maximum": c.MAX_SESSION_S,
                },
                {"type": "string", "pattern": c.POSITIVE_DURATION_PATTERN},
            ],
        },
        "text": _text(),
        "chime": {"enum": list(model.CHIMES)},
        "volume": volume,
        "voice": _object(
            {
                "engine": {
                    "enum": list(model.SCRIPT_ENGINES),
                    "description": "neural (hibari-tts, English only), espeak (espeak-ng, every "
                    "language) or recorded (a person's recordings, one per line, in `folder`); "
                    "default: neural for English where installed, else espeak",
                },
                "name": _text(description="an installed voice by id, name or language"),
                "rate": _range(low_rate, high_rate, "words per minute (rounded to a whole number)"),
                "volume": volume,
                "folder": _text(
                    description="the recorded voice's folder of recordings, relative to the script"
                ),
                "fallback": {
                    "enum": list(model.FALLBACKS),
                    "description": "what speaks a line the recorded voice has no recording of; "
                    "none: such a line is an error; default: the language's usual engine",
                },
            },
            description="voice settings",
        )
        | _RECORDED_VOICE,
        "say": _object(
            {
                "say": _text(description="the text to speak"),
                "duration": _ref("positiveDuration"),
                "voice": _ref("voice"),
            },
            ("say",),
        ),
        # A voice on a step that does not speak is allowed (the loader warns: no effect).
        "pause": _object({"pause": _ref("positiveDuration"), "voice": _ref("voice")}, ("pause",)),
        "chime_step": _object(
            {"chime": _ref("chime"), "volume": volume, "voice": _ref("voice")}, ("chime",)
        ),
        "section": _object(
            {"section": _text(description="a chapter title"), "voice": _ref("voice")},
            ("section",),
        ),
        **_breathe_defs(),
        "breathe": _object(
            {
                "breathe": {
                    **_object(
                        {
                            "inhale": _phase(positive=True),
                            "hold": _phase(positive=False),
                            "exhale": _phase(positive=True),
                            "rest": _phase(positive=False),
                            "pattern": {
                                "type": "string",
                                "pattern": _PATTERN,
                                "description": "the phases as counts: inhale-exhale, "
                                "inhale-hold-exhale or inhale-hold-exhale-rest (4-7-8)",
                            },
                            "unit": {
                                **_ref("positiveDuration"),
                                "description": "how long one count of `pattern` lasts "
                                f"(default {b.DEFAULT_UNIT_S:g} s)",
                            },
                            "cycles": _range(1, c.MAX_CYCLES, "how many cycles", integer=True),
                            "cues": _object(
                                {p: _text(allow_empty=True) for p in model.PHASES},
                                description='spoken at the start of each phase; "" keeps it silent',
                            ),
                            "count": {"type": "boolean"},
                            "guide_tone": {"type": "boolean"},
                            "chime_on_phase": _ref("chime"),
                        },
                    ),
                    # The phases come from `pattern` or from inhale/exhale (+ hold, rest).
                    "oneOf": [
                        {
                            "required": ["pattern"],
                            "not": {"anyOf": [{"required": [p]} for p in model.PHASES]},
                        },
                        {"required": ["inhale", "exhale"], "not": {"required": ["pattern"]}},
                    ],
                    "dependentRequired": {"unit": ["pattern"]},
                },
                "voice": _ref("voice"),
            },
            ("breathe",),
        ),
        "stretch": _object(
            {
                "stretch": {
                    **_object(
                        {
                            "name": _text(),
                            "say": _text(),
                            "sides": {"type": "array", "minItems": 1, "items": _ref("text")},
                            "hold": _ref("positiveDuration"),
                            "countdown": {"type": "integer", "minimum": 1},
                            "rest": _ref("duration"),
                        },
                        ("hold",),
                    ),
                    "oneOf": [{"required": ["say"]}, {"required": ["sides"]}],
                },
                "voice": _ref("voice"),
            },
            ("stretch",),
        ),
        "scan": _object(
            {
                "scan": _object(
                    {
                        "prompt": _text(pattern=r"\{region\}"),
                        "regions": {"type": "array", "minItems": 1, "items": _ref("text")},
                        "dwell": _ref("positiveDuration"),
                    },
                    c.SCAN_KEYS,
                ),
                "voice": _ref("voice"),
            },
            ("scan",),
        ),
    }
    simple = ["say", "pause", "chime_step", "section", "breathe", "stretch", "scan"]
    # Repeat nesting is bounded, so each level gets its own definitions: level k may hold
    # repeats only while k < MAX_REPEAT_DEPTH.
    for level in range(c.MAX_REPEAT_DEPTH + 1):
        branches = [
            {
                "type": "string",
                "maxLength": c.MAX_TEXT_CHARS,
                "pattern": _TEXT_PATTERN,
                **_NO_CONTROL,
            }
        ]
        branches += [_ref(name) for name in simple]
        if level < c.MAX_REPEAT_DEPTH:
            defs[f"repeat{level}"] = _object(
                {
                    "repeat": _range(1, c.MAX_REPEAT, "how many times", integer=True),
                    "steps": _ref(f"steps{level + 1}"),
                    "voice": _ref("voice"),
                },
                ("repeat", "steps"),
            )
            branches.append(_ref(f"repeat{level}"))
        defs[f"steps{level}"] = {"type": "array", "minItems": 1, "items": {"oneOf": branches}}

    def layer(kind: str, options: dict, description: str) -> dict:
        shared = {
            "volume": volume,
            "fade_in": _ref("duration"),
            "fade_out": _ref("duration"),
            "duck": _range(0, 1, "how far the layer is lowered while the voice speaks"),
        }
        body = _object({**options, **shared}, c.LAYER_REQUIRED[kind], description)
        return _object({kind: body}, (kind,))

    low_f, high_f = c.DRONE_RANGE_HZ
    low_c, high_c = c.CARRIER_RANGE_HZ
    low_b, high_b = c.BEAT_RANGE_HZ
    defs["layer"] = {
        "oneOf": [
            layer(
                "drone",
                {"frequency": _range(low_f, high_f, "Hz")},
                "a soft sustained tone",
            ),
            layer(
                "binaural",
                {
                    "carrier": _range(low_c, high_c, "left ear, Hz"),
                    "beat": _range(low_b, high_b, "right ear is carrier + beat, Hz"),
                },
                "binaural beat (stereo)",
            ),
            layer("noise", {"color": {"enum": list(model.NOISE_COLORS)}}, "noise"),
            layer(
                "sound",
                {
                    "file": {
                        "type": "string",
                        "pattern": r"\.([wW][aA][vV]|[fF][lL][aA][cC]|[oO][gG][gG])$",
                        "description": "path relative to the script's folder",
                    },
                    "loop": {"type": "boolean"},
                },
                "an audio file",
            ),
        ]
    }
    top = _object(
        {
            "format": {"const": 1, "description": "the format version"},
            "title": _text(c.MAX_TITLE_CHARS),
            "language": {"type": "string", "pattern": c.LANGUAGE_PATTERN},
            "id": {"type": "string", "pattern": c.ID_PATTERN, "maxLength": c.MAX_ID_CHARS},
            "description": _text(allow_empty=True),
            "tags": {"type": "array", "items": _ref("text")},
            "voice": _ref("voice"),
            "background": {"type": "array", "items": _ref("layer")},
            "steps": _ref("steps0"),
        },
        c.TOP_REQUIRED,
        "A relax session script (format 1).",
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://relax.invalid/session-format-1.schema.json",
        "title": "relax session script",
        **top,
        "$defs": defs,
    }
