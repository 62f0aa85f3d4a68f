"""The library side of `streamsr eval`: read held-out HR frames, degrade them (degradations.py), upscale
with each method (the bicubic baseline, the real Enhancer), and score: PSNR/SSIM on Y and RGB, the specular
highlight figures (`highlight_masks`), texture. Returns an EvalReport; eval_report.py formats it (tables,
JSON, the picture grid).

The degradation and the bicubic baseline themselves (`degrade`, `bicubic_upscale`, `SCALE`) live in
degradations.py, shared with training (train/).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from .degradations import SCALE, SUITE, Degradation, bicubic_upscale, degrade
from .errors import InputError
from .frame import Frame
from .metrics import high_frequency_energy, psnr, rgb_to_y, ssim

if TYPE_CHECKING:  # annotations only: importing evaluate (as train/ does) does not import the Enhancer
    from .enhancer import Enhancer

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
GRID_CROP = 192  # HR edge of each picture-grid cell: big enough to judge texture, small enough to compare


def list_frames(folder: str | Path, *, limit: int | None = None) -> list[Path]:
    """Image files directly in `folder`, sorted by name; with `limit`, that many spread evenly over the list
    (so a subset of a multi-sequence folder still covers every sequence). InputError when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"frames folder {folder} does not exist or is not a folder")
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not paths:
        raise InputError(f"frames folder {folder} holds no images ({', '.join(IMAGE_EXTS)})")
    if limit is not None and 0 < limit < len(paths):
        idx = np.linspace(0, len(paths) - 1, limit).round().astype(int)
        paths = [paths[i] for i in idx]
    return paths


def read_hr(path: str | Path) -> np.ndarray:
    """An HR frame as (H, W, 3) uint8 RGB, cropped (top-left anchored) to a multiple of 4; InputError if
    unreadable or smaller than 16x16 (too small for a 4x4 LR frame)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"cannot decode image {path}")
    h, w = bgr.shape[:2]
    if h < 16 or w < 16:
        raise InputError(f"image {path} is {w}x{h}; evaluation needs at least 16x16")
    return np.ascontiguousarray(bgr[: h - h % SCALE, : w - w % SCALE, ::-1])


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)


def to_image(t: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8 (clamped, rounded), what a viewer/encoder receives."""
    return np.ascontiguousarray(t.clamp(0, 1).mul(255.0).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy())


def make_lr(hr: np.ndarray) -> np.ndarray:
    """THE degradation on a uint8 frame: (H, W, 3) uint8 (H, W multiples of 4) -> (H/4, W/4, 3) uint8."""
    return to_image(degrade(to_tensor(hr)))


Upscaler = Callable[[np.ndarray], np.ndarray]
"""(h, w, 3) uint8 LR -> (4h, 4w, 3) uint8 SR."""


def bicubic_upscaler(lr: np.ndarray) -> np.ndarray:
    """The baseline as an Upscaler: torch bicubic 4x, clamped and rounded to uint8 like a model's output."""
    return to_image(bicubic_upscale(to_tensor(lr)))


def enhancer_upscaler(enhancer: Enhancer) -> Upscaler:
    """An Upscaler that goes through the real Enhancer (tiling, engine, stitching): what users get."""

    def run(lr: np.ndarray) -> np.ndarray:
        return enhancer.enhance(Frame(image=lr, seq=0)).image

    return run


HIGHLIGHT_LEVEL = 200  # brightest channel at least this (of 255) ...
HIGHLIGHT_SPREAD = 0.3  # ... and max - min channel at most this fraction of it: bright and nearly white
HIGHLIGHT_DILATE = 2  # px: the soft edge of a reflection, where halos and beading show
RING = (3, 4)  # px outside the (undilated) highlight: where dark halos sit
DARK_LEVELS = 10.0  # a ring pixel is "too dark" when its Y is this many levels below the HR's
SHAVE = 4


def highlight_masks(hr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Specular highlights of an HR frame and the ring around them.

    hr: (H, W, 3) uint8 RGB. Returns (highlight, ring), (H, W) bool. A highlight pixel is a specular
    reflection: its brightest channel is >= HIGHLIGHT_LEVEL and its channel spread (max - min) is at most
    HIGHLIGHT_SPREAD of that (bright and unsaturated, i.e. nearly white; tissue is red-dominant), the set
    dilated by HIGHLIGHT_DILATE px. The ring is the pixels RING[0]..RING[1] px (Chebyshev distance) outside
    the undilated set, where an SR model's overshoot makes dark halos.
    """
    rgb = hr.astype(np.int16)
    hi, lo = rgb.max(axis=2), rgb.min(axis=2)
    core = ((hi >= HIGHLIGHT_LEVEL) & (hi - lo <= HIGHLIGHT_SPREAD * hi)).astype(np.uint8)

    def dilate(r: int) -> np.ndarray:
        return cv2.dilate(core, np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0 if r else core > 0

    return dilate(HIGHLIGHT_DILATE), dilate(RING[1]) & ~dilate(RING[0] - 1)


_SCORE_KEYS = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "hl_sse", "hl_n", "out_sse", "out_n", "ring_dark", "ring_n",
               "hf_sr", "hf_hr")  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Scores:
    """Per-frame quality of one method, float64 arrays of shape (frames,). Y: BT.601 luma; shave 4 px.

    hl_* / out_*: sum of squared Y error (0..255 scale) and pixel count inside / outside the highlight
    mask (highlight_masks); ring_dark / ring_n: ring pixels more than DARK_LEVELS too dark, ring pixels.
    The highlight figures pool pixels over frames (a frame with one small reflection weighs little).
    hf_sr / hf_hr: high-frequency Y energy (metrics.high_frequency_energy) of the output and of the HR frame.
    """

    psnr_y: np.ndarray
    ssim_y: np.ndarray
    psnr_rgb: np.ndarray
    ssim_rgb: np.ndarray
    hl_sse: np.ndarray
    hl_n: np.ndarray
    out_sse: np.ndarray
    out_n: np.ndarray
    ring_dark: np.ndarray
    ring_n: np.ndarray
    hf_sr: np.ndarray
    hf_hr: np.ndarray

    def texture_ratio(self) -> float:
        """High-frequency energy of the outputs over that of the HR frames, pooled over frames: 1.0 = as much
        fine detail as the truth, below 1 = smoother (bicubic ~0.1), above 1 = more than is there."""
        return float(self.hf_sr.sum() / self.hf_hr.sum()) if self.hf_hr.sum() > 0 else float("nan")

    def mean(self) -> dict[str, float]:
        return {k: float(np.mean(getattr(self, k))) for k in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")}

    def highlights(self) -> dict[str, float]:
        """PSNR-Y inside and outside the highlights (pooled; nan without highlight pixels), the share of
        all squared Y error that falls inside them, and the fraction of ring pixels that are too dark."""

        def pooled(sse: np.ndarray, n: np.ndarray) -> float:
            total = float(n.sum())
            return float(10 * np.log10(255.0**2 / max(float(sse.sum()) / total, 1e-12))) if total else float("nan")

        err = float(self.hl_sse.sum() + self.out_sse.sum())
        ring = float(self.ring_n.sum())
        return {
            "psnr_y_highlight": pooled(self.hl_sse, self.hl_n),
            "psnr_y_outside": pooled(self.out_sse, self.out_n),
            "highlight_pixels": float(self.hl_n.sum() / max(1.0, float(self.hl_n.sum() + self.out_n.sum()))),
            "highlight_error_share": float(self.hl_sse.sum()) / err if err else float("nan"),
            "ring_dark_fraction": float(self.ring_dark.sum()) / ring if ring else float("nan"),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalReport:
    """Scores per degradation name (SUITE order) and method name (bicubic first), the frames measured and
    the grid rows (first degradation only).

    grid_rows: for the first few frames, a list of (H, W, 3) uint8 crops: LR (nearest 4x), each method, HR.
    """

    frames: list[Path]
    rows: dict[str, dict[str, Scores]]
    grid_rows: list[list[np.ndarray]]

    @property
    def scores(self) -> dict[str, Scores]:
        """The first degradation's scores per method (the plain `streamsr eval` table)."""
        return next(iter(self.rows.values()))


def _centre_crop_box(h: int, w: int, edge: int) -> tuple[int, int, int]:
    e = min(edge, h, w) // SCALE * SCALE
    return (h - e) // 2 // SCALE * SCALE, (w - e) // 2 // SCALE * SCALE, e


def _score(sr: np.ndarray, hr_t: torch.Tensor, hr_y: np.ndarray, hr_hf: float,
           masks: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:  # fmt: skip
    """One SR frame's figures (see Scores) against its HR frame (tensor, shaved Y, HF energy, masks)."""
    sr_t = to_tensor(sr)
    sr_y = rgb_to_y(sr_t)[0, SHAVE:-SHAVE, SHAVE:-SHAVE].numpy()
    sq = (sr_y - hr_y) ** 2
    hl, ring = (m[SHAVE:-SHAVE, SHAVE:-SHAVE] for m in masks)
    return {
        "psnr_y": float(psnr(sr_t, hr_t, y_only=True)),
        "ssim_y": float(ssim(sr_t, hr_t, y_only=True)),
        "psnr_rgb": float(psnr(sr_t, hr_t, y_only=False)),
        "ssim_rgb": float(ssim(sr_t, hr_t, y_only=False)),
        "hl_sse": float(sq[hl].sum()),
        "hl_n": float(hl.sum()),
        "out_sse": float(sq[~hl].sum()),
        "out_n": float((~hl).sum()),
        "ring_dark": float((sr_y[ring] < hr_y[ring] - DARK_LEVELS).sum()),
        "ring_n": float(ring.sum()),
        "hf_sr": float(high_frequency_energy(sr_t)),
        "hf_hr": hr_hf,
    }


def evaluate_folder(
    frames: list[Path],
    methods: dict[str, Upscaler],
    *,
    degradations: Sequence[Degradation] = SUITE[:1],
    grid_frames: int = 4,
    on_frame: Callable[[Path], None] | None = None,
) -> EvalReport:
    """Degrade every HR frame in every way given, upscale each LR with every method, score against the HR.

    frames: image paths (see list_frames). methods: name -> Upscaler, e.g. {"bicubic": bicubic_upscaler,
    "srgan-x4-lite": enhancer_upscaler(enh)}. degradations: default the original antialiased-bicubic LR;
    `SUITE` for `--suite`. Full frames are scored (borders, overlays and all: what a viewer sees), PSNR/SSIM
    on Y and on RGB with a 4-px shave, plus the highlight figures. Returns an EvalReport; never prints.
    """
    per = {d.name: {m: {k: [] for k in _SCORE_KEYS} for m in methods} for d in degradations}
    rows: list[list[np.ndarray]] = []
    for i, path in enumerate(frames):
        hr = read_hr(path)
        hr_t = to_tensor(hr)
        hr_y = rgb_to_y(hr_t)[0, SHAVE:-SHAVE, SHAVE:-SHAVE].numpy()
        masks = highlight_masks(hr)
        hr_hf = float(high_frequency_energy(hr_t))
        for j, degradation in enumerate(degradations):
            lr = degradation(hr)
            outs = {}
            for name, up in methods.items():
                sr = up(lr)
                if sr.shape != hr.shape:
                    raise InputError(f"method {name!r} returned {sr.shape} for {path}, expected {hr.shape}")
                outs[name] = sr
                for k, v in _score(sr, hr_t, hr_y, hr_hf, masks).items():
                    per[degradation.name][name][k].append(v)
            if j == 0 and i < grid_frames:
                y, x, e = _centre_crop_box(*hr.shape[:2], GRID_CROP)
                lr_near = np.repeat(np.repeat(lr, SCALE, axis=0), SCALE, axis=1)
                cells = [lr_near] + [outs[n] for n in methods] + [hr]
                rows.append([np.ascontiguousarray(c[y : y + e, x : x + e]) for c in cells])
        if on_frame is not None:
            on_frame(path)
    scores = {d: {m: Scores(**{k: np.asarray(v, dtype=np.float64) for k, v in rec.items()}) for m, rec in by.items()}
              for d, by in per.items()}  # fmt: skip
    return EvalReport(frames=list(frames), rows=scores, grid_rows=rows)
