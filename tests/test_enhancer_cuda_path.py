"""The device-resident Enhancer path and two frames in flight.

On the CPU (`resident=True`) the same buffers, gather tiling, `out=` engine calls, host image pool and
submit/collect ordering run without pinned memory, streams or events, so buffer reuse, no per-frame
allocation and ordering are checked here; the `cuda` tests check the same on a GPU (benchmarks/device.sh).
"""

from __future__ import annotations

import threading
import time
import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch

from helpers import engine_for
from streamsr.backends import TorchEngine
from streamsr.buffers import HOST_POOL_LIMIT, IN_FLIGHT
from streamsr.enhancer import Enhancer
from streamsr.frame import Frame
from streamsr.model import Generator, fold_for_inference
from streamsr.pipeline import PipelineConfig, run_pipeline
from streamsr.sources import StreamInfo
from streamsr.testing import CollectingSink, IterableSource, NearestEngine
from streamsr.tiling import Tiler


class OutNearest(NearestEngine):
    """NearestEngine that honours `out=` and records the buffers it was handed."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.in_ptrs: list[int] = []
        self.out_ptrs: list[int] = []

    def run(self, tiles: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        self.in_ptrs.append(tiles.data_ptr())
        y = super().run(tiles)
        if out is None:
            return y
        self.out_ptrs.append(out.data_ptr())
        return out.copy_(y)


def _frames(n: int, h: int = 45, w: int = 70, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _nearest4(img: np.ndarray) -> np.ndarray:
    return img.repeat(4, 0).repeat(4, 1)


@pytest.mark.parametrize("size", [(1, 1), (5, 7), (31, 33), (45, 70), (61, 100)])
@pytest.mark.parametrize("tile,halo", [(32, 0), (16, 3), (8, 12)])
def test_gather_index_equals_split(size, tile, halo):
    h, w = size
    tiler = Tiler(tile=tile, halo=halo)
    img = torch.randint(0, 256, (h, w, 3), dtype=torch.uint8)
    ref, grid = tiler.split(img.permute(2, 0, 1).float())
    got = img.reshape(-1).float()[tiler.gather_index(h, w)].view(grid.count, 3, tiler.window, tiler.window)
    assert torch.equal(got, ref)


@pytest.mark.parametrize("engine_cls", [NearestEngine, OutNearest])
def test_resident_path_is_bit_exact_with_the_direct_path(engine_cls):
    tiler = Tiler(tile=16, halo=4)
    direct = Enhancer(NearestEngine(), tiler)
    resident = Enhancer(engine_cls(), tiler, resident=True)
    assert not direct.resident and direct.in_flight == 1 and resident.in_flight == IN_FLIGHT
    for i, img in enumerate(_frames(3)):
        a = direct.enhance(Frame(image=img, seq=i)).image
        b = resident.enhance(Frame(image=img, seq=i))
        assert np.array_equal(a, b.image) and np.array_equal(b.image, _nearest4(img))
        assert b.seq == i and b.scale == 4 and b.lowres is img
        for stage in ("uploaded", "tiled", "inferred", "stitched", "downloaded"):
            assert getattr(b.timeline, stage) is not None


def test_resident_path_matches_the_direct_path_with_a_real_generator():
    torch.manual_seed(0)
    model = fold_for_inference(Generator("srgan-x4-tiny"))
    engine = TorchEngine(model, device=torch.device("cpu"), batch=3)
    img = _frames(1, 40, 52)[0]
    a = Enhancer(engine, Tiler(tile=16, halo=4)).enhance(Frame(image=img, seq=0)).image
    b = Enhancer(engine, Tiler(tile=16, halo=4), resident=True).enhance(Frame(image=img, seq=0)).image
    assert np.array_equal(a, b)


def test_buffers_are_reused_and_engines_write_into_one_output():
    engine = OutNearest(batch=4)
    enhancer = Enhancer(engine, Tiler(tile=16, halo=4), resident=True)
    for i, img in enumerate(_frames(6)):
        out = enhancer.enhance(Frame(image=img, seq=i))
        assert np.array_equal(out.image, _nearest4(img))
        del out  # the sink is done with it: its host image can be reused
    bufs = enhancer._buffers
    chunks = -(-bufs.grid.count // engine.batch)
    # every frame hands the engine the same input and output chunks: nothing allocated per call, no cat
    assert len(set(engine.out_ptrs)) == chunks and len(set(engine.in_ptrs)) == chunks
    assert engine.out_ptrs[:chunks] == engine.out_ptrs[-chunks:]
    assert engine.out_ptrs[0] == bufs.sr_tiles.data_ptr() and engine.in_ptrs[0] == bufs.tiles.data_ptr()
    # released frames give their host image back: one image was ever made
    assert bufs.pool.allocations == 1


def test_a_held_image_is_never_overwritten_and_the_pool_is_bounded():
    enhancer = Enhancer(OutNearest(), Tiler(tile=16, halo=4), resident=True)
    imgs = _frames(HOST_POOL_LIMIT + 3)
    kept = [enhancer.enhance(Frame(image=img, seq=i)) for i, img in enumerate(imgs)]
    views = [f.image[..., ::-1] for f in kept[:2]]  # a sink's BGR view keeps the memory busy too
    ptrs = {f.image.__array_interface__["data"][0] for f in kept}
    assert len(ptrs) == len(kept)
    for f, img in zip(kept, imgs):
        assert np.array_equal(f.image, _nearest4(img))
    assert enhancer._buffers.pool.allocations == len(kept)
    assert len(enhancer._buffers.pool._images) == HOST_POOL_LIMIT  # past the limit, frames own their images
    first = kept[0].image.__array_interface__["data"][0]
    del kept, f
    again = enhancer.enhance(Frame(image=imgs[0], seq=99))  # frame 0 is only held through a view
    assert again.image.__array_interface__["data"][0] != first
    assert np.array_equal(views[0][..., ::-1], _nearest4(imgs[0]))


def test_submit_collect_two_in_flight_in_order():
    enhancer = Enhancer(OutNearest(), Tiler(tile=16, halo=4), resident=True)
    imgs = _frames(3)
    h0 = enhancer.submit(Frame(image=imgs[0], seq=0))
    h1 = enhancer.submit(Frame(image=imgs[1], seq=1))
    with pytest.raises(RuntimeError, match="in flight"):
        enhancer.submit(Frame(image=imgs[2], seq=2))
    with pytest.raises(ValueError, match="submission order"):
        enhancer.collect(h1)
    # frame 1 was produced into the other slot: frame 0's output is intact
    assert np.array_equal(enhancer.collect(h0).image, _nearest4(imgs[0]))
    assert np.array_equal(enhancer.collect(h1).image, _nearest4(imgs[1]))
    h2 = enhancer.submit(Frame(image=imgs[2], seq=2))
    enhancer.abandon()  # after a stop: the enhancer is usable again
    with pytest.raises(ValueError):
        enhancer.collect(h2)
    assert np.array_equal(enhancer.enhance(Frame(image=imgs[2], seq=3)).image, _nearest4(imgs[2]))


def test_frame_size_change_makes_new_buffers():
    enhancer = Enhancer(OutNearest(), Tiler(tile=16, halo=4), resident=True)
    a, b = _frames(1, 20, 30)[0], _frames(1, 33, 17, seed=1)[0]
    ha = enhancer.submit(Frame(image=a, seq=0))
    hb = enhancer.submit(Frame(image=b, seq=1))  # in flight across the size change
    assert np.array_equal(enhancer.collect(ha).image, _nearest4(a))
    assert np.array_equal(enhancer.collect(hb).image, _nearest4(b))
    assert enhancer._buffers.size == (33, 17)


def test_read_only_input_gives_no_warning():
    img = _frames(1)[0]
    img.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for resident in (False, True):
            out = Enhancer(OutNearest(), Tiler(tile=16, halo=4), resident=resident).enhance(Frame(image=img, seq=0))
            assert np.array_equal(out.image, _nearest4(img))


# ---- the pipeline's in-flight logic, with a fake enhancer whose frames finish only when collected ------------
class SlowCollectEnhancer:
    """Enhancer double: `in_flight` 2, records submit/collect order and the most frames outstanding."""

    in_flight = 2

    def __init__(self, tiler: Tiler) -> None:
        self.inner = Enhancer(NearestEngine(), tiler)
        self.tiler = tiler
        self.log: list[tuple[str, int]] = []
        self.outstanding = self.max_outstanding = 0
        self.abandoned = 0
        self.first_delay = 0.0

    def submit(self, frame: Frame):
        if frame.seq == 0:
            time.sleep(self.first_delay)  # lets the reader fill the queue, so frames are waiting
        self.log.append(("submit", frame.seq))
        self.outstanding += 1
        self.max_outstanding = max(self.max_outstanding, self.outstanding)
        return frame

    def collect(self, frame: Frame) -> Frame:
        self.log.append(("collect", frame.seq))
        self.outstanding -= 1
        return self.inner.enhance(frame)

    def abandon(self) -> None:
        self.abandoned += 1
        self.outstanding = 0


def test_pipeline_keeps_two_in_flight_and_emits_in_order():
    frames = [Frame(image=img, seq=i) for i, img in enumerate(_frames(6, 20, 24))]
    enhancer = SlowCollectEnhancer(Tiler(tile=16, halo=2))
    enhancer.first_delay = 0.3
    sink = CollectingSink()
    stats = run_pipeline(IterableSource(frames), enhancer, [sink], config=PipelineConfig(live=False, queue_size=8))
    assert [f.seq for f in sink.frames] == list(range(6)) and stats.frames_out == 6 and sink.closed
    assert enhancer.max_outstanding == 2 and enhancer.outstanding == 0
    # with frames waiting, frame k+1 is submitted before frame k is collected; the last one is drained
    expected = [("submit", 0), ("submit", 1)]
    for k in range(2, 6):
        expected += [("collect", k - 2), ("submit", k)]
    assert enhancer.log == expected + [("collect", 4), ("collect", 5)]
    assert all(np.array_equal(f.image, _nearest4(img)) for f, img in zip(sink.frames, _frames(6, 20, 24)))


def test_pipeline_never_holds_a_finished_frame_back_for_the_next_one():
    """A live source slower than the enhancer: each frame is emitted before the next one arrives."""
    emitted_before_next: list[bool] = []
    sink = CollectingSink()
    imgs = _frames(4, 20, 24)

    def slow_source():
        for i, img in enumerate(imgs):
            if i:
                time.sleep(0.3)
                emitted_before_next.append(len(sink.frames) == i)
            yield Frame(image=img, seq=i)

    enhancer = SlowCollectEnhancer(Tiler(tile=16, halo=2))
    info = StreamInfo(width=24, height=20, rate=Fraction(25), time_base=Fraction(1, 25), frames=4, duration_s=None,
                      codec="test", has_audio=False)
    run_pipeline(IterableSource(slow_source(), live=True, info=info), enhancer, [sink], config=PipelineConfig(live=True))
    assert emitted_before_next == [True, True, True]
    assert [f.seq for f in sink.frames] == [0, 1, 2, 3]


def test_pipeline_stop_abandons_frames_in_flight():
    stop = threading.Event()
    frames = [Frame(image=img, seq=i) for i, img in enumerate(_frames(8, 20, 24))]

    class StopSink(CollectingSink):
        def write(self, frame: Frame) -> None:
            super().write(frame)
            if len(self.frames) == 2:
                stop.set()

    enhancer = Enhancer(OutNearest(), Tiler(tile=16, halo=2), resident=True)
    stats = run_pipeline(IterableSource(frames), enhancer, [StopSink()], stop=stop)
    assert stats.frames_in == stats.frames_out + stats.dropped + stats.unfinished
    assert not enhancer._pending  # abandoned, so the enhancer works again
    assert np.array_equal(enhancer.enhance(frames[0]).image, _nearest4(frames[0].image))


# ---- CUDA (skipped without it; run by benchmarks/device.sh) ----------------------------------------------
@pytest.mark.cuda
@pytest.mark.parametrize("name,precision", [("torch", "fp32"), ("torch", "fp16"), ("torch-compile", "fp16")])
def test_cuda_resident_path_matches_the_direct_path(tiny_weights, name, precision):
    
    tiler = Tiler()
    engine = engine_for(engine=name, device="cuda", precision=precision, batch=8,
                        window=tiler.window, weights=str(tiny_weights))
    direct, resident = Enhancer(engine, tiler, resident=False), Enhancer(engine, tiler)
    assert resident.resident and resident.in_flight == 2
    img = _frames(1, 90, 130)[0]
    a = direct.enhance(Frame(image=img, seq=0)).image
    b = resident.enhance(Frame(image=img, seq=0)).image
    tol = 0 if precision == "fp32" else 1  # fp16: the direct path's fp32 cast vs out= copies may round apart
    assert np.abs(a.astype(int) - b.astype(int)).max() <= tol


@pytest.mark.cuda
def test_cuda_two_in_flight_event_stamps_and_no_allocation(tiny_weights):
    
    tiler = Tiler()
    engine = engine_for(engine="torch-compile", device="cuda", precision="fp16", batch=16,
                        window=tiler.window, weights=str(tiny_weights))
    enhancer = Enhancer(engine, tiler)
    imgs = _frames(8, 90, 130)
    ref = Enhancer(engine, tiler, resident=False)
    refs = [ref.enhance(Frame(image=img, seq=0)).image for img in imgs]
    for img in imgs[:2]:
        enhancer.enhance(Frame(image=img, seq=0))  # warm-up: buffers made
    torch.cuda.synchronize()
    before = torch.cuda.memory_stats()["allocation.all.allocated"]
    outs, pending = [], []
    for i, img in enumerate(imgs):
        pending.append(enhancer.submit(Frame(image=img, seq=i)))
        if len(pending) == 2:
            outs.append(enhancer.collect(pending.pop(0)))
    outs.append(enhancer.collect(pending.pop(0)))
    assert torch.cuda.memory_stats()["allocation.all.allocated"] == before  # CUDA graph engine: nothing at all
    for out, r in zip(outs, refs):
        assert np.abs(out.image.astype(int) - r.astype(int)).max() <= 1
        tl = out.timeline
        stamps = [tl.uploaded, tl.tiled, tl.inferred, tl.stitched, tl.downloaded]
        assert stamps == sorted(stamps) and stamps[-1] <= time.monotonic_ns()
    assert outs[-1].image.base is not None  # a pooled, pinned image
    assert enhancer._buffers.slots[0].host_in.is_pinned()
