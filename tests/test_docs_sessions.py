"""docs/sessions.md says what `relax info` says: every session's length (each language), every
chapter's start and title (English), and the length of the breathing cycles its rows count
("4 cycles ... (76 s)"), from the sessions compiled with the default voices.

Times on the page are whole seconds, cut (`3:01` for 3:01.6); a clip a few samples longer or
shorter on another CPU may move a time across a second, so a time may be up to 1 s early or late.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from audio_engine import library, pipeline, script
from audio_engine.model import SAMPLE_RATE, Voice

DOC = (Path(__file__).resolve().parent.parent / "docs" / "sessions.md").read_text(encoding="utf-8")
SLACK_S = 1.0
PHASES = ("inhale", "hold", "exhale", "rest")


@pytest.fixture(scope="module")
def timelines():
    found = {}
    for entry in library.find_all():
        if entry.builtin:
            session = script.load(entry.path)
            found[(session.id, session.language)] = pipeline.prepare(session).timeline
    return found


def seconds(clock: str) -> int:
    minutes, secs = clock.split(":")
    return int(minutes) * 60 + int(secs)


def rows(text: str):
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0] not in ("id", "at") and not set(cells[0]) <= {"-"}:
                yield cells


def overview() -> dict[str, tuple[str, str]]:
    """id -> (English length, Dutch length) from the table of sessions."""
    part = DOC.split("| id |", 1)[1].split("\n\n", 1)[0]
    table = {}
    for cells in rows("| id |" + part):
        both = re.fullmatch(r"(\d+:\d\d)(?: \(nl (\d+:\d\d)\))?", cells[2])
        assert both, cells
        table[cells[0].strip("`")] = (both[1], both[2] or both[1])
    return table


def chapters() -> dict[str, list[list[str]]]:
    """id -> its section table's rows (at, title, what happens)."""
    found = {}
    for part in re.split(r"^## ", DOC, flags=re.M)[1:]:
        head = re.match(r"([a-z0-9-]+): ", part)
        if head:
            found[head[1]] = list(rows(part))
    return found


def counted(text: str) -> list[tuple[str, str]]:
    """("20", "3:40") for each "(T)" right after "N cycles ..." (the last N cycles before it)."""
    found = []
    for part in re.findall(r"[^()]*\((?:\d+ s|\d+:\d\d)\)", text):
        cycles = re.findall(r"(\d+) (?:\w+ )?cycles", part)
        if cycles:
            found.append((cycles[-1], re.search(r"\((.*)\)$", part)[1]))
    return found


def close(doc_s: int, actual_s: float) -> bool:
    return doc_s - SLACK_S <= actual_s < doc_s + 1 + SLACK_S


def test_the_page_lists_every_built_in_session(timelines):
    assert set(overview()) == {sid for sid, _ in timelines}
    assert set(chapters()) == {sid for sid, _ in timelines}


def test_every_length_is_what_info_says(timelines):
    wrong = []
    for sid, shown in overview().items():
        for language, clock in zip(("en", "nl"), shown, strict=True):
            actual = timelines[(sid, language)].duration_s
            if not close(seconds(clock), actual):
                wrong.append(f"{sid}.{language}: page {clock}, info {actual:.1f} s")
    assert not wrong


def test_every_chapter_is_where_info_says(timelines):
    wrong = []
    for sid, table in chapters().items():
        tl = timelines[(sid, "en")]
        got = [(c.title, c.start_sample / SAMPLE_RATE) for c in tl.chapters]
        if [cells[1] for cells in table] != [title for title, _ in got]:
            wrong.append(f"{sid}: page {[c[1] for c in table]}, info {[t for t, _ in got]}")
            continue
        for cells, (title, start) in zip(table, got, strict=True):
            if not close(seconds(cells[0]), start):
                wrong.append(f"{sid} {title}: page {cells[0]}, info {start:.1f} s")
    assert not wrong


def test_every_counted_stretch_of_cycles_lasts_what_the_page_says(timelines):
    checked = 0
    for sid, table in chapters().items():
        tl = timelines[(sid, "en")]
        ends = [c.start_sample for c in tl.chapters[1:]] + [tl.total_samples]
        for cells, chapter, end in zip(table, tl.chapters, ends, strict=True):
            for count, length in counted(cells[2]):
                phases = [
                    e
                    for e in tl.events
                    if e.kind in PHASES
                    and chapter.start_sample <= e.start_sample < end
                    and e.cycles == int(count)
                ]
                total = sum(e.duration_samples for e in phases) / SAMPLE_RATE
                said = int(length[:-2]) if length.endswith(" s") else seconds(length)
                assert total == pytest.approx(said), f"{sid} {chapter.title}: {cells[2]}"
                checked += 1
    assert checked >= 5


def test_the_espeak_length_the_page_gives_is_what_info_says():
    said = re.search(r"with `--engine espeak` the English desk-stretches lasts (\d+:\d\d)", DOC)
    assert said
    session = script.load(library.resolve("desk-stretches", "en"))
    actual = pipeline.prepare(session, Voice(engine="espeak")).timeline.duration_s
    assert close(seconds(said[1]), actual), f"page {said[1]}, info {actual:.1f} s"
