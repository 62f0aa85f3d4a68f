"""Enhance a folder (or one long recording) on a Ray cluster: the same jobs and bytes as a local run.

`RayExecutor` is the executor `jobs.run_jobs` runs units on: the runner plans the jobs and their work units
(whole files, or keyframe segments of long ones) on the driver; the executor starts one `_Worker` actor per
GPU (`num_gpus=1`) or, on a cluster without GPUs, per CPU, and hands units out as workers free up
(ray.util.ActorPool). Each actor builds its Enhancer once and
keeps it for every unit it runs. Inputs and outputs are paths, so every node must see them at the same
place (shared storage, docs/archives.md). Segments are joined on the driver (no re-encode; other streams
copied once). Workers report frames done to a small counter actor the driver reads for its progress bar.

Ray is an optional extra (`pip install 'streamsr[ray]'`); without it `run_on_ray` raises one clear
EngineUnavailableError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from .errors import EngineUnavailableError, InputError
from .jobs import EnhanceJob, JobOptions, JobResult, UnitResult, WorkUnit, build_other, run_jobs, run_unit
from .spec import EnhancerSpec

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
            from .enhancer import Enhancer  # on the worker: the driver needs no torch to plan

            self._enhancer = Enhancer.build(spec)
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
            try:
                ray.get(self._progress.add.remote(pending[0]))
            except ray.exceptions.RayActorError:  # the progress counter is lost: the unit's result is not
                pass
            return unit, result

    return Worker, Progress, count


class RayExecutor:
    """Runs units on Ray actors for `jobs.run_jobs`: one `_Worker` per GPU (else per CPU, or `workers`),
    each building its Enhancer from `spec` once; units handed out as workers free up (ActorPool).

    address: None starts a local Ray instance (or joins the one `ray.init` already made in this process);
    "auto" joins the cluster of this node, "ray://host:port" a remote one. on_frames(n): n more frames
    done, about every `poll_s` s; on_status: one-line messages. Raises EngineUnavailableError without Ray,
    InputError when the cluster cannot be reached."""

    sequential = False

    def __init__(self, spec: EnhancerSpec, *, address: str | None = None, workers: int | None = None,
                 on_frames: Callable[[int], None] | None = None, on_status: Callable[[str], None] | None = None,
                 poll_s: float = 0.5) -> None:
        self.spec, self.address, self.workers = spec, address, workers
        self.on_frames, self.on_status, self.poll_s = on_frames, on_status, poll_s
        self._units: list[WorkUnit] = []
        self._options: JobOptions | None = None
        self._actors: list = []
        self._progress = None
        self._ray = _import_ray()

    def prepare(self, jobs: Sequence[EnhanceJob], options: JobOptions) -> None:
        self._options = options
        if not self._ray.is_initialized():
            try:
                self._ray.init(address=self.address, logging_level="ERROR", log_to_driver=False,
                               include_dashboard=False if self.address is None else None)
            except (ConnectionError, ValueError, RuntimeError) as e:
                raise InputError(f"Ray cluster {self.address or '(local)'} cannot be reached ({e})") from None

    def submit(self, unit: WorkUnit) -> None:
        self._units.append(unit)

    def outcomes(self) -> Iterator[tuple[WorkUnit, UnitResult | BaseException]]:
        if not self._units:
            return
        ray = self._ray
        from ray.util import ActorPool

        Worker, Progress, count = _actors(ray, self.spec, self.workers)
        count = min(count, len(self._units))
        self._progress = Progress.remote()
        self._actors = [Worker.remote(self.spec, self._progress) for _ in range(count)]
        pool = ActorPool(self._actors)
        if self.on_status is not None:
            files = len({u.job.input for u in self._units})
            self.on_status(f"Ray: {count} worker(s), {len(self._units)} unit(s) from {files} file(s)")
        options = self._options
        for unit in self._units:
            pool.submit(lambda actor, item: actor.run.remote(item, options), unit)
        self._units = []
        shown = 0
        while pool.has_next():
            try:
                done = pool.get_next_unordered(timeout=self.poll_s)
            except TimeoutError:
                done = None
            if self.on_frames is not None:
                try:
                    frames = ray.get(self._progress.get.remote())
                except ray.exceptions.RayActorError:  # progress is lost, not the run: the bar stops moving
                    frames, self.on_frames = shown, None
                    if self.on_status is not None:
                        self.on_status("warning: Ray's progress counter died; the run goes on without a progress bar")
                if frames > shown:
                    self.on_frames(frames - shown)
                    shown = frames
            if done is not None:
                yield done

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        if self._progress is not None:
            self._ray.kill(self._progress)
        self._actors, self._progress, self._units = [], None, []


def run_on_ray(jobs: Sequence[EnhanceJob], spec: EnhancerSpec, options: JobOptions, *, address: str | None = None,
               workers: int | None = None, on_frames: Callable[[int], None] | None = None,
               on_result: Callable[[JobResult], None] | None = None, on_status: Callable[[str], None] | None = None,
               poll_s: float = 0.5) -> list[JobResult]:
    """`run_jobs` on a RayExecutor (see both): every job kept going past a failing file."""
    executor = RayExecutor(spec, address=address, workers=workers, on_frames=on_frames, on_status=on_status,
                           poll_s=poll_s)
    return run_jobs(jobs, executor, options, on_result=on_result)
