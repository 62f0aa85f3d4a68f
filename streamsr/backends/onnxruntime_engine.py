"""ONNX Runtime engine: the inference-form generator (`fold_for_inference`) exported to ONNX once, cached in
engines/, run by ORT's CPU execution provider (MLAS kernels, NCHWc layout transforms at ORT_ENABLE_ALL).

The exported graph has dynamic batch, height and width axes: a conv net needs nothing shape-specific, the
file serves every window and batch, and engines with variable tiles (the per-tile-loop baseline) still work.
Measured on the 2-core EPYC of benchmarks/RESULTS.md: a batch-only dynamic graph, a fully dynamic one and a
session with the batch pinned to 16 ran within 2% of each other (48x48 lite tiles, medians of 8).

onnxruntime is an optional dependency (`pip install streamsr[onnx]`); without it the engine raises
EngineUnavailableError.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..model import Generator
from . import cache
from .base import unavailable, write_out

OPSET = 17
"""ONNX opset of the export: PixelShuffle lowers to DepthToSpace(CRD) and PReLU to PRelu, both long stable;
17 is what ORT >= 1.14 and TensorRT 8.6+ parse natively."""

KIND = "onnxruntime"

MAX_CHUNK = 16
"""Largest batch handed to ORT in one call; bigger batches run as chunks. With the sub-pixel tail ORT's CPU
rate is flat in the batch (43-47 tiles/s at 4, 16, 32 and 64 lite 44x44 tiles, 2-core EPYC), so chunking
costs nothing and bounds the activations of one call (~4 MB per tile); with the paper's 4x-grid tail the
rate fell from 12.2 tiles/s at 16 to 8.5 at 64, which is why the bound exists."""


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise unavailable(KIND, "onnxruntime is not installed (pip install 'streamsr[onnx]')") from None
    return onnxruntime


def onnx_key(model: Generator, *, precision: str = "fp32", opset: int = OPSET) -> dict[str, Any]:
    """The cache key of an ONNX export: everything that changes the file's bytes or how ORT runs it.

    No window or batch: the graph is dynamic in both (see the module doc). The ORT version is in the key
    although the .onnx itself does not depend on it, so upgrading ORT re-validates the export (cheap:
    about a second for the lite preset).
    """
    ort = _import_ort()
    return {
        "engine": KIND,
        "model": cache.model_digest(model),
        "preset": model.preset.name,
        "precision": precision,
        "opset": opset,
        "onnxruntime": ort.__version__,
        "torch": torch.__version__.split("+")[0],
        "axes": "dynamic batch, height, width",
    }


def export_onnx(model: Generator, *, opset: int = OPSET, example_window: int = 48) -> bytes:
    """The inference-form fp32 generator as ONNX bytes: "tiles" (n, 3, h, w) float32 -> "sr" (n, 3, 4h, 4w).

    Uses torch's TorchScript-based exporter (no onnxscript needed); where a future torch has removed it,
    the torch.export-based exporter is used instead. `example_window` only sizes the tracing input.
    """
    model = model.eval().to("cpu", torch.float32)
    example = torch.rand(2, 3, example_window, example_window)
    axes = {"tiles": {0: "n", 2: "h", 3: "w"}, "sr": {0: "n", 2: "H", 3: "W"}}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's DeprecationWarning; export is checked below
        try:
            torch.onnx.export(model, (example,), buf, input_names=["tiles"], output_names=["sr"],
                              dynamic_axes=axes, opset_version=opset, dynamo=False)
        except TypeError:  # torch without the `dynamo` switch: the legacy exporter is the only one
            torch.onnx.export(model, (example,), buf, input_names=["tiles"], output_names=["sr"],
                              dynamic_axes=axes, opset_version=opset)
    return buf.getvalue()


def build_onnx(model: Generator, *, cache_dir: str | Path | None = None, opset: int = OPSET) -> tuple[Path, bool]:
    """The cached .onnx for `model` (exported and stored if absent or stale). Returns (path, reused)."""
    key = onnx_key(model, opset=opset)
    directory = Path(cache_dir) if cache_dir is not None else cache.default_engine_dir()
    path = cache.artifact_path(directory, kind=KIND, preset=model.preset.name, key=key, suffix=".onnx")
    if cache.is_cached(path, key):
        return path, True
    data = export_onnx(model, opset=opset)
    cache.store(path, data, key, info={"input": "tiles (n, 3, h, w) float32 in [0, 1]",
                                       "output": "sr (n, 3, 4h, 4w) float32, unclamped"})
    return path, False


class OnnxRuntimeEngine:
    """Runs the cached ONNX generator with ONNX Runtime on CPU. See `backends.base` for the run() contract.

    tiles: (n, 3, w, w) float32 CPU tensor in [0, 1], any n and w (the graph is dynamic);
    returns (n, 3, 4w, 4w) float32 CPU tensor, unclamped.
    threads: ORT intra-op threads (default: torch.get_num_threads(), so OMP_NUM_THREADS and
    torch.set_num_threads steer both runtimes the same way).
    """

    name = KIND
    fixed_window = None

    def __init__(
        self,
        model: Generator,
        *,
        device: torch.device | str = "cpu",
        precision: str = "fp32",
        batch: int = 16,
        threads: int | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        ort = _import_ort()
        self.device = torch.device(device)
        if self.device.type != "cpu":
            raise unavailable(KIND, f"it runs on the CPU only, not {self.device}; use tensorrt or torch-compile on CUDA")
        if precision != "fp32":
            # ORT's CPU provider has no bf16/fp16 conv kernels: such a graph would run cast-wrapped fp32 or fail
            raise unavailable(KIND, f"it runs fp32 on the CPU, not {precision}; use --precision fp32")
        self.precision = precision
        self.dtype = torch.float32
        self.batch = batch
        self.scale = model.preset.scale
        self.preset = model.preset.name
        self.artifact, self.reused = build_onnx(model, cache_dir=cache_dir)
        self.threads = threads or torch.get_num_threads()

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # Spinning workers burn the cores that decode and encode threads of the pipeline need; with the
        # machine shared, non-spinning ran 6.0 vs 4.8 tiles/s (48x48 lite tiles, batch 16, medians of 8).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.artifact), options, providers=["CPUExecutionProvider"])

    def run(self, tiles: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        x = tiles.detach().to("cpu", torch.float32).contiguous()
        if x.shape[0] <= MAX_CHUNK:
            (sr,) = self.session.run(["sr"], {"tiles": x.numpy()})
            return write_out(torch.from_numpy(sr), out)
        outs = [self.session.run(["sr"], {"tiles": c.numpy()})[0] for c in x.split(MAX_CHUNK)]
        return write_out(torch.from_numpy(np.concatenate(outs)), out)

    def describe(self) -> str:
        state = "cached" if self.reused else "exported"
        return (f"onnxruntime {self.session.get_providers()[0]} on cpu (fp32, {self.threads} threads, "
                f"batch {self.batch}; {state} {self.artifact.name})")
