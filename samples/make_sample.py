"""Make samples/sample.mp4: a slow pan-and-zoom over one real colonoscopy image, downscaled to a
low-resolution "scope" clip (128x96, 10 fps, 2 s) with a quiet 440 Hz AAC track to show audio passthrough.

Source image: Kvasir-SEG (Jha et al., MMM 2020) / HyperKvasir (Borgli et al., Sci Data 7:283, 2020),
CC BY 4.0 — see README.md. Run from the repository root:
    python samples/make_sample.py ../shared/data/kvasir_seg/train/cju2p91qir00k08350ddfif0w.jpg
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

SIZE = (128, 96)
FPS = 10
FRAMES = 20
SAMPLE_RATE = 16000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("image", type=Path)
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).parent / "sample.mp4")
    args = ap.parse_args()
    hr = cv2.cvtColor(cv2.imread(str(args.image)), cv2.COLOR_BGR2RGB)
    h, w = hr.shape[:2]
    with av.open(str(args.output), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        video.options = {"crf": "12"}
        audio = out.add_stream("aac", rate=SAMPLE_RATE)
        audio.layout = "mono"
        for i in range(FRAMES):
            t = i / (FRAMES - 1)
            # window of 4:3 aspect, zooming from 60% to 45% of the width while panning left to right
            ww = int(w * (0.60 - 0.15 * t))
            wh = ww * 3 // 4
            x0 = int((w - ww) * (0.25 + 0.4 * t))
            y0 = int((h - wh) * 0.55)
            crop = hr[y0 : y0 + wh, x0 : x0 + ww]
            lr = cv2.resize(crop, SIZE, interpolation=cv2.INTER_AREA)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(lr), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, FPS)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        n = SAMPLE_RATE * FRAMES // FPS
        tone = (0.05 * np.sin(2 * np.pi * 440 * np.arange(n) / SAMPLE_RATE)).astype(np.float32)
        chunk = 1024
        for start in range(0, n, chunk):
            af = av.AudioFrame.from_ndarray(tone[None, start : start + chunk], format="fltp", layout="mono")
            af.sample_rate, af.pts = SAMPLE_RATE, start
            for packet in audio.encode(af):
                out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)


if __name__ == "__main__":
    main()
