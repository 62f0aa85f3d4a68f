"""Degradation model and bicubic baseline shared by training (train/), and the library side of `streamsr eval`.

THE degradation (training and evaluation must use the same one, so it lives here, once):
    HR RGB uint8 -> crop to a multiple of 4 -> float [0, 1] -> torch bicubic resize to (H/4, W/4) with
    antialias=True (a proper anti-aliased bicubic downscale, the kernel MATLAB's imresize uses) ->
    clamp to [0, 1] -> quantise to 8 bits (a real LR frame arrives as uint8).
The bicubic baseline upscales with torch bicubic (align_corners=False, no antialias: upsampling).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .enhancer import Enhancer
from .errors import InputError, OutputError
from .frame import Frame
from .metrics import psnr, ssim

SCALE = 4


def crop_to_multiple(hr: torch.Tensor, multiple: int = SCALE) -> torch.Tensor:
    """(..., H, W) -> (..., H - H % m, W - W % m): the top-left part, so LR and HR align exactly."""
    h, w = hr.shape[-2:]
    return hr[..., : h - h % multiple, : w - w % multiple]


def degrade(hr: torch.Tensor, *, scale: int = SCALE, quantize: bool = True) -> torch.Tensor:
    """Bicubic (antialiased) downscale by `scale`.

    hr: (3, H, W) or (N, 3, H, W) float in [0, 1], H and W multiples of `scale` (crop_to_multiple first).
    Returns (…, 3, H/scale, W/scale) float32 in [0, 1], rounded to multiples of 1/255 when `quantize`.
    """
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"HR size {h}x{w} is not a multiple of {scale}; crop_to_multiple first")
    batched = hr.dim() == 4
    x = hr if batched else hr.unsqueeze(0)
    lr = F.interpolate(x.float(), size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False)
    lr = lr.clamp_(0.0, 1.0)
    if quantize:
        lr = lr.mul_(255.0).round_().div_(255.0)
    return lr if batched else lr[0]


def bicubic_upscale(lr: torch.Tensor, *, scale: int = SCALE) -> torch.Tensor:
    """The baseline. lr: (3, h, w) or (N, 3, h, w) float in [0, 1] -> (…, 3, scale*h, scale*w) float32 clamped."""
    batched = lr.dim() == 4
    x = lr if batched else lr.unsqueeze(0)
    up = F.interpolate(x.float(), scale_factor=scale, mode="bicubic", align_corners=False).clamp_(0.0, 1.0)
    return up if batched else up[0]


# ---- evaluation on a folder of HR frames (`streamsr eval`) ---------------------------------------------

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


@dataclass(frozen=True, slots=True, kw_only=True)
class Scores:
    """Per-frame quality of one method, float64 arrays of shape (frames,). Y: BT.601 luma; shave 4 px."""

    psnr_y: np.ndarray
    ssim_y: np.ndarray
    psnr_rgb: np.ndarray
    ssim_rgb: np.ndarray

    def mean(self) -> dict[str, float]:
        return {k: float(np.mean(getattr(self, k))) for k in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")}


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalReport:
    """Scores per method name (insertion order: bicubic first), the frames measured, and the grid rows.

    grid_rows: for the first few frames, a list of (H, W, 3) uint8 crops: LR (nearest 4x), each method, HR.
    """

    frames: list[Path]
    scores: dict[str, Scores]
    grid_rows: list[list[np.ndarray]]


def _centre_crop_box(h: int, w: int, edge: int) -> tuple[int, int, int]:
    e = min(edge, h, w) // SCALE * SCALE
    return (h - e) // 2 // SCALE * SCALE, (w - e) // 2 // SCALE * SCALE, e


def evaluate_folder(
    frames: list[Path],
    methods: dict[str, Upscaler],
    *,
    grid_frames: int = 4,
    on_frame: Callable[[Path], None] | None = None,
) -> EvalReport:
    """Degrade every HR frame, upscale the LR with every method, score each against the HR.

    frames: image paths (see list_frames). methods: name -> Upscaler, e.g. {"bicubic": bicubic_upscaler,
    "srgan-x4-lite": enhancer_upscaler(enh)}. Full frames are scored (borders, overlays and all: what a
    viewer sees), PSNR/SSIM on Y and on RGB with a 4-px shave. Returns an EvalReport; never prints.
    """
    per: dict[str, dict[str, list[float]]] = {m: {k: [] for k in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")}
                                              for m in methods}  # fmt: skip
    rows: list[list[np.ndarray]] = []
    for i, path in enumerate(frames):
        hr = read_hr(path)
        lr = make_lr(hr)
        hr_t = to_tensor(hr)
        outs = {}
        for name, up in methods.items():
            sr = up(lr)
            if sr.shape != hr.shape:
                raise InputError(f"method {name!r} returned {sr.shape} for {path}, expected {hr.shape}")
            outs[name] = sr
            sr_t = to_tensor(sr)
            rec = per[name]
            rec["psnr_y"].append(float(psnr(sr_t, hr_t, y_only=True)))
            rec["ssim_y"].append(float(ssim(sr_t, hr_t, y_only=True)))
            rec["psnr_rgb"].append(float(psnr(sr_t, hr_t, y_only=False)))
            rec["ssim_rgb"].append(float(ssim(sr_t, hr_t, y_only=False)))
        if i < grid_frames:
            y, x, e = _centre_crop_box(*hr.shape[:2], GRID_CROP)
            lr_near = np.repeat(np.repeat(lr, SCALE, axis=0), SCALE, axis=1)
            cells = [lr_near] + [outs[n] for n in methods] + [hr]
            rows.append([np.ascontiguousarray(c[y : y + e, x : x + e]) for c in cells])
        if on_frame is not None:
            on_frame(path)
    scores = {m: Scores(**{k: np.asarray(v, dtype=np.float64) for k, v in rec.items()}) for m, rec in per.items()}
    return EvalReport(frames=list(frames), scores=scores, grid_rows=rows)


def format_table(report: EvalReport, *, baseline: str = "bicubic") -> str:
    """A fixed-width table: one row per method, mean PSNR (dB) / SSIM on Y and RGB, and dB gain over bicubic."""
    base = report.scores[baseline].mean() if baseline in report.scores else None
    name_w = max(8, *(len(n) for n in report.scores))
    lines = [
        f"{'method':<{name_w}}  {'PSNR-Y':>7}  {'SSIM-Y':>7}  {'PSNR-RGB':>8}  {'SSIM-RGB':>8}  {'dPSNR-Y':>7}",
    ]
    for name, s in report.scores.items():
        m = s.mean()
        gain = f"{m['psnr_y'] - base['psnr_y']:+7.2f}" if base is not None else f"{'':>7}"
        lines.append(
            f"{name:<{name_w}}  {m['psnr_y']:7.2f}  {m['ssim_y']:7.4f}  {m['psnr_rgb']:8.2f}  {m['ssim_rgb']:8.4f}  {gain}"
        )
    lines.append(f"({len(report.frames)} frames; Y = BT.601 luma; 4-px border shave; SSIM 11x11 Gaussian, sigma 1.5)")
    return "\n".join(lines)


def grid_image(report: EvalReport, labels: list[str]) -> np.ndarray:
    """The picture grid as one (H, W, 3) uint8 RGB image: a header row of labels, then one row per frame
    (cells resized to a common edge so frames of different sizes line up), 4-px gaps."""
    if not report.grid_rows:
        raise InputError("no frames to put in the grid")
    edge = min(c.shape[0] for row in report.grid_rows for c in row)
    gap, header = 4, 24
    ncol = len(report.grid_rows[0])
    if len(labels) != ncol:
        raise ValueError(f"{len(labels)} labels for {ncol} grid columns")
    width = ncol * edge + (ncol + 1) * gap
    height = header + len(report.grid_rows) * (edge + gap) + gap
    canvas = np.full((height, width, 3), 255, np.uint8)
    for j, label in enumerate(labels):
        x = gap + j * (edge + gap)
        cv2.putText(canvas, label[: max(4, edge // 9)], (x + 2, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)  # fmt: skip
    for i, row in enumerate(report.grid_rows):
        y = header + i * (edge + gap)
        for j, cell in enumerate(row):
            if cell.shape[0] != edge:
                cell = cv2.resize(cell, (edge, edge), interpolation=cv2.INTER_AREA)
            x = gap + j * (edge + gap)
            canvas[y : y + edge, x : x + edge] = cell
    return canvas


def write_png(image: np.ndarray, path: str | Path) -> Path:
    """Write an (H, W, 3) uint8 RGB image as PNG; OutputError if it cannot be written."""
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {path.parent} does not exist")
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1])):
        raise OutputError(f"cannot write {path} (is the extension .png?)")
    return path
