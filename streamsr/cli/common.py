"""What `stream` and `view` share: the status line, number formatting, WxH options (no torch: the viewer
imports this)."""

from __future__ import annotations

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


class LiveStatus:
    """A one-line status on stderr, refreshed at most every `interval` s, over the last `window` s."""

    def __init__(self, *, interval: float = 1.0, window: float = 3.0, quiet: bool = False) -> None:
        self.interval, self.window, self.quiet = interval, window, quiet
        self._recent: deque[Timeline] = deque()
        self._last_print = time.monotonic()
        self._shown = False

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

    def end(self) -> None:
        if self._shown:
            print(file=sys.stderr)
            self._shown = False
