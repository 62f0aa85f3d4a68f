"""Which autocast precision a training run uses: bf16 where the hardware computes it natively, else fp32.

Measured on the 2-core machines of this project: bf16 autocast trained 1.9x faster than fp32 on a Zen 4
(AVX512-BF16), but 10-30x slower on a Zen 3 (AVX2 only), where bf16 is emulated. So the flag decides, never
the CPU's name.
"""

from __future__ import annotations

import torch

from streamsr.machine import cpu_has_bf16


def choose_amp(requested: str, device: torch.device) -> tuple[str, str]:
    """The autocast mode to train with and why: ("bf16" | "fp16" | "none", reason).

    requested: "auto" picks bf16 on a CPU with AVX512-BF16 or AMX and on a CUDA device that supports bf16,
    "none" (fp32) elsewhere; "none", "bf16" and "fp16" are taken as asked.
    """
    if requested != "auto":
        if requested not in ("none", "bf16", "fp16"):
            raise ValueError(f"amp must be auto, none, bf16 or fp16, got {requested!r}")
        return requested, "asked for"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", "CUDA device supports bf16"
        return "none", "CUDA device without bf16"
    if cpu_has_bf16():
        return "bf16", "CPU has native bf16 (AVX512-BF16 or AMX)"
    return "none", "CPU has no native bf16 (no AVX512-BF16 or AMX): fp32, as emulated bf16 is slower"
