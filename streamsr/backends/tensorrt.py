"""TensorRT engine: torch-tensorrt (dynamo IR) builds a serialized TensorRT engine of the BN-folded generator
for one tile window and a dynamic batch range; the engine bytes go to engines/ with a JSON key beside them
and are deserialized, not rebuilt, when the key matches.

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

import inspect
from pathlib import Path
from typing import Any

import torch

from ..errors import EngineUnavailableError
from ..model import Generator
from . import cache
from .base import DTYPES

KIND = "tensorrt"


def _import_trt() -> tuple[Any, Any]:
    """(tensorrt, torch_tensorrt) modules, or EngineUnavailableError saying which is missing."""
    if not torch.cuda.is_available():
        raise EngineUnavailableError("engine 'tensorrt' needs a CUDA GPU, and CUDA is not available on this machine")
    try:
        import torch_tensorrt
    except ImportError:
        raise EngineUnavailableError(
            "engine 'tensorrt' needs torch-tensorrt: pip install 'streamsr[tensorrt]' (matching your torch version)"
        ) from None
    except Exception as e:  # a torch-tensorrt built for another torch fails at import with OSError/RuntimeError
        raise EngineUnavailableError(f"engine 'tensorrt': torch-tensorrt failed to import ({type(e).__name__}: {e})".splitlines()[0]) from None
    try:
        import tensorrt
    except ImportError:
        raise EngineUnavailableError("engine 'tensorrt' needs the tensorrt Python package (installed with torch-tensorrt)") from None
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


def _call_supported(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call `fn` with only the keyword arguments its signature accepts (torch-tensorrt renamed and deprecated
    several between 2.2 and 2.9: inputs -> arg_inputs, enabled_precisions -> use_explicit_typing)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(*args, **kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(*args, **kwargs)
    return fn(*args, **{k: v for k, v in kwargs.items() if k in params})


def build_engine_bytes(model: Generator, *, window: int, batch: int, precision: str, device: torch.device) -> bytes:
    """Serialized TensorRT engine for (n, 3, window, window) inputs, 1 <= n <= batch, of `precision`."""
    _, torch_trt = _import_trt()
    dtype = DTYPES[precision]
    model = model.eval().to(device=device, dtype=dtype)
    example = torch.rand(batch, 3, window, window, device=device, dtype=dtype)
    dynamic = None
    if batch > 1:
        dynamic = {"x": {0: torch.export.Dim("n", min=1, max=batch)}}
    with torch.inference_mode():
        exported = torch.export.export(model, (example,), dynamic_shapes=dynamic)
    spec = torch_trt.Input(min_shape=(1, 3, window, window), opt_shape=(batch, 3, window, window),
                           max_shape=(batch, 3, window, window), dtype=dtype)
    convert = torch_trt.dynamo.convert_exported_program_to_serialized_trt_engine
    params = inspect.signature(convert).parameters
    inputs_kw = "arg_inputs" if "arg_inputs" in params else "inputs"
    data = _call_supported(convert, exported, **{inputs_kw: [spec]}, enabled_precisions={dtype},
                           use_explicit_typing=True, min_block_size=1)
    return bytes(data)


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
    Tiles of another window run through the eager model on the same device (no rebuild).
    """

    name = KIND

    def __init__(
        self,
        model: Generator,
        *,
        device: torch.device | str = "cuda",
        precision: str = "fp16",
        batch: int = 16,
        window: int = 48,
        cache_dir: str | Path | None = None,
    ) -> None:
        trt, _ = _import_trt()
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise EngineUnavailableError(f"engine 'tensorrt' runs on CUDA devices, not {self.device}")
        if self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        if precision not in ("fp16", "fp32"):
            raise EngineUnavailableError(f"engine 'tensorrt' builds fp16 or fp32 engines, not {precision}")
        self.precision = precision
        self.dtype = DTYPES[precision]
        self.batch = batch
        self.window = window
        self.fixed_window = window
        self.scale = model.preset.scale
        self.fallback = model.eval().to(device=self.device, dtype=self.dtype, memory_format=torch.channels_last)
        with torch.cuda.device(self.device):
            self.artifact, self.reused = build_tensorrt(model, window=window, batch=batch, precision=precision,
                                                        device=self.device, cache_dir=cache_dir)
            self._logger = trt.Logger(trt.Logger.WARNING)
            self._runtime = trt.Runtime(self._logger)
            self.engine = self._runtime.deserialize_cuda_engine(self.artifact.read_bytes())
            if self.engine is None:
                raise EngineUnavailableError(f"TensorRT could not deserialize {self.artifact}; delete it to rebuild")
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self._input = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self._output = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        out_dtype = str(self.engine.get_tensor_dtype(self._output)).rsplit(".", 1)[-1]
        self._out_dtype = _TRT_TO_TORCH.get(out_dtype, self.dtype)

    @torch.inference_mode()
    def run(self, tiles: torch.Tensor) -> torch.Tensor:
        n = tiles.shape[0]
        if n > self.batch:
            raise ValueError(f"tensorrt engine takes at most {self.batch} tiles per call, got {n}")
        x = tiles.to(device=self.device, dtype=self.dtype, non_blocking=True)
        if tuple(x.shape[1:]) != (3, self.window, self.window):
            return self.fallback(x.contiguous(memory_format=torch.channels_last))
        x = x.contiguous()
        out = torch.empty((n, 3, self.scale * self.window, self.scale * self.window), device=self.device,
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
                f"batch 1..{self.batch}, window {self.window}; {state} {self.artifact.name})")
