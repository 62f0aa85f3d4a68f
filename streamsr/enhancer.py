"""Enhancer: Frame -> 4x Frame. Owns the device side: upload, tiling, batched inference, stitching, download.

Sources and sinks never see tensors; the enhancer never sees where frames come from or go to.

Two paths behind one contract (`enhance(frame)`, or `submit(frame)` then `collect(handle)` for frames in
flight):
- direct (the CPU default, and any frame larger than RESIDENT_MAX_PIXELS): synchronously, one batch of
  tiles at a time is cut straight from the uint8 frame (`Tiler.tiles`), converted, run, and its clamped,
  quantised 4x centres copied into a preallocated output (`Tiler.place`), so memory is the input and output
  frames plus a working set that does not grow with the frame (`_tiles_into`, `working_set_bytes`); a
  frame that cannot fit is refused in one line first (`check_fits`). This is the path the CPU figures of
  benchmarks/RESULTS.md measure (they were taken before the batch-by-batch form, which gives the same bytes).
- device-resident (the CUDA default): everything a frame size needs is allocated once (`FrameBuffers`) and
  reused while the size stays the same. The uint8 frame is copied into a pinned buffer and uploaded with
  one async copy, converted to the engine dtype on the device, cut into a preallocated tile buffer by one
  gather (`Tiler.gather_index`), run by engines that write into slices of one preallocated output
  (`Engine.run(tiles, out=)`: no per-call allocation, no cat), then stitched, clamped, quantised and
  permuted to HWC uint8 on the device into a per-slot buffer, which one async copy on a second stream brings
  into a pinned host image, guarded by CUDA events. Two frames are in flight (`in_flight`): frame k+1 is
  uploaded and inferred on the compute stream while frame k is downloaded and handed to the sinks.
  `resident=True` on the CPU runs the same buffers and ordering without pinned memory, streams or events
  (the tests do, to check buffer reuse and ordering without a GPU).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .backends import select_engine, takes_any_window
from .backends.base import Engine, accepts_out
from .buffers import EVENTS, IN_FLIGHT, DeviceSlot, FrameBuffers, HostImage, available_memory
from .errors import InputError
from .frame import Frame, now_ns
from .model import load_generator
from .spec import EnhancerSpec
from .tiling import DEFAULT_HALO, Tiler, default_batch, default_tile

ACTIVATION_BYTES = 24
"""Bytes per model channel per pixel of a batch's 4x tile windows that the engine's own working memory
(activations, its arena, first-run allocations) is allowed in `Enhancer.working_set_bytes`. Measured as
peak RSS minus RSS after the build, minus the input and output frames, for one 300x300 and one 1000x1000
frame (batch 16, 44-px windows; the same within 50 MB at both sizes): ONNX Runtime 338-353 MiB for
srgan-x4-lite (32 channels), 619-669 MiB for srgan-x4 (64); torch eager 210-215 / 378 MiB. 669 MiB over
16 * 176**2 4x pixels and 64 channels is 22 bytes; 24 bounds every measurement."""

DEFAULT_CHANNELS = 64
"""Channels the working set is sized for when the Enhancer is not told its model's (the widest preset)."""

RESIDENT_MAX_PIXELS = 1920 * 1080
"""Largest input frame (pixels) the device-resident path takes. Its buffers hold every tile of a frame at
once (about 600 bytes per input pixel: gather index, tiles, 4x tiles, a float32 frame), fine for video
frames and the reason it is fast; larger frames take the direct path, whose memory does not grow with the
frame beyond its input and output (`Enhancer._tiles_into`)."""


@dataclass(slots=True, eq=False)
class EnhanceHandle:
    """What `Enhancer.submit` returns; give it back to `Enhancer.collect`, in submission order.

    frame: the submitted source frame; result: the 4x frame once known (the direct path knows it at once).
    """

    frame: Frame
    result: Frame | None = None
    _buffers: FrameBuffers | None = field(default=None, repr=False)
    _slot: DeviceSlot | None = field(default=None, repr=False)
    _image: HostImage | None = field(default=None, repr=False)
    _array: np.ndarray | None = field(default=None, repr=False)  # holding it marks the pooled image busy


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def complete(spec: EnhancerSpec) -> EnhancerSpec:
    """`spec` with its per-engine defaults filled: tile `tiling.default_tile` for the engine asked for (large
    where it takes any window, small where it is built for one), halo DEFAULT_HALO, batch
    `tiling.default_batch` of the window (so the working set does not grow with the tile)."""
    tile = spec.tile if spec.tile is not None else default_tile(any_window=takes_any_window(spec.engine, spec.device))
    halo = DEFAULT_HALO if spec.halo is None else spec.halo
    batch = spec.batch if spec.batch is not None else default_batch(tile + 2 * halo)
    return spec.but(tile=tile, halo=halo, batch=batch)


class Enhancer:
    """Wraps an Engine and a Tiler. Not thread-safe: use one Enhancer per thread.

    Timeline stamps it sets: uploaded, tiled, inferred, stitched, downloaded. On the direct path they are host
    clock readings after each step (on CUDA the inner ones mark when work was enqueued). On the CUDA
    device-resident path they are CUDA events recorded after each step, converted to the host monotonic clock
    through an anchor event recorded on an idle stream at submit, so each stamp is when the GPU finished the
    step, with no synchronize() per frame (collect waits only for the frame's own download event).
    """

    def __init__(self, engine: Engine, tiler: Tiler, *, resident: bool | None = None,
                 channels: int = DEFAULT_CHANNELS, arch: str = "progressive") -> None:
        """resident: the device-resident path (see the module doc); None = on CUDA devices only.
        channels, arch: the model's width and architecture (`model.Preset`), which size the working set
        (`working_set_bytes`): a progressive model's widest activations are on the 4x grid, an lr-space
        model's on the LR grid.

        Raises InputError (one line) when the engine cannot run this tiler's tiles: another scale, or a
        fixed-window engine built for another window than `tiler.window`."""
        if tiler.scale != engine.scale:
            raise InputError(f"Tiler.scale {tiler.scale} != engine scale {engine.scale}")
        if engine.fixed_window is not None and engine.fixed_window != tiler.window:
            raise InputError(
                f"engine {engine.name!r} was built for {engine.fixed_window}x{engine.fixed_window} windows but "
                f"the Tiler cuts {tiler.window}x{tiler.window} (tile {tiler.tile} + 2 x halo {tiler.halo}); "
                f"build the engine with window={tiler.window} (Enhancer.build does)"
            )
        self.engine = engine
        self.tiler = tiler
        self.channels = channels
        self.arch = arch
        self.resident = engine.device.type == "cuda" if resident is None else resident
        self._pinned: torch.Tensor | None = None
        self._engine_takes_out = accepts_out(engine)
        self._buffers: FrameBuffers | None = None
        self._pending: deque[EnhanceHandle] = deque()

    @classmethod
    def build(cls, spec: EnhancerSpec | None = None, *, resident: bool | None = None) -> "Enhancer":
        """The Enhancer `spec` describes (None: `EnhancerSpec.resolve()`, the shipped default weights): its
        unset tile, halo and batch filled for the engine asked for (`complete`), the generator loaded and
        handed to the engine registry, which builds the engine for the Tiler's window and the batch, so the
        two cannot disagree. resident: as in `Enhancer()`.
        Raises EngineUnavailableError / WeightsError (one line); a compiled engine's first build takes
        seconds to minutes (then it is cached)."""
        spec = complete(spec if spec is not None else EnhancerSpec.resolve())
        built = select_engine(load_generator(spec.weights), spec)
        return cls(built, Tiler(tile=spec.tile, halo=spec.halo), resident=resident,
                   channels=spec.preset.channels, arch=spec.preset.arch)

    @property
    def device(self) -> torch.device:
        return self.engine.device

    @property
    def in_flight(self) -> int:
        """How many frames may be submitted before the oldest must be collected: IN_FLIGHT on the
        device-resident path, 1 on the direct path (whose submit finishes the frame)."""
        return IN_FLIGHT if self.resident else 1

    # ---- the contract -------------------------------------------------------------------------------------
    @torch.inference_mode()
    def enhance(self, frame: Frame) -> Frame:
        """Return the 4x frame (same seq/pts/timeline object), image (4H, 4W, 3) uint8 RGB.

        On the device-resident path the image may live in a reused pooled buffer: it is reused only once
        nothing (no frame, array or view of it) references it any more."""
        return self.collect(self.submit(frame))

    @torch.inference_mode()
    def submit(self, frame: Frame) -> EnhanceHandle:
        """Start enhancing `frame`; at most `in_flight` frames may be submitted and not yet collected
        (RuntimeError past that). On CUDA this returns once the frame's work is enqueued."""
        if len(self._pending) >= self.in_flight:
            raise RuntimeError(f"Enhancer.submit: {len(self._pending)} frames in flight already; collect one first")
        if not self.resident or frame.height * frame.width > RESIDENT_MAX_PIXELS:
            handle = EnhanceHandle(frame=frame, result=self._enhance_direct(frame))
        else:
            handle = self._submit_resident(frame)
        self._pending.append(handle)
        return handle

    @torch.inference_mode()
    def collect(self, handle: EnhanceHandle) -> Frame:
        """The finished 4x frame of `handle`; handles are collected in the order they were submitted
        (ValueError otherwise). Waits only for this frame's own download."""
        if not self._pending or self._pending[0] is not handle:
            raise ValueError("Enhancer.collect: handles must be collected once each, in submission order")
        self._pending.popleft()
        if handle.result is None:
            handle.result = self._collect_resident(handle)
        return handle.result

    def abandon(self) -> None:
        """Forget every frame submitted and not collected (after a stop or an error), waiting for their device
        work to end so their buffers can be reused; the Enhancer can be used again afterwards."""
        while self._pending:
            handle = self._pending.popleft()
            if handle._slot is not None and handle._slot.events:
                handle._slot.events["downloaded"].synchronize()
            handle._slot = handle._buffers = handle._image = handle._array = None

    # ---- memory ------------------------------------------------------------------------------------------
    def working_set_bytes(self) -> int:
        """B, the bytes one batch of tiles needs on the direct path, whatever the frame size:

            B = b*3*w*w*5 + b*3*(s*w)**2*4 + 2*b*3*(s*t)**2*4 + b*g*C*ACTIVATION_BYTES

        for batch b, window w (tile t + 2 halo), scale s, model channels C, and g the pixels of one window
        on the grid the model's widest activations live on ((s*w)**2 for progressive models, w**2 for
        lr-space ones, whose only 4x tensor is the output): the batch's tiles (uint8 and float32), the
        engine's float32 output tiles, their clamped centres and one row band, and the engine's own working
        memory (measured bound for progressive models, see ACTIVATION_BYTES; the same allowance per channel
        and pixel is assumed on the LR grid). About 400 MB for srgan-x4-lite at batch 16, 44-px windows;
        it scales with the batch."""
        b, w, s, t = self.engine.batch, self.tiler.window, self.tiler.scale, self.tiler.tile
        tiles = b * 3 * w * w * (1 + 4)
        outputs = b * 3 * (s * w) ** 2 * 4
        centres = 2 * b * 3 * (s * t) ** 2 * 4
        grid = (s * w) ** 2 if self.arch == "progressive" else w * w
        activations = b * grid * self.channels * ACTIVATION_BYTES
        return tiles + outputs + centres + activations

    def memory_needed(self, height: int, width: int, *, frames: int = 1) -> int:
        """Bytes enhancing (height, width) frames needs beyond the input frame: `frames` 4x uint8 outputs
        (3 * s*s * H * W bytes each; a pipeline keeps several alive) plus the working set B
        (`working_set_bytes`); on a CUDA device also the uint8 input and one output there."""
        out = 3 * self.tiler.scale ** 2 * height * width
        need = frames * out + self.working_set_bytes()
        if self.device.type == "cuda":
            need += out + 3 * height * width
        return need

    def check_fits(self, height: int, width: int, *, frames: int = 1) -> None:
        """InputError (one line) when `memory_needed(height, width, frames=frames)` exceeds the memory this
        process can still get (`available_memory`): called before any work, so a frame too large for the
        machine is refused instead of failing in an allocation halfway through."""
        need = self.memory_needed(height, width, frames=frames)
        available = available_memory(self.device)
        if available is not None and need > available:
            s = self.tiler.scale
            raise InputError(
                f"a {width}x{height} frame is too large for this machine: its {s * width}x{s * height} output and "
                f"working set need about {_gib(need)} of memory, {_gib(available)} is available "
                f"(crop or split the frame, or use a machine with more memory)")

    # ---- direct path (the CPU default) --------------------------------------------------------------------
    def _upload(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 host -> (3, H, W) uint8 view of it on the engine device (a copy there on CUDA)."""
        host = torch.from_numpy(np.require(image, requirements="W"))  # torch warns on read-only (PIL) arrays
        if self.device.type == "cuda":
            if self._pinned is None or self._pinned.shape != host.shape:
                self._pinned = torch.empty(host.shape, dtype=torch.uint8, pin_memory=True)
            self._pinned.copy_(host)
            host = self._pinned
        return host.to(self.device, non_blocking=True).permute(2, 0, 1)

    def upscale(self, image: torch.Tensor, frame: Frame | None = None) -> torch.Tensor:
        """(3, H, W) float in [0, 1] on the device -> (3, 4H, 4W) float32 clamped to [0, 1] (a new tensor).

        Memory: the output (48 bytes per input pixel) plus the working set of one batch
        (`working_set_bytes`); see `_tiles_into`."""
        s = self.tiler.scale
        self.check_fits(image.shape[1], image.shape[2], frames=4)  # a float32 output is 4 uint8 ones
        out = torch.empty((3, s * image.shape[1], s * image.shape[2]), dtype=torch.float32, device=image.device)
        self._tiles_into(image, out, frame=frame, quantise=False)
        return out

    def _tiles_into(self, image: torch.Tensor, dest: torch.Tensor, *, frame: Frame | None, quantise: bool) -> None:
        """Enhance the (3, H, W) frame `image` (uint8 in 0..255 or float in [0, 1], any strides) into `dest`,
        a preallocated (3, s*H, s*W) tensor (any dtype and strides: an HWC uint8 image permuted), batch by
        batch: cut `engine.batch` tiles straight from the frame (`Tiler.tiles`), run them, clamp their 4x
        centres to [0, 1] (times 255 and rounded when `quantise`) and copy them into place (`Tiler.place`).

        Peak memory = the input frame + `dest` + B, where B (`working_set_bytes`) depends on the batch,
        tile, halo and model only, never on the frame size: no padded frame, no tensor of all the tiles,
        no float copy of the frame or its output is ever made. Per element the arithmetic is that of
        `Tiler.split` -> engine -> `Tiler.stitch` on the whole frame, batched the same way (the same bytes).
        Timeline: "tiled" once the tile maps are made, "inferred" and "stitched" after the last batch
        (cutting and stitching happen batch by batch, inside inference)."""
        grid = self.tiler.grid(image.shape[1], image.shape[2])
        maps = self.tiler.pad_maps(image.shape[1], image.shape[2], device=image.device)
        if frame is not None:
            frame.timeline.stamp("tiled")
        b, s, t, lo = self.engine.batch, self.tiler.scale, self.tiler.tile, self.tiler.scale * self.tiler.halo
        for start in range(0, grid.count, b):
            stop = min(start + b, grid.count)
            tiles = self.tiler.tiles(image, grid, maps, start, stop)
            tiles = tiles.float().div_(255.0) if not tiles.is_floating_point() else tiles.float()
            sr = self.engine.run(tiles)
            centres = sr[:, :, lo : lo + s * t, lo : lo + s * t].float().clamp_(0.0, 1.0)
            if quantise:
                centres = centres.mul_(255.0).round_()
            self.tiler.place(centres, grid, start, dest)
        if frame is not None:
            frame.timeline.stamp("inferred")
            frame.timeline.stamp("stitched")

    def _enhance_direct(self, frame: Frame) -> Frame:
        self.check_fits(frame.height, frame.width)
        s = self.tiler.scale
        image = self._upload(frame.image)
        frame.timeline.stamp("uploaded")
        if self.device.type == "cpu":
            out = np.empty((s * frame.height, s * frame.width, 3), np.uint8)
            self._tiles_into(image, torch.from_numpy(out).permute(2, 0, 1), frame=frame, quantise=True)
        else:
            dest = torch.empty((s * frame.height, s * frame.width, 3), dtype=torch.uint8, device=self.device)
            self._tiles_into(image, dest.permute(2, 0, 1), frame=frame, quantise=True)
            out = dest.cpu().numpy()
        frame.timeline.stamp("downloaded")
        return frame.with_image(out, scale=s)

    # ---- device-resident path (the CUDA default) ----------------------------------------------------------
    def _buffers_for(self, height: int, width: int) -> FrameBuffers:
        """The buffers of this frame size, made on the first frame of a size (frames in flight keep the
        buffers of theirs alive through their handles)."""
        if self._buffers is None or self._buffers.size != (height, width):
            self._buffers = FrameBuffers(self.engine, self.tiler, height, width)
        return self._buffers

    def _submit_resident(self, frame: Frame) -> EnhanceHandle:
        bufs = self._buffers_for(frame.height, frame.width)
        slot = bufs.slots[bufs.next_slot]
        bufs.next_slot = (bufs.next_slot + 1) % len(bufs.slots)
        image = bufs.pool.take()
        if self.device.type == "cuda":
            with torch.cuda.device(self.device):
                self._enqueue_cuda(frame, bufs, slot, image)
        else:
            self._run_resident_cpu(frame, bufs, image)
        return EnhanceHandle(frame=frame, _buffers=bufs, _slot=slot, _image=image, _array=image.array)

    def _tile_infer_stitch(self, bufs: FrameBuffers, dest: torch.Tensor, stamp: Callable[[str], None],
                           before_write: Callable[[], None] | None = None) -> None:
        """bufs.lr -> tiles -> engine -> stitched, clamped, quantised (3, sH, sW) into `dest` (an HWC uint8
        tensor, permuted here). `stamp(stage)` is called after tiling, inference and stitching;
        `before_write()` just before `dest` is written."""
        torch.take(bufs.lr, bufs.index, out=bufs.tiles.view(-1))
        stamp("tiled")
        n, b = bufs.grid.count, self.engine.batch
        for i in range(0, n, b):
            chunk, out = bufs.tiles[i : i + b], bufs.sr_tiles[i : i + b]
            if self._engine_takes_out:
                self.engine.run(chunk, out=out)
            else:
                out.copy_(self.engine.run(chunk))
        stamp("inferred")
        torch.clamp(self.tiler.stitch(bufs.sr_tiles, bufs.grid), 0.0, 1.0, out=bufs.sr)
        bufs.sr.mul_(255.0).round_()
        if before_write is not None:
            before_write()
        dest.permute(2, 0, 1).copy_(bufs.sr)
        stamp("stitched")

    def _run_resident_cpu(self, frame: Frame, bufs: FrameBuffers, image: HostImage) -> None:
        tl = frame.timeline
        src = torch.from_numpy(np.require(frame.image, requirements="W")).reshape(-1)
        torch.div(src, 255.0, out=bufs.lr)
        tl.stamp("uploaded")
        self._tile_infer_stitch(bufs, image.tensor, tl.stamp)
        tl.stamp("downloaded")

    def _enqueue_cuda(self, frame: Frame, bufs: FrameBuffers, slot: DeviceSlot, image: HostImage) -> None:
        ev = slot.events
        slot.t_anchor = now_ns()
        ev["anchor"].record(bufs.anchor)
        ev["uploaded"].synchronize()  # this slot's previous upload has read the pinned input (long done)
        np.copyto(slot.host_in_array, frame.image)  # no torch.from_numpy: read-only arrays are fine too
        with torch.cuda.stream(bufs.compute):
            bufs.frame.copy_(slot.host_in, non_blocking=True)
            ev["uploaded"].record()
            torch.div(bufs.frame.view(-1), 255.0, out=bufs.lr)
            # the GPU waits (the host does not) until this slot's previous frame was downloaded from slot.out
            self._tile_infer_stitch(bufs, slot.out, lambda stage: ev[stage].record(),
                                    lambda: bufs.compute.wait_event(ev["downloaded"]))
        bufs.download.wait_event(ev["stitched"])
        with torch.cuda.stream(bufs.download):
            image.tensor.copy_(slot.out, non_blocking=True)
            ev["downloaded"].record()

    def _collect_resident(self, handle: EnhanceHandle) -> Frame:
        slot, image, frame = handle._slot, handle._image, handle.frame
        assert slot is not None and image is not None
        if slot.events:
            ev = slot.events
            ev["downloaded"].synchronize()
            anchor = ev["anchor"]
            for stage in EVENTS[1:]:
                frame.timeline.stamp(stage, slot.t_anchor + round(anchor.elapsed_time(ev[stage]) * 1e6))
        out = frame.with_image(image.array, scale=self.tiler.scale)
        handle._slot = handle._buffers = handle._image = handle._array = None
        return out
