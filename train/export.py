"""Export a training checkpoint's generator to a streamsr weights file (safetensors + provenance metadata).

    python -m train.export runs/lite/best.pt streamsr/weights/srgan-x4-lite.safetensors

The file holds the unfolded generator state dict (streamsr.model.save_weights); its metadata records the
preset, the step, the training data folder and sources count, the recipe (the checkpoint's full config)
and the validation PSNR, so a weights file always says where it came from.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from streamsr.model import Generator, save_weights


def export(ckpt_path: str | Path, out_path: str | Path, *, data_name: str = "") -> Path:
    """Write the checkpoint's generator to `out_path`; returns the path. data_name: a human label for the data."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    cfg = ckpt["config"]
    model = Generator(cfg["preset"])
    model.load_state_dict(ckpt["model"])
    val = [h for h in ckpt["history"] if h["step"] == ckpt["step"]]
    source = ckpt.get("model_from", "model")  # stage 2 may keep its generator's EMA (train.py: validate)
    if val and source == "ema":
        val = [val[-1]["ema"]]
    meta = {
        "steps": str(ckpt["step"]),
        "stage": cfg["stage"],
        "data": data_name or f"{cfg['data_dir']} ({ckpt.get('train_sources', '?')} training sources, "
        f"{cfg['n_val']} held out for validation, split by source)",
        "recipe": json.dumps(cfg, sort_keys=True),
        "train_seconds": f"{ckpt.get('train_seconds', 0.0):.0f}",
        "val_psnr_y": f"{val[-1]['val_psnr_y']:.3f}" if val else "",
        "val_bicubic_psnr_y": f"{ckpt.get('val_bicubic', float('nan')):.3f}",
        "weights_from": "the generator's exponential moving average" if source == "ema" else "the generator",
    }
    if val and "texture" in val[-1]:
        meta["val_texture_ratio"] = f"{val[-1]['texture']:.4f}"
    return save_weights(model, out_path, metadata=meta)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        raise SystemExit("usage: python -m train.export CHECKPOINT.pt OUT.safetensors [DATA_LABEL]")
    path = export(sys.argv[1], sys.argv[2], data_name=sys.argv[3] if len(sys.argv) == 4 else "")
    print(f"wrote {path}")
