"""Chapters in exported files, read back by ffmpeg's demuxers (what ffprobe lists): every chapter
once, in time order, none of zero length, in every format."""

from __future__ import annotations

import pytest

from audio_engine import export, pipeline, script
from tests import _ffmpeg

RATE = 44100

# Titles of very different lengths (mutagen wrote ID3 frames sorted by size); a section followed
# at once by a named stretch, twice: once with titles that differ, once where the stretch's
# contains the section's.
CHAPTERS = """\
format: 1
id: chapters
title: Chapter order
language: en
background:
  - noise: {color: pink, volume: 0.04}
steps:
  - section: A rather long first section title, to be written in a big frame
  - say: One.
  - section: Two
  - say: Two.
  - section: Shoulders
  - stretch:
      name: Shoulder roll and a long stretch
      say: Roll the shoulders.
      hold: 1s
  - section: Neck
  - stretch:
      name: Neck stretch
      say: Tilt the head.
      hold: 1s
  - section: Five
  - say: Five.
  - section: Closing words
  - say: The end.
"""

EXPECTED = [
    "A rather long first section title, to be written in a big frame",
    "Two",
    "Shoulders: Shoulder roll and a long stretch",
    "Neck stretch",
    "Five",
    "Closing words",
]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chapters")
    path = folder / "chapters.en.yaml"
    path.write_text(CHAPTERS)
    prepared = pipeline.prepare(script.load(path))
    gain = pipeline.gain(prepared)
    files = {
        name: export.export(prepared, folder / f"chapters.{name}", gain=gain, transcript=False)
        for name in export.FORMATS
    }
    return prepared, files


@pytest.mark.parametrize("name", sorted(export.FORMATS))
def test_ffmpeg_lists_every_chapter_once_in_time_order(written, name):
    prepared, files = written
    tl = prepared.timeline
    # A section, then at once a named stretch (twice): one chapter each, with the file's name.
    starts = [c.start_sample for c in tl.chapters]
    assert len(starts) == 6 and len(set(starts)) == 6
    assert [c.title for c in tl.chapters] == EXPECTED
    found = _ffmpeg.chapters(files[name])
    assert [c.title for c in found] == EXPECTED
    # ffmpeg counts MP3 chapter times from the stream's start, which it puts after the LAME
    # encoder delay (1,105 samples): one frame's worth of slack there; 1 ms elsewhere.
    slack = 1152 / RATE if name == "mp3" else 0.0011
    wanted = sorted(set(starts))
    for chapter, start in zip(found, wanted, strict=True):
        assert abs(chapter.start_s - start / RATE) <= slack
        assert chapter.end_s - chapter.start_s > 0.2, chapter
    for before, after in zip(found, found[1:], strict=False):
        assert before.start_s < after.start_s
        assert abs(before.end_s - after.start_s) < 0.0011
    assert abs(found[-1].end_s - tl.total_samples / RATE) <= slack


def test_id3_chapters_are_stored_in_time_order(written):
    # The CHAP frames themselves, in the order they sit in the files (mutagen reads them in
    # file order into an ordered dict).
    import mutagen

    _, files = written
    for name in ("mp3", "wav"):
        chaps = mutagen.File(files[name]).tags.getall("CHAP")
        assert [c.element_id for c in chaps] == [f"chp{i:03d}" for i in range(len(EXPECTED))]
        assert [c.start_time for c in chaps] == sorted(c.start_time for c in chaps)


def test_the_transcript_notes_the_merged_chapters(written):
    prepared, _ = written
    vtt = export.transcript_vtt(prepared.timeline)
    notes = [line for line in vtt.splitlines() if line.startswith("Section: ")]
    assert [n.removeprefix("Section: ").rsplit(" (", 1)[0] for n in notes] == EXPECTED


def test_a_file_from_a_chapter_counts_its_chapters_from_there(written):
    prepared, _ = written
    tl = prepared.timeline
    start = tl.chapters[2].start_sample  # "Shoulders", with its stretch at the same sample
    found = export.file_chapters(tl, start)
    assert [c.title for c in found] == EXPECTED[2:]
    assert [c.start_sample for c in found] == sorted(
        {c.start_sample - start for c in tl.chapters[2:]}
    )
    # A start inside a chapter: that chapter opens the file at 0.
    inside = export.file_chapters(tl, start + 100)
    assert inside[0] == export.FileChapter(EXPECTED[2], 0)
    assert inside[1:] == tuple(export.FileChapter(c.title, c.start_sample - 100) for c in found[1:])
