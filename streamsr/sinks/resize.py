"""Resizing on the way out: `--outscale` sizes (`scaled_size`) and ResizedSink, which shrinks (or grows) the
4x frames with an antialiased filter before another sink."""

from __future__ import annotations

import cv2

from ..frame import Frame
from .base import Sink


def scaled_size(width: int, height: int, outscale: float) -> tuple[int, int]:
    """(width, height) of a `width` x `height` frame at `outscale` times its size, each rounded to an even
    number (4:2:0 video needs even sizes; a 4x output is even already)."""
    return max(2, 2 * round(width * outscale / 2)), max(2, 2 * round(height * outscale / 2))


class ResizedSink:
    """Writes each frame to `inner` resized to (width, height) with an antialiased filter: OpenCV's
    INTER_AREA, which averages every source pixel an output pixel covers, so shrinking the 4x output (the
    `--outscale` of Real-ESRGAN's command line) does not alias fine texture. Frames already of that size
    pass untouched."""

    def __init__(self, inner: Sink, *, width: int, height: int) -> None:
        self._inner = inner
        self.width, self.height = width, height

    def write(self, frame: Frame) -> None:
        image = frame.image
        if image.shape[1] != self.width or image.shape[0] != self.height:
            image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
        self._inner.write(frame.with_image(image, scale=frame.scale))

    def close(self) -> None:
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()
