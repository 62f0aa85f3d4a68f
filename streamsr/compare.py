"""The comparison video of `enhance --compare`: bicubic | the model | (with `--compare-with`) a second model,
side by side, each panel captioned in a dark strip at its top so a viewer can tell which is which.

CompareSink is a Sink like the others (write / close / abort, never a tensor): it wraps a file sink of
`len(labels)` panels' width and composes each enhanced frame's panels from its `lowres` source (bicubic) and
its image. The third panel comes from `others`: callables Frame -> Frame (an Enhancer's `enhance`, built by
the job code) run on the same low-res source frame, so every panel shows the same instant at the same
timestamp. The caption strip is rendered once, at construction; each frame only copies it in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from .frame import Frame
from .sinks import Sink

BICUBIC_LABEL = "bicubic"
MODEL_LABEL = "streamsr"
"""The model panel's caption when the caller does not name the weights (jobs.weights_label does)."""
STRIP_FRACTION = 0.07
"""Caption strip height as a share of the panel height (11 px on a 160-px panel, 34 px on 480): tall
enough to read at a glance, small enough to hide little of the picture."""
STRIP_MIN, STRIP_MAX = 11, 40
STRIP_VALUE, TEXT_VALUE, DIVIDER_VALUE = 16, 240, 32
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def strip_height(panel_height: int) -> int:
    """Rows the caption strip takes at the top of a panel `panel_height` rows tall (never all of it)."""
    return max(1, min(panel_height // 2, max(STRIP_MIN, min(STRIP_MAX, round(panel_height * STRIP_FRACTION)))))


def label_strip(text: str, width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8: `text` in near-white on a near-black strip, left-aligned with a small margin,
    scaled to fill ~65% of the strip's height and shrunk to fit its width."""
    strip = np.full((height, width, 3), STRIP_VALUE, np.uint8)
    margin = max(2, height // 4)
    (w1, h1), _ = cv2.getTextSize(text, _FONT, 1.0, 1)
    scale = min(0.65 * height / max(h1, 1), (width - 2 * margin) / max(w1, 1))
    if scale <= 0:
        return strip
    thickness = max(1, round(scale * 1.5))
    (_, th), _ = cv2.getTextSize(text, _FONT, scale, thickness)
    baseline_y = (height + th) // 2
    cv2.putText(strip, text, (margin, baseline_y), _FONT, scale, (TEXT_VALUE,) * 3, thickness, cv2.LINE_AA)
    return strip


class CompareSink:
    """Wraps `inner`, a sink of width `len(labels) * width` and height `height`, and writes to it, for each
    enhanced frame: bicubic of `frame.lowres` to (height, width) | `frame.image` | each of `others` applied
    to the low-res frame (enhanced images of another size are resized to the panel, antialiased), with `labels[k]` captioned on panel k and a 2-px dark divider at each seam.

    labels: one per panel, the first for bicubic (`BICUBIC_LABEL`), so len(labels) == 2 + len(others).
    others: Frame -> Frame 4x enhancers (their output must be (height, width, 3)); each is given a new Frame
    with the source pixels, seq and pts, and its own Timeline, so the main frame's stamps stay its own.
    Frames without `lowres` (not from an Enhancer) raise ValueError."""

    def __init__(self, inner: Sink, *, width: int, height: int, labels: Sequence[str],
                 others: Sequence[Callable[[Frame], Frame]] = ()) -> None:
        if len(labels) != 2 + len(others):
            raise ValueError(f"CompareSink needs one label per panel: {2 + len(others)} panels, "
                             f"got {len(labels)} labels")
        self._inner = inner
        self._others = tuple(others)
        self.width, self.height = width, height
        self.panels = len(labels)
        rows = strip_height(height)
        self._strip = np.concatenate([label_strip(t, width, rows) for t in labels], axis=1)
        self._dividers = [k * width + d for k in range(1, self.panels) for d in (-1, 0)]
        self._strip[:, self._dividers] = DIVIDER_VALUE

    def compose(self, frame: Frame) -> np.ndarray:
        """(height, panels * width, 3) uint8: the labelled panels of one enhanced frame."""
        if frame.lowres is None:
            raise ValueError(f"frame {frame.seq} carries no low-res source image for a comparison view")
        w, h = self.width, self.height
        out = np.empty((h, self.panels * w, 3), np.uint8)
        out[:, :w] = cv2.resize(frame.lowres, (w, h), interpolation=cv2.INTER_CUBIC)
        out[:, w : 2 * w] = self._fit(frame.image)
        for k, enhance in enumerate(self._others, start=2):
            source = Frame(image=frame.lowres, seq=frame.seq, pts=frame.pts, time_base=frame.time_base,
                           repeated=frame.repeated)
            out[:, k * w : (k + 1) * w] = self._fit(enhance(source).image)
        out[:, self._dividers] = DIVIDER_VALUE
        out[: self._strip.shape[0]] = self._strip
        return out

    def _fit(self, image: np.ndarray) -> np.ndarray:
        """An enhanced image at the panel size: resized with INTER_AREA (antialiased) when the panels are
        smaller than the model's output (`--outscale`), else as is."""
        if image.shape[0] == self.height and image.shape[1] == self.width:
            return image
        return cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)

    def write(self, frame: Frame) -> None:
        self._inner.write(frame.with_image(self.compose(frame), scale=frame.scale))

    def close(self) -> None:
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()
