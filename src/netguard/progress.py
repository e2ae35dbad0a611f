"""A one-line progress report on a terminal, for runs long enough to make someone wonder.

A replay of an organization trail takes minutes to hours, and a silent terminal for that long looks like
a hang. The line goes to stderr, so a report on stdout (JSON, CSV) is unaffected. It shows only when
stderr is a terminal and CI is unset (a CI log fills with carriage returns otherwise), and only after a
short delay, so quick runs print nothing extra.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TextIO


def wanted(stream: TextIO | None = None) -> bool:
    """Whether progress belongs on stream (stderr by default): a terminal, and not under CI."""
    stream = sys.stderr if stream is None else stream
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False
    return tty and os.environ.get("CI", "").strip().lower() in ("", "0", "false", "no")


def duration(seconds: float) -> str:
    """45s, 3m05s, 2h07m: short enough for a status line."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """Files done (of total, when known), records and records/s, and an ETA from the files' pace.

    update() is cheap to call after every file: the line is redrawn at most every `interval` seconds.
    close() ends the line, if one was shown, so that what follows starts on a fresh line."""

    DELAY = 2.0  # seconds before the first line: a quick run prints nothing extra
    INTERVAL = 0.25  # seconds between redraws

    def __init__(
        self,
        total: int | None = None,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        delay: float | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.enabled = wanted(self.stream) if enabled is None else enabled
        self.total, self.clock = total, clock
        self.delay = self.DELAY if delay is None else delay
        self.interval = self.INTERVAL if interval is None else interval
        self.start = clock()
        self.drawn_at: float | None = None
        self.width = 0

    def update(self, files: int, records: int) -> None:
        """The run so far: files done and records read."""
        if not self.enabled:
            return
        now = self.clock()
        elapsed = now - self.start
        if elapsed < self.delay or (self.drawn_at is not None and now - self.drawn_at < self.interval):
            return
        self.drawn_at = now
        self._write(self.line(files, records, elapsed))

    def line(self, files: int, records: int, elapsed: float) -> str:
        done = f"{files:,}/{self.total:,} files" if self.total else f"{files:,} files"
        parts = [done, f"{records:,} records", f"{records / elapsed if elapsed > 0 else 0:,.0f} records/s"]
        if self.total and files:
            remaining = max(self.total - files, 0) * elapsed / files
            parts.append(f"ETA {duration(remaining)}")
        return "netguard: " + ", ".join(parts)

    def _write(self, text: str) -> None:
        padded = text.ljust(self.width)  # a shorter line must cover the longer one before it
        self.width = len(text)
        try:
            self.stream.write("\r" + padded)
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away: the run goes on without progress
            self.enabled = False

    def close(self) -> None:
        if self.enabled and self.drawn_at is not None:
            try:
                self.stream.write("\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass
        self.drawn_at = None
