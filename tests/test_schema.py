"""The JSON Schema and the loader agree; the authoring docs cover the schema and their examples load.

Every good script must pass both. Every bad script in `tests/scripts/bad/` must fail both, except
the few marked `# loader-only: REASON` (rules a schema cannot express); for those the schema must
accept the document, so the list stays honest.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from audio_engine import script

HERE = Path(__file__).parent
ROOT = HERE.parent
GOOD = sorted((HERE / "scripts" / "good").glob("*.yaml")) + sorted(
    (ROOT / "sessions").glob("*.yaml")
)
BAD = sorted((HERE / "scripts" / "bad").glob("*.yaml"))
DOCS = ROOT / "docs" / "authoring.md"

VALIDATOR = jsonschema.Draft202012Validator(script.json_schema())

# The whole list of rules the schema cannot express (each bad file says which applies to it).
LOADER_ONLY = {
    "NaN is not JSON data",
    "depends on the language's built-in cue words",
    "one value must fit others (a countdown in its hold, a ramp over its cycles)",
    "where a file lies is not in the data",
    "whether a file exists is not in the data",
    "YAML data keeps only the last of duplicate keys",
    "the session's total length adds up many values",
    "a whole number and the same number as a float are equal JSON data",
}


def schema_accepts(text: str) -> bool:
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError):  # ValueError: an integer with too many digits
        return False
    return VALIDATOR.is_valid(data)


def loader_only_reason(path: Path) -> str | None:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# loader-only: "):
            return line[len("# loader-only: ") :]
    return None


def test_schema_is_valid_draft_2020_12():
    schema = script.json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    json.dumps(schema)  # plain JSON


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good_scripts_pass_both(path: Path):
    assert script.check(path)[0] is not None
    errors = [e.message for e in VALIDATOR.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_scripts_fail_both(path: Path):
    assert script.check(path)[0] is None
    reason = loader_only_reason(path)
    if reason is None:
        assert not schema_accepts(path.read_text()), (
            "the schema accepts a script the loader refuses"
        )
    else:
        assert reason in LOADER_ONLY
        assert schema_accepts(path.read_text()), "marked loader-only, but the schema refuses it"


def test_loader_only_list_is_short_and_used():
    used = {loader_only_reason(p) for p in BAD} - {None}
    assert used == LOADER_ONLY
    assert len(LOADER_ONLY) <= 8


def test_repeat_nesting_limit_is_in_the_schema():
    def nested(levels: int) -> dict:
        steps: list = ["Hello"]
        for _ in range(levels):
            steps = [{"repeat": 1, "steps": steps}]
        return {"format": 1, "title": "T", "language": "en", "steps": steps}

    assert VALIDATOR.is_valid(nested(8))
    assert not VALIDATOR.is_valid(nested(9))
    assert script.checks(yaml.safe_dump(nested(8)))[0] is not None
    assert script.checks(yaml.safe_dump(nested(9)))[0] is None


def test_schema_command_prints_the_same_schema():
    result = subprocess.run(
        [sys.executable, "-m", "audio_engine", "schema"], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == script.json_schema()
    assert result.stdout.startswith("{\n  ")


# ---- the authoring docs --------------------------------------------------------------------


def _schema_keys(node, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            out.add(name)
            _schema_keys(sub, out)
        for key, sub in node.items():
            if key != "properties":
                _schema_keys(sub, out)
    elif isinstance(node, list):
        for sub in node:
            _schema_keys(sub, out)
    return out


def doc_examples() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)


def test_docs_name_every_key_of_the_schema():
    docs = DOCS.read_text(encoding="utf-8")
    keys = _schema_keys(script.json_schema(), set())
    assert len(keys) > 30
    missing = sorted(k for k in keys if f"`{k}" not in docs)
    assert missing == []


def test_docs_name_every_value_list():
    docs = DOCS.read_text(encoding="utf-8")
    for word in ("bell", "bowl", "soft", "white", "pink", "brown", ".wav", ".flac", ".ogg"):
        assert word in docs


def test_docs_have_examples_for_every_action_and_layer():
    examples = "\n".join(doc_examples())
    for key in ("say:", "pause:", "chime:", "section:", "breathe:", "stretch:", "scan:"):
        assert key in examples
    for key in ("repeat:", "drone:", "binaural:", "noise:", "sound:", "<<:"):
        assert key in examples


@pytest.mark.parametrize("index", range(len(doc_examples())))
def test_docs_examples_validate(index: int, tmp_path: Path):
    text = doc_examples()[index]
    for name in re.findall(r"file:\s*([\w.-]+)", text):
        (tmp_path / name).write_bytes(b"RIFF")  # the loader checks that it exists
    language = yaml.safe_load(text)["language"]
    path = tmp_path / f"example-{index}.{language}.yaml"
    path.write_text(text, encoding="utf-8")
    session, diagnostics = script.check(path)
    assert [str(d) for d in diagnostics] == []
    assert session is not None
    assert VALIDATOR.is_valid(yaml.safe_load(text))
