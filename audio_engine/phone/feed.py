"""`feed.xml`: the feed folder's episodes as an RSS 2.0 podcast feed.

Entry points:

- `write(folder, episodes, base_url, language) -> Path`: the feed, written with feedgen and its
  podcast (iTunes) and Dublin Core extensions, plus the Podcasting 2.0 namespace's
  `podcast:chapters`, `podcast:transcript` and `podcast:locked` through feedgen's extension
  interface (`_extension_classes`); and the feed's picture (`ICON`) beside it.
- `render(episodes, base_url, language) -> bytes`: the same feed as bytes.
- `guid(episode)`: an episode's GUID, the same for the same session and language.
- `served_files(episodes)`: every file the feed points at (what the server may serve).

The feed is the same bytes for the same episodes and URL: its build date is the newest
episode's, not the time it was written.
"""

from __future__ import annotations

import functools
import html
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from audio_engine import __version__
from audio_engine.phone import translator
from audio_engine.phone.episodes import AUDIO_TYPE, Episode, write_bytes

FEED = "feed.xml"
ICON = "relax.png"
PODCAST_NS = "https://podcastindex.org/namespace/1.0"
CHAPTERS_TYPE = "application/json+chapters"
TRANSCRIPT_TYPE = "text/vtt"
# GUIDs are UUIDs in relax's own namespace, from the session's id and language.
_GUID_NS = uuid.uuid5(uuid.NAMESPACE_URL, "https://relax.invalid/phone/episode")


def guid(episode: Episode) -> str:
    """The episode's GUID: the same for the same session id and language, whatever its file."""
    return str(uuid.uuid5(_GUID_NS, f"{episode.id}\0{episode.language}"))


def served_files(episodes: Sequence[Episode]) -> list[str]:
    """The feed, its picture and every episode's audio, transcript and chapters."""
    names = [FEED, ICON]
    for episode in episodes:
        names.extend(episode.files())
    return names


def url_for(base_url: str, name: str) -> str:
    return base_url + quote(name)


def render(episodes: Sequence[Episode], base_url: str, language: str) -> bytes:
    """The feed as bytes; `base_url` ends with `/` and every file's URL is it plus the name."""
    from feedgen.feed import FeedGenerator

    _ = translator(language)  # the listener's language, not this computer's
    icon = url_for(base_url, ICON)
    fg = FeedGenerator()
    fg.load_extension("podcast")
    fg.load_extension("dc")
    fg.register_extension("podcastindex", *_extension_classes())
    title = _("relax sessions")
    fg.title(title)
    # No web page goes with it: the feed itself is its link.
    fg.link(href=url_for(base_url, FEED), rel="self")
    fg.link(href=url_for(base_url, FEED), rel="alternate")
    fg.description(
        _("Voice-guided relaxation sessions from relax on your computer, for your own listening.")
    )
    fg.language(language)
    fg.generator(f"relax {__version__} (python-feedgen)")
    fg.image(url=icon, title=title, link=url_for(base_url, FEED))
    fg.podcast.itunes_image(icon)
    fg.podcast.itunes_author("relax")
    fg.podcast.itunes_category("Health & Fitness", "Mental Health")
    fg.podcast.itunes_explicit("no")
    fg.podcast.itunes_block(True)  # a private feed: not for directories
    fg.podcast.itunes_type("episodic")
    fg.podcastindex.locked(True)
    published = [datetime.fromisoformat(e.published) for e in episodes]
    if published:
        fg.lastBuildDate(max(published))
    for episode, when in zip(episodes, published, strict=True):
        fe = fg.add_entry(order="append")
        fe.guid(guid(episode), permalink=False)
        fe.title(episode.title)
        # Podcast apps read a description as HTML: the script's text is shown as it is written.
        fe.description(html.escape(episode.description or episode.title, quote=False))
        fe.enclosure(url_for(base_url, episode.audio), str(episode.size_bytes), AUDIO_TYPE)
        fe.pubDate(when)
        fe.podcast.itunes_duration(round(episode.duration_s))
        fe.podcast.itunes_image(icon)
        fe.podcast.itunes_explicit("no")
        fe.dc.dc_language(episode.language)
        fe.podcastindex.chapters(url_for(base_url, episode.chapters), CHAPTERS_TYPE)
        fe.podcastindex.transcript(
            url_for(base_url, episode.transcript), TRANSCRIPT_TYPE, episode.language
        )
    return fg.rss_str(pretty=True)


def write(
    folder: Path, episodes: Sequence[Episode], base_url: str, language: str, state=None
) -> Path:
    """`feed.xml` and the picture in `folder` (each rewritten only when its bytes change).

    `state` (the folder's, `episodes.load_state`) remembers which drawing of the picture the
    folder has, so that it is drawn only when that changes."""
    import hashlib

    from audio_engine.phone import icon

    drawing = hashlib.sha256(Path(icon.__file__).read_bytes()).hexdigest()
    if state is None or state.get("icon") != drawing or not (folder / ICON).is_file():
        write_bytes(folder / ICON, icon.icon_png())
        if state is not None:
            state["icon"] = drawing
    path = folder / FEED
    write_bytes(path, render(episodes, base_url, language))
    return path


# ---- the Podcasting 2.0 namespace, as a feedgen extension --------------------------------------


@functools.cache
def _extension_classes():
    """feedgen extension classes for the channel and an item (built when first needed, so that
    feedgen is imported only when a feed is made)."""
    from feedgen.ext.base import BaseEntryExtension, BaseExtension
    from feedgen.util import xml_elem

    class Channel(BaseExtension):
        """`podcast:locked` on the channel: no podcast host may import this feed."""

        def __init__(self):
            self._locked = None

        def extend_ns(self):
            return {"podcast": PODCAST_NS}

        def extend_rss(self, rss_feed):
            if self._locked is not None:
                channel = rss_feed[0]
                element = xml_elem(f"{{{PODCAST_NS}}}locked", channel)
                element.text = "yes" if self._locked else "no"
            return rss_feed

        def locked(self, value: bool) -> None:
            self._locked = bool(value)

    class Item(BaseEntryExtension):
        """`podcast:chapters` and `podcast:transcript` on an item."""

        def __init__(self):
            self._chapters = None
            self._transcripts: list[dict] = []

        def extend_ns(self):
            return {"podcast": PODCAST_NS}

        def extend_rss(self, item):
            if self._chapters is not None:
                xml_elem(f"{{{PODCAST_NS}}}chapters", item).attrib.update(self._chapters)
            for attributes in self._transcripts:
                xml_elem(f"{{{PODCAST_NS}}}transcript", item).attrib.update(attributes)
            return item

        def chapters(self, url: str, mime_type: str) -> None:
            self._chapters = {"url": url, "type": mime_type}

        def transcript(self, url: str, mime_type: str, language: str) -> None:
            # rel="captions": the cues carry times (WebVTT), so players can show them as it plays.
            self._transcripts.append(
                {"url": url, "type": mime_type, "language": language, "rel": "captions"}
            )

    return Channel, Item
