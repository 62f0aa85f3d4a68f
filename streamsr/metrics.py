"""Measurements: image quality (PSNR, SSIM), and (from latency.py) latency percentiles / rates.

Image quality: PSNR and SSIM, on the Y channel (BT.601, as SR papers report) and on RGB.

Conventions (those of the SR literature, e.g. the SRGAN / EDSR evaluation code):
- inputs are float tensors in [0, 1], shape (3, H, W) or (N, 3, H, W), RGB; both images the same shape;
- `shave` pixels are cut from every border before measuring (4 for 4x SR), since the border of an SR
  output depends on padding conventions rather than on the model;
- Y is BT.601 "studio swing" luma, Y = 16 + 65.481 R + 128.553 G + 24.966 B (in 0..255 units), the same
  formula as MATLAB's rgb2ycbcr; PSNR is computed with a peak of 255 on that 0..255 scale;
- SSIM uses Wang et al.'s (2004) constants: Gaussian 11x11 window with sigma 1.5, K1 = 0.01, K2 = 0.03,
  L = 255, valid (unpadded) filtering; on RGB it is the mean of the per-channel SSIMs.

Everything is vectorized torch; results are per-image float64 tensors of shape (N,) (or a float for
unbatched inputs).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Latency percentiles and rates live in latency.py (numpy only, so a viewer need not import torch); they
# stay importable from here.
from .latency import LatencySummary, rate_fps, span_summary, stage_summaries, summarize_ms  # noqa: F401

_BT601 = (65.481, 128.553, 24.966)


def rgb_to_y(img: torch.Tensor) -> torch.Tensor:
    """BT.601 luma. img: (..., 3, H, W) float RGB in [0, 1] -> (..., 1, H, W) float64 Y in [16, 235]."""
    if img.shape[-3] != 3:
        raise ValueError(f"rgb_to_y needs 3 channels in dim -3, got shape {tuple(img.shape)}")
    w = torch.tensor(_BT601, dtype=torch.float64, device=img.device).view(3, 1, 1)
    return 16.0 + (img.to(torch.float64) * w).sum(dim=-3, keepdim=True)


def _prepare(a: torch.Tensor, b: torch.Tensor, *, y_only: bool, shave: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate, batch, convert to the 0..255 float64 scale, shave borders. Returns (N, C, H', W') pairs."""
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dim() not in (3, 4) or a.shape[-3] != 3:
        raise ValueError(f"expected (3, H, W) or (N, 3, H, W) RGB tensors, got shape {tuple(a.shape)}")
    if a.dim() == 3:
        a, b = a.unsqueeze(0), b.unsqueeze(0)
    if y_only:
        a, b = rgb_to_y(a), rgb_to_y(b)
    else:
        a, b = a.to(torch.float64) * 255.0, b.to(torch.float64) * 255.0
    if shave:
        if a.shape[-1] <= 2 * shave or a.shape[-2] <= 2 * shave:
            raise ValueError(f"image of shape {tuple(a.shape)} is too small for a border shave of {shave}")
        a = a[..., shave:-shave, shave:-shave]
        b = b[..., shave:-shave, shave:-shave]
    return a, b


def _unbatch(x: torch.Tensor, batched: bool) -> torch.Tensor | float:
    return x if batched else float(x[0])


def psnr(a: torch.Tensor, b: torch.Tensor, *, y_only: bool = True, shave: int = 4) -> torch.Tensor | float:
    """Peak signal-to-noise ratio in dB (peak 255 on the 0..255 scale); inf for identical images.

    a, b: (3, H, W) or (N, 3, H, W) float RGB in [0, 1] (values are not clamped: clamp SR outputs first).
    Returns a float for unbatched input, else an (N,) float64 tensor.
    """
    batched = a.dim() == 4
    x, y = _prepare(a, b, y_only=y_only, shave=shave)
    mse = ((x - y) ** 2).mean(dim=(1, 2, 3))
    out = 10.0 * torch.log10(255.0**2 / mse)  # mse == 0 -> +inf, as wanted
    return _unbatch(out, batched)


def _gaussian_window(size: int = 11, sigma: float = 1.5, *, device: torch.device | None = None) -> torch.Tensor:
    """(size,) float64 normalised 1-D Gaussian; the 2-D window is its outer product (separable filtering)."""
    x = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable valid Gaussian filtering of (N, C, H, W) float64 -> (N, C, H-10, W-10) for an 11-tap window."""
    c = x.shape[1]
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)


def ssim(a: torch.Tensor, b: torch.Tensor, *, y_only: bool = True, shave: int = 4) -> torch.Tensor | float:
    """Structural similarity (Wang et al. 2004), mean over the valid SSIM map (and over channels for RGB).

    a, b: (3, H, W) or (N, 3, H, W) float RGB in [0, 1], at least 11x11 after the shave.
    Returns a float for unbatched input, else an (N,) float64 tensor; 1.0 for identical images.
    """
    batched = a.dim() == 4
    x, y = _prepare(a, b, y_only=y_only, shave=shave)
    if x.shape[-1] < 11 or x.shape[-2] < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after the shave, got {tuple(x.shape[-2:])}")
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = _gaussian_window(device=x.device)
    mu_x, mu_y = _filter(x, g), _filter(y, g)
    sxx = _filter(x * x, g) - mu_x**2
    syy = _filter(y * y, g) - mu_y**2
    sxy = _filter(x * y, g) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return _unbatch(ssim_map.mean(dim=(1, 2, 3)), batched)


HF_BAND = (0.125, 0.5)  # cycles/px of the HR frame: from the LR Nyquist of a 4x downscale to the HR Nyquist


def high_frequency_energy(img: torch.Tensor, *, band: tuple[float, float] = HF_BAND, shave: int = 4) -> torch.Tensor | float:
    """Energy of the Y channel in an annular band of the 2-D spectrum: the detail a 4x SR model must supply.

    img: (3, H, W) or (N, 3, H, W) float RGB in [0, 1]. Y (BT.601, 0..255) minus its mean, Hann-windowed (so the
    frame's borders add no false edges), |FFT|^2 summed over radial frequencies in `band` (cycles per pixel;
    the default is everything an LR frame at 1/4 the size cannot hold), divided by the pixel count.
    Returns a float for unbatched input, else an (N,) float64 tensor. The ratio of an SR frame's energy to its
    HR frame's is the texture ratio: 1.0 for identical frames, < 1 for a blurred copy, > 1 for invented detail.
    """
    batched = img.dim() == 4
    x = img if batched else img.unsqueeze(0)
    y = rgb_to_y(x)[:, 0]
    if shave:
        y = y[:, shave:-shave, shave:-shave]
    h, w = y.shape[-2:]
    y = y - y.mean(dim=(-2, -1), keepdim=True)
    window = torch.outer(torch.hann_window(h, periodic=False, dtype=torch.float64),
                         torch.hann_window(w, periodic=False, dtype=torch.float64))  # fmt: skip
    spec = torch.fft.fft2(y * window.to(y.device)).abs() ** 2
    fy = torch.fft.fftfreq(h, dtype=torch.float64, device=y.device).view(h, 1)
    fx = torch.fft.fftfreq(w, dtype=torch.float64, device=y.device).view(1, w)
    radius = torch.sqrt(fy**2 + fx**2)
    ring = (radius >= band[0]) & (radius <= band[1])
    out = (spec * ring).sum(dim=(-2, -1)) / (h * w)
    return _unbatch(out, batched)


def psnr_from_mse(mse: float, *, peak: float = 255.0) -> float:
    """PSNR in dB of a mean squared error measured on a 0..peak scale (inf for mse == 0)."""
    return math.inf if mse == 0 else 10.0 * math.log10(peak**2 / mse)
