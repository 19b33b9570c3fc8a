"""Random and mutated documents: the loader only ever answers with a session or `ScriptError`.

Each document is also timed: under 1 s each (a generous bound for documents of a few KiB; it
guards against hangs, it is not a benchmark). Documents built as data also check that whatever
the loader accepts, the JSON Schema accepts too.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import jsonschema
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audio_engine import model, script
from audio_engine.errors import ScriptError

HERE = Path(__file__).parent
SEEDS = [
    p.read_text(encoding="utf-8")
    for p in sorted((HERE / "scripts" / "good").glob("*.yaml"))
    + sorted((HERE.parent / "sessions").glob("*.yaml"))[:4]
]
VALIDATOR = jsonschema.Draft202012Validator(script.json_schema())
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _load_timed(text: str, base_dir: Path | None = None):
    started = time.perf_counter()
    try:
        result = script.loads(text, filename="fuzz.yaml", base_dir=base_dir)
    except ScriptError as exc:
        assert exc.diagnostics, "a ScriptError without diagnostics"
        for d in exc.diagnostics:
            assert d.line >= 1 and d.col >= 1 and d.severity in ("error", "warning")
            assert d.message
        result = None
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"{elapsed:.2f} s for a document of {len(text)} characters"
    return result


YAML_BITS = st.sampled_from(
    [
        ": ", "- ", "\n", "  ", "{", "}", "[", "]", ",", "&a ", "*a", "!!python/object ", "!x ",
        "<<: ", "---\n", "? ", "|\n", ">-\n", "'", '"', "#", "%YAML 1.1\n", "\t", "\\", "\x00",
        "\ufeff", "ü", "say", "pause: ", "steps:", "breathe: {inhale: ", "1m30s", ".nan", ".inf",
        "-4", "1e999", "9" * 50, "yes", "~", "null", "2024-01-01", "1:30", "0x1F", "0o7",
    ]
)  # fmt: skip


@FUZZ
@given(st.lists(st.one_of(YAML_BITS, st.text(max_size=8)), max_size=60))
def test_random_documents(parts: list[str]):
    _load_timed("".join(parts))


@FUZZ
@given(st.text(max_size=3000))
def test_random_text(text: str):
    _load_timed(text)


@st.composite
def mutated(draw) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 6))):
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        j = draw(st.integers(i, min(len(text), i + 40)))
        op = draw(st.sampled_from(["delete", "insert", "duplicate", "replace", "swap-lines"]))
        if op == "delete":
            text = text[:i] + text[j:]
        elif op == "insert":
            text = text[:i] + draw(st.one_of(YAML_BITS, st.text(max_size=10))) + text[i:]
        elif op == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif op == "replace":
            text = text[:i] + draw(YAML_BITS) + text[j:]
        else:
            lines = text.splitlines(keepends=True)
            a = draw(st.integers(0, len(lines) - 1))
            b = draw(st.integers(0, len(lines) - 1))
            lines[a], lines[b] = lines[b], lines[a]
            text = "".join(lines)
    return text


@FUZZ
@given(mutated())
def test_mutated_good_scripts(text: str):
    _load_timed(text, base_dir=HERE / "scripts" / "good")


# ---- documents built as data -----------------------------------------------------------------

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["4s", "1m30s", "500ms", "0", "-1s", "fast", "{region}", "bowl", "pink"]),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=2),
)
DURATION = st.one_of(st.integers(0, 30), st.floats(0, 30), st.sampled_from(["3s", "500ms", "1m"]))

# Ramped phases: linear, stepped (rising or falling), mostly valid, and their bad forms.
POSITIVE = st.one_of(st.integers(1, 12), st.floats(0.5, 12), st.sampled_from(["3s", "500ms"]))
GOOD_RAMP = st.one_of(
    st.fixed_dictionaries({"from": POSITIVE, "to": POSITIVE}),
    st.fixed_dictionaries(
        {"from": st.integers(1, 6), "step": st.sampled_from([1, 0.5, "1s", 2])},
        optional={"every": st.integers(1, 4), "max": st.integers(6, 12)},
    ),
    st.fixed_dictionaries(
        {"from": st.integers(8, 12), "step": st.sampled_from([-1, -0.5, "-500ms"])},
        optional={"every": st.integers(1, 4), "min": st.integers(1, 4)},
    ),
)
RAMP = st.one_of(
    DURATION,
    GOOD_RAMP,
    st.builds(lambda r, k, v: {**r, k: v}, GOOD_RAMP, st.sampled_from(["from", "to", "step", "every", "max", "min", "form"]), JUNK),
)  # fmt: skip
PATTERN = st.one_of(
    st.lists(st.sampled_from(["0", "1", "4", "7", "8", "2.5", "0.5", "x", ""]), min_size=1, max_size=5).map("-".join),
    st.sampled_from(["4-7-8", "4-4-4-4", "5-5", "4-7-8-0", "4 - 7 - 8", "4--8", "-4-8", 4]),
)  # fmt: skip

WORDS = st.text(alphabet="abcdefghij klmnoü.", min_size=1, max_size=20).filter(str.strip)


def _v(draw, valid):
    """Mostly a valid value, sometimes junk: most documents are then valid or nearly so."""
    return draw(JUNK) if draw(st.integers(0, 19)) == 0 else draw(valid)


@st.composite
def step(draw, depth: int = 0):
    kinds = ["text", "say", "pause", "chime", "section", "breathe", "stretch", "scan"]
    kind = draw(st.sampled_from(kinds + (["repeat"] if depth < 3 else [])))
    if kind == "text":
        return _v(draw, WORDS)
    if kind == "say":
        out = {"say": _v(draw, WORDS)}
        if draw(st.booleans()):
            out["duration"] = _v(draw, DURATION.filter(lambda d: d != 0))
        if draw(st.booleans()):
            out["voice"] = {"rate": _v(draw, st.integers(60, 320))}
        return out
    if kind == "pause":
        return {"pause": _v(draw, DURATION)}
    if kind == "chime":
        return {"chime": _v(draw, st.sampled_from(model.CHIMES))}
    if kind == "section":
        return {"section": _v(draw, WORDS)}
    if kind == "breathe":
        form = draw(st.sampled_from(["plain", "ramps", "pattern"]))
        if form == "pattern":
            body = {"pattern": _v(draw, PATTERN)}
            if draw(st.booleans()):
                body["unit"] = _v(draw, DURATION)
            if draw(st.integers(0, 9)) == 0:
                body[draw(st.sampled_from(model.PHASES))] = 4  # beside a pattern: an error
        else:
            phase = RAMP if form == "ramps" else DURATION
            body = {p: _v(draw, phase) for p in model.PHASES if draw(st.booleans())}
            body.setdefault("inhale", 4)
            body.setdefault("exhale", 4)
        if draw(st.booleans()):
            body["cycles"] = _v(draw, st.integers(0, 1001))
        if draw(st.booleans()):
            body["count"] = _v(draw, st.booleans())
        if draw(st.booleans()):
            body["cues"] = {p: _v(draw, st.text(max_size=8)) for p in ("inhale", "exhale")}
        return {"breathe": _v(draw, st.just(body))}
    if kind == "stretch":
        body = {"hold": _v(draw, DURATION)}
        if draw(st.booleans()):
            body["say"] = _v(draw, WORDS)
        else:
            body["sides"] = _v(draw, st.lists(WORDS, max_size=3))
        if draw(st.booleans()):
            body["countdown"] = _v(draw, st.integers(-1, 40))
        return {"stretch": body}
    if kind == "scan":
        return {
            "scan": {
                "prompt": draw(st.sampled_from(["Relax your {region}.", "no region", ""])),
                "regions": _v(draw, st.lists(WORDS, max_size=3)),
                "dwell": _v(draw, DURATION),
            }
        }
    return {
        "repeat": _v(draw, st.integers(0, 5)),
        "steps": draw(st.lists(step(depth + 1), max_size=3)),
    }


LAYER = st.one_of(
    st.builds(lambda f, v: {"drone": {"frequency": f, "volume": v}}, st.integers(0, 3000), st.floats(-0.5, 1.5)),
    st.builds(lambda c, b: {"binaural": {"carrier": c, "beat": b, "volume": 0.1}}, st.integers(0, 3000), st.floats(0, 50)),
    st.builds(lambda c: {"noise": {"color": c, "volume": 0.1}}, st.sampled_from(model.NOISE_COLORS)),
    JUNK,
)  # fmt: skip


@st.composite
def session_data(draw) -> dict:
    data = {
        "format": _v(draw, st.just(1)),
        "title": _v(draw, WORDS),
        "language": _v(draw, st.sampled_from(["en", "nl", "en-GB", "de"])),
        "steps": draw(st.lists(step(), min_size=1, max_size=5)),
    }
    if draw(st.booleans()):
        data["background"] = draw(st.lists(LAYER, max_size=3))
    if draw(st.booleans()):
        data["voice"] = {"rate": _v(draw, st.integers(50, 350))}
    if draw(st.integers(0, 9)) == 0:
        data[draw(st.sampled_from(["titel", "tags", "id", "description"]))] = draw(JUNK)
    if draw(st.integers(0, 19)) == 0:
        del data[draw(st.sampled_from(list(data)))]
    return data


def _has_nan(value) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nan(v) for v in value)
    return False


@FUZZ
@given(session_data())
def test_data_documents_and_schema_agreement(data: dict):
    text = yaml.safe_dump(data, allow_unicode=True)
    session = _load_timed(text)
    if session is not None:
        # the loader is stricter than the schema, never more lenient
        assert VALIDATOR.is_valid(yaml.safe_load(text)), text
    elif not _has_nan(data) and VALIDATOR.is_valid(yaml.safe_load(text)):
        # the schema accepted what the loader refused: only the loader-only rules may explain it
        _, diagnostics = script.checks(text)
        loader_only = (
            "countdown of",
            "no cue words",
            "the session lasts",
            "nothing to say",
            "the session has no length",
            "the session unrolls to",
            "unsupported format 1.0",
            "falls to",  # a falling ramp must stay above 0 over its cycles
            "is below `from",  # a ramp's max/min against its from
            "is above `from",
            "never changes",  # a step under one sample
            "less than one sample",  # a pattern count times a tiny unit
            "without control characters",
        )
        errors = [d.message for d in diagnostics if d.severity == "error"]
        assert all(any(w in m for w in loader_only) for m in errors), errors
