"""Inputs the Enhancer must take as they come from common image libraries."""

from __future__ import annotations

import warnings

import numpy as np

from helpers import engine_for
from streamsr.enhancer import Enhancer
from streamsr.frame import Frame
from streamsr.testing import synthetic_image
from streamsr.tiling import Tiler


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
