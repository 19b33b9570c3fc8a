"""Malformed scripts: each names the exact line, column, value path and key words of every error.

The cases live in `tests/scripts/bad/*.yaml`; each file ends with its expectations as comments:
`# expect: LINE:COL PATH | words | words` (PATH `-` for the document), one per error, and the
file must produce exactly those errors. `# note: LINE:COL PATH | words` after an `expect` line is
a second place of that error (a note line), and the error must have exactly those notes. Limits that need generated input (1 MiB, alias bombs,
encodings) are tested below.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from audio_engine import script
from audio_engine.errors import Diagnostic, ScriptError

BAD = Path(__file__).parent / "scripts" / "bad"
CASES = sorted(BAD.glob("*.yaml"))


def _expectation(text: str) -> tuple[int, int, str, list[str]]:
    where, rest = text.split(" ", 1)
    value_path, *words = (part.strip() for part in rest.split("|"))
    row, col = (int(n) for n in where.split(":"))
    return row, col, "" if value_path == "-" else value_path, words


def expectations(path: Path) -> list[tuple[int, int, str, list[str], list]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# expect: "):
            out.append((*_expectation(line[len("# expect: ") :]), []))
        elif line.startswith("# note: "):
            out[-1][4].append(_expectation(line[len("# note: ") :]))
    return out


def _matches(d: Diagnostic, row: int, col: int, value_path: str, words: list[str], notes=None):
    message = d.message.lower()
    if notes is not None and not (
        len(d.notes) == len(notes)
        and all(
            _matches(n, *note) and n.severity == "note"
            for n, note in zip(d.notes, notes, strict=True)
        )
    ):
        return False
    return (d.line, d.col, d.path) == (row, col, value_path) and all(
        w.lower() in message for w in words
    )


def test_there_are_many_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_bad_script(path: Path):
    expected = expectations(path)
    assert expected, f"{path.name} has no `# expect:` lines"
    session, diagnostics = script.check(path)
    errors = [d for d in diagnostics if d.severity == "error"]
    assert session is None
    for row, col, value_path, words, notes in expected:
        assert any(_matches(d, row, col, value_path, words, notes) for d in errors), (
            f"no error {row}:{col} {value_path} {words} with notes {notes}; got:\n"
            + "\n".join(map(str, errors))
        )
    assert len(errors) == len(expected), "\n".join(map(str, errors))
    with pytest.raises(ScriptError) as caught:
        script.load(path)
    assert caught.value.diagnostics == diagnostics
    for d in errors:
        text = str(d)
        assert text.startswith(f"{path}:{d.line}:{d.col}: error: ")
        if d.path:
            assert f": error: {d.path}: " in text
        # a note is a line of its own after the error, in the same compiler form
        lines = text.split("\n")
        assert len(lines) == 1 + len(d.notes)
        for n, line in zip(d.notes, lines[1:], strict=True):
            assert line.startswith(f"{path}:{n.line}:{n.col}: note: ")


def test_diagnostics_are_in_file_order():
    _, diagnostics = script.check(BAD / "many-errors.yaml")
    positions = [(d.line, d.col) for d in diagnostics]
    assert positions == sorted(positions)
    assert len(diagnostics) == 6


def test_message_form_matches_the_page():
    text = "format: 1\ntitle: T\nlanguage: en\nsteps:\n - pause: 1\n - pause: 1\n - pause: 1\n"
    text += " - breathe: {inhale: fast, exhale: 4}\n"
    _, diagnostics = script.checks(text, filename="x.yaml")
    assert [str(d) for d in diagnostics] == [
        'x.yaml:8:22: error: steps[3].breathe.inhale: expected a duration (seconds, "4s", '
        '"1m30s", "500ms"), found "fast"'
    ]


# ---- limits that need generated input ----------------------------------------------------------

HEADER = "format: 1\ntitle: T\nlanguage: en\nsteps: [Hello]\n"


def test_file_over_one_mib(tmp_path: Path):
    path = tmp_path / "big.yaml"
    path.write_text(HEADER + "description: " + "x" * (1024 * 1024) + "\n")
    session, diagnostics = script.check(path)
    assert session is None
    assert len(diagnostics) == 1
    assert (diagnostics[0].line, diagnostics[0].col) == (1, 1)
    assert "1 MiB" in diagnostics[0].message
    with pytest.raises(ScriptError, match="1 MiB"):
        script.loads(HEADER + "#" * (1024 * 1024))


def test_file_just_under_one_mib_is_read(tmp_path: Path):
    filler = "# " + "x" * 1000 + "\n"
    text = HEADER + filler * (1024 * 1024 // len(filler) - 1)
    assert len(text.encode()) <= 1024 * 1024
    assert script.loads(text).title == "T"


def _laughs(levels: int, width: int = 10) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return HEADER + "\n".join(lines) + "\n"


def test_billion_laughs_fails_fast():
    started = time.perf_counter()
    session, diagnostics = script.checks(_laughs(9))
    elapsed = time.perf_counter() - started
    assert session is None
    assert len(diagnostics) == 1
    assert "aliases expand the document past" in diagnostics[0].message
    assert "1 MiB" in diagnostics[0].message
    assert diagnostics[0].line == 10  # the level where the expansion passes 1 MiB (a5)
    assert elapsed < 1.0  # hang guard


def test_small_alias_use_is_fine():
    text = HEADER.replace("steps: [Hello]", "steps: [&h Hello, *h, *h]")
    assert [s.text for s in script.loads(text).steps] == ["Hello"] * 3


def test_deep_nesting_is_an_error_not_a_crash():
    text = HEADER + "description: " + "[" * 5000 + "]" * 5000 + "\n"
    session, diagnostics = script.checks(text)
    assert session is None
    assert len(diagnostics) == 1
    assert diagnostics[0].line == 5
    assert "nest" in diagnostics[0].message or "depth" in diagnostics[0].message


def test_recursive_alias():
    session, diagnostics = script.checks(HEADER + "tags: &t [a, *t]\n")
    assert session is None
    assert [(d.line, d.col) for d in diagnostics] == [(5, 14)]
    assert "contains it" in diagnostics[0].message


def test_undefined_alias():
    session, diagnostics = script.checks(HEADER + "tags: [*nope]\n")
    assert session is None
    assert "names no anchor" in diagnostics[0].message


def test_not_utf8(tmp_path: Path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(HEADER.encode() + b"description: caf\xe9\n")
    session, diagnostics = script.check(path)
    assert session is None
    assert [(d.line, d.col) for d in diagnostics] == [(5, 17)]
    assert "UTF-8" in diagnostics[0].message


def test_control_characters_in_keys_and_values_are_printed_escaped():
    text = 'format: "\\e[2J"\ntitle: T\nlanguage: en\n"k\\e]0;x\\a": 1\nsteps: [x]\n'
    _, diagnostics = script.checks(text)
    printed = "\n".join(map(str, diagnostics))
    assert len(diagnostics) == 2 and len(printed.splitlines()) == 2, printed
    assert "\x1b" not in printed and "\x07" not in printed
    assert "unknown key 'k\\u001b]0;x\\u0007'" in printed


def test_control_character_is_a_yaml_error():
    session, diagnostics = script.checks(HEADER + "description: a\x07b\n")
    assert session is None
    assert diagnostics[0].line == 5
    assert "YAML" in diagnostics[0].message


def test_missing_file(tmp_path: Path):
    session, diagnostics = script.check(tmp_path / "nope.yaml")
    assert session is None
    assert [d.message for d in diagnostics] == ["no such file"]


def test_empty_file():
    session, diagnostics = script.checks("# only a comment\n")
    assert session is None
    assert "empty" in diagnostics[0].message


def test_columns_count_characters_not_bytes():
    text = "format: 1\ntitle: Überraschung\nlanguage: de\nsteps:\n  - {say: ünd, pause: 2}\n"
    _, diagnostics = script.checks(text)
    assert [(d.line, d.col, d.path) for d in diagnostics] == [(5, 16, "steps[0].pause")]


def test_errors_inside_aliased_values_are_reported_per_use():
    text = HEADER.replace("steps: [Hello]", "steps: [&p {pause: -1}, *p]")
    _, diagnostics = script.checks(text)
    assert [(d.line, d.path) for d in diagnostics] == [
        (4, "steps[0].pause"),
        (4, "steps[1].pause"),
    ]


@pytest.mark.parametrize(
    ("name", "wanted"),
    [
        ("My Session.en.yaml", "my-session"),
        ("body_scan_test.yaml", "body-scan-test"),
        ("Scan.yaml", "scan"),
        ("scan.v2.yaml", "scan-v2"),
        ("Ademhaling rustig.nl-BE.yaml", "ademhaling-rustig"),
        ("Café Pause.yaml", "cafe-pause"),
        ("ÆØÅ straße.yaml", "aeoa-strasse"),
    ],
)
def test_id_from_the_file_name_is_made_valid(tmp_path: Path, name: str, wanted: str):
    path = tmp_path / name
    path.write_text(HEADER)
    assert script.load(path).id == wanted
    path.write_text(HEADER + "id: own-id\n")
    assert script.load(path).id == "own-id"  # the script's own id wins


def test_file_name_without_letters_or_digits_needs_an_id(tmp_path: Path):
    path = tmp_path / "___.yaml"
    path.write_text(HEADER)
    session, diagnostics = script.check(path)
    assert session is None
    assert diagnostics[0].path == "id"
    assert "___.yaml" in diagnostics[0].message and "set `id:`" in diagnostics[0].message


def test_sound_file_through_symlink_outside_is_refused(tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "rain.wav").write_bytes(b"RIFF")
    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "rain.wav").symlink_to(outside / "rain.wav")
    path = folder / "s.yaml"
    path.write_text(HEADER + "background:\n  - sound: {file: rain.wav, volume: 0.5}\n")
    session, diagnostics = script.check(path)
    assert session is None
    assert "outside" in diagnostics[0].message
    # ...unless that folder is allowed
    assert (
        script.load(path, allowed_dirs=(outside,)).background[0].path
        == (outside / "rain.wav").resolve()
    )


def test_sound_file_needs_a_folder_when_loaded_from_text():
    text = HEADER + "background:\n  - sound: {file: rain.wav, volume: 0.5}\n"
    session, diagnostics = script.checks(text)
    assert session is None
    assert "folder" in diagnostics[0].message


def test_file_name_language_that_disagrees_with_the_script_is_a_warning(tmp_path: Path):
    text = "format: 1\ntitle: T\nlanguage: en\nsteps:\n  - pause: 1\n"
    path = tmp_path / "calm.nl.yaml"
    path.write_text(text)
    session, diagnostics = script.check(path)
    assert session is not None and session.language == "en"
    (warning,) = diagnostics
    assert (warning.severity, warning.line, warning.path) == ("warning", 3, "language")
    assert "file name says 'nl'" in warning.message
    (tmp_path / "calm.en.yaml").write_text(text)
    assert script.check(tmp_path / "calm.en.yaml")[1] == ()
