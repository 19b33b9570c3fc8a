"""The export sink: the render stream written to an audio file, block by block, with tags,
chapters and a WebVTT transcript beside it.

Entry points:

- `export(prepared, path, *, gain, fmt=None, float32=False, quality=None, transcript=True,
  progress=None) -> Path`: one session to WAV, FLAC, OGG (Vorbis) or MP3.
- `transcript_vtt(timeline) -> str`: the WebVTT transcript (one cue per spoken line, sections as
  NOTE blocks).
- `format_for(path, fmt=None) -> Format`: the output format from `fmt` or the file extension.
- `export_many(paths, outdir, *, fmt, language, ...) -> list[Outcome]`: several sessions at once in
  spawned worker processes; one failure is reported and does not stop the others.

Every file (audio and transcript) is written under a temporary name in the target folder and
renamed at the end, so an interrupted or failed export leaves neither a partial file nor the
temporary one behind. Audio is encoded as the blocks come: WAV, FLAC and OGG by libsndfile
(through soundfile), MP3 by LAME (through lameenc, `mp3`, with LAME's info tag for gapless
playback); tags and chapters are added by mutagen on the temporary file, before the rename.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import multiprocessing
import os
import queue
import secrets
import shutil
import signal
import stat
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import soundfile

from audio_engine import __version__, fsio, i18n, mp3, render
from audio_engine.errors import ExportError, RelaxError
from audio_engine.i18n import _
from audio_engine.model import primary_language
from audio_engine.signals import ending_signals as _ending_signals

EXPORT_BLOCK_SAMPLES = 1 << 16

DEFAULT_QUALITY = round(
    render.DEFAULT_LOSSY_QUALITY
)  # 0-10, higher is better: Vorbis about q5 (~150 kbit/s), MP3 LAME about -V 4
GENRE = "Meditation"
_WAV_LIMIT_BYTES = 0xFFFFFFFF - (1 << 20)  # RIFF sizes are 32-bit; room for the header and tags
ARTIST = "relax"
DEFAULT_ALBUM = "relax sessions"


@dataclass(frozen=True)
class Format:
    """One output format: its name, file extension, libsndfile major format and subtypes."""

    name: str  # wav, flac, ogg, mp3
    extension: str
    container: str
    subtype: str
    float_subtype: str | None  # the subtype `--float` picks; None: not offered
    lossy: bool


FORMATS: dict[str, Format] = {
    "wav": Format("wav", ".wav", "WAV", "PCM_16", "FLOAT", lossy=False),
    "flac": Format("flac", ".flac", "FLAC", "PCM_16", "PCM_24", lossy=False),
    "ogg": Format("ogg", ".ogg", "OGG", "VORBIS", None, lossy=True),
    "mp3": Format("mp3", ".mp3", "MP3", "MPEG_LAYER_III", None, lossy=True),
}
_EXTENSIONS = {f.extension: f for f in FORMATS.values()} | {".oga": FORMATS["ogg"]}


def format_for(path: Path | str | None, fmt: str | None = None) -> Format:
    """The format named by `fmt` ("wav", "flac", "ogg", "mp3"), else by the extension of `path`."""
    if fmt is not None:
        try:
            return FORMATS[fmt.lower().lstrip(".")]
        except KeyError:
            raise ExportError(
                f"unknown audio format '{fmt}' (supported: {', '.join(FORMATS)})"
            ) from None
    suffix = Path(path).suffix.lower() if path is not None else ""
    found = _EXTENSIONS.get(suffix)
    if found is None:
        raise ExportError(
            f"{path}: unknown audio format '{suffix}' "
            f"(supported: {', '.join(f.extension for f in FORMATS.values())})"
        )
    return found


def default_name(session, fmt: Format | str = "wav") -> str:
    """`<id>.<language>.<ext>`: the file name an export gets when only a folder is given."""
    if isinstance(fmt, str):
        fmt = format_for(None, fmt)
    return f"{session.id}.{session.language}{fmt.extension}"


def transcript_path(audio_path: Path | str) -> Path:
    """Where the transcript of `audio_path` goes: the same name with `.vtt` (players load it)."""
    return Path(audio_path).with_suffix(".vtt")


def export(
    prepared,
    path: Path | str,
    *,
    gain: float,
    fmt: str | None = None,
    float32: bool = False,
    quality: float | None = None,
    transcript: bool = True,
    progress: Callable[[int, int], None] | None = None,
    start_sample: int = 0,
) -> Path:
    """Write the session to `path`, stereo at 44.1 kHz, with tags, chapters and a transcript.

    Parameters
    ----------
    prepared : `pipeline.Prepared` (timeline and sources).
    path : the audio file to write; its extension picks the format unless `fmt` is given.
    gain : the loudness gain (`pipeline.gain`, with `lossy_quality(form, quality)`).
    fmt : "wav", "flac", "ogg" or "mp3"; None: from the extension.
    float32 : WAV: 32-bit float samples; FLAC: 24-bit; not offered for OGG and MP3.
    quality : OGG and MP3 only, 0 (smallest) to 10 (best); default `DEFAULT_QUALITY`.
    transcript : also write `transcript_path(path)` (WebVTT).
    progress : called as `progress(done_samples, total_samples)` after every block.
    start_sample : where the file begins (a chapter start: what `relax play --from` plays);
        chapters and transcript are counted from there.

    Returns
    -------
    Path : the audio file written.

    Example
    -------
    >>> gain = pipeline.gain(prepared, lossy_quality=5)  # doctest: +SKIP
    >>> export(prepared, "478.mp3", gain=gain)  # doctest: +SKIP
    """
    path = Path(path)
    form = format_for(path, fmt)
    check_options(form, float32=float32, quality=quality)
    if path.is_symlink():  # write through a link to the file it names, not over the link
        path = path.resolve()
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"{path}: folder {folder} does not exist")
    timeline = prepared.timeline
    start = max(0, min(int(start_sample), timeline.total_samples))
    frames = timeline.total_samples - start
    if form.name == "wav" and frames * 2 * (4 if float32 else 2) > _WAV_LIMIT_BYTES:
        raise ExportError(f"{path}: too long for a WAV file (over 4 GiB); use FLAC")
    _check_name(path)
    _refuse_special(path)
    if transcript:
        _refuse_special(transcript_path(path))
    _remove_stale_parts(folder, path.name)
    if transcript:
        _remove_stale_parts(folder, transcript_path(path).name)
    temps: list[Path] = []
    held: list[int] = []
    try:
        audio_tmp = _temp_in(folder, path.name, temps, held)
        _encode(prepared, audio_tmp, form, float32, quality, gain, progress, start)
        _tag(audio_tmp, form, timeline, start)
        vtt_tmp = None
        if transcript:
            vtt_tmp = _temp_in(folder, transcript_path(path).name, temps, held)
            vtt_tmp.write_bytes(transcript_vtt(timeline, start).encode("utf-8"))
        # Audio last: a transcript without its audio would be the stranger leftover.
        if vtt_tmp is not None:
            os.replace(vtt_tmp, transcript_path(path))
        os.replace(audio_tmp, path)
    except OSError as exc:
        _remove(temps)
        raise ExportError(f"cannot write {path}: {fsio.describe(exc)}") from exc
    except (soundfile.LibsndfileError, _mutagen_error()) as exc:
        _remove(temps)
        reason = str(exc)
        with contextlib.suppress(OSError):
            if shutil.disk_usage(folder).free < _FULL_BYTES:  # libsndfile says "System error."
                reason = "the disk is full"
        raise ExportError(f"cannot write {path} ({form.name.upper()}): {reason}") from exc
    except BaseException:
        _remove(temps)
        raise
    finally:
        for fd in held:
            with contextlib.suppress(OSError):
                os.close(fd)
    return path


def _refuse_special(path: Path) -> None:
    """A device, FIFO or folder at `path` is an error: the finished file is renamed over the
    target, which would replace /dev/null itself, not write into it."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        raise ExportError(
            f"cannot write {path}: it is {fsio.kind_of(mode)}, not a regular file (an export is "
            "written whole to a new file)"
        )


def _check_name(path: Path) -> None:
    """A file name the file system cannot spell (`ö` under an ASCII locale) is one clear error."""
    try:
        os.fsencode(path)
    except UnicodeError:
        raise ExportError(
            f"cannot write {ascii(str(path))}: the name cannot be written in this system's file "
            f"name encoding ({sys.getfilesystemencoding()}); use another name or a UTF-8 locale"
        ) from None


def lossy_quality(form: Format, quality: float | None = None) -> float | None:
    """What `pipeline.gain(prepared, lossy_quality=...)` takes for a file of `form`: the
    encoder's quality for MP3 and OGG (their lower ceiling takes a little loudness, which their
    gain gives back), None for WAV and FLAC (the player's gain: the same samples)."""
    if not form.lossy:
        return None
    return float(DEFAULT_QUALITY if quality is None else quality)


def check_options(form: Format, *, float32: bool = False, quality: float | None = None) -> None:
    """Raise `ExportError` when `float32` or `quality` do not apply to `form`."""
    if float32 and form.float_subtype is None:
        raise ExportError(f"--float is for WAV and FLAC, not {form.name.upper()}")
    if quality is not None and not form.lossy:
        raise ExportError(f"--quality is for OGG and MP3 ({form.name.upper()} is lossless)")
    if quality is not None and not 0 <= quality <= 10:
        raise ExportError(f"--quality must be 0-10, not {quality:g}")


# ---- the transcript ----------------------------------------------------------------------------


def vtt_time(sample: int, sample_rate: int) -> str:
    """`HH:MM:SS.mmm` for a sample index, rounded to the nearest millisecond (half up)."""
    ms = _ms(sample, sample_rate)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def transcript_vtt(timeline, start_sample: int = 0) -> str:
    """The WebVTT transcript of a timeline (of a file that begins at `start_sample`).

    One cue per spoken line (`timeline.transcript()`) that starts in the file, from its first
    to its last sample, times rounded to the nearest millisecond; each chapter of the file
    (`file_chapters`) as a NOTE block just before the first cue at or after its start.
    """
    rate = timeline.sample_rate
    session = timeline.session
    out = ["WEBVTT", "", "NOTE", _note_text(f"{session.title} ({session.id}, {session.language})")]
    items = [(c.start_sample, 0, c) for c in file_chapters(timeline, start_sample)]
    items += [
        (e.start_sample - start_sample, 1, e)
        for e in timeline.transcript()
        if e.start_sample >= start_sample
    ]
    number = 0
    for start, kind, item in sorted(items, key=lambda it: (it[0], it[1])):
        out.append("")
        if kind == 0:
            with i18n.using(session.language):  # the words it adds: the session's language
                note = _("Section: {title} ({time})").format(
                    title=item.title, time=vtt_time(start, rate)
                )
            out += ["NOTE", _note_text(note)]
        else:
            number += 1
            end = item.end_sample - start_sample
            out += [
                str(number),
                f"{vtt_time(start, rate)} --> {vtt_time(end, rate)}",
                _cue_text(item.text),
            ]
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class FileChapter:
    """A chapter as a file carries it: its title and its first sample in the file."""

    title: str
    start_sample: int


def file_chapters(timeline, start_sample: int = 0) -> tuple[FileChapter, ...]:
    """The chapters written into a file of `timeline` that begins at `start_sample`, in order.

    From `timeline.chapters` (sections and named stretches), counted from `start_sample` (a
    chapter in progress there starts the file). Chapters that would last no time in the file
    are not written as such: ones that start in the same millisecond (a section followed at
    once by a named stretch) are merged into one, titled "Section: Stretch" (only the longer
    title when one contains the other, as "Neck" and "Neck stretch"); one that starts at the
    file's end is dropped.
    """
    length = timeline.total_samples - start_sample
    rate = timeline.sample_rate
    begun = [c.start_sample for c in timeline.chapters if c.start_sample <= start_sample]
    first = begun[-1] if begun else start_sample  # the chapter in progress at the start
    found: list[FileChapter] = []
    for chapter in timeline.chapters:
        if chapter.start_sample < first:
            continue
        at = max(0, chapter.start_sample - start_sample)
        if at >= length:
            break
        if found and _ms(found[-1].start_sample, rate) == _ms(at, rate):
            title = _merged_title(found[-1].title, chapter.title)
            found[-1] = FileChapter(title, found[-1].start_sample)
        else:
            found.append(FileChapter(chapter.title, at))
    return tuple(found)


def _merged_title(first: str, second: str) -> str:
    a, b = first.casefold(), second.casefold()
    if a in b:
        return second
    if b in a:
        return first
    return f"{first}: {second}"


def _ms(sample: int, sample_rate: int) -> int:
    return (2000 * int(sample) + sample_rate) // (2 * sample_rate)


def _cue_text(text: str) -> str:
    flat = " ".join(text.split())
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _note_text(text: str) -> str:
    # A NOTE ends at a blank line and may not contain "-->".
    return " ".join(text.split()).replace("-->", "->")


# ---- encoding ----------------------------------------------------------------------------------


def _temp_in(folder: Path, name: str, temps: list[Path], held: list[int]) -> Path:
    # Listed in `temps` before it exists, so a Ctrl-C at any moment leaves nothing behind;
    # created with the ordinary permissions (the umask's) that the finished file keeps. The
    # descriptor in `held` keeps a lock on it while this process writes: a `.part` that nobody
    # holds is a killed export's, which the next export to the same file removes. It is locked
    # under a name that cleaning ignores, then linked to its `.part` name, so no other export
    # ever sees it unlocked.
    while True:
        token = secrets.token_hex(4)
        tmp = folder / f".{_temp_stem(name)}.{token}.part"
        claim = folder / f".{_temp_stem(name)}.{token}.new"
        temps += [tmp, claim]
        try:
            fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o666)
        except FileExistsError:
            del temps[-2:]  # someone else's: try another name
            continue
        held.append(fd)
        with contextlib.suppress(OSError):
            _lock_part(fd, block=True)
        try:
            os.link(claim, tmp)
        except FileExistsError:
            os.unlink(claim)
            del temps[-2:]
            continue
        except OSError:  # a file system without hard links
            os.replace(claim, tmp)
        else:
            os.unlink(claim)
        temps.remove(claim)
        return tmp


def _temp_stem(name: str) -> str:
    """The target's name, or a digest of it when the encoder could not spell it (libsndfile takes
    names in the file system encoding, strictly: `ö` under an ASCII locale)."""
    try:
        name.encode(sys.getfilesystemencoding())
    except UnicodeError:
        return "relax-" + hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
    return name


def _lock_part(fd: int, *, block: bool) -> bool:
    """An exclusive lock on a `.part` file; False when another process holds it."""
    try:
        import fcntl
    except ImportError:  # no advisory locks here: every `.part` looks held
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


def _remove_stale_parts(folder: Path, name: str) -> None:
    """Remove the `.part` files of earlier exports to `name` in `folder` whose writer is gone
    (killed with SIGKILL, or the machine stopped): no process holds their lock."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    prefix = f".{_temp_stem(name)}."
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(".part")):
            continue
        middle = entry.name[len(prefix) : -len(".part")]
        if len(middle) != 8 or not all(c in "0123456789abcdef" for c in middle):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            continue
        try:
            if os.path.samestat(os.fstat(fd), os.lstat(entry.path)) and _lock_part(fd, block=False):
                os.unlink(entry.path)
        except OSError:
            pass
        finally:
            os.close(fd)


def _remove(paths: Sequence[Path]) -> None:
    for tmp in paths:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _mutagen_error():
    from mutagen import MutagenError

    return MutagenError


# libFLAC's level 4 (libsndfile's 0-1 scale times 8) rather than libsndfile's default 5: on
# relax's sessions its files are 0.02-0.3% larger and it takes 13-16% less of the encoder's time,
# which is most of a FLAC export's (level 5 adds exhaustive mid/side stereo and a finer Rice
# partition search, which buy almost nothing on a voice over a quiet background).
_FLAC_COMPRESSION_LEVEL = 0.5


def _compression_level(form: Format, quality: float | None) -> float | None:
    if form.name == "flac":
        return _FLAC_COMPRESSION_LEVEL
    if not form.lossy:
        return None
    q = DEFAULT_QUALITY if quality is None else quality
    # libsndfile: 0 is the best quality, 1 the smallest; its MP3 encoder refuses 1.0 itself.
    return round((10 - q) / 10 * 0.99, 4)


def _encode(prepared, tmp: Path, form: Format, float32, quality, gain, progress, start) -> None:
    timeline = prepared.timeline
    frames = timeline.total_samples - start
    q = DEFAULT_QUALITY if quality is None else quality
    subtype = form.float_subtype if float32 else form.subtype
    if subtype in ("VORBIS", "FLOAT"):
        convert = None  # libsndfile takes the float samples (a copy: see `_RenderAhead`)
    elif subtype == "PCM_24":
        convert = _to_int24
    else:  # 16-bit PCM: WAV, FLAC and LAME's input
        convert = render.to_int16
    blocks = render.blocks(
        timeline,
        prepared.sources,
        start_sample=start,
        block_samples=EXPORT_BLOCK_SAMPLES,
        gain=gain,
        ceiling_dbtp=render.lossy_ceiling(q) if form.lossy else render.LIMIT_DBTP,
    )
    # The render (and the conversion to the encoder's samples) runs a few blocks ahead in a
    # thread of its own while this thread encodes: both encoders let go of the GIL while they
    # work (lameenc around LAME's calls, cffi around libsndfile's), so an export takes about as
    # long as the slower of the two, not their sum. This thread keeps the file, the progress and
    # Ctrl-C.
    with _RenderAhead(blocks, convert) as ahead:
        if form.name == "mp3":  # LAME through lameenc: 16-bit PCM in
            with open(tmp, "wb") as f:
                out = mp3.Writer(f, q, timeline.sample_rate)
                _write_all(ahead, out.write, progress, frames)
                out.close()
            return
        level = _compression_level(form, quality)
        extra = {} if level is None else {"compression_level": level}
        with soundfile.SoundFile(
            tmp,
            "w",
            samplerate=timeline.sample_rate,
            channels=2,
            format=form.container,
            subtype=subtype,
            **extra,
        ) as out:
            _write_all(ahead, out.write, progress, frames)
    if form.container == "WAV" and subtype == "FLOAT":
        _clear_peak_time(tmp)


def _clear_peak_time(path: Path) -> None:
    """Zero the time stamp libsndfile writes into a float WAV's PEAK chunk (the seconds since
    1970 at which the file was written): the same session then gives the same bytes."""
    with open(path, "r+b") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        while True:
            chunk = f.read(8)
            if len(chunk) < 8 or chunk[:4] == b"data":
                return
            size = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"PEAK" and size >= 8:
                f.seek(4, os.SEEK_CUR)  # the chunk's version
                f.write(bytes(4))
                return
            f.seek(size + (size & 1), os.SEEK_CUR)


def _write_all(blocks, write, progress, frames: int) -> None:
    done = 0
    for block in blocks:
        write(block)
        done += len(block)
        if progress:
            progress(done, frames)


_AHEAD_BLOCKS = 3  # blocks the render may be ahead of the encoder: 0.5 MiB each (float32)


_WAKE_S = 0.1  # the longest the encoding thread sleeps between looks at pending signals


class _RenderAhead:
    """The blocks of `source`, each passed through `convert` (else copied), made in a thread of
    their own at most `_AHEAD_BLOCKS` ahead of the thread that iterates over this. Each block it
    hands over is its own array: the render goes on while the encoder reads it, and may reuse
    what it yielded.

    An error in the render is raised in the iterating thread. Leaving the `with` block (at the
    end, on an error, on Ctrl-C) stops the thread: it finishes the block it is making, at most,
    and is waited for.

    The two threads meet only in `queue.SimpleQueue`s (C code, no lock held between Python
    steps): a SIGTERM or Ctrl-C raised in the iterating thread, wherever it lands, leaves nothing
    locked. (With `queue.Queue` one could land inside its `with` on the queue's lock and leave
    the lock held, and the export then waited forever to stop.) One queue carries the blocks,
    the other the room the render has: a token per block it may make ahead.
    """

    def __init__(self, source, convert=None, depth: int = _AHEAD_BLOCKS):
        self._source = source
        self._convert = convert
        self._queue: queue.SimpleQueue = queue.SimpleQueue()  # blocks, an error, the end
        self._room: queue.SimpleQueue = queue.SimpleQueue()  # a token per block to make ahead
        for _token in range(depth):
            self._room.put(None)
        self._stopping = False  # set once, read by the render (no lock needed)
        self._thread = threading.Thread(target=self._run, name="relax render", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopping = True
        self._room.put(None)  # a render waiting for room wakes and sees the stop
        while self._thread.is_alive():
            self._thread.join(0.05)

    def __iter__(self):
        while True:
            # Waited for in short turns: a SIGTERM or Ctrl-C the kernel hands to another thread
            # is acted on here (Python runs its handler in this thread) within one turn, even
            # while no block comes.
            try:
                kind, item = self._queue.get(timeout=_WAKE_S)
            except queue.Empty:
                continue
            if kind == "block":
                self._room.put(None)
                yield item
            elif kind == "error":
                raise item
            else:
                return

    def _run(self) -> None:
        blocks = iter(self._source)
        try:
            while True:
                self._room.get()
                if self._stopping:
                    return
                block = next(blocks, None)
                if block is None:
                    self._queue.put(("end", None))
                    return
                owned = block.copy() if self._convert is None else self._convert(block)
                self._queue.put(("block", owned))
        except BaseException as exc:  # noqa: BLE001 - raised in the iterating thread
            self._queue.put(("error", exc))
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()


def _to_int24(block):
    import numpy as np

    # libsndfile takes 24-bit PCM as int32 with the sample in the top three bytes.
    finite = np.nan_to_num(block, nan=0.0, posinf=1.0, neginf=-1.0)  # never cast NaN
    scaled = np.round(np.clip(finite, -1.0, 1.0) * 8388607.0).astype(np.int32)
    return scaled << 8


# ---- tags and chapters -------------------------------------------------------------------------

# ISO 639-2 codes for ID3 (TLAN and COMM want three letters); others fall back to "und".
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FULL_BYTES = 1 << 20  # less free space than this after a failed write: the disk is full

# fmt: off
_ISO639_2 = {  # ISO 639-1 -> ISO 639-2/T, for ID3's three-letter language codes
    "af": "afr", "am": "amh", "an": "arg", "ar": "ara", "as": "asm", "az": "aze", "ba": "bak",
    "be": "bel", "bg": "bul", "bn": "ben", "bs": "bos", "ca": "cat", "cs": "ces", "cy": "cym",
    "da": "dan", "de": "deu", "el": "ell", "en": "eng", "eo": "epo", "es": "spa", "et": "est",
    "eu": "eus", "fa": "fas", "fi": "fin", "fo": "fao", "fr": "fra", "fy": "fry", "ga": "gle",
    "gd": "gla", "gl": "glg", "gn": "grn", "gu": "guj", "he": "heb", "hi": "hin", "hr": "hrv",
    "ht": "hat", "hu": "hun", "hy": "hye", "ia": "ina", "id": "ind", "io": "ido", "is": "isl",
    "it": "ita", "ja": "jpn", "ka": "kat", "kk": "kaz", "kl": "kal", "km": "khm", "kn": "kan",
    "ko": "kor", "ku": "kur", "ky": "kir", "la": "lat", "lb": "ltz", "lo": "lao", "lt": "lit",
    "lv": "lav", "mi": "mri", "mk": "mkd", "ml": "mal", "mn": "mon", "mr": "mar", "ms": "msa",
    "mt": "mlt", "my": "mya", "nb": "nob", "ne": "nep", "nl": "nld", "nn": "nno", "no": "nor",
    "oc": "oci", "om": "orm", "or": "ori", "pa": "pan", "pl": "pol", "ps": "pus", "pt": "por",
    "qu": "que", "ro": "ron", "ru": "rus", "sd": "snd", "si": "sin", "sk": "slk", "sl": "slv",
    "so": "som", "sq": "sqi", "sr": "srp", "sv": "swe", "sw": "swa", "ta": "tam", "te": "tel",
    "tg": "tgk", "th": "tha", "tk": "tuk", "tl": "tgl", "tn": "tsn", "tr": "tur", "tt": "tat",
    "ug": "uig", "uk": "ukr", "ur": "urd", "uz": "uzb", "vi": "vie", "xh": "xho", "yi": "yid",
    "yo": "yor", "zh": "zho", "zu": "zul",
}
# fmt: on


@dataclass(frozen=True)
class _Tags:
    title: str
    artist: str
    album: str
    language: str
    genre: str
    comment: str
    chapters: tuple[tuple[str, int, int], ...]  # (title, start_ms, end_ms)


def tags_for(timeline, start_sample: int = 0) -> _Tags:
    """The tags and chapters every format carries (see docs/export.md)."""
    session = timeline.session
    rate = timeline.sample_rate
    found = file_chapters(timeline, start_sample)
    starts = [c.start_sample for c in found] + [timeline.total_samples - start_sample]
    chapters = tuple(
        (c.title, _ms(c.start_sample, rate), _ms(starts[i + 1], rate)) for i, c in enumerate(found)
    )
    return _Tags(
        title=session.title,
        artist=ARTIST,
        album=", ".join(session.tags) if session.tags else DEFAULT_ALBUM,
        language=session.language,
        genre=GENRE,
        comment=f"relax session {session.id} ({session.language}); relax {__version__}",
        chapters=chapters,
    )


def _tag(tmp: Path, form: Format, timeline, start_sample: int = 0) -> None:
    tags = tags_for(timeline, start_sample)
    if form.name in ("flac", "ogg"):
        _tag_vorbis(tmp, form, tags)
    elif form.name == "mp3":
        frames = _in_order(_id3_class())()
        _id3_frames(frames, tags)
        frames.save(tmp, v2_version=3)
    else:
        from mutagen.wave import WAVE

        wave = WAVE(tmp)
        wave.tags = _in_order(_wave_id3_class())()
        _id3_frames(wave.tags, tags)
        wave.save(v2_version=3)
        _append_cue_list(tmp, file_chapters(timeline, start_sample))


def _id3_class():
    from mutagen.id3 import ID3

    return ID3


def _wave_id3_class():
    from mutagen.wave import _WaveID3  # mutagen's ID3 class for a WAV `id3 ` chunk

    return _WaveID3


def _in_order(base):
    """`base` (a mutagen ID3 class) writing its frames in the order they were added.

    mutagen sorts frames by size and hash before writing, which scrambles the CHAP frames: read
    back in file order (ffmpeg, and so ffprobe, lists them so), chapters came out of time
    order. The frames themselves are still encoded by mutagen.
    """
    from mutagen.id3._tags import save_frame

    class InOrder(base):
        def _write(self, config):
            return bytearray().join(save_frame(frame, config=config) for frame in self.values())

    return InOrder


def _vorbis_time(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _tag_vorbis(tmp: Path, form: Format, tags: _Tags) -> None:
    if form.name == "flac":
        from mutagen.flac import FLAC as Opener
    else:
        from mutagen.oggvorbis import OggVorbis as Opener
    audio = Opener(tmp)
    if audio.tags is None:
        audio.add_tags()
    audio.tags.clear()  # libsndfile's own comments (its "encoder" line) would vary by version
    audio["TITLE"] = tags.title
    audio["ARTIST"] = tags.artist
    audio["ALBUM"] = tags.album
    audio["LANGUAGE"] = tags.language
    audio["GENRE"] = tags.genre
    audio["COMMENT"] = tags.comment
    # The Xiph chapter extension: CHAPTER001=HH:MM:SS.mmm, CHAPTER001NAME=title.
    for i, (title, start_ms, _end_ms) in enumerate(tags.chapters, start=1):
        audio[f"CHAPTER{i:03d}"] = _vorbis_time(start_ms)
        audio[f"CHAPTER{i:03d}NAME"] = title
    audio.save()


def _id3_frames(frames, tags: _Tags) -> None:
    from mutagen.id3 import CHAP, COMM, CTOC, TALB, TCON, TIT2, TLAN, TPE1, CTOCFlags

    lang = _ISO639_2.get(primary_language(tags.language), "und")
    frames.add(TIT2(encoding=3, text=[tags.title]))
    frames.add(TPE1(encoding=3, text=[tags.artist]))
    frames.add(TALB(encoding=3, text=[tags.album]))
    frames.add(TLAN(encoding=3, text=[lang]))
    frames.add(TCON(encoding=3, text=[tags.genre]))
    frames.add(COMM(encoding=3, lang=lang, desc="", text=[tags.comment]))
    if not tags.chapters:
        return
    ids = [f"chp{i:03d}" for i in range(len(tags.chapters))]  # written in this order
    frames.add(
        CTOC(
            element_id="toc",
            flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
            child_element_ids=ids,
            sub_frames=[TIT2(encoding=3, text=[tags.title])],
        )
    )
    for element_id, (title, start_ms, end_ms) in zip(ids, tags.chapters, strict=True):
        frames.add(
            CHAP(
                element_id=element_id,
                start_time=start_ms,
                end_time=end_ms,
                start_offset=0xFFFFFFFF,  # "use the times", per the ID3 chapter spec
                end_offset=0xFFFFFFFF,
                sub_frames=[TIT2(encoding=3, text=[title])],
            )
        )


def _append_cue_list(tmp: Path, chapters) -> None:
    """Add a RIFF `cue ` chunk (one cue point per chapter, at its sample) and a `LIST`/`adtl`
    chunk with a `labl` per cue: the WAV markers audio editors show. Neither libsndfile (through
    soundfile) nor mutagen writes them, so this small writer does.

    Cue point k has the id k, from 0, as the ID3 chapter `chp00k` it marks: readers that join
    the two by id (ffmpeg numbers ID3 chapters from 0 in file order) see each chapter once.
    """
    if not chapters:
        return
    cue = struct.pack("<I", len(chapters))
    labels = b"adtl"
    for i, chapter in enumerate(chapters):
        cue += struct.pack("<II4sIII", i, chapter.start_sample, b"data", 0, 0, chapter.start_sample)
        text = chapter.title.encode("utf-8") + b"\0"
        body = struct.pack("<I", i) + text
        labels += b"labl" + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")
    chunks = b"cue " + struct.pack("<I", len(cue)) + cue
    chunks += b"LIST" + struct.pack("<I", len(labels)) + labels
    with open(tmp, "r+b") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise ExportError(f"{tmp}: not a RIFF WAVE file")
        f.seek(0, os.SEEK_END)
        if f.tell() % 2:
            f.write(b"\0")  # RIFF chunks start on even offsets
        f.write(chunks)
        riff_size = f.tell() - 8
        if riff_size > 0xFFFFFFFF:
            raise ExportError(f"{tmp}: too large for a WAV file (over 4 GiB); use FLAC")
        f.seek(4)
        f.write(struct.pack("<I", riff_size))


# ---- many sessions at once ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What became of one session of `export_many`: `path` on success, else `error`."""

    name: str  # the script file or id, as the person gave or the library lists it
    path: Path | None = None
    error: str | None = None
    duration_s: float = 0.0


# Set in each worker by `_worker_init`.
_progress_queue = None
_cancel = None


def export_many(
    scripts: Sequence[Path | str],
    outdir: Path | str,
    *,
    fmt: str = "wav",
    language: str | None = None,
    float32: bool = False,
    quality: float | None = None,
    transcript: bool = True,
    jobs: int | None = None,
    progress: Callable[[float], None] | None = None,
    weights: Sequence[float] | None = None,
) -> list[Outcome]:
    """Export every script in `scripts` to `outdir` as `<id>.<language>.<ext>`, in parallel.

    Workers are spawned processes (never forked: the speech engine cannot be forked safely), at
    most `jobs` at once (default: every core). A session that fails is returned with its error
    and does not stop the others. `progress(fraction)` is called from this thread; each session
    counts in it by its `weights` entry (e.g. its expected length), else equally. Ctrl-C stops
    every worker at its next block; each removes its temporary files before the interrupt is
    raised here.
    """
    outdir = Path(outdir)
    if not outdir.is_dir():
        raise ExportError(f"{outdir}: no such folder")
    # A wrong format or option fails once, before any work.
    check_options(format_for(None, fmt), float32=float32, quality=quality)
    jobs = max(1, jobs or os.cpu_count() or 1)
    ctx = multiprocessing.get_context("spawn")
    _start_resource_tracker()
    messages = ctx.Queue()
    cancel = ctx.Event()
    fractions = dict.fromkeys(range(len(scripts)), 0.0)
    share = {i: max(1e-6, float(weights[i])) if weights else 1.0 for i in fractions}
    outcomes: dict[int, Outcome] = {}
    options = dict(
        fmt=fmt, language=language, float32=float32, quality=quality, transcript=transcript
    )
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=min(jobs, max(1, len(scripts))),
        mp_context=ctx,
        initializer=_worker_init,
        initargs=(messages, cancel),
    )
    # SIGTERM and SIGHUP are acted on between waits, not wherever they land (inside the pool's
    # own locks, a shutdown would wait forever).
    stop: list[int] = []
    old_handlers = {}
    if threading.current_thread() is threading.main_thread():
        for signum in _ending_signals():
            old_handlers[signum] = signal.signal(signum, lambda n, f: stop.append(n))
    try:
        # Workers start with Ctrl-C blocked (a spawned process keeps the signal mask it was
        # started with), so one interrupted while it is still importing prints no traceback; a
        # Ctrl-C that comes meanwhile waits here and is raised as soon as they are started.
        # The mask is this thread's only: a Ctrl-C can still be delivered to another thread
        # (OpenBLAS's, the pool's), and Python would then raise it here in the middle of writing
        # a new worker's start-up data (the worker then dies with a traceback of its own). So,
        # for that time, it is only noted, and raised once every worker has what it needs.
        masked = hasattr(signal, "pthread_sigmask")
        deferred: list[int] = []
        old_int = None
        if threading.current_thread() is threading.main_thread():
            old_int = signal.signal(signal.SIGINT, lambda n, f: deferred.append(n))
        if masked:
            before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            futures = {
                pool.submit(_export_one, i, str(script), str(outdir), options): i
                for i, script in enumerate(scripts)
            }
        finally:
            if masked:
                signal.pthread_sigmask(signal.SIG_SETMASK, before)
            if old_int is not None:
                signal.signal(signal.SIGINT, old_int)
        if deferred:
            raise KeyboardInterrupt
        pending = set(futures)
        while pending:
            if stop:
                raise SystemExit(128 + stop[0])
            finished, pending = concurrent.futures.wait(pending, timeout=0.2)
            _drain(messages, fractions)
            for future in finished:
                i = futures[future]
                fractions[i] = 1.0
                try:
                    outcomes[i] = future.result()
                except Exception as exc:  # noqa: BLE001 - one session's failure must not stop the batch
                    outcomes[i] = Outcome(str(scripts[i]), error=f"{type(exc).__name__}: {exc}")
            if progress and scripts:
                done = sum(share[i] * fractions[i] for i in fractions)
                progress(min(1.0, done / sum(share.values())))
    except BaseException:
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        for signum, handler in old_handlers.items():
            signal.signal(signum, handler)
    pool.shutdown(wait=True)
    if stop:
        raise SystemExit(128 + stop[0])
    return [outcomes[i] for i in range(len(scripts))]


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker ignoring SIGHUP, as it ignores SIGINT and SIGTERM:
    when the terminal closes, the whole process group gets SIGHUP, and a tracker that died of it
    would be started again and print tracebacks about the workers' semaphores it never saw."""
    hup = getattr(signal, "SIGHUP", None)
    if hup is None or threading.current_thread() is not threading.main_thread():
        return
    from multiprocessing import resource_tracker

    old = signal.signal(hup, signal.SIG_IGN)  # kept ignored across exec by the child
    try:
        resource_tracker.ensure_running()
    finally:
        signal.signal(hup, old)


def _drain(messages, fractions) -> None:
    while True:
        try:
            i, fraction = messages.get_nowait()
        except queue.Empty:
            return
        fractions[i] = max(fractions[i], fraction)


def _worker_init(messages, cancel) -> None:
    global _progress_queue, _cancel
    # Ctrl-C reaches the whole process group; the parent decides and tells workers via `cancel`,
    # so no worker dies with a traceback while it waits for work.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM (or SIGHUP: the terminal closed) to the group ends a worker through its cleanup:
    # no temporary file stays behind.
    for signum in _ending_signals():
        signal.signal(signum, _worker_terminated)
    _progress_queue = messages
    _cancel = cancel


_signalled: int | None = None  # SIGTERM or SIGHUP received by this worker


def _worker_terminated(signum, frame) -> None:
    # Noted here, acted on in `report` between blocks: raising at an arbitrary point could leave
    # a lock that the workers share (the queue's) held by a worker that is gone, and the others
    # waiting for it forever.
    global _signalled
    _signalled = signum


class _Cancelled(KeyboardInterrupt):
    """Raised inside a worker when the parent was interrupted."""


def _export_one(index: int, script: str, outdir: str, options: dict) -> Outcome:
    from audio_engine import pipeline

    last = [0.0]

    def report(done: int, total: int, share: float, offset: float) -> None:
        if _signalled is not None:
            raise SystemExit(128 + _signalled)  # through `export`'s cleanup
        if _cancel is not None and _cancel.is_set():
            raise _Cancelled
        fraction = offset + share * (done / total if total else 1.0)
        if _progress_queue is not None and fraction - last[0] >= 0.01:
            last[0] = fraction
            _progress_queue.put((index, fraction))

    try:
        session = pipeline.load(script, options["language"])
        # Speech counts for the first tenth of a session's progress, audio for the rest.
        prepared = pipeline.prepare(session, progress=lambda d, t: report(d, t, 0.1, 0.0))
        form = format_for(None, options["fmt"])
        gain = pipeline.gain(prepared, lossy_quality=lossy_quality(form, options["quality"]))
        target = Path(outdir) / default_name(session, form)
        export(
            prepared,
            target,
            gain=gain,
            fmt=form.name,
            float32=options["float32"],
            quality=options["quality"],
            transcript=options["transcript"],
            progress=lambda d, t: report(d, t, 0.9, 0.1),
        )
    except RelaxError as exc:
        # Errors travel back as text: some project errors do not survive pickling.
        return Outcome(script, error=str(exc))
    return Outcome(script, path=target, duration_s=prepared.timeline.duration_s)
