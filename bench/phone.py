"""`relax phone` benchmark: the time to make the feed for the whole library, cold and warm.

Run from the checkout: `.venv/bin/python bench/phone.py` (the Dutch library), `--language en nl`
for both, `--quick` for two short sessions only.

Each run is `python -m audio_engine phone -l LANG --local --no-serve --dir DIR` in a subprocess,
so every figure includes Python start-up and imports:

- cold: an empty cache folder (a fresh RELAX_CACHE_DIR: speech synthesis, the loudness
  measurement and what is made once per machine are part of it) and an empty feed folder;
- new folder: the same again into an empty feed folder, with the cache the cold run left (the
  speech and gains are there: the MP3 exports themselves);
- warm: the same command again on that folder, which exports nothing (the sessions' keys are
  computed and compared, the feed and QR code written).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "audio_engine", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"relax {' '.join(args)} failed:\n{done.stderr}")
    return wall, done.stderr


def _audio_minutes(folder: Path) -> float:
    import soundfile

    total = 0.0
    for path in folder.glob("*.mp3"):
        info = soundfile.info(str(path))
        total += info.frames / info.samplerate
    return total / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--language", nargs="+", default=["nl"], help="languages (default nl)")
    parser.add_argument("--quick", action="store_true", help="quick-reset and breathing-478 only")
    args = parser.parse_args()
    sessions = ["quick-reset", "breathing-478"] if args.quick else []
    rows = []
    with tempfile.TemporaryDirectory(prefix="relax-bench-phone-") as tmp:
        for language in args.language:
            base = Path(tmp) / language
            env = dict(os.environ, RELAX_CACHE_DIR=str(base / "cache"))
            env.pop("RELAX_DATA_DIR", None)
            command = ["phone", *sessions, "-l", language, "--local", "--no-serve", "--dir"]
            cold, said = _run([*command, str(base / "cold")], env)
            made = re.search(r"(\d+) exported", said)
            fresh, _ = _run([*command, str(base / "fresh")], env)
            warm, said = _run([*command, str(base / "fresh")], env)
            assert re.search(r"\b0 exported", said), said
            folder = base / "fresh"
            size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
            rows.append(
                (
                    language,
                    int(made.group(1)) if made else 0,
                    _audio_minutes(folder),
                    size_mb,
                    cold,
                    fresh,
                    warm,
                )
            )
    print(f"relax phone: the feed for {'two sessions' if args.quick else 'the whole library'}")
    print(f"({os.cpu_count()} cores; wall seconds of the whole command, start-up included)")
    print()
    print("| language | sessions | audio min | folder MB | cold s | new folder s | warm s |")
    print("|---|---|---|---|---|---|---|")
    for language, count, minutes, size_mb, cold, fresh, warm in rows:
        print(
            f"| {language} | {count} | {minutes:.1f} | {size_mb:.1f} | {cold:.1f} | "
            f"{fresh:.1f} | {warm:.2f} |"
        )


if __name__ == "__main__":
    main()
