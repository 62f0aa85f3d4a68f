"""Every engine against fp32 eager on random tiles, the engine cache, and select_engine's choices and errors.

Tiny preset, 24x24 windows: the whole file runs in well under a minute on 2 cores (the torch.compile build,
about 20 s there, dominates). CUDA and TensorRT tests carry markers and skip cleanly without them.
"""

from __future__ import annotations

import copy
import json
import logging
import sys

import pytest
import torch

from helpers import engine_for, run_main_io
from streamsr import backends
from streamsr.backends import TorchEngine, build_engine
from streamsr.backends import cache
from streamsr.errors import EngineUnavailableError, StreamSRError
from streamsr.model import Generator, fold_for_inference

WINDOW = 24
BATCH = 8
CPU = torch.device("cpu")

# Relative error bound per precision: ||out - ref||_2 / ||ref||_2 over the whole batch. fp32 engines differ
# from eager only by summation order (measured ~1e-7); half-precision bounds leave ~10x headroom over the
# unit roundoff of the format accumulated through the tiny preset (bf16 has 8 mantissa bits, fp16 11).
REL_BOUND = {"fp32": 1e-5, "fp16": 5e-3, "bf16": 3e-2}


def rel_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    out, ref = out.detach().float().cpu(), ref.detach().float().cpu()
    return float((out - ref).norm() / ref.norm())


@pytest.fixture(scope="module")
def model() -> Generator:
    torch.manual_seed(0)
    gen = Generator("srgan-x4-tiny")
    # non-trivial BN statistics so folding matters
    for m in gen.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return fold_for_inference(gen)


@pytest.fixture(scope="module")
def tiles() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(BATCH, 3, WINDOW, WINDOW)


@pytest.fixture(scope="module")
def reference(model, tiles) -> torch.Tensor:
    ref = TorchEngine(copy.deepcopy(model), device=CPU, precision="fp32", batch=BATCH, channels_last=False)
    return ref.run(tiles)


@pytest.fixture(scope="module")
def engine_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("engines")


def _cpu_cases() -> list:
    cases = [("torch", "fp32"), ("torch", "bf16"), ("onnxruntime", "fp32"), ("torch-compile", "fp32")]
    params = []
    for name, precision in cases:
        reason = backends.unavailable_reason(name, CPU, precision)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(name, precision, id=f"{name}-{precision}", marks=marks))
    return params


@pytest.fixture(scope="module")
def built(model, engine_dir):
    """Engines are built once per module (torch.compile takes ~20 s on 2 cores)."""
    engines: dict[tuple[str, str], object] = {}

    def get(name: str, precision: str, device: torch.device = CPU):
        key = (name, precision, str(device))
        if key not in engines:
            engines[key] = build_engine(name, copy.deepcopy(model), device=device, precision=precision,
                                        batch=BATCH, window=WINDOW, cache_dir=engine_dir)
        return engines[key]

    return get


@pytest.mark.parametrize("name,precision", _cpu_cases())
def test_cpu_engine_matches_fp32_eager(built, tiles, reference, name, precision):
    engine = built(name, precision)
    assert engine.name == name and engine.device == CPU and engine.batch == BATCH and engine.scale == 4
    for n in (BATCH, 3, 1):  # full batch, partial batch, single tile
        out = engine.run(tiles[:n])
        assert out.shape == (n, 3, 4 * WINDOW, 4 * WINDOW)
        assert out.device == CPU and out.dtype == engine.dtype
        assert not torch.isnan(out).any()
        assert rel_error(out, reference[:n]) < REL_BOUND[precision], engine.describe()
    assert isinstance(engine.describe(), str) and "\n" not in engine.describe()


@pytest.mark.parametrize("name,precision", _cpu_cases())
def test_cpu_engines_write_into_out(built, tiles, reference, name, precision):
    """`run(tiles, out=)` writes the result into the caller's buffer and returns that buffer (the Enhancer's
    device-resident path runs every engine this way); a buffer of the wrong shape is a one-line ValueError."""
    engine = built(name, precision)
    buf = torch.full((BATCH, 3, 4 * WINDOW, 4 * WINDOW), float("nan"), dtype=engine.dtype)
    for n in (BATCH, 3):
        got = engine.run(tiles[:n], out=buf[:n])
        assert got.data_ptr() == buf.data_ptr() and got.shape == (n, 3, 4 * WINDOW, 4 * WINDOW)
        assert rel_error(buf[:n], reference[:n]) < REL_BOUND[precision]
    with pytest.raises(ValueError, match="out= tensor has shape"):
        engine.run(tiles[:2], out=buf[:3])


def test_compiled_outputs_are_not_aliased(built, tiles, reference):
    if backends.unavailable_reason("torch-compile", CPU) is not None:
        pytest.skip("torch.compile unavailable")
    engine = built("torch-compile", "fp32")
    a = engine.run(tiles[:4])
    b = engine.run(tiles[4:])
    assert rel_error(a, reference[:4]) < REL_BOUND["fp32"]  # the second call did not overwrite the first
    assert rel_error(b, reference[4:]) < REL_BOUND["fp32"]


def test_compiled_engine_refuses_other_windows(built):
    """No silent eager fallback: tiles of another window are an error, and an Enhancer whose Tiler cuts
    another window refuses the engine at construction."""
    if backends.unavailable_reason("torch-compile", CPU) is not None:
        pytest.skip("torch.compile unavailable")
    from streamsr.enhancer import Enhancer
    from streamsr.errors import InputError
    from streamsr.tiling import Tiler

    engine = built("torch-compile", "fp32")
    assert engine.fixed_window == WINDOW
    with pytest.raises(ValueError, match=f"built for \\(n, 3, {WINDOW}, {WINDOW}\\) tiles"):
        engine.run(torch.rand(2, 3, 13, 17))
    with pytest.raises(InputError, match=f"built for {WINDOW}x{WINDOW} windows"):
        Enhancer(engine, Tiler(tile=16, halo=2))
    Enhancer(engine, Tiler(tile=16, halo=(WINDOW - 16) // 2))


def test_any_window_engines_say_so(built):
    assert built("torch", "fp32").fixed_window is None
    for name, precision in (("torch", "fp32"), ("onnxruntime", "fp32"), ("torch-compile", "fp32")):
        if backends.unavailable_reason(name, CPU, precision) is None:
            engine = built(name, precision)
            assert engine.precision == precision and engine.dtype == backends.DTYPES[precision]


def test_onnxruntime_takes_any_window(built, model):
    pytest.importorskip("onnxruntime")
    engine = built("onnxruntime", "fp32")
    x = torch.rand(2, 3, 13, 17)
    with torch.inference_mode():
        ref = copy.deepcopy(model)(x)
    assert engine.fixed_window is None
    assert rel_error(engine.run(x), ref) < REL_BOUND["fp32"]


# ---- cache ------------------------------------------------------------------------------------------------


def test_onnx_cache_reused_then_rebuilt_on_key_mismatch(model, tmp_path):
    pytest.importorskip("onnxruntime")
    from streamsr.backends.onnxruntime_engine import build_onnx, onnx_key

    path, reused = build_onnx(copy.deepcopy(model), cache_dir=tmp_path)
    assert not reused and path.is_file() and cache.meta_path(path).is_file()
    meta = json.loads(cache.meta_path(path).read_text())
    assert meta["key"] == onnx_key(model) and meta["key"]["opset"] and meta["key"]["onnxruntime"]
    stamp = path.stat().st_mtime_ns

    path2, reused2 = build_onnx(copy.deepcopy(model), cache_dir=tmp_path)
    assert reused2 and path2 == path and path.stat().st_mtime_ns == stamp

    # another model (other weights): another key, another file; the first stays
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.tail[0].bias.add_(0.01)
    path3, reused3 = build_onnx(other, cache_dir=tmp_path)
    assert not reused3 and path3 != path and path.is_file()

    # another opset is another key
    path4, reused4 = build_onnx(copy.deepcopy(model), cache_dir=tmp_path, opset=18)
    assert not reused4 and path4 != path

    # a stale key recorded beside the file (e.g. written by another onnxruntime version): rebuilt in place
    meta["key"]["onnxruntime"] = "0.0.0"
    cache.meta_path(path).write_text(json.dumps(meta))
    path5, reused5 = build_onnx(copy.deepcopy(model), cache_dir=tmp_path)
    assert not reused5 and path5 == path
    assert json.loads(cache.meta_path(path).read_text())["key"] == onnx_key(model)

    # a torn / edited artifact fails its hash check and is rebuilt
    path.write_bytes(path.read_bytes()[:100])
    _, reused6 = build_onnx(copy.deepcopy(model), cache_dir=tmp_path)
    assert not reused6
    _, reused7 = build_onnx(copy.deepcopy(model), cache_dir=tmp_path)
    assert reused7


def test_select_engine_reuses_cached_onnx(tiny_weights, tmp_path):
    pytest.importorskip("onnxruntime")
    config = dict(engine="onnxruntime", device="cpu", weights=str(tiny_weights), window=WINDOW, batch=4,
                  cache_dir=str(tmp_path))
    first = engine_for(**config)
    second = engine_for(**config)
    assert not first.reused and second.reused and first.artifact == second.artifact
    x = torch.rand(4, 3, WINDOW, WINDOW)
    assert torch.equal(first.run(x), second.run(x))


def test_cache_key_and_store(tmp_path):
    key = {"engine": "x", "window": 48, "batch": {"min": 1, "opt": 16, "max": 16}}
    path = cache.artifact_path(tmp_path, kind="x", preset="p", key=key, suffix=".bin")
    assert path.name == f"x-p-{cache.key_id(key)}.bin"
    assert cache.key_id(dict(reversed(list(key.items())))) == cache.key_id(key)  # order-independent
    assert not cache.is_cached(path, key)
    cache.store(path, b"engine bytes", key)
    assert cache.is_cached(path, key)
    assert not cache.is_cached(path, {**key, "window": 40})
    cache.meta_path(path).write_text("{not json")
    assert not cache.is_cached(path, key)
    assert not list(tmp_path.glob("*.partial"))


def test_model_digest_tracks_weights(model):
    a = cache.model_digest(model)
    assert a == cache.model_digest(copy.deepcopy(model)) and len(a) == 16
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.head[0].weight[0, 0, 0, 0] += 1e-3
    assert cache.model_digest(other) != a


def test_default_engine_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.ENGINE_DIR_ENV, str(tmp_path / "e"))
    assert cache.default_engine_dir() == tmp_path / "e"


# ---- select_engine ----------------------------------------------------------------------------------------


def test_auto_on_cpu_is_the_measured_default(tiny_weights, tmp_path):
    """ONNX Runtime is the measured CPU default (benchmarks/RESULTS.md, "Engines"), whenever it is installed."""
    pytest.importorskip("onnxruntime")
    engine = engine_for(device="cpu", weights=str(tiny_weights), window=WINDOW,
                        cache_dir=str(tmp_path))
    assert engine.name == "onnxruntime"
    assert engine.device == CPU and engine.dtype == torch.float32


def test_auto_on_cpu_without_onnxruntime_is_torch_eager(monkeypatch, tiny_weights, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    engine = engine_for(device="cpu", weights=str(tiny_weights), window=WINDOW,
                        cache_dir=str(tmp_path))
    assert engine.name == "torch" and engine.precision == "fp32"
    choice = backends.auto_choice("cpu")
    assert choice.engine == "torch" and "onnxruntime is not installed" in choice.why


def test_available_engines_lists_torch_first_class():
    names = backends.available_engines("cpu")
    assert "torch" in names and "tensorrt" not in names
    expected_first = "onnxruntime" if backends.unavailable_reason("onnxruntime", CPU) is None else "torch"
    assert names[0] == expected_first


def test_engine_statuses_name_every_engine_with_a_reason():
    statuses = {s.name: s for s in backends.engine_statuses()}
    assert set(statuses) == {"tensorrt", "torch-compile", "onnxruntime", "torch"}
    assert statuses["torch"].available and statuses["torch"].reason is None
    for s in statuses.values():
        assert s.available == (s.reason is None)
        assert s.reason is None or ("\n" not in s.reason and not s.reason.startswith("engine "))


def test_tensorrt_reasons_say_what_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_tensorrt", None)
    status = {s.name: s for s in backends.engine_statuses()}["tensorrt"]
    assert status.reason.startswith("torch-tensorrt is not installed (pip install 'streamsr[tensorrt]'")
    from streamsr.backends import tensorrt as trt_backend

    import importlib.machinery

    monkeypatch.setitem(sys.modules, "torch_tensorrt", type(sys)("torch_tensorrt"))  # "installed"...
    sys.modules["torch_tensorrt"].__spec__ = importlib.machinery.ModuleSpec("torch_tensorrt", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # ...but no GPU
    with pytest.raises(EngineUnavailableError, match="engine 'tensorrt' is not available - no CUDA device"):
        trt_backend._import_trt()


@pytest.mark.parametrize(
    "config,needle",
    [
        (dict(engine="nope", device="cpu"), "unknown engine 'nope'"),
        (dict(engine="tensorrt", device="cpu"), "tensorrt"),
        (dict(engine="onnxruntime", device="cpu", precision="bf16"), "does not run bf16"),
    ],
)
def test_select_engine_errors_are_one_line(tiny_weights, config, needle):
    with pytest.raises(EngineUnavailableError) as info:
        engine_for(weights=str(tiny_weights), window=WINDOW, **config)
    msg = str(info.value)
    assert needle in msg and "\n" not in msg
    assert isinstance(info.value, StreamSRError)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_engines_without_cuda(tiny_weights, model):
    with pytest.raises(EngineUnavailableError, match="CUDA is not available"):
        engine_for(engine="tensorrt", device="cuda", weights=str(tiny_weights))
    with pytest.raises(EngineUnavailableError, match="tensorrt"):
        build_engine("tensorrt", copy.deepcopy(model), device=torch.device("cuda"), precision="fp16", window=WINDOW)


def test_missing_onnxruntime_is_unavailable(monkeypatch, tiny_weights, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    assert "onnxruntime" not in backends.available_engines("cpu")
    with pytest.raises(EngineUnavailableError, match="pip install"):
        engine_for(engine="onnxruntime", device="cpu", weights=str(tiny_weights),
                   cache_dir=str(tmp_path))


def test_missing_torch_tensorrt_is_unavailable(monkeypatch):
    from streamsr.backends import tensorrt as trt_backend

    monkeypatch.setitem(sys.modules, "torch_tensorrt", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(EngineUnavailableError, match="torch-tensorrt"):
        trt_backend._import_trt()


def test_auto_falls_back_when_a_build_fails(monkeypatch, tiny_weights, tmp_path, caplog):
    pytest.importorskip("onnxruntime")
    from streamsr.backends import onnxruntime_engine

    def broken(*args, **kwargs):
        raise RuntimeError("simulated exporter failure")

    monkeypatch.setattr(backends, "CPU_AUTO_ORDER", ("onnxruntime", "torch"))
    monkeypatch.setattr(onnxruntime_engine, "export_onnx", broken)
    with caplog.at_level(logging.WARNING, logger="streamsr.backends"):
        engine = engine_for(device="cpu", weights=str(tiny_weights), window=WINDOW,
                            cache_dir=str(tmp_path))
    assert engine.name == "torch"
    assert "onnxruntime failed to build" in caplog.text and "simulated exporter failure" in caplog.text


def test_explicit_engine_never_falls_back(monkeypatch, tiny_weights, tmp_path):
    pytest.importorskip("onnxruntime")
    from streamsr.backends import onnxruntime_engine

    def broken(*args, **kwargs):
        raise RuntimeError("simulated exporter failure")

    monkeypatch.setattr(onnxruntime_engine, "export_onnx", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        engine_for(engine="onnxruntime", device="cpu", weights=str(tiny_weights),
                   cache_dir=str(tmp_path))


# ---- CUDA / TensorRT (skipped without them; run by benchmarks/device.sh) ----------------------------------

CUDA = torch.device("cuda")


@pytest.mark.cuda
@pytest.mark.parametrize("name,precision", [("torch", "fp32"), ("torch", "fp16"), ("torch-compile", "fp16"),
                                            ("torch-compile", "fp32")])
def test_cuda_engine_matches_fp32_eager(built, tiles, reference, name, precision):
    engine = built(name, precision, CUDA)
    for n in (BATCH, 3, 1):
        for src in (tiles[:n].to(CUDA), tiles[:n]):  # device tiles, and CPU tiles through the pinned buffer
            out = engine.run(src)
            assert out.shape == (n, 3, 4 * WINDOW, 4 * WINDOW) and out.device.type == "cuda"
            assert not torch.isnan(out).any()
            assert rel_error(out, reference[:n]) < REL_BOUND[precision], engine.describe()


@pytest.mark.cuda
def test_cuda_graph_outputs_survive_the_next_replay(built, tiles, reference):
    engine = built("torch-compile", "fp16", CUDA)
    assert engine.graph is not None
    a = engine.run(tiles[:4].to(CUDA))
    b = engine.run(tiles[4:].to(CUDA))
    torch.cuda.synchronize()
    assert rel_error(a, reference[:4]) < REL_BOUND["fp16"]
    assert rel_error(b, reference[4:]) < REL_BOUND["fp16"]


@pytest.mark.cuda
@pytest.mark.parametrize("name,precision", [("torch", "fp16"), ("torch-compile", "fp16")])
def test_cuda_engines_write_into_out_on_another_stream(built, tiles, reference, name, precision):
    engine = built(name, precision, CUDA)
    buf = torch.empty((BATCH, 3, 4 * WINDOW, 4 * WINDOW), dtype=engine.dtype, device=CUDA)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        got = engine.run(tiles.to(CUDA), out=buf)
    stream.synchronize()
    assert got.data_ptr() == buf.data_ptr()
    assert rel_error(buf, reference) < REL_BOUND[precision]


@pytest.mark.cuda
def test_auto_on_cuda_prefers_compiled_engines(tiny_weights, tmp_path):
    engine = engine_for(device="cuda", weights=str(tiny_weights), window=WINDOW, batch=4,
                        cache_dir=str(tmp_path))
    assert engine.name in ("tensorrt", "torch-compile")
    assert engine.dtype == torch.float16


@pytest.mark.tensorrt
@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_tensorrt_matches_fp32_eager_and_caches(model, tiles, reference, tmp_path, precision):
    from streamsr.backends.tensorrt import TensorRTEngine

    def make(window: int = WINDOW):
        return TensorRTEngine(copy.deepcopy(model), device=CUDA, precision=precision, batch=BATCH, window=window,
                              cache_dir=tmp_path)

    engine = make()
    assert not engine.reused
    meta = json.loads(cache.meta_path(engine.artifact).read_text())
    for field in ("model", "preset", "window", "batch", "precision", "gpu", "tensorrt", "torch_tensorrt"):
        assert field in meta["key"]
    for n in (BATCH, 3, 1):
        out = engine.run(tiles[:n].to(CUDA))
        assert out.shape == (n, 3, 4 * WINDOW, 4 * WINDOW)
        assert not torch.isnan(out).any()
        assert rel_error(out, reference[:n]) < REL_BOUND[precision]
    again = make()
    assert again.reused and again.artifact == engine.artifact
    assert torch.equal(again.run(tiles.to(CUDA)), engine.run(tiles.to(CUDA)))
    other = make(WINDOW + 8)  # key mismatch (window): a new engine is built
    assert not other.reused and other.artifact != engine.artifact
    with pytest.raises(ValueError, match="built for"):  # and no engine runs a window it was not built for
        engine.run(torch.rand(2, 3, WINDOW + 8, WINDOW + 8, device=CUDA))
    # the persistent timing cache beside the engines, and the build time, stated and kept in the metadata
    assert list(tmp_path.glob("tensorrt-timing-sm*.cache")), sorted(p.name for p in tmp_path.iterdir())
    assert engine.build_s is not None and again.build_s == pytest.approx(engine.build_s, abs=0.01)
    assert "built in" in again.describe()
    # TensorRT writes straight into an aligned buffer of its dtype
    buf = torch.empty((BATCH, 3, 4 * WINDOW, 4 * WINDOW), dtype=engine.dtype, device=CUDA)
    assert engine.run(tiles.to(CUDA), out=buf).data_ptr() == buf.data_ptr()
    torch.cuda.synchronize()
    assert rel_error(buf, reference) < REL_BOUND[precision]


# ---- streamsr export --------------------------------------------------------------------------------------


def test_export_cli_builds_then_loads(tiny_weights, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    args = ("export", "--engine", "onnxruntime", "--weights", str(tiny_weights), "--batch", "4",
            "--engine-dir", str(tmp_path), "--device", "cpu")
    code, out, err = run_main_io(capsys, *args)
    assert code == 0, err
    path = out.strip().splitlines()[-1]
    assert path.endswith(".onnx") and path.startswith(str(tmp_path)) and (tmp_path / path).is_file()
    assert "built" in err
    code, out, err = run_main_io(capsys, *args)
    assert code == 0 and out.strip().splitlines()[-1] == path
    assert "loaded" in err


def test_export_cli_tensorrt_without_it_is_one_line(tiny_weights, tmp_path, capsys):
    if backends.unavailable_reason("tensorrt", backends.resolve_device("auto")) is None:
        pytest.skip("TensorRT is usable here")
    code, _, err = run_main_io(capsys, "export", "--engine", "tensorrt", "--weights", str(tiny_weights),
                               "--engine-dir", str(tmp_path))
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("streamsr: error: engine 'tensorrt'")


@pytest.mark.tensorrt
@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_tensorrt_precision_kwargs_fit_the_installed_api(model, tmp_path, precision):
    """Against the installed torch-tensorrt, not a copy of its signature: the switches we pass bind to its
    converter, and the engine it builds computes in the precision asked for (the I/O dtypes TensorRT
    reports, and an fp32 engine accurate to fp32 eager, which TF32 would not be)."""
    import inspect

    import torch_tensorrt

    from streamsr.backends.tensorrt import TensorRTEngine, _precision_kwargs

    convert = torch_tensorrt.dynamo.convert_exported_program_to_serialized_trt_engine
    params = inspect.signature(convert).parameters
    dtype = backends.DTYPES[precision]
    inspect.signature(convert).bind(None, **_precision_kwargs(params, dtype))  # raises on an unknown switch
    engine = TensorRTEngine(copy.deepcopy(model), device=CUDA, precision=precision, batch=2, window=WINDOW,
                            cache_dir=tmp_path)
    assert engine._in_dtype == dtype and engine._out_dtype == dtype


def test_onnxruntime_runs_large_batches_in_chunks(built, tiles, reference, monkeypatch):
    pytest.importorskip("onnxruntime")
    from streamsr.backends import onnxruntime_engine

    engine = built("onnxruntime", "fp32")
    monkeypatch.setattr(onnxruntime_engine, "MAX_CHUNK", 3)
    out = engine.run(tiles)  # 8 tiles -> chunks of 3, 3, 2
    assert out.shape == reference.shape
    assert rel_error(out, reference) < REL_BOUND["fp32"]


# ---- lr-space generators on every engine ------------------------------------------------------------------


@pytest.fixture(scope="module")
def lr_space_model() -> Generator:
    """An lr-space generator in inference form with a non-zero tail (a fresh one is plain bicubic)."""
    torch.manual_seed(2)
    gen = Generator("srgan-x4-lr-tiny")
    torch.nn.init.normal_(gen.tail.weight, std=0.05)
    for m in gen.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return fold_for_inference(gen.eval())


def _lr_space_cases() -> list:
    cases = [("torch", "fp32", "cpu"), ("torch", "bf16", "cpu"), ("onnxruntime", "fp32", "cpu"),
             ("torch-compile", "fp16", "cuda"), ("tensorrt", "fp16", "cuda"), ("tensorrt", "fp32", "cuda")]
    params = []
    for name, precision, device in cases:
        marks = [pytest.mark.cuda] if device == "cuda" else []
        if name == "tensorrt":
            marks.append(pytest.mark.tensorrt)
        params.append(pytest.param(name, precision, device, id=f"{name}-{precision}", marks=marks))
    return params


@pytest.mark.parametrize("name,precision,device", _lr_space_cases())
def test_lr_space_generator_runs_on_every_engine(lr_space_model, tiles, tmp_path, name, precision, device):
    """The lr-space graph (replicate pad + grouped conv skip, PixelShuffle(4)) through each engine vs eager."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    reason = backends.unavailable_reason(name, device, precision)
    if reason:
        pytest.skip(reason)
    with torch.inference_mode():
        ref = copy.deepcopy(lr_space_model)(tiles)
    engine = build_engine(name, copy.deepcopy(lr_space_model), device=device, precision=precision, batch=BATCH,
                          window=WINDOW, cache_dir=tmp_path)
    out = engine.run(tiles.to(device))
    assert out.shape == (BATCH, 3, 4 * WINDOW, 4 * WINDOW)
    assert rel_error(out, ref) < REL_BOUND[precision]
