"""A session's clips made by the engines that load a model (`Engine.in_process`: the neural
voice) in a process forked for them, which ends when the session's speech is made.

The model, onnxruntime's library and what the C heap keeps of them then leave with that process:
the gain measure and the render that follow run in a process as lean as a warm export's, and the
pages of Python and numpy the two processes share are counted once, not twice (docs/design.md,
"Measured"). The clips come back through the clip cache (the child stores them; their lengths come
back through a pipe).

- `start()`: an `Apart` (Linux, where the process could be forked), else None: the clips are then
  made in this process as before.
- `Apart.clip_lengths(utterances, progress=None)`: as `synthesizer.clip_lengths`, the in-process
  engines' missing clips made in the forked process, the others here at the same time.
- `Apart.close()`: the process lets its engines go (a first load's pronunciation tables are saved
  then) and ends; waited for. After a failure or a Ctrl-C it is stopped first.

Fork it while this process runs no other thread (`pipeline.prepare` does so before its helpers
start): a lock another thread held would stay held in the child. The child ignores Ctrl-C (the
terminal sends it to both): this process stops it, its clip in flight finished and stored whole.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable

from audio_engine import model
from audio_engine.errors import RelaxError, TTSError
from audio_engine.speech import cache, neural, synthesizer, voices

# Clips made at once in the process apart: one. Two at once (the two cores' worth) made the speech
# about twice as fast, but each line in the making takes 25-45 MiB (the model's run, then the
# vocoder), and two of those beside the loaded model passed 150 MiB over all of relax's processes.
JOBS = 1
STOP_WAIT_S = 30.0  # a stopped child finishes its clip in flight within this, else it is killed


class _Stopped(Exception):
    """The child was asked to stop (SIGTERM from the parent)."""


def start() -> Apart | None:
    """A forked process for the in-process engines' clips, or None where there cannot be one."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return None
    try:
        return Apart()
    except OSError:
        return None


class Apart:
    """A forked process that makes the clips of the engines that load a model; see the module."""

    def __init__(self):
        from multiprocessing.connection import Pipe

        ours, theirs = Pipe(duplex=True)
        # What this process no longer uses is given back first, not shared with the child: the
        # main process then takes 26-29 MiB beside it, not 30-38.
        gc.collect()
        neural.give_back_memory()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: serve until the parent closes its end
            ours.close()
            _serve(theirs, parent)  # never returns
        theirs.close()
        self.pid = pid
        self._conn = ours
        self._busy = False  # a request sent, its answer not read

    def clip_lengths(
        self,
        utterances: Iterable[model.Utterance],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[model.Utterance, int]:
        """Every clip's length in samples, synthesizing (into the cache) what is missing: the
        clips of in-process engines in the forked process, the others here meanwhile."""
        wanted = list(dict.fromkeys(utterances))
        voices.check_all(wanted)
        voices.warn_fallbacks(wanted)
        away = [u for u in wanted if _made_apart(u)]
        if not away:
            return synthesizer.clip_lengths(wanted, progress=progress)
        total = len(wanted)
        self._send(away)
        moved = set(away)
        here = [u for u in wanted if u not in moved]

        def here_progress(done: int, _total: int) -> None:
            if progress is not None:
                progress(done, total)

        lengths = synthesizer.clip_lengths(here, progress=here_progress) if here else {}
        lengths.update(self._answer(len(here), total, progress))
        return {u: lengths[u] for u in wanted}

    def close(self) -> None:
        """End the process (stopping it first when it is still making clips) and wait for it."""
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        if self._busy:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        self._conn.close()  # the child's next read ends: it lets its engines go and exits
        deadline = time.monotonic() + STOP_WAIT_S
        while True:
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return
            if done:
                return
            if time.monotonic() > deadline:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.005)

    def __enter__(self) -> Apart:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _send(self, utterances: list[model.Utterance]) -> None:
        if self.pid is None:
            raise TTSError("the speech process has ended")
        try:
            self._conn.send(utterances)
        except OSError as exc:
            raise self._ended() from exc
        self._busy = True

    def _answer(self, before: int, total: int, progress) -> dict[model.Utterance, int]:
        while True:
            try:
                kind, *what = self._conn.recv()
            except (EOFError, OSError) as exc:
                raise self._ended() from exc
            if kind == "progress":
                if progress is not None:
                    progress(before + what[0], total)
                continue
            self._busy = False
            if kind == "lengths":
                lengths, kept, said = what
                if kept or said:  # clips the folder had no room for
                    cache.adopt(kept, said)
                return lengths
            raise what[0]

    def _ended(self) -> TTSError:
        return TTSError(
            "the process making the speech ended unexpectedly; run the command again, or use "
            "`--engine espeak`"
        )


def _made_apart(utterance: model.Utterance) -> bool:
    """Whether `utterance`'s clip is still to be made, by an engine that loads a model."""
    try:
        engine = voices.engine_of(utterance)
        return engine.in_process and synthesizer.cached_length(utterance) is None
    except TTSError:
        return False  # its error comes from the synthesis here, as without a process apart


def _serve(conn, parent: int) -> None:
    """The child: answer requests (lists of utterances) until the parent closes its end."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it

        def stop(_signum, _frame):
            raise _Stopped

        signal.signal(signal.SIGTERM, stop)
        _end_with_parent()
        if os.getppid() != parent:  # it died before that was set
            raise _Stopped
        sent: set = set()  # clips kept in memory and handed over already
        while True:
            try:
                request = conn.recv()
            except EOFError:
                break

            def progress(done: int, _total: int) -> None:
                conn.send(("progress", done))

            try:
                lengths = synthesizer.clip_lengths(
                    request, progress=progress, warn=False, jobs=JOBS
                )
                # Clips the cache folder had no room for come back with their lengths.
                kept, said = cache.kept_in_memory()
                answer = ("lengths", lengths, {p: kept[p] for p in kept if p not in sent}, said)
                sent.update(kept)
            except RelaxError as exc:
                answer = ("error", _portable(exc))
            conn.send(answer)
    except _Stopped:
        code = 130
    except BaseException:  # noqa: BLE001 - the parent reports the ended process
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            voices.release()  # a first load's tables are saved
            sys.stderr.flush()
        os._exit(code)


PR_SET_PDEATHSIG = 1  # prctl(2)


def _end_with_parent() -> None:
    """Be stopped (SIGTERM) when the parent dies (killed outright, it cannot stop this)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _portable(exc: RelaxError) -> RelaxError:
    """`exc` as it can cross the pipe (its type where that pickles, else a `TTSError`)."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - anything that does not pickle
        return TTSError(str(exc))
