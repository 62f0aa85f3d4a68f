"""`streamsr enhance --ray` on a real local Ray instance (2 CPU workers, one per module, since Ray is slow to
start): a folder of 3 clips and one long clip cut into segments, byte for byte the same as a local run."""

import os
import re
import sys
from pathlib import Path

import av
import pytest

from helpers import make_timed_clip, run_cli, run_main
from streamsr.enhancer import Enhancer
from streamsr.jobs import JobOptions, LocalExecutor, plan_jobs, run_jobs
from streamsr.spec import EnhancerSpec
from streamsr.testing import make_clip

ray = pytest.importorskip("ray")  # installed by `make test` (extra "ray"); only a bare install skips this

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("archive")
    for k in range(3):
        make_clip(folder / f"clip{k}.mp4", frames=5 + k, audio=k != 1)
    pts = [100 * i + (i % 4) * 9 for i in range(36)]  # 3.6 s of VFR, keyframe every 12 frames, 2 tracks
    make_timed_clip(folder / "long.mp4", pts, gop=12, audio=(("eng", "room"), ("fra", "narration")))
    return folder


def test_ray_outputs_are_byte_identical_to_a_local_run(cluster, archive, tmp_path, tiny_weights):
    spec = EnhancerSpec.resolve(str(tiny_weights), engine="torch", device="cpu")  # the CLI's defaults below
    options = JobOptions(segment_seconds=1.0)
    local = tmp_path / "local"
    local.mkdir()
    results = run_jobs(plan_jobs(archive, local), LocalExecutor(Enhancer.build(spec)), options)
    assert [r.status for r in results] == ["ok"] * 4
    assert results[-1].segments == 3

    out, report = tmp_path / "ray", tmp_path / "report.json"
    proc = run_cli("enhance", str(archive), "-o", str(out), "--weights", str(tiny_weights), "--engine", "torch",
                   "--device", "cpu", "--segment-seconds", "1", "--ray", "--ray-address", "auto",
                   "--report", str(report), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Ray: 2 worker(s), 6 unit(s) from 4 file(s)" in proc.stderr
    totals = set(re.findall(r"\| *\d+/(\d+) \[", proc.stderr))
    assert totals == {"54"} and "54/54" in proc.stderr  # one bar over the whole job: 5 + 6 + 7 + 36 frames
    names = sorted(p.name for p in local.iterdir())
    videos = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))  # .NAME.streamsr.json: sidecars
    assert names == videos == ["clip0.mp4", "clip1.mp4", "clip2.mp4", "long.mp4"]
    for name in names:
        assert (out / name).read_bytes() == (local / name).read_bytes(), name
    assert '"segments": 3' in report.read_text()


def test_ray_run_records_a_bad_file_and_carries_on(cluster, archive, tmp_path, tiny_weights):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.mp4").write_bytes((archive / "clip0.mp4").read_bytes())
    (folder / "broken.mp4").write_bytes(b"not a video" * 100)
    from streamsr.distributed import run_on_ray

    spec = EnhancerSpec.resolve(str(tiny_weights), engine="torch", device="cpu")
    (tmp_path / "out").mkdir()
    results = run_on_ray(plan_jobs(folder, tmp_path / "out"), spec, JobOptions())
    assert [r.status for r in results] == ["ok", "failed"]
    assert "broken.mp4" in results[1].error and "not a readable video" in results[1].error
    assert (tmp_path / "out" / "a.mp4").is_file() and not (tmp_path / "out" / "broken.mp4").exists()


def test_without_ray_installed_ray_is_one_clear_error(tmp_path, tiny_weights, capsys, monkeypatch):
    clip = make_clip(tmp_path / "c.mp4", frames=2)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    code, err = run_main(capsys, "enhance", str(clip), "-o", str(tmp_path / "o.mp4"), "--ray")
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "streamsr: error: --ray needs Ray, which is not installed: pip install 'streamsr[ray]'")


def decoded(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="yuv420p").tobytes() for f in c.decode(video=0)]


def test_ray_compare_with_writes_the_same_three_panel_frames_as_a_local_run(cluster, archive, tmp_path, tiny_weights):
    """Every panel of every frame is the same as in a local run. Compared after a lossless encode (crf 0),
    because the comparison video's x264 bitstream is not always the same bytes from run to run on a busy
    machine, even with one encoder thread (docs/archives.md); its frames are."""
    import torch

    from streamsr.distributed import run_on_ray
    from streamsr.jobs import CompareOptions
    from streamsr.model import Generator, save_weights
    from streamsr.sinks import EncoderOptions

    torch.manual_seed(2)
    other = save_weights(Generator("srgan-x4-tiny"), tmp_path / "other.safetensors")
    spec = EnhancerSpec.resolve(str(tiny_weights), engine="torch", device="cpu")
    options = JobOptions(compare=CompareOptions(label=spec.label, other=spec.with_weights(str(other))),
                         encoder=EncoderOptions(crf=0))
    frames = {}
    for where in ("local", "ray"):
        folder = tmp_path / where
        folder.mkdir()
        (job,) = plan_jobs(archive / "clip0.mp4", folder / "c.mp4", compare=True)
        run = run_jobs([job], LocalExecutor(Enhancer.build(spec)), options) if where == "local" else run_on_ray([job], spec, options)
        assert [r.status for r in run] == ["ok"], run
        frames[where] = decoded(job.compare)
    assert len(frames["ray"]) == 5 and frames["ray"] == frames["local"]
    with av.open(str(tmp_path / "ray" / "c.compare.mp4")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (3 * 192, 160)
        assert len(c.streams.audio) == 1


def test_a_ray_worker_builds_from_every_weights_form(cluster, tiny_weights):
    """The spec a driver resolves from a shipped name, a str path or a Path builds the same enhancer on a worker."""
    import numpy as np

    from streamsr.frame import Frame
    from streamsr.model import SHIPPED

    @ray.remote(num_cpus=1)
    def enhance_on_worker(spec: EnhancerSpec) -> tuple[str, bytes]:
        enhancer = Enhancer.build(spec)
        image = np.full((8, 10, 3), 128, np.uint8)
        return spec.label, enhancer.enhance(Frame(image=image, seq=0)).image.tobytes()

    path = SHIPPED["srgan-x4-fast"].path
    specs = [EnhancerSpec.resolve(w, engine="torch", device="cpu") for w in ("srgan-x4-fast", str(path), path)]
    results = ray.get([enhance_on_worker.remote(s) for s in specs])
    assert {label for label, _ in results} == {"srgan-x4-fast"} and len({px for _, px in results}) == 1
