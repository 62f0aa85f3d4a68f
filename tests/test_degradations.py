"""streamsr.degradations: each operation is deterministic and does what its name says; the training pool."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streamsr import degradations as dg
from streamsr.evaluate import highlight_masks, make_lr


def _texture(h: int = 64, w: int = 96, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(xx / 3.0) * np.cos(yy / 5.0)
    img = np.stack([200 * base, 110 * base, 80 * base], -1) + rng.normal(0, 6, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _grad_energy(img: np.ndarray) -> float:
    y = img.astype(np.float64).mean(axis=2)
    return float((np.diff(y, axis=0) ** 2).mean() + (np.diff(y, axis=1) ** 2).mean())


@pytest.mark.parametrize("row", dg.SUITE, ids=lambda d: d.name)
def test_suite_rows_are_deterministic_uint8_quarter_size(row: dg.Degradation) -> None:
    hr = _texture()
    a, b = row(hr), row(hr.copy())
    assert a.shape == (16, 24, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)


def test_suite_names_cover_the_issue_list() -> None:
    assert dg.suite_names() == ["aa-bicubic", "area", "bicubic-aliased", "blur1.2+area", "area+jpeg75",
                                "area+noise3", "area+h264crf23"]  # fmt: skip


def test_aa_bicubic_is_the_original_eval_degradation() -> None:
    hr = _texture()
    assert np.array_equal(dg.downscale(hr, "aa-bicubic"), make_lr(hr))


def test_area_is_the_4x4_block_mean() -> None:
    hr = _texture()
    expected = hr.reshape(16, 4, 24, 4, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(dg.downscale(hr, "area").astype(np.float64) - expected).max() <= 0.5 + 1e-9


def test_aliased_resizes_keep_thin_lines_that_antialiased_ones_spread() -> None:
    hr = np.zeros((32, 64, 3), np.uint8)
    hr[:, 1::8] = 255  # one bright 1-px line every 8 px, on the sample positions of a non-antialiased resize
    area, aa = dg.downscale(hr, "area"), dg.downscale(hr, "aa-bicubic")
    aliased, bilinear = dg.downscale(hr, "bicubic"), dg.downscale(hr, "bilinear")
    assert area.max() <= 64 and aa.max() <= 90  # a quarter of the line's energy, spread
    assert aliased.max() >= 140 and bilinear.max() >= 120  # point-sampled: the line survives at full contrast


def test_blur_removes_detail_before_the_downscale() -> None:
    hr = _texture()
    plain, blurred = dg.Degradation(name="a", downscale="area"), dg.Degradation(name="b", downscale="area", blur_sigma=1.2)
    assert _grad_energy(blurred(hr)) < 0.9 * _grad_energy(plain(hr))  # measured 0.81


def test_gaussian_noise_has_the_stated_sigma_and_follows_the_seed() -> None:
    flat = np.full((200, 200, 3), 128, np.uint8)
    noisy = dg.add_gaussian_noise(flat, 3.0, np.random.default_rng(1))
    assert abs(float(noisy.astype(np.float64).std()) - 3.0) < 0.1
    assert np.array_equal(noisy, dg.add_gaussian_noise(flat, 3.0, np.random.default_rng(1)))
    assert not np.array_equal(noisy, dg.add_gaussian_noise(flat, 3.0, np.random.default_rng(2)))


def test_shot_noise_grows_with_the_signal() -> None:
    rng = np.random.default_rng(0)
    dark = dg.add_shot_noise(np.full((200, 200, 3), 20, np.uint8), 0.1, 0.5, rng).astype(np.float64)
    bright = dg.add_shot_noise(np.full((200, 200, 3), 220, np.uint8), 0.1, 0.5, rng).astype(np.float64)
    assert abs(bright.std() - np.sqrt(0.1 * 220 + 0.25)) < 0.3
    assert bright.std() > 2.5 * dark.std()


def test_chroma_420_keeps_luma_and_averages_chroma_in_2x2() -> None:
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, ::2] = (200, 40, 40)  # red / blue columns: chroma detail at the finest scale
    img[:, 1::2] = (40, 40, 200)
    ycc_in = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb).astype(int)
    ycc_out = cv2.cvtColor(dg.chroma_420(img), cv2.COLOR_RGB2YCrCb).astype(int)
    assert np.abs(ycc_in[:, :, 0] - ycc_out[:, :, 0]).max() <= 3  # luma kept
    assert np.abs(ycc_in[:, ::2, 1:] - ycc_in[:, 1::2, 1:]).min() > 50  # chroma differed column to column ...
    assert np.abs(ycc_out[:, ::2, 1:] - ycc_out[:, 1::2, 1:]).max() <= 3  # ... and is one 2x2 average now


def test_jpeg_row_goes_through_the_jpeg_codec(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = cv2.imencode

    def spy(ext, img, params=()):
        calls.append((ext, list(params)))
        return real(ext, img, params)

    monkeypatch.setattr(dg.cv2, "imencode", spy)
    hr = _texture()
    row = next(d for d in dg.SUITE if d.name == "area+jpeg75")
    out, area = row(hr), dg.downscale(hr, "area")
    assert calls == [(".jpg", [cv2.IMWRITE_JPEG_QUALITY, 75])]
    assert not np.array_equal(out, area)
    err = float(np.abs(out.astype(int) - area.astype(int)).mean())
    assert 0.2 < err < 10  # lossy, but a picture of the same thing


def test_h264_row_round_trips_through_pyav_libx264(monkeypatch: pytest.MonkeyPatch) -> None:
    import av

    opened = []
    real_open = av.open

    def spy(file, mode="r", **kw):
        container = real_open(file, mode, **kw)
        opened.append(mode)
        return container

    monkeypatch.setattr(av, "open", spy)
    hr = _texture(68, 92)  # LR 17x23: odd sizes are padded for 4:2:0 and cropped back
    row = next(d for d in dg.SUITE if d.name == "area+h264crf23")
    out, area = row(hr), dg.downscale(hr, "area")
    assert opened == ["w", "r"]
    assert out.shape == area.shape
    assert not np.array_equal(out, area)
    assert float(np.abs(out.astype(int) - area.astype(int)).mean()) < 12


def test_pool_is_deterministic_under_its_rng_and_varies_per_draw() -> None:
    pool, hr = dg.DegradationPool(), _texture()
    a = [pool(hr, np.random.default_rng(7)) for _ in range(2)]
    assert np.array_equal(a[0], a[1])
    rng = np.random.default_rng(7)
    draws = [pool(hr, rng) for _ in range(12)]
    assert all(d.shape == (16, 24, 3) and d.dtype == np.uint8 for d in draws)
    assert len({d.tobytes() for d in draws}) > 6


def test_pool_probabilities_are_honoured() -> None:
    hr = _texture()
    only_area = dg.DegradationPool(downscale_p=(0, 1, 0, 0, 0), noise_p=0, chroma_p=0, jpeg_p=0)
    rng = np.random.default_rng(0)
    assert all(np.array_equal(only_area(hr, rng), dg.downscale(hr, "area")) for _ in range(5))
    always_noisy = dg.DegradationPool(downscale_p=(0, 1, 0, 0, 0), noise_p=1, chroma_p=0, jpeg_p=0)
    assert not any(np.array_equal(always_noisy(hr, rng), dg.downscale(hr, "area")) for _ in range(5))
    with pytest.raises(ValueError, match="downscale_p"):
        dg.DegradationPool(downscale_p=(1, 1))
    with pytest.raises(ValueError, match="jpeg_p"):
        dg.DegradationPool(jpeg_p=1.5)


def test_skip_sample_reads_one_pixel_of_each_block_at_its_phase() -> None:
    hr = _texture()
    lr = dg.skip_sample(hr, (1, 3))
    assert lr.shape == (hr.shape[0] // 4, hr.shape[1] // 4, 3)
    assert np.array_equal(lr[2, 5], hr[4 * 2 + 1, 4 * 5 + 3])
    with pytest.raises(ValueError, match="phase"):
        dg.skip_sample(hr, (4, 0))


def test_pool_blur_skip_is_blurred_point_sampling_at_drawn_phases() -> None:
    hr = _texture()
    only_skip = dg.DegradationPool(downscale_p=(0, 0, 0, 0, 0, 1), noise_p=0, chroma_p=0, jpeg_p=0,
                                   blur_sigma=(1.0, 1.0))  # fmt: skip
    rng = np.random.default_rng(0)
    draws = [only_skip(hr, rng) for _ in range(8)]
    blurred = dg.blur(hr, 1.0)
    phases = {(py, px) for d in draws for py in range(4) for px in range(4)
              if np.array_equal(d, dg.skip_sample(blurred, (py, px)))}  # fmt: skip
    assert len(phases) > 1  # every draw is one of the 16 phases, and they vary
    assert all(any(np.array_equal(d, dg.skip_sample(blurred, p)) for p in phases) for d in draws)
    # five weights: the pool as it was before blur+skip, which never draws it
    assert dg.DegradationPool(downscale_p=(1, 1, 1, 1, 1)).downscale_p[-1] == 0.0


def test_highlight_mask_on_a_synthetic_frame() -> None:
    img = np.zeros((64, 64, 3), np.uint8)
    img[:] = (170, 70, 60)  # tissue
    img[30:34, 30:34] = (250, 245, 240)  # a specular reflection
    img[5:8, 5:8] = (255, 90, 80)  # bright but saturated red: not a highlight
    hl, ring = highlight_masks(img)
    assert hl[31, 31] and hl[28, 31] and not hl[27, 31]  # the reflection, dilated by 2 px
    assert not hl[6, 6] and not ring[6, 6]
    assert ring[26, 31] and ring[27, 31] and not ring[28, 31] and not ring[25, 31]  # 3-4 px outside
    assert not (hl & ring).any()
