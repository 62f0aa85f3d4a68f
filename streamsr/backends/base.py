"""The Engine protocol: every inference backend (torch eager/compiled, TensorRT, ONNX Runtime...) looks the same
to the Enhancer.

Contract of `Engine.run(tiles, out=None)`:
    tiles: (n, 3, w, w) float tensor in [0, 1] on `engine.device`, 1 <= n <= engine.batch, w = the window
           the engine was built for (any w for engines with `fixed_window = None`).
    out: None, or a contiguous (n, 3, 4w, 4w) tensor of `engine.dtype` on `engine.device` to write into
         (the Enhancer's device-resident path passes slices of one preallocated buffer, so nothing is
         allocated per call and no torch.cat is needed); the engine then returns `out` itself.
    returns: (n, 3, 4w, 4w) float tensor on `engine.device` (dtype `engine.dtype`), unclamped.
On CUDA the work is enqueued on the current stream and `run` returns without waiting for it.
The caller (Enhancer) splits work into chunks of at most `engine.batch` tiles; engines that need a fixed
batch pad internally and slice the result. Engines written before `out` existed (`run(tiles)` only) still
work: the Enhancer copies their result into its buffer (`accepts_out`).

The window has one source of truth, the Tiler (`Tiler.window` = tile + 2 * halo): `Enhancer.build` builds
the engine for it, and an Enhancer refuses (at construction) an engine whose `fixed_window` is another one.
A fixed-window engine given tiles of another window raises ValueError; none silently runs them eagerly.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from ..errors import EngineUnavailableError

PRECISIONS = ("fp32", "fp16", "bf16")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@runtime_checkable
class Engine(Protocol):
    name: str
    """Registry name, e.g. "torch", "tensorrt", "onnxruntime"."""
    device: torch.device
    dtype: torch.dtype
    batch: int
    scale: int
    precision: str
    """"fp32", "fp16" or "bf16": what the engine computes in (`dtype` is its torch dtype)."""
    fixed_window: int | None
    """The one LR window edge (tile + 2 * halo) the engine was built for, or None when it takes any."""

    def run(self, tiles: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor: ...

    def describe(self) -> str:
        """One line for logs and `streamsr info`: name, device, precision, batch."""
        ...


def unavailable(name: str, reason: str) -> EngineUnavailableError:
    """The one error shape for an engine that cannot run here: "engine 'NAME' is not available - REASON".

    `reason` (a short phrase such as "no CUDA device") is kept on the error as `.reason`, so `streamsr info`
    can list it without parsing the message."""
    error = EngineUnavailableError(f"engine {name!r} is not available - {reason}")
    error.reason = reason  # type: ignore[attr-defined]
    return error


def accepts_out(engine: object) -> bool:
    """True when `engine.run` takes the `out=` argument of the contract above (test doubles and third-party
    engines may not)."""
    import inspect

    try:
        return "out" in inspect.signature(engine.run).parameters  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return False


def write_out(result: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:
    """`result` itself, or copied into the caller's `out` (engines whose runtime allocates its own output)."""
    if out is None:
        return result
    check_out(result.shape, out)
    return out.copy_(result)


def check_out(shape: "torch.Size | tuple[int, ...]", out: torch.Tensor) -> None:
    """ValueError (one line) when `out` cannot hold an engine result of `shape`."""
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"engine out= tensor has shape {tuple(out.shape)}, the result is {tuple(shape)}")


def check_window(engine_name: str, fixed_window: int | None, tiles: "torch.Tensor") -> None:
    """ValueError (one line) when a fixed-window engine is handed tiles of another shape: such engines run
    only the shape they were built for rather than falling back to slow eager inference unannounced."""
    if fixed_window is not None and tuple(tiles.shape[1:]) != (3, fixed_window, fixed_window):
        raise ValueError(
            f"engine {engine_name!r} was built for (n, 3, {fixed_window}, {fixed_window}) tiles, got "
            f"{tuple(tiles.shape)}; build it for the Tiler's window (Enhancer.build does)"
        )
