"""Compiled torch engine ("torch-compile"): torch.compile (Inductor) of the inference-form generator for one
fixed batch shape, and on CUDA a CUDA graph captured around it.

Why a fixed shape: CUDA graphs replay one recorded shape, and Inductor specialises its kernels to shapes;
every call therefore runs a full (batch, 3, w, w) batch and a last partial batch is padded (the pad rows
compute garbage that is sliced away). The Enhancer's chunks are full except the last one of each frame, so
the waste is below one batch per frame. Tiles of another window raise ValueError: the engine runs only the
shape it was built for (`fixed_window`), never a silent eager fallback or recompile.

CUDA path: fp16 (default) and channels_last, static input/output buffers, the graph captured after warm-up
on a side stream (as torch.cuda.graphs documents), replays on the current stream. CPU inputs are staged
through a pinned host buffer with a non-blocking copy; the buffer is not rewritten until the copy that
read it has finished (an event guards it). Outputs are copied out of the static buffer, since the next
replay overwrites it: into the caller's `out=` slice (the Enhancer's preallocated frame buffer, no
allocation) or, without `out`, a clone. `run` enters the engine's device, so `cuda:1` works whatever the
current device is.

CPU path: channels_last fp32 with Inductor's freezing (constant-folds and pre-packs the conv weights for
oneDNN). Compiling takes tens of seconds on 2 cores (measured in benchmarks/RESULTS.md), once per process.
"""

from __future__ import annotations

import time

import torch

from ..model import Generator
from .base import DTYPES, check_window, unavailable, write_out

KIND = "torch-compile"


def _check_compile_available(device: torch.device) -> None:
    if not hasattr(torch, "compile"):
        raise unavailable(KIND, "it needs torch >= 2.0")
    if device.type == "cpu":
        import shutil

        if not (shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")):
            raise unavailable(KIND, "no C++ compiler (g++ or clang++) on PATH, which it needs on the CPU")
    elif device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            raise unavailable(KIND, "triton is not installed (pip install triton), which it needs on CUDA") from None


class CompiledTorchEngine:
    """torch.compile + (CUDA) CUDA-graph engine. See `backends.base` for the run() contract.

    model: Generator in inference form (`fold_for_inference`; any device/dtype; a copy is moved).
    device: cpu or cuda.
    precision: fp32 | fp16 | bf16 (fp16 is the CUDA default; bf16 is emulated on CPUs without AVX512-BF16).
    batch: the fixed batch compiled and captured. window: the LR tile edge compiled for.
    cuda_graph: capture a CUDA graph (CUDA only; ignored on CPU).
    tiles: (n, 3, window, window) float in [0, 1], 1 <= n <= batch, on any device;
    returns (n, 3, 4*window, 4*window) tensor of dtype `self.dtype` on `self.device` (a fresh tensor, or
    `out` when given).
    Construction compiles and (on CUDA) captures: it takes seconds to minutes.
    """

    name = KIND

    def __init__(
        self,
        model: Generator,
        *,
        device: torch.device | str,
        precision: str = "fp32",
        batch: int = 16,
        window: int,
        cuda_graph: bool = True,
    ) -> None:
        self.device = torch.device(device)
        _check_compile_available(self.device)
        self.precision = precision
        self.dtype = DTYPES[precision]
        self.batch = batch
        self.fixed_window = window
        self.scale = model.preset.scale
        self.model = model.eval().to(device=self.device, dtype=self.dtype, memory_format=torch.channels_last)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.cuda_graph = cuda_graph and self.device.type == "cuda"

        shape = (batch, 3, window, window)
        self._static_in = torch.zeros(shape, device=self.device, dtype=self.dtype).contiguous(
            memory_format=torch.channels_last)
        self._host: torch.Tensor | None = None
        self._host_free: torch.cuda.Event | None = None
        if self.device.type == "cuda":
            # channels_last like the device buffer, so the H2D copy of [:n] is one flat memcpy
            self._host = torch.empty(shape, dtype=self.dtype, pin_memory=True, memory_format=torch.channels_last)
            self._host_free = torch.cuda.Event()
            with torch.cuda.device(self.device):
                self._host_free.record()
            self.compiled = torch.compile(self.model, dynamic=False)
        else:
            # freezing: weights become constants Inductor can pre-pack for oneDNN (CPU inference only)
            self.compiled = torch.compile(self.model, dynamic=False, options={"freezing": True})
        self.graph: torch.cuda.CUDAGraph | None = None
        t0 = time.perf_counter()
        if self.device.type == "cuda":
            with torch.cuda.device(self.device):
                self._static_out = self._warm_up()
        else:
            self._static_out = self._warm_up()
        self.build_s = time.perf_counter() - t0
        """Seconds the compile (and CUDA graph capture) took in this process."""

    @torch.inference_mode()
    def _warm_up(self) -> torch.Tensor:
        """Compile (first calls), then capture the CUDA graph. Returns the static output buffer."""
        x = self._static_in
        if self.device.type != "cuda":
            return self.compiled(x)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):  # compile, autotune, and let the caching allocator settle before capture
                out = self.compiled(x)
        torch.cuda.current_stream(self.device).wait_stream(side)
        if not self.cuda_graph:
            return out
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            out = self.compiled(x)
        self.graph.replay()
        return out

    def _load(self, tiles: torch.Tensor, n: int) -> None:
        """Copy n tiles into the static input buffer (rows n.. keep stale data: their outputs are dropped)."""
        if tiles.device.type != "cpu" or self._host is None:
            self._static_in[:n].copy_(tiles)
            return
        assert self._host_free is not None
        self._host_free.synchronize()  # the previous non-blocking copy has read the pinned buffer
        self._host[:n].copy_(tiles)
        self._static_in[:n].copy_(self._host[:n], non_blocking=True)
        self._host_free.record()

    @torch.inference_mode()
    def run(self, tiles: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        n = tiles.shape[0]
        if n > self.batch:
            raise ValueError(f"torch-compile engine takes at most {self.batch} tiles per call, got {n}")
        check_window(KIND, self.fixed_window, tiles)
        if self.device.type != "cuda":
            self._load(tiles, n)
            return write_out(self.compiled(self._static_in)[:n], out)  # Inductor allocates its output
        with torch.cuda.device(self.device):  # the graph and buffers live on self.device, maybe not cuda:0
            self._load(tiles, n)
            if self.graph is None:
                return write_out(self.compiled(self._static_in)[:n], out)
            self.graph.replay()
            # the next replay overwrites the static output: hand out a copy (into `out` when given)
            return self._static_out[:n].clone() if out is None else write_out(self._static_out[:n], out)

    @property
    def artifact(self) -> str | None:
        """Where Inductor keeps its on-disk caches (FX graphs, generated kernels) that speed up the next
        compile in another process; torch.compile has no standalone artifact to load instead."""
        try:
            from torch._inductor.runtime.cache_dir_utils import cache_dir
        except ImportError:
            return None
        return cache_dir()

    def describe(self) -> str:
        graph = " + CUDA graph" if self.graph is not None else ""
        return (f"torch.compile{graph} on {self.device} ({self.precision}, channels_last, batch {self.batch}, "
                f"window {self.fixed_window}; compiled in {self.build_s:.1f} s)")
