"""The benchmark code runs end to end on a tiny model and tiny frames (seconds). No timed assertions:
only that every figure is produced, well-formed and consistent."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from helpers import run_main_io
from streamsr.bench import VARIANTS, BenchConfig, format_markdown, run_bench, standard_config, tile_loop_upscale
from streamsr.model import Generator, save_weights
from streamsr.testing import NearestEngine, encode_clip, synthetic_frames


def _tiny(**kw) -> BenchConfig:
    base = dict(preset="srgan-x4-tiny", device="cpu", batch=4, tile=16, halo=4, width=40, height=24, frames=1,
                warmup=1, repeats=1, pipeline_frames=3, pipeline_warmup=1, ceiling_size=64, live_seconds=0.0,
                ceiling_dtypes=("fp32", "bf16"))
    base.update(kw)
    return BenchConfig(**base)


def test_tile_loop_baseline_is_a_correct_tiler():
    # with a pixel-local model, pasting tile centres must give exactly the whole-frame result
    img = synthetic_frames(1, 50, 38)[0]
    out = tile_loop_upscale(NearestEngine().run, img, tile=16, pad=4)
    assert out.shape == (152, 200, 3) and out.dtype == np.uint8
    assert np.array_equal(out, img.repeat(4, 0).repeat(4, 1))


def test_run_bench_all_variants_tiny(tiny_weights):
    progress: list[str] = []
    result = run_bench(_tiny(weights=str(tiny_weights), live_seconds=0.5, live_fps=20), progress=progress.append)
    assert progress, "progress callback is used"
    assert set(result.variants) == set(VARIANTS)
    for v in result.variants.values():
        assert v.latency.count == 1 and len(v.fps_reps) == 1 and v.fps > 0
        assert v.lr_mpix_s == pytest.approx(v.fps * 40 * 24 / 1e6)
    assert set(result.speedups) == set(VARIANTS) - {"engine", "streamsr"}
    assert result.tiles_per_frame == 3 * 2
    assert result.halo_overhead == pytest.approx(6 * 24 * 24 / (40 * 24))
    assert {"uploaded", "tiled", "inferred", "stitched", "downloaded"} <= set(result.stages)
    assert [c.dtype for c in result.ceilings] == ["fp32", "bf16"] and result.efficiency > 0
    p = result.pipeline
    assert p is not None and p.frames == 2 and p.dropped == 0 and p.fps > 0
    assert {"decode", "inferred", "encode"} <= set(p.stages) and p.e2e.count == 2
    assert math.isfinite(p.ratio_engine) and math.isfinite(p.ratio_streamsr)
    lv = result.live
    assert lv is not None and lv.frames_in == 10 and lv.frames_out >= 1
    assert lv.frames_out + lv.dropped + lv.uncounted == lv.frames_in and lv.e2e.count == lv.frames_out
    assert 1 <= lv.received <= lv.frames_out and lv.e2e_received.count == lv.received
    assert str(tiny_weights) in result.weights
    text = format_markdown(result)
    for needle in ("| tile-loop |", "| infer |", "pipeline / engine-only", "of the matmul ceiling", "torch 2",
                   "dropped"):
        assert needle in text
    json.dumps(result.to_dict())


def test_run_bench_fresh_weights_and_clip_input(tmp_path):
    clip = encode_clip(tmp_path / "in.mp4", synthetic_frames(4, 32, 16))
    result = run_bench(_tiny(clip=str(clip), variants=("engine", "streamsr"), ceiling_dtypes=(),
                             pipeline_frames=4))
    assert "freshly initialised srgan-x4-tiny" in result.weights
    assert result.lr_size == (32, 16) and set(result.variants) == {"engine", "streamsr"}
    assert result.ceilings == () and result.efficiency is None and result.live is None
    assert result.pipeline is not None and result.pipeline.frames == 3


def test_config_validation():
    with pytest.raises(ValueError, match="variants"):
        BenchConfig(variants=("nope",))
    with pytest.raises(ValueError, match="even"):
        BenchConfig(width=33)
    with pytest.raises(ValueError, match="pipeline_frames"):
        BenchConfig(pipeline_frames=2, pipeline_warmup=1)
    assert standard_config(quick=True, cuda=False).width == 64
    assert standard_config(quick=False, cuda=True, width=None).width == 480


def test_cli_bench(tmp_path, tiny_weights, capsys):
    path = tmp_path / "bench.json"
    code, out, err = run_main_io(capsys, "bench", "--quick", "--device", "cpu", "--weights", str(tiny_weights),
                                 "--size", "32x16", "--tile", "16", "--halo", "4", "--repeats", "1", "--frames", "1",
                                 "--live-seconds", "0.2", "--json", str(path), "-q")
    assert code == 0, err
    assert "| streamsr |" in out and "end to end" in out and "fps" in out
    data = json.loads(path.read_text())
    assert data["lr_size"] == [32, 16] and "tile-loop" in data["variants"]
    code, _, err = run_main_io(capsys, "bench", "--size", "big")
    assert code == 2 and err.startswith("streamsr: error: --size") and err.count("\n") == 1, err
    code, _, err = run_main_io(capsys, "bench", "--quick", "--weights", str(tmp_path / "nope.safetensors"))
    assert code == 1 and "Traceback" not in err
    assert "streamsr: error: weights file" in err and "does not exist" in err


def test_cli_bench_sizes_and_weights_side_by_side_end_in_verdicts(tmp_path, tiny_weights, capsys):
    lr_space = save_weights(Generator("srgan-x4-lr-tiny"), tmp_path / "lr-tiny.safetensors")
    out = tmp_path / "bench.json"
    code, stdout, err = run_main_io(capsys, "bench", "--quick", "--device", "cpu", "--weights", str(tiny_weights), "--weights",
                         str(lr_space), "--size", "32x16", "--size", "24x24", "--repeats", "1", "--frames", "1",
                         "--no-pipeline", "--live-seconds", "0", "--no-baselines", "--json", str(out), "-q")
    assert code == 0, err
    runs = json.loads(out.read_text())["runs"]
    assert [(r["lr_size"], r["weights"].split(" (")[0]) for r in runs] == [
        ([32, 16], str(tiny_weights)), ([32, 16], str(lr_space)), ([24, 24], str(tiny_weights)), ([24, 24], str(lr_space))]
    assert all(r["config"]["tile"] == 96 for r in runs)  # the CPU engine takes any window: the large default tile
    verdicts = stdout.split("verdict (this machine):")[1].strip().splitlines()
    assert [v.split(":")[0] for v in verdicts] == ["32x16 tiny", "32x16 lr-tiny", "24x24 tiny",
                                                   "24x24 lr-tiny"]
    for v, r in zip(verdicts, runs):
        fps = r["variants"]["streamsr"]["fps"]
        assert f"{fps:.2f} fps" in v and "p99" in v
        assert ("keeps up with 25 fps" in v) == (fps >= 25) and ("30 fps: no" in v) == (fps < 30)


def _script(name: str):
    """Import benchmarks/<name>.py (a folder of scripts, not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_script_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_scripts_run_sweep_and_plot(tmp_path, tiny_weights):
    run, sweep = _script("run"), _script("sweep")
    assert run.main(["--device", "cpu", "--weights", str(tiny_weights), "--size", "32x16", "--repeats", "1",
                     "--frames", "1", "--pipeline-frames", "4", "--live-seconds", "0.2", "--out", str(tmp_path)]) == 0
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert bench["pipeline"]["frames"] == 2 and bench["variants"]["tile-loop"]["samples_ms"]
    assert bench["live"]["frames_in"] == 6
    axes = {"engines": ["torch"], "presets": ["srgan-x4-tiny"], "batches": [1, 4], "tiles": [[16, 4], [16, 8]],
            "sizes": [[32, 32]],
            "base": {"preset": "srgan-x4-tiny", "width": 32, "height": 32, "tile": 16, "halo": 4, "batch": 4}}
    assert sweep.main(["--device", "cpu", "--repeats", "2", "--axes-json", json.dumps(axes),
                       "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "sweep.json").read_text())
    by_label = {p["label"]: p for p in data["points"]}
    assert len(by_label) == 3  # base point shared by every axis + batch 1 + halo 8
    base = by_label["torch srgan-x4-tiny b4 t16+4 32x32"]
    assert set(base["axis"].split("+")) == {"engine", "preset", "batch", "tile", "size"}
    assert base["rounds"] == 2 and len(base["engine_fps_rounds"]) == 2
    assert "| batch |" in (tmp_path / "sweep.md").read_text()
    pytest.importorskip("matplotlib")
    plots = _script("plots")
    assert plots.main(["--results", str(tmp_path), "--out", str(tmp_path / "png")]) == 0
    for name in ("latency_cdf.png", "stages.png", "fps_vs_batch.png"):
        assert (tmp_path / "png" / name).stat().st_size > 1000


def test_engine_layer_and_pipeline_scripts_run(tmp_path, tiny_weights):
    engines = _script("engines")
    assert engines.main(["--weights", str(tiny_weights), "--batch", "2", "--reps", "1", "--no-cuda",
                         "--skip", "compile,bf16", "--no-frames", "--json", str(tmp_path / "engines.json")]) == 0
    rows = {r["name"]: r for r in json.loads((tmp_path / "engines.json").read_text())["cpu"]["rows"]}
    assert {"eager fp32 NCHW", "eager fp32 channels_last"} <= set(rows)
    assert all(r["times"] for r in rows.values()) and rows["eager fp32 channels_last"]["psnr_db"] > 45

    layers = _script("layers")
    assert layers.main(["--weights", str(tiny_weights), "--batch", "2", "--window", "12", "--reps", "1",
                        "--out", str(tmp_path)]) == 0
    table = (tmp_path / "layers.md").read_text()
    assert "| paper | NCHW |" in table and "| inference | channels_last |" in table

    diag = _script("pipeline_diag")
    assert diag.main(["--size", "32x32", "--frames", "3", "--rounds", "1", "--preset", "srgan-x4-tiny",
                      "--weights", str(tiny_weights), "--engine", "torch", "--out", str(tmp_path),
                      "--stem", "diag"]) == 0
    variants = {r["variant"]: r for r in json.loads((tmp_path / "diag.json").read_text())["rows"]}
    pipe, engine = variants["pipe file->file"], variants["engine"]
    assert pipe["fps"] > 0 and engine["fps"] > 0
    # one round: the reported ratio is the pipeline's reported fps over the engine's (not the engine's own
    # row, which is 1 by construction)
    assert pipe["ratio_to_engine"] == pytest.approx(pipe["fps"] / engine["fps"])
