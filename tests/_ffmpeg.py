"""ffmpeg as an independent reader of exported files: its own decoders, its EBU R128 meter (the
`ebur128` filter) and its chapter parser (the same one ffprobe uses), from the static build that
the imageio-ffmpeg wheel ships (a [test] extra; no system ffmpeg needed)."""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction

import imageio_ffmpeg

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [FFMPEG, "-hide_banner", "-nostdin", "-v", "error", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )


def r128(path) -> tuple[float, float]:
    """(integrated loudness in LUFS, true peak in dBTP over both channels) of the file, as
    ffmpeg's `ebur128` filter measures them (`peak=true`: BS.1770's oversampled peak), decoded
    by ffmpeg's own decoder, in one run. The loudness to the filter's full precision (its summary
    prints one decimal); the peak from its per-channel readings (linear, three decimals: about
    0.01 dB at -1 dBTP)."""
    out = _run(
        "-i",
        str(path),
        "-af",
        "ebur128=peak=true:metadata=1,ametadata=mode=print:file=-",
        "-f",
        "null",
        "-",
    ).stdout
    values = re.findall(r"lavfi\.r128\.I=(-?[0-9.]+|-?inf)", out)
    assert values, f"ffmpeg measured nothing in {path}"
    peaks = [float(v) for v in re.findall(r"lavfi\.r128\.true_peaks_ch\d+=([0-9.]+)", out)]
    assert peaks, f"ffmpeg measured no true peak in {path}"
    peak = max(peaks)
    return float(values[-1]), 20 * math.log10(peak) if peak > 0 else -math.inf


def integrated_lufs(path) -> float:
    """The file's integrated loudness as ffmpeg's `ebur128` filter measures it (`r128`)."""
    return r128(path)[0]


def true_peak_dbtp(path) -> float:
    """The file's true peak in dBTP as ffmpeg's `ebur128` filter measures it (`r128`)."""
    return r128(path)[1]


@dataclass(frozen=True)
class Chapter:
    start_s: float
    end_s: float
    title: str


def chapters(path) -> list[Chapter]:
    """The chapters ffmpeg's demuxer finds in the file, in the order it lists them
    (`ffmpeg -i FILE -f ffmetadata -`, what ffprobe -show_chapters prints too)."""
    text = _run("-i", str(path), "-f", "ffmetadata", "-").stdout
    found = []
    for block in text.split("[CHAPTER]")[1:]:
        fields = dict(
            line.split("=", 1)
            for line in block.strip().splitlines()
            if "=" in line and line[0] != ";"
        )
        base = Fraction(fields["TIMEBASE"])
        found.append(
            Chapter(
                float(int(fields["START"]) * base),
                float(int(fields["END"]) * base),
                fields.get("title", ""),
            )
        )
    return found
