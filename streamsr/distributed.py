"""Enhance a folder (or one long recording) on a Ray cluster: the same jobs and bytes as a local run.

The driver plans the jobs and their work units (jobs.plan_units: whole files, or keyframe segments of
long ones), starts one `_Worker` actor per GPU (`num_gpus=1`) or, on a cluster without GPUs, per CPU,
and hands units out as workers free up (ray.util.ActorPool). Each actor builds its Enhancer once and
keeps it for every unit it runs. Inputs and outputs are paths, so every node must see them at the same
place (shared storage, docs/archives.md). Segments are joined on the driver (no re-encode; other streams
copied once). Workers report frames done to a small counter actor the driver reads for its progress bar.

Ray is an optional extra (`pip install 'streamsr[ray]'`); without it `run_on_ray` raises one clear
EngineUnavailableError.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from .errors import EngineUnavailableError, InputError, Interrupted
from .jobs import (
    EnhanceJob, EnhancerSpec, JobOptions, JobResult, UnitResult, WorkUnit, build_other, failed, finish_job,
    interrupted, is_complete, plan_units, remove_segments, run_unit, skipped,
)
from .sinks import partial_path

PROGRESS_EVERY = 8
"""Frames a worker enhances between two progress reports (one tiny remote call each)."""


def _import_ray():
    try:
        import ray
    except ImportError:
        raise EngineUnavailableError(
            "--ray needs Ray, which is not installed: pip install 'streamsr[ray]'") from None
    return ray


def _actors(ray, spec: EnhancerSpec, workers: int | None):
    """Worker actor class and how many to start: one GPU each when the cluster has GPUs, else one CPU."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    per_worker = {"num_gpus": 1, "num_cpus": 1} if gpus and spec.device != "cpu" else {"num_cpus": 1}
    count = workers or (gpus if "num_gpus" in per_worker else max(1, cpus))

    @ray.remote(num_cpus=0)
    class Progress:
        def __init__(self) -> None:
            self.frames = 0

        def add(self, n: int) -> None:
            self.frames += n

        def get(self) -> int:
            return self.frames

    @ray.remote(max_restarts=0, **per_worker)
    class Worker:
        """Builds the Enhancer once (and the comparison's second one on the first unit that needs it: every
        unit of a run has the same options); runs units. Errors come back as values so one bad file does
        not kill the actor (a StreamSRError message is what the summary shows)."""

        def __init__(self, spec: EnhancerSpec, progress) -> None:
            self._enhancer = spec.build()
            self._other = None
            self._progress = progress

        def run(self, unit: WorkUnit, options: JobOptions) -> tuple[WorkUnit, UnitResult | BaseException]:
            pending = [0]

            def on_frame(_frame) -> None:
                pending[0] += 1
                if pending[0] >= PROGRESS_EVERY:
                    self._progress.add.remote(pending[0])
                    pending[0] = 0

            try:
                if unit.job.compare is not None and self._other is None:
                    self._other = build_other(options)
                result = run_unit(unit, self._enhancer, options, other=self._other, on_frame=on_frame)
            except Exception as e:  # noqa: BLE001 - reported per file by the driver
                result = e
            # Waited on, so the driver (which reads the counter after this result) never misses the last frames;
            # calls from one caller to one actor run in order, so the earlier adds are in by then too.
            ray.get(self._progress.add.remote(pending[0]))
            return unit, result

    return Worker, Progress, count


def run_on_ray(
    jobs: Sequence[EnhanceJob],
    spec: EnhancerSpec,
    options: JobOptions,
    *,
    address: str | None = None,
    workers: int | None = None,
    on_frames: Callable[[int], None] | None = None,
    on_result: Callable[[JobResult], None] | None = None,
    on_status: Callable[[str], None] | None = None,
    poll_s: float = 0.5,
) -> list[JobResult]:
    """Run `jobs` on Ray and return their results in job order (as run_jobs does locally: complete outputs
    skipped unless overwrite, a failing file recorded and the rest carried on).

    address: None starts a local Ray instance (or joins the one `ray.init` already made in this process);
    "auto" joins the cluster of this node, "ray://host:port" a remote one. on_frames(n): n more frames
    done, about every `poll_s` s; on_result as each job ends; on_status: one-line messages.

    Ctrl-C / SIGTERM on the driver: the workers are killed, every job not finished gets an "interrupted"
    result (on_result), their segments and partial outputs are removed, and Interrupted is raised; finished
    outputs stay (a re-run skips them)."""
    ray = _import_ray()
    from ray.util import ActorPool
    if not ray.is_initialized():
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False,
                     include_dashboard=False if address is None else None)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise InputError(f"Ray cluster {address or '(local)'} cannot be reached ({e})") from None
    Worker, Progress, count = _actors(ray, spec, workers)
    results: dict[int, JobResult] = {}
    units: dict[int, list[WorkUnit]] = {}
    started: dict[int, float] = {}
    for i, job in enumerate(jobs):
        if not options.overwrite and is_complete(job):
            results[i] = skipped(job)
            continue
        try:
            units[i] = plan_units(job, options)
        except Exception as e:  # noqa: BLE001 - a bad file fails alone
            results[i] = failed(job, e)
    for i in sorted(results):
        if on_result is not None:
            on_result(results[i])
    todo = [(i, u) for i, us in units.items() for u in us]
    if not todo:
        return [results[i] for i in range(len(jobs))]
    count = min(count, len(todo))
    progress = Progress.remote()
    actors = [Worker.remote(spec, progress) for _ in range(count)]
    pool = ActorPool(actors)
    if on_status is not None:
        on_status(f"Ray: {count} worker(s), {len(todo)} unit(s) from {len(units)} file(s)")
    for i, unit in todo:
        started.setdefault(i, time.perf_counter())
        pool.submit(lambda actor, item: actor.run.remote(item, options), unit)
    index_of = {(str(u.job.input), u.segment): i for i, u in todo}
    done: dict[int, list[tuple[int, UnitResult | BaseException]]] = defaultdict(list)
    errors: dict[int, BaseException] = {}
    shown = 0
    stopped = False
    try:
        while pool.has_next():
            try:
                unit, outcome = pool.get_next_unordered(timeout=poll_s)
            except TimeoutError:
                unit = None
            if on_frames is not None:
                frames = ray.get(progress.get.remote())
                if frames > shown:
                    on_frames(frames - shown)
                    shown = frames
            if unit is None:
                continue
            i = index_of[(str(unit.job.input), unit.segment)]
            if isinstance(outcome, BaseException):
                errors.setdefault(i, outcome)
            done[i].append((unit.segment, outcome))
            if len(done[i]) == len(units[i]):
                results[i] = _close_job(jobs[i], units[i], done[i], errors.get(i), options, started[i])
                if on_result is not None:
                    on_result(results[i])
    except KeyboardInterrupt:
        stopped = True
    finally:
        for actor in actors:
            ray.kill(actor)  # first: a killed worker writes nothing more (its partial file is removed below)
        ray.kill(progress)
        for i, job_units in units.items():
            if i not in results:
                remove_segments(job_units)
                for path in filter(None, (jobs[i].output, jobs[i].compare)):
                    partial_path(path).unlink(missing_ok=True)
    if stopped:
        for i in sorted(units):
            if i not in results:
                results[i] = interrupted(jobs[i], seconds=time.perf_counter() - started.get(i, time.perf_counter()))
                if on_result is not None:
                    on_result(results[i])
        raise Interrupted("interrupted; finished outputs kept, unfinished ones removed (re-run to resume)")
    return [results[i] for i in range(len(jobs))]


def _close_job(job: EnhanceJob, units: list[WorkUnit], outcomes: list[tuple[int, UnitResult | BaseException]],
               error: BaseException | None, options: JobOptions, started: float) -> JobResult:
    """All units of `job` are back (in any order): join them in segment order, or record the first error."""
    seconds = time.perf_counter() - started
    if error is not None:
        remove_segments(units)
        return failed(job, error, seconds=seconds)
    results = [r for _, r in sorted(outcomes, key=lambda p: p[0])]
    try:
        return finish_job(job, sorted(units, key=lambda u: u.segment), results, options, seconds=seconds)
    except Exception as e:  # noqa: BLE001 - a failed join fails this file only
        return failed(job, e, seconds=seconds)
