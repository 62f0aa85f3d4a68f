"""Training data: HR crops from a folder of frames (or frames sampled from videos), split by source.

- Every source image is decoded once and kept in memory as (H, W, 3) uint8 RGB (Kvasir-SEG's 900 training
  images are ~0.95 GB decoded), so the training loop never waits on JPEG decoding.
- Crops avoid what is not endoscopic tissue: near-black pixels (the octagonal black border, Kvasir-SEG's
  blacked-out scope thumbnail in the lower-left corner), green pixels (the scope-position thumbnail where it
  is not blacked out) and the upper-left text block (patient/date overlays). A crop is allowed when at
  most 0.5% of its pixels are masked.
- ... except a `frame_p` share of crops, placed anywhere in the frame. Whole-frame evaluation scores the
  border edge, the overlays and the thumbnail too: on 12 Kvasir validation frames that masked area (27% of
  the pixels) held 46% of bicubic's squared error, and a tissue-only model gained about half as much there
  as on tissue (+1.12 vs +2.00 dB, antialiased LR; `python -m train.region_gain`). `edge_val_crops` are the
  matching validation crops.
- The train/val split is by source image (never by patch): images are ordered by the SHA-1 of their file
  name and the first `n_val` go to validation, so the split is deterministic and independent of the crops.
- LR is made from HR by one of three degradations: "bicubic", streamsr.degradations.degrade (antialiased
  bicubic 4x down, quantised to 8 bits, the original `streamsr eval` LR); "realistic" (the first weights'
  option: a random Gaussian blur before that downscale and Gaussian noise + JPEG after it); "pool", a random
  chain per patch from streamsr.degradations.DegradationPool (aliased and antialiased resizes, optical blur,
  sensor noise, 4:2:0 chroma, JPEG), the operations `streamsr eval --suite` measures with.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from streamsr.degradations import DegradationPool

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
VIDEO_EXTS = {".mp4", ".mkv", ".avi", ".mov", ".webm"}
BLACK_LEVEL = 25  # max(R,G,B) below this is border/mask; tissue in Kvasir-SEG rarely goes below ~40
GREEN_MARGIN = 15  # G > R + 15: the green scope thumbnail; tissue is red-dominant
MAX_MASKED = 0.005  # fraction of masked pixels a crop may contain
POS_STRIDE = 4  # candidate crop corners on a 4-px grid (cheap to store; crops stay 4-aligned)


def list_sources(root: str | Path) -> list[Path]:
    """Image and video files directly under `root`, sorted by name."""
    root = Path(root)
    return sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS)


def split_sources(sources: list[Path], n_val: int) -> tuple[list[Path], list[Path]]:
    """Deterministic split by source: the `n_val` sources with the smallest SHA-1(name) are validation."""
    ranked = sorted(sources, key=lambda p: hashlib.sha1(p.name.encode()).hexdigest())
    val = sorted(ranked[:n_val])
    train = sorted(ranked[n_val:])
    return train, val


def _read_video_frames(path: Path, every: int) -> list[np.ndarray]:
    import av

    frames = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % every == 0:
                frames.append(f.to_ndarray(format="rgb24"))
    return frames


def load_images(sources: list[Path], *, video_every: int = 30) -> list[np.ndarray]:
    """Decode sources to (H, W, 3) uint8 RGB arrays; videos contribute every `video_every`-th frame."""
    images: list[np.ndarray] = []
    for p in sources:
        if p.suffix.lower() in VIDEO_EXTS:
            images.extend(_read_video_frames(p, video_every))
        else:
            bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"cannot decode image {p}")
            images.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    return images


def tissue_mask(img: np.ndarray) -> np.ndarray:
    """(H, W) bool, True where a pixel must NOT be inside a crop (border, thumbnail, text), dilated by 4 px."""
    h, w = img.shape[:2]
    rgb = img.astype(np.int16)
    bad = rgb.max(axis=2) < BLACK_LEVEL
    bad |= rgb[:, :, 1] > rgb[:, :, 0] + GREEN_MARGIN
    bad[: h // 2, : w // 5] = True  # text overlays sit in the upper-left of these frames
    bad = cv2.dilate(bad.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    return bad


def valid_corners(img: np.ndarray, crop: int) -> np.ndarray:
    """(K, 2) int32 array of (y, x) top-left corners on the POS_STRIDE grid whose crop is nearly unmasked."""
    h, w = img.shape[:2]
    if h < crop or w < crop:
        return np.zeros((0, 2), np.int32)
    bad = tissue_mask(img).astype(np.int32)
    integral = np.zeros((h + 1, w + 1), np.int64)
    integral[1:, 1:] = bad.cumsum(0).cumsum(1)
    ys = np.arange(0, h - crop + 1, POS_STRIDE)
    xs = np.arange(0, w - crop + 1, POS_STRIDE)
    y0, x0 = ys[:, None], xs[None, :]
    count = integral[y0 + crop, x0 + crop] - integral[y0, x0 + crop] - integral[y0 + crop, x0] + integral[y0, x0]
    ok = count <= MAX_MASKED * crop * crop
    yy, xx = np.nonzero(ok)
    return np.stack([ys[yy], xs[xx]], axis=1).astype(np.int32)


@dataclass
class CropSampler:
    """Random HR crops with flips/transposes from in-memory images; LR made by streamsr's degradation.

    `sample(n)` returns (lr, hr): (n, 3, crop/4, crop/4) and (n, 3, crop, crop) float32 in [0, 1].
    The sampler draws from its own numpy Generator, whose state is saved in checkpoints (`state`/`set_state`).
    """

    images: list[np.ndarray]
    crop: int
    seed: int = 0
    degradation: str = "bicubic"  # "bicubic" | "realistic" | "pool" (see the module docstring)
    pool: DegradationPool = DegradationPool()  # the chain drawn from when degradation == "pool"
    frame_p: float = 0.0  # share of crops placed uniformly anywhere in the frame (borders and overlays too)

    def __post_init__(self) -> None:
        if self.crop % 4:
            raise ValueError(f"crop must be a multiple of 4, got {self.crop}")
        if self.degradation not in ("bicubic", "realistic", "pool"):
            raise ValueError(f"degradation must be 'bicubic', 'realistic' or 'pool', got {self.degradation!r}")
        if not 0.0 <= self.frame_p <= 1.0:
            raise ValueError(f"frame_p must be in [0, 1], got {self.frame_p}")
        corners = [valid_corners(im, self.crop) for im in self.images]
        keep = [i for i, c in enumerate(corners) if len(c)]
        if not keep:
            raise ValueError(f"no image has a valid {self.crop}x{self.crop} crop")
        self.images = [self.images[i] for i in keep]
        self.corners = [corners[i] for i in keep]
        self.rng = np.random.default_rng(self.seed)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def sample_hr(self, n: int) -> np.ndarray:
        """(n, crop, crop, 3) uint8: image uniformly, then a valid corner uniformly (or, with probability
        frame_p, any 4-aligned corner of the frame), then a random dihedral op. With frame_p == 0 the draws
        are exactly those of earlier versions, so old checkpoints resume onto the same crops."""
        out = np.empty((n, self.crop, self.crop, 3), np.uint8)
        idx = self.rng.integers(len(self.images), size=n)
        aug = self.rng.integers(8, size=n)
        anywhere = self.rng.random(n) < self.frame_p if self.frame_p > 0 else np.zeros(n, bool)
        for k in range(n):
            if anywhere[k]:
                h, w = self.images[idx[k]].shape[:2]
                y = POS_STRIDE * self.rng.integers((h - self.crop) // POS_STRIDE + 1)
                x = POS_STRIDE * self.rng.integers((w - self.crop) // POS_STRIDE + 1)
            else:
                corners = self.corners[idx[k]]
                y, x = corners[self.rng.integers(len(corners))]
            c = self.images[idx[k]][y : y + self.crop, x : x + self.crop]
            if aug[k] & 1:
                c = c[:, ::-1]
            if aug[k] & 2:
                c = c[::-1]
            if aug[k] & 4:
                c = c.transpose(1, 0, 2)
            out[k] = c
        return out

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        from streamsr.degradations import degrade

        hr_u8 = self.sample_hr(n)
        hr = torch.from_numpy(hr_u8).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
        if self.degradation == "realistic":
            return self._realistic_lr(hr_u8), hr
        if self.degradation == "pool":
            lr_u8 = np.stack([self.pool(patch, self.rng) for patch in hr_u8])
            return torch.from_numpy(lr_u8).permute(0, 3, 1, 2).float().div_(255.0).contiguous(), hr
        return degrade(hr), hr

    def _realistic_lr(self, hr_u8: np.ndarray) -> torch.Tensor:
        """(n, crop, crop, 3) uint8 -> (n, 3, crop/4, crop/4) float32: blur sigma U(0, 1.5) HR px, bicubic
        down, noise sigma U(0, 4) levels, JPEG quality U(60, 95) -- all drawn from the sampler's RNG."""
        from streamsr.degradations import degrade

        out = []
        for patch in hr_u8:
            sigma = self.rng.uniform(0.0, 1.5)
            img = cv2.GaussianBlur(patch, (0, 0), sigma) if sigma > 0.1 else patch
            t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)
            lr = degrade(t, quantize=False).permute(1, 2, 0).numpy() * 255.0
            lr = lr + self.rng.normal(0.0, self.rng.uniform(0.0, 4.0), size=lr.shape)
            lr_u8 = np.clip(np.round(lr), 0, 255).astype(np.uint8)
            quality = int(self.rng.integers(60, 96))
            ok, buf = cv2.imencode(".jpg", lr_u8[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
            lr_u8 = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
            out.append(torch.from_numpy(np.ascontiguousarray(lr_u8)).permute(2, 0, 1).float().div_(255.0))
        return torch.stack(out)


def fixed_val_crops(images: list[np.ndarray], crop: int) -> torch.Tensor:
    """(N, 3, crop, crop) float32 HR: per image, the valid crop whose centre is nearest the image centre."""
    out = []
    for im in images:
        corners = valid_corners(im, crop)
        if not len(corners):
            continue
        h, w = im.shape[:2]
        d = (corners[:, 0] + crop / 2 - h / 2) ** 2 + (corners[:, 1] + crop / 2 - w / 2) ** 2
        y, x = corners[int(np.argmin(d))]
        out.append(im[y : y + crop, x : x + crop])
    if not out:
        raise ValueError(f"no validation image has a valid {crop}x{crop} crop")
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float().div_(255.0).contiguous()



EDGE_MASKED = 0.3  # target masked share of an edge validation crop: tissue and border/overlay side by side


def edge_corner(img: np.ndarray, crop: int, masked: float = EDGE_MASKED) -> tuple[int, int] | None:
    """(y, x) top-left corner (4-px grid) of the crop whose tissue_mask share is nearest `masked`, ties to the
    one nearest the image centre; None when the image is smaller than the crop."""
    h, w = img.shape[:2]
    if h < crop or w < crop:
        return None
    bad = tissue_mask(img).astype(np.int64)
    integral = np.zeros((h + 1, w + 1), np.int64)
    integral[1:, 1:] = bad.cumsum(0).cumsum(1)
    y0 = np.arange(0, h - crop + 1, POS_STRIDE)[:, None]
    x0 = np.arange(0, w - crop + 1, POS_STRIDE)[None, :]
    share = (integral[y0 + crop, x0 + crop] - integral[y0, x0 + crop] - integral[y0 + crop, x0]
             + integral[y0, x0]) / (crop * crop)  # fmt: skip
    centre = ((y0 + crop / 2 - h / 2) ** 2 + (x0 + crop / 2 - w / 2) ** 2) / (h * h + w * w)
    k = int(np.argmin(np.abs(share - masked) + 1e-3 * centre))
    return int(y0[k // share.shape[1], 0]), int(x0[0, k % share.shape[1]])


def edge_val_crops(images: list[np.ndarray], crop: int, masked: float = EDGE_MASKED) -> torch.Tensor:
    """(N, 3, crop, crop) float32 HR: per image, the `edge_corner` crop. They hold the border edge, overlays
    or thumbnail next to tissue, which whole-frame scores include and `fixed_val_crops` leaves out."""
    out = []
    for im in images:
        corner = edge_corner(im, crop, masked)
        if corner is not None:
            out.append(im[corner[0] : corner[0] + crop, corner[1] : corner[1] + crop])
    if not out:
        raise ValueError(f"no validation image is at least {crop}x{crop}")
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
