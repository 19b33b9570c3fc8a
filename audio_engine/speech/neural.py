"""The neural English voice: hibari-tts (an ONNX model inside its wheel, run by onnxruntime).

The speech engine `Neural` (`engine.Engine`) beside espeak-ng (`espeak.py`); hibari's private
parts that it relies on are in `_hibari_compat`.
Entry points:

- `available()`: hibari-tts and onnxruntime are installed and the voice's model is in the wheel.
- `VOICES`: the voices (only those whose model ships inside the package: nothing is downloaded).
- `version()`: the versions that decide a clip's sound (hibari-tts, onnxruntime, the model file's
  SHA-256, `DELIVERY_VERSION`); part of every neural clip's cache key.
- `speech(text, rate_wpm, voice_id, cache_folder)`: the raw clip, float32 mono at
  `model.SAMPLE_RATE`, before `Neural.make_clip` trims, ramps and scales it.
- `start_loading(voice_id, cache_folder)`: begin loading the model in the background (a session
  with speech to make calls it as it starts); `load()` loads it now, or waits for that.
- `release()`: let the model and the pronunciation stage go once a session's clips are all made
  (`pipeline.prepare` does, before the render), their memory given back to the system.
- `build_tables()`: pack the pronunciation tables beside the installed packages (the launchers'
  setup does, `scripts/_bootstrap.sh`), so that even the first start reads them packed.

A clip depends only on its text, voice and rate: the model runs with one onnxruntime thread (the
same arithmetic in every process; parallelism comes from clips made at once on several threads)
and the vocoder's noise from a generator seeded with `SEED` for every clip. Loading: the
onnxruntime session (about 0.2 s with one short run to set it up, mostly outside the GIL) and
hibari's pronunciation stage (its lexicons and tagger: 0.4 s from hibari's JSON, under 0.1 s
from the packed tables `_g2p` reads, made by `build_tables` or kept in the cache folder) load at
once on two threads; hibari is imported without `scipy.fft`'s public layer
(`_hibari_compat.import_hibari`: 0.2 s less). In all about 0.25 s with the packed tables, 0.6 s
without. A line then takes about 1/100 of its length on one core of this machine.

Memory: the packed tables are read from their file a bucket at a time, with at most
`OPEN_BUCKETS` of each table open (about 2 MiB over a session, against 100 as hibari's JSON
objects); the onnxruntime session runs without its arena and without weights packed ahead for
its matrix kernels (a run's peak 25 MiB lower); the C heap's free pages go back to the system
after the load and after every clip (`give_back_memory`: numpy and onnxruntime free a clip's
buffers, glibc keeps them); `release` drops it all. Runs in the calling process: unlike
espeak-ng, hibari keeps no state from one clip to the next (tested), and onnxruntime with one
thread starts none of its own (the loading threads end when it is loaded), so the process can
still fork. A whole session's speech (`pipeline.prepare`) is made in a process forked for it
(`apart.py`), so that onnxruntime's library and what the heap keeps leave with it.

Delivery (`speech`): `rate_wpm` is mapped to hibari's `speed` through `RATE_TABLE`, measured on
the 111 distinct English lines of the built-in sessions (words per minute of trimmed speech), so
that 140 wpm measures about 140 wpm. The model's pitch curve is lowered by `PITCH_FACTOR` (about
1.4 semitones) and its excursions around the line's median are narrowed to `PITCH_RANGE` of
their size before the vocoder runs: a calmer, less lilting voice whose formants stay where they
are (the vocoder is source-filter: the spectral envelope comes from the network, the pulses from
the pitch curve). The sentences of a line are joined with `SENTENCE_PAUSE_S` of silence
(hibari leaves about 1.05 s of its own: 0.4 s before and 0.65 s after each). Then a gentle high
shelf (`SHELF_DB` above `SHELF_HZ`) takes the edge off
sibilants, and `LEVEL` brings speech to about the RMS espeak-ng speaks at (0.1), so the mix with
the background stays as documented.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import hashlib
import json
import marshal
import os
import sys
import threading
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from audio_engine import fsio, model
from audio_engine.errors import TTSError
from audio_engine.speech import _hibari_compat, cache
from audio_engine.speech.engine import (
    ClipRejected,
    Running,
    VoiceInfo,
    check_length,
    name_matches,
    package_stamp,
    quoted,
    scaled,
    spec_origin,
    trim_and_ramp,
)

# onnxruntime (1.32 on Linux) otherwise keeps a device id and a store of telemetry events under
# ~/.cache/Microsoft: relax writes nothing outside its own folders and sends nothing anywhere.
# Read when onnxruntime is first imported, which is always after this module's import.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

if TYPE_CHECKING:  # numpy where a clip is made: choosing a voice needs none
    import numpy as np

ENGINE = "neural"
SEED = 0
LANGUAGE = "en"  # the primary language the neural voices speak
DELIVERY_VERSION = 1  # bump when anything below changes what a clip sounds like

# (words per minute measured, hibari speed): trimmed speech of the built-in English lines.
RATE_TABLE = (
    (81.2, 0.4),
    (101.3, 0.5),
    (122.0, 0.6),
    (143.6, 0.7),
    (163.9, 0.8),
    (193.6, 0.9),
    (203.4, 1.0),
    (225.7, 1.2),
    (307.4, 1.4),
)
PITCH_FACTOR = 0.92  # x the model's pitch: 192 Hz median -> about 177 Hz
PITCH_RANGE = 0.7  # x the model's excursions around the median (in semitones)
SHELF_HZ = 4000.0
SHELF_DB = -4.0
LEVEL = 2.0  # fixed gain: 0.05 RMS (hibari, measured) to about espeak-ng's 0.1
SENTENCE_PAUSE_S = 0.6  # silence between two sentences of a line (hibari's own: about 1.05 s)
# The model's memory grows with the length of what it is given at once (about 0.35 MiB a symbol:
# +90 MiB at 250): a sentence longer than this many symbols is said in parts, cut between words,
# with `PART_PAUSE_S` between them. The built-in sessions' longest sentence has 124; a line of
# 2,000 characters as one sentence took 0.8-2.3 GB before.
MAX_SYMBOLS = 250
PART_PAUSE_S = 0.2
EDGE_S = 0.01  # kept around each sentence's sound
VOICED_HZ = 40.0  # hibari's own voicing threshold


@dataclass(frozen=True)
class NeuralVoice:
    id: str
    name: str
    languages: tuple[str, ...]
    hibari_name: str


VOICES = (
    NeuralVoice(
        id="hibari/heart",
        name="Heart (neural, American English, female)",
        languages=("en-us", "en"),
        hibari_name="heart",
    ),
)


@functools.cache
def _model_file(voice: NeuralVoice) -> Path | None:
    origin = spec_origin("hibari")
    if origin is None:
        return None
    path = Path(origin).parent / "assets" / "hibari.onnx"
    return path if voice.hibari_name == "heart" and path.is_file() else None


def available() -> bool:
    """hibari-tts and onnxruntime are installed, with the voice's model in the package."""
    if os.environ.get("RELAX_NEURAL", "").lower() == "off":  # a test hook: as if not installed
        return False
    return spec_origin("onnxruntime") is not None and _model_file(VOICES[0]) is not None


def speaks(language: str) -> bool:
    return model.primary_language(language) == LANGUAGE


def speed_for(rate_wpm: float) -> float:
    """hibari's `speed` for `rate_wpm` (linear between the measured points of `RATE_TABLE`)."""
    import numpy as np

    wpm = [w for w, _ in RATE_TABLE]
    speeds = [s for _, s in RATE_TABLE]
    if rate_wpm <= wpm[0]:
        return speeds[0] * rate_wpm / wpm[0]
    if rate_wpm >= wpm[-1]:
        return speeds[-1] * rate_wpm / wpm[-1]
    return float(np.interp(rate_wpm, wpm, speeds))


# ---- versions ----------------------------------------------------------------------------------

_version_lock = threading.Lock()
_version: str | None = None


def _fingerprint() -> str:
    parts: list = [DELIVERY_VERSION]
    parts += [package_stamp(package) for package in ("hibari", "onnxruntime", "soxr")]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]


def version(cache_folder: Path | None = None) -> str:
    """e.g. ``"hibari-tts 0.2.1; onnxruntime 1.32.0; model 5f70741d4e90; delivery 1"``.

    Found once (package metadata and a hash of the model file) and kept in the cache folder under
    a fingerprint of the installed packages, like espeak-ng's answer (`cache.remember`).
    """
    global _version
    with _version_lock:
        if _version is not None:
            return _version
        name = f"neural-{_fingerprint()}.json"
        remembered = cache.recall(name)
        if remembered is not None and isinstance(remembered.get("version"), str):
            _version = remembered["version"]
            return _version
        from importlib.metadata import version as dist_version

        digest = hashlib.sha256(_model_file(VOICES[0]).read_bytes()).hexdigest()[:12]
        found = (
            f"hibari-tts {dist_version('hibari-tts')}; onnxruntime {dist_version('onnxruntime')}; "
            f"soxr {dist_version('soxr')}; model {digest}; delivery {DELIVERY_VERSION}"
        )
        cache.remember(name, {"version": found})
        _version = found
        return found


# ---- the model ----------------------------------------------------------------------------------

_load_lock = threading.Lock()  # one load at a time (the others wait for it)
_state_lock = threading.Lock()  # `_engines` and `_loading` (held only for a moment)
_g2p_lock = threading.Lock()  # the pronunciation stage is plain Python with caches: one at a time
_engines: dict[str, object] = {}
_loading: dict[str, _Loading] = {}
_busy = 0  # `speech` calls under way (`release` lets nothing go while one is)
G2P_TABLES_VERSION = 2  # bump when the saved form of the pronunciation tables changes
_TABLES_MAGIC = b"RELAXG2P"


def _options(level=None):
    """The session's options: one thread (the same arithmetic in every process), as hibari makes
    it, without its memory arena."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 4  # (fatal only: an error is said once, by relax, in one line)
    # No memory arena and no memory pattern: each run allocates what it needs and gives it back
    # (the arena kept the largest line's tensors for good: 30 MiB more at the end of a session),
    # at the same speed here; the arithmetic is the same (tested).
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    # No weights packed ahead for the matrix kernels: each run's peak is about 25 MiB lower (the
    # packed copies of the weights), at the same speed; the arithmetic is the same (tested).
    options.add_session_config_entry("session.disable_prepacking", "1")
    if level is not None:
        options.graph_optimization_level = level
    return options


def _session(voice: NeuralVoice, cache_folder: Path | None = None):
    """The voice's onnxruntime session (`_options`). Made from the model as onnxruntime has
    already optimized it (`_optimized_file`: made when the environment is set up, else kept in
    the cache folder after the first load): 30 ms instead of 90, the same samples (tested).
    Creating it runs mostly outside the GIL."""
    import onnxruntime as ort

    for folder in (BUILT_TABLES_FOLDER, cache_folder):
        optimized = None if folder is None else _optimized_file(folder, voice)
        if optimized is not None and _checked_model(optimized):
            with contextlib.suppress(Exception):  # (then from hibari's own model)
                return ort.InferenceSession(
                    str(optimized), _options(), providers=["CPUExecutionProvider"]
                )
    session = ort.InferenceSession(
        str(_model_file(voice)), _options(), providers=["CPUExecutionProvider"]
    )
    if cache_folder is not None:
        _later(lambda: _write_model(_optimized_file(cache_folder, voice), voice))
    return session


MODEL_VERSION = 1  # bump when the saved form of the optimized model changes


def _optimized_file(folder: Path, voice: NeuralVoice) -> Path:
    """Where the model optimized by the installed onnxruntime is kept in `folder`: a new
    onnxruntime or hibari is a new name."""
    what = [MODEL_VERSION, voice.hibari_name, package_stamp("hibari")]
    what += [package_stamp("onnxruntime")]
    key = hashlib.sha256(json.dumps(what).encode()).hexdigest()[:24]
    return Path(folder) / "neural" / f"model-{key}.onnx"


def _checked_model(path: Path) -> bool:
    """Whether the optimized model at `path` is whole: its SHA-256 is the one saved beside it."""
    try:
        digest = fsio.read_checked(path.with_suffix(".sha256"), 256).decode("ascii").strip()
        with fsio.open_checked(path) as f:  # (a FIFO or a device in its place: not whole)
            return hashlib.file_digest(f, "sha256").hexdigest() == digest
    except (OSError, ValueError, fsio.FsError):
        return False


def _write_model(path: Path, voice: NeuralVoice) -> None:
    """Save the voice's model as onnxruntime optimizes it (its basic and extended graph
    optimizations; the layout ones are made again at each load), with its SHA-256 beside it."""
    import tempfile

    import onnxruntime as ort

    if _checked_model(path):
        return
    with contextlib.suppress(Exception), tempfile.TemporaryDirectory() as folder:
        options = _options(ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
        options.optimized_model_filepath = str(Path(folder) / "model.onnx")
        ort.InferenceSession(str(_model_file(voice)), options, providers=["CPUExecutionProvider"])
        payload = (Path(folder) / "model.onnx").read_bytes()
        fsio.atomic_write(path, payload, fsync=False)
        digest = hashlib.sha256(payload).hexdigest().encode("ascii")
        fsio.atomic_write(path.with_suffix(".sha256"), digest, fsync=False)


def _tables_file(cache_folder: Path, voice: NeuralVoice) -> Path:
    what = [G2P_TABLES_VERSION, sys.version, voice.hibari_name, package_stamp("hibari")]
    key = hashlib.sha256(json.dumps(what).encode()).hexdigest()[:24]
    return Path(cache_folder) / "neural" / f"g2p-{key}.marshal"


def _built_tables_file(voice: NeuralVoice) -> Path:
    """Where `build_tables` keeps the tables made when the environment is set up (beside the
    installed packages: the same key as in the cache folder, so an upgrade leaves them unused)."""
    return _tables_file(BUILT_TABLES_FOLDER, voice)


BUILT_TABLES_FOLDER = Path(sys.prefix) / "share" / "relax"
_BUCKETED = "relax-buckets"  # marks a table kept in buckets (JSON has no tuples)
BUCKET_FROM = 4096  # a table with more entries than this is kept in buckets
BUCKET_SIZE = 128  # about this many entries to a bucket
# Buckets kept open per table: the tagger asks for a dozen features of every word, most of them
# in no table, so over a session every bucket would be opened (the whole table in memory again,
# 50 MiB with the rest); 16 open keep it near 2 MiB over the built-in sessions' 60 English lines
# (64: 8-9 MiB), at about 1.5 ms more a line (of about 100).
OPEN_BUCKETS = 16


class _Buckets(Mapping):
    """A large JSON object kept as marshalled buckets, each opened the first time a key in it is
    asked for: a line looks up a few hundred of the tables' 270,000 entries, so a cold start
    opens a fraction of them (and at most `OPEN_BUCKETS` stay open). Keys are strings (as in JSON), placed by CRC-32 of their UTF-8.
    Iteration goes bucket by bucket (hibari only looks keys up). `blobs`: the marshalled
    buckets (bytes, or `_Stored`: read from the tables file as they are asked for)."""

    def __init__(self, count: int, blobs):
        self._count = count
        self._blobs = blobs
        self._open: dict[int, dict] = {}  # the buckets open now, the longest open first

    @staticmethod
    def place(key: str, buckets: int) -> int:
        return zlib.crc32(key.encode("utf-8", "surrogatepass")) % buckets

    def _bucket(self, i: int) -> dict:
        bucket = self._open.get(i)
        if bucket is None:
            bucket = marshal.loads(self._blobs[i])
            if len(self._open) >= OPEN_BUCKETS:  # the one opened longest ago goes
                with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                    del self._open[next(iter(self._open))]
            self._open[i] = bucket
        return bucket

    def __getitem__(self, key):
        if not isinstance(key, str):
            raise KeyError(key)
        return self._bucket(self.place(key, len(self._blobs)))[key]

    def __iter__(self):
        for i in range(len(self._blobs)):
            yield from self._bucket(i)

    def __len__(self) -> int:
        return self._count


class _TablesFile:
    """The open tables file, closed when no table reads from it any more."""

    def __init__(self, path: Path):
        try:
            with fsio.open_checked(path) as f:  # (a FIFO or a device in its place: not read)
                self.fd = os.dup(f.fileno())
        except fsio.FsError as exc:
            raise OSError(exc.reason) from None

    def __del__(self):
        with contextlib.suppress(OSError, AttributeError):
            os.close(self.fd)


class _Stored(Sequence):
    """A table's buckets in the tables file, read from it as they are asked for: bucket i is the
    bytes from `ends[i-1]` (0 for the first) to `ends[i]` after `start`. Read with `os.pread`,
    not mapped: the file stays in the system's page cache, not in this process's memory (a
    mapping would bring in 64 KiB around every bucket opened)."""

    def __init__(self, file: _TablesFile, start: int, ends: list[int]):
        self._file, self._start, self._ends = file, start, ends

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i: int) -> bytes:
        begin = self._ends[i - 1] if i else 0
        size = self._ends[i] - begin
        blob = os.pread(self._file.fd, size, self._start + begin)
        if len(blob) != size:
            raise EOFError("the pronunciation tables file was cut short")
        return blob


def _pack(table, depth: int = 0):
    """`table` (as JSON reads it) in its saved form: large objects in buckets (`_Buckets`)."""
    if isinstance(table, dict):
        if len(table) > BUCKET_FROM:
            count = max(1, len(table) // BUCKET_SIZE)
            buckets: list[dict] = [{} for _ in range(count)]
            crc32 = zlib.crc32  # (`_Buckets.place`, inline: 270,000 keys)
            for key, value in table.items():
                buckets[crc32(key.encode("utf-8", "surrogatepass")) % count][key] = value
            return (_BUCKETED, len(table), [marshal.dumps(b) for b in buckets])
        if depth < 2:
            return {key: _pack(value, depth + 1) for key, value in table.items()}
    return table


def _unpack(saved, depth: int = 0, file=None, start: int = 0):
    """A saved table as hibari reads it: buckets as `_Buckets`, their blobs in memory (from
    `_pack`) or in `file` (the open tables file: `start` is where its blobs begin)."""
    if isinstance(saved, tuple) and len(saved) == 3 and saved[0] == _BUCKETED:
        return _Buckets(saved[1], saved[2])
    if isinstance(saved, tuple) and len(saved) == 4 and saved[0] == _BUCKETED:
        return _Buckets(saved[1], _Stored(file, start + saved[2], saved[3]))
    if isinstance(saved, dict) and depth < 2:
        return {key: _unpack(value, depth + 1, file, start) for key, value in saved.items()}
    return saved


# The tables file: `_TABLES_MAGIC`, the SHA-256 of everything after it, the length of the index
# (8 bytes, little-endian), the index (marshalled: name -> table, each bucketed table as
# (_BUCKETED, entries, where its blobs begin, where each ends)), then the buckets' blobs.
_HEAD = len(b"RELAXG2P") + 32 + 8


def _read_tables(path: Path) -> dict | None:
    """The saved tables at `path` (name -> table), or None when missing or damaged. The file is
    checked whole, then kept open: a bucket is read from it the first time it is opened."""
    try:
        file = _TablesFile(path)
        head = os.pread(file.fd, _HEAD, 0)
        if len(head) < _HEAD or head[: len(_TABLES_MAGIC)] != _TABLES_MAGIC:
            return None
        digest = hashlib.sha256(head[-8:])  # the index's length, then the rest
        at = _HEAD
        while chunk := os.pread(file.fd, 1 << 20, at):
            digest.update(chunk)
            at += len(chunk)
        if digest.digest() != head[len(_TABLES_MAGIC) : len(_TABLES_MAGIC) + 32]:
            return None
        index_size = int.from_bytes(head[-8:], "little")
        index = marshal.loads(os.pread(file.fd, index_size, _HEAD))
        if not isinstance(index, dict):
            return None
        start = _HEAD + index_size
        return {name: _unpack(table, 0, file, start) for name, table in index.items()}
    except (OSError, EOFError, ValueError, TypeError, IndexError):
        return None


def _write_tables(path: Path, packed: dict) -> None:
    """Save tables in their saved form (`_pack`) at `path`, atomically, without gathering the
    file in memory first."""
    blobs: list[bytes] = []

    def placed(table, depth: int = 0):
        if isinstance(table, tuple) and len(table) == 3 and table[0] == _BUCKETED:
            begin, ends, at = sum(map(len, blobs)), [], 0
            for blob in table[2]:
                at += len(blob)
                ends.append(at)
            blobs.extend(table[2])
            return (_BUCKETED, table[1], begin, ends)
        if isinstance(table, dict) and depth < 2:
            return {key: placed(value, depth + 1) for key, value in table.items()}
        return table

    try:
        index = marshal.dumps({name: placed(table) for name, table in packed.items()})
    except ValueError:
        return
    size = len(index).to_bytes(8, "little")
    digest = hashlib.sha256(size + index)
    for blob in blobs:
        digest.update(blob)

    def write(f) -> None:
        f.write(_TABLES_MAGIC + digest.digest() + size)
        f.write(index)
        for blob in blobs:
            f.write(blob)

    with contextlib.suppress(fsio.FsError):  # a cache that cannot be written is only slower
        fsio.atomic_write(path, write, fsync=False)


def _saved_tables(voice: NeuralVoice, cache_folder: Path) -> dict | None:
    """The tables made when the environment was set up (`build_tables`), else those kept in the
    cache folder, else None."""
    for path in (_built_tables_file(voice), _tables_file(cache_folder, voice)):
        saved = _read_tables(path)
        if saved is not None:
            return saved
    return None


def _g2p(voice: NeuralVoice, cache_folder: Path | None):
    """hibari's pronunciation stage (most of the load time: its lexicons and tagger are JSON).

    The tables it reads (`hibari.g2p._load_json`) are kept marshalled, the large ones in buckets
    opened as they are needed (`_Buckets`), read from the file (`_read_tables`), under a
    key of hibari's installation and this Python: made when the environment is set up
    (`build_tables`), or else in `cache_folder` after the first load (in the background; that
    load uses them packed too). From there the stage is ready in a tenth of the time, takes a
    few MiB instead of 100, and answers the same (tested).
    """
    _hibari_compat.import_hibari()
    import hibari.g2p as g2p_module
    from hibari.voices import VOICES as HIBARI_VOICES

    british = HIBARI_VOICES[voice.hibari_name]["british"]
    original = getattr(g2p_module, "_load_json", None)
    if cache_folder is None or original is None:
        return g2p_module.G2P(british=british)
    saved = _saved_tables(voice, cache_folder)
    read: dict = {}

    def load_json(name):
        if saved is not None and name in saved:
            return saved[name]
        # Packed at once, and used packed: the JSON objects go as soon as they are read (they
        # are most of the memory the voice takes).
        read[name] = _pack(original(name))
        return _unpack(read[name])

    with _hibari_compat.tables_loaded_by(g2p_module, load_json):
        made = g2p_module.G2P(british=british)
    if read and saved is None:
        _write_later(_tables_file(cache_folder, voice), read)
    return made


def build_tables(voice_id: str = VOICES[0].id) -> Path | None:
    """Make the pronunciation tables beside the installed packages (`BUILT_TABLES_FOLDER`), as
    the environment is set up (scripts/_bootstrap.sh), so that even the first start of the voice
    reads them packed; the path, or None where that folder cannot be written."""
    voice = _voice(voice_id)
    path = _built_tables_file(voice)
    if not available():
        return None
    if _read_tables(path) is not None:
        _write_model(_optimized_file(BUILT_TABLES_FOLDER, voice), voice)  # (where it is not)
        return path
    _hibari_compat.import_hibari()
    import hibari.g2p as g2p_module
    from hibari.voices import VOICES as HIBARI_VOICES

    original = g2p_module._load_json
    read: dict = {}

    def load_json(name):
        read[name] = _pack(original(name))
        return _unpack(read[name])

    with _hibari_compat.tables_loaded_by(g2p_module, load_json):
        g2p_module.G2P(british=HIBARI_VOICES[voice.hibari_name]["british"])
    _write_tables(path, read)
    _write_model(_optimized_file(BUILT_TABLES_FOLDER, voice), voice)
    return path if _read_tables(path) is not None else None


TABLES_WRITE_DELAY_S = 3.0  # the first load's tables are saved this long after (or sooner)
_writes_lock = threading.Lock()
_writes: list[tuple[threading.Thread, threading.Event]] = []  # tables still to save


def _write_later(path: Path, tables: dict) -> None:
    """Save the tables `TABLES_WRITE_DELAY_S` after this first load, out of the way of a cold
    start's first sound (packing them takes about 0.2 s of CPU), or sooner: when the voice is
    let go (`release`) or the process exits."""
    _later(lambda: _write_tables(path, tables))


def _later(work) -> None:
    """Run `work` `TABLES_WRITE_DELAY_S` from now, or sooner (`_finish_writes`)."""
    now = threading.Event()

    def write():
        now.wait(TABLES_WRITE_DELAY_S)
        work()

    writer = threading.Thread(target=write, name="relax-neural-tables", daemon=True)
    with _writes_lock:
        _writes.append((writer, now))
    writer.start()


def _finish_writes() -> None:
    """Save the tables still to save, now, and wait for that."""
    with _writes_lock:
        pending = list(_writes)
        _writes.clear()
    for writer, now in pending:
        now.set()
        writer.join()


atexit.register(_finish_writes)


def _vocab() -> dict:
    hibari = _hibari_compat.import_hibari()
    with open(Path(hibari.tts.ASSETS) / "vocab.json", encoding="utf-8") as f:
        return json.load(f)


def _ready_session(voice: NeuralVoice, cache_folder: Path | None = None):
    """The session, run once on a short input together with the vocoder and the resampler (the
    first run of each sets itself up: about 40 ms of the first clip); (session, vocabulary)."""
    import numpy as np

    session = _session(voice, cache_folder)
    vocab = _vocab()
    with contextlib.suppress(Exception):  # only a head start: the clip's own run reports
        import soxr
        from hibari import dsp

        ids = [0, *(vocab[c] for c in "həlˈO." if c in vocab), 0]
        speed = np.asarray([1.0], np.float32)
        out = session.run(None, {"ids": np.asarray([ids], np.int64), "speed": speed})
        wave = dsp.synth(*(o[0] for o in out[:5]), out[5][0], np.random.default_rng(SEED))
        soxr.resample(_soften(wave, dsp.SR), dsp.SR, model.SAMPLE_RATE, quality="HQ")
    return session, vocab


def _assemble(voice: NeuralVoice, ready, g2p):
    """A `hibari.Hibari` on this session and pronunciation stage (what its `__init__` makes)."""
    session, vocab = ready
    return _hibari_compat.assemble(
        voice=voice.hibari_name,
        model_path=str(_model_file(voice)),
        session=session,
        vocab=vocab,
        g2p=g2p,
    )


class _Loading:
    """The model and the pronunciation stage being loaded at once on two threads."""

    def __init__(self, voice: NeuralVoice, cache_folder: Path | None):
        self.voice = voice
        self.results: dict = {}
        self.threads = [
            threading.Thread(
                target=self._run, args=(part, work), name=f"relax-neural-{part}", daemon=True
            )
            for part, work in (
                ("session", lambda: _ready_session(voice, cache_folder)),
                ("g2p", lambda: _g2p(voice, cache_folder)),
            )
        ]
        for thread in self.threads:
            thread.start()

    def _run(self, part: str, work) -> None:
        try:
            self.results[part] = work()
        except BaseException as exc:  # noqa: BLE001 - `load` raises it, or loads again
            self.results[part] = exc

    def join(self):
        for thread in self.threads:
            thread.join()
        parts = [self.results.get(p) for p in ("session", "g2p")]
        for part in parts:
            if isinstance(part, BaseException) or part is None:
                raise part if part is not None else RuntimeError("the model did not load")
        return _assemble(self.voice, *parts)


def start_loading(voice_id: str = VOICES[0].id, cache_folder: Path | None = None) -> None:
    """Begin loading the voice `voice_id` in the background, and return at once (a session with
    speech to make calls this as it starts: the model and the pronunciation tables load beside
    the script, the background and the device); `load` then waits for it. `cache_folder`: where
    the pronunciation tables are kept in a faster form."""
    voice = _voice(voice_id)
    with _state_lock:
        if voice.id not in _engines and voice.id not in _loading:
            _loading[voice.id] = _Loading(voice, cache_folder)


def loaded(voice_id: str = VOICES[0].id) -> bool:
    """Whether the voice `voice_id` is loaded in this process."""
    return voice_id in _engines


def load(voice: NeuralVoice = VOICES[0], cache_folder: Path | None = None):
    """The loaded hibari model and pronunciation stage for `voice` (loaded once per process)."""
    engine = _engines.get(voice.id)
    if engine is not None:
        return engine
    with _load_lock:
        engine = _engines.get(voice.id)
        if engine is not None:
            return engine
        with _state_lock:
            loading = _loading.get(voice.id)
            if loading is None:
                loading = _loading[voice.id] = _Loading(voice, cache_folder)
        try:
            engine = loading.join()
        except Exception:  # noqa: BLE001 - a background load that failed: once more, here
            engine = _assemble(
                voice, _ready_session(voice, cache_folder), _g2p(voice, cache_folder)
            )
        with _state_lock:
            _engines[voice.id] = engine
            _loading.pop(voice.id, None)
        give_back_memory()  # what making the session and its first run left over
        return engine


def release() -> bool:
    """Let the loaded voices go (the onnxruntime session, the model's weights, the pronunciation
    stage) and give their memory back to the system, once every clip is made: an export renders
    without them (about 100 MiB less). False, and nothing let go, while a clip is being made;
    the next clip loads the voice again. What a first load had still to save (its tables, the
    optimized model) is saved then, once the voice is let go (not beside it)."""
    with _load_lock:
        with _state_lock:
            loading = list(_loading.values())
            _loading.clear()
        for started in loading:  # a load begun for nothing: let it end, and drop it
            for thread in started.threads:
                thread.join()
        with _state_lock:
            busy = _busy > 0
            if not busy:
                _engines.clear()
        del loading
        if not busy:
            _hibari_compat.forget_caches()
            gc.collect()
        _finish_writes()
    if busy:
        return False
    gc.collect()
    give_back_memory()
    return True


def _after_fork_in_child() -> None:
    """In a forked child (`apart.py` makes clips in one): no other thread was copied, so no lock
    may stay held by one, and no load or tables write begun by one is still under way."""
    global _load_lock, _state_lock, _g2p_lock, _writes_lock, _version_lock, _busy
    _load_lock, _state_lock, _g2p_lock = threading.Lock(), threading.Lock(), threading.Lock()
    _writes_lock, _version_lock = threading.Lock(), threading.Lock()
    _loading.clear()
    _writes.clear()
    _busy = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def give_back_memory() -> None:
    """Return the C heap's free pages to the system (glibc's `malloc_trim`): onnxruntime (without
    its arena) and numpy free a clip's buffers, but glibc keeps most of them mapped."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)


def _voice(voice_id: str) -> NeuralVoice:
    for voice in VOICES:
        if voice.id == voice_id:
            return voice
    raise KeyError(voice_id)


def _calm_pitch(f0: np.ndarray) -> np.ndarray:
    """Lower the pitch curve and narrow its excursions around the line's median (in log pitch)."""
    import numpy as np

    voiced = f0 > VOICED_HZ
    if not voiced.any():
        return f0
    median = float(np.median(f0[voiced]))
    out = f0.astype(np.float64, copy=True)
    ratio = out[voiced] / median
    out[voiced] = PITCH_FACTOR * median * np.power(ratio, PITCH_RANGE)
    return out.astype(np.float32)


def _trimmed(sentence: np.ndarray, rate_hz: int) -> np.ndarray:
    """One sentence without the model's silence around it (under -60 dBFS after `LEVEL`), with
    `EDGE_S` kept and 4 ms raised-cosine ramps."""
    import numpy as np

    threshold = 10.0 ** (-60.0 / 20.0) / LEVEL
    loud = np.flatnonzero(np.abs(sentence) > threshold)
    if loud.size == 0:
        return sentence[:0]
    margin = round(EDGE_S * rate_hz)
    piece = sentence[max(0, loud[0] - margin) : loud[-1] + 1 + margin].copy()
    ramp_n = min(round(0.004 * rate_hz), piece.size // 2)
    if ramp_n:
        ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp_n) + 0.5) / ramp_n)).astype(np.float32)
        piece[:ramp_n] *= ramp
        piece[-ramp_n:] *= ramp[::-1]
    return piece


def _soften(signal: np.ndarray, rate_hz: int) -> np.ndarray:
    """A gentle high shelf: `SHELF_DB` above `SHELF_HZ`, smooth (raised-cosine) over an octave."""
    import numpy as np

    n = signal.size
    if n == 0:
        return signal
    size = 1 << int(np.ceil(np.log2(max(2, n))))
    spectrum = np.fft.rfft(signal.astype(np.float64), size)
    freqs = np.fft.rfftfreq(size, 1.0 / rate_hz)
    position = np.clip(np.log2(np.maximum(freqs, 1.0) / (SHELF_HZ / np.sqrt(2.0))), 0.0, 1.0)
    shelf = 0.5 - 0.5 * np.cos(np.pi * position)
    spectrum *= 10.0 ** (SHELF_DB * shelf / 20.0)
    return np.fft.irfft(spectrum, size)[:n].astype(np.float32)


def speech(
    text: str, rate_wpm: int, voice_id: str = VOICES[0].id, cache_folder: Path | None = None
) -> np.ndarray:
    """`text` spoken at `rate_wpm`: float32 mono at `model.SAMPLE_RATE`, untrimmed, unscaled.
    `cache_folder`: where `load` keeps the pronunciation tables."""
    global _busy
    with _state_lock:
        _busy += 1
    try:
        return _speech(text, rate_wpm, voice_id, cache_folder)
    finally:
        with _state_lock:
            _busy -= 1
        give_back_memory()  # a clip's buffers, most of what grows while a session is made


def _speech(text: str, rate_wpm: int, voice_id: str, cache_folder: Path | None) -> np.ndarray:
    import numpy as np
    import soxr

    engine = load(_voice(voice_id), cache_folder)
    from hibari import dsp

    speed = np.asarray([speed_for(rate_wpm)], np.float32)
    with _g2p_lock:
        phonemes = engine.phonemize(text)
    rng = np.random.default_rng(SEED)  # one generator per clip, as hibari's own call does
    parts = []
    pause = np.zeros(round(SENTENCE_PAUSE_S * dsp.SR), np.float32)
    short = np.zeros(round(PART_PAUSE_S * dsp.SR), np.float32)
    for ps, first in _parts(engine, phonemes):
        ids = engine.ids(ps)
        if len(ids) < 3:
            continue
        out = engine.sess.run(None, {"ids": np.asarray([ids], np.int64), "speed": speed})
        f0 = _calm_pitch(out[5][0])
        spectra = [o[0] for o in out[:5]]  # the vocoder lets each go once used
        del out
        sentence = _trimmed(_hibari_compat.synth(spectra, f0, rng), dsp.SR)
        del f0
        if sentence.size:
            parts += [pause if first else short, sentence] if parts else [sentence]
    if not parts:
        return np.zeros(0, np.float32)
    raw = np.concatenate(parts)
    del parts
    soft = _soften(raw, dsp.SR)
    del raw
    clip = soxr.resample(soft, dsp.SR, model.SAMPLE_RATE, quality="HQ")
    return (np.asarray(clip, dtype=np.float32) * np.float32(LEVEL)).astype(np.float32)


def _parts(engine, phonemes: list[str]):
    """(phonemes, starts a sentence) for each part the model is given: each sentence whole, or
    cut between words (within a word where one alone is too long) into parts of at most
    `MAX_SYMBOLS` symbols."""
    for sentence in phonemes:
        if len(engine.ids(sentence)) <= MAX_SYMBOLS:
            yield sentence, True
            continue
        first, part = True, ""
        for word in sentence.split(" "):
            while len(engine.ids(word)) > MAX_SYMBOLS:  # one word too long: cut inside it
                cut = MAX_SYMBOLS // 2
                if part:
                    yield part, first
                    first, part = False, ""
                yield word[:cut], first
                first, word = False, word[cut:]
            joined = f"{part} {word}" if part else word
            if part and len(engine.ids(joined)) > MAX_SYMBOLS:
                yield part, first
                first, joined = False, word
            part = joined
        if part:
            yield part, first


# ---- the engine --------------------------------------------------------------------------------


class Neural:
    """The neural English voice as a speech engine (`engine.Engine`): clips made in this process,
    one after another (the model keeps no state between clips), after the model has loaded."""

    name = ENGINE
    in_process = True
    pauses_in_lines = True
    synthetic = True

    def available(self) -> bool:
        return available()

    def voices(self) -> list[VoiceInfo]:
        if not available():
            return []
        return [VoiceInfo(v.id, v.name, v.languages, engine=self.name) for v in VOICES]

    def voice_for(self, language: str, name: str | None, *, explicit: bool) -> VoiceInfo | None:
        if not available():
            raise TTSError(
                "the neural voice is not installed (hibari-tts with onnxruntime); reinstall "
                "relax's dependencies (the launchers do), or use `engine: espeak` / "
                "`--engine espeak`"
            )
        if not speaks(language):
            raise TTSError(
                f"the neural voice speaks only English, not {language!r}; use `engine: espeak` "
                "(or leave `engine` out: espeak-ng speaks every other language)"
            )
        voices = self.voices()
        if name is None:
            return voices[0]
        matches = name_matches(voices, name)
        if matches:
            return matches[0]
        if explicit:
            raise TTSError(
                f"no neural voice matches {name!r}; `relax voices --language {language}` lists them"
            )
        return None

    def version(self) -> str:
        return version()

    def load(self, voice: VoiceInfo) -> None:
        start_loading(voice.id, cache.cache_dir())

    def loaded(self) -> bool:
        return loaded()

    def release(self) -> bool:
        return release()

    def make_clip(
        self, utterance: model.Utterance, voice: VoiceInfo, running: Running | None = None
    ) -> np.ndarray:
        """One clip, trimmed, ramped, checked for a plausible length and scaled by the volume,
        as espeak-ng's are."""
        try:
            raw = speech(utterance.text, int(utterance.voice.rate_wpm), voice.id, cache.cache_dir())
            clip = check_length(trim_and_ramp(raw), utterance.text, int(utterance.voice.rate_wpm))
        except ClipRejected as exc:
            raise TTSError(
                f"could not synthesize {quoted(utterance.text)} with voice {voice.id}: {exc}"
            ) from exc
        except Exception as exc:  # onnxruntime and the model raise anything; name the text
            raise TTSError(
                f"could not synthesize {quoted(utterance.text)} with voice {voice.id}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        return scaled(clip, utterance)
