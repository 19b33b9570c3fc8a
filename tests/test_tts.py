"""The tts stage with the real engine (pyttsx3 + espeak-ng): clips, voices, cache, determinism.

Only the retry and timeout mechanisms use a fake: the worker's `RELAX_TTS_FAULT` hook writes an
empty WAV or hangs. The fork servers (Linux) are checked against fresh worker processes byte for
byte, and for what they leave behind after a timeout, `close()` and Ctrl-C.
Most tests use a fresh cache folder so that they really synthesize.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import ctypes.util
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from audio_engine import model, tts
from audio_engine.cli import voices as voices_cli
from audio_engine.errors import TTSError
from audio_engine.speech import cache, espeak, voices

RATE = model.SAMPLE_RATE
TEN_MS = RATE // 100


def utt(text, language="en", *, name=None, rate_wpm=150, volume=1.0, engine="espeak"):
    # espeak-ng's clips (this file tests the pyttsx3 engine; tests/test_neural.py the other)
    voice = model.Voice(name=name, rate_wpm=rate_wpm, volume=volume, engine=engine)
    return model.Utterance(text, language, voice)


def rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty speech cache for this test only."""
    path = tmp_path / "speech"
    monkeypatch.setenv("RELAX_CACHE_DIR", str(path))
    return path


def _run_python(code: str, cache_dir, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        timeout=60,
        env={**os.environ, "RELAX_CACHE_DIR": str(cache_dir), **env},
    )


# ---- clips -------------------------------------------------------------------------------------


def test_clip_is_float32_at_engine_rate_and_starts_and_ends_with_sound(fresh_cache):
    clip = tts.synthesize(utt("Breathe in slowly through your nose"))
    assert clip.dtype == np.float32 and clip.ndim == 1
    duration_s = clip.size / RATE
    # Six words at 150 wpm is 2.4 s of "words"; espeak speaks it in about 1.7 s.
    assert 1.0 < duration_s < 3.0
    assert rms(clip[:TEN_MS]) > 0.002, "leading silence was not trimmed"
    assert rms(clip[-TEN_MS:]) > 0.0005, "trailing silence was not trimmed"
    # The ramps: both ends start from (almost) zero, so nothing clicks.
    assert abs(clip[0]) < 1e-3 and abs(clip[-1]) < 1e-3
    assert np.max(np.abs(clip)) > 0.1


def test_long_speech_arrives_whole(fresh_cache):
    # Regression: pyttsx3's runAndWait returns ~10 ms after espeak starts; a worker that exited
    # then wrote no file for any text longer than that.
    clip = tts.synthesize(utt("1234567", rate_wpm=80))
    assert clip.size / RATE > 5.0


def test_rate_changes_length_in_the_expected_direction(fresh_cache):
    slow = tts.synthesize(utt("Let your shoulders drop", rate_wpm=100))
    fast = tts.synthesize(utt("Let your shoulders drop", rate_wpm=250))
    assert 1.8 < slow.size / fast.size < 3.5  # ideally 2.5


def test_volume_half_gives_half_the_rms(fresh_cache):
    full = tts.synthesize(utt("Rest", volume=1.0))
    half = tts.synthesize(utt("Rest", volume=0.5))
    assert full.size == half.size
    assert rms(half) / rms(full) == pytest.approx(0.5, abs=0.01)


# ---- determinism -------------------------------------------------------------------------------


def test_same_bytes_whatever_came_before_and_in_another_process(fresh_cache, tmp_path, monkeypatch):
    hold = utt("Hold")
    alone = tts.synthesize(hold).tobytes()

    # Same process, empty cache again, after other texts (espeak keeps state inside a process).
    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "second"))
    others = [utt("Breathe in"), utt("Breathe out"), utt("Adem in", "nl")]
    tts.synthesize_many(others, jobs=1)
    after_others = tts.synthesize_many([*others, hold], jobs=1)[hold].tobytes()
    assert after_others == alone

    # Another process with its own empty cache.
    code = (
        "import hashlib; from audio_engine import model, tts; "
        "c = tts.synthesize(model.Utterance('Hold', 'en', model.Voice(rate_wpm=150, volume=1.0, engine='espeak')));"
        "import sys; sys.stderr.write(hashlib.sha256(c.tobytes()).hexdigest())"
    )
    done = _run_python(code, tmp_path / "third")
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().strip() == hashlib.sha256(alone).hexdigest()


def test_parallel_jobs_give_the_same_clips_as_one_job(fresh_cache, tmp_path, monkeypatch):
    texts = [utt(t) for t in ("Hold", "Rest", "Breathe in", "Breathe out")]
    serial = tts.synthesize_many(texts, jobs=1)
    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "parallel"))
    seen = []
    parallel = tts.synthesize_many(texts, jobs=4, progress=lambda d, n: seen.append((d, n)))
    assert all(serial[u].tobytes() == parallel[u].tobytes() for u in texts)
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


# ---- voices ------------------------------------------------------------------------------------


def test_voice_choice_by_language():
    assert tts.voice_for("nl").id == "gmw/nl"
    assert tts.voice_for("nl-BE").id == "gmw/nl"
    assert tts.voice_for("en", engine="espeak").id == "gmw/en"
    assert tts.voice_for("en-US", engine="espeak").id == "gmw/en-us"
    assert tts.voice_for("en_us", engine="espeak").id == "gmw/en-us"


def test_voice_choice_by_name():
    assert tts.voice_for("en", "scotland").id == "gmw/en-gb-scotland"
    assert tts.voice_for("en", "DUTCH").id == "gmw/nl"
    assert tts.voice_for("en", "gmw/en").id == "gmw/en"  # exact id wins over longer ids
    with pytest.raises(TTSError, match="no installed voice matches 'no-such-voice'"):
        tts.voice_for("en", "no-such-voice")


def test_voice_name_that_spells_a_language_picks_a_voice_for_it():
    # "en" is also inside "Vietnamese (Central)" and "Lingua Franca Nova" is inside nothing
    # but matches "fr" by substring: a language the name spells comes first.
    assert tts.voice_for("nl", "en").id == "gmw/en"
    assert tts.voice_for("en", "nl").id == "gmw/nl"
    assert tts.voice_for("en", "fr").id.endswith("/fr")
    assert tts.voice_for("en", "es").id.endswith("/es")
    assert tts.voice_for("en", "EN-us", "espeak").id == "gmw/en-us"
    assert tts.voice_for("en", "nl-BE").id == "gmw/nl"  # no voice has that tag: Dutch
    assert tts.voice_for("en", "central").id == "aav/vi-vn-x-central"  # still a substring


def test_dutch_session_speaks_dutch(fresh_cache):
    dutch = tts.synthesize(utt("Adem rustig in", "nl"))
    english = tts.synthesize(utt("Adem rustig in", "en"))
    same_size = min(dutch.size, english.size)
    assert dutch.size != english.size or not np.allclose(
        dutch[:same_size], english[:same_size], atol=0.01
    )
    key_nl = cache.key(utt("Adem rustig in", "nl"), tts.voice_for("nl").id, tts.engine_version())
    assert cache.load(cache.path_of(key_nl)).tobytes() == dutch.tobytes()


def test_unknown_language_is_a_clear_error(fresh_cache):
    with pytest.raises(TTSError) as caught:
        tts.voice_for("xx")
    assert "'xx'" in str(caught.value)
    assert "relax voices --language xx" in str(caught.value)
    # synthesize_many refuses before synthesizing anything
    with pytest.raises(TTSError, match="'xx'"):
        tts.synthesize_many([utt("Hello"), utt("Hello", "xx")])
    assert not list(fresh_cache.glob("*/*.f32"))


def test_engine_version_names_pyttsx3_and_espeak():
    version = tts.engine_version()
    assert "pyttsx3 " in version and "espeak-ng " in version


def test_voices_command_lists_dutch(capsys):
    parser = argparse.ArgumentParser()
    voices_cli.register(parser.add_subparsers())
    args = parser.parse_args(["voices", "--language", "nl"])
    assert args.run(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ENGINE", "ID", "NAME", "LANGUAGES"]
    assert any(line.split()[:4] == ["*", "espeak", "gmw/nl", "Dutch"] for line in lines)
    assert not any("gmw/en" in line for line in lines)


def test_relax_voices_command(capsys):
    from audio_engine.cli import main

    assert main(["voices", "--language", "nl"]) == 0
    out = capsys.readouterr().out
    assert "gmw/nl" in out and "Dutch" in out
    assert main(["voices", "--language", "zz"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "'zz'" in captured.err


def test_voices_command_aligns_columns(capsys):
    parser = argparse.ArgumentParser()
    voices_cli.register(parser.add_subparsers())
    args = parser.parse_args(["voices", "--language", "en"])
    assert args.run(args) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "gmw/" in line]
    assert len(lines) > 3
    name_columns = {line.index("English") for line in lines}
    assert len(name_columns) == 1


# ---- cache -------------------------------------------------------------------------------------


def _cached_file(u: model.Utterance):
    voice = tts.voice_for(u.language, u.voice.name, u.voice.engine)
    return cache.path_of(cache.key(u, voice.id, tts.engine_version()))


def test_warm_cache_is_used(fresh_cache, monkeypatch):
    u = utt("Soften your jaw")
    first = tts.synthesize(u)

    class NoSynthesis(espeak.Espeak):
        def make_clip(self, *args, **kwargs):
            raise AssertionError("synthesized although the clip was cached")

    with voices.swapped(NoSynthesis()):
        assert tts.synthesize(u).tobytes() == first.tobytes()
        assert tts.synthesize_many([u])[u].tobytes() == first.tobytes()


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_cache_file_is_synthesized_again(fresh_cache, damage):
    u = utt("Relax your hands")
    good = tts.synthesize(u)
    path = _cached_file(u)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-100] ^= 0x40
    else:
        data = bytearray(b"not a clip")
    path.write_bytes(bytes(data))
    assert cache.load(path) is None
    again = tts.synthesize(u)
    assert again.tobytes() == good.tobytes()
    assert cache.load(path).tobytes() == good.tobytes()  # repaired on disk


def test_cache_leaves_no_temporary_files(fresh_cache):
    tts.synthesize_many([utt("One"), utt("Two"), utt("Three")])
    names = [p.name for p in fresh_cache.rglob("*") if p.is_file()]
    assert len(names) == 3 and all(n.endswith(".f32") and not n.startswith(".") for n in names)


# ---- the engine's quirks -----------------------------------------------------------------------


def test_stdout_stays_clean(tmp_path):
    code = (
        "from audio_engine import model, tts; v = model.Voice(rate_wpm=150, volume=1.0);"
        "tts.synthesize_many([model.Utterance(t, 'en', v) for t in ('Hold', 'Rest')]);"
        "tts.synthesize(model.Utterance('Rust', 'nl', v)); tts.list_voices()"
    )
    done = _run_python(code, tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b""


def test_empty_wav_is_retried(fresh_cache, tmp_path, monkeypatch):
    u = utt("Breathe out")
    monkeypatch.setenv("RELAX_TTS_FAULT", "empty-first")
    retried = tts.synthesize(u)
    monkeypatch.delenv("RELAX_TTS_FAULT")
    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "clean"))
    assert tts.synthesize(u).tobytes() == retried.tobytes()


def test_persistent_failure_names_the_text(fresh_cache, monkeypatch):
    monkeypatch.setenv("RELAX_TTS_FAULT", "empty-always")
    with pytest.raises(TTSError, match="'Breathe out'.*empty audio file"):
        tts.synthesize(utt("Breathe out"))
    with pytest.raises(TTSError, match="empty audio file"):
        tts.synthesize_many([utt("Breathe in"), utt("Hold")])
    assert not list(fresh_cache.rglob("*.f32"))


def test_nothing_to_speak_is_an_error(fresh_cache):
    with pytest.raises(TTSError, match="nothing to speak"):
        tts.synthesize(utt("..."))


# ---- the background synthesizer ----------------------------------------------------------------


def test_synthesizer_gives_clips_in_any_order(fresh_cache):
    texts = [utt(t) for t in ("In", "Out", "Hold on", "Let go")]
    with tts.Synthesizer(jobs=2) as synth:
        synth.request(texts)
        last = synth.clip(texts[-1], timeout=30)
        first = synth.clip(texts[0], timeout=30)
        extra = synth.clip(utt("Unrequested"), timeout=30)
    assert last.size > 0 and first.size > 0 and extra.size > 0
    assert first.tobytes() == tts.synthesize(texts[0]).tobytes()


def test_synthesizer_timeout_and_close(fresh_cache):
    synth = tts.Synthesizer(jobs=1)
    synth.request([utt("A rather longer sentence to keep the worker busy for a while")])
    with pytest.raises(tts.ClipNotReady):
        synth.clip(utt("Not yet"), timeout=0.0)
    synth.close()
    with pytest.raises(TTSError, match="closed"):
        synth.request([utt("Too late")])


# ---- fork servers (Linux): a fresh child per clip, byte-identical to a fresh process -----------

needs_fork_server = pytest.mark.skipif(
    not espeak.Espeak().fork_server, reason="fork servers are Linux-only"
)

# Different texts in both languages, with "Hold" after others: in one engine, "Hold" as the 2nd or
# 3rd utterance sounds different from "Hold" alone (see PITFALLS.md).
SEQUENCE = (
    ("Breathe in", "gmw/en"),
    ("Hold", "gmw/en"),
    ("Adem rustig in", "gmw/nl"),
    ("Hold", "gmw/en"),
    ("Vasthouden", "gmw/nl"),
    ("Welcome. Find a comfortable position.", "gmw/en"),
    ("Hold", "gmw/en"),
)


def _request(text: str, voice_id: str, out) -> dict:
    return {"op": "synth", "text": text, "voice_id": voice_id, "rate_wpm": 150, "out": str(out)}


def _fresh_worker_wav(text: str, voice_id: str, out) -> bytes:
    done = subprocess.run(
        [sys.executable, "-m", "audio_engine.speech._espeak_worker"],
        input=json.dumps(_request(text, voice_id, out)),
        capture_output=True,
        text=True,
        timeout=60,
        env=espeak.worker_env(),
    )
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


def _one_engine_wavs(texts, tmp_path) -> list[bytes]:
    """The files one engine writes for `texts` in a row (what the fork server must avoid)."""
    code = (
        "import json, sys; from audio_engine.speech import _espeak_worker as w; w._load_espeak();"
        "e = w._engine(); e.setProperty('rate', 150)\n"
        "for i, (text, voice) in enumerate(json.loads(sys.argv[1])):\n"
        "    e.setProperty('voice', voice); e.save_to_file(text, sys.argv[2] + f'/{i}.wav')\n"
        "    e.runAndWait(); w._wait_for_espeak(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(texts), str(tmp_path)],
        capture_output=True,
        timeout=60,
        env=espeak.worker_env(),
    )
    assert done.returncode == 0, done.stderr
    return [(tmp_path / f"{i}.wav").read_bytes() for i in range(len(texts))]


def _children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found = []
    for task in tasks:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
            found += [int(p) for p in f.read().split()]
    return found


def _running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie (a dead child nobody has reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@needs_fork_server
def test_fork_server_files_are_byte_identical_to_fresh_processes(tmp_path):
    server = espeak._ForkServer(espeak._server_key())
    try:
        forked = []
        for i, (text, voice_id) in enumerate(SEQUENCE):
            out = tmp_path / f"forked-{i}.wav"
            done = server.run(_request(text, voice_id, out), timeout_s=30)
            assert done.returncode == 0, done.stdout
            forked.append(out.read_bytes())
        # One server made the whole sequence, each clip in its own child.
        assert server.alive() and not _children(server.proc.pid)
    finally:
        server.close()
    fresh = [
        _fresh_worker_wav(t, v, tmp_path / f"fresh-{i}.wav") for i, (t, v) in enumerate(SEQUENCE)
    ]
    for (text, _), a, b in zip(SEQUENCE, forked, fresh, strict=True):
        assert len(a) > 10_000, text  # real speech, not an empty file
        assert a == b, f"{text!r} from a forked child differs from a fresh process"
    assert forked[1] == forked[3] == forked[6]  # "Hold" alone, whatever came before

    # The comparison is sensitive: one engine making the same sequence changes "Hold".
    same_engine = _one_engine_wavs([list(x) for x in SEQUENCE[:4]], tmp_path)
    assert same_engine[0] == fresh[0]
    assert same_engine[1] != fresh[1] or same_engine[3] != fresh[3]


@needs_fork_server
def test_every_forked_clip_gets_its_rate(tmp_path):
    # Regression: pyttsx3's runAndWait calls the driver's stop() right after queueing the rate; when
    # espeak was still busy, that cancelled the rate and 2-3 % of clips came out at 200 wpm.
    reference = _fresh_worker_wav("Rest", "gmw/en", tmp_path / "fresh.wav")

    def many(server_index: int) -> list[bytes]:
        server = espeak._ForkServer(espeak._server_key())
        made = []
        try:
            for n in range(60):
                out = tmp_path / f"{server_index}-{n}.wav"
                assert server.run(_request("Rest", "gmw/en", out), timeout_s=30).returncode == 0
                made.append(out.read_bytes())
        finally:
            server.close()
        return made

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        made = [clip for clips in pool.map(many, range(2)) for clip in clips]
    sizes = sorted({len(clip) for clip in made if clip != reference})
    assert sizes == [], f"{len(made)} clips, wrong sizes {sizes} (reference {len(reference)})"


@needs_fork_server
def test_clips_from_fork_servers_equal_clips_from_fresh_workers(fresh_cache, tmp_path, monkeypatch):
    texts = [
        utt("Breathe in"),
        utt("Hold"),
        utt("Adem rustig in", "nl"),
        utt("Hold", rate_wpm=120),
        utt("Laat je schouders zakken.", "nl"),
        utt("Hold", "nl"),
    ]

    class NoFreshWorker(espeak.Espeak):
        def _run_worker(self, request, running):
            raise AssertionError("a fresh worker process was used")

    with voices.swapped(NoFreshWorker()):
        forked = tts.synthesize_many(texts, jobs=1)

    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "fresh"))
    with voices.swapped(espeak.Espeak(fork_server=False)):
        fresh = tts.synthesize_many(texts, jobs=2)
    for u in texts:
        assert forked[u].size > 0.2 * RATE
        assert forked[u].tobytes() == fresh[u].tobytes(), u.text


@needs_fork_server
def test_hung_child_is_killed_at_the_timeout_and_the_server_kept(fresh_cache, monkeypatch):
    espeak._SERVERS.close()
    monkeypatch.setenv("RELAX_TTS_FAULT", "hang")
    start = time.monotonic()
    with voices.swapped(espeak.Espeak(timeout_s=0.5, max_attempts=2)):
        with pytest.raises(
            TTSError, match=r"'Rest'.*no answer within 0.5 s; no answer within 0.5 s"
        ):
            tts.synthesize(utt("Rest"))
        assert time.monotonic() - start < 5.0
        [server] = espeak._SERVERS._idle
        assert server.alive() and not _children(server.proc.pid)
        monkeypatch.delenv("RELAX_TTS_FAULT")
        assert tts.synthesize(utt("Rest")).size > 0
    assert espeak._SERVERS._idle == [server]  # the same server made it


@needs_fork_server
def test_dead_server_falls_back_to_a_fresh_worker(fresh_cache, tmp_path, monkeypatch):
    u = utt("Let your shoulders drop")
    reference = tts.synthesize(u)
    monkeypatch.setenv("RELAX_CACHE_DIR", str(tmp_path / "again"))
    fresh_runs = []

    class DyingServers(espeak.Espeak):
        def _run_in_server(self, server, request, running):
            server.kill()
            server.proc.wait()
            return super()._run_in_server(server, request, running)

        def _run_worker(self, request, running):
            fresh_runs.append(request["text"])
            return super()._run_worker(request, running)

    with voices.swapped(DyingServers()):
        assert tts.synthesize(u).tobytes() == reference.tobytes()
    assert fresh_runs == [u.text]
    assert all(s.alive() for s in espeak._SERVERS._idle)  # the dead one was not kept


@needs_fork_server
def test_close_stops_the_server_and_its_running_child(fresh_cache, monkeypatch):
    espeak._SERVERS.close()
    monkeypatch.setenv("RELAX_TTS_FAULT", "hang")
    synth = tts.Synthesizer(jobs=1)
    synth.request([utt("Hold")])
    busy = []

    def child_running() -> bool:
        busy[:] = [
            (s.proc.pid, c) for s in list(espeak._SERVERS._all) for c in _children(s.proc.pid)
        ]
        return bool(busy)

    assert _wait_until(child_running, 10.0)
    synth.close()
    [(server_pid, child_pid)] = busy
    assert _wait_until(lambda: not _running(server_pid) and not _running(child_pid), 3.0)


@needs_fork_server
def test_interrupt_leaves_no_process_behind(tmp_path):
    marker = f"relax-test-{os.getpid()}-{time.monotonic_ns()}"
    code = (
        "from audio_engine import model, tts; v = model.Voice(rate_wpm=150, volume=1.0, engine='espeak');"
        "tts.synthesize_many([model.Utterance(t, 'en', v) for t in ('Hold', 'Rest', 'In')], jobs=2)"
    )
    env = {
        **os.environ,
        "RELAX_CACHE_DIR": str(tmp_path / "cache"),
        "RELAX_TTS_FAULT": "hang",
        "RELAX_TEST_MARKER": marker,
    }
    parent = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)

    def marked() -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != parent.pid:
                with contextlib.suppress(OSError), open(f"/proc/{entry}/environ", "rb") as f:
                    if marker.encode() in f.read() and _running(int(entry)):
                        found.append(int(entry))
        return found

    try:
        # two servers, each with a hanging child
        assert _wait_until(lambda: len(marked()) >= 4, 15.0), marked()
        parent.send_signal(signal.SIGINT)
        _, err = parent.communicate(timeout=15)
    finally:
        parent.kill()
    assert b"KeyboardInterrupt" in err
    assert _wait_until(lambda: not marked(), 5.0), marked()


@pytest.mark.skipif(
    not espeak.Espeak().fork_server or ctypes.util.find_library("espeak-ng") is not None,
    reason="needs Linux without a system espeak-ng",
)
def test_system_espeak_missing_is_a_clear_error(fresh_cache, monkeypatch):
    monkeypatch.setenv("RELAX_ESPEAK", "system")
    fresh = espeak.Espeak()  # one that has not asked the engine what it is yet
    with voices.swapped(fresh), pytest.raises(TTSError, match="install espeak-ng"):
        tts.synthesize(utt("Hold"))
    monkeypatch.delenv("RELAX_ESPEAK")
    assert tts.synthesize(utt("Hold")).size > 0  # servers for the wheel's library still work


@pytest.mark.skipif(not hasattr(signal, "alarm"), reason="POSIX only")
def test_a_worker_nobody_waits_for_ends_itself(tmp_path):
    # The backstop for a worker whose parent is gone: a hanging synthesis ends at its deadline.
    request = {**_request("Hold", "gmw/en", tmp_path / "x.wav"), "fault": "hang"}
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "audio_engine.speech._espeak_worker"],
        input=json.dumps({**request, "timeout_s": 0.5, "grace_s": 0.2}).encode(),
        capture_output=True,
        timeout=30,
        env=espeak.worker_env(),
    )
    assert done.returncode == -signal.SIGALRM
    assert 0.6 < time.monotonic() - start < 5.0


def test_clip_lengths_match_the_clips_and_read_headers_when_cached():
    texts = [
        utt(f"Length check number {word}.") for word in ("one", "two", "three", "four", "five")
    ]
    calls = []
    lengths = tts.clip_lengths(texts, progress=lambda d, t: calls.append((d, t)))
    clips = tts.synthesize_many(texts)
    assert lengths == {u: len(c) for u, c in clips.items()}
    assert calls[-1] == (5, 5)
    assert [tts.cached_length(u) for u in texts] == [len(clips[u]) for u in texts]
    assert tts.cached_length(utt("never synthesized here")) is None
