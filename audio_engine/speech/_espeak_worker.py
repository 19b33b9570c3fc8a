"""Runs pyttsx3 in a fresh engine state: `python -m audio_engine.speech._espeak_worker [--serve]`.

`audio_engine.speech.espeak` needs every clip made from a fresh engine state (espeak-ng's output for a text
depends on what the same process synthesized before). Two ways to get one:

- Without arguments: one request, one process. Reads one JSON request on stdin and exits.
- `--serve` (POSIX, the fast path): a fork server. It imports pyttsx3 and loads the espeak-ng
  library once but never initializes espeak (a child forked after espeak was initialized hangs,
  pyttsx3 issue #131); each request is then run in a child forked from it, which initializes espeak
  fresh, handles that one request and exits. The child starts in the same state as a fresh
  process, without paying for the interpreter start and the imports. After loading, the server
  writes one line `{"ready": true}` on stdout; then, per request line on stdin, one reply line
  `{"rc": exit code, "output": the child's stdout and stderr, "timed_out": bool}`. The child is
  killed after the request's `timeout_s`; it dies with the server (Linux: parent-death signal).
  Every worker also ends itself (SIGALRM) `grace_s` (default 5) seconds after its request's
  `timeout_s`.
  The server ignores SIGINT (its parent stops it) and exits at the end of its stdin, at once
  (killing a running child) when that comes while a child runs.

Requests:

- `{"op": "synth", "text": ..., "voice_id": ..., "rate_wpm": ..., "out": PATH, "attempt": N,
  "timeout_s": S}` writes the driver's audio file to PATH (whatever format the driver writes; the
  parent reads the header) and exits 0.
- `{"op": "info"}` prints one line `RELAX-TTS-INFO: {json}` with the engine version and the voices.

Only the standard library and pyttsx3 are imported here, to keep start-up short. Anything the driver
prints goes to this process's stdout, which the parent captures (the server's children write to a
pipe of the server, never to the reply channel). Errors: a message on stderr and exit code 1.

Environment: `RELAX_ESPEAK=system` uses the system's libespeak-ng instead of the one in the
`espeakng-loader` wheel (Linux). `RELAX_TTS_FAULT` is a test hook (a request's `fault` field
overrides it): `empty-first` makes attempt 0 write a WAV with no frames (the failure seen with
pyttsx3 on one machine), `empty-always` makes every attempt do so, `hang` makes the worker sleep
(for the timeout).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import platform
import select
import signal
import sys
import time
import traceback
import wave

INFO_PREFIX = "RELAX-TTS-INFO: "


def _load_espeak() -> str:
    """On Linux, make pyttsx3's espeak driver find espeak-ng; return a description of which."""
    if platform.system() != "Linux":
        return ""
    if os.environ.get("RELAX_ESPEAK", "").lower() == "system":
        return "system"
    import espeakng_loader

    # pyttsx3 looks the library up by a fixed list of names; a library already loaded globally
    # under the same soname satisfies that lookup.
    ctypes.CDLL(espeakng_loader.get_library_path(), mode=os.RTLD_GLOBAL)
    os.environ["ESPEAK_DATA_PATH"] = espeakng_loader.get_data_path()
    return "espeakng-loader"


def _engine():
    import pyttsx3

    try:
        return pyttsx3.init()
    except Exception as exc:  # the driver raises anything from OSError to RuntimeError
        raise SystemExit(_fail(f"pyttsx3: {exc}")) from exc


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


def _espeak_languages(voice) -> list[tuple[str, int]]:
    """Every (language, priority) of an espeak voice (pyttsx3 reports only the first language).

    The priority is espeak's: lower means the voice is a better choice for that language.
    """
    from pyttsx3.drivers import _espeak

    addr = ctypes.c_void_p.from_address(ctypes.addressof(voice) + _espeak.VOICE.languages.offset)
    pointer = addr.value
    found: list[tuple[str, int]] = []
    while pointer:
        priority = ctypes.c_ubyte.from_address(pointer).value
        if priority == 0:
            break
        tag = ctypes.string_at(pointer + 1)
        found.append((tag.decode("utf-8", errors="replace"), priority))
        pointer += 2 + len(tag)
    return found


def _info(source: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    engine = _engine()
    driver = type(engine.proxy._driver).__module__.rsplit(".", 1)[-1]
    parts = [f"pyttsx3 {version('pyttsx3')}", f"driver {driver}"]
    extra_languages: dict[str, list[tuple[str, int]]] = {}
    if driver == "espeak":
        from pyttsx3.drivers import _espeak

        parts.append(f"espeak-ng {_espeak.Info(None).decode()}")
        if source == "espeakng-loader":
            with contextlib.suppress(PackageNotFoundError):
                parts.append(f"espeakng-loader {version('espeakng-loader')}")
        else:
            parts.append(source)
        for v in _espeak.ListVoices(None):
            extra_languages[v.identifier.decode("utf-8").lower()] = _espeak_languages(v)
    else:
        parts.append(f"{platform.system()} {platform.release()}")
    voices = []
    for v in engine.getProperty("voices"):
        languages = [str(x) for x in (getattr(v, "languages", None) or [])]
        priorities = list(range(1, len(languages) + 1))  # other drivers: in the order given
        if str(v.id) in extra_languages:
            languages = [tag for tag, _ in extra_languages[str(v.id)]]
            priorities = [priority for _, priority in extra_languages[str(v.id)]]
        voices.append(
            {
                "id": str(v.id),
                "name": str(v.name or v.id),
                "languages": languages,
                "priorities": priorities,
            }
        )
    return {"engine": "; ".join(parts), "voices": voices}


def _write_empty_wav(path: str) -> None:
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(22050)
        f.writeframes(b"")


def _synth(request: dict) -> None:
    fault = request.get("fault", os.environ.get("RELAX_TTS_FAULT", ""))
    if fault == "empty-always" or (fault == "empty-first" and request.get("attempt") == 0):
        _write_empty_wav(request["out"])
        return
    if fault == "hang":
        time.sleep(3600)
    engine = _engine()
    _set_properties(engine, request)
    # One save_to_file per runAndWait: only the last queued command would be synthesized.
    engine.save_to_file(request["text"], request["out"])
    engine.runAndWait()
    _wait_for_espeak(engine)


def _set_properties(engine, request: dict) -> None:
    """Voice, rate and full volume (the parent applies the volume as an exact gain).

    With espeak, the driver's `stop()` is switched off first. `runAndWait` calls it right after
    the queued property changes, and when espeak's own thread is still busy applying the rate and
    volume (its commands run asynchronously), `stop()` cancels espeak's queue: the clip then comes
    out at the driver's default 200 wpm. Seen in 2-3 % of clips made right after start-up. Nothing
    here ever needs to stop speech.
    """
    driver = engine.proxy._driver
    if type(driver).__module__.rsplit(".", 1)[-1] == "espeak":
        driver.stop = lambda: None
    if request.get("voice_id"):
        engine.setProperty("voice", request["voice_id"])
    engine.setProperty("rate", int(request["rate_wpm"]))
    engine.setProperty("volume", 1.0)


def _wait_for_espeak(engine) -> None:
    """Wait until espeak has finished and the driver has written its file.

    With espeak, `runAndWait` returns about 10 ms after starting the synthesis, which then runs on
    espeak's own thread: a long text would be cut off by this process exiting, and no file written.
    The parent's timeout bounds this wait.
    """
    driver = engine.proxy._driver
    if type(driver).__module__.rsplit(".", 1)[-1] != "espeak":
        return
    from pyttsx3.drivers import _espeak

    _espeak.Synchronize()
    while getattr(driver, "_speaking", False):
        time.sleep(0.002)


def _handle(request: dict, source: str) -> int:
    if request["op"] == "info":
        print(INFO_PREFIX + json.dumps(_info(source)), flush=True)
        return 0
    if request["op"] == "synth":
        _synth(request)
        return 0
    return _fail(f"unknown request {request['op']!r}")


def _preload() -> None:
    """Import what a request needs and load the library, without initializing espeak."""
    # Not importlib.metadata: it costs up to 50 ms and only the rare "info" request needs it.
    import wave  # noqa: F401  (the driver writes its file with it)

    import pyttsx3
    import pyttsx3.driver  # noqa: F401

    if platform.system() == "Linux":
        # Importing the driver loads libespeak-ng (dlopen); only `init()` initializes it.
        import pyttsx3.drivers.espeak  # noqa: F401
    del pyttsx3


def _die_with_parent(server_pid: int) -> None:
    """Linux: have the kernel kill this child when the server dies, however it dies."""
    if platform.system() != "Linux":
        return
    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != server_pid:  # the server died before the signal was armed
        os._exit(1)


def _limit_lifetime(request: dict) -> None:
    """Die a few seconds after the request's timeout, whoever is (no longer) watching.

    The backstop for a worker whose parent is gone: the driver's callback then fails on the
    closed pipe before it marks the synthesis finished, and `_wait_for_espeak` would wait forever.
    """
    if hasattr(signal, "alarm"):  # POSIX; the default action of SIGALRM ends the process
        timeout_s = float(request.get("timeout_s", 30.0))
        signal.alarm(math.ceil(timeout_s + float(request.get("grace_s", 5.0))))


def _child(request: dict, source: str, out_fd: int, server_pid: int) -> None:
    """In a forked child: run one request with stdout and stderr on `out_fd`; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _die_with_parent(server_pid)
        _limit_lifetime(request)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(devnull)
        os.close(out_fd)
        code = _handle(request, source)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001  (report anything, then exit: never return to the loop)
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _collect(fd: int, timeout_s: float) -> tuple[bytes, str]:
    """Everything written to `fd` until its writers close it, and how it ended.

    "done": the child closed it (exited); "timeout": `timeout_s` passed first; "orphaned": stdin
    became readable meanwhile, which in this protocol means the parent is gone (end of file).
    """
    deadline = time.monotonic() + timeout_s
    stdin_fd = sys.stdin.fileno()
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"".join(chunks), "timeout"
        ready, _, _ = select.select([fd, stdin_fd], [], [], remaining)
        if fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks), "done"
            chunks.append(chunk)
        elif stdin_fd in ready:
            return b"".join(chunks), "orphaned"


def _run_forked(request: dict, source: str) -> dict | None:
    """Run `request` in a fresh child; its reply, or None when the parent is gone."""
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    server_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(request, source, write_fd, server_pid)
    os.close(write_fd)
    try:
        output, ending = _collect(read_fd, float(request.get("timeout_s", 30.0)))
    finally:
        os.close(read_fd)
    if ending != "done":
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if ending == "orphaned":
        return None
    return {
        "rc": os.waitstatus_to_exitcode(status),
        "output": output.decode("utf-8", errors="replace")[-65536:],
        "timed_out": ending == "timeout",
    }


def serve() -> int:
    """The fork server loop (see the module docstring)."""
    # Replies go to the original stdout; fd 1 itself points at /dev/null from now on, so that
    # nothing printed by an import or the driver can ever mix into the replies.
    reply = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us: close() or end of stdin
    try:
        source = _load_espeak()
        _preload()
    except Exception as exc:  # the driver raises anything from OSError to RuntimeError
        reply.write(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
        reply.flush()
        return 1
    reply.write(json.dumps({"ready": True, "source": source}) + "\n")
    reply.flush()
    while line := sys.stdin.readline():
        if not line.strip():
            continue
        answer = _run_forked(json.loads(line), source)
        if answer is None:
            break
        reply.write(json.dumps(answer) + "\n")
        reply.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--serve"]:
        return serve()
    request = json.loads(sys.stdin.read())
    _limit_lifetime(request)
    return _handle(request, _load_espeak())


if __name__ == "__main__":
    raise SystemExit(main())
