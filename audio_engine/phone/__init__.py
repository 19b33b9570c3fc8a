"""Sessions on a phone: the library as a private podcast, served on the home network.

Entry points (each in its own module, imported when used):

- `episodes.update(scripts, folder, language, ...) -> Update`: the sessions exported as MP3 with
  chapters (ID3 and Podcasting 2.0 JSON) and a WebVTT transcript into the feed folder, only those
  whose export would not be the same bytes as the one already there (`episodes.export_key`).
- `episodes.select(sessions, language, extra_dirs)`: the script files of the sessions named, or
  of the whole library in one language; `episodes.default_folder()`: `feed` in the data folder.
- `feed.write(folder, episodes, base_url, language) -> Path`: `feed.xml`, an RSS 2.0 podcast feed
  written with feedgen (iTunes tags and the Podcasting 2.0 namespace).
- `icon.icon_png(size_px)`: the feed's picture (the project's icon, drawn with pygame).
- `qr.terminal_text(url)`, `qr.write_png(url, path)`: the feed's URL as a QR code (segno).
- `link.address(local)`, `link.port(state, asked)`, `link.publish(...)`: where the feed is
  served and the feed written for that link (shared by `relax phone` and the library window).
- `server.Server(folder, token, files, host, port)`: the feed folder over HTTP (waitress with
  werkzeug's ranges), only its feed's files and only under the token.
"""

from __future__ import annotations

from audio_engine import i18n


def _(message: str) -> str:
    """Interface text, in the interface's language (`audio_engine.i18n`)."""
    return i18n._(message)


def translator(language: str):
    """`_` for text a listener reads in `language` (the feed's title and description), from
    relax's catalog for that language where there is one, else as written."""

    def gettext_(message: str) -> str:
        with i18n.using(language):
            return i18n._(message)

    return gettext_
