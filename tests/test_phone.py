"""`relax phone`: the feed folder as podcast apps and HTTP clients meet it.

Two short Dutch sessions (a few seconds each) are made into a feed folder by the real command,
which then serves it on 127.0.0.1 in a subprocess. Real parsers read the feed (gPodder's
podcastparser, feedparser), mutagen reads the MP3's own chapters, http.client sends every request
byte for byte as written (no normalising of `..`), zxing-cpp reads the QR code back.
"""

from __future__ import annotations

import concurrent.futures
import html
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import numpy as np
import podcastparser
import pytest
import soundfile

from audio_engine import i18n
from audio_engine.errors import ScriptError
from audio_engine.phone import episodes, feed, qr

SHORT = """\
format: 1
id: {id}
title: {title}
language: nl
description: {description}
background:
  - noise: {{color: pink, volume: 0.03}}
steps:
  - section: Begin
  - say: {words}
  - pause: 0.5s
  - section: Adem
  - breathe: {{inhale: 1, exhale: 1.5, cycles: 1}}
  - chime: soft
"""


def _script(folder: Path, session_id: str, title: str, words: str, description: str) -> Path:
    path = folder / f"{session_id}.nl.yaml"
    path.write_text(SHORT.format(id=session_id, title=title, words=words, description=description))
    return path


def _relax(*args, timeout=240, **env):
    return subprocess.run(
        [sys.executable, "-m", "audio_engine", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, **env),
    )


class Served:
    """`relax phone` serving a folder in a subprocess; its stderr collected line by line."""

    def __init__(self, args):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "audio_engine", "phone", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout = []
        for line in self.process.stdout:
            self.stdout.append(line)
            if line.startswith("http://"):
                break
        else:
            raise AssertionError("no URL: " + self.process.stderr.read())
        self.url = self.stdout[-1].strip()
        parts = urlsplit(self.url)
        self.host, self.port = parts.hostname, parts.port
        self.token = parts.path.split("/")[1]
        self.base = f"/{self.token}/"
        self.errors: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._wait_for_line("stop with Ctrl-C")

    def _read(self):
        for line in self.process.stderr:
            self.errors.append(line.rstrip("\n"))

    def _wait_for_line(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.errors):
            assert time.monotonic() < deadline, self.errors
            time.sleep(0.02)

    def request(self, method, path, headers=None, host=None):
        conn = http.client.HTTPConnection(host or self.host, self.port, timeout=30)
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def get(self, name, headers=None):
        return self.request("GET", self.base + name, headers)

    def log_lines(self):
        return [line for line in self.errors if " 127.0.0.1 " in line]

    def stop(self, sig=signal.SIGINT):
        self.process.send_signal(sig)
        code = self.process.wait(timeout=20)
        self._reader.join(timeout=5)
        return code


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The feed folder made once (`--no-serve`), then served by a second run."""
    base = tmp_path_factory.mktemp("phone")
    scripts = base / "scripts"
    scripts.mkdir()
    one = _script(scripts, "kort-een", "Kort een", "Hallo daar.", "De eerste korte test.")
    two = _script(scripts, "kort-twee", "Kort twee", "Adem rustig.", "De tweede & laatste <test>.")
    folder = base / "feed"
    first = _relax(
        "phone", str(one), str(two), "-l", "nl", "--dir", str(folder), "--local", "--no-serve"
    )
    assert first.returncode == 0, first.stderr
    assert "2 exported, 0 unchanged" in first.stderr
    times = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    served = Served(
        [str(one), str(two), "-l", "nl", "--dir", str(folder), "--local", "--port", "0"]
    )
    yield {
        "folder": folder,
        "scripts": (one, two),
        "first": first,
        "times": times,
        "served": served,
        "base": base,
    }
    if served.process.poll() is None:
        served.process.kill()
        served.process.wait()


def _mp3(made):
    return made["folder"] / "kort-een.nl.mp3"


# ---- incremental -------------------------------------------------------------------------------


def test_a_second_run_exports_nothing_again(made):
    served = made["served"]
    assert any("0 exported, 2 unchanged" in line for line in served.errors), served.errors
    for name, mtime in made["times"].items():
        if name.endswith((".mp3", ".vtt", ".chapters.json")) or name == feed.ICON:
            assert (made["folder"] / name).stat().st_mtime_ns == mtime, name


def test_a_changed_script_is_exported_again_and_only_it(made, tmp_path):
    folder = tmp_path / "feed"
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    one, two = made["scripts"]
    one = Path(scripts / one.name)
    two = Path(scripts / two.name)
    one.write_bytes(made["scripts"][0].read_bytes())
    two.write_bytes(made["scripts"][1].read_bytes())
    args = ("phone", str(one), str(two), "-l", "nl", "--dir", str(folder), "--local", "--no-serve")
    assert "2 exported, 0 unchanged" in _relax(*args).stderr
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert "0 exported, 2 unchanged" in _relax(*args).stderr
    two.write_text(two.read_text().replace("Adem rustig.", "Adem heel rustig."))
    done = _relax(*args)
    assert done.returncode == 0, done.stderr
    assert "1 exported, 1 unchanged" in done.stderr
    after = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert after["kort-een.nl.mp3"] == before["kort-een.nl.mp3"]
    assert after["kort-twee.nl.mp3"] != before["kort-twee.nl.mp3"]
    # A file that went missing is made again.
    (folder / "kort-een.nl.vtt").unlink()
    assert "1 exported, 1 unchanged" in _relax(*args).stderr
    assert (folder / "kort-een.nl.vtt").is_file()
    # The link stays from run to run; --new-link changes it (and exports nothing).
    first = _relax(*args).stdout.splitlines()[-1]
    assert _relax(*args).stdout.splitlines()[-1] == first
    renewed = _relax(*args, "--new-link")
    assert "0 exported, 2 unchanged" in renewed.stderr
    link = renewed.stdout.splitlines()[-1]
    token = urlsplit(link).path.split("/")[1]
    assert link != first and token not in first
    assert f"/{token}/feed.xml".encode() in (folder / "feed.xml").read_bytes()


def test_an_interrupted_run_keeps_the_sessions_it_finished(tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    short = _script(scripts, "kort", "Kort", "Hallo.", "Kort.")
    long = _script(scripts, "lang", "Lang", "Hallo.", "Lang.")
    long.write_text(long.read_text() + "  - pause: 900s\n")  # minutes to encode
    folder = tmp_path / "feed"
    process = subprocess.Popen(
        [sys.executable, "-m", "audio_engine", "phone", str(short), str(long), "-l", "nl",
         "--dir", str(folder), "--local", "--no-serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (folder / "kort.nl.mp3").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130
    assert not (folder / "lang.nl.mp3").exists()
    assert [p.name for p in folder.iterdir() if p.name.endswith((".part", ".tmp"))] == []
    again = _relax("phone", str(short), "-l", "nl", "--dir", str(folder), "--local", "--no-serve")
    assert "0 exported, 1 unchanged" in again.stderr, again.stderr


def test_the_key_follows_the_script_bytes_and_nothing_else(tmp_path):
    from audio_engine import pipeline

    path = _script(tmp_path, "k", "K", "Hallo.", "Een.")
    key = episodes.export_key(pipeline.load(str(path)))
    assert episodes.export_key(pipeline.load(str(path))) == key
    path.write_text(path.read_text() + "\n")
    assert episodes.export_key(pipeline.load(str(path))) != key


def test_the_key_follows_which_line_each_recording_is_of(tmp_path, monkeypatch):
    # Two recordings imported under each other's lines, then put right: the same recordings,
    # the same engines, but another sound; the episode is made again.
    from audio_engine import pipeline
    from tests.test_recorded import LINES, record_lines, write_session

    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "cache"))
    made = record_lines(tmp_path / "voice", LINES)
    path = write_session(tmp_path, ", fallback: none")
    first, second = made["Adem in"], made["Adem uit"]
    wrong = episodes.export_key(pipeline.load(str(path)))
    swapped_first = first.with_name(second.stem + first.suffix)
    swapped_second = second.with_name(first.stem + second.suffix)
    first.rename(tmp_path / "first")
    second.rename(swapped_second)
    (tmp_path / "first").rename(swapped_first)
    right = episodes.export_key(pipeline.load(str(path)))
    assert right != wrong
    # A line without its recording (and no fallback) is an error at its step.
    swapped_first.unlink()
    with pytest.raises(ScriptError) as raised:
        episodes.export_key(pipeline.load(str(path)))
    assert raised.value.first.line == 9 and "no recording of 'Adem uit'" in str(raised.value)


def test_the_whole_library_in_a_language_is_its_sessions_in_that_language(tmp_path, monkeypatch):
    from audio_engine import library

    monkeypatch.setenv("RELAX_SESSIONS_DIR", str(tmp_path))
    own = _script(tmp_path, "mijn-eigen", "Mijn eigen", "Hallo.", "Van mij.")
    selection = episodes.select([], "nl")
    builtin = sorted(p for p in library.builtin_dir().glob("*.nl.yaml"))
    assert sorted(selection.scripts) == sorted([own, *builtin])
    assert selection.missing == []
    english = episodes.select([], "en").scripts
    assert own not in english and all(p.name.endswith(".en.yaml") for p in english)
    named = episodes.select(["breathing-478", "nowhere"], "nl")
    assert named.scripts == [library.builtin_dir() / "breathing-478.nl.yaml"]
    assert [name for name, _ in named.missing] == ["nowhere"]


# ---- the feed, as podcast apps read it ---------------------------------------------------------


def test_a_podcast_parser_finds_every_episode_as_the_files_are(made):
    served = made["served"]
    status, headers, body = served.get("feed.xml")
    assert status == 200 and headers["Content-Type"].startswith("application/rss+xml")
    parsed = podcastparser.parse(served.url, io.BytesIO(body))
    assert parsed["language"] == "nl"
    assert parsed["cover_url"] == f"http://{served.host}:{served.port}{served.base}{feed.ICON}"
    found = {e["title"]: e for e in parsed["episodes"]}
    assert sorted(found) == ["Kort een", "Kort twee"]
    guids = set()
    for title, episode in found.items():
        name = "kort-een" if title == "Kort een" else "kort-twee"
        path = made["folder"] / f"{name}.nl.mp3"
        (enclosure,) = episode["enclosures"]
        assert enclosure["file_size"] == path.stat().st_size
        assert enclosure["mime_type"] == "audio/mpeg"
        status, _, audio = served.request("GET", urlsplit(enclosure["url"]).path)
        assert status == 200 and audio == path.read_bytes()
        info = soundfile.info(str(path))
        assert episode["total_time"] == round(info.frames / info.samplerate)
        assert episode["total_time"] >= 4
        guids.add(episode["guid"])
    # A description is HTML to podcast apps: the script's text shows as written, `<test>` too.
    assert html.unescape(found["Kort twee"]["description"]) == "De tweede & laatste <test>."
    assert len(guids) == 2
    # The cover is a square PNG of the size podcast apps ask for.
    status, headers, picture = served.get(feed.ICON)
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert picture[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(picture[16:20], "big") == int.from_bytes(picture[20:24], "big") == 1400


def test_every_episode_has_its_language_chapters_and_transcript(made):
    served = made["served"]
    parsed = feedparser.parse(served.get("feed.xml")[2])
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.feed.language == "nl"
    assert len(parsed.entries) == 2
    for entry in parsed.entries:
        assert entry.language == "nl"
        chapters = entry.podcast_chapters
        transcript = entry.podcast_transcript
        assert chapters["type"] == "application/json+chapters"
        assert (transcript["type"], transcript["language"]) == ("text/vtt", "nl")
        for link in (chapters["url"], transcript["url"]):
            parts = urlsplit(link)
            assert (parts.hostname, parts.port) == (served.host, served.port)
            status, _, body = served.request("GET", parts.path)
            name = parts.path.rsplit("/", 1)[1]
            assert status == 200 and body == (made["folder"] / name).read_bytes()
        status, _, vtt = served.request("GET", urlsplit(transcript["url"]).path)
        assert vtt.startswith(b"WEBVTT")
        assert b"Hallo daar." in vtt or b"Adem rustig." in vtt


def test_the_guid_is_the_same_for_the_same_session_and_language():
    def make(session_id, language, audio="x.mp3"):
        return episodes.Episode(
            session_id, language, "t", "d", audio, "x.vtt", "x.json", 1, 1.0, "2026-01-01", "k"
        )

    assert feed.guid(make("a", "nl")) == feed.guid(make("a", "nl", audio="other.mp3"))
    assert feed.guid(make("a", "nl")) != feed.guid(make("a", "en"))
    assert feed.guid(make("a", "nl")) != feed.guid(make("b", "nl"))


def test_the_feed_is_the_same_bytes_for_the_same_episodes_and_link():
    def make(session_id, published):
        return episodes.Episode(
            session_id, "nl", "T", "D", f"{session_id}.nl.mp3", f"{session_id}.nl.vtt",
            f"{session_id}.nl.chapters.json", 1000, 61.4, published, "k",
        )  # fmt: skip

    items = [make("één", "2026-01-01T10:00:00+00:00"), make("b", "2026-02-01T10:00:00+00:00")]
    base = "http://127.0.0.1:8478/token/"
    first = feed.render(items, base, "nl")
    assert feed.render(items, base, "nl") == first
    parsed = podcastparser.parse(base + feed.FEED, io.BytesIO(first))
    assert sorted(e["enclosures"][0]["url"] for e in parsed["episodes"]) == [
        base + "%C3%A9%C3%A9n.nl.mp3",
        base + "b.nl.mp3",
    ]
    assert [e["total_time"] for e in parsed["episodes"]] == [61, 61]
    assert b"<lastBuildDate>Sun, 01 Feb 2026 10:00:00 +0000</lastBuildDate>" in first


def test_the_json_chapters_are_the_mp3s_own_id3_chapters(made):
    from mutagen.id3 import ID3

    for name in ("kort-een", "kort-twee"):
        status, _, body = made["served"].get(f"{name}.nl.chapters.json")
        assert status == 200
        document = json.loads(body)
        assert document["version"] == "1.2.0"
        tags = ID3(made["folder"] / f"{name}.nl.mp3")
        frames = sorted(tags.getall("CHAP"), key=lambda f: f.start_time)
        assert [c["title"] for c in document["chapters"]] == ["Begin", "Adem"]
        assert [
            (c["title"], round(c["startTime"] * 1000), round(c["endTime"] * 1000))
            for c in document["chapters"]
        ] == [(f.sub_frames["TIT2"].text[0], f.start_time, f.end_time) for f in frames]
        assert document["chapters"][1]["startTime"] > 0.5


def test_the_served_mp3_decodes_to_what_relax_export_writes(made, tmp_path):
    one = made["scripts"][0]
    out = tmp_path / "export.mp3"
    done = _relax("export", str(one), "-o", str(out))
    assert done.returncode == 0, done.stderr
    status, _, body = made["served"].get("kort-een.nl.mp3")
    assert status == 200
    served, rate = soundfile.read(io.BytesIO(body), dtype="float32")
    exported, rate2 = soundfile.read(str(out), dtype="float32")
    assert rate == rate2 == 44100
    assert served.shape == exported.shape and served.shape[0] > 4 * rate
    assert np.array_equal(served, exported)
    assert np.sqrt(np.mean(served**2)) > 0.01  # sound, not silence


# ---- the server --------------------------------------------------------------------------------


def test_byte_ranges_with_their_edges(made):
    served = made["served"]
    data = _mp3(made).read_bytes()
    n = len(data)
    cases = {
        "bytes=0-0": (0, 0),
        "bytes=0-99": (0, 99),
        "bytes=100-": (100, n - 1),
        "bytes=-100": (n - 100, n - 1),
        f"bytes={n - 1}-": (n - 1, n - 1),
        f"bytes={n - 1}-{n - 1}": (n - 1, n - 1),
        f"bytes=10-{n + 5000}": (10, n - 1),  # an end past the file: up to its last byte
        f"bytes=-{n + 10}": (0, n - 1),  # a suffix longer than the file: all of it
        "bytes=1000-1999": (1000, 1999),
    }
    for header, (first, last) in cases.items():
        status, headers, body = served.get("kort-een.nl.mp3", {"Range": header})
        assert status == 206, header
        assert headers["Content-Range"] == f"bytes {first}-{last}/{n}", header
        assert int(headers["Content-Length"]) == last - first + 1
        assert body == data[first : last + 1], header
    for header in (f"bytes={n}-", f"bytes={n + 10}-{n + 20}", "bytes=5-2", "bytes=abc", "bytes=-0"):
        status, headers, _ = served.get("kort-een.nl.mp3", {"Range": header})
        assert status == 416, header
        assert headers["Content-Range"] == f"bytes */{n}", header
    # A unit that is not bytes, and several ranges at once: the whole file (RFC 9110 14.2).
    for header in ("items=0-5", "bytes=0-1,5-6"):
        status, headers, body = served.get("kort-een.nl.mp3", {"Range": header})
        assert (status, body) == (200, data), header
        assert headers["Accept-Ranges"] == "bytes"


def test_head_says_what_get_sends_without_the_body(made):
    served = made["served"]
    data = _mp3(made).read_bytes()
    status, headers, body = served.request("HEAD", served.base + "kort-een.nl.mp3")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) == len(data)
    assert headers["Content-Type"] == "audio/mpeg" and headers["Accept-Ranges"] == "bytes"
    status, headers, body = served.request(
        "HEAD", served.base + "kort-een.nl.mp3", {"Range": "bytes=-10"}
    )
    assert (status, body) == (206, b"")
    assert headers["Content-Range"] == f"bytes {len(data) - 10}-{len(data) - 1}/{len(data)}"
    # A conditional GET of what the client already has: 304, nothing sent.
    status, _, body = served.get("kort-een.nl.mp3", {"If-None-Match": headers["Etag"]})
    assert (status, body) == (304, b"")


def test_without_the_token_or_outside_the_feed_nothing_is_found(made):
    served = made["served"]
    token = served.token
    folder = made["folder"]
    outside = made["base"] / "secret.txt"
    outside.write_text("not for phones")
    wrong = ("A" if token[0] != "A" else "B") + token[1:]
    paths = [
        "/feed.xml",
        f"/{wrong}/feed.xml",
        f"/{token[:-1]}/feed.xml",
        f"/{token}x/feed.xml",
        f"/{token.upper() if token.upper() != token else token.lower()}/feed.xml",
        f"/{token}",
        f"/{token}/",
        f"/{token}/{episodes.STATE_FILE}",
        f"/{token}/{qr.PNG_NAME}",
        f"/{token}/nothing.mp3",
        "/",
        # traversal, plain and encoded
        f"/{token}/../secret.txt",
        f"/{token}/../../../../etc/passwd",
        f"/{token}/%2e%2e/secret.txt",
        f"/{token}/%2E%2E%2Fsecret.txt",
        f"/{token}/..%2fsecret.txt",
        f"/{token}/%2e%2e%5csecret.txt",
        f"/{token}/%252e%252e%252fsecret.txt",  # double-encoded
        f"/{token}/%25252e%25252e/secret.txt",
        f"/{token}//etc/passwd",
        f"/{token}/{folder}/feed.xml",
        f"/{token}/%2f{str(outside).lstrip('/')}",
        f"/{token}/./feed.xml",
        f"/{token}/feed.xml/",
        f"/{token}/feed.xml%00",
        f"/../{token}/feed.xml",
        f"/%2e%2e/{token}/feed.xml",
        f"/{token}/kort-een.nl.mp3/../feed.xml",
    ]
    for path in paths:
        status, _, body = served.request("GET", path)
        assert status == 404, path
        assert b"not for phones" not in body and b"root:" not in body
    # The same file with the right token is there: the 404s are not for want of the file.
    assert served.get("feed.xml")[0] == 200


def test_a_symlink_leading_out_of_the_folder_is_not_followed(made):
    served = made["served"]
    folder = made["folder"]
    outside = made["base"] / "elsewhere.vtt"
    outside.write_text("WEBVTT\n\nnot for phones\n")
    target = folder / "kort-twee.nl.vtt"
    keep = folder / ".kept.vtt"
    os.replace(target, keep)
    try:
        target.symlink_to(outside)
        status, _, body = served.get("kort-twee.nl.vtt")
        assert status == 404 and b"not for phones" not in body
        # Nor one that stays inside: served files are regular files, never links.
        target.unlink()
        target.symlink_to(keep)
        assert served.get("kort-twee.nl.vtt")[0] == 404
    finally:
        target.unlink(missing_ok=True)
        os.replace(keep, target)
    assert served.get("kort-twee.nl.vtt")[0] == 200


def test_other_methods_are_405_and_nothing_is_written(made):
    served = made["served"]
    before = {p.name: p.read_bytes() for p in made["folder"].iterdir() if p.is_file()}
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "MKCOL", "TRACE"):
        for name in ("feed.xml", "kort-een.nl.mp3", "new.mp3"):
            conn = http.client.HTTPConnection(served.host, served.port, timeout=30)
            conn.request(method, served.base + name, body=b"x" * 100)
            response = conn.getresponse()
            response.read()
            conn.close()
            assert response.status == 405, (method, name)
            assert response.getheader("Allow") == "GET, HEAD"
    after = {p.name: p.read_bytes() for p in made["folder"].iterdir() if p.is_file()}
    assert after == before


def test_eight_downloads_at_once(made):
    served = made["served"]
    names = ["kort-een.nl.mp3", "kort-twee.nl.mp3"] * 4
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(served.get, names))
    for name, (status, _, body) in zip(names, results, strict=True):
        assert status == 200 and body == (made["folder"] / name).read_bytes()


def test_it_listens_only_on_the_address_it_says(made):
    served = made["served"]
    assert served.host == "127.0.0.1"
    with pytest.raises(ConnectionRefusedError):
        served.request("GET", served.base + "feed.xml", host="127.0.0.2")


def test_the_qr_codes_read_back_as_the_link(made):
    import pygame
    import zxingcpp

    served = made["served"]
    image = pygame.surfarray.array3d(pygame.image.load(str(made["folder"] / qr.PNG_NAME)))
    (code,) = zxingcpp.read_barcodes(np.ascontiguousarray(image[:, :, 0].T))
    assert code.text == served.url
    # The terminal's code: a block is a light module, two rows a line.
    text = "".join(served.stdout[:-1])
    rows = []
    for line in text.splitlines():
        top = [c in "\u2588\u2580" for c in line]
        bottom = [c in "\u2588\u2584" for c in line]
        rows += [top, bottom]
    pixels = np.kron(np.array(rows, dtype=np.uint8) * 255, np.ones((8, 8), dtype=np.uint8))
    (code,) = zxingcpp.read_barcodes(np.ascontiguousarray(pixels))
    assert code.text == served.url


def test_the_start_line_and_the_log_say_what_happened(made):
    from audio_engine.cli import phone

    served = made["served"]
    assert served.token not in "\n".join(served.errors)
    line = phone.start_line("192.168.1.20", 2)
    assert "anyone on this network who has the link can listen" in line
    assert "Ctrl-C" in line and "192.168.1.20" in line
    start = phone.start_line("127.0.0.1", 2)
    assert "this computer only" in start and "Ctrl-C" in start
    assert any(start in line for line in served.errors)
    # One session is one, in both languages.
    assert phone.start_line("127.0.0.1", 1).startswith("relax: serving 1 session to this")
    with i18n.using("nl"):
        assert phone.start_line("192.168.1.20", 1).startswith("relax: 1 sessie beschikbaar op")
        assert phone.start_line("127.0.0.1", 3).startswith("relax: 3 sessies beschikbaar voor")
    count = len(served.log_lines())
    served.get("feed.xml")
    served.request("HEAD", served.base + "kort-een.nl.mp3")
    served.request("DELETE", served.base + "feed.xml")
    served.request("GET", "/nothing")
    deadline = time.monotonic() + 10
    while len(served.log_lines()) < count + 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    new = served.log_lines()[count:]
    assert len(new) == 4, new
    assert [line.split()[2:5] for line in new] == [
        ["GET", "/<link>/feed.xml", "200"],
        ["HEAD", "/<link>/kort-een.nl.mp3", "200"],
        ["DELETE", "/<link>/feed.xml", "405"],
        ["GET", "/nothing", "404"],
    ]


def test_ctrl_c_stops_it_cleanly_with_130(made, tmp_path):
    # A server of its own on a copy of the module's folder (nothing to export): the module's
    # one serves the other tests, in whatever order and worker they run.
    import shutil

    one, two = made["scripts"]
    folder = shutil.copytree(made["folder"], tmp_path / "feed", symlinks=True)
    served = Served(
        [str(one), str(two), "-l", "nl", "--dir", str(folder), "--local", "--port", "0"]
    )
    try:
        assert any("0 exported, 2 unchanged" in line for line in served.errors)
        assert served.get("feed.xml")[0] == 200
    finally:
        code = served.stop(signal.SIGINT)
    assert code == 130
    assert served.errors[-1] == "relax: interrupted"
    with pytest.raises(ConnectionRefusedError):
        served.request("GET", served.base + "feed.xml")
    leftovers = [p.name for p in folder.iterdir() if p.name.endswith((".part", ".tmp"))]
    assert leftovers == []


def test_a_busy_port_is_one_line_and_exit_1(tmp_path):
    import socket

    script = _script(tmp_path, "k", "K", "Hallo.", "Een.")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _relax(
            "phone", str(script), "-l", "nl", "--dir", str(tmp_path / "f"), "--local",
            "--port", str(port),
        )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith(f"relax: error: port {port} on 127.0.0.1")
    assert "Traceback" not in done.stderr
    # Said before exporting anything.
    assert not (tmp_path / "f" / "k.nl.mp3").exists() and "exported" not in done.stderr


# ---- the whole library -------------------------------------------------------------------------


@pytest.mark.heavy
@pytest.mark.timeout(1500)
def test_the_dutch_library_becomes_a_feed_and_a_second_run_makes_nothing(tmp_path):
    folder = tmp_path / "feed"
    args = ("phone", "-l", "nl", "--dir", str(folder), "--local", "--no-serve")
    own = tmp_path / "own"  # the built-in library only, not what other tests put in the user's
    own.mkdir()
    done = _relax(*args, timeout=1500, RELAX_SESSIONS_DIR=str(own))
    assert done.returncode == 0, done.stderr
    parsed = feedparser.parse((folder / "feed.xml").read_bytes())
    from audio_engine import library

    ids = sorted(p.name.split(".")[0] for p in library.builtin_dir().glob("*.nl.yaml"))
    assert sorted(urlsplit(e.enclosures[0].href).path.split("/")[-1] for e in parsed.entries) == [
        f"{i}.nl.mp3" for i in ids
    ]
    for entry in parsed.entries:
        name = urlsplit(entry.enclosures[0].href).path.split("/")[-1]
        assert int(entry.enclosures[0].length) == (folder / name).stat().st_size
        assert entry.podcast_chapters["url"] and entry.podcast_transcript["url"]
        assert entry.language == "nl" and int(entry.itunes_duration) >= 30
        assert json.loads((folder / name.replace(".mp3", ".chapters.json")).read_text())["chapters"]
    again = _relax(*args, timeout=300, RELAX_SESSIONS_DIR=str(own))
    assert f"0 exported, {len(ids)} unchanged" in again.stderr


def test_the_page_names_the_programs_files_and_options(root):
    import re

    from audio_engine.cli import build_parser

    page = (root / "docs" / "phone.md").read_text()
    for name in (feed.FEED, feed.ICON, qr.PNG_NAME, episodes.STATE_FILE, "<id>.<lang>.vtt"):
        assert f"| `{name}` |" in page, name
    assert f"`<id>.<lang>{episodes.CHAPTERS_SUFFIX}`" in page
    synopsis = page.split("```")[1]
    (sub,) = [
        a
        for a in build_parser("phone")._actions
        if getattr(a, "choices", None) and "phone" in a.choices
    ]
    options = {
        o for a in sub.choices["phone"]._actions for o in a.option_strings if o.startswith("--")
    }
    assert set(re.findall(r"--[a-z-]+", synopsis)) == options - {"--help", "--language"}
    from audio_engine.phone import server

    assert str(server.DEFAULT_PORT) in page and f"up to {server.THREADS} downloads" in page


def test_the_default_folder_is_feed_in_the_data_folder_and_private(tmp_path, monkeypatch):
    import stat

    monkeypatch.setenv("RELAX_DATA_DIR", str(tmp_path / "data"))
    assert episodes.default_folder() == tmp_path / "data" / "feed"
    episodes.make_folder(episodes.default_folder())
    state = episodes.load_state(episodes.default_folder())
    episodes.save_state(episodes.default_folder(), state)
    assert stat.S_IMODE((tmp_path / "data" / "feed").stat().st_mode) == 0o700
    saved = tmp_path / "data" / "feed" / episodes.STATE_FILE
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert episodes.load_state(episodes.default_folder())["token"] == state["token"]
    # A state file that is a symlink is not read (a fresh state, with a new token).
    other = tmp_path / "other.json"
    other.write_bytes(saved.read_bytes())
    saved.unlink()
    saved.symlink_to(other)
    assert episodes.load_state(episodes.default_folder())["token"] != state["token"]
