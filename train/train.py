"""Train the streamsr generator: stage 1 SRResNet (pixel loss), stage 2 SRGAN (VGG19 content + adversarial).

Reads top to bottom, nanoGPT style: config, data, model, optimiser, loop (eval + checkpoint), done.
Override any config value on the command line as --key=value, e.g.

    python -m train.train --out_dir=runs/lite --data_dir=../shared/data/kvasir_seg/train --max_minutes=80
    python -m train.train --stage=srgan --init_from=runs/lite/best.pt --out_dir=runs/lite-gan \\
        --vgg_weights=~/vgg19-dcbb9e9d.pth --device=cuda --preset=srgan-x4

Checkpoints (out_dir/ckpt.pt latest, out_dir/best.pt best validation PSNR for stage 1) are dicts holding the
config they were trained with, the step, model/optimiser state, RNG state and the validation history, so
`--resume=True` continues exactly where a run stopped and `train.export` needs no extra flags.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from streamsr.degradations import SUITE, DegradationPool, bicubic_upscale, degrade
from streamsr.evaluate import DARK_LEVELS, highlight_masks
from streamsr.metrics import high_frequency_energy, psnr, rgb_to_y
from streamsr.model import Generator, load_generator
from train.data import CropSampler, edge_val_crops, fixed_val_crops, list_sources, load_images, split_sources
from train.models import (Discriminator, artifact_map, dark_ring_loss, highlight_ring, init_as_interpolator,
                          load_matching, load_vgg19)
from train.precision import choose_amp

# ---- config ---------------------------------------------------------------------------------------------
out_dir = "runs/lite"
data_dir = "../shared/data/kvasir_seg/train"  # a folder of frames (jpg/png) and/or videos
n_val = 100  # sources held out for validation (split by source, see train/data.py)
max_images = 0  # >0: use only this many training sources (quick runs / tests)
video_every = 30  # videos contribute every N-th frame
stage = "srresnet"  # "srresnet" (pixel loss pre-training) | "srgan" (perceptual + adversarial)
preset = "srgan-x4-lite"
init = "interpolator"  # stage 1 start: "interpolator" (train/models.py) | "random" (PyTorch default init)
init_from = ""  # generator from a checkpoint (.pt) or weights file (.safetensors): stage 2, or stage-1 fine-tuning
degradation = "bicubic"  # "bicubic" (antialiased) | "realistic" (+ blur, noise, JPEG) | "pool" (degradations.py)
pool_downscale_p = "0.25,0.2,0.1,0.15,0.3"  # pool: aa-bicubic, area, bilinear, bicubic, blur+bilinear weights
pool_noise_p = 0.35  # pool: probability of sensor noise (half Gaussian, half signal-dependent)
pool_chroma_p = 0.25  # pool: probability of 4:2:0 chroma subsampling
pool_jpeg_p = 0.35  # pool: probability of a JPEG round trip (quality 50-95)
frame_crop_p = 0.0  # share of training crops placed anywhere in the frame, borders and overlays too (data.py)
val_regions = "tissue"  # "tissue": one tissue crop per validation image | "tissue+edge": plus one edge crop
val_degradation = "bicubic"  # "bicubic": plain antialiased LR | "suite": every streamsr eval --suite row, mean
hr_crop = 128  # HR patch edge; LR patches are hr_crop/4 = 32 px as in the seed work
batch_size = 16
max_steps = 1500
stop_at = 0  # >0: checkpoint and stop at this step without finishing the schedule (resume later)
max_minutes = 0.0  # >0: a wall-time budget: the lr schedule runs on max(step/max_steps, time/budget)
learning_rate = 4e-4  # peak Adam lr (Ledig et al. use 1e-4 for 10^6 steps; we have ~10^3)
min_lr = 1e-5  # cosine decay floor, reached at max_steps
warmup_steps = 50
beta1, beta2 = 0.9, 0.999
loss = "mse"  # stage-1 pixel loss: "mse" (the paper) | "l1"
l1_steps = 0  # stage 1: use L1 for the first N steps, then `loss`
grad_clip = 1.0  # 0 disables
content_loss = "vgg"  # stage 2: "vgg" (SRGAN-VGG54, needs VGG19 weights) | "mse" (SRGAN-MSE: pixel MSE, no VGG)
vgg_weights = ""  # stage 2: torchvision vgg19 state dict path; "" = torchvision cache; "random:K" = tests
vgg_layer = "relu5_4"  # "VGG54" of the paper
vgg_rescale = 1 / 12.75  # the paper rescales VGG feature maps by 1/12.75
adv_weight = 1e-3
d_channels = 64
d_lr_mult = 1.0  # stage 2: discriminator lr = this x the generator's (TTUR, Heusel et al. 2017; >1 with spectral norm)
d_norm = "batch"  # stage 2 discriminator: "batch" (the paper's BatchNorm) | "spectral" (spectral norm, no BN)
ema_decay = 0.0  # >0: also keep an exponential moving average of the generator, validated beside the raw one
ldl_weight = 0.0  # stage 2: weight of LDL's artifact-map L1 loss (Liang et al. 2022); needs ema_decay > 0
ring_weight = 0.0  # stage 2: weight of the dark-ring loss (train/models.py): darkening near specular highlights
gan_max_drop = 0.5  # stage 2 best.pt: texture ratio nearest 1 among validations with every row within this of step 0
eval_interval = 100
val_crop = 192  # HR edge of the fixed validation crops (one per validation image)
log_interval = 10
seed = 1337
device = "cpu"  # "cpu" | "cuda" | "cuda:N"
threads = 2  # torch CPU threads
channels_last = True  # measured ~1.4x faster than NCHW for the lite preset on this 2-core CPU
amp = "auto"  # "auto" (train/precision.py: bf16 where native, else fp32) | "none" | "bf16" | "fp16" (CUDA)
resume = False
# ---------------------------------------------------------------------------------------------------------
config_keys = [k for k, v in globals().items() if not k.startswith("_") and isinstance(v, (int, float, bool, str))]


def _parse_overrides(argv: list[str]) -> None:
    for arg in argv:
        if not arg.startswith("--") or "=" not in arg:
            raise SystemExit(f"arguments are --key=value, got {arg!r}")
        key, val = arg[2:].split("=", 1)
        if key not in config_keys:
            raise SystemExit(f"unknown config key {key!r}; known: {', '.join(config_keys)}")
        cur = globals()[key]
        if isinstance(cur, bool):
            parsed = val.lower() in ("1", "true", "yes")
        else:
            parsed = type(cur)(val)
        globals()[key] = parsed


if __name__ == "__main__":
    _parse_overrides(sys.argv[1:])
config = {k: globals()[k] for k in config_keys}

# ---- setup ----------------------------------------------------------------------------------------------
torch.manual_seed(seed)
np.random.seed(seed)
torch.set_num_threads(threads)
dev = torch.device(device)
if dev.type == "cuda" and not torch.cuda.is_available():
    raise SystemExit("--device=cuda but CUDA is not available")
if dev.type == "cuda":
    torch.backends.cudnn.benchmark = True
mem_fmt = torch.channels_last if channels_last else torch.contiguous_format
amp_mode, amp_reason = choose_amp(amp, dev)
amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp_mode]
print(f"precision: {'fp32' if amp_mode == 'none' else amp_mode + ' autocast'} ({amp_reason})", flush=True)
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
ckpt_path = out / "ckpt.pt"
ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False) if resume else None
if ckpt is not None:  # a resumed run keeps its original config (only out_dir/resume/max_* may differ)
    for k in ("stage", "preset", "hr_crop", "data_dir", "n_val", "max_images", "seed", "loss", "vgg_layer", "content_loss",
              "degradation", "val_degradation", "val_regions", "d_norm", "ema_decay"):
        if ckpt["config"].get(k, config[k]) != config[k]:
            raise SystemExit(f"--resume: checkpoint was trained with {k}={ckpt['config'][k]!r}, not {config[k]!r}")

# ---- data -----------------------------------------------------------------------------------------------
t0 = time.time()
sources = list_sources(data_dir)
if len(sources) <= n_val:
    raise SystemExit(f"{data_dir}: {len(sources)} sources, need more than n_val={n_val}")
train_src, val_src = split_sources(sources, n_val)
if max_images:
    train_src = train_src[:max_images]
pool = DegradationPool(downscale_p=tuple(float(x) for x in pool_downscale_p.split(",")), noise_p=pool_noise_p,
                       chroma_p=pool_chroma_p, jpeg_p=pool_jpeg_p)  # fmt: skip
train_data = CropSampler(load_images(train_src, video_every=video_every), hr_crop, seed=seed, degradation=degradation,
                         pool=pool, frame_p=frame_crop_p)  # fmt: skip
_val_images = load_images(val_src, video_every=video_every)
val_hr = fixed_val_crops(_val_images, val_crop)
n_tissue_val = val_hr.shape[0]
if val_regions == "tissue+edge":  # whole-frame scores include borders and overlays: validate on them too
    val_hr = torch.cat([val_hr, edge_val_crops(_val_images, val_crop)])
elif val_regions != "tissue":
    raise SystemExit(f"unknown val_regions {val_regions!r}; known: tissue, tissue+edge")
del _val_images
if val_degradation == "bicubic":  # the plain antialiased LR, as `streamsr eval` without --suite measures
    val_sets = {"aa-bicubic": degrade(val_hr)}
elif val_degradation == "suite":  # every suite row on the validation crops (never the held-out frames)
    _val_u8 = val_hr.mul(255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    val_sets = {d.name: torch.from_numpy(np.stack([d(c) for c in _val_u8])).permute(0, 3, 1, 2).float().div(255.0)
                for d in SUITE}  # fmt: skip
else:
    raise SystemExit(f"unknown val_degradation {val_degradation!r}; known: bicubic, suite")
val_bicubic_crops = {k: psnr(bicubic_upscale(lr), val_hr) for k, lr in val_sets.items()}
val_bicubic_rows = {k: float(v.mean()) for k, v in val_bicubic_crops.items()}
val_bicubic = float(np.mean(list(val_bicubic_rows.values())))
# texture and dark-ring figures on the validation crops (what `streamsr eval` reports, for choosing GAN steps)
val_hf = high_frequency_energy(val_hr).sum().item()
_rings = [highlight_masks(c)[1] for c in val_hr.mul(255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()]
val_ring = torch.from_numpy(np.stack(_rings))  # (N, H, W) bool
val_hr_y = rgb_to_y(val_hr)[:, 0] * 255.0
print(
    f"data: {len(train_data.images)} train / {len(val_src)} val sources from {data_dir} "
    f"({time.time() - t0:.0f}s to decode); val {tuple(val_hr.shape)}, bicubic PSNR-Y {val_bicubic:.3f} dB",
    flush=True,
)

# ---- model ----------------------------------------------------------------------------------------------
model = Generator(preset)
if stage == "srresnet" and init_from and ckpt is None:  # fine-tune a stage-1 model (e.g. on a new degradation)
    if init_from.endswith(".safetensors"):
        source = load_generator(init_from, fold=False).state_dict()
    else:
        source = torch.load(init_from, map_location="cpu", weights_only=False)["model"]
    # another preset (an lr-space model from progressive weights) takes the tensors whose names and shapes
    # match (head, body) and keeps its own init for the rest (its zero tail: it starts as bicubic)
    copied, kept = load_matching(model, source)
    print(f"init_from {init_from}: {len(copied)} tensors copied, {len(kept)} kept from init"
          + (f" ({', '.join(kept[:4])}{'...' if len(kept) > 4 else ''})" if kept else ""), flush=True)
elif stage == "srresnet":
    if init == "interpolator" and model.preset.arch == "progressive":
        init_as_interpolator(model)  # lr-space models are an interpolator from construction
    elif init != "random":
        raise SystemExit(f"unknown init {init!r}")
elif stage == "srgan":
    if not init_from and ckpt is None:
        raise SystemExit("stage=srgan needs --init_from=<stage-1 checkpoint or weights>")
    if init_from and ckpt is None:
        if init_from.endswith(".safetensors"):
            model.load_state_dict(load_generator(init_from, preset=preset, fold=False).state_dict())
        else:
            model.load_state_dict(torch.load(init_from, map_location="cpu", weights_only=False)["model"])
else:
    raise SystemExit(f"unknown stage {stage!r}")
model.to(dev, memory_format=mem_fmt)
optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, betas=(beta1, beta2))
ema = None
if ema_decay:  # torch's own EMA wrapper; buffers (BatchNorm statistics) are averaged too
    ema = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(ema_decay),
                                              use_buffers=True)  # fmt: skip
    ema.module.eval()  # the EMA is only ever evaluated (validation, LDL's reference output)
if ldl_weight and ema is None:
    raise SystemExit("--ldl_weight needs --ema_decay > 0 (LDL compares the model with its EMA)")

disc = d_optimizer = vgg = None
if stage == "srgan":
    disc = Discriminator(size=hr_crop, channels=d_channels, norm=d_norm).to(dev, memory_format=mem_fmt)
    d_optimizer = torch.optim.Adam(disc.parameters(), lr=learning_rate, betas=(beta1, beta2))
    if content_loss == "vgg":
        vgg = load_vgg19(os.path.expanduser(vgg_weights), vgg_layer).to(dev, memory_format=mem_fmt)
    elif content_loss != "mse":
        raise SystemExit(f"unknown content_loss {content_loss!r}; known: vgg, mse")

step, best_val, history, train_seconds = 0, -math.inf, [], 0.0  # train_seconds: wall time of earlier runs
if ckpt is not None:
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if disc is not None:
        disc.load_state_dict(ckpt["disc"])
        d_optimizer.load_state_dict(ckpt["d_optimizer"])
    if ema is not None:
        ema.load_state_dict(ckpt["ema"])
    step, best_val, history = ckpt["step"], ckpt["best_val"], ckpt["history"]
    train_seconds = ckpt.get("train_seconds", 0.0)
    train_data.set_state(ckpt["sampler_rng"])
    torch.set_rng_state(ckpt["torch_rng"])
    print(f"resumed from {ckpt_path} at step {step} (best validation score {best_val:.3f})", flush=True)
ckpt = None  # free the host copy


def progress() -> float:
    """Fraction of the run done: by steps, or by wall time when a max_minutes budget is set and binds first
    (on a shared CPU the step rate is unknown in advance; this way the cosine still anneals by the deadline)."""
    done = step / max_steps
    if max_minutes:
        done = max(done, (train_seconds + time.time() - t_start) / (max_minutes * 60))
    return done


def get_lr(it: int) -> float:
    """Linear warmup over warmup_steps, then cosine decay from learning_rate to min_lr at progress() == 1."""
    if it < warmup_steps:
        return learning_rate * (it + 1) / warmup_steps
    p0 = warmup_steps / max_steps
    ratio = min(1.0, max(0.0, (progress() - p0) / max(1e-9, 1.0 - p0)))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (learning_rate - min_lr)


@torch.no_grad()
def evaluate(net: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """PSNR-Y (shave 4) of the clamped fp32 eval-mode generator on each fixed validation crop, per
    validation degradation (one row, or one per suite row): {row: (N,) float64}; and, pooled over the rows,
    the texture ratio (high-frequency energy over the HR crops') and the share of highlight-ring pixels more
    than DARK_LEVELS too dark, as `streamsr eval` defines them."""
    was_training = net.training
    net.eval()
    rows, hf, dark, ring = {}, 0.0, 0, 0
    for name, val_lr in val_sets.items():
        scores = []
        for i in range(0, val_lr.shape[0], 16):
            lr = val_lr[i : i + 16].to(dev, memory_format=mem_fmt)
            sr = net(lr).float().clamp(0, 1).cpu()
            scores.append(psnr(sr, val_hr[i : i + 16]))
            hf += high_frequency_energy(sr).sum().item()
            mask = val_ring[i : i + 16]
            dark += int((rgb_to_y(sr)[:, 0] * 255.0 < val_hr_y[i : i + 16] - DARK_LEVELS)[mask].sum())
            ring += int(mask.sum())
        rows[name] = torch.cat(scores)
    net.train(was_training)
    return rows, {"texture": hf / (val_hf * len(val_sets)), "ring_dark": dark / ring if ring else float("nan")}


def save(path: Path, *, weights: dict | None = None, weights_from: str = "model") -> None:
    """A checkpoint: `weights` (default: the raw generator's) under "model", everything to resume under the rest."""
    state = {
        "model": weights if weights is not None else model.state_dict(),
        "model_from": weights_from,
        "optimizer": optimizer.state_dict(),
        "disc": disc.state_dict() if disc is not None else None,
        "d_optimizer": d_optimizer.state_dict() if d_optimizer is not None else None,
        "ema": ema.state_dict() if ema is not None else None,
        "step": step,
        "train_seconds": train_seconds + time.time() - t_start,
        "best_val": best_val,
        "history": history,
        "config": config,
        "sampler_rng": train_data.state(),
        "torch_rng": torch.get_rng_state(),
        "val_bicubic": val_bicubic,
        "train_sources": len(train_data.images),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: a run killed mid-save never leaves a broken checkpoint


def measure(net: torch.nn.Module) -> dict:
    """One validation record of `net` (see evaluate): mean PSNR-Y, gain per row, texture, dark ring."""
    crops, extra = evaluate(net)
    rows = {k: float(v.mean()) for k, v in crops.items()}
    rec = {"val_psnr_y": float(np.mean(list(rows.values()))),
           "gain_rows": {k: round(v - val_bicubic_rows[k], 4) for k, v in rows.items()},
           "texture": round(extra["texture"], 4), "ring_dark": round(extra["ring_dark"], 4)}  # fmt: skip
    if val_hr.shape[0] > n_tissue_val:  # mean gain over the rows, tissue crops and edge crops apart
        gains = torch.stack([crops[k] - val_bicubic_crops[k] for k in crops]).mean(0)
        rec["gain_regions"] = {"tissue": round(float(gains[:n_tissue_val].mean()), 4),
                               "edge": round(float(gains[n_tissue_val:].mean()), 4)}  # fmt: skip
    return rec


def gan_score(rec: dict) -> float:
    """Stage 2's choice of step, on validation only: the texture ratio nearest 1 among records that keep
    fidelity - every row within gan_max_drop dB of the step-0 model, no row falling to bicubic or below that
    was above it, and no more dark ring pixels than step 0 (+0.5 points). -inf where a bound fails."""
    start = history[0]
    for k, g in rec["gain_rows"].items():
        g0 = start["gain_rows"][k]
        if g < g0 - gan_max_drop or (g0 > 0 and g <= 0):
            return -math.inf
    if rec["ring_dark"] > start["ring_dark"] + 0.005:
        return -math.inf
    return -abs(1.0 - rec["texture"])


def validate() -> None:
    """Evaluate at `step`, record it (history, log.jsonl, a progress line) and keep best.pt on a new best:
    stage 1 by mean PSNR-Y; stage 2 by gan_score, the raw generator or its EMA, whichever scores higher
    (best.pt's "model" holds the chosen weights, "model_from" says which)."""
    global best_val
    rec = {"step": step, **measure(model), "bicubic_psnr_y": val_bicubic, "time": time.time() - t_start}
    if ema is not None:
        rec["ema"] = measure(ema.module)
    history.append(rec)
    log_file.write(json.dumps(rec) + "\n")
    log_file.flush()
    for name, r in [("", rec)] + ([("ema ", rec["ema"])] if ema is not None else []):
        val = r["val_psnr_y"]
        tqdm.write(f"step {step}: {name}val PSNR-Y {val:.3f} dB (bicubic {val_bicubic:.3f}, {val - val_bicubic:+.3f})"
                   + (f" worst row {min(r['gain_rows'].values()):+.3f}" if len(r["gain_rows"]) > 1 else "")
                   + "".join(f" {k} {v:+.3f}" for k, v in r.get("gain_regions", {}).items())
                   + f" texture {r['texture']:.3f} dark ring {r['ring_dark']:.3f}")
    if stage == "srresnet":
        if rec["val_psnr_y"] > best_val:
            best_val = rec["val_psnr_y"]
            save(out / "best.pt")
        return
    candidates = [("model", rec, model)] + ([("ema", rec["ema"], ema.module)] if ema is not None else [])
    source, best_rec, net = max(candidates, key=lambda c: gan_score(c[1]))
    score = gan_score(best_rec)
    if score > best_val and step > 0:
        best_val = score
        save(out / "best.pt", weights=net.state_dict(), weights_from=source)
        tqdm.write(f"step {step}: new best ({source}): texture {best_rec['texture']:.3f}, "
                   f"worst row {min(best_rec['gain_rows'].values()):+.3f}")


def bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 1.0 if real else 0.0))


# ---- training loop --------------------------------------------------------------------------------------
model.train()
t_start = time.time()
log_file = open(out / "log.jsonl", "a")
log_file.write(json.dumps({"step": step, "precision": "fp32" if amp_mode == "none" else amp_mode, "why": amp_reason,
                           "threads": torch.get_num_threads()}) + "\n")  # fmt: skip
bar = tqdm(total=max_steps, initial=step, desc=stage, mininterval=5.0, dynamic_ncols=True)
while True:
    if step % eval_interval == 0 and not (history and history[-1]["step"] == step):
        validate()
        save(ckpt_path)
    if stop_at and step >= stop_at:
        break
    if progress() >= 1.0:
        if step < max_steps:
            tqdm.write(f"max_minutes={max_minutes} reached at step {step}")
        break

    lr_now = get_lr(step)
    for group in optimizer.param_groups:
        group["lr"] = lr_now
    if d_optimizer is not None:
        for group in d_optimizer.param_groups:
            group["lr"] = lr_now * d_lr_mult
    lr_b, hr_b = train_data.sample(batch_size)
    lr_b = lr_b.to(dev, memory_format=mem_fmt, non_blocking=True)
    hr_b = hr_b.to(dev, memory_format=mem_fmt, non_blocking=True)

    with torch.autocast(dev.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        sr = model(lr_b)
    sr = sr.float()
    losses = {}
    if stage == "srresnet":
        use_l1 = loss == "l1" or step < l1_steps
        g_loss = F.l1_loss(sr, hr_b) if use_l1 else F.mse_loss(sr, hr_b)
        losses["l1" if use_l1 else "mse"] = g_loss.item()
    else:
        # discriminator step: real HR vs detached SR
        with torch.autocast(dev.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            d_real, d_fake = disc(hr_b), disc(sr.detach().clamp(0, 1))
        d_loss = bce(d_real.float(), True) + bce(d_fake.float(), False)
        d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        d_optimizer.step()
        # generator step: content loss (VGG54 features or pixel MSE) + 1e-3 adversarial loss (-log D(G(LR)))
        with torch.autocast(dev.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            d_g = disc(sr.clamp(0, 1))
            if vgg is not None:
                f_sr, f_hr = vgg(sr.clamp(0, 1)), vgg(hr_b)
        if vgg is not None:
            content = F.mse_loss(f_sr.float() * vgg_rescale, f_hr.float() * vgg_rescale)
        else:  # SRGAN-MSE (Ledig et al. 2017, Table 2): the pixel loss stays, the adversarial term is added
            content = F.mse_loss(sr, hr_b)
        adv = bce(d_g.float(), True)
        g_loss = content + adv_weight * adv
        losses.update(content=content.item(), adv=adv.item(), d=d_loss.item())
        if ldl_weight:  # LDL: extra L1 where the error looks like an artifact (noisy, worse than the EMA's)
            with torch.no_grad(), torch.autocast(dev.type, dtype=amp_dtype or torch.float32,
                                                 enabled=amp_dtype is not None):
                sr_ema = ema.module(lr_b).float()
            weights = artifact_map(hr_b, sr.detach(), sr_ema)
            ldl = F.l1_loss(weights * sr, weights * hr_b)
            g_loss = g_loss + ldl_weight * ldl
            losses["ldl"] = ldl.item()
        if ring_weight:
            ring_term = dark_ring_loss(sr, hr_b, highlight_ring(hr_b))
            g_loss = g_loss + ring_weight * ring_term
            losses["ring"] = ring_term.item()
    optimizer.zero_grad(set_to_none=True)
    g_loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    if ema is not None:
        ema.update_parameters(model)
    step += 1
    bar.update(1)
    if step % log_interval == 0:
        bar.set_postfix({**{k: f"{v:.4g}" for k, v in losses.items()}, "lr": f"{lr_now:.2e}"}, refresh=False)
        log_file.write(json.dumps({"step": step, "lr": lr_now, **losses, "time": time.time() - t_start}) + "\n")
        log_file.flush()

# final eval + checkpoint (so a finished or time-limited run always ends on a measured, saved state)
if not (history and history[-1]["step"] == step):
    validate()
save(ckpt_path)
bar.close()
log_file.close()
best_what = "val PSNR-Y" if stage == "srresnet" else "GAN score (-|1 - texture|)"
print(f"done: step {step}, best {best_what} {best_val:.3f}, {(time.time() - t_start) / 60:.1f} min", flush=True)
