"""Planning archive jobs (streamsr/jobs/plan.py), before anything runs: a folder's outputs and their
refusals, outputs too large found from the input headers. (Running jobs: test_archive.py, test_report.py,
test_ray.py.)"""

import pytest

from streamsr.errors import InputError, OutputError
from streamsr.jobs import JobOptions, oversized_outputs, plan_jobs
from streamsr.testing import make_clip


def test_plan_jobs_for_a_folder_and_errors(tmp_path, clip):
    folder = tmp_path / "in"
    folder.mkdir()
    make_clip(folder / "a.mp4")
    make_clip(folder / "b.mkv")
    (folder / "notes.txt").write_text("x")
    jobs = plan_jobs(folder, tmp_path / "out", compare=True)
    assert [j.output.name for j in jobs] == ["a.mp4", "b.mp4"]
    assert jobs[0].compare.name == "a.compare.mp4"
    with pytest.raises(InputError, match="does not exist"):
        plan_jobs(tmp_path / "missing.mp4", tmp_path / "o.mp4")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no video files"):
        plan_jobs(empty, tmp_path / "o")
    (tmp_path / "exists.mp4").write_bytes(b"x")
    with pytest.raises(OutputError, match="already exists"):
        plan_jobs(clip, tmp_path / "exists.mp4")
    with pytest.raises(OutputError, match="is the input file"):
        plan_jobs(clip, clip, overwrite=True)


def test_outputs_beyond_4k_are_found_from_the_headers(tmp_path):
    (job,) = plan_jobs(make_clip(tmp_path / "c.mp4", frames=1), tmp_path / "o.mp4")
    assert oversized_outputs([job], JobOptions(), limit=(160, 160)) == [(job, (192, 160), (48, 40))]
    assert oversized_outputs([job], JobOptions(outscale=3), limit=(160, 160)) == []
    assert oversized_outputs([job], JobOptions(outscale=2.5), limit=(100, 100)) == [(job, (120, 100), (48, 40))]
