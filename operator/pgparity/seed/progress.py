"""Progress of a long copy: a line per table, and an overall bar when stderr is a terminal."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pgparity.models.quantities import format_bytes

BAR_WIDTH = 30
REDRAW_SECONDS = 0.2


class SeedProgress:
    def __init__(
        self, write: Callable[[str], None], *, terminal: bool = False, total_bytes: int = 0
    ) -> None:
        self._write = write
        self._terminal = terminal
        self._total = total_bytes
        self._done = 0
        self._started = time.monotonic()
        self._drawn = 0.0
        self._lock = threading.Lock()
        self._bar_shown = False

    def start(self, total_bytes: int) -> None:
        self._total = total_bytes
        self._started = time.monotonic()

    def say(self, message: str) -> None:
        with self._lock:
            self._clear_bar()
            self._write(f"pgparity: {message}\n")

    def copied(self, count: int) -> None:
        with self._lock:
            self._done += count
            now = time.monotonic()
            if self._terminal and now - self._drawn >= REDRAW_SECONDS:
                self._drawn = now
                self._draw(now)

    def table_done(self, label: str, rows: int, size: int, seconds: float) -> None:
        rate = size / seconds / 1024**2 if seconds > 0 else 0.0
        self.say(
            f"copied {label}: {rows:,} rows, {format_bytes(size)} in {seconds:.1f} s "
            f"({rate:.1f} MB/s)"
        )

    def finish(self) -> None:
        with self._lock:
            self._clear_bar()

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-6)
        share = min(0.99, self._done / self._total) if self._total else 0.0
        filled = int(share * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        rate = self._done / elapsed / 1024**2
        self._write(
            f"\r[{bar}] {share:4.0%} {format_bytes(self._done)} of about "
            f"{format_bytes(self._total)}, {rate:.1f} MB/s "
        )
        self._bar_shown = True

    def _clear_bar(self) -> None:
        if self._bar_shown:
            self._write("\r" + " " * (BAR_WIDTH + 60) + "\r")
            self._bar_shown = False
