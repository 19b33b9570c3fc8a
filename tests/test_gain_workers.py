"""The loudness measure's forked workers (`gain._map`): the same results as one process, and an
error, a worker that dies or Ctrl-C ends them all at once, leaving no process behind and no
wait. Run in a fresh Python each: the workers are forked only where there is a single thread."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

HEAD = """
import multiprocessing, os, sys, threading
import numpy as np
from audio_engine import gain
assert threading.active_count() == 1 and gain._can_fork()
parent = os.getpid()

def big(i):  # results large enough to be mid-send when the parent stops
    return np.full(1 << 18, i, dtype=np.float64)
"""


def _run(body: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", HEAD + textwrap.dedent(body)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_forked_workers_give_what_one_process_gives():
    done = _run("""
        got = {}
        gain._map(lambda i: i * i, 50, 2, lambda i, v: got.__setitem__(i, (os.getpid(), v)))
        assert {i: v for i, (_, v) in got.items()} == {i: i * i for i in range(50)}
        assert {pid for pid, _ in got.values()} == {parent}  # handed to the calling process
        assert multiprocessing.active_children() == []
        print("ok")
    """)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_ctrl_c_while_workers_send_ends_them_at_once():
    # Ctrl-C in the parent while both workers are sending large results, many times over: with
    # a shared result queue a worker ended mid-send left its lock held, and the end waited for
    # ever.
    done = _run("""
        for attempt in range(20):
            def stop(i, v):
                raise KeyboardInterrupt
            try:
                gain._map(big, 40, 2, stop)
            except KeyboardInterrupt:
                pass
            else:
                raise AssertionError("not interrupted")
            assert multiprocessing.active_children() == []
        print("ok")
    """)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_a_worker_that_dies_is_an_error_not_a_wait():
    done = _run("""
        def task(i):
            if i == 3:
                os._exit(9)
            return i
        try:
            gain._map(task, 20, 2, lambda i, v: None)
        except RuntimeError as exc:
            print(exc)
        assert multiprocessing.active_children() == []
    """)
    assert done.returncode == 0, done.stderr
    assert "ended unexpectedly (exit status 9)" in done.stdout


def test_an_error_in_a_task_is_raised_in_the_parent():
    done = _run("""
        def task(i):
            if i == 5:
                raise ValueError("piece 5 failed")
            return i
        try:
            gain._map(task, 20, 2, lambda i, v: None)
        except ValueError as exc:
            print(exc)
        assert multiprocessing.active_children() == []
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "piece 5 failed"
