"""Practice history benchmark: what recording a play costs, and reading a long history.

Run from the checkout: `.venv/bin/python bench/history.py` (a few seconds).

In a fresh temporary folder: `history.record` of one play into a file that already holds 0, 365
and 3650 rows (a year and ten years of daily practice; each write is one transaction with its
disk sync), then `history.plays()` (every row read and parsed) and `history.summary` (today, this
week, the streaks) over all of them. Times are the median and 95th percentile of repeated calls,
in milliseconds; the file size is after the rows are in.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audio_engine import history  # noqa: E402


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000


def _fill(path: Path, rows: int) -> None:
    # Straight into the table, one transaction: the benchmark measures one play's write.
    start = history.now().replace(hour=8, minute=0, second=0, microsecond=0)
    plays = [
        history.Play(
            start - timedelta(days=k),
            start - timedelta(days=k, minutes=-10),
            "breathing-478",
            "en",
            600.0,
            True,
            8,
        )  # fmt: skip
        for k in range(rows)
    ]
    with history._transaction(path) as conn:
        conn.executemany(
            "INSERT INTO plays (started, ended, session_id, language, listened_s, completed, "
            "cycles) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (p.started.isoformat(), p.ended.isoformat(), p.session_id, p.language, 600.0, 1, 8)
                for p in plays
            ],
        )


def main() -> int:
    print("| rows before | record median ms | record p95 ms | plays() ms | summary ms | file KiB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for rows in (0, 365, 3650):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / history.FILE_NAME
            if rows:
                _fill(path, rows)
            play = history.Play(history.now(), history.now(), "breathing-478", "en", 300.0, True, 8)
            writes = []
            for _ in range(60):
                began = time.perf_counter()
                history.record(play, path)
                writes.append(time.perf_counter() - began)
            reads, sums = [], []
            for _ in range(10):
                began = time.perf_counter()
                everything = history.plays(path=path)
                reads.append(time.perf_counter() - began)
                began = time.perf_counter()
                history.summary(everything, history.now().date())
                sums.append(time.perf_counter() - began)
            w50, w95 = _ms(writes)
            r50, _ = _ms(reads)
            s50, _ = _ms(sums)
            size = path.stat().st_size / 1024
            print(f"| {rows} | {w50:.1f} | {w95:.1f} | {r50:.1f} | {s50:.1f} | {size:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
