"""The memory the Enhancer allocates once and reuses: host output images (pinned on CUDA) pooled per frame size,
the per-frame device buffers and CUDA events of the device-resident path, and how much memory is left
(`available_memory`), which `Enhancer.check_fits` compares its working set with."""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

try:
    import resource
except ImportError:  # not on Windows: the address-space limits are then unknown
    resource = None  # type: ignore[assignment]

from .backends.base import Engine
from .tiling import TileGrid, Tiler

IN_FLIGHT = 2
"""Frames in flight on the device-resident path: one being downloaded and emitted while the next is
uploaded and inferred. More would only add latency: the compute stream runs one frame at a time anyway."""

HOST_POOL_LIMIT = 8
"""Most pooled host output images per frame size. The pipeline holds at most IN_FLIGHT + its queue (4) + the
one being written; a consumer that keeps every frame (a list in a test, a user of `upscale`) gets fresh
unpooled images past this, rather than pinning memory without bound."""

EVENTS = ("anchor", "uploaded", "tiled", "inferred", "stitched", "downloaded")


def _proc_kib(path: str, key: str) -> int | None:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_memory(device: torch.device) -> int | None:
    """Bytes this process can still allocate on `device`, None when unknown. CUDA: free device memory plus
    what torch's caching allocator holds unused. CPU (Linux): the least of MemAvailable and the headroom
    under this process's address-space and data limits (RLIMIT_AS, RLIMIT_DATA: `ulimit -v`, a container
    or job scheduler's cap)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type != "cpu":
        return None
    limits = [_proc_kib("/proc/meminfo", "MemAvailable")]
    for which, used in (() if resource is None else ((resource.RLIMIT_AS, "VmSize"), (resource.RLIMIT_DATA, "VmData"))):
        soft, _ = resource.getrlimit(which)
        current = _proc_kib(f"/proc/{os.getpid()}/status", used)
        if soft != resource.RLIM_INFINITY and current is not None:
            limits.append(max(0, soft - current))
    known = [x for x in limits if x is not None]
    return min(known) if known else None


class HostImage:
    """One (H, W, 3) uint8 host image: a tensor (pinned on CUDA, so the download is a true async DMA) and the
    numpy array over its memory that frames carry."""

    __slots__ = ("tensor", "array")

    def __init__(self, shape: tuple[int, int, int], *, pin: bool) -> None:
        self.tensor = torch.empty(shape, dtype=torch.uint8, pin_memory=pin)
        self.array = self.tensor.numpy()


def _refs(image: HostImage) -> int:
    """References to `image.array`. numpy collapses view chains onto the first array whose base is not an
    array, i.e. onto `image.array`, so every view a sink keeps (`image[..., ::-1]`, a memoryview zmq sends
    from) counts here: an image is free only when nothing outside the pool can still see its pixels."""
    return sys.getrefcount(image.array)


class HostPool:
    """Host output images for one frame size, reused once nobody outside the pool holds them (see `_refs`);
    `allocations` counts the images made, pooled or not."""

    def __init__(self, shape: tuple[int, int, int], *, pin: bool, limit: int = HOST_POOL_LIMIT) -> None:
        self.shape, self.pin, self.limit = shape, pin, limit
        self._images: list[HostImage] = []
        self._free_refs: int | None = None
        self.allocations = 0

    def take(self) -> HostImage:
        for image in self._images:
            if _refs(image) == self._free_refs:
                return image
        self.allocations += 1
        if len(self._images) >= self.limit:
            return HostImage(self.shape, pin=False)  # the frame owns it; pageable, so the download is synchronous
        image = HostImage(self.shape, pin=self.pin)
        self._images.append(image)
        if self._free_refs is None:
            self._free_refs = _refs(image)  # measured, not assumed: CPython versions count borrowed refs differently
        return image


class DeviceSlot:
    """What one frame in flight owns: the pinned input staging (CUDA), the device uint8 output, the events."""

    __slots__ = ("host_in", "host_in_array", "out", "events", "t_anchor")

    def __init__(self, height: int, width: int, scale: int, device: torch.device) -> None:
        self.host_in: torch.Tensor | None = None
        self.host_in_array: np.ndarray | None = None
        self.out: torch.Tensor | None = None
        self.events: dict[str, torch.cuda.Event] = {}
        self.t_anchor = 0
        if device.type == "cuda":
            self.host_in = torch.empty((height, width, 3), dtype=torch.uint8, pin_memory=True)
            self.host_in_array = self.host_in.numpy()
            self.out = torch.empty((scale * height, scale * width, 3), dtype=torch.uint8, device=device)
            self.events = {name: torch.cuda.Event(enable_timing=True) for name in EVENTS}


class FrameBuffers:
    """Everything the device-resident path needs for one frame size, allocated once:

    index: (n*3*w*w,) int64 gather index (HWC frame -> tiles, halo padding included), n = tiles per frame,
    w = the Tiler's window; frame: (H, W, 3) uint8 upload target (CUDA); lr: (H*W*3,) engine dtype in [0, 1];
    tiles: (n, 3, w, w) engine dtype; sr_tiles: (n, 3, s*w, s*w) engine dtype, which the engine writes;
    sr: (3, s*H, s*W) float32 (clamp and round in fp32, as the direct path does); slots: IN_FLIGHT `DeviceSlot`s;
    pool: host output images; on CUDA the compute, download and (idle) anchor streams.
    """

    def __init__(self, engine: Engine, tiler: Tiler, height: int, width: int) -> None:
        device, dtype, s = engine.device, engine.dtype, tiler.scale
        self.size = (height, width)
        self.grid: TileGrid = tiler.grid(height, width)
        n, w = self.grid.count, tiler.window
        self.index = tiler.gather_index(height, width, device=device)
        self.frame = torch.empty((height, width, 3), dtype=torch.uint8, device=device) if device.type == "cuda" else None
        self.lr = torch.empty(height * width * 3, dtype=dtype, device=device)
        self.tiles = torch.empty((n, 3, w, w), dtype=dtype, device=device)
        self.sr_tiles = torch.empty((n, 3, s * w, s * w), dtype=dtype, device=device)
        self.sr = torch.empty((3, s * height, s * width), dtype=torch.float32, device=device)
        self.slots = [DeviceSlot(height, width, s, device) for _ in range(IN_FLIGHT)]
        self.next_slot = 0
        self.pool = HostPool((s * height, s * width, 3), pin=device.type == "cuda")
        if device.type == "cuda":
            self.compute = torch.cuda.Stream(device)
            self.download = torch.cuda.Stream(device)
            self.anchor = torch.cuda.Stream(device)  # only events: one recorded here runs at once on the GPU
