"""Progress lines for long steps: amount done, rate and time left, at a steady pace.

A month of yellow trips takes minutes to download and load. One log line every ten seconds says
the task is alive and when it will finish; one line per chunk would bury everything else.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

EVERY_SECONDS = 10.0


class Progress:
    """Logs ``what`` has done at most every ``every_seconds``; the total size gives an estimate."""

    def __init__(self, what: str, total_bytes: int, every_seconds: float = EVERY_SECONDS) -> None:
        self.what = what
        self.total_bytes = total_bytes
        self.every_seconds = every_seconds
        self.started = self._last_line = time.monotonic()

    def update(self, bytes_done: int, rows_done: int | None = None) -> None:
        now = time.monotonic()
        if now - self._last_line >= self.every_seconds:
            self._last_line = now
            log.info("%s", self.describe(bytes_done, rows_done, now - self.started))

    def finish(self, bytes_done: int, rows_done: int | None = None) -> None:
        """Log the totals and the average rates, whatever the size: the line a short run shows."""
        elapsed = time.monotonic() - self.started
        log.info("%s in %.1f s", self.describe(bytes_done, rows_done, elapsed, done=True), elapsed)

    def describe(self, bytes_done: int, rows_done: int | None, elapsed: float, done: bool = False) -> str:
        """E.g. ``Reading f.csv.gz: 12.0 of 48.0 MB, 600,000 rows (60,000 rows/s), 1.2 MB/s,
        about 30 s left``."""
        elapsed = max(elapsed, 1e-9)
        amount = (
            f"{bytes_done / 1e6:.1f} of {self.total_bytes / 1e6:.1f} MB"
            if self.total_bytes
            else f"{bytes_done / 1e6:.1f} MB"
        )
        parts = [amount]
        if rows_done is not None:
            parts.append(f"{rows_done:,} rows ({rows_done / elapsed:,.0f} rows/s)")
        rate = bytes_done / elapsed
        parts.append(f"{rate / 1e6:.1f} MB/s")
        if self.total_bytes and rate and not done:
            parts.append(f"about {max(self.total_bytes - bytes_done, 0) / rate:.0f} s left")
        return f"{self.what}: {'done, ' if done else ''}{', '.join(parts)}"
