"""The library entry points (streamsr/api.py, the package's exports): streamsr.upscale / enhance_video /
Enhancer.build, the README's Python API example, `import streamsr` without torch, the tile and window that
Enhancer.build derives. (`streamsr info`: test_cli_info.py; the URL scrubber: test_urls.py; the Enhancer's
own window check: test_enhancer.py.)"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import streamsr
from streamsr import api, enhancer as enhancer_module
from streamsr.backends import TorchEngine
from streamsr.errors import InputError, OutputError, WeightsError
from streamsr.model import load_generator
from streamsr.testing import make_clip
from streamsr.tiling import ANY_WINDOW_TILE, Tiler

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def count_builds(monkeypatch):
    """Counts engine builds behind Enhancer.build (the real select_engine still runs)."""
    api.clear_cache()
    calls: list[object] = []
    real = enhancer_module.select_engine

    def counting(model, spec):
        calls.append(spec)
        return real(model, spec)

    monkeypatch.setattr(enhancer_module, "select_engine", counting)
    yield calls
    api.clear_cache()


def test_upscale_numpy_and_tensor_layouts(tiny_weights, count_builds):
    opts = dict(engine="torch", device="cpu", weights=tiny_weights, tile=16, halo=4)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (23, 37, 3), dtype=np.uint8)
    out = streamsr.upscale(img, **opts)
    assert out.shape == (92, 148, 3) and out.dtype == np.uint8
    assert len(count_builds) == 1 and count_builds[0].window == 16 + 2 * 4  # built for the Tiler's window

    # the same image as a (3, H, W) float tensor, and inside an (N, 3, H, W) batch: the same pixels
    x = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    single = streamsr.upscale(x, **opts)
    assert single.shape == (3, 92, 148) and single.dtype == torch.float32 and single.device == x.device
    assert float(single.min()) >= 0 and float(single.max()) <= 1
    assert np.abs((single * 255).round().permute(1, 2, 0).numpy().astype(int) - out.astype(int)).max() <= 1
    batch = streamsr.upscale(torch.stack([torch.rand_like(x), x]), **opts)
    assert batch.shape == (2, 3, 92, 148)
    torch.testing.assert_close(batch[1], single)
    single.add_(0)  # a normal tensor, not an inference-mode one: usable in-place by the caller

    # every call above reused the one enhancer; other settings build another
    assert len(count_builds) == 1
    streamsr.upscale(img, **{**opts, "halo": 2})
    assert len(count_builds) == 2


def test_upscale_matches_the_enhancer_it_wraps(tiny_weights, count_builds):
    """Against an independently built Enhancer (TorchEngine + Tiler by hand): the same output."""
    img = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    engine = TorchEngine(load_generator(tiny_weights), device=torch.device("cpu"), precision="fp32", batch=16)
    tiler = Tiler(tile=ANY_WINDOW_TILE)  # upscale's default on a CPU engine, which takes any window
    by_hand = enhancer_module.Enhancer(engine, tiler).enhance(streamsr.Frame(image=img.copy(), seq=0)).image
    assert np.array_equal(streamsr.upscale(img, engine="torch", device="cpu", weights=tiny_weights), by_hand)


def test_upscale_accepts_read_only_and_strided_arrays(tiny_weights, count_builds):
    img = np.random.default_rng(2).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    ref = streamsr.upscale(img, engine="torch", device="cpu", weights=tiny_weights)
    frozen = img.copy()
    frozen.flags.writeable = False
    assert np.array_equal(streamsr.upscale(frozen, engine="torch", device="cpu", weights=tiny_weights), ref)
    wide = np.concatenate([img, img], axis=1)[:, ::2]  # a strided view
    assert wide.shape == img.shape
    streamsr.upscale(wide, engine="torch", device="cpu", weights=tiny_weights)


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32),
                                 np.zeros((0, 8, 3), np.uint8), torch.zeros(2, 8, 8), torch.zeros(3, 8, 8, dtype=torch.uint8),
                                 [[0, 0, 0]]])
def test_upscale_refuses_other_inputs_in_one_line(bad):
    with pytest.raises(InputError) as info:
        streamsr.upscale(bad)
    assert "\n" not in str(info.value) and str(info.value).startswith("upscale:")


def test_upscale_is_safe_from_several_threads(tiny_weights, count_builds):
    img = np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    ref = streamsr.upscale(img, engine="torch", device="cpu", weights=tiny_weights)
    results: list[np.ndarray] = []

    def work():
        results.append(streamsr.upscale(img, engine="torch", device="cpu", weights=tiny_weights))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(np.array_equal(r, ref) for r in results)
    assert len(count_builds) == 1


def test_enhance_video_returns_what_it_wrote(tmp_path, tiny_weights, count_builds):
    src = make_clip(tmp_path / "in.mp4", frames=5, width=32, height=24)
    out = tmp_path / "out.mp4"
    result = streamsr.enhance_video(src, out, engine="torch", device="cpu", weights=tiny_weights)
    assert isinstance(result, streamsr.VideoResult)
    assert result.output == out and result.compare is None
    with av.open(str(out)) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == 5 == result.frames and decoded[0].shape == (96, 128, 3)
    assert result.repeated_frames == 0 and result.decode_errors == 0
    assert result.seconds > 0 and result.fps == pytest.approx(5 / result.seconds)
    with pytest.raises(OutputError, match="already exists"):
        streamsr.enhance_video(src, out, engine="torch", device="cpu", weights=tiny_weights)
    with pytest.raises(InputError, match="does not exist"):
        streamsr.enhance_video(tmp_path / "nope.mp4", tmp_path / "o2.mp4")
    with pytest.raises(InputError, match="folder"):
        streamsr.enhance_video(tmp_path, tmp_path / "o3.mp4")
    assert len(count_builds) == 1  # the failed calls built nothing


def _readme_python_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the README's Python API section has one python example"
    return blocks[0]


def test_readme_python_api_example_runs(tmp_path, monkeypatch):
    """The README example as written (shipped weights, auto engine), run from a folder whose
    samples/sample.mp4 is a short stand-in clip (the real sample takes ~15 s on 2 cores)."""
    (tmp_path / "samples").mkdir()
    make_clip(tmp_path / "samples" / "sample.mp4", frames=3, width=64, height=48)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STREAMSR_ENGINE_DIR", str(tmp_path / "engines"))
    api.clear_cache()
    namespace: dict[str, object] = {}
    exec(compile(_readme_python_example(), "README.md", "exec"), namespace)  # noqa: S102 - our own README
    api.clear_cache()
    assert namespace["sr"].shape == (384, 512, 3)
    assert namespace["result"].frames == 3 and namespace["result"].output == Path("sample_x4.mp4")
    with av.open(str(tmp_path / "sample_x4.mp4")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (256, 192)


def test_import_streamsr_does_not_import_torch():
    code = ("import sys, streamsr; assert 'torch' not in sys.modules; streamsr.InputError; streamsr.OutputError;"
            " assert 'torch' not in sys.modules; print(sorted(streamsr.__all__))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for name in ("upscale", "enhance_video", "Enhancer", "InputError", "OutputError", "StreamSRError"):
        assert repr(name) in r.stdout


# ---- the tile and window Enhancer.build derives ----------------------------------------------------------------------


def test_enhancer_build_derives_the_window_from_the_tiler(tiny_weights, count_builds):
    enh = streamsr.Enhancer.build(streamsr.EnhancerSpec.resolve(tiny_weights, engine="torch", device="cpu", tile=24, halo=5))
    assert enh.tiler.window == 34 and count_builds[0].window == 34


def test_upscale_takes_a_shipped_weights_name(count_builds):
    from streamsr.model import DEFAULT_WEIGHTS, SHIPPED

    img = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    by_name = streamsr.upscale(img, weights=DEFAULT_WEIGHTS, engine="torch", device="cpu")
    by_path = streamsr.upscale(img, weights=SHIPPED[DEFAULT_WEIGHTS].path, engine="torch", device="cpu")
    assert np.array_equal(by_name, by_path) and len(count_builds) == 1  # one enhancer: the name is the file
    with pytest.raises(WeightsError, match="unknown weights"):
        streamsr.upscale(img, weights="srgan-x4-nope")


def test_the_default_tile_follows_the_engine(tiny_weights, count_builds):
    from streamsr.backends import takes_any_window
    from streamsr.tiling import ANY_WINDOW_TILE, DEFAULT_HALO, DEFAULT_TILE

    enh = streamsr.Enhancer.build(streamsr.EnhancerSpec.resolve(tiny_weights, engine="torch", device="cpu"))  # any window: large tiles
    assert (enh.tiler.tile, enh.tiler.halo) == (ANY_WINDOW_TILE, DEFAULT_HALO)
    assert count_builds[0].window == ANY_WINDOW_TILE + 2 * DEFAULT_HALO
    # larger windows, fewer per call: the same window pixels per call as 16 of 44 px, so memory does not grow
    from streamsr.tiling import DEFAULT_BATCH_PIXELS, default_batch

    assert count_builds[0].batch == default_batch(count_builds[0].window) == 2
    assert default_batch(DEFAULT_TILE + 2 * DEFAULT_HALO) == 16 and default_batch(10_000) == 1
    assert count_builds[0].batch * count_builds[0].window ** 2 <= DEFAULT_BATCH_PIXELS
    assert takes_any_window("auto", "cpu") and takes_any_window("onnxruntime", "cpu")
    # compiled engines are built for one window: they keep the small fixed tile (not built here: 20 s+)
    assert not takes_any_window("torch-compile", "cpu") and not takes_any_window("tensorrt", "cpu")
    assert DEFAULT_TILE < ANY_WINDOW_TILE
