"""Checking a `breathe` step: its phases (plain, ramped, stepped or a `pattern:`), cues and flags.

`check_breathe(checker, node, path, options, origin)` is the `breathe` action of `_check.Checker`:
it reports every problem through the checker (FILE:LINE:COL and the value path) and returns
`(model.Breathe or BAD, lower bound of its length in seconds)`. The tables here are shared with
the JSON Schema.

A phase is a duration, or a mapping that changes it over the cycles (see `model.Ramp`):
`{from, to}` (linear), `{from, step, every, max}` (rising) or `{from, step, every, min}`
(falling). `pattern: 4-7-8` with `unit: 1s` is short for the phases.
"""

from __future__ import annotations

import math
import re
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from audio_engine import model

BREATHE_KEYS = (
    "inhale",
    "hold",
    "exhale",
    "rest",
    "pattern",
    "unit",
    "cycles",
    "cues",
    "count",
    "guide_tone",
    "chime_on_phase",
)
RAMP_KEYS = ("from", "to", "step", "every", "max", "min")
STEP_ONLY_KEYS = ("every", "max", "min")
DEFAULT_UNIT_S = 1.0
_PART = r"\d+(?:\.\d+)?"
# 2 to 4 non-negative numbers joined by "-": inhale-exhale, inhale-hold-exhale,
# inhale-hold-exhale-rest.
PATTERN_PATTERN = rf"^\s*{_PART}(?:\s*-\s*{_PART}){{1,3}}\s*$"
PATTERN_PHASES = {
    2: ("inhale", "exhale"),
    3: ("inhale", "hold", "exhale"),
    4: ("inhale", "hold", "exhale", "rest"),
}
PATTERN_HINT = (
    "a pattern of 2 to 4 numbers joined by '-' (inhale-exhale, inhale-hold-exhale or "
    'inhale-hold-exhale-rest, e.g. "4-7-8" or "4-4-4-4")'
)

_STR = "tag:yaml.org,2002:str"
_TEXTLIKE = (
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _s(seconds: float) -> str:
    return f"{seconds:g} s"


def _one_sample(seconds: float) -> bool:
    return seconds * model.SAMPLE_RATE >= 0.5  # rounds to at least one sample


def _cycles_text(cycles: list[int], total: int) -> str:
    if len(cycles) == total:
        return ""
    a, b = cycles[0] + 1, cycles[-1] + 1
    return f" in cycle {a}" if a == b else f" in cycles {a}-{b}"


class _Ramp:
    """A ramp as read, with the nodes its later checks report at."""

    def __init__(self, node: Node, path: str):
        self.node = node
        self.path = path
        self.values: dict[str, Any] = {}
        self.nodes: dict[str, Node] = {}

    def model(self) -> model.Ramp:
        v = self.values
        return model.Ramp(
            from_s=v["from"],
            to_s=v.get("to"),
            step_s=v.get("step"),
            every=v.get("every", 1),
            max_s=v.get("max"),
            min_s=v.get("min"),
        )


def _signed_duration(ch, node: Node, path: str) -> Any:
    """A duration that may be negative (`step:`): -1, "-1s", "+500ms"."""
    from audio_engine.script import _check

    if isinstance(node, ScalarNode) and node.tag == _STR:
        text = node.value.strip()
        sign = -1.0 if text.startswith("-") else 1.0
        body = text[1:] if text[:1] in "-+" else text
        seconds = _check.parse_duration_text(body) if body.strip() else None
        if seconds is None or not math.isfinite(seconds):
            return ch.expected(node, path, 'a duration, with "-" to shorten ("1s", "-500ms")')
        return sign * seconds
    value = ch._numeric(node)
    if value is _check.BAD:
        return ch.expected(node, path, 'a duration, with "-" to shorten ("1s", "-500ms")')
    if isinstance(value, str):
        ch.report(node, path, f"expected a duration, found {value}")
        return _check.BAD
    return float(value)


def _ramp(ch, node: MappingNode, path: str, phase: str) -> Any:
    """A ramped phase `{from, to}` / `{from, step, every, max|min}`: a `_Ramp`, or BAD."""
    from audio_engine.script import _check

    BAD = _check.BAD
    pairs = ch.pairs(node, path, "a ramp (a mapping with from, to or step)")
    if pairs is None:
        return BAD
    got = ch.known(pairs, path, RAMP_KEYS, f"the {phase} ramp")
    ramp = _Ramp(node, path)
    ok = True
    for name, pair in got.items():
        ramp.nodes[name] = pair.value
        where = _join(path, name)
        if name in ("from", "to", "max", "min"):
            value = ch.duration(pair.value, where, positive=True)
        elif name == "step":
            value = _signed_duration(ch, pair.value, where)
            if value is not BAD and not _one_sample(abs(value)):
                ch.report(
                    pair.value,
                    where,
                    f"a step of {abs(value):g} s never changes the {phase}; give a step "
                    f"of at least one sample, or a plain duration `{phase}: SECONDS`",
                )
                value = BAD
        else:
            value = ch.number(
                pair.value,
                where,
                f"a whole number of cycles from 1 to {_check.MAX_CYCLES}",
                low=1,
                high=_check.MAX_CYCLES,
                integer=True,
            )
        ramp.values[name] = value
        ok = ok and value is not BAD
    if "from" not in got:
        ch.report(node, path, f"a ramp needs `from:` (the {phase} of the first cycle)")
        return BAD
    if "to" in got and "step" in got:
        ch.report(
            got["step"].key,
            _join(path, "step"),
            "a ramp has `to:` (linear over the cycles) or `step:` (a change every few "
            "cycles), not both",
        )
        return BAD
    if "to" not in got and "step" not in got:
        if len(got) < len(pairs):
            return BAD  # a misspelt key was reported (with a hint): that is the problem
        ch.report(
            node,
            path,
            "a ramp needs `to:` (linear over the cycles, e.g. {from: 4, to: 8}) or `step:` "
            "(e.g. {from: 4, step: 1, every: 2, max: 8}) beside `from:`",
        )
        return BAD
    if "to" in got:
        for name in STEP_ONLY_KEYS:
            if name in got:
                ch.report(
                    got[name].key,
                    _join(path, name),
                    f"`{name}:` goes with `step:`; a ramp with `to:` changes a little every cycle",
                )
                ok = False
    if not ok:
        return BAD
    step, start = ramp.values.get("step"), ramp.values["from"]
    if step is not None:
        if "max" in got and "min" in got:
            drop = "min" if step > 0 else "max"
            ch.report(
                got[drop].key,
                _join(path, drop),
                "a stepped ramp has `max:` (when it rises) or `min:` (when it falls), not both",
            )
            return BAD
        if step > 0 and "min" in got:
            ch.report(
                got["min"].key,
                _join(path, "min"),
                f"a rising step (step {describe_s(step)}) stops at `max:`, not `min:`",
            )
            return BAD
        if step < 0 and "max" in got:
            ch.report(
                got["max"].key,
                _join(path, "max"),
                f"a falling step (step {describe_s(step)}) stops at `min:`, not `max:`",
            )
            return BAD
        limit = "max" if step > 0 else "min"
        if limit in got:
            value = ramp.values[limit]
            if (step > 0 and value < start) or (step < 0 and value > start):
                side = "below" if step > 0 else "above"
                ch.report(
                    got[limit].value,
                    _join(path, limit),
                    f"`{limit}: {value:g}` is {side} `from: {start:g}`: the {phase} would "
                    f"never {'rise' if step > 0 else 'fall'}",
                )
                return BAD
    return ramp


def describe_s(seconds: float) -> str:
    return f"{seconds:+g} s"


def _pattern(ch, node: Node, path: str, unit_s: float) -> Any:
    """{phase: seconds} from `pattern: 4-7-8` and the unit, or BAD."""
    from audio_engine.script import _check

    if not isinstance(node, ScalarNode) or node.tag not in _TEXTLIKE:
        return ch.expected(node, path, PATTERN_HINT)
    text = node.value
    if not re.match(PATTERN_PATTERN, text) or text.endswith("\n"):
        ch.report(node, path, f"expected {PATTERN_HINT}, found {_check.describe(node)}")
        return _check.BAD
    parts = [float(p) for p in text.split("-")]
    names = PATTERN_PHASES[len(parts)]
    out: dict[str, float] = {}
    for name, part in zip(names, parts, strict=True):
        seconds = part * unit_s
        if name in ("inhale", "exhale") and part == 0:
            ch.report(
                node,
                path,
                f"the pattern {_check.describe(node)} gives the {name} 0 counts; inhale and "
                "exhale must last longer than zero (hold and rest may be 0)",
            )
            return _check.BAD
        if part > 0 and not _one_sample(seconds):
            ch.report(
                node,
                path,
                f"the pattern {_check.describe(node)} gives the {name} {seconds:g} s, less "
                f"than one sample (1/{model.SAMPLE_RATE} s); use a larger `unit:`",
            )
            return _check.BAD
        out[name] = seconds
    return out


def check_breathe(ch, node, path, options, origin) -> tuple[Any, float]:
    from audio_engine.script import _check

    BAD = _check.BAD
    pairs = ch.pairs(node, path, "breathing settings (a mapping with inhale, exhale, ...)")
    if pairs is None:
        return BAD, 0.0
    got = ch.known(pairs, path, BREATHE_KEYS, "breathe")
    ok = True
    values: dict[str, Any] = {}
    ramps: dict[str, Any] = {}
    origins: dict[str, model.Origin] = {}
    if "pattern" in got:
        for phase in model.PHASES:
            if phase in got:
                ch.report(
                    got[phase].key,
                    _join(path, phase),
                    f"`{phase}:` and `pattern:` both set the phases; give one or the other",
                )
                ok = False
        unit_s = DEFAULT_UNIT_S
        if "unit" in got:
            unit_s = ch.duration(got["unit"].value, _join(path, "unit"), positive=True)
        pnode = got["pattern"].value
        found = BAD if unit_s is BAD else _pattern(ch, pnode, _join(path, "pattern"), unit_s)
        if found is BAD:
            ok = False
        else:
            for phase, seconds in found.items():
                values[f"{phase}_s"] = seconds
                origins[phase] = ch._origin(pnode, _join(path, "pattern"))
    else:
        if "unit" in got:
            ch.report(
                got["unit"].key,
                _join(path, "unit"),
                "`unit:` goes with `pattern:` (it is how long one count of the pattern lasts)",
            )
            ok = False
        for name in ("inhale", "exhale"):
            if name not in got:
                ch.report(
                    node,
                    path,
                    f"missing required key '{name}' (or give the phases as `pattern: 4-7-8`)",
                )
                ok = False
        for phase in model.PHASES:
            if phase not in got:
                continue
            vnode, vpath = got[phase].value, _join(path, phase)
            origins[phase] = ch._origin(vnode, vpath)
            if isinstance(vnode, MappingNode):
                ramp = _ramp(ch, vnode, vpath, phase)
                values[f"{phase}_s"] = BAD if ramp is BAD else ramp.values["from"]
                if ramp is not BAD:
                    ramps[phase] = ramp
            else:
                values[f"{phase}_s"] = ch.duration(
                    vnode, vpath, positive=phase in ("inhale", "exhale")
                )
    if "cycles" in got:
        values["cycles"] = ch.number(
            got["cycles"].value,
            _join(path, "cycles"),
            f"a whole number of cycles from 1 to {_check.MAX_CYCLES}",
            low=1,
            high=_check.MAX_CYCLES,
            integer=True,
        )
    for flag in ("count", "guide_tone"):
        if flag in got:
            values[flag] = ch.boolean(got[flag].value, _join(path, flag))
            origins[flag] = ch._origin(got[flag].value, _join(path, flag))
    if "chime_on_phase" in got:
        values["chime_on_phase"] = ch.choice(
            got["chime_on_phase"].value, _join(path, "chime_on_phase"), model.CHIMES, "a chime"
        )
    cues: Any = {}
    if "cues" in got:
        cues_path = _join(path, "cues")
        cue_pairs = ch.pairs(
            got["cues"].value, cues_path, "cue words (a mapping with inhale, hold, ...)"
        )
        if cue_pairs is None:
            cues = BAD
        else:
            for name, pair in ch.known(cue_pairs, cues_path, model.PHASES, "cues").items():
                cues[name] = ch.text(
                    pair.value,
                    _join(cues_path, name),
                    what="a cue text",
                    allow_empty=True,
                    spoken=True,
                )
                origins[f"cues.{name}"] = ch._origin(pair.value, _join(cues_path, name))

    cycles = values.get("cycles", 1)
    n_cycles = cycles if isinstance(cycles, int) else 1
    ramp_models: dict[str, model.Ramp] = {}
    for phase, ramp in ramps.items():
        r = ramp.model()
        if isinstance(cycles, int) and not _ramp_fits(ch, ramp, r, phase, cycles, got):
            ok = False
            continue
        ramp_models[phase] = r

    # Each cycle's phases in seconds (a bad ramp counts as its `from`).
    phase_s = {p: values.get(f"{p}_s", 0.0) for p in model.PHASES}
    timed = [p for p, s in phase_s.items() if isinstance(s, float) and s > 0]
    per_cycle = [
        {p: ramp_models[p].seconds(c, n_cycles) if p in ramp_models else phase_s[p] for p in timed}
        for c in range(n_cycles if ramp_models else 1)
    ]
    if cues is not BAD and ch.language is not None:
        defaults = model.DEFAULT_CUES.get(ch.language)
        missing = [p for p in timed if cues.get(p) is None]
        if defaults is None and missing:
            names = ", ".join(missing)
            ch.report(
                node,
                path,
                f"no cue words for {names}: the language '{ch.language}' has no built-in "
                f"cues (built in: {', '.join(model.DEFAULT_CUES)}); give them with "
                f"`cues: {{{', '.join(f'{n}: ...' for n in missing)}}}` "
                '("" keeps a phase silent)',
            )
            ok = False
    if values.get("count") is True:
        short = []
        for p in timed:
            low = [
                c for c, lengths in enumerate(per_cycle) if lengths[p] < _check.WARN_COUNT_PHASE_S
            ]
            if not low:
                continue
            shortest = min(per_cycle[c][p] for c in low)
            longest = max(per_cycle[c][p] for c in low)
            span = _s(shortest) if shortest == longest else f"{shortest:g} to {longest:g} s"
            short.append(f"{p} {span}{_cycles_text(low, len(per_cycle))}")
        if short:
            ch.report(
                got["count"].value,
                _join(path, "count"),
                f"count: true on phases shorter than 2 s ({', '.join(short)}): "
                "nothing is counted in them",
                "warning",
            )
    if ramp_models:
        min_s = sum(sum(lengths.values()) for lengths in per_cycle)
    else:
        min_s = sum(per_cycle[0].values()) * n_cycles
    values["voice"] = ch._step_voice(options, path)
    if not ok or cues is BAD or any(v is BAD for v in [*values.values(), *cues.values()]):
        return BAD, min_s
    return (
        model.Breathe(
            **values,
            cues=model.Cues(**cues),
            origin=origin,
            ramps=tuple((p, ramp_models[p]) for p in model.PHASES if p in ramp_models),
            origins=tuple(origins.items()),
        ),
        min_s,
    )


def _ramp_fits(ch, ramp: _Ramp, r: model.Ramp, phase: str, cycles: int, got) -> bool:
    """Whether every cycle of the ramp lasts at least one sample; warns about a ramp that
    cannot change (one cycle, or `every:` past the last cycle)."""
    for c in range(cycles):
        seconds = r.seconds(c, cycles)
        if not _one_sample(seconds):
            every = f"every {r.every} cycles" if r.every > 1 else "every cycle"
            ch.report(
                ramp.nodes["step"],
                _join(ramp.path, "step"),
                f"the {phase} falls to {seconds:g} s in cycle {c + 1} of {cycles} (from "
                f"{r.from_s:g} s, step {describe_s(r.step_s or 0)} {every}): every cycle's "
                f"{phase} must last longer than zero; add `min:` or use fewer cycles",
            )
            return False
    if cycles == 1:
        ch.report(
            ramp.node,
            ramp.path,
            f"the {phase} ramps, but the step has one cycle: only `from: {r.from_s:g}` is used "
            "(set `cycles:`)",
            "warning",
        )
    elif r.step_s is not None and r.every >= cycles:
        ch.report(
            ramp.nodes["every"],
            _join(ramp.path, "every"),
            f"every: {r.every} with {cycles} cycles: the {phase} never changes",
            "warning",
        )
    return True
