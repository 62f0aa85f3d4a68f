"""Where the generator's time goes: per-stage time and GFLOP/s of the paper's layout vs the engines' form.

Runs the five stages of the generator (head, residual body with its closing conv and skip, first and second
upsampler, tail) one by one on the activations of the real input, for the paper's layout (BNs folded) and
for `fold_for_inference` (sub-pixel tail: the last upsampler stops before its shuffle, the tail runs on the
2x grid and shuffles at the end), in torch eager NCHW and channels_last. Each repetition times every
(form, layout) once in a rotated order, then both forms whole in ONNX Runtime (the CPU default engine);
ms are medians over repetitions. GFLOP/s uses the MACs each stage executes (the sub-pixel tail executes
1.23x the paper tail's MACs).

    python benchmarks/layers.py [--batch 12] [--window 44] [--reps 7] [--out benchmarks/results]

Default input: 12 windows of 44x44 (one 128x96 frame at tile 32 + halo 6), shipped weights.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from streamsr.errors import EngineUnavailableError
from streamsr.model import Generator, fold_batchnorm, load_generator
from streamsr.tiling import DEFAULT_HALO, DEFAULT_TILE

HERE = Path(__file__).resolve().parent
STAGES = ("head", "body", "upsample 1", "upsample 2", "tail")


def stages(model: Generator) -> list[tuple[Callable[[torch.Tensor], torch.Tensor], list[torch.nn.Module]]]:
    """The five stages, each as (function of the previous stage's output, the modules it runs)."""
    def body(h: torch.Tensor) -> torch.Tensor:
        return model.body_bn(model.body_conv(model.body(h))) + h
    return [(model.head, [model.head]), (body, [model.body, model.body_conv]),
            (model.upsample[0], [model.upsample[0]]), (model.upsample[1], [model.upsample[1]]),
            (model.tail, [model.tail])]


def stage_macs(model: Generator, n: int, window: int) -> list[int]:
    """MACs each stage executes on n windows (convs only), counted by hooks on its convs."""
    macs = []
    x = torch.zeros(1, 3, window, window)
    with torch.no_grad():
        for fn, mods in stages(model):
            total = 0

            def count(mod: torch.nn.Conv2d, _inp: tuple, out: torch.Tensor) -> None:
                nonlocal total
                total += mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels * out[0].numel()

            hooks = [c.register_forward_hook(count) for m in mods for c in m.modules()
                     if isinstance(c, torch.nn.Conv2d)]
            x = fn(x)
            for h in hooks:
                h.remove()
            macs.append(total * n)
    return macs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--window", type=int, default=DEFAULT_TILE + 2 * DEFAULT_HALO)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)

    paper = fold_batchnorm(load_generator(args.weights, fold=False))
    fast = load_generator(args.weights)
    x = torch.rand(args.batch, 3, args.window, args.window, generator=torch.Generator().manual_seed(0))
    forms = {"paper": paper, "inference": fast}
    variants = []
    for form, model in forms.items():
        for layout in ("NCHW", "channels_last"):
            m = copy.deepcopy(model)
            xin = x
            if layout == "channels_last":
                m, xin = m.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
            variants.append((form, layout, m, xin))

    ms: dict[tuple[str, str], list[list[float]]] = {(f, lay): [[] for _ in STAGES] for f, lay, _, _ in variants}
    with tempfile.TemporaryDirectory(prefix="streamsr-layers-") as tmp:
        ort = {form: _ort_engine(model, tmp) for form, model in forms.items()}
        ort_ms: dict[str, list[float]] = {form: [] for form in ort if ort[form] is not None}
        _time_stages(variants, ort, args.reps, ms, ort_ms)

    lines = [f"# layers: {fast.preset.name}, {args.batch} windows of {args.window}x{args.window}, "
             f"{args.reps} interleaved repetitions, torch {torch.__version__} ({torch.get_num_threads()} threads)",
             "",
             "| form | layout | " + " | ".join(STAGES) + " | total ms |",
             "|---|---|" + "---:|" * (len(STAGES) + 1)]
    for form, model in forms.items():
        macs = stage_macs(model, args.batch, args.window)
        for layout in ("NCHW", "channels_last"):
            med = [statistics.median(v) for v in ms[(form, layout)]]
            total = sum(med)
            cells = [f"{t:.1f} ms, {2 * mac / (t / 1e3) / 1e9:.0f} GFLOP/s ({100 * t / total:.0f}%)"
                     for t, mac in zip(med, macs)]
            lines.append(f"| {form} | {layout} | " + " | ".join(cells) + f" | {total:.1f} |")
    if ort_ms:
        lines += ["", "Whole model in ONNX Runtime (the CPU default engine), ms per call: "
                  + ", ".join(f"{form} form {statistics.median(v):.1f}" for form, v in ort_ms.items())]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "layers.md").write_text(text + "\n")
    return 0


def _ort_engine(model: Generator, cache_dir: str) -> object | None:
    """OnnxRuntimeEngine of `model`, or None without onnxruntime (the table then has torch rows only)."""
    try:
        from streamsr.backends.onnxruntime_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(copy.deepcopy(model), batch=64, cache_dir=cache_dir)
    except EngineUnavailableError:
        return None


def _time_stages(variants: list, ort: dict, reps: int, ms: dict, ort_ms: dict) -> None:
    """Fill ms[(form, layout)][stage] and ort_ms[form] with `reps` interleaved timings each (after warm-up)."""
    x = variants[0][3]
    with torch.inference_mode():
        for _form, _layout, m, xin in variants:  # warm-up: oneDNN picks and caches kernels per shape
            h = xin
            for fn, _ in stages(m):
                h = fn(h)
        for form in ort_ms:
            ort[form].run(x)
        for r in range(reps):
            k = r % len(variants)
            for form, layout, m, xin in variants[k:] + variants[:k]:
                h = xin
                for i, (fn, _) in enumerate(stages(m)):
                    t0 = time.perf_counter()
                    h = fn(h)
                    ms[(form, layout)][i].append((time.perf_counter() - t0) * 1e3)
            for form in ort_ms:
                t0 = time.perf_counter()
                ort[form].run(x)
                ort_ms[form].append((time.perf_counter() - t0) * 1e3)


if __name__ == "__main__":
    sys.exit(main())
