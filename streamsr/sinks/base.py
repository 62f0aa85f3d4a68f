"""The sink protocol: where enhanced frames go. Every sink has `write(frame)`, `close()` (finish: the output
is complete and playable) and `abort()` (discard: nothing that looks complete is left behind). Sinks never
see tensors."""

from __future__ import annotations

from typing import Protocol

from ..frame import Frame


class Sink(Protocol):
    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...
