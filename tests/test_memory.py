"""Memory stays bounded at any frame size: a large frame is enhanced under a real address-space cap
(`resource.setrlimit` in a subprocess) sized by the Enhancer's own formula, and a frame that cannot fit is
refused in one line before any work."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import enhance_file
from streamsr.enhancer import Enhancer
from streamsr.errors import InputError
from streamsr.frame import Frame
from streamsr.spec import EnhancerSpec

CAPPED = r"""
import json, resource, sys
import numpy as np
from streamsr.enhancer import Enhancer
from streamsr.errors import InputError
from streamsr.frame import Frame
from streamsr.spec import EnhancerSpec

weights, height, width, huge = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
e = Enhancer.build(EnhancerSpec.resolve(weights, engine="torch", device="cpu"))  # default tile and batch
e.enhance(Frame(image=np.zeros((160, 160, 3), np.uint8), seq=0))  # threads and first-run allocations exist

def status(key):
    return int(open("/proc/self/status").read().split(key + ":")[1].split()[0]) * 1024

image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
need = e.memory_needed(height, width)
slack = 64 * 2**20  # allocator rounding and the Python objects of one call
cap = status("VmSize") + need + slack
resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
rss_before = status("VmRSS")
out = e.enhance(Frame(image=image, seq=0)).image
peak = status("VmHWM")  # not ru_maxrss: Linux carries it over from the parent (pytest) across fork + exec
rss_kept = status("VmRSS")
try:
    e.enhance(Frame(image=np.zeros((huge, huge, 3), np.uint8), seq=0))
    refused = None
except InputError as err:
    refused = str(err)
print(json.dumps({"shape": list(out.shape), "need": need, "working_set": e.working_set_bytes(),
                  "output": out.nbytes, "growth": peak - rss_before, "refused": refused,
                  "rss_after_refusal": status("VmRSS") - rss_kept}))
"""


def test_a_large_frame_fits_under_a_memory_cap_of_the_stated_formula(tmp_path, tiny_weights):
    proc = subprocess.run([sys.executable, "-c", CAPPED, str(tiny_weights), "720", "1280", "4000"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["shape"] == [2880, 5120, 3]
    # peak growth: the 44 MiB output plus at most the stated working set, not the ~1 GB of whole-frame tiles
    assert r["growth"] <= r["output"] + r["working_set"], r
    assert r["need"] < 400 * 2**20
    # 4000x4000 needs 768 MB for its output: refused in one line, before anything was allocated
    assert r["refused"] is not None and "\n" not in r["refused"], r
    assert r["refused"].startswith("a 4000x4000 frame is too large for this machine: its 16000x16000 output")
    assert r["rss_after_refusal"] < 16 * 2**20


def test_batched_tiles_give_the_same_bytes_as_the_whole_frame_path(tiny_weights):
    """The batched, preallocated path is the old whole-frame split -> engine -> stitch, reordered: same bytes."""
    e = Enhancer.build(EnhancerSpec.resolve(tiny_weights, engine="torch", device="cpu", batch=5))
    for h, w in ((40, 48), (97, 131), (7, 300)):
        image = np.random.default_rng(h).integers(0, 256, (h, w, 3), dtype=np.uint8)
        got = e.enhance(Frame(image=image, seq=0)).image
        x = torch.from_numpy(image).permute(2, 0, 1).float().div(255)
        tiles, grid = e.tiler.split(x)
        sr = torch.cat([e.engine.run(tiles[i : i + 5]) for i in range(0, grid.count, 5)])
        whole = e.tiler.stitch(sr, grid).float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0)
        assert np.array_equal(got, whole.numpy()), (h, w)


def test_a_file_job_too_large_for_the_machine_is_refused_before_any_output(tmp_path, tiny_weights, monkeypatch):
    from streamsr import enhancer as enhancer_module
    from streamsr.jobs import EnhanceJob

    from streamsr.testing import make_clip

    clip = make_clip(tmp_path / "c.mp4", frames=2)
    e = Enhancer.build(EnhancerSpec.resolve(tiny_weights, engine="torch", device="cpu"))
    monkeypatch.setattr(enhancer_module, "available_memory", lambda device: 50 * 2**20)  # a 50 MiB machine
    with pytest.raises(InputError, match=r"a 48x40 frame is too large for this machine"):
        enhance_file(EnhanceJob(input=clip, output=tmp_path / "out.mp4"), e)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4"]
