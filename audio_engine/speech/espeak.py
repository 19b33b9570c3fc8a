"""espeak-ng through pyttsx3: every language, a clip per fresh process.

Why a fresh process per clip: espeak-ng's output for a text depends on what the same process
synthesized before it, so every clip is made in a process that has never synthesized anything. On
Linux that is a child forked from a fork server (`python -m audio_engine.speech._espeak_worker
--serve`) that has imported pyttsx3 and loaded the espeak-ng library but never initialized espeak:
the child initializes it, makes one clip and exits (about 0.02 s instead of about 0.1 s for a fresh
interpreter). Its file is byte-identical to a fresh worker's (tested). Idle servers are kept for
the next clips (one per CPU, at least two) and stopped at exit. Elsewhere (Windows, macOS), or when
a server will not start or dies, each clip is made by a fresh, spawned worker. Either way a clip
depends only on its cache key. relax's own process never loads the engine, so it can fork freely.

Every file the driver writes is checked (header parses, frames > 0, sound after trimming, length
plausible for the word count and rate: `engine.checked`) and re-made in a fresh child or worker up
to `max_attempts` times; every one runs under a `timeout_s` timeout. Failures raise
`errors.TTSError` naming the text.

Engine: on Linux the espeak-ng library and data of the `espeakng-loader` wheel are used (no system
package needed); `RELAX_ESPEAK=system` uses the system's `libespeak-ng.so.1` instead. On Windows and
macOS pyttsx3's own driver (SAPI5, NSSpeechSynthesizer) is used and whatever file format it writes
is read from the file's header. What the engine is (its versions and voices) is asked of a worker
once and kept in the cache folder under a fingerprint of the installed packages.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from audio_engine import model
from audio_engine.errors import TTSError
from audio_engine.speech import cache
from audio_engine.speech.engine import (
    ClipRejected,
    Running,
    VoiceInfo,
    checked,
    name_matches,
    norm_tag,
    package_stamp,
    quoted,
    scaled,
)

if TYPE_CHECKING:  # numpy where a clip is made: choosing a voice needs none
    import numpy as np

NAME = "espeak"
SERVER_START_TIMEOUT_S = 30.0
SERVER_GRACE_S = 10.0  # beyond a request's own timeout, before the server itself counts as hung
_INFO_PREFIX = "RELAX-TTS-INFO: "
_WORKER_MODULE = "audio_engine.speech._espeak_worker"

# A language tag as a voice name: a language, optionally a script and a region (`nl-be`).
_TAG = re.compile(r"[a-z]{2,3}(-[a-z]{4})?(-([a-z]{2}|\d{3}))?")


def _worker_command() -> list[str]:
    return [sys.executable, "-m", _WORKER_MODULE]


def worker_env() -> dict[str, str]:
    """The environment of a worker: this package importable even from a checkout on sys.path."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


class Espeak:
    """espeak-ng as a speech engine (`engine.Engine`).

    Parameters
    ----------
    fork_server : bool
        Make clips in children of fork servers (Linux); False: a fresh worker process per clip.
    timeout_s : float
        How long one attempt may take.
    max_attempts : int
        The first try and the retries, each in a fresh process.
    """

    name = NAME
    in_process = False
    pauses_in_lines = False
    synthetic = True

    def __init__(
        self,
        *,
        fork_server: bool = sys.platform.startswith("linux"),
        timeout_s: float = 30.0,
        max_attempts: int = 4,
    ):
        self.fork_server = fork_server
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self._info_lock = threading.Lock()  # one info worker per process, even when asked at once
        self._info: tuple | None = None
        self._choices: dict[tuple, tuple] = {}

    # ---- what it is ----

    def available(self) -> bool:
        return True

    def _engine_info(self) -> tuple[str, tuple[VoiceInfo, ...], dict[tuple[str, str], int]]:
        """Engine version, voices, and the driver's priority per (voice id, language tag)."""
        with self._info_lock:
            if self._info is None:
                self._info = self._remembered_info()
            return self._info

    def forget(self) -> None:
        """Ask the engine again what it is (after `RELAX_ESPEAK` changed)."""
        with self._info_lock:
            self._info = None
            self._choices.clear()

    @staticmethod
    def _fingerprint() -> str:
        """What decides the engine's answers, cheap to compute: where its packages are and when
        they were installed (an upgrade rewrites their files)."""
        parts = [sys.executable, os.environ.get("RELAX_ESPEAK", ""), str(cache.PROCESSING_VERSION)]
        parts += [package_stamp(package) for package in ("pyttsx3", "espeakng_loader")]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]

    def _remembered_info(self):
        # Asking a worker costs most of a second (a process that loads espeak-ng), so the answer
        # is kept on disk under the fingerprint and asked again only when the engine changes.
        name = f"engine-{self._fingerprint()}.json"
        info = cache.recall(name)
        if info is not None:
            try:
                return _parse_info(info)
            except (ValueError, KeyError, TypeError):
                pass
        info = self._ask_info()
        result = _parse_info(info)  # parse before storing: never remember a malformed answer
        cache.remember(name, info)
        return result

    def _ask_info(self) -> dict:
        # Through a fork server where possible: the server is then ready for the first clip.
        done = None
        server = _SERVERS.acquire() if self.fork_server else None
        if server is not None:
            try:
                done = server.run({"op": "info"}, self.timeout_s)
            except (_ServerBroken, ClipRejected):
                done = None
            finally:
                _SERVERS.release(server)
        if done is None or done.returncode != 0:
            try:
                done = subprocess.run(
                    _worker_command(),
                    input=json.dumps({"op": "info"}),
                    capture_output=True,
                    text=True,
                    timeout=self.timeout_s,
                    env=worker_env(),
                )
            except subprocess.TimeoutExpired as exc:
                raise TTSError(
                    f"the speech engine did not answer within {self.timeout_s:g} s"
                ) from exc
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith(_INFO_PREFIX)]
        if done.returncode != 0 or not lines:
            detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            hint = (
                "install espeak-ng (e.g. `apt install espeak-ng`) or unset RELAX_ESPEAK"
                if os.environ.get("RELAX_ESPEAK", "").lower() == "system"
                else "reinstall relax's dependencies (pyttsx3, espeakng-loader)"
            )
            raise TTSError(f"the speech engine could not start ({detail}); {hint}")
        return json.loads(lines[-1][len(_INFO_PREFIX) :])

    def version(self) -> str:
        """e.g. ``"pyttsx3 2.99; driver espeak; espeak-ng 1.52.0; espeakng-loader 0.2.4"``."""
        return self._engine_info()[0]

    def voices(self) -> list[VoiceInfo]:
        return list(self._engine_info()[1])

    def load(self, voice: VoiceInfo) -> None:
        """Nothing to load: a worker per clip."""

    def loaded(self) -> bool:
        return True

    # ---- which voice ----

    def _language_rank(self, voice: VoiceInfo, language: str, info=None) -> tuple[int, int] | None:
        """How well `voice` fits `language`: (level, driver priority), lower is better; None: not.

        Level 0: the exact tag; 1: the primary subtag (`en` for `en-AU`); 2: any tag with that
        primary subtag (`en-gb` for `en`). The driver's priority breaks ties (espeak: `gmw/en`
        before `gmw/en-us` for `en`).
        """
        tag = norm_tag(language)
        primary = model.primary_language(tag)
        priorities = (info or self._engine_info())[2]
        tags = [norm_tag(t) for t in voice.languages]
        for level, test in (
            (0, lambda t: t == tag),
            (1, lambda t: t == primary),
            (2, lambda t: model.primary_language(t) == primary),
        ):
            fits = [priorities.get((voice.id, t), 99) for t in tags if test(t)]
            if fits:
                return level, min(fits)
        return None

    def voice_for(self, language: str, name: str | None, *, explicit: bool = False) -> VoiceInfo:
        """See `voices.voice_for`: the voice that fits best, by name and then by language."""
        # Asked once per utterance: remembered per engine answer (a new answer, a new choice).
        info = self._engine_info()
        key = (language, name)
        hit = self._choices.get(key)
        if hit is not None and hit[0] is info:
            return hit[1]
        voice = self._choose_voice(language, name, info)
        self._choices[key] = (info, voice)
        return voice

    def _choose_voice(self, language: str, name: str | None, info) -> VoiceInfo:
        voices = list(info[1])
        if name is not None:
            needle = name.strip().lower()
            matches = name_matches(voices, name)
            as_language = norm_tag(needle)
            if not matches and _TAG.fullmatch(as_language):  # `nl-be`: a voice for Dutch
                matches = [v for v in voices if self._language_rank(v, as_language, info)]
            if not matches:
                raise TTSError(
                    f"no installed voice matches {name!r}; "
                    f"`relax voices --language {language}` lists the voices for {language!r}"
                )

            def by_fit(v: VoiceInfo) -> tuple:
                # The closest kind of match wins: the whole id or name; a voice for the language
                # the name spells (`en`, `nl-be`: best fit for that language first); a word of
                # the id or name that starts with it; anywhere inside. Then the session's
                # language decides.
                words = re.split(r"[^a-z0-9]+", f"{v.id} {v.name}".lower())
                spoken = (
                    self._language_rank(v, as_language, info)
                    if _TAG.fullmatch(as_language)
                    else None
                )
                if needle in (v.id.lower(), v.name.lower()):
                    tier, fit = 0, (0, 0)
                elif spoken is not None:
                    tier, fit = 1, spoken
                elif any(w.startswith(needle) for w in words):
                    tier, fit = 2, (0, 0)
                else:
                    tier, fit = 3, (0, 0)
                return (tier, fit, self._language_rank(v, language, info) or (9, 0), v.id)

            return min(matches, key=by_fit)
        ranked = [
            (rank, v.id, v) for v in voices if (rank := self._language_rank(v, language, info))
        ]
        if not ranked:
            raise TTSError(
                f"no installed voice speaks language {language!r}; "
                f"`relax voices --language {language}` lists voices for a language, "
                "`relax voices` lists them all"
            )
        return min(ranked, key=lambda r: (r[0], r[1]))[2]

    # ---- one clip ----

    def release(self) -> bool:
        """Stop the idle fork servers once a session's speech is all made (`voices.release`):
        the gain measure and the render need none, and each takes about 20 MiB beside them.
        The next clip starts one again."""
        _SERVERS.close_idle()
        return True

    def make_clip(
        self, utterance: model.Utterance, voice: VoiceInfo, running: Running | None = None
    ) -> np.ndarray:
        """Synthesize one clip in fresh processes, verifying and retrying; scaled by the volume.

        Each attempt runs in a child of a fork server, or, where there is none (Windows, macOS,
        a server that would not start or died), in a fresh worker process.
        """
        problems: list[str] = []
        server = _SERVERS.acquire() if self.fork_server else None
        try:
            for attempt in range(self.max_attempts):
                if running is not None and running.closed:
                    raise TTSError(f"synthesis of {utterance.text!r} was cancelled")
                with tempfile.TemporaryDirectory(prefix="relax-tts-") as tmp:
                    out = Path(tmp) / "clip.wav"
                    request = {
                        "op": "synth",
                        "text": utterance.text,
                        "voice_id": voice.id,
                        "rate_wpm": int(utterance.voice.rate_wpm),
                        "out": str(out),
                        "attempt": attempt,
                        "fault": os.environ.get("RELAX_TTS_FAULT", ""),
                        "timeout_s": self.timeout_s,
                    }
                    try:
                        done = None
                        if server is not None:
                            try:
                                done = self._run_in_server(server, request, running)
                            except _ServerBroken:
                                server.close()
                                server = None
                                if running is not None and running.closed:
                                    raise TTSError(
                                        f"synthesis of {utterance.text!r} was cancelled"
                                    ) from None
                        if done is None:
                            done = self._run_worker(request, running)
                        if done.returncode != 0:
                            detail = (done.stderr.strip().splitlines() or ["no message"])[-1]
                            raise ClipRejected(f"worker exit code {done.returncode}: {detail}")
                        if not out.exists():
                            raise ClipRejected("no audio file written")
                        clip = _decode(out, utterance)
                    except ClipRejected as exc:
                        problems.append(str(exc))
                        continue
                return scaled(clip, utterance)
        finally:
            if server is not None:
                _SERVERS.release(server)
        raise TTSError(
            f"could not synthesize {quoted(utterance.text)} with voice {voice.id} "
            f"after {self.max_attempts} attempts: {'; '.join(problems)}"
        )

    # ---- one attempt ----

    def _run_in_server(
        self, server: _ForkServer, request: dict, running: Running | None
    ) -> subprocess.CompletedProcess:
        """One attempt in a child of `server` (`_ServerBroken` when the server fails)."""
        if running is not None:
            running.add(server)
        try:
            return server.run(request, self.timeout_s)
        finally:
            if running is not None:
                running.discard(server)

    def _run_worker(self, request: dict, running: Running | None) -> subprocess.CompletedProcess:
        """One attempt in a fresh worker process."""
        proc = subprocess.Popen(
            _worker_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,  # the driver prints "Audio saved to ..." there
            stderr=subprocess.PIPE,
            text=True,
            env=worker_env(),
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),  # no console flash on Windows
        )
        if running is not None:
            running.add(proc)
        try:
            out, err = proc.communicate(json.dumps(request), timeout=self.timeout_s)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.communicate()
            raise ClipRejected(f"no answer within {self.timeout_s:g} s") from exc
        finally:
            if running is not None:
                running.discard(proc)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _parse_info(info: dict) -> tuple[str, tuple[VoiceInfo, ...], dict[tuple[str, str], int]]:
    voices = tuple(
        VoiceInfo(id=v["id"], name=v["name"], languages=tuple(v["languages"]))
        for v in info["voices"]
    )
    priorities = {
        (v["id"], norm_tag(tag)): priority
        for v in info["voices"]
        for tag, priority in zip(v["languages"], v["priorities"], strict=True)
    }
    return info["engine"], voices, priorities


def _decode(path: Path, utterance: model.Utterance) -> np.ndarray:
    """Read, verify and process the driver's file into an unscaled clip at SAMPLE_RATE."""
    import numpy as np
    import soundfile  # only when a clip is made: keeps start-up from a warm cache short
    import soxr

    try:
        data, rate_hz = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
        raise ClipRejected(f"unreadable audio file ({exc})") from exc
    if data.shape[0] == 0:
        raise ClipRejected("the engine wrote an empty audio file")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if rate_hz != model.SAMPLE_RATE:
        mono = soxr.resample(mono, rate_hz, model.SAMPLE_RATE, quality="HQ")
    return checked(np.asarray(mono, dtype=np.float32), utterance)


# ---- the fork servers --------------------------------------------------------------------------


class _ServerBroken(Exception):
    """A fork server would not start, died or broke the protocol (internal: use a fresh worker)."""


class _ForkServer:
    """One `python -m audio_engine.speech._espeak_worker --serve`; each request runs in a child forked from it.

    The server has imported pyttsx3 and loaded espeak-ng without initializing it, so a child
    starts in the state of a fresh worker process for a fraction of the cost. Not thread-safe: one
    thread uses a server at a time (the pool hands it out); `kill` may come from any thread.
    """

    def __init__(self, key: tuple):
        self.key = key
        self._buffer = b""
        self.in_flight = False  # a request was sent and its reply not read: unusable afterwards
        self.proc = subprocess.Popen(
            [*_worker_command(), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # a child's messages come back in its reply
            env=worker_env(),
        )
        try:
            hello = self._read_reply(SERVER_START_TIMEOUT_S)
        except _ServerBroken:
            self.kill()
            raise
        if hello.get("ready") is not True:
            self.kill()
            raise _ServerBroken(f"the fork server did not start: {hello.get('error')}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, request: dict, timeout_s: float) -> subprocess.CompletedProcess:
        """Run `request` in a fresh child; its stdout and stderr come back merged.

        Raises `ClipRejected` when the child ran out of time (the server killed it and stays
        usable) and `_ServerBroken` when the server itself failed.
        """
        line = json.dumps({**request, "timeout_s": timeout_s}) + "\n"
        self.in_flight = True
        try:
            self.proc.stdin.write(line.encode("utf-8"))
            self.proc.stdin.flush()
        except (OSError, ValueError) as exc:  # a dead server: broken pipe or closed file
            raise _ServerBroken(f"the fork server is gone ({exc})") from exc
        # The server enforces the child's timeout; this one only guards against the server.
        reply = self._read_reply(timeout_s + SERVER_GRACE_S)
        try:
            returncode, output = int(reply["rc"]), str(reply["output"])
            timed_out = bool(reply["timed_out"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _ServerBroken(f"malformed reply from the fork server: {reply!r}") from exc
        self.in_flight = False
        if timed_out:
            raise ClipRejected(f"no answer within {timeout_s:g} s")
        return subprocess.CompletedProcess(self.proc.args, returncode, output, output)

    def _read_reply(self, timeout_s: float) -> dict:
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _ServerBroken(f"no reply from the fork server within {timeout_s:g} s")
            if not select.select([fd], [], [], remaining)[0]:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError as exc:
                raise _ServerBroken(f"the fork server is gone ({exc})") from exc
            if not chunk:
                raise _ServerBroken("the fork server exited")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            reply = json.loads(line)
        except ValueError as exc:
            raise _ServerBroken(f"malformed reply from the fork server: {line[:200]!r}") from exc
        if not isinstance(reply, dict):
            raise _ServerBroken(f"malformed reply from the fork server: {line[:200]!r}")
        return reply

    def kill(self) -> None:
        """Stop the server now; its running child dies with it (parent-death signal)."""
        with contextlib.suppress(OSError):
            self.proc.kill()

    def close(self) -> None:
        self.kill()
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self.proc.wait(5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()


def _server_key() -> tuple:
    """What a server's preloading depends on: a change means servers must be started anew."""
    return (
        sys.executable,
        *(os.environ.get(name, "") for name in ("RELAX_ESPEAK", "ESPEAK_DATA_PATH", "PYTHONPATH")),
    )


class _ServerPool:
    """Idle fork servers of this process, shared by every synthesis; all stopped at exit."""

    def __init__(self):
        self._lock = threading.Lock()
        self._idle: list[_ForkServer] = []
        self._all: weakref.WeakSet[_ForkServer] = weakref.WeakSet()
        self._failed: set[tuple] = set()  # keys whose server would not start: fresh workers
        self._closed = False
        atexit.register(self.close, final=True)

    def acquire(self) -> _ForkServer | None:
        """An idle server or a new one; None where fork servers are off or will not start."""
        key = _server_key()
        with self._lock:
            if self._closed or key in self._failed:
                return None
            stale = [s for s in self._idle if s.key != key or not s.alive()]
            self._idle = [s for s in self._idle if s not in stale]
            server = self._idle.pop() if self._idle else None
        for old in stale:
            old.close()
        if server is not None:
            return server
        try:
            server = _ForkServer(key)
        except (_ServerBroken, OSError):
            with self._lock:
                self._failed.add(key)
            return None
        with self._lock:
            self._all.add(server)
        return server

    def release(self, server: _ForkServer) -> None:
        """Give `server` back for reuse, or stop it when it is broken, busy or surplus."""
        with self._lock:
            if (
                not self._closed
                and not server.in_flight
                and server.alive()
                and len(self._idle) < max(2, os.cpu_count() or 1)
            ):
                self._idle.append(server)
                return
        server.close()

    def close_idle(self) -> None:
        """Stop the idle servers (new ones start when speech is asked for again)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for server in idle:
            server.close()

    def close(self, *, final: bool = False) -> None:
        """Stop every server, idle or busy; with `final` (at exit), start no new ones."""
        with self._lock:
            servers = list(self._all)
            self._idle = []
            self._closed = final
        for server in servers:
            server.close()


_SERVERS = _ServerPool()
