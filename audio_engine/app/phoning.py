"""Listen on your phone: the library as the podcast feed `relax phone` makes, served from the
window while its view is open, in a thread of its own, with its progress in a dict the window
reads at every frame.

Entry points: `work(state, scripts, language, local, port)` (run in a thread: binds the port, exports
what changed into the feed folder, writes the feed, serves it; sets `state`'s `fraction`, then
`url`, `host_found` and `png` (the QR code) or `error`, and `busy` False) and `stop(state)` (the
server closed, the export stopped; waits for both). The folder, its link and the port are those
of `relax phone`: a phone subscribed from either keeps working with the other.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from pathlib import Path

from audio_engine.errors import RelaxError


class Cancelled(Exception):
    """Raised in the export's progress callback when the view is left while it exports."""


def work(
    state: dict,
    scripts: Sequence[Path],
    language: str,
    local: bool = False,
    port: int | None = None,
) -> None:
    """Make the feed of `scripts` in `language` and serve it (on 127.0.0.1 only when `local`;
    on `port`, else the one `relax phone` would use; 0: any free one)."""
    from audio_engine.phone import episodes, feed, link, qr, server

    def progress(fraction: float) -> None:
        if state.get("cancel"):
            raise Cancelled
        state["fraction"] = fraction

    try:
        folder = episodes.default_folder()
        episodes.make_folder(folder)
        folder_state = episodes.load_state(folder)
        host, found = link.address(local)
        port = link.port(folder_state, port)
        # The port first, as `relax phone` does: one that cannot be had is said before exporting.
        serving = server.Server(folder, folder_state["token"], (), host, port)
        with state["lock"]:
            state["server"] = serving
        if state.get("cancel"):
            raise Cancelled
        result = episodes.update(scripts, folder, language, state=folder_state, progress=progress)
        if state.get("cancel"):
            raise Cancelled
        if not result.episodes:
            reason = result.failed[0][1] if result.failed else ""
            raise RelaxError(reason or "no session could be exported")
        url = link.publish(
            folder, folder_state, result.episodes, language, host, serving.port, port
        )
        serving.app.set_files(feed.served_files(result.episodes))
        runner = threading.Thread(target=_serve, args=(serving,), daemon=True)
        state["runner"] = runner
        runner.start()
        state["host_found"] = found
        state["png"] = qr.png_bytes(url)
        state["url"] = url
        state["fraction"] = 1.0
    except (RelaxError, OSError) as exc:
        state["error"] = str(exc)
        _close(state)
    except Cancelled:
        _close(state)
    finally:
        state["busy"] = False


def _serve(serving) -> None:
    with contextlib.suppress(OSError, ValueError):  # closed from the window's thread
        serving.serve_forever()


def _close(state: dict) -> None:
    lock = state.get("lock")
    if lock is None:
        return
    with lock:
        serving = state.pop("server", None)
    if serving is not None:
        with contextlib.suppress(OSError):
            serving.close()


def stop(state: dict, wait_s: float = 30.0) -> None:
    """Stop serving (the port refuses connections once this returns) and any export under way."""
    state["cancel"] = True
    _close(state)
    for key in ("thread", "runner"):
        thread = state.get(key)
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(wait_s)
