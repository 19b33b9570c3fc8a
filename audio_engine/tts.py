"""Speech clips from pyttsx3 (espeak-ng on Linux), verified, trimmed and cached on disk.

Entry points:

- `synthesize_many(utterances, jobs=None, progress=None)` -> `{Utterance: clip}`, a whole session.
- `Synthesizer(jobs=None)`: `.request(utterances)` starts synthesis in the background, in order;
  `.clip(utterance, timeout=None)` blocks until that clip is ready (the player's cold start).
- `synthesize(utterance)` -> one clip.
- `list_voices()`, `voice_for(language, name=None)`, `speaks(voice, language)`, `engine_version()`,
  `cache_dir()`. `ClipNotReady` (a `TTSError` and a `TimeoutError`) when `.clip()` times out.

A clip is a float32 mono numpy array at `model.SAMPLE_RATE` (44100 Hz) whose first and last samples
are sound (silence trimmed at -50 dBFS with a 3 ms margin, 4 ms raised-cosine ramps at both ends),
scaled by the voice's volume.

Why a fresh process per clip: espeak-ng's output for a text depends on what the same process
synthesized before it, so every clip is made in a process that has never synthesized anything. On
Linux that is a child forked from a fork server (`python -m audio_engine._tts_worker --serve`)
that has imported pyttsx3 and loaded the espeak-ng library but never initialized espeak: the child
initializes it, makes one clip and exits (about 0.02 s instead of about 0.1 s for a fresh
interpreter). Its file is byte-identical to a fresh worker's (tested). Idle servers are kept for
the next clips (one per CPU, at least two) and stopped at exit. Elsewhere (Windows, macOS), or when a server
will not start or dies, each clip is made by a fresh, spawned `python -m audio_engine._tts_worker`.
Either way a clip depends only on its cache key: text, chosen voice id, rate, volume, engine version
and `PROCESSING_VERSION`. The parent never loads the engine itself, so it can fork freely.

Every file the driver writes is checked (header parses, frames > 0, sound after trimming, length
plausible for the word count and rate) and re-made in a fresh child or worker up to `MAX_ATTEMPTS`
times; every one runs under a `SYNTH_TIMEOUT_S` timeout. Failures raise `errors.TTSError` naming
the text.

Cache: folder `$RELAX_CACHE_DIR`, else `platformdirs.user_cache_dir("relax")/speech`. Files are
written to a temporary name and renamed; each carries its length and a SHA-256 of its samples, and a
corrupt or truncated file is silently synthesized again.

Engine: on Linux the espeak-ng library and data of the `espeakng-loader` wheel are used (no system
package needed); `RELAX_ESPEAK=system` uses the system's `libespeak-ng.so.1` instead. On Windows and
macOS pyttsx3's own driver (SAPI5, NSSpeechSynthesizer) is used and whatever file format it writes
is read from the file's header.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import json
import os
import re
import select
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio_engine import model, neural
from audio_engine.errors import TTSError

PROCESSING_VERSION = 2  # bump when anything changes what a clip sounds like (2: no lost rate)
SYNTH_TIMEOUT_S = 30.0
# Fork servers (see `_tts_worker`) where the driver is espeak-ng: Linux. Elsewhere, and whenever a
# server fails, each clip gets a fresh worker process. Tests and the benchmark switch this off.
FORK_SERVER = sys.platform.startswith("linux")
SERVER_START_TIMEOUT_S = 30.0
SERVER_GRACE_S = 10.0  # beyond a request's own timeout, before the server itself counts as hung
MAX_ATTEMPTS = 4  # the first try and up to three retries, each in a fresh worker
TRIM_THRESHOLD_DBFS = -50.0
TRIM_MARGIN_S = 0.003
RAMP_S = 0.004

_INFO_PREFIX = "RELAX-TTS-INFO: "
_CACHE_MAGIC = b"RELAXSP1"
_CACHE_HEADER = struct.Struct("<8sQ32s")  # magic, sample count, sha256 of the samples


class ClipNotReady(TTSError, TimeoutError):
    """`Synthesizer.clip` timed out before the clip was ready."""


ENGINES = model.ENGINES  # "neural" (hibari-tts, `neural.py`) and "espeak" (pyttsx3, here)


@dataclass(frozen=True)
class VoiceInfo:
    """An installed voice: `id` as its engine knows it, a display `name`, `languages` best first,
    and the `engine` that speaks it (``"espeak"`` or ``"neural"``)."""

    id: str
    name: str
    languages: tuple[str, ...]
    engine: str = "espeak"


# ---- engine information ------------------------------------------------------------------------


def _worker_command() -> list[str]:
    return [sys.executable, "-m", "audio_engine._tts_worker"]


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    # The worker must import this package even when it is not installed (a checkout on sys.path).
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


_info_lock = threading.Lock()


def _engine_info() -> tuple[str, tuple[VoiceInfo, ...], dict[tuple[str, str], int]]:
    """Engine version, voices, and the driver's priority per (voice id, language tag)."""
    with _info_lock:  # one info worker per process, even when threads ask at once
        return _engine_info_cached()


def _engine_fingerprint() -> str:
    """What decides the engine's answers, cheap to compute: where the engine's packages are and
    when they were installed (an upgrade rewrites their files).

    Asking a worker costs most of a second (a process that loads espeak-ng), so the answer is kept
    on disk under this fingerprint and asked again only when the engine changes. Not
    importlib.metadata: it costs ~50 ms of every start.
    """
    parts = [sys.executable, os.environ.get("RELAX_ESPEAK", ""), str(PROCESSING_VERSION)]
    parts += [neural.package_stamp(package) for package in ("pyttsx3", "espeakng_loader")]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]


@functools.cache
def _engine_info_cached() -> tuple[str, tuple[VoiceInfo, ...], dict[tuple[str, str], int]]:
    remembered = cache_dir() / f"engine-{_engine_fingerprint()}.json"
    try:
        info = json.loads(remembered.read_text(encoding="utf-8"))
        return _parse_info(info)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    info = _ask_engine_info()
    result = _parse_info(info)  # parse before storing: never remember a malformed answer
    with contextlib.suppress(OSError):
        remembered.parent.mkdir(parents=True, exist_ok=True)
        tmp = remembered.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(info), encoding="utf-8")
        os.replace(tmp, remembered)
    return result


def _ask_engine_info() -> dict:
    # Through a fork server where possible: the server is then ready for the first clip.
    done = None
    server = _SERVERS.acquire()
    if server is not None:
        try:
            done = server.run({"op": "info"}, SYNTH_TIMEOUT_S)
        except (_ServerBroken, _AttemptFailed):
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
                timeout=SYNTH_TIMEOUT_S,
                env=_worker_env(),
            )
        except subprocess.TimeoutExpired as exc:
            raise TTSError(
                f"the speech engine did not answer within {SYNTH_TIMEOUT_S:g} s"
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


def _parse_info(info: dict) -> tuple[str, tuple[VoiceInfo, ...], dict[tuple[str, str], int]]:
    voices = tuple(
        VoiceInfo(id=v["id"], name=v["name"], languages=tuple(v["languages"]))
        for v in info["voices"]
    )
    priorities = {
        (v["id"], _norm_tag(tag)): priority
        for v in info["voices"]
        for tag, priority in zip(v["languages"], v["priorities"], strict=True)
    }
    return info["engine"], voices, priorities


def engine_version() -> str:
    """The speech engine's versions (pyttsx3, driver, espeak-ng), part of every cache key.

    Returns
    -------
    str
        e.g. ``"pyttsx3 2.99; driver espeak; espeak-ng 1.52.0; espeakng-loader 0.2.4"``.
    """
    return _engine_info()[0]


def list_voices(engine: str | None = None) -> list[VoiceInfo]:
    """Every installed voice: the neural voices (where hibari-tts is installed), then espeak-ng's
    in the driver's order; only one engine's with `engine`.

    Raises
    ------
    errors.TTSError
        The speech engine could not start.
    """
    voices = []
    if engine in (None, "neural"):
        voices += _neural_voices()
    if engine in (None, "espeak"):
        voices += list(_engine_info()[1])
    return voices


def _neural_voices() -> list[VoiceInfo]:
    if not neural.available():
        return []
    return [VoiceInfo(v.id, v.name, v.languages, engine="neural") for v in neural.VOICES]


def default_engine(language: str) -> str:
    """The engine a line in `language` speaks with when the script names none: the neural voice
    for English where it is installed, espeak-ng for everything else."""
    return "neural" if neural.speaks(language) and neural.available() else "espeak"


def version_of(voice: VoiceInfo) -> str:
    """The versions of the engine that speaks `voice` (part of its clips' cache keys)."""
    return neural.version(cache_dir()) if voice.engine == "neural" else engine_version()


def engine_versions(utterances: Iterable[model.Utterance]) -> tuple[str, ...]:
    """The versions of every engine these utterances are spoken by (sorted, each once)."""
    engines = {_check_utterance(u).engine for u in utterances}
    found = set()
    if "neural" in engines:
        found.add(neural.version(cache_dir()))
    if "espeak" in engines:
        found.add(engine_version())
    return tuple(sorted(found))


def warm(language: str, voice: model.Voice | None = None) -> None:
    """Ask the engine a session in `language` with `voice` speaks with what it is, ahead of time
    (espeak-ng: a worker process, whose answer is then kept; neural: package metadata)."""
    voice = voice or model.Voice()
    version_of(voice_for(language, voice.name, voice.engine))


def preload(language: str, voice: model.Voice | None = None) -> None:
    """Begin loading the engine a session in `language` with `voice` speaks with, in the
    background, where that takes long (the neural voice's model and pronunciation tables: about
    half a second); the first clip then waits for it. Nothing for espeak-ng (a worker per clip)."""
    voice = voice or model.Voice()
    with contextlib.suppress(TTSError):  # the voice's own error comes from the synthesis
        chosen = voice_for(language, voice.name, voice.engine)
        if chosen.engine == "neural":
            neural.start_loading(chosen.id, cache_dir())


def engine_loaded(engine: str) -> bool:
    """Whether `engine` makes its next clip without loading first (espeak-ng always does)."""
    return engine != "neural" or neural.loaded()


def _norm_tag(tag: str) -> str:
    return tag.strip().replace("_", "-").lower()


def speaks(voice: VoiceInfo, language: str) -> bool:
    """Whether `voice` speaks `language`, compared by primary subtag (`en-GB` ~ `en`)."""
    primary = model.primary_language(language)
    return any(model.primary_language(_norm_tag(t)) == primary for t in voice.languages)


# A language tag as a voice name: a language, optionally a script and a region (`nl-be`).
_TAG = re.compile(r"[a-z]{2,3}(-[a-z]{4})?(-([a-z]{2}|\d{3}))?")


def _language_rank(voice: VoiceInfo, language: str) -> tuple[int, int] | None:
    """How well `voice` fits `language`: (level, driver priority), lower is better; None: not.

    Level 0: the exact tag; 1: the primary subtag (`en` for `en-AU`); 2: any tag with that primary
    subtag (`en-gb` for `en`). The driver's priority breaks ties (espeak: `gmw/en` before
    `gmw/en-us` for `en`).
    """
    tag = _norm_tag(language)
    primary = model.primary_language(tag)
    priorities = _engine_info()[2]
    tags = [_norm_tag(t) for t in voice.languages]
    for level, test in (
        (0, lambda t: t == tag),
        (1, lambda t: t == primary),
        (2, lambda t: model.primary_language(t) == primary),
    ):
        fits = [priorities.get((voice.id, t), 99) for t in tags if test(t)]
        if fits:
            return level, min(fits)
    return None


def voice_for(language: str, name: str | None = None, engine: str | None = None) -> VoiceInfo:
    """The installed voice a session in `language` speaks with.

    Parameters
    ----------
    language : str
        BCP 47 tag of the session (`nl`, `en-US`).
    engine : str, optional
        ``"neural"`` or ``"espeak"``. Without it, `default_engine(language)`; a `name` that no
        voice of that engine matches is then looked for among espeak-ng's voices (so naming an
        espeak-ng voice picks espeak-ng in English too).
    name : str, optional
        A case-insensitive substring of the voice's id, name or one of its languages. Among
        the voices it matches, the closest match wins: the whole id or name; then a voice for
        the language it spells (`en` -> `gmw/en`, not "Vietnamese (Central)"; `nl-BE` -> `gmw/nl`
        even where no voice has that exact tag); then a word that starts with it; then any
        match; ties go to the voice that fits the session's language. Without a name, the voice
        whose language matches best: the exact tag, then the primary subtag (`nl` -> `gmw/nl`,
        `en` -> `gmw/en`, `en-US` -> `gmw/en-us`).

    Raises
    ------
    errors.TTSError
        No installed voice matches; the message names the language and how to list voices.

    Examples
    --------
    >>> voice_for("nl").id
    'gmw/nl'
    >>> voice_for("en").id  # with hibari-tts installed
    'hibari/heart'
    """
    if engine is not None and engine not in ENGINES:
        raise TTSError(f"unknown speech engine {engine!r} (engines: {', '.join(ENGINES)})")
    chosen = engine or default_engine(language)
    if chosen == "neural":
        found = _neural_voice(language, name, explicit=engine == "neural")
        if found is not None:
            return found
    # Asked once per utterance: remembered per engine answer (a new answer, a new choice).
    info = _engine_info()
    key = (language, name, id(info))
    hit = _voice_choices.get(key)
    if hit is not None and hit[0] is info:
        return hit[1]
    voice = _choose_voice(language, name, info)
    _voice_choices[key] = (info, voice)
    return voice


def _neural_voice(language: str, name: str | None, *, explicit: bool) -> VoiceInfo | None:
    """The neural voice for `language` and `name`; None (only when not `explicit`): none matches
    `name`, look among espeak-ng's."""
    if not neural.available():
        raise TTSError(
            "the neural voice is not installed (hibari-tts with onnxruntime); reinstall relax's "
            "dependencies (the launchers do), or use `engine: espeak` / `--engine espeak`"
        )
    if not neural.speaks(language):
        raise TTSError(
            f"the neural voice speaks only English, not {language!r}; "
            "use `engine: espeak` (or leave `engine` out: espeak-ng speaks every other language)"
        )
    voices = _neural_voices()
    if name is None:
        return voices[0]
    needle = name.strip().lower()
    matches = [
        v
        for v in voices
        if needle in v.id.lower()
        or needle in v.name.lower()
        or any(needle in t.lower() for t in v.languages)
    ]
    if matches:
        return matches[0]
    if explicit:
        raise TTSError(
            f"no neural voice matches {name!r}; `relax voices --language {language}` lists them"
        )
    return None


_voice_choices: dict[tuple, tuple] = {}


def _choose_voice(language: str, name: str | None, info) -> VoiceInfo:
    voices = list(info[1])
    if name is not None:
        needle = name.strip().lower()
        matches = [
            v
            for v in voices
            if needle in v.id.lower()
            or needle in v.name.lower()
            or any(needle in t.lower() for t in v.languages)
        ]
        as_language = _norm_tag(needle)
        if not matches and _TAG.fullmatch(as_language):  # `nl-be`: a voice for Dutch
            matches = [v for v in voices if _language_rank(v, as_language)]
        if not matches:
            raise TTSError(
                f"no installed voice matches {name!r}; "
                f"`relax voices --language {language}` lists the voices for {language!r}"
            )

        def by_fit(v: VoiceInfo) -> tuple:
            # The closest kind of match wins: the whole id or name; a voice for the language the
            # name spells (`en`, `nl-be`: best fit for that language first); a word of the id or
            # name that starts with it; anywhere inside. Then the session's language decides.
            words = re.split(r"[^a-z0-9]+", f"{v.id} {v.name}".lower())
            spoken = _language_rank(v, as_language) if _TAG.fullmatch(as_language) else None
            if needle in (v.id.lower(), v.name.lower()):
                tier, fit = 0, (0, 0)
            elif spoken is not None:
                tier, fit = 1, spoken
            elif any(w.startswith(needle) for w in words):
                tier, fit = 2, (0, 0)
            else:
                tier, fit = 3, (0, 0)
            return (tier, fit, _language_rank(v, language) or (9, 0), v.id)

        return min(matches, key=by_fit)
    ranked = [(rank, v.id, v) for v in voices if (rank := _language_rank(v, language))]
    if not ranked:
        raise TTSError(
            f"no installed voice speaks language {language!r}; "
            f"`relax voices --language {language}` lists voices for a language, "
            "`relax voices` lists them all"
        )
    return min(ranked, key=lambda r: (r[0], r[1]))[2]


# ---- the cache ---------------------------------------------------------------------------------


def cache_root() -> Path:
    """The project's cache folder: `$RELAX_CACHE_DIR`, else the per-user cache dir of relax."""
    env = os.environ.get("RELAX_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("relax"))


def cache_dir() -> Path:
    """The speech cache folder: `$RELAX_CACHE_DIR`, else the user cache dir's `speech` folder."""
    root = cache_root()
    return root if os.environ.get("RELAX_CACHE_DIR") else root / "speech"


def _cache_key(utterance: model.Utterance, voice: VoiceInfo, engine: str) -> str:
    fields = [
        utterance.text,
        voice.id,
        int(utterance.voice.rate_wpm),
        float(utterance.voice.volume),
        engine,
        PROCESSING_VERSION,
    ]
    return hashlib.sha256(json.dumps(fields).encode("utf-8")).hexdigest()


def _cache_path(key: str) -> Path:
    return cache_dir() / key[:2] / f"{key}.f32"


def _cache_load(path: Path) -> np.ndarray | None:
    """The cached clip, or None when missing, truncated or corrupt."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) < _CACHE_HEADER.size:
        return None
    magic, n_samples, digest = _CACHE_HEADER.unpack_from(data)
    payload = data[_CACHE_HEADER.size :]
    if magic != _CACHE_MAGIC or len(payload) != 4 * n_samples or n_samples == 0:
        return None
    if hashlib.sha256(payload).digest() != digest:
        return None
    return np.frombuffer(payload, dtype="<f4").astype(np.float32)


def _cache_length(path: Path) -> int | None:
    """The sample count a cache file declares, from its header alone (its size must agree)."""
    try:
        with open(path, "rb") as f:
            header = f.read(_CACHE_HEADER.size)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return None
    if len(header) < _CACHE_HEADER.size:
        return None
    magic, n_samples, _ = _CACHE_HEADER.unpack_from(header)
    if magic != _CACHE_MAGIC or n_samples == 0 or size != _CACHE_HEADER.size + 4 * n_samples:
        return None
    return int(n_samples)


def _cache_store(path: Path, clip: np.ndarray) -> None:
    payload = np.ascontiguousarray(clip, dtype="<f4").tobytes()
    header = _CACHE_HEADER.pack(_CACHE_MAGIC, clip.size, hashlib.sha256(payload).digest())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".f32")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ---- one clip ----------------------------------------------------------------------------------


class _AttemptFailed(Exception):
    """One worker run gave no usable clip (internal: retried, then turned into a TTSError)."""


class _Workers:
    """What one Synthesizer is running (worker processes, busy fork servers), to stop on close."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running: set = set()  # anything with a kill() method
        self.closed = False

    def add(self, worker) -> None:
        with self._lock:
            self._running.add(worker)
            if self.closed:
                worker.kill()

    def discard(self, worker) -> None:
        with self._lock:
            self._running.discard(worker)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            for worker in self._running:
                with contextlib.suppress(OSError):
                    worker.kill()


# ---- the fork servers --------------------------------------------------------------------------


class _ServerBroken(Exception):
    """A fork server would not start, died or broke the protocol (internal: use a fresh worker)."""


class _ForkServer:
    """One `python -m audio_engine._tts_worker --serve`; each request runs in a child forked from it.

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
            env=_worker_env(),
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

        Raises `_AttemptFailed` when the child ran out of time (the server killed it and stays
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
            raise _AttemptFailed(f"no answer within {timeout_s:g} s")
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
        if not FORK_SERVER:
            return None
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

    def close(self, *, final: bool = False) -> None:
        """Stop every server, idle or busy; with `final` (at exit), start no new ones."""
        with self._lock:
            servers = list(self._all)
            self._idle = []
            self._closed = final
        for server in servers:
            server.close()


_SERVERS = _ServerPool()


def _plausible_range_s(text: str, rate_wpm: int) -> tuple[float, float]:
    """Shortest and longest believable speech for `text` at `rate_wpm`, seconds (trimmed)."""
    words = len(re.findall(r"\w+", text))
    digits = len(re.findall(r"\d", text))
    pauses = len(re.findall(r"[,.;:!?\u2026]", text))
    per_word_s = 60.0 / rate_wpm
    floor_s = 0.3 * per_word_s * max(1, words - digits)
    # Numbers are spoken as several words ("1995" -> "nineteen ninety-five").
    ceiling_s = 4.0 * per_word_s * (words + 3 * digits) + 0.6 * pauses + 1.5
    return floor_s, ceiling_s


def _trim_and_ramp(signal: np.ndarray) -> np.ndarray:
    threshold = 10.0 ** (TRIM_THRESHOLD_DBFS / 20.0)
    loud = np.flatnonzero(np.abs(signal) > threshold)
    if loud.size == 0:
        raise _AttemptFailed("the engine produced only silence")
    margin = round(TRIM_MARGIN_S * model.SAMPLE_RATE)
    start = max(0, int(loud[0]) - margin)
    stop = min(signal.size, int(loud[-1]) + 1 + margin)
    clip = signal[start:stop].astype(np.float32, copy=True)
    ramp_n = min(round(RAMP_S * model.SAMPLE_RATE), clip.size // 2)
    if ramp_n > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp_n) + 0.5) / ramp_n)).astype(np.float32)
        clip[:ramp_n] *= ramp
        clip[-ramp_n:] *= ramp[::-1]
    return clip


def _decode(path: Path, utterance: model.Utterance) -> np.ndarray:
    """Read, verify and process the driver's file into an unscaled clip at SAMPLE_RATE."""
    import soundfile  # only when a clip is made: keeps start-up from a warm cache short
    import soxr

    try:
        data, rate_hz = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
        raise _AttemptFailed(f"unreadable audio file ({exc})") from exc
    if data.shape[0] == 0:
        raise _AttemptFailed("the engine wrote an empty audio file")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if rate_hz != model.SAMPLE_RATE:
        mono = soxr.resample(mono, rate_hz, model.SAMPLE_RATE, quality="HQ")
    clip = _trim_and_ramp(np.asarray(mono, dtype=np.float32))
    floor_s, ceiling_s = _plausible_range_s(utterance.text, int(utterance.voice.rate_wpm))
    speech_s = clip.size / model.SAMPLE_RATE
    if not floor_s <= speech_s <= ceiling_s:
        raise _AttemptFailed(
            f"implausible length {speech_s:.2f} s (expected {floor_s:.2f}-{ceiling_s:.2f} s)"
        )
    return clip


def _run_worker(request: dict, procs: _Workers | None) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(
        _worker_command(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,  # the driver prints "Audio saved to ..." there
        stderr=subprocess.PIPE,
        text=True,
        env=_worker_env(),
        creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),  # no console flash on Windows
    )
    if procs is not None:
        procs.add(proc)
    try:
        out, err = proc.communicate(json.dumps(request), timeout=SYNTH_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.communicate()
        raise _AttemptFailed(f"no answer within {SYNTH_TIMEOUT_S:g} s") from exc
    finally:
        if procs is not None:
            procs.discard(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _run_in_server(server: _ForkServer, request: dict, procs: _Workers | None):
    if procs is not None:
        procs.add(server)
    try:
        return server.run(request, SYNTH_TIMEOUT_S)
    finally:
        if procs is not None:
            procs.discard(server)


def _make_clip(utterance: model.Utterance, voice: VoiceInfo, procs: _Workers | None = None):
    """Synthesize one clip in fresh workers, verifying and retrying; scaled by the volume.

    Each attempt runs in a child of a fork server, or, where there is none (Windows, macOS, a
    server that would not start or died), in a fresh worker process.
    """
    problems: list[str] = []
    server = _SERVERS.acquire()
    try:
        for attempt in range(MAX_ATTEMPTS):
            if procs is not None and procs.closed:
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
                    "timeout_s": SYNTH_TIMEOUT_S,
                }
                try:
                    done = None
                    if server is not None:
                        try:
                            done = _run_in_server(server, request, procs)
                        except _ServerBroken:
                            server.close()
                            server = None
                            if procs is not None and procs.closed:
                                raise TTSError(
                                    f"synthesis of {utterance.text!r} was cancelled"
                                ) from None
                    if done is None:
                        done = _run_worker(request, procs)
                    if done.returncode != 0:
                        detail = (done.stderr.strip().splitlines() or ["no message"])[-1]
                        raise _AttemptFailed(f"worker exit code {done.returncode}: {detail}")
                    if not out.exists():
                        raise _AttemptFailed("no audio file written")
                    clip = _decode(out, utterance)
                except _AttemptFailed as exc:
                    problems.append(str(exc))
                    continue
            return (clip * np.float32(utterance.voice.volume)).astype(np.float32)
    finally:
        if server is not None:
            _SERVERS.release(server)
    raise TTSError(
        f"could not synthesize {utterance.text!r} with voice {voice.id} "
        f"after {MAX_ATTEMPTS} attempts: {'; '.join(problems)}"
    )


def _make_neural_clip(utterance: model.Utterance, voice: VoiceInfo) -> np.ndarray:
    """One clip from the neural voice (in this process: it keeps no state between clips), trimmed,
    ramped, checked for a plausible length and scaled by the volume, as espeak-ng's are."""
    try:
        raw = neural.speech(utterance.text, int(utterance.voice.rate_wpm), voice.id, cache_dir())
        clip = _trim_and_ramp(raw)
    except _AttemptFailed as exc:
        raise TTSError(
            f"could not synthesize {utterance.text!r} with voice {voice.id}: {exc}"
        ) from exc
    except Exception as exc:  # onnxruntime and the model raise anything; name the text
        raise TTSError(
            f"could not synthesize {utterance.text!r} with voice {voice.id}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    floor_s, ceiling_s = _plausible_range_s(utterance.text, int(utterance.voice.rate_wpm))
    speech_s = clip.size / model.SAMPLE_RATE
    if not floor_s <= speech_s <= ceiling_s:
        raise TTSError(
            f"could not synthesize {utterance.text!r} with voice {voice.id}: implausible length "
            f"{speech_s:.2f} s (expected {floor_s:.2f}-{ceiling_s:.2f} s)"
        )
    return (clip * np.float32(utterance.voice.volume)).astype(np.float32)


def _check_utterance(utterance: model.Utterance) -> VoiceInfo:
    if not re.search(r"\w", utterance.text):
        raise TTSError(f"nothing to speak in {utterance.text!r}")
    if utterance.voice.rate_wpm is None or utterance.voice.volume is None:
        raise TTSError(f"voice for {utterance.text!r} is not resolved (rate and volume unset)")
    return voice_for(utterance.language, utterance.voice.name, utterance.voice.engine)


def _path_of(utterance: model.Utterance) -> tuple[Path, VoiceInfo]:
    voice = _check_utterance(utterance)
    return _cache_path(_cache_key(utterance, voice, version_of(voice))), voice


def cached(utterance: model.Utterance) -> np.ndarray | None:
    """The clip if the cache holds it, else None; never synthesizes."""
    return _cache_load(_path_of(utterance)[0])


def cached_length(utterance: model.Utterance) -> int | None:
    """The cached clip's length in samples (from its header), else None; never synthesizes."""
    return _cache_length(_path_of(utterance)[0])


def _produce(utterance: model.Utterance, procs: _Workers | None = None) -> np.ndarray:
    path, voice = _path_of(utterance)
    clip = _cache_load(path)
    if clip is None:
        if voice.engine == "neural":
            clip = _make_neural_clip(utterance, voice)
        else:
            clip = _make_clip(utterance, voice, procs)
        _cache_store(path, clip)
    return clip


# ---- the public synthesizers -------------------------------------------------------------------


class Synthesizer:
    """Background synthesis for a player's cold start: request in order, take clips as they come.

    Parameters
    ----------
    jobs : int, optional
        Worker processes at once; default the CPU count.
    keep_clips : bool
        False: keep only each clip's length (read the clip back from the cache when it plays).

    Examples
    --------
    >>> with Synthesizer() as synth:
    ...     synth.request(utterances)          # returns at once
    ...     first = synth.clip(utterances[0])  # blocks until that clip is ready
    """

    def __init__(self, jobs: int | None = None, *, keep_clips: bool = True):
        self._jobs = max(1, jobs or os.cpu_count() or 1)
        self._cond = threading.Condition()
        self._pending: deque[model.Utterance] = deque()
        self._known: set[model.Utterance] = set()
        self._results: dict[model.Utterance, np.ndarray] = {}
        self._errors: dict[model.Utterance, TTSError] = {}
        self._threads: list[threading.Thread] = []
        self._workers = _Workers()
        self._closed = False
        self._keep_clips = keep_clips  # False: keep only each clip's length (in the cache)

    def __enter__(self) -> Synthesizer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def finished(self) -> int:
        """How many requested clips are ready or failed."""
        with self._cond:
            return len(self._results) + len(self._errors)

    def results(self) -> dict:
        """What is ready so far: utterance -> clip (or its length, when clips are not kept)."""
        with self._cond:
            return dict(self._results)

    def failure(self) -> TTSError | None:
        """The first failed request's error, if any."""
        with self._cond:
            return next(iter(self._errors.values()), None)

    def request(self, utterances: Iterable[model.Utterance]) -> None:
        """Queue `utterances` (in this order, after earlier requests) and return at once."""
        with self._cond:
            if self._closed:
                raise TTSError("the synthesizer is closed")
            for u in utterances:
                if u not in self._known:
                    self._known.add(u)
                    self._pending.append(u)
            self._start_threads()

    def clip(self, utterance: model.Utterance, timeout: float | None = None) -> np.ndarray:
        """The clip for `utterance`, waiting for it (and moving it to the front of the queue).

        Raises
        ------
        errors.TTSError
            Its synthesis failed; `ClipNotReady` (also a `TimeoutError`) after `timeout` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if self._closed:
                raise TTSError("the synthesizer is closed")
            if utterance not in self._known:
                self._known.add(utterance)
                self._pending.appendleft(utterance)
                self._start_threads()
            elif utterance in self._pending:
                self._pending.remove(utterance)
                self._pending.appendleft(utterance)
            while utterance not in self._results and utterance not in self._errors:
                remaining = None if deadline is None else deadline - time.monotonic()
                if self._closed or (remaining is not None and remaining <= 0):
                    raise ClipNotReady(f"speech for {utterance.text!r} is not ready yet")
                self._cond.wait(remaining)
            if utterance in self._errors:
                raise TTSError(str(self._errors[utterance]))
            return self._results[utterance]

    def wait_finished(self, count: int, timeout: float | None = None) -> int:
        """Block until more than `count` requests are ready (or all are); return how many are.

        Raises
        ------
        errors.TTSError
            The first failure among the requests, as soon as there is one.
        """
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    self._closed
                    or self._errors
                    or len(self._results) > count
                    or len(self._results) >= len(self._known)
                ),
                timeout,
            )
            if self._errors:
                raise TTSError(str(next(iter(self._errors.values()))))
            return len(self._results)

    def close(self) -> None:
        """Drop what is still queued, stop running workers and wait for the threads."""
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._cond.notify_all()
        self._workers.close()
        for thread in self._threads:
            if thread.ident is not None:  # a Ctrl-C inside start() can leave one never started
                thread.join()

    def _start_threads(self) -> None:  # caller holds the lock
        self._threads = [t for t in self._threads if t.is_alive()]
        while len(self._threads) < min(self._jobs, len(self._pending)):
            thread = threading.Thread(target=self._work, name="relax-tts", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                if self._closed or not self._pending:
                    return
                utterance = self._pending.popleft()
            try:
                clip = _produce(utterance, self._workers)
            except TTSError as exc:
                with self._cond:
                    self._errors[utterance] = exc
                    self._cond.notify_all()
                continue
            with self._cond:
                self._results[utterance] = clip if self._keep_clips else len(clip)
                self._cond.notify_all()


def synthesize_many(
    utterances: Iterable[model.Utterance],
    *,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[model.Utterance, np.ndarray]:
    """Every clip, from the cache where present, the rest synthesized in parallel.

    Parameters
    ----------
    utterances : iterable of model.Utterance
        Texts with their language and resolved voice (rate and volume set).
    jobs : int, optional
        Worker processes at once; default the CPU count.
    progress : callable, optional
        Called as ``progress(done, total)`` from the calling thread as clips finish.

    Returns
    -------
    dict
        Utterance -> float32 mono clip at `model.SAMPLE_RATE`.

    Raises
    ------
    errors.TTSError
        A language has no voice, or a text could not be synthesized (naming it).
    """
    wanted = list(dict.fromkeys(utterances))
    for u in wanted:  # fail on a missing voice before any synthesis starts
        _check_utterance(u)
    total = len(wanted)
    if progress is not None:
        progress(0, total)
    with Synthesizer(jobs) as synth:
        synth.request(wanted)
        done = 0
        while done < total:
            now = synth.wait_finished(done)
            if now != done and progress is not None:
                progress(now, total)
            done = now
        return {u: synth.clip(u) for u in wanted}


def clip_lengths(
    utterances: Iterable[model.Utterance],
    *,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[model.Utterance, int]:
    """Every clip's length in samples, synthesizing (into the cache) what is missing.

    Unlike `synthesize_many` this keeps no clip in memory, so a long session with a lot of speech
    prepares in flat memory; the clips are read back from the cache when they play (`cached`).
    Lengths of cached clips come from their headers alone.
    """
    wanted = list(dict.fromkeys(utterances))
    lengths: dict[model.Utterance, int] = {}
    missing = []
    for u in wanted:  # fail on a missing voice before any synthesis starts
        n = _cache_length(_path_of(u)[0])
        if n is None:
            missing.append(u)
        else:
            lengths[u] = n
    total = len(wanted)
    if progress is not None:
        progress(len(lengths), total)
    if missing:
        with Synthesizer(jobs, keep_clips=False) as synth:
            synth.request(missing)
            done = 0
            while done < len(missing):
                now = synth.wait_finished(done)
                if now != done and progress is not None:
                    progress(len(lengths) + now, total)
                done = now
            for u in missing:
                synth.clip(u)  # raises the TTSError of a clip that failed
                lengths[u] = synth._results[u]
    return lengths


def synthesize(utterance: model.Utterance) -> np.ndarray:
    """One clip: float32 mono at `model.SAMPLE_RATE`, from the cache where present.

    Raises
    ------
    errors.TTSError
        No voice for the language, or the text could not be synthesized.
    """
    return _produce(utterance)
