"""train/: a few steps of stage 1 and stage 2 on tiny synthetic frames with the tiny preset (seconds)."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from streamsr.degradations import bicubic_upscale, degrade
from streamsr.metrics import psnr
from streamsr.model import Generator, load_generator
from train.data import CropSampler, edge_corner, edge_val_crops, fixed_val_crops, list_sources, split_sources, tissue_mask
from train.export import export
from train.models import Discriminator, VGG19Features, init_as_interpolator, load_vgg19


def _tissue_like(rng: np.random.Generator, h: int = 96, w: int = 96) -> np.ndarray:
    """(h, w, 3) uint8 RGB: red-dominant smooth texture with some edges, no black/green (passes the mask)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    f = rng.uniform(0.1, 0.4, size=4)
    base = 0.5 + 0.25 * np.sin(xx * f[0] + yy * f[1]) + 0.15 * np.cos(xx * f[2] - yy * f[3])
    base += 0.1 * (xx > rng.uniform(20, 70))
    rgb = np.stack([150 + 90 * base, 60 + 60 * base, 50 + 40 * base], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    for i in range(6):
        cv2.imwrite(str(d / f"frame{i:02d}.png"), _tissue_like(rng)[:, :, ::-1])
    return d


@pytest.fixture(autouse=True)
def _keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _train(monkeypatch: pytest.MonkeyPatch, frames: Path, out: Path, **overrides) -> None:
    """Run train/train.py in-process (as `python -m train.train --k=v ...` would) on the synthetic frames."""
    args = dict(data_dir=frames, out_dir=out, n_val=2, preset="srgan-x4-tiny", hr_crop=32, val_crop=32,
                batch_size=4, eval_interval=10, log_interval=1, threads=1, warmup_steps=2, learning_rate=3e-3,
                amp="none")  # fmt: skip
    args.update(overrides)
    monkeypatch.setattr(sys, "argv", ["train.train"] + [f"--{k}={v}" for k, v in args.items()])
    runpy.run_module("train.train", run_name="__main__", alter_sys=True)


def _tiny_start(path: Path) -> Path:
    """Seeded srgan-x4-tiny weights to start a run from (`--init_from`)."""
    from streamsr.model import save_weights

    torch.manual_seed(0)
    return save_weights(Generator("srgan-x4-tiny"), path)


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_split_is_by_source_and_deterministic(frames_dir: Path) -> None:
    src = list_sources(frames_dir)
    train, val = split_sources(src, 2)
    assert len(val) == 2 and len(train) == 4 and not set(train) & set(val)
    assert split_sources(list(reversed(src)), 2) == (train, val)


def test_mask_rejects_border_and_green() -> None:
    img = np.full((64, 64, 3), (180, 90, 70), np.uint8)
    img[:, :8] = 0  # black border
    img[40:, 40:] = (40, 200, 40)  # green thumbnail
    bad = tissue_mask(img)
    assert bad[:, :8].all() and bad[40:, 40:].all() and not bad[20:28, 20:28].any()


def test_sampler_shapes_and_degradation(frames_dir: Path) -> None:
    from train.data import load_images

    s = CropSampler(load_images(list_sources(frames_dir)), 32, seed=1)
    lr, hr = s.sample(3)
    assert lr.shape == (3, 3, 8, 8) and hr.shape == (3, 3, 32, 32)
    assert torch.equal(lr, degrade(hr))  # the degradation `streamsr eval` uses
    assert torch.equal(lr, (lr * 255).round() / 255)  # 8-bit LR
    assert fixed_val_crops(load_images(list_sources(frames_dir)), 32).shape == (6, 3, 32, 32)


def _bordered(rng: np.random.Generator) -> np.ndarray:
    """(128, 160, 3) tissue with a 24-px black border on the left and a black text block upper-left."""
    img = _tissue_like(rng, 128, 160)
    img[:, :24] = 0
    img[:40, 24:60] = 0
    return img


def test_frame_crops_reach_borders_and_tissue_crops_do_not() -> None:
    imgs = [_bordered(np.random.default_rng(i)) for i in range(3)]
    black = lambda hr: (hr.max(axis=3) < 25).mean(axis=(1, 2))  # noqa: E731  share of near-black pixels
    tissue = CropSampler(imgs, 32, seed=2).sample_hr(64)
    anywhere = CropSampler(imgs, 32, seed=2, frame_p=1.0).sample_hr(64)
    assert black(tissue).max() <= 0.005 and (black(anywhere) > 0.2).sum() >= 10
    mixed = CropSampler(imgs, 32, seed=2, frame_p=0.5)
    assert np.array_equal(mixed.sample_hr(16), CropSampler(imgs, 32, seed=2, frame_p=0.5).sample_hr(16))
    with pytest.raises(ValueError, match="frame_p"):
        CropSampler(imgs, 32, frame_p=1.5)


def test_edge_val_crops_straddle_tissue_and_border() -> None:
    imgs = [_bordered(np.random.default_rng(i)) for i in range(3)]
    crops = edge_val_crops(imgs, 64)
    assert crops.shape == (3, 3, 64, 64)
    for img, c in zip(imgs, crops):
        y, x = edge_corner(img, 64)
        assert torch.equal(c, torch.from_numpy(img[y : y + 64, x : x + 64]).permute(2, 0, 1).float() / 255)
        share = tissue_mask(img)[y : y + 64, x : x + 64].mean()
        assert abs(share - 0.3) < 0.02  # tissue next to border, not all tissue or all border
    assert edge_corner(imgs[0], 200) is None


def test_realistic_degradation_is_deterministic(frames_dir: Path) -> None:
    from train.data import load_images

    imgs = load_images(list_sources(frames_dir))
    a = CropSampler(imgs, 32, seed=3, degradation="realistic").sample(2)
    b = CropSampler(imgs, 32, seed=3, degradation="realistic").sample(2)
    assert a[0].shape == (2, 3, 8, 8) and torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], degrade(a[1]))


def test_interpolator_init_starts_near_bicubic() -> None:
    # smooth content (like endoscopy frames; on Kvasir-SEG validation crops the init is 0.7 dB below bicubic)
    yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    base = 0.5 + 0.2 * torch.sin(xx / 9) * torch.cos(yy / 13) + 0.1 * torch.tanh((xx - 60) / 3)
    hr = torch.stack([base, base * 0.6, base * 0.4]).unsqueeze(0)
    lr = degrade(hr)
    g = init_as_interpolator(Generator("srgan-x4-tiny")).eval()
    with torch.no_grad():
        sr = g(lr).clamp(0, 1)
        rand = Generator("srgan-x4-tiny").eval()(lr).clamp(0, 1)
    bicubic = float(psnr(bicubic_upscale(lr), hr))
    assert float(psnr(sr, hr)) > bicubic - 3.0  # 3-tap bicubic and zero padding: close, not equal
    assert float(psnr(sr, hr)) > float(psnr(rand, hr)) + 10


def test_pool_degradation_sampler_is_deterministic_and_not_plain_bicubic(frames_dir: Path) -> None:
    from train.data import load_images

    imgs = load_images(list_sources(frames_dir))
    a = CropSampler(imgs, 32, seed=4, degradation="pool").sample(8)
    b = CropSampler(imgs, 32, seed=4, degradation="pool").sample(8)
    assert a[0].shape == (8, 3, 8, 8) and torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(a[0], (a[0] * 255).round() / 255)  # 8-bit LR
    assert not torch.equal(a[0], degrade(a[1]))


def test_one_pool_step_fine_tuned_from_weights_with_suite_validation(frames_dir: Path, tmp_path: Path,
                                                                     monkeypatch) -> None:  # fmt: skip
    start = _tiny_start(tmp_path / "start.safetensors")
    out = tmp_path / "pool"
    _train(monkeypatch, frames_dir, out, max_steps=1, degradation="pool", val_degradation="suite",
           init_from=str(start), eval_interval=1, frame_crop_p=0.5, val_regions="tissue+edge")  # fmt: skip
    evals = [r for r in _log(out) if "val_psnr_y" in r]
    assert [r["step"] for r in evals] == [0, 1]
    assert set(evals[0]["gain_regions"]) == {"tissue", "edge"}
    from streamsr.degradations import suite_names

    assert list(evals[0]["gain_rows"]) == suite_names()
    ckpt = torch.load(out / "ckpt.pt", weights_only=False)
    first = load_generator(start, preset="srgan-x4-tiny", fold=False).state_dict()
    params = [k for k, v in ckpt["model"].items() if v.is_floating_point() and "running" not in k]
    assert any(not torch.equal(ckpt["model"][k], first[k]) for k in params)  # the step changed the weights ...
    # ... by at most one Adam step (lr 1.5e-3 at step 0 of the warmup): it started from the given weights
    assert max(float((ckpt["model"][k] - first[k]).abs().max()) for k in params) <= 2e-3


def test_lr_space_model_starts_from_progressive_weights_where_shapes_match(frames_dir: Path, tmp_path: Path,
                                                                          monkeypatch) -> None:  # fmt: skip
    start = _tiny_start(tmp_path / "progressive.safetensors")
    out = tmp_path / "lr"
    _train(monkeypatch, frames_dir, out, max_steps=1, preset="srgan-x4-lr-tiny", init_from=str(start))
    model = torch.load(out / "best.pt", weights_only=False)["model"]  # step 0, validated as the first best
    first = load_generator(start, fold=False).state_dict()
    assert all(torch.equal(model[k], first[k]) for k in model if k.startswith(("head.", "body.", "body_")))
    assert not model["tail.weight"].any() and model["tail.weight"].shape[0] == 48  # its own zero tail
    evals = [r for r in _log(out) if "val_psnr_y" in r]
    assert abs(evals[0]["val_psnr_y"] - evals[0]["bicubic_psnr_y"]) < 0.2  # so it starts as bicubic


def test_amp_auto_is_bf16_only_with_the_cpu_flag(monkeypatch) -> None:
    import train.precision as precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert precision.choose_amp("auto", cpu)[0] == "none"
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert precision.choose_amp("auto", cpu)[0] == "bf16"
    assert precision.choose_amp("none", cpu) == ("none", "asked for")
    with pytest.raises(ValueError, match="amp"):
        precision.choose_amp("int8", cpu)


def test_the_run_logs_its_precision_choice(frames_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import streamsr.machine as machine

    monkeypatch.setattr(machine, "_cpu_flags", lambda: {"avx2"})  # a CPU without native bf16
    _train(monkeypatch, frames_dir, tmp_path / "r", max_steps=1, amp="auto")
    start = _log(tmp_path / "r")[0]
    assert start["precision"] == "fp32" and "no native bf16" in start["why"]


def test_stage1_loss_goes_down_and_resume_is_exact(frames_dir: Path, tmp_path: Path, monkeypatch) -> None:
    straight, split = tmp_path / "straight", tmp_path / "split"
    _train(monkeypatch, frames_dir, straight, max_steps=20, init="random")
    losses = [r["mse"] for r in _log(straight) if "mse" in r]
    assert len(losses) == 20
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])

    _train(monkeypatch, frames_dir, split, max_steps=20, init="random", stop_at=10)
    assert torch.load(split / "ckpt.pt", weights_only=False)["step"] == 10
    _train(monkeypatch, frames_dir, split, max_steps=20, init="random", resume=True)
    a = torch.load(straight / "ckpt.pt", weights_only=False)
    b = torch.load(split / "ckpt.pt", weights_only=False)
    assert b["step"] == 20 and [h["step"] for h in b["history"]] == [0, 10, 20]
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k  # stopping + resuming changes nothing

    # export -> streamsr weights file that load_generator reads, with provenance metadata
    w = export(straight / "best.pt", tmp_path / "w.safetensors")
    g = load_generator(w, preset="srgan-x4-tiny", fold=False)
    best = torch.load(straight / "best.pt", weights_only=False)
    for k, v in best["model"].items():
        assert torch.equal(v, g.state_dict()[k]), k
    from safetensors import safe_open

    with safe_open(str(w), framework="pt") as f:
        meta = f.metadata()
    assert meta["steps"] == str(best["step"]) and json.loads(meta["recipe"])["preset"] == "srgan-x4-tiny"


def test_stage2_srgan_steps_with_small_random_vgg(frames_dir: Path, tmp_path: Path, monkeypatch) -> None:
    _train(monkeypatch, frames_dir, tmp_path / "s1", max_steps=4)
    _train(monkeypatch, frames_dir, tmp_path / "s2", stage="srgan", init_from=tmp_path / "s1" / "ckpt.pt",
           vgg_weights="random:16", d_channels=8, max_steps=3, learning_rate=1e-4)  # fmt: skip
    recs = [r for r in _log(tmp_path / "s2") if "content" in r]
    assert len(recs) == 3 and all(np.isfinite([r["content"], r["adv"], r["d"]]).all() for r in recs)
    ck = torch.load(tmp_path / "s2" / "ckpt.pt", weights_only=False)
    assert ck["step"] == 3 and ck["disc"] is not None and ck["config"]["stage"] == "srgan"


def test_srgan_mse_step_moves_generator_and_discriminator(frames_dir: Path, tmp_path: Path, monkeypatch) -> None:
    _train(monkeypatch, frames_dir, tmp_path / "s1", max_steps=2)
    gan = dict(stage="srgan", init_from=tmp_path / "s1" / "ckpt.pt", content_loss="mse", d_channels=8,
               degradation="pool", max_steps=3, learning_rate=1e-4)  # fmt: skip
    _train(monkeypatch, frames_dir, tmp_path / "gan", stop_at=1, **gan)
    before = torch.load(tmp_path / "gan" / "ckpt.pt", weights_only=False)
    _train(monkeypatch, frames_dir, tmp_path / "gan", stop_at=2, resume=True, **gan)
    after = torch.load(tmp_path / "gan" / "ckpt.pt", weights_only=False)
    assert (before["step"], after["step"]) == (1, 2)
    for net in ("model", "disc"):
        moved = [k for k, v in after[net].items() if v.is_floating_point() and not torch.equal(v, before[net][k])]
        assert moved, f"one adversarial step left the {net} unchanged"
    rec = [r for r in _log(tmp_path / "gan") if "adv" in r][-1]
    assert np.isfinite([rec["content"], rec["adv"], rec["d"]]).all()


def test_stabilised_srgan_keeps_an_ema_adds_ldl_and_chooses_its_best_on_validation(
        frames_dir: Path, tmp_path: Path, monkeypatch) -> None:  # fmt: skip
    _train(monkeypatch, frames_dir, tmp_path / "s1", max_steps=2)
    _train(monkeypatch, frames_dir, tmp_path / "gan", stage="srgan", init_from=tmp_path / "s1" / "ckpt.pt",
           content_loss="mse", d_channels=8, d_norm="spectral", ema_decay=0.5, ldl_weight=1.0, ring_weight=0.1,
           max_steps=4,
           eval_interval=2, learning_rate=1e-3, gan_max_drop=100.0)  # fmt: skip
    log = _log(tmp_path / "gan")
    steps = [r for r in log if "adv" in r]
    assert len(steps) == 4 and all(np.isfinite(r["ldl"]) and r["ldl"] >= 0 and r["ring"] >= 0 for r in steps)
    vals = [r for r in log if "texture" in r]
    assert [r["step"] for r in vals] == [0, 2, 4]
    assert all(0 < r["texture"] and 0 < r["ema"]["texture"] for r in vals)
    assert all(np.isnan(r["ring_dark"]) for r in vals)  # the synthetic frames have no specular highlights
    ck = torch.load(tmp_path / "gan" / "ckpt.pt", weights_only=False)
    assert not any(type(m).__name__ == "BatchNorm2d" for m in Discriminator(32, 8, norm="spectral").modules())
    ema = {k.removeprefix("module."): v for k, v in ck["ema"].items() if k.startswith("module.")}
    moved = [k for k, v in ck["model"].items() if v.is_floating_point() and not torch.equal(v, ema[k])]
    assert moved, "the EMA (decay 0.5) should lag the raw generator after 4 steps"
    best = torch.load(tmp_path / "gan" / "best.pt", weights_only=False)
    assert best["model_from"] in ("model", "ema") and best["step"] in (2, 4)


def test_artifact_map_weights_only_noisy_error_worse_than_the_ema() -> None:
    from train.models import artifact_map

    hr = torch.zeros(1, 3, 16, 16)
    sr = hr.clone()
    sr[..., 4:8, 4:8] = torch.rand(1, 3, 4, 4)  # a noisy patch of error
    assert artifact_map(hr, hr, hr).abs().sum() == 0  # no error, no weight
    w = artifact_map(hr, sr, hr)  # the EMA is perfect: the noisy patch is an artifact
    assert w.shape == (1, 1, 16, 16) and w[..., 4:8, 4:8].sum() > 0 and w[..., 12:, 12:].sum() == 0
    assert artifact_map(hr, sr, sr + 0.5).sum() == 0  # the EMA is worse everywhere: nothing to correct


def test_dark_ring_loss_penalises_only_darkening_around_highlights() -> None:
    from train.models import dark_ring_loss, highlight_ring

    hr = torch.full((1, 3, 32, 32), 0.3)
    hr[..., 14:18, 14:18] = 0.95  # a 4x4 specular highlight on tissue
    ring = highlight_ring(hr)
    assert ring.sum() == 16 * 16 - 4 * 4 and not ring[0, 0, 16, 16] and not ring[0, 0, 0, 0]
    halo, far, brighter = hr.clone(), hr.clone(), hr + 0.1
    halo[..., 12, 16] -= 0.2  # a dark pixel 2 px from the highlight
    far[..., 1, 1] -= 0.2  # the same error away from it
    assert dark_ring_loss(halo, hr, ring) > 0
    assert dark_ring_loss(far, hr, ring) == 0 and dark_ring_loss(brighter, hr, ring) == 0
    assert dark_ring_loss(hr, hr, highlight_ring(torch.full_like(hr, 0.3))) == 0  # no highlight, no ring


def test_discriminator_shapes() -> None:
    d = Discriminator(size=32, channels=8)
    assert d(torch.rand(2, 3, 32, 32)).shape == (2,)
    with pytest.raises(ValueError):
        Discriminator(size=30)


def test_vgg19_loads_torchvision_layout(tmp_path: Path) -> None:
    ref = VGG19Features("relu2_2")  # torchvision index layout; relu2_2 keeps the test small
    state = {f"features.{k}": torch.randn_like(v) for k, v in ref.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a full torchvision state dict also has these
    torch.save(state, tmp_path / "vgg19.pth")
    net = load_vgg19(str(tmp_path / "vgg19.pth"), "relu2_2")
    assert torch.equal(net.features[0].weight, state["features.0.weight"])
    assert net(torch.rand(1, 3, 16, 16)).shape == (1, 128, 8, 8)
    assert not any(p.requires_grad for p in net.parameters())
    with pytest.raises(FileNotFoundError):
        load_vgg19(str(tmp_path / "missing.pth"))


def test_region_gain_splits_error_between_tissue_and_masked_pixels() -> None:
    from streamsr.degradations import bicubic_upscale
    from streamsr.evaluate import SHAVE, to_image, to_tensor
    from streamsr.metrics import rgb_to_y
    from train.region_gain import RegionError, region_errors

    frames = [_bordered(np.random.default_rng(i)) for i in range(2)]
    torch.manual_seed(0)
    model = Generator("srgan-x4-tiny").eval()
    e = region_errors(model, frames, ["aa-bicubic"])["aa-bicubic"]
    inner = (128 - 2 * SHAVE) * (160 - 2 * SHAVE)
    assert e.pixels.sum() == 2 * inner and e.pixels[1] == sum(tissue_mask(f)[4:-4, 4:-4].sum() for f in frames)
    from streamsr.degradations import SUITE

    aa = next(d for d in SUITE if d.name == "aa-bicubic")
    y = lambda im: rgb_to_y(to_tensor(im))[0].numpy()[SHAVE:-SHAVE, SHAVE:-SHAVE]  # noqa: E731
    bic_sse = sum(((y(to_image(bicubic_upscale(to_tensor(aa(f))))) - y(f)) ** 2).sum() for f in frames)
    assert np.isclose(e.sse[0].sum(), bic_sse)  # bicubic's error, split over the two regions
    assert RegionError(np.array([[4.0, 1.0], [1.0, 1.0]]), np.array([1, 1])).gain(0) == pytest.approx(6.0206, abs=1e-3)
    with pytest.raises(ValueError, match="unknown suite rows"):
        region_errors(model, frames, ["nope"])
