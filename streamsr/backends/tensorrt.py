"""TensorRT engine: torch-tensorrt (dynamo IR) builds a serialized TensorRT engine of the inference-form
generator for one tile window and a dynamic batch range; the engine bytes go to engines/ with a JSON key
beside them and are deserialized, not rebuilt, when the key matches.

Build: torch.export of the model (batch axis a torch.export.Dim in [1, batch]) ->
torch_tensorrt.dynamo.convert_exported_program_to_serialized_trt_engine with one torch_tensorrt.Input of
min (1, 3, w, w) / opt (batch, 3, w, w) / max (batch, 3, w, w). The model itself is cast to the precision,
so the engine is fp16 (or fp32) under both the explicit typing of torch-tensorrt >= 2.9 and the older
`enabled_precisions` switch.
Run: the raw engine is executed with the TensorRT Python runtime (`set_input_shape`, `set_tensor_address`,
`execute_async_v3` on torch's current stream, TensorRT >= 8.6), reading and writing torch CUDA tensors in
place: no torch-tensorrt wrapper is needed at run time, and the .engine file is also usable by trtexec.

Without CUDA, torch-tensorrt or tensorrt the engine raises EngineUnavailableError (one line).
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import torch

from ..errors import EngineUnavailableError
from ..model import Generator
from . import cache
from .base import DTYPES, check_window, unavailable

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


def build_engine_bytes(model: Generator, *, window: int, batch: int, precision: str, device: torch.device) -> bytes:
    """Serialized TensorRT engine for (n, 3, window, window) inputs, 1 <= n <= batch, of `precision`."""
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
    return bytes(convert(exported, **{inputs_kw: [spec]}, **_precision_kwargs(params, dtype)))


def build_tensorrt(model: Generator, *, window: int, batch: int, precision: str, device: torch.device,
                   cache_dir: str | Path | None = None) -> tuple[Path, bool]:
    """The cached .engine for this key (built and stored if absent or stale). Returns (path, reused)."""
    key = tensorrt_key(model, window=window, batch=batch, precision=precision, device=device)
    directory = Path(cache_dir) if cache_dir is not None else cache.default_engine_dir()
    path = cache.artifact_path(directory, kind=KIND, preset=model.preset.name, key=key, suffix=".engine")
    if cache.is_cached(path, key):
        return path, True
    data = build_engine_bytes(model, window=window, batch=batch, precision=precision, device=device)
    cache.store(path, data, key, info={"input": f"x (n, 3, {window}, {window}) {precision}, 1 <= n <= {batch}",
                                       "output": f"(n, 3, {4 * window}, {4 * window}) {precision}, unclamped"})
    return path, False


_TRT_TO_TORCH = {"HALF": torch.float16, "FLOAT": torch.float32, "BF16": torch.bfloat16}


class TensorRTEngine:
    """Runs a serialized TensorRT engine on torch CUDA tensors. See `backends.base` for the run() contract.

    tiles: (n, 3, window, window) float in [0, 1], 1 <= n <= batch, on any device (moved to the GPU);
    returns (n, 3, 4*window, 4*window) tensor of `self.dtype` on `self.device` (a fresh tensor).
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
            self.artifact, self.reused = build_tensorrt(copy.deepcopy(model).float(), window=window, batch=batch,
                                                        precision=precision, device=self.device, cache_dir=cache_dir)
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
    def run(self, tiles: torch.Tensor) -> torch.Tensor:
        n = tiles.shape[0]
        if n > self.batch:
            raise ValueError(f"tensorrt engine takes at most {self.batch} tiles per call, got {n}")
        check_window(KIND, self.fixed_window, tiles)
        x = tiles.to(device=self.device, dtype=self._in_dtype, non_blocking=True).contiguous()
        w = self.scale * self.fixed_window
        out = torch.empty((n, 3, w, w), device=self.device,
                          dtype=self._out_dtype)
        self.context.set_input_shape(self._input, tuple(x.shape))
        self.context.set_tensor_address(self._input, x.data_ptr())
        self.context.set_tensor_address(self._output, out.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log above)")
        # x and out were allocated on this stream by torch's caching allocator, so their memory is not reused
        # before the enqueued engine has run: no record_stream or synchronize needed
        return out if out.dtype == self.dtype else out.to(self.dtype)

    def describe(self) -> str:
        state = "cached" if self.reused else "built"
        return (f"tensorrt on {self.device} ({torch.cuda.get_device_name(self.device)}, {self.precision}, "
                f"batch 1..{self.batch}, window {self.fixed_window}; {state} {self.artifact.name})")
