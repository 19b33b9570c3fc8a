"""A short-lived process that runs pyttsx3 once: `python -m audio_engine._tts_worker`.

`audio_engine.tts` spawns one of these per clip so every clip starts from a fresh engine state
(espeak-ng's output for a text depends on what the same process synthesized before). It reads one
JSON request on stdin:

- `{"op": "synth", "text": ..., "voice_id": ..., "rate_wpm": ..., "out": PATH, "attempt": N}`
  writes the driver's audio file to PATH (whatever format the driver writes; the parent reads the
  header) and exits 0.
- `{"op": "info"}` prints one line `RELAX-TTS-INFO: {json}` with the engine version and the voices.

Only the standard library and pyttsx3 are imported here, to keep start-up short. Anything the driver
prints goes to this process's stdout, which the parent captures. Errors: a message on stderr and
exit code 1.

Environment: `RELAX_ESPEAK=system` uses the system's libespeak-ng instead of the one in the
`espeakng-loader` wheel (Linux). `RELAX_TTS_FAULT` is a test hook: `empty-first` makes attempt 0
write a WAV with no frames (the failure seen with pyttsx3 on one machine), `empty-always` makes
every attempt do so.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import platform
import sys
import time
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
    fault = os.environ.get("RELAX_TTS_FAULT", "")
    if fault == "empty-always" or (fault == "empty-first" and request.get("attempt") == 0):
        _write_empty_wav(request["out"])
        return
    engine = _engine()
    if request.get("voice_id"):
        engine.setProperty("voice", request["voice_id"])
    engine.setProperty("rate", int(request["rate_wpm"]))
    # Volume is applied by the parent as an exact gain, so the engine always runs at full volume.
    engine.setProperty("volume", 1.0)
    # One save_to_file per runAndWait: only the last queued command would be synthesized.
    engine.save_to_file(request["text"], request["out"])
    engine.runAndWait()
    _wait_for_espeak(engine)


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


def main() -> int:
    request = json.loads(sys.stdin.read())
    source = _load_espeak()
    if request["op"] == "info":
        print(INFO_PREFIX + json.dumps(_info(source)), flush=True)
        return 0
    if request["op"] == "synth":
        _synth(request)
        return 0
    return _fail(f"unknown request {request['op']!r}")


if __name__ == "__main__":
    raise SystemExit(main())
