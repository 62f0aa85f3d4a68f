"""Ways of making a low-resolution frame from a high-resolution one: the training pool and the eval suite.

Training (`train/`) and evaluation (`streamsr eval --suite`) draw from the same operations here, so the two
cannot drift. Every operation maps uint8 RGB to uint8 RGB, as real LR frames arrive as 8-bit pictures:

    downscale (4x):  "aa-bicubic"  torch bicubic with antialias (`degrade`, the original LR)
                     "area"        cv2.INTER_AREA (box filter over each 4x4 block)
                     "bilinear"    cv2.INTER_LINEAR, no antialias (samples 2 of every 4 px: aliased)
                     "bicubic"     cv2.INTER_CUBIC, no antialias (aliased, as many scripts downscale)
    optionally after a Gaussian blur of the HR frame (sigma in HR px: optical blur; blur + "bilinear" is a
    sensor sampling an optically blurred image; blur + "skip" is a sensor read out in a pixel-skipping
    mode: one pixel of every 4x4 block, at a phase the training pool draws), then, on the LR frame:
                     Gaussian noise (sigma in 8-bit levels), signal-dependent noise (shot noise:
                     variance = gain * level + read_sigma^2), 4:2:0 chroma subsampling (BT.601 YCbCr,
                     chroma area-halved and bilinear-restored, as a decoder shows it), JPEG (libjpeg via
                     OpenCV) and H.264 (libx264 via PyAV, yuv420p, one intra frame) round trips.

`DegradationPool` draws a random chain per patch with stated probabilities (`train/` config); `SUITE` is the
fixed, named list `streamsr eval --suite` reports, each deterministic under its seed.

THE baseline degradation (`degrade`, on tensors; training and evaluation must use the same one, so it lives
here, once):
    HR RGB uint8 -> crop to a multiple of 4 -> float [0, 1] -> torch bicubic resize to (H/4, W/4) with
    antialias=True (a proper anti-aliased bicubic downscale, the kernel MATLAB's imresize uses) ->
    clamp to [0, 1] -> quantise to 8 bits (a real LR frame arrives as uint8).
The bicubic baseline (`bicubic_upscale`) upscales with torch bicubic (align_corners=False, no antialias:
upsampling).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
import torch.nn.functional as F

SCALE = 4
DOWNSCALES = ("aa-bicubic", "area", "bilinear", "bicubic")
POOL_DOWNSCALES = (*DOWNSCALES, "blur+bilinear", "blur+skip")
_CV2_INTERP = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


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


def _check_hr(hr: np.ndarray) -> None:
    if hr.dtype != np.uint8 or hr.ndim != 3 or hr.shape[2] != 3:
        raise ValueError(f"HR frame must be (H, W, 3) uint8, got {hr.shape} {hr.dtype}")
    if hr.shape[0] % SCALE or hr.shape[1] % SCALE:
        raise ValueError(f"HR size {hr.shape[1]}x{hr.shape[0]} is not a multiple of {SCALE}")


def _quantize(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def blur(hr: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of `sigma` HR pixels (kernel 2*ceil(3 sigma)+1, reflected borders), uint8 in and out."""
    if sigma <= 0:
        raise ValueError(f"blur needs sigma > 0, got {sigma}")
    return cv2.GaussianBlur(hr, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def downscale(hr: np.ndarray, kind: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB, H and W multiples of 4 -> (H/4, W/4, 3) uint8 RGB by the named method."""
    _check_hr(hr)
    h, w = hr.shape[0] // SCALE, hr.shape[1] // SCALE
    if kind == "aa-bicubic":
        t = torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1).float().div_(255.0)
        return _quantize(degrade(t, quantize=False).mul_(255.0).permute(1, 2, 0).numpy())
    if kind in _CV2_INTERP:
        return cv2.resize(np.ascontiguousarray(hr), (w, h), interpolation=_CV2_INTERP[kind])
    raise ValueError(f"unknown downscale {kind!r}; known: {', '.join(DOWNSCALES)}")


def skip_sample(hr: np.ndarray, phase: tuple[int, int]) -> np.ndarray:
    """Point sampling: (H, W, 3) uint8 -> (H/4, W/4, 3) uint8, pixel (4y + py, 4x + px) of each 4x4 block,
    phase = (py, px) in 0..3. A sensor's row/column-skipping read-out mode: no averaging at all, so every
    detail finer than the blur before it aliases."""
    _check_hr(hr)
    py, px = phase
    if not (0 <= py < SCALE and 0 <= px < SCALE):
        raise ValueError(f"skip phase must be in 0..{SCALE - 1}, got {phase}")
    return np.ascontiguousarray(hr[py::SCALE, px::SCALE])


def add_gaussian_noise(lr: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise of `sigma` 8-bit levels, per pixel and channel, rounded to uint8."""
    return _quantize(lr.astype(np.float32) + rng.normal(0.0, sigma, size=lr.shape).astype(np.float32))


def add_shot_noise(lr: np.ndarray, gain: float, read_sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Signal-dependent sensor noise: variance = gain * level + read_sigma^2 (levels^2), rounded to uint8."""
    x = lr.astype(np.float32)
    std = np.sqrt(gain * x + read_sigma**2)
    return _quantize(x + std * rng.standard_normal(size=lr.shape).astype(np.float32))


def chroma_420(lr: np.ndarray) -> np.ndarray:
    """4:2:0 chroma: BT.601 YCbCr, Cb/Cr area-halved then bilinear-restored to full size (odd sizes ok)."""
    h, w = lr.shape[:2]
    ycc = cv2.cvtColor(lr, cv2.COLOR_RGB2YCrCb)
    ch, cw = max(1, (h + 1) // 2), max(1, (w + 1) // 2)
    chroma = cv2.resize(ycc[:, :, 1:], (cw, ch), interpolation=cv2.INTER_AREA)
    ycc[:, :, 1:] = cv2.resize(chroma, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


def jpeg(lr: np.ndarray, quality: int) -> np.ndarray:
    """A real JPEG encode + decode through libjpeg (OpenCV; its default 4:2:0 sampling) at `quality`."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(lr[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])


def h264(lr: np.ndarray, crf: int) -> np.ndarray:
    """A real H.264 round trip through PyAV: libx264 yuv420p at `crf`, one intra frame in an in-memory .mp4,
    decoded back to RGB. Odd sizes are edge-padded to even (4:2:0 needs it) and cropped back."""
    import av

    h, w = lr.shape[:2]
    padded = np.pad(lr, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=1)
        stream.width, stream.height = padded.shape[1], padded.shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(int(crf)), "preset": "medium", "tune": "film"}
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(padded), format="rgb24")
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buf.seek(0)
    with av.open(buf, "r") as inp:
        decoded = next(inp.decode(video=0)).to_ndarray(format="rgb24")
    return np.ascontiguousarray(decoded[:h, :w])


@dataclass(frozen=True, slots=True, kw_only=True)
class Degradation:
    """One named, deterministic way of making LR: optional blur, a downscale, optional noise and codec steps.

    blur_sigma: Gaussian blur of the HR frame in HR px before the downscale (0 = none). noise_sigma: Gaussian noise in 8-bit levels (0 = none). jpeg_quality / h264_crf: 0 = no round trip.
    seed: the noise RNG seed (the only random step), so a row of the eval suite is the same on every run.
    """

    name: str
    downscale: str = "aa-bicubic"
    blur_sigma: float = 0.0
    noise_sigma: float = 0.0
    jpeg_quality: int = 0
    h264_crf: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.downscale not in DOWNSCALES:
            raise ValueError(f"Degradation.downscale must be one of {DOWNSCALES}, got {self.downscale!r}")
        if self.blur_sigma < 0 or self.noise_sigma < 0:
            raise ValueError("Degradation.blur_sigma and noise_sigma must be >= 0")

    def __call__(self, hr: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB HR (multiples of 4) -> (H/4, W/4, 3) uint8 RGB LR."""
        lr = downscale(blur(hr, self.blur_sigma) if self.blur_sigma > 0 else hr, self.downscale)
        if self.noise_sigma > 0:
            lr = add_gaussian_noise(lr, self.noise_sigma, np.random.default_rng(self.seed))
        if self.jpeg_quality:
            lr = jpeg(lr, self.jpeg_quality)
        if self.h264_crf:
            lr = h264(lr, self.h264_crf)
        return lr


SUITE: tuple[Degradation, ...] = (
    Degradation(name="aa-bicubic"),
    Degradation(name="area", downscale="area"),
    Degradation(name="bicubic-aliased", downscale="bicubic"),
    Degradation(name="blur1.2+area", downscale="area", blur_sigma=1.2),
    Degradation(name="area+jpeg75", downscale="area", jpeg_quality=75),
    Degradation(name="area+noise3", downscale="area", noise_sigma=3.0, seed=3),
    Degradation(name="area+h264crf23", downscale="area", h264_crf=23),
)
"""The eval suite (`streamsr eval --suite`): the original antialiased LR, the usual resizes (one aliased),
optical blur, and the compression and noise a scope camera adds."""


def suite_names() -> list[str]:
    return [d.name for d in SUITE]


@dataclass(frozen=True, slots=True, kw_only=True)
class DegradationPool:
    """The random degradation chain for training, drawn per patch from the caller's RNG.

    Downscale: one of POOL_DOWNSCALES with probabilities `downscale_p` (same order; five weights leave
    "blur+skip" out, as pools did before it existed); "blur+bilinear" blurs with a sigma drawn uniformly
    from `blur_sigma`, then samples bilinearly; "blur+skip" blurs likewise, then point-samples one pixel
    per 4x4 block at a random phase (`skip_sample`). Then, independently: noise with probability `noise_p`
    (Gaussian with sigma from `noise_sigma`, or with probability `shot_share` of those signal-dependent
    with gain from `shot_gain`), 4:2:0 chroma with `chroma_p`, JPEG with `jpeg_p` at a quality drawn from
    `jpeg_quality`.
    Defaults keep about a third of patches free of noise, chroma loss and JPEG, so the clean-input
    figures do not give way to the degraded ones.
    """

    downscale_p: tuple[float, ...] = (0.25, 0.2, 0.1, 0.15, 0.3)
    blur_sigma: tuple[float, float] = (0.2, 2.0)
    noise_p: float = 0.35
    noise_sigma: tuple[float, float] = (0.5, 5.0)
    shot_share: float = 0.5
    shot_gain: tuple[float, float] = (0.02, 0.15)
    chroma_p: float = 0.25
    jpeg_p: float = 0.35
    jpeg_quality: tuple[int, int] = (50, 95)
    _cdf: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        p = self.downscale_p
        if len(p) == len(POOL_DOWNSCALES) - 1:
            p = (*p, 0.0)
            object.__setattr__(self, "downscale_p", p)
        if len(p) != len(POOL_DOWNSCALES) or min(p) < 0 or sum(p) <= 0:
            raise ValueError(f"DegradationPool.downscale_p needs {len(POOL_DOWNSCALES)} non-negative weights, got {p}")
        for name in ("noise_p", "shot_share", "chroma_p", "jpeg_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"DegradationPool.{name} must be in [0, 1], got {getattr(self, name)}")
        p = np.asarray(self.downscale_p, np.float64)
        object.__setattr__(self, "_cdf", np.cumsum(p / p.sum()))

    def __call__(self, hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(H, W, 3) uint8 RGB HR patch -> (H/4, W/4, 3) uint8 RGB LR, every choice drawn from `rng`."""
        draw = int(np.searchsorted(self._cdf, rng.random(), side="right"))
        kind = POOL_DOWNSCALES[min(draw, len(POOL_DOWNSCALES) - 1)]
        if kind == "blur+bilinear":
            lr = downscale(blur(hr, rng.uniform(*self.blur_sigma)), "bilinear")
        elif kind == "blur+skip":
            phase = tuple(int(v) for v in rng.integers(0, SCALE, 2))
            lr = skip_sample(blur(hr, rng.uniform(*self.blur_sigma)), phase)
        else:
            lr = downscale(hr, kind)
        if rng.random() < self.noise_p:
            if rng.random() < self.shot_share:
                lr = add_shot_noise(lr, rng.uniform(*self.shot_gain), rng.uniform(0.0, 2.0), rng)
            else:
                lr = add_gaussian_noise(lr, rng.uniform(*self.noise_sigma), rng)
        if rng.random() < self.chroma_p:
            lr = chroma_420(lr)
        if rng.random() < self.jpeg_p:
            lr = jpeg(lr, int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1)))
        return lr
