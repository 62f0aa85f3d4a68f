"""The one-call library entry points: `upscale` an image or tensor, `enhance_video` a file.

Both build an Enhancer (`Enhancer.build`: engine selected, weights loaded, engine built for the Tiler's
window) once per distinct settings and keep it for the life of the process, so only the first call with
given settings pays for loading weights and building the engine (an ONNX export, a TensorRT build...).

Thread safety: calls may come from any thread. Calls with the same settings share one Enhancer (one
engine, one set of device buffers) and are serialised by its lock; calls with different settings run in
parallel. For parallel inference with one setting, build an Enhancer per thread with `Enhancer.build`.
`clear_cache()` drops the kept enhancers (and with them the engines' memory).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .enhancer import Enhancer
from .errors import InputError
from .frame import Frame
from .jobs import CompareOptions, JobOptions, LocalExecutor, plan_jobs, run_jobs
from .sinks import EncoderOptions
from .spec import EnhancerSpec


_enhancers: dict[EnhancerSpec, tuple[Enhancer, threading.Lock]] = {}
_enhancers_lock = threading.Lock()


def _enhancer(spec: EnhancerSpec) -> tuple[Enhancer, threading.Lock]:
    """The kept Enhancer for `spec` (built on first use) and the lock that serialises its use."""
    with _enhancers_lock:
        kept = _enhancers.get(spec)
        if kept is None:
            kept = _enhancers[spec] = (Enhancer.build(spec), threading.Lock())
        return kept


def _spec(spec: EnhancerSpec | None, weights: str | Path | None, settings: dict[str, object]) -> EnhancerSpec:
    """The caller's spec, or one resolved from weights and settings (not both: which would win is unclear)."""
    if spec is None:
        return EnhancerSpec.resolve(weights, **settings)
    if weights is not None or settings:
        raise InputError("give either spec= or weights= and settings, not both")
    return spec


def clear_cache() -> None:
    """Forget every kept Enhancer; the next call builds again."""
    with _enhancers_lock:
        _enhancers.clear()


def upscale(
    image: np.ndarray | torch.Tensor,
    *,
    weights: str | Path | None = None,
    spec: EnhancerSpec | None = None,
    **settings: object,
) -> np.ndarray | torch.Tensor:
    """Enhance one image 4x with the generator (tiled with a halo, exactly as the video paths do).

    image: a numpy uint8 RGB array (H, W, 3) -> numpy uint8 RGB (4H, 4W, 3); or a torch float tensor in
    [0, 1], (3, H, W) or (N, 3, H, W) -> the same layout at 4x, same dtype, on the tensor's own device
    (computed on the engine's device), clamped to [0, 1].
    weights: None (the shipped default), a shipped name ("srgan-x4-fast") or a file (str or Path);
    settings: any other `EnhancerSpec` field (engine, device, precision, batch, tile, halo, preset, cache_dir),
    or a ready `spec` instead of both. The Enhancer for a spec is built on the first call and reused (see the
    module doc).
    Raises InputError for an image of another type, dtype or shape; EngineUnavailableError / WeightsError
    for settings this machine cannot run.
    """
    _check_image(image)
    enhancer, lock = _enhancer(_spec(spec, weights, settings))
    with lock:
        if isinstance(image, np.ndarray):
            # a read-only or strided view (np.broadcast_to, a slice) is copied: torch needs its own memory
            array = image if image.flags.c_contiguous and image.flags.writeable else np.array(image, order="C")
            return enhancer.enhance(Frame(image=array, seq=0)).image
        with torch.inference_mode():
            frames = image.unsqueeze(0) if image.ndim == 3 else image
            x = frames.to(enhancer.device, torch.float32)
            out = torch.stack([enhancer.upscale(f) for f in x])  # one frame at a time: tiles batch per frame
        out = out.to(device=image.device, dtype=image.dtype)
        return (out[0] if image.ndim == 3 else out).clone()  # a normal tensor, usable outside inference mode


def _check_image(image: object) -> None:
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
            raise InputError(f"upscale: a numpy image must be a non-empty (H, W, 3) uint8 RGB array, got "
                             f"{image.dtype} {image.shape}")
    elif isinstance(image, torch.Tensor):
        if not image.is_floating_point() or image.ndim not in (3, 4) or image.shape[-3] != 3 or 0 in image.shape:
            raise InputError(f"upscale: a tensor must be a non-empty float (3, H, W) or (N, 3, H, W) in [0, 1], got "
                             f"{image.dtype} {tuple(image.shape)}")
    else:
        raise InputError(f"upscale: expected a numpy uint8 (H, W, 3) array or a torch float tensor, got "
                         f"{type(image).__name__}")


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoResult:
    """What `enhance_video` did. frames: frames written (every input frame); seconds: wall time incl. decode
    and encode (not the engine build); fps: frames / seconds; repeated_frames: corrupt frames replaced by
    the previous good one to keep sync; decode_errors: packets that failed to decode; output / compare:
    the files written (compare None unless asked for)."""

    output: Path
    compare: Path | None
    frames: int
    seconds: float
    fps: float
    repeated_frames: int
    decode_errors: int
    damaged_frames: int = 0  # frames the decoder concealed (kept, counted)


def enhance_video(
    input: str | Path,
    output: str | Path,
    *,
    weights: str | Path | None = None,
    spec: EnhancerSpec | None = None,
    encoder: EncoderOptions = EncoderOptions(),
    compare: bool = False,
    overwrite: bool = False,
    outscale: float | None = None,
    on_frame: Callable[[Frame], None] | None = None,
    **settings: object,
) -> VideoResult:
    """Enhance the video file `input` 4x into `output` (what `streamsr enhance` does for one file): same
    frame count, rate, timestamps and audio; the output appears only when complete.

    compare: also write OUTPUT.compare.mp4 (bicubic | the model side by side, each panel labelled).
    encoder: codec, crf, bitrate, pixel format of the output. outscale: output size as a multiple of the
    input's, 0 < outscale <= 4 (None: 4x), the 4x frames resized with an antialiased filter (INTER_AREA),
    each side rounded to an even number (Real-ESRGAN's --outscale). on_frame: called with each enhanced
    frame (progress). weights, spec, settings: as `upscale`, sharing its kept enhancers.
    Raises InputError (missing or unreadable input, a folder), OutputError (exists without overwrite,
    unwritable), EngineUnavailableError / WeightsError; Ctrl-C leaves no output behind.
    """
    input, output = Path(input), Path(output)
    if outscale is not None and not 0 < outscale <= 4:
        raise InputError(f"enhance_video: outscale must be > 0 and <= 4, got {outscale}")
    if input.is_dir():
        raise InputError(f"input {input} is a folder; enhance_video takes one video file (the CLI takes folders)")
    (job,) = plan_jobs(input, output, compare=compare, overwrite=overwrite)
    spec = _spec(spec, weights, settings)
    enhancer, lock = _enhancer(spec)
    options = JobOptions(encoder=encoder, overwrite=overwrite, compare=CompareOptions(label=spec.label),
                         outscale=outscale)
    with lock:
        (result,) = run_jobs([job], LocalExecutor(enhancer, on_frame=on_frame), options, keep_going=False)
    return VideoResult(
        output=job.output,
        compare=job.compare,
        frames=result.frames_out,
        seconds=result.seconds,
        fps=result.frames_out / result.seconds if result.seconds > 0 else float("nan"),
        repeated_frames=result.repeated,
        decode_errors=result.decode_errors,
        damaged_frames=result.damaged,
    )
