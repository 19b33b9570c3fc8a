"""Where the feed is served and its link: what `relax phone` and the library window share.

Entry points:

- `address(local) -> (host, found)`: 127.0.0.1 when `local`, else this computer's address on its
  local network; `found` is False when there is no local network (127.0.0.1 then).
- `port(state, asked) -> int`: the port asked for, else the one the folder's link used last, else
  `server.DEFAULT_PORT` (the phone's subscription keeps working from one run to the next).
- `publish(folder, state, episodes, language, host, port, asked_port) -> str`: `feed.xml` written
  for `http://host:port/<token>/`, the folder's state saved, the QR code's PNG written beside the
  feed; the feed's URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

LOCAL = "127.0.0.1"


def address(local: bool) -> tuple[str, bool]:
    from audio_engine.phone import server

    if local:
        return LOCAL, True
    host = server.lan_address()
    return (LOCAL, False) if host is None else (host, True)


def port(state: dict, asked: int | None) -> int:
    from audio_engine.phone import server

    return asked if asked is not None else int(state.get("port", server.DEFAULT_PORT))


def publish(
    folder: Path,
    state: dict,
    episodes: Sequence,
    language: str,
    host: str,
    port: int,
    asked_port: int | None = None,
) -> str:
    from audio_engine.phone import episodes as episodes_module
    from audio_engine.phone import feed, qr, server

    if asked_port:  # a port asked for is the next run's default: the phone's link keeps working
        state["port"] = asked_port
    base = server.base_url(host, port, state["token"])
    feed.write(folder, episodes, base, language, state)
    episodes_module.save_state(folder, state)
    url = base + feed.FEED
    qr.write_png(url, folder / qr.PNG_NAME)
    return url
