"""The Enhancer (streamsr/enhancer.py) on the direct path: tiles batched and the frame's identity kept, the
window contract with its engine at construction, inputs as common image libraries hand them over. (The
device-resident path and frames in flight: test_enhancer_cuda_path.py.)"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from helpers import engine_for
from streamsr.enhancer import Enhancer
from streamsr.errors import InputError
from streamsr.frame import Frame
from streamsr.testing import NearestEngine, synthetic_image
from streamsr.tiling import Tiler


def test_enhancer_batches_tiles_and_keeps_frame_identity():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (45, 70, 3), dtype=np.uint8)
    frame = Frame(image=img, seq=7, pts=70, time_base=None)
    out = Enhancer(NearestEngine(), Tiler(tile=16, halo=4)).enhance(frame)
    assert out.image.shape == (180, 280, 3) and out.image.dtype == np.uint8
    assert np.array_equal(out.image, img.repeat(4, 0).repeat(4, 1))
    assert out.seq == 7 and out.pts == 70 and out.scale == 4 and out.lowres is img
    for stage in ("uploaded", "tiled", "inferred", "stitched", "downloaded"):
        assert getattr(out.timeline, stage) is not None


def test_enhancer_refuses_an_engine_built_for_another_window():
    with pytest.raises(InputError) as info:
        Enhancer(NearestEngine(fixed_window=48), Tiler())  # the Tiler cuts 44x44
    msg = str(info.value)
    assert "\n" not in msg and "48x48" in msg and "44x44" in msg
    Enhancer(NearestEngine(fixed_window=44), Tiler())  # the matching window is fine
    Enhancer(NearestEngine(fixed_window=None), Tiler(tile=8, halo=1))  # any-window engines too


def test_read_only_input_array_is_enhanced_without_a_warning(tiny_weights):
    """PIL's np.asarray(image), imageio and np.frombuffer give read-only arrays; torch.from_numpy warns
    ("The given NumPy array is not writable") on each one unless the Enhancer copies it first."""
    tiler = Tiler()
    engine = engine_for(engine="torch", device="cpu", precision="fp32", window=tiler.window,
                        weights=str(tiny_weights))
    enhancer = Enhancer(engine, tiler)
    image = synthetic_image(0, 40, 24)
    read_only = np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(image.shape)
    assert not read_only.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = enhancer.enhance(Frame(image=read_only, seq=0))
    reference = enhancer.enhance(Frame(image=image.copy(), seq=0))
    assert out.image.shape == (96, 160, 3)
    assert np.array_equal(out.image, reference.image)
    assert not read_only.flags.writeable  # the caller's array is untouched
