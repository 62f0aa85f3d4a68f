"""TensorRT engine: torch-tensorrt (dynamo IR) builds a serialized TensorRT engine of the inference-form
generator for one tile window and a dynamic batch range; the engine bytes go to engines/ with a JSON key
beside them and are deserialized, not rebuilt, when the key matches.

Build: torch.export of the model (batch axis a torch.export.Dim in [1, batch]) ->
torch_tensorrt.dynamo.convert_exported_program_to_serialized_trt_engine with one torch_tensorrt.Input of
min (1, 3, w, w) / opt (batch, 3, w, w) / max (batch, 3, w, w) (w and batch: the Tiler's window and the
Enhancer's batch), with a persistent timing cache beside the engines (`timing_cache_path`: a rebuild for
another batch, window or weights re-times few kernels); the build time is stored in the engine's metadata
and shown by `describe()`. The model itself is cast to the precision, so the engine is fp16 (or fp32)
under both the explicit typing of torch-tensorrt >= 2.9 and the older `enabled_precisions` switch.
Run: the raw engine is executed with the TensorRT Python runtime (`set_input_shape`, `set_tensor_address`,
`execute_async_v3` on torch's current stream, TensorRT >= 8.6), reading and writing torch CUDA tensors in
place: no torch-tensorrt wrapper is needed at run time, and the .engine file is also usable by trtexec.

Without CUDA, torch-tensorrt or tensorrt the engine raises EngineUnavailableError (one line).
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import time
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import torch

from ..errors import EngineUnavailableError
from ..model import Generator
from . import cache
from .base import DTYPES, check_out, check_window, unavailable, write_out

KIND = "tensorrt"


def _import_trt() -> tuple[Any, Any]:
    """(tensorrt, torch_tensorrt) modules, or EngineUnavailableError saying what is missing (installed
    first: that is what a user can fix with pip, and the check imports nothing)."""
    if importlib.util.find_spec("torch_tensorrt") is None:
        raise unavailable(KIND, "torch-tensorrt is not installed (pip install 'streamsr[tensorrt]', matching your torch version)")
    if not torch.cuda.is_available():
        raise unavailable(KIND, "no CUDA device")
    try:
        import torch_tensorrt
    except Exception as e:  # a torch-tensorrt built for another torch fails at import with OSError/RuntimeError
        raise unavailable(KIND, f"torch-tensorrt failed to import ({type(e).__name__}: {e})".splitlines()[0]) from None
    try:
        import tensorrt
    except ImportError:
        raise unavailable(KIND, "the tensorrt Python package is missing (it comes with torch-tensorrt)") from None
    return tensorrt, torch_tensorrt


def tensorrt_available() -> bool:
    """True when CUDA, torch-tensorrt and tensorrt are all importable/usable (does not build anything)."""
    try:
        _import_trt()
    except EngineUnavailableError:
        return False
    return True


def tensorrt_key(model: Generator, *, window: int, batch: int, precision: str, device: torch.device) -> dict[str, Any]:
    """Cache key of a TensorRT engine: model, preset, window, batch range, precision, GPU and versions.

    TensorRT engines are specific to the GPU model (SM version) and TensorRT version; torch-tensorrt's
    version changes the converters that produced the network.
    """
    trt, torch_trt = _import_trt()
    props = torch.cuda.get_device_properties(device)
    return {
        "engine": KIND,
        "model": cache.model_digest(model),
        "preset": model.preset.name,
        "window": window,
        "batch": {"min": 1, "opt": batch, "max": batch},
        "precision": precision,
        "gpu": props.name,
        "sm": f"{props.major}.{props.minor}",
        "tensorrt": trt.__version__,
        "torch_tensorrt": torch_trt.__version__,
        "torch": torch.__version__.split("+")[0],
    }


def _precision_kwargs(params: Mapping[str, inspect.Parameter], dtype: torch.dtype) -> dict[str, Any]:
    """Keyword arguments that make the engine `dtype` across torch-tensorrt versions.

    The model and input are already cast to `dtype`. torch-tensorrt >= 2.9 defaults to explicit typing
    (respect those dtypes) and deprecates `enabled_precisions`; 2.5-2.8 have `use_explicit_typing=False` by
    default and assert that explicit typing comes with fp32-only `enabled_precisions`; older ones only know
    `enabled_precisions`. So: pass `enabled_precisions` unless explicit typing is already the default.
    An fp32 engine also disables TF32, so it stays the accuracy reference it is meant to be.
    """
    kwargs: dict[str, Any] = {}
    explicit = params.get("use_explicit_typing")
    if explicit is None or explicit.default is not True:
        kwargs["enabled_precisions"] = {dtype}
    if dtype == torch.float32 and "disable_tf32" in params:
        kwargs["disable_tf32"] = True
    return kwargs


def timing_cache_path(directory: Path, device: torch.device) -> Path:
    """The persistent TensorRT timing cache beside the engine cache: kernel timings of earlier builds, so a
    rebuild (another batch, window or weights) skips most tactic timing. Keyed by GPU architecture and
    TensorRT version, since TensorRT refuses a timing cache of another device or version."""
    trt, _ = _import_trt()
    props = torch.cuda.get_device_properties(device)
    return directory / f"tensorrt-timing-sm{props.major}{props.minor}-trt{trt.__version__}.cache"


def build_engine_bytes(model: Generator, *, window: int, batch: int, precision: str, device: torch.device,
                       timing_cache: Path | None = None) -> bytes:
    """Serialized TensorRT engine for (n, 3, window, window) inputs, 1 <= n <= batch, of `precision`.
    timing_cache: the file torch-tensorrt reads and updates (`timing_cache_path`), when its API has one."""
    _, torch_trt = _import_trt()
    dtype = DTYPES[precision]
    model = model.eval().to(device=device, dtype=dtype)
    for p in model.parameters():
        p.requires_grad_(False)
    example = torch.rand(batch, 3, window, window, device=device, dtype=dtype)
    dynamic = {"x": {0: torch.export.Dim("n", min=1, max=batch)}} if batch > 1 else None
    exported = torch.export.export(model, (example,), dynamic_shapes=dynamic)
    spec = torch_trt.Input(min_shape=(1, 3, window, window), opt_shape=(batch, 3, window, window),
                           max_shape=(batch, 3, window, window), dtype=dtype)
    convert = torch_trt.dynamo.convert_exported_program_to_serialized_trt_engine
    params = inspect.signature(convert).parameters
    inputs_kw = "arg_inputs" if "arg_inputs" in params else "inputs"  # renamed in torch-tensorrt 2.5
    extra: dict[str, Any] = {}
    if timing_cache is not None and "timing_cache_path" in params:
        extra["timing_cache_path"] = str(timing_cache)
    return bytes(convert(exported, **{inputs_kw: [spec]}, **_precision_kwargs(params, dtype), **extra))


def build_tensorrt(model: Generator, *, window: int, batch: int, precision: str, device: torch.device,
                   cache_dir: str | Path | None = None) -> tuple[Path, bool, float | None]:
    """The cached .engine for this key (built and stored if absent or stale). Returns (path, reused,
    build seconds: measured now, or read from the cached engine's metadata; None when it does not say).
    The model is moved to `device` only for a build, and dropped after it."""
    key = tensorrt_key(model, window=window, batch=batch, precision=precision, device=device)
    directory = Path(cache_dir) if cache_dir is not None else cache.default_engine_dir()
    path = cache.artifact_path(directory, kind=KIND, preset=model.preset.name, key=key, suffix=".engine")
    if cache.is_cached(path, key):
        seconds = (cache.read_meta(path) or {}).get("build_s")
        return path, True, float(seconds) if isinstance(seconds, (int, float)) else None
    directory.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = build_engine_bytes(model, window=window, batch=batch, precision=precision, device=device,
                              timing_cache=timing_cache_path(directory, device))
    seconds = time.perf_counter() - t0
    cache.store(path, data, key, info={"input": f"x (n, 3, {window}, {window}) {precision}, 1 <= n <= {batch}",
                                       "output": f"(n, 3, {4 * window}, {4 * window}) {precision}, unclamped",
                                       "build_s": round(seconds, 2)})
    return path, False, seconds


ALIGNMENT = 256
"""Byte alignment TensorRT asks of I/O tensor addresses (IExecutionContext::setTensorAddress)."""


def _bindable(t: torch.Tensor) -> bool:
    """True when TensorRT can read/write `t` in place: dense row-major and ALIGNMENT-aligned."""
    return t.is_contiguous() and t.data_ptr() % ALIGNMENT == 0


_TRT_TO_TORCH = {"HALF": torch.float16, "FLOAT": torch.float32, "BF16": torch.bfloat16}


class TensorRTEngine:
    """Runs a serialized TensorRT engine on torch CUDA tensors. See `backends.base` for the run() contract.

    tiles: (n, 3, window, window) float in [0, 1], 1 <= n <= batch, on any device (moved to the GPU);
    returns (n, 3, 4*window, 4*window) tensor of `self.dtype` on `self.device` (a fresh tensor, or `out`,
    which TensorRT writes directly when it is contiguous, 256-byte aligned and of the engine's dtype).
    `build_s`: how long the engine build took (now, or when the cached engine was built).
    Tiles of another window raise ValueError (`fixed_window` is the only shape the engine was built for).
    """

    name = KIND

    def __init__(
        self,
        model: Generator,
        *,
        device: torch.device | str = "cuda",
        precision: str = "fp16",
        batch: int = 16,
        window: int,
        cache_dir: str | Path | None = None,
    ) -> None:
        trt, _ = _import_trt()
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise unavailable(KIND, f"it runs on CUDA devices, not {self.device}")
        if self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        if precision not in ("fp16", "fp32"):
            raise unavailable(KIND, f"it builds fp16 or fp32 engines, not {precision}")
        self.precision = precision
        self.dtype = DTYPES[precision]
        self.batch = batch
        self.fixed_window = window
        self.scale = model.preset.scale
        with torch.cuda.device(self.device):
            # keyed and built from an fp32 copy, so the key's model digest does not depend on the precision
            self.artifact, self.reused, self.build_s = build_tensorrt(
                copy.deepcopy(model).float(), window=window, batch=batch, precision=precision, device=self.device,
                cache_dir=cache_dir)
            self._logger = trt.Logger(trt.Logger.WARNING)
            self._runtime = trt.Runtime(self._logger)
            self.engine = self._runtime.deserialize_cuda_engine(self.artifact.read_bytes())
            if self.engine is None:
                raise EngineUnavailableError(f"TensorRT could not deserialize {self.artifact}; delete it to rebuild")
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self._input = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self._output = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        self._in_dtype = self._torch_dtype(self._input)
        self._out_dtype = self._torch_dtype(self._output)

    def _torch_dtype(self, tensor_name: str) -> torch.dtype:
        """The torch dtype of an engine I/O tensor (str of trt.DataType is e.g. "DataType.HALF")."""
        return _TRT_TO_TORCH.get(str(self.engine.get_tensor_dtype(tensor_name)).rsplit(".", 1)[-1], self.dtype)

    @torch.inference_mode()
    def run(self, tiles: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        n = tiles.shape[0]
        if n > self.batch:
            raise ValueError(f"tensorrt engine takes at most {self.batch} tiles per call, got {n}")
        check_window(KIND, self.fixed_window, tiles)
        w = self.scale * self.fixed_window
        if out is not None:
            check_out((n, 3, w, w), out)
        with torch.cuda.device(self.device):  # the context and its stream belong to self.device
            x = tiles.to(device=self.device, dtype=self._in_dtype, non_blocking=True)
            if not _bindable(x):
                x = x.clone(memory_format=torch.contiguous_format)  # fresh: the allocator aligns it
            # TensorRT writes straight into the caller's buffer when it can take it as the output binding
            direct = out is not None and out.dtype == self._out_dtype and _bindable(out)
            y = out if direct else torch.empty((n, 3, w, w), device=self.device, dtype=self._out_dtype)
            self.context.set_input_shape(self._input, tuple(x.shape))
            self.context.set_tensor_address(self._input, x.data_ptr())
            self.context.set_tensor_address(self._output, y.data_ptr())
            stream = torch.cuda.current_stream(self.device)
            if not self.context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log above)")
            # x and y, when allocated here, come from torch's caching allocator on this stream, so their memory
            # is not reused before the enqueued engine has run: no record_stream or synchronize needed
            if direct:
                return y
            return write_out(y if y.dtype == self.dtype else y.to(self.dtype), out)

    def describe(self) -> str:
        took = f", built in {self.build_s:.1f} s" if self.build_s is not None else ""
        state = f"cached {self.artifact.name}{took}" if self.reused else f"built {self.artifact.name}{took}"
        return (f"tensorrt on {self.device} ({torch.cuda.get_device_name(self.device)}, {self.precision}, "
                f"batch 1..{self.batch}, window {self.fixed_window}; {state})")
