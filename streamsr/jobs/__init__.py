"""File jobs: enhance recorded videos (a file or a folder of them) into 4x videos, losslessly and atomically.

`plan.py` turns INPUT/OUTPUT into jobs and each job into work units (whole files, or keyframe segments of
long ones); `unit.py` runs one unit and closes a job from its units' outcomes; `run.py` is the runner,
`run_jobs(jobs, executor, options)`, with the `LocalExecutor` (one Enhancer, here); `streamsr.distributed`
adds the Ray executor. A failing file is recorded and the others go on; outputs appear only when finished,
so a re-run skips them and an interrupted archive run resumes where it stopped.
"""

from .plan import (
    FOUR_K, CompareOptions, EnhanceJob, JobOptions, WorkUnit, compare_path_for, is_complete, make_output_folders,
    output_size, oversized_outputs, plan_jobs, plan_units, planned_frames, segment_path, skipped_subfolders,
)
from .run import Executor, LocalExecutor, run_jobs
from .unit import (
    JobResult, UnitResult, build_other, close_job, failed, finish_job, interrupted, remove_segments, run_unit, skipped,
)

__all__ = [
    "FOUR_K", "CompareOptions", "EnhanceJob", "Executor", "JobOptions", "JobResult", "LocalExecutor", "UnitResult",
    "WorkUnit", "build_other", "close_job", "compare_path_for", "failed", "finish_job", "interrupted", "is_complete",
    "make_output_folders", "output_size", "oversized_outputs", "plan_jobs", "plan_units", "planned_frames",
    "remove_segments", "run_jobs", "run_unit", "segment_path", "skipped", "skipped_subfolders",
]
