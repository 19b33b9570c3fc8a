"""From a script to something that can sound: the edge that joins script, tts and timeline.

Entry points:

- `load(arg, language=None) -> Session`: a SESSION argument (id or path) loaded and validated.
- `prepare(session, voice_override=None, progress=None) -> Prepared`: speech synthesized into the
  cache (only lengths kept; a `ClipStore` reads clips back as they play), timeline compiled
  (timing checked with the real voice), sound files loaded, background generators readied.
- `fit_rates`, `check_voice_names`: `speaking`'s (the voices, rates and clip lengths, without
  numpy), here under their former names.
- `gain(prepared) -> float`: the loudness gain, measured once and remembered in the cache folder
  (a remembered estimate is replaced by the measure: see `gain`).
- `Growing(session, voice_override=None)`: a session that starts playing while its speech is
  still being synthesized (the player's cold start): the latest timeline, the sample up to which
  it is final, and `Growing.gain()` (remembered, measured when quick, else estimated).
- `warm_background(session)`, `warm_chimes(session)`: noise loops and chimes from the cache folder
  (or made and saved there); noise loops also from `BUILT_FOLDER`, where `build_noise_loops()`
  makes them as the environment is set up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import audio_engine.gain as gain_stage
from audio_engine import (
    assets,
    fsio,
    library,
    loudness,
    render,
    speaking,
    synth,
    timeline,
    tts,
)
from audio_engine.errors import Diagnostic, ScriptError
from audio_engine.model import (
    NO_ORIGIN,
    NOISE_COLORS,
    SAMPLE_RATE,
    Breathe,
    Chime,
    Noise,
    Repeat,
    Session,
    SoundFile,
    Voice,
)
from audio_engine.render import Sources
from audio_engine.speaking import (  # noqa: F401 - under their former names too
    FIT_NEAR_WPM,
    FIT_STEPS,
    check_recordings,
    check_voice_names,
    fit_rates,
)
from audio_engine.speech import apart as speech_apart
from audio_engine.speech import voices as speech_voices
from audio_engine.timeline import Timeline


@dataclass(frozen=True)
class Prepared:
    session: Session
    timeline: Timeline
    sources: Sources
    voice_override: Voice | None = None
    rates: Mapping = field(default_factory=dict)  # `fit_rates`: Slot -> words a minute


def load(arg: str, language: str | None = None, extra_dirs=()) -> Session:
    return library.load(arg, language, extra_dirs)


def prepare(session: Session, voice_override: Voice | None = None, progress=None) -> Prepared:
    speaking.check(session, voice_override)
    # The clips of an engine that loads a model (the neural voice) are made in a process forked
    # for them (`speech.apart`), forked before any helper thread starts; it ends before the gain
    # and the render, and its model with it.
    apart = _speech_apart(session, voice_override)
    # While the speech is made (mostly in other processes), other threads ask the engine what it
    # is (which starts espeak-ng's worker server), make or read the chimes (the timeline needs
    # their lengths). The chimes come after a process apart has ended (the main process then
    # shares less with it); the background's tables after the speech in any case, once the
    # engines have let go of what they loaded (a noise loop made for the first time takes 60 MiB
    # for a moment, beside espeak-ng's fork server and workers or the neural voice).
    work = [(tts.warm, (session.language, speaking.base_voice(session, voice_override)))]
    if apart is None:
        work += [(warm_chimes, (session,))]
    helpers = [
        threading.Thread(target=_quietly, args=(job, *args), daemon=True) for job, args in work
    ]
    try:
        for helper in helpers:
            helper.start()
        lengths_of = None if apart is None else apart.clip_lengths
        lengths, rates = speaking.lengths_and_rates(session, voice_override, progress, lengths_of)
    finally:
        if apart is not None:
            apart.close()
        for helper in helpers:
            if helper.ident is not None:
                helper.join()
    speech_voices.release()  # every clip is in the cache: render without the engines' models
    if apart is not None:
        _quietly(warm_chimes, session)
    _quietly(warm_background, session)  # (a noise loop made for the first time: 60 MiB a moment)
    compiled = timeline.compile(session, lengths, voice_override, rates=rates)
    clips = ClipStore(lengths)
    sources = Sources(speech=clips, sounds=load_sounds(session))
    return Prepared(session, compiled, sources, voice_override, rates)


def _speech_apart(session: Session, voice_override: Voice | None):
    """A process apart for the session's speech (`speech.apart`) where an engine that loads a
    model has clips of it to make (any at all with a rate from the command line: `fit_rates`
    tries other rates), else None."""
    rated = voice_override is not None and voice_override.rate_wpm is not None
    for u in timeline.speech_requests(session, voice_override):
        with contextlib.suppress(tts.TTSError):  # reported where the line is made
            if speech_voices.engine_of(u).in_process and (rated or tts.cached_length(u) is None):
                return speech_apart.start()
    return None


REPUBLISH_S = 0.05  # the timeline is compiled again at most this often as clips arrive
EXACT_BUDGET_S = 0.45  # a cold start measures the gain when that is predicted to take this long
# How long after it was asked for (`Growing`'s `began`) a cold start waits for speech before
# estimating the gain. Counted from the command's start, not from when the script has been read:
# with the neural voice the first clips arrive about then anyway, and the estimate from the first
# one or two of them is as close to the measure as from four (within 0.55 dB on the English
# sessions, where four gave 0.50).
ESTIMATE_WAIT_S = 0.35
ESTIMATE_ENOUGH_CLIPS = 16  # ... unless this many clips are known sooner (then within ~0.2 dB)
SYNTHESIS_S_PER_CLIP = 0.03  # espeak-ng, one worker, this machine's order of magnitude
# The neural voice, in this process, one clip at a time: a clip takes about this long plus this
# much per character of its text (measured here on the built-in lines: 0.013 s + 0.00086 s),
NEURAL_S_PER_CLIP = 0.015
NEURAL_S_PER_CHAR = 0.0009
NEURAL_LOAD_S = 0.25  # ... once its model and pronunciation tables are loaded (from the cache)
MEASURE_REAL_TIME = 550  # the measure's speed, x real time, with room (950x on two idle cores)
DEFAULT_PER_CHAR = 441000  # samples per character x words per minute (~6 characters a word)


class Growing:
    """A session that can start playing while its speech is still being synthesized.

    The clips are synthesized in the order the session speaks them (worker processes, in the
    background) and the timeline is compiled again as their lengths arrive
    (`timeline.compile_partial`). `final_until` is the sample up to which the current `timeline`
    already renders what the complete one will (`render.final_until`); a player renders only
    that far and waits at the edge, which moves ahead much faster than the session plays.

    When every length is known, the timeline is compiled strictly: a line that does not fit its
    time then sets `error` (a `TimingError`, as `prepare` raises it) and playing must stop.
    `began`: when the listener asked for it (`time.monotonic()`; the command's start, for the
    command line), from which `gain` counts its wait; default now.

    Example
    -------
    >>> growing = Growing(session)
    >>> gain = growing.gain()           # cached, measured when cheap, else estimated
    >>> growing.wait(lambda g: g.final_until > 44100)
    >>> prepared = growing.prepared()   # blocks until every clip is known
    """

    def __init__(
        self,
        session: Session,
        voice_override: Voice | None = None,
        jobs=None,
        began: float | None = None,
    ):
        self.session = session
        self.voice_override = voice_override
        self.error: BaseException | None = None
        self._jobs = max(1, jobs or os.cpu_count() or 1)
        self._cond = threading.Condition()
        self._began = time.monotonic() if began is None else min(began, time.monotonic())
        self._closing = False
        self._profiles: dict = {}  # utterance -> its clip's loudness.energy_profile, length
        self._gain_pending = True  # until `gain` has answered (profiles are for its estimate)
        helpers = [
            threading.Thread(target=_quietly, args=(work, *args), daemon=True)
            for work, args in (
                (tts.warm, (session.language, speaking.base_voice(session, voice_override))),
                (warm_background, (session,)),
            )
        ]
        self._helpers = helpers
        self._levels: threading.Thread | None = None
        self._synth: tts.Synthesizer | None = None
        self._follower: threading.Thread | None = None
        self._prepared: Prepared | None = None
        for helper in helpers:
            helper.start()
        try:
            self._start(session, voice_override, jobs)
        except BaseException:
            self.close()
            raise

    def _start(self, session: Session, voice_override: Voice | None, jobs) -> None:
        helpers = self._helpers
        speaking.check(session, voice_override)
        self.rates = fit_rates(session, voice_override)
        self.order = timeline.speech_order(session, voice_override, self.rates)
        lengths: dict = {}
        missing = []
        for u in self.order:
            n = tts.cached_length(u)
            if n is None:
                if not missing:  # the engine loads while the rest is looked up and readied
                    tts.preload(u.language, u.voice)
                missing.append(u)
            else:
                lengths[u] = n
        self.missing_at_start = len(missing)
        self._synthesis_cost_s = synthesis_cost_s(missing, self._jobs)
        self._lengths = lengths
        self.clips = ClipStore(lengths)
        self.sources = Sources(speech=self.clips, sounds=load_sounds(session))
        warm_chimes(session)  # the timeline needs the chimes' lengths
        if missing:
            self._synth = tts.Synthesizer(jobs, keep_clips=False)
            self._synth.request(missing)
        self._publish()
        if not self.complete:  # what only a gain estimate needs, made meanwhile
            tones = {e.tone for e in self.timeline.events if e.tone is not None}
            self._levels = threading.Thread(
                target=_quietly, args=(_warm_levels, session, tones, helpers[1]), daemon=True
            )
            self._levels.start()
            self._follower = threading.Thread(
                target=self._follow, name="relax-growing", daemon=True
            )
            self._follower.start()

    # ---- what a player reads -------------------------------------------------------------------

    @property
    def timeline(self) -> Timeline:
        """The latest timeline (clips not synthesized yet at estimated lengths)."""
        return self._view[0]

    @property
    def final_until(self) -> int:
        return self._view[1]

    def view(self) -> tuple[Timeline, int]:
        """(timeline, final_until) of one moment: read together, they always agree (the two
        properties read one after the other may come from two recompilations)."""
        return self._view

    @property
    def complete(self) -> bool:
        return self._prepared is not None

    def wait(self, ready, timeout: float | None = None) -> bool:
        """Block until `ready(self)` is true, or the session is complete, or it failed."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self.error is not None or self.complete or ready(self), timeout
            )

    def prepared(self) -> Prepared:
        """The complete session (blocks until every clip is known); raises what went wrong."""
        self.wait(lambda g: False)
        if self.error is not None:
            raise self.error
        return self._prepared

    def gain(self, budget_s: float = EXACT_BUDGET_S, wait_s: float = ESTIMATE_WAIT_S) -> float:
        """The loudness gain to play with.

        Remembered in the cache folder (`gain`): that one. Otherwise measured on the complete
        session, as `gain` does, when that is predicted to take under `budget_s` (speech still to
        synthesize and the measuring pass). Else estimated (`gain_stage.estimate_gain`) once every
        clip (or `ESTIMATE_ENOUGH_CLIPS` of them) is known or `wait_s` after this session began,
        whichever is first, the clips known by then standing in for the others (`stand_ins`);
        and remembered, marked as an estimate, until `gain` measures it (an export, or a player
        that measures): from then on players and exports use the measure.
        """
        try:
            return self._gain(budget_s, wait_s)
        finally:
            self._gain_pending = False

    def _gain(self, budget_s: float, wait_s: float) -> float:
        key = _gain_file(self.session, self.voice_override, self.sources)
        known = _read_gain(key)
        if known is not None:
            return known[0]
        cost = self._synthesis_cost_s + self.timeline.duration_s / MEASURE_REAL_TIME
        if cost <= budget_s or self.timeline.total_samples < SAMPLE_RATE * 0.4:
            self._gain_pending = False
            return gain(self.prepared())  # (a loudness estimate needs 400 ms to hear)
        deadline = self._began + wait_s
        enough = min(len(self.order), ESTIMATE_ENOUGH_CLIPS)
        while not self.wait(
            lambda g: len(g._lengths) >= enough, max(0.0, deadline - time.monotonic())
        ):
            if not self.order or self._lengths:
                break
            deadline += 0.05  # the estimate needs one clip to hear the voice in
        if self.error is not None:
            raise self.error
        if self._levels is not None:
            self._levels.join()  # the background's tables and levels: made once, not twice
        with self._cond:
            tl = self._view[0]
            lengths = dict(self._lengths)
        profiles = dict(self._profiles)
        for u in lengths:
            if u not in profiles:
                profiles[u] = self._profile(u)

        speech_energy = stand_ins(tl, {u: profiles[u] for u in lengths})
        value = gain_stage.estimate_gain(tl, self.sources, speech_energy)
        _write_gain(key, value, estimated=True)
        return value

    def close(self) -> None:
        """Stop synthesizing (what is done stays in the cache)."""
        self._closing = True
        if self._synth is not None:
            self._synth.close()
        if self._follower is not None and self._follower is not threading.current_thread():
            self._follower.join()
        for helper in [*self._helpers, self._levels]:
            if helper is not None:
                helper.join()

    # ---- internals -----------------------------------------------------------------------------

    def _estimate_length(self, utterance) -> int:
        return estimate_length(utterance, self._lengths)

    def _profile(self, utterance):
        clip = self.clips[utterance]
        return loudness.energy_profile(clip, SAMPLE_RATE), len(clip)

    def _publish(self) -> None:  # with the lock held, or before the follower starts
        if len(self._lengths) < len(self.order):
            partial = timeline.compile_partial(
                self.session,
                self._lengths,
                self._estimate_length,
                self.voice_override,
                self.rates,
            )
            self._view = (partial.timeline, render.final_until(partial))
        else:
            for helper in self._helpers:
                helper.join()
            compiled = timeline.compile(
                self.session, self._lengths, self.voice_override, rates=self.rates
            )
            self._prepared = Prepared(
                self.session, compiled, self.sources, self.voice_override, self.rates
            )
            self._view = (compiled, compiled.total_samples)

    def _follow(self) -> None:
        synth = self._synth
        try:
            done = 0
            published = 0.0
            pending = False  # lengths known but not yet in the published timeline
            while True:
                # Wakes for a new clip, or after REPUBLISH_S to publish what the throttle held.
                done = synth.wait_finished(done, REPUBLISH_S if pending else None)
                if self._closing:
                    return
                new = {u: n for u, n in synth.results().items() if u not in self._lengths}
                for u, n in new.items():
                    self.clips.add(u, n)
                    if self._gain_pending:  # ready for a gain estimate, if there is to be one
                        self._profiles[u] = self._profile(u)
                with self._cond:
                    self._lengths.update(new)
                    pending = pending or bool(new)
                    last = len(self._lengths) == len(self.order)
                    if pending and (last or time.monotonic() - published >= REPUBLISH_S):
                        self._publish()
                        published = time.monotonic()
                        pending = False
                        self._cond.notify_all()
                    if self._prepared is not None:
                        return
        except BaseException as exc:  # noqa: BLE001 - handed to the player
            with self._cond:
                self.error = exc
                self._cond.notify_all()
        finally:
            synth.close()


def synthesis_cost_s(utterances, jobs: int) -> float:
    """About how long synthesizing `utterances` takes here: espeak-ng's clips on `jobs` worker
    processes (two cores' worth at most); the neural voice's one after the other in this
    process, each by the length of its text, after its model has loaded (`NEURAL_LOAD_S`,
    unless it is loaded already)."""
    utterances = list(utterances)
    engines = {u: speech_voices.engine_of(u) for u in utterances}
    neural = [u for u in utterances if engines[u].in_process]
    espeak = len(utterances) - len(neural)
    cost = espeak * SYNTHESIS_S_PER_CLIP / min(max(1, jobs), 2)
    if neural:
        cost += sum(NEURAL_S_PER_CLIP + NEURAL_S_PER_CHAR * len(u.text) for u in neural)
        loaded = all(engines[u].loaded() for u in neural)
        cost += 0.0 if loaded else NEURAL_LOAD_S
    return cost


def estimate_length(utterance, known: Mapping) -> int:
    """A clip's length in samples before it exists, from the clips `known` (utterance -> length):
    their samples per character at their rate (plus a word's worth per line, as a number like
    "2" is spoken as a word), at this line's rate."""
    if known:
        per_char = sum(n * u.voice.rate_wpm for u, n in known.items())
        per_char /= sum(len(u.text) + 6 for u in known)
    else:
        per_char = DEFAULT_PER_CHAR
    return max(1, int(per_char * (len(utterance.text) + 6) / max(1, utterance.voice.rate_wpm)))


def stand_ins(tl: Timeline, profiles: dict):
    """`speech_energy` for `gain_stage.estimate_gain`: the known clips' energy profiles, and for a line
    not synthesized yet a stand-in from the known clips in the same voice (engine, name and rate;
    else the same engine and name; else all), each taken at volume 1 (energy / volume²), times
    the line's own volume². Pooled, because single lines differ by a few dB.

    espeak-ng: a steady stand-in over the longest line's length at the pool's mean energy per
    sample. Tried on the built-in sessions with the first 4, 8, 12 and 16 clips known: within
    0.64, 0.37, 0.23 and 0.18 dB of the measure (a stand-in shaped like the nearest known clip,
    or clips made early from all over the session, did worse). The neural voice: the pool's
    clips end to end (their energy over time, so its pauses and louder words are gated as the
    real lines' are): with the first 4, 8 and 16 clips known within 0.44, 0.41 and 0.17 dB of
    the measure on the English sessions, where the steady stand-in was off by up to 0.83, 0.65
    and 0.31 dB (it has no quiet stretches for the loudness gate to leave out)."""
    pools: dict = {}
    for u, (profile, n) in profiles.items():
        volume = 1.0 if u.voice.volume is None else u.voice.volume
        if volume <= 0:
            continue  # a silent line says nothing about the voice's level
        engine = speech_voices.engine_of(u)
        for key in ((engine, u.voice.name, u.voice.rate_wpm), (engine, u.voice.name), ()):
            pools.setdefault(key, []).append((profile / volume**2, n))
    longest = max((e.duration_samples for e in tl.transcript()), default=1)
    grid = np.arange(-(-longest // loudness.ENERGY_HOP) + 1) * loudness.ENERGY_HOP
    ramp = np.minimum(grid, longest).astype(np.float64)
    made: dict = {}

    def speech_energy(utterance):
        found = profiles.get(utterance)
        if found is not None:
            return found
        voice = utterance.voice
        engine = speech_voices.engine_of(utterance)
        key = (engine, voice.name, voice.rate_wpm, voice.volume)
        if key not in made:
            pieces = []
            for pool in ((engine, voice.name, voice.rate_wpm), (engine, voice.name), ()):
                if pools.get(pool):
                    pieces = pools[pool]
                    break
            volume = 1.0 if voice.volume is None else voice.volume
            if engine.pauses_in_lines and pieces:
                profile, length = _joined_profile(pieces)
                made[key] = profile * volume**2, length
            else:
                energy = sum(p[-1] for p, _ in pieces)
                density = energy / max(1, sum(n for _, n in pieces)) if pieces else 0.0
                made[key] = ramp * (density * volume**2), max(1, longest)
        return made[key]

    return speech_energy


def _joined_profile(pieces):
    """The energy profile (`loudness.energy_profile`) of clips played end to end, from theirs."""
    hop = loudness.ENERGY_HOP
    total = sum(n for _, n in pieces)
    grid = np.minimum(np.arange(-(-total // hop) + 1) * hop, total)
    offsets = np.cumsum([0] + [n for _, n in pieces])
    before = np.cumsum([0.0] + [p[-1] for p, _ in pieces])
    which = np.minimum(np.searchsorted(offsets, grid, side="right") - 1, len(pieces) - 1)
    out = np.empty(len(grid))
    for j, (profile, n) in enumerate(pieces):
        here = which == j
        out[here] = before[j] + loudness.energy_between(profile, n, grid[here] - offsets[j], hop)
    return out, max(1, total)


def _warm_levels(session: Session, tones, background: threading.Thread) -> None:
    # For a gain estimate: the guide tones' profiles, and the background layers' levels once
    # their tables are ready.
    for spec in tones:
        gain_stage.tone_profile(spec)
    background.join()
    for layer in session.background:
        if not isinstance(layer, SoundFile):
            gain_stage.layer_level(layer)


def load_sounds(session: Session) -> dict[Path, np.ndarray]:
    """The session's background sound files, decoded; `ScriptError` at the `file:` of any that
    exists but cannot be played."""
    return load_sound_layers(session.background)


def load_sound_layers(layers) -> dict[Path, np.ndarray]:
    """The files of these sound layers (other layers are passed over), decoded; `ScriptError`
    at the `file:` of any that exists but cannot be played."""
    sounds = {}
    problems = []
    for layer in layers:
        if isinstance(layer, SoundFile):
            try:
                sounds[layer.path] = assets.load_sound(layer.path)
            except assets.AssetError as exc:
                if layer.origin == NO_ORIGIN:
                    raise
                where = layer.origin
                message = str(exc).removeprefix(f"{layer.path}: ")
                problems.append(Diagnostic(where.file, where.line, where.col, where.path, message))
    if problems:  # a file that is there but cannot be played: at its place in the script
        raise ScriptError(problems)
    return sounds


def _quietly(work, *args) -> None:
    # A helper only gets ahead of the work: what fails here is done again, and reported, by the
    # caller's own request.
    with contextlib.suppress(Exception):
        work(*args)


# Generated tables kept in the cache folder: magic, CRC-32 of the payload, little-endian float32.
_NOISE_MAGIC = b"RELAXNL1"
_CHIME_MAGIC = b"RELAXCH1"


def _table_file(kind: str, name: str, version: int) -> Path:
    return tts.cache_root() / kind / f"{name}-v{version}-numpy{np.__version__}.f32"


def _noise_file(color: str) -> Path:
    return _table_file("noise", color, synth.NOISE_LOOP_VERSION)


# What the environment's setup makes ahead (scripts/_bootstrap.sh), beside the installed packages
# as the neural voice's pronunciation tables: the noise loops (`build_noise_loops`).
BUILT_FOLDER = Path(sys.prefix) / "share" / "relax"


def _built_noise_file(color: str) -> Path:
    return BUILT_FOLDER / _noise_file(color).relative_to(tts.cache_root())


def build_noise_loops() -> list[Path]:
    """Make every colour's noise loop in `BUILT_FOLDER`, as the environment is set up, so that
    even a first run reads its loop (10 ms) instead of making it (0.15-0.2 s of a core, beside the
    speech engine's loading and the first line); the loops there, none where it cannot be
    written."""
    made = []
    for color in NOISE_COLORS:
        path = _built_noise_file(color)
        if _read_table(path, _NOISE_MAGIC) is None:
            _write_table(path, _NOISE_MAGIC, synth.noise_loop(color))
        if _read_table(path, _NOISE_MAGIC) is not None:
            made.append(path)
    return made


_TABLE_LIMIT = 64 << 20  # bytes: a noise loop is 16 MiB, a chime far less


def _read_table(path: Path, magic: bytes) -> np.ndarray | None:
    """The float32 table saved at `path`, or None when it is missing, short or damaged."""
    try:
        with fsio.open_checked(path) as f:  # (a FIFO or a device in its place: made again)
            head = f.read(12)
            size = os.fstat(f.fileno()).st_size - 12
            if len(head) != 12 or head[:8] != magic or size <= 0 or size % 4:
                return None
            if size > _TABLE_LIMIT:
                return None
            table = np.empty(size // 4, dtype="<f4")
            if f.readinto(memoryview(table).cast("B")) != size:
                return None
    except (OSError, fsio.FsError):
        return None
    if zlib.crc32(table) != int.from_bytes(head[8:], "little"):
        return None
    return table


def _write_table(path: Path, magic: bytes, table: np.ndarray) -> None:
    """Save `table` at `path` (whole or not at all, nothing left behind on a full disk; a cache
    that cannot be written is only slower). Not synced: a read checks the CRC."""
    payload = np.ascontiguousarray(table, dtype="<f4")

    def write(f) -> None:
        f.write(magic + zlib.crc32(payload).to_bytes(4, "little"))
        f.write(memoryview(payload).cast("B"))

    with contextlib.suppress(fsio.FsError):
        fsio.atomic_write(path, write, fsync=False)


def _chime_names(steps) -> set[str]:
    names: set[str] = set()
    for step in steps:
        if isinstance(step, Chime):
            names.add(step.name)
        elif isinstance(step, Breathe) and step.chime_on_phase:
            names.add(step.chime_on_phase)
        elif isinstance(step, Repeat):
            names |= _chime_names(step.steps)
    return names


def warm_chimes(session: Session) -> None:
    """Ready the session's chimes: from the cache folder, made and saved there otherwise."""
    for name in sorted(_chime_names(session.steps) & set(synth.CHIME_NAMES)):
        path = _table_file("chime", name, synth.CHIME_VERSION)
        unit = _read_table(path, _CHIME_MAGIC)
        if unit is not None:
            try:
                synth.install_chime(name, unit)
                continue
            except ValueError:
                pass
        _write_table(path, _CHIME_MAGIC, synth.unit_chime(name))


def warm_background(session: Session) -> None:
    """Ready every background generator: noise loops from the cache folder, made once otherwise."""
    for layer in session.background:
        if isinstance(layer, Noise):
            path = _noise_file(layer.color)
            loop = _read_table(_built_noise_file(layer.color), _NOISE_MAGIC)
            if loop is None:
                loop = _read_table(path, _NOISE_MAGIC)
            if loop is not None:
                try:
                    synth.install_noise_loop(layer.color, loop.reshape(-1, 2))
                    continue
                except ValueError:
                    pass
            _write_table(path, _NOISE_MAGIC, synth.noise_loop(layer.color))
        elif not isinstance(layer, SoundFile):
            synth.layer_block(layer, 0, 1)


class ClipStore(Mapping):
    """Speech clips by utterance, read from the speech cache when first needed.

    Only the most recently used clips stay in memory, so memory does not grow with the amount of
    speech in a session. A clip that has gone from the cache is synthesized again (the same bytes:
    a clip depends only on its key).
    """

    def __init__(self, lengths: dict, keep: int = 12):
        self._lengths = dict(lengths)
        self._recent: OrderedDict = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()

    def __getitem__(self, utterance) -> np.ndarray:
        with self._lock:
            clip = self._recent.get(utterance)
            if clip is not None:
                self._recent.move_to_end(utterance)
                return clip
        if utterance not in self._lengths:
            raise KeyError(utterance)
        clip = tts.cached(utterance)
        if clip is None:
            clip = tts.synthesize(utterance)
        clip.setflags(write=False)
        with self._lock:
            self._recent[utterance] = clip
            while len(self._recent) > self._keep:
                self._recent.popitem(last=False)
        return clip

    def __iter__(self):
        return iter(list(self._lengths))

    def __len__(self) -> int:
        return len(self._lengths)

    def add(self, utterance, length: int) -> None:
        """Another clip now in the cache (a `Growing` session's)."""
        with self._lock:
            self._lengths[utterance] = length

    def length(self, utterance) -> int:
        return self._lengths[utterance]

    def lean(self, keep: int = 2) -> ClipStore:
        """The same clips, at most `keep` of them in memory: for the gain measure's workers,
        which each read a line once or twice (every clip a worker keeps is its own copy)."""
        return ClipStore(self._lengths, keep)


ESTIMATE_ERROR_DB = 0.5  # a cold start's gain estimate is this close to the measure (tested)
GAIN_VERSION = 6  # bump when what the gain is measured on changes (5: the limiter's share weighed;
# 6: a target out of the ceiling's reach stops the gain)
GAIN_RANGE = (1e-4, 1e4)  # a kept gain outside this (+-80 dB) is not one relax measured


def gain(prepared: Prepared, progress=None, lossy_quality: float | None = None) -> float:
    """The session's loudness gain; measured on first use and kept in the cache folder.

    The key covers everything the sound is made of: the script, a voice override, the sound
    files, the speech engine's version and the synthesizers' versions. `progress(done, total)`
    follows the measuring pass (in samples) when there is one. `lossy_quality`: the gain for an
    MP3 or OGG file at that quality, whose encoder is given a lower ceiling
    (`render.lossy_ceiling`); None: the gain the player and WAV and FLAC files use.

    One measuring pass gives the gain for the player's ceiling, the lossy ceiling at the default
    quality and the one asked for (`gain.measure_gains`), and all are kept: an export to another
    format does not measure again.

    What this returns is always the measure, so an export is a pure function of script, voice
    and versions. A gain that a player only estimated to start a session at once
    (`Growing.gain`) is measured here and replaced by the measure; players that start later read
    the measure too. A kept gain that fails its check (`_read_gain`) is measured again.
    """
    wanted = _ceiling_of(lossy_quality)
    path = _gain_file(prepared.session, prepared.voice_override, prepared.sources, wanted)
    known = _read_gain(path)
    if known is not None and not known[1]:
        return known[0]
    ceilings = [wanted, render.LIMIT_DBTP, render.lossy_ceiling(render.DEFAULT_LOSSY_QUALITY)]
    values = gain_stage.measure_gains(prepared.timeline, prepared.sources, ceilings, progress)
    for ceiling, value in values.items():
        where = _gain_file(prepared.session, prepared.voice_override, prepared.sources, ceiling)
        _write_gain(where, value, estimated=False)
    return values[wanted]


def _ceiling_of(lossy_quality: float | None) -> float:
    if lossy_quality is None:
        return render.LIMIT_DBTP
    return render.lossy_ceiling(float(lossy_quality))


def _gain_file(
    session: Session,
    voice_override: Voice | None,
    sources: Sources,
    ceiling_dbtp: float = render.LIMIT_DBTP,
) -> Path:
    files = []
    for path in sorted(sources.sounds):
        try:
            stat = Path(path).stat()
            files.append((str(path), stat.st_size, stat.st_mtime_ns))
        except OSError:
            files.append((str(path), None, None))
    what = (
        _content(session),
        voice_override,
        files,
        tts.engine_versions(timeline.speech_requests(session, voice_override)),
        gain_stage.TARGET_LUFS,
        synth.CHIME_VERSION,
        synth.NOISE_LOOP_VERSION,
        GAIN_VERSION,
        ("ceiling", round(float(ceiling_dbtp), 6)),
    )
    key = hashlib.sha256(repr(what).encode()).hexdigest()
    return tts.cache_root() / "gain" / f"{key}.json"


def _content(session: Session):
    """What a session is made of, whatever path it was loaded by: the script file's bytes and
    real path (every origin in the model spells the path as it was typed), else the model."""
    if session.source is not None:
        try:
            data = Path(session.source).read_bytes()
            return (hashlib.sha256(data).hexdigest(), str(Path(session.source).resolve()))
        except OSError:
            pass
    return session


def _gain_check(path: Path, value: float, estimated: bool) -> str:
    # Ties the value to its file's key: a value copied from another session's file, or typed in,
    # does not pass.
    return hashlib.sha256(f"{path.stem}:{value!r}:{estimated}".encode()).hexdigest()


def _read_gain(path: Path) -> tuple[float, bool] | None:
    """(gain, estimated) from the cache folder, or None when it is missing or fails its check
    (its checksum, a gain in `GAIN_RANGE`): the caller measures again and replaces it."""
    try:
        data = json.loads(fsio.read_checked(path, 4096, follow=False))
        value = float(data["gain"])
        estimated = data["estimated"]
        check = data["check"]
    except (fsio.FsError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(estimated, bool) or not np.isfinite(value):
        return None
    if not GAIN_RANGE[0] <= value <= GAIN_RANGE[1]:
        return None
    if check != _gain_check(path, value, estimated):
        return None
    return value, estimated


def _write_gain(path: Path, value: float, *, estimated: bool) -> None:
    check = _gain_check(path, value, estimated)
    data = json.dumps({"gain": value, "estimated": estimated, "check": check}).encode()
    with contextlib.suppress(fsio.FsError):  # a cache that cannot be written is only slower
        fsio.atomic_write(path, data, fsync=False)  # not synced: a read checks it
