"""Engine registry and `select_engine`: "auto" resolves to the fastest engine this machine has.

Auto-selection order (first that builds wins; each skipped engine is logged at INFO with its reason, a
failed build at WARNING):
    CUDA: tensorrt > torch-compile (CUDA graphs) > torch (eager)
    CPU:  CPU_AUTO_ORDER, set from benchmarks/engines.py (figures and the reasoning in benchmarks/RESULTS.md)
An explicit engine name is built or fails with one EngineUnavailableError line; it never falls back.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import EngineUnavailableError
from ..model import Generator
from .base import DTYPES, PRECISIONS, Engine, unavailable
from .torch_engine import TorchEngine

if TYPE_CHECKING:
    from ..spec import EnhancerSpec

__all__ = [
    "Engine",
    "TorchEngine",
    "build_engine",
    "select_engine",
    "resolve_device",
    "available_engines",
    "engine_statuses",
    "auto_choice",
    "takes_any_window",
    "EngineStatus",
    "AutoChoice",
    "ENGINES",
    "DTYPES",
    "PRECISIONS",
]

log = logging.getLogger(__name__)

ENGINES = ("tensorrt", "torch-compile", "onnxruntime", "torch")
"""Registry names `--engine` accepts besides "auto"."""

CUDA_AUTO_ORDER = ("tensorrt", "torch-compile", "torch")
FIXED_WINDOW_ENGINES = ("tensorrt", "torch-compile")
"""Engines compiled for one window shape (TensorRT engines, CUDA graphs); the others take any window."""

CPU_AUTO_ORDER = ("onnxruntime", "torch")
"""The CPU default, chosen by benchmarks/engines.py (srgan-x4-lite in `fold_for_inference` form, 44x44
windows, interleaved medians): ONNX Runtime fp32 was the fastest engine per call and per CPU-second at every
batch measured, with fp32-level error; torch.compile was no faster after paying a compile in every process,
bf16 is emulated on CPUs without AVX512-BF16/AMX. The figures and the reasoning are in benchmarks/RESULTS.md
("Engines") and benchmarks/results/engines-cpu.md; they are not copied here so they cannot go stale.
Torch eager is the fallback when onnxruntime is not installed and for bf16/fp16."""

_PRECISIONS_OF = {
    "tensorrt": ("fp16", "fp32"),
    "torch-compile": PRECISIONS,
    "onnxruntime": ("fp32",),
    "torch": PRECISIONS,
}


def resolve_device(spec: str) -> torch.device:
    """ "auto" -> cuda when available else cpu; an explicit cuda device without CUDA is an error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise EngineUnavailableError(f"unknown device {spec!r}; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineUnavailableError(f"device {spec!r} was asked for but CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise EngineUnavailableError(f"device {spec!r} is not supported; use cpu, cuda, cuda:N or auto")
    return device


def default_precision(device: torch.device) -> str:
    """fp16 on CUDA; fp32 on CPU (on CPUs without AVX512-BF16/AMX bf16 is emulated: measured 5x slower than
    fp32 channels_last, 25x in NCHW, and only 54 dB from fp32)."""
    return "fp16" if device.type == "cuda" else "fp32"


def _check(name: str, device: torch.device, precision: str | None) -> None:
    """Raise `base.unavailable(name, reason)` when engine `name` cannot run on `device` (at `precision`)."""
    if precision is not None and precision not in _PRECISIONS_OF[name]:
        raise unavailable(name, f"it does not run {precision} (it runs {', '.join(_PRECISIONS_OF[name])})")
    if name == "tensorrt":
        from .tensorrt import _import_trt

        _import_trt()  # first: "not installed" / "no CUDA device" say more than "wrong device"
        if device.type != "cuda":
            raise unavailable(name, "it runs on CUDA devices only; use --device cuda")
    elif name == "torch-compile":
        from .compiled import _check_compile_available

        _check_compile_available(device)
    elif name == "onnxruntime":
        from .onnxruntime_engine import _import_ort

        if device.type != "cpu":
            raise unavailable(name, "it runs on the CPU only")
        _import_ort()


def unavailable_reason(name: str, device: torch.device, precision: str | None = None) -> str | None:
    """Why engine `name` cannot run on `device` (at `precision`) as one line, or None when it can. Cheap:
    imports and capability checks only, nothing is built."""
    if name not in ENGINES:
        return f"unknown engine {name!r}; available: auto, {', '.join(ENGINES)}"
    try:
        _check(name, device, precision)
    except EngineUnavailableError as e:
        return str(e)
    return None


def available_engines(device: torch.device | str | None = None) -> list[str]:
    """Engine names usable on `device` (default: the "auto" device), in auto-selection order first."""
    device = resolve_device("auto") if device is None else torch.device(device)
    order = CUDA_AUTO_ORDER if device.type == "cuda" else CPU_AUTO_ORDER
    names = list(order) + [n for n in ENGINES if n not in order]
    return [n for n in names if unavailable_reason(n, device) is None]


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineStatus:
    """Whether one registered engine can run on this machine. device: where it was checked (CUDA engines on
    cuda, onnxruntime on cpu, the others on the "auto" device); reason: the short phrase why not, or None."""

    name: str
    device: str
    reason: str | None

    @property
    def available(self) -> bool:
        return self.reason is None


@dataclass(frozen=True, slots=True, kw_only=True)
class AutoChoice:
    """What `select_engine(engine="auto")` picks on `device`, and why (one line)."""

    engine: str
    device: str
    why: str


def engine_statuses() -> list[EngineStatus]:
    """Every registered engine (ENGINES order) with its availability on this machine; builds nothing."""
    auto = resolve_device("auto")
    out = []
    for name in ENGINES:
        device = {"tensorrt": torch.device("cuda"), "onnxruntime": torch.device("cpu")}.get(name, auto)
        try:
            _check(name, device, None)
            reason = None
        except EngineUnavailableError as e:
            reason = getattr(e, "reason", str(e))
        out.append(EngineStatus(name=name, device=device.type, reason=reason))
    return out


def auto_choice(device: torch.device | str | None = None) -> AutoChoice:
    """The engine "auto" resolves to on `device` (default: the "auto" device): the first available one of
    the device's auto order. (A build that fails at run time makes select_engine go on to the next.)"""
    device = resolve_device("auto") if device is None else torch.device(device)
    order = CUDA_AUTO_ORDER if device.type == "cuda" else CPU_AUTO_ORDER
    precision = default_precision(device)
    skipped = []
    for name in order:
        reason = unavailable_reason(name, device, precision)
        if reason is None:
            basis = ("fastest measured on CPU, benchmarks/RESULTS.md \"Engines\"" if device.type == "cpu"
                     else "TensorRT > compiled torch with CUDA graphs > eager, benchmarks/RESULTS.md")
            why = f"first available of {' > '.join(order)} on {device.type} ({basis})"
            if skipped:
                why += "; skipped " + "; ".join(skipped)
            return AutoChoice(engine=name, device=device.type, why=why)
        skipped.append(reason)
    raise AssertionError("torch eager is always available")  # the last of every auto order


def build_engine(
    name: str,
    model: Generator,
    *,
    device: torch.device,
    precision: str,
    batch: int = 16,
    window: int,
    cache_dir: str | Path | None = None,
) -> Engine:
    """Build engine `name` for `model` in inference form (`fold_for_inference`); the engine may move or cast
    it, so pass a copy to keep yours. window: the LR tile edge incl. halo (`Tiler.window`) fixed-window
    engines are built for; the others take any window and ignore it.

    Raises EngineUnavailableError (one line) when the engine cannot run here or at that precision.
    Compiled engines build or load their cached artifact here (seconds to minutes on first use).
    """
    reason = unavailable_reason(name, device, precision)
    if reason is not None:
        raise EngineUnavailableError(reason)
    if name == "tensorrt":
        from .tensorrt import TensorRTEngine

        return TensorRTEngine(model, device=device, precision=precision, batch=batch, window=window,
                              cache_dir=cache_dir)
    if name == "torch-compile":
        from .compiled import CompiledTorchEngine

        return CompiledTorchEngine(model, device=device, precision=precision, batch=batch, window=window)
    if name == "onnxruntime":
        from .onnxruntime_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(model, device=device, precision=precision, batch=batch, cache_dir=cache_dir)
    return TorchEngine(model, device=device, precision=precision, batch=batch)


def takes_any_window(engine: str, device: str | torch.device) -> bool:
    """Whether `engine` ("auto" or a registry name) on `device` will run any window shape, decided before
    it is built (the tile size, and so the window fixed-window engines are built for, depends on it).
    "auto" takes any window on the CPU (CPU_AUTO_ORDER's engines do) and not on CUDA."""
    if engine == "auto":
        return resolve_device(str(device)).type != "cuda"
    return engine not in FIXED_WINDOW_ENGINES


def select_engine(model: Generator, spec: EnhancerSpec) -> Engine:
    """Build the engine `spec` asks for around `model` (a loaded generator in inference form), for windows of
    `spec.window` and batches of `spec.batch` (both filled: `enhancer.complete`). Raises
    EngineUnavailableError with one clear line.

    engine="auto" tries the auto order of the device (see the module doc) and returns the first engine that
    builds; a build that fails for another reason than being unavailable (a TensorRT converter error, an
    Inductor failure) is logged as a warning and the next engine is tried. Torch eager always builds.
    """
    if spec.batch is None:
        raise ValueError("select_engine needs a spec with its batch filled (enhancer.complete)")
    device = resolve_device(spec.device)
    precision = default_precision(device) if spec.precision == "auto" else spec.precision
    kwargs = dict(device=device, precision=precision, batch=spec.batch, window=spec.window, cache_dir=spec.cache_dir)
    if spec.engine != "auto":
        return build_engine(spec.engine, model, **kwargs)
    order = CUDA_AUTO_ORDER if device.type == "cuda" else CPU_AUTO_ORDER
    for name in order:
        if name == "torch":
            break
        reason = unavailable_reason(name, device, precision)
        if reason is not None:
            log.info("auto engine: skipping %s (%s)", name, reason)
            continue
        try:
            return build_engine(name, copy.deepcopy(model), **kwargs)
        except EngineUnavailableError as e:
            log.info("auto engine: skipping %s (%s)", name, e)
        except Exception as e:  # a build failure must not stop the video: fall through to the next engine
            log.warning("auto engine: %s failed to build (%s: %s); trying the next engine",
                        name, type(e).__name__, str(e).splitlines()[0] if str(e) else "")
    return build_engine("torch", model, **kwargs)
