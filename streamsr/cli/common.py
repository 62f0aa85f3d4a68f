"""What `stream` and `view` share: the status line, number formatting, WxH options (no torch: the viewer
imports this)."""

from __future__ import annotations

import logging
import sys
import time
from collections import deque

import typer

from ..frame import Timeline, now_ns


def parse_size(option: str, spec: str) -> tuple[int, int]:
    """(width, height) from `WxH`; a one-line usage error naming `option` otherwise."""
    w, sep, h = spec.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) < 1 or int(h) < 1:
        raise typer.BadParameter(f"{option} must be WIDTHxHEIGHT with positive numbers (e.g. 1280x720), got {spec!r}")
    return int(w), int(h)


def fmt_ms(x: float) -> str:
    return "-" if x != x else f"{x:.0f}"  # NaN -> "-"


class _EndStatusLine(logging.Filter):
    """Ends the status line before a log record is written, so a warning gets a line of its own."""

    def __init__(self, status: "StatusLine") -> None:
        super().__init__()
        self._status = status

    def filter(self, record: logging.LogRecord) -> bool:
        self._status.break_line()
        return True


class StatusLine:
    """A one-line status on stderr, refreshed at most every `interval` s, over the last `window` s (the
    frames' timelines, for `view`; `stream` shows what its runner reports). Notices and log records (the
    root logger's handlers, e.g. a reconnect warning) are printed on lines of their own, never onto the
    status line: it is ended first and redrawn at the next refresh."""

    def __init__(self, *, interval: float = 1.0, window: float = 3.0, quiet: bool = False) -> None:
        self.interval, self.window, self.quiet = interval, window, quiet
        self._recent: deque[Timeline] = deque()
        self._last_print = time.monotonic()
        self._shown = False
        self._filter = _EndStatusLine(self)
        self._handlers = list(logging.getLogger().handlers)
        for h in self._handlers:
            h.addFilter(self._filter)

    def add(self, timeline: Timeline, stage: str) -> bool:
        """Record a frame's timeline (stamped at `stage`); True when a refresh is due."""
        self._recent.append(timeline)
        horizon = now_ns() - int(self.window * 1e9)
        while self._recent and (getattr(self._recent[0], stage) or 0) < horizon:
            self._recent.popleft()
        return time.monotonic() - self._last_print >= self.interval

    @property
    def recent(self) -> list[Timeline]:
        return list(self._recent)

    def show(self, line: str) -> None:
        self._last_print = time.monotonic()
        if not self.quiet:
            print(f"\r{line}\033[K", end="", file=sys.stderr, flush=True)
            self._shown = True

    def notice(self, text: str, *, always: bool = False) -> None:
        """`streamsr: text` on its own line (with --quiet only when `always`: warnings and hints)."""
        if self.quiet and not always:
            return
        self.break_line()
        print(f"streamsr: {text}", file=sys.stderr, flush=True)

    def break_line(self) -> None:
        if self._shown:
            print(file=sys.stderr, flush=True)
            self._shown = False

    def end(self) -> None:
        self.break_line()
        for h in self._handlers:
            h.removeFilter(self._filter)
        self._handlers = []
