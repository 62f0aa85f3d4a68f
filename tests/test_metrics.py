"""PSNR / SSIM: known values, conventions (Y of BT.601, 4-px shave), batching."""

from __future__ import annotations

import math

import numpy as np

import pytest
import torch

from streamsr.metrics import psnr, psnr_from_mse, rgb_to_y, ssim


def _img(seed: int = 0, n: int | None = None, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (3, size, size) if n is None else (n, 3, size, size)
    return torch.rand(shape, generator=g)


def test_identical_images() -> None:
    a = _img()
    assert psnr(a, a) == math.inf and psnr(a, a, y_only=False) == math.inf
    assert ssim(a, a) == pytest.approx(1.0) and ssim(a, a, y_only=False) == pytest.approx(1.0)


def test_known_mse_gives_known_psnr() -> None:
    a = torch.full((3, 24, 24), 0.5, dtype=torch.float64)
    b = a + 10 / 255  # every RGB value off by 10 levels: MSE 100 -> 10 log10(255^2/100) = 28.1308 dB
    assert psnr(a, b, y_only=False) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-9)
    # on Y (BT.601, 219/255 range): a +10 shift of R, G and B moves Y by 10 * (65.481+128.553+24.966)/255
    dy = 10 * 219.0 / 255
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / dy**2), abs=1e-9)
    assert psnr_from_mse(100.0) == pytest.approx(28.1308, abs=1e-4) and psnr_from_mse(0.0) == math.inf


def test_y_is_bt601_studio_swing() -> None:
    black, white = torch.zeros(3, 1, 1), torch.ones(3, 1, 1)
    assert float(rgb_to_y(black)) == pytest.approx(16.0) and float(rgb_to_y(white)) == pytest.approx(235.0)


def test_shave_ignores_borders() -> None:
    a = _img(size=32)
    b = a.clone()
    b[:, :4] = 1 - b[:, :4]  # damage only the 4-px border
    b[:, :, -4:] = 0
    assert psnr(a, b) == math.inf and ssim(a, b) == pytest.approx(1.0)
    assert psnr(a, b, shave=0) < 20


def test_ssim_known_cases() -> None:
    a = _img(size=48)
    # SSIM is invariant to nothing here but must drop with noise and be symmetric
    noisy = (a + 0.1 * torch.randn(a.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    s = ssim(a, noisy)
    assert 0 < s < 0.99 and s == pytest.approx(ssim(noisy, a), abs=1e-12)
    # constant images of different levels: sigma terms vanish, SSIM = luminance term (2*mu1*mu2+C1)/(mu1^2+mu2^2+C1)
    c1 = (0.01 * 255) ** 2
    x, y = torch.full((3, 32, 32), 0.2, dtype=torch.float64), torch.full((3, 32, 32), 0.6, dtype=torch.float64)
    m1, m2 = 0.2 * 255, 0.6 * 255
    assert ssim(x, y, y_only=False) == pytest.approx((2 * m1 * m2 + c1) / (m1**2 + m2**2 + c1), abs=1e-9)


def test_batched_matches_unbatched() -> None:
    a, b = _img(0, n=3), _img(1, n=3)
    pb, sb = psnr(a, b), ssim(a, b, y_only=False)
    assert pb.shape == (3,) and sb.shape == (3,)
    for i in range(3):
        assert float(pb[i]) == pytest.approx(psnr(a[i], b[i]))
        assert float(sb[i]) == pytest.approx(ssim(a[i], b[i], y_only=False))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        psnr(_img(size=32), _img(size=16))
    with pytest.raises(ValueError):
        ssim(_img(size=16), _img(size=16))  # 8x8 after the shave: smaller than the 11x11 window


def test_high_frequency_energy_drops_with_blur_is_zero_when_flat_and_batches() -> None:
    """The energy itself; the texture ratio built on it (1.0 for the truth) is tested through
    evaluate_folder in test_eval.py."""
    import cv2

    from streamsr.metrics import high_frequency_energy

    rng = np.random.default_rng(0)
    img = np.clip(rng.normal(128, 40, (64, 80, 3)), 0, 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(img, (0, 0), 1.0)
    t = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    tb = torch.from_numpy(blurred).permute(2, 0, 1).float() / 255
    assert high_frequency_energy(tb) / high_frequency_energy(t) < 0.3
    flat = torch.full((3, 32, 32), 0.5)
    assert high_frequency_energy(flat) == pytest.approx(0.0, abs=1e-9)
    batch = high_frequency_energy(torch.stack([t, tb]))
    assert batch.shape == (2,) and float(batch[0]) == pytest.approx(high_frequency_energy(t))
