"""The file-job runner: `run_jobs(jobs, executor, options)`, the same for a local run and a Ray cluster.

The runner owns everything but the enhancing: it skips complete outputs, plans each job's units, hands them to
an executor, closes each job when its last unit is back (segments joined, or the first error recorded), reports
results, and on Ctrl-C / SIGTERM removes what is unfinished. An executor only runs units: `LocalExecutor` here,
one after another with one Enhancer; `distributed.RayExecutor` on Ray actors. Outputs appear only when
finished, so a re-run skips what an interrupted run completed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from ..enhancer import Enhancer
from ..errors import Interrupted
from ..frame import Frame
from ..report import JobResult
from ..sinks import partial_path
from .plan import EnhanceJob, JobOptions, WorkUnit, is_complete, plan_units
from .unit import UnitResult, build_other, close_job, failed, interrupted, remove_segments, run_unit, skipped

Outcome = tuple[WorkUnit, "UnitResult | BaseException"]


class Executor(Protocol):
    """Runs work units for `run_jobs`.

    sequential: True when units run as they are collected, one job at a time (the runner then plans the next
    job only after the previous one closed, and a run without keep_going stops at the first failure);
    False when units run concurrently (every job is planned and submitted before collecting).
    """

    sequential: bool

    def prepare(self, jobs: Sequence[EnhanceJob], options: JobOptions) -> None:
        """Before any unit: what the run needs once (a comparison panel's second Enhancer, a cluster)."""
        ...

    def submit(self, unit: WorkUnit) -> None:
        ...

    def outcomes(self) -> Iterator[Outcome]:
        """Every submitted unit's outcome, as each finishes (any order): a UnitResult, or the exception that
        failed it. Ctrl-C and Interrupted propagate out of it."""
        ...

    def close(self) -> None:
        """Stop every worker (idempotent): a stopped worker writes nothing more."""
        ...


class LocalExecutor:
    """Runs units here, in submission order, with one Enhancer (and the comparison panel's second one,
    built in `prepare` when a job asks for it, so its errors are the run's, not one file's). A unit whose
    job already failed is not run (it gets the same error). on_frame: each enhanced frame (progress)."""

    sequential = True

    def __init__(self, enhancer: Enhancer, *, other: Enhancer | None = None,
                 on_frame: Callable[[Frame], None] | None = None) -> None:
        self.enhancer = enhancer
        self.other = other
        self.on_frame = on_frame
        self._options: JobOptions | None = None
        self._queue: deque[WorkUnit] = deque()

    def prepare(self, jobs: Sequence[EnhanceJob], options: JobOptions) -> None:
        self._options = options
        if self.other is None and any(j.compare is not None for j in jobs):
            self.other = build_other(options)

    def submit(self, unit: WorkUnit) -> None:
        self._queue.append(unit)

    def outcomes(self) -> Iterator[Outcome]:
        if self._options is None:
            raise RuntimeError("LocalExecutor.prepare must be called before outcomes()")
        errors: dict[EnhanceJob, BaseException] = {}
        while self._queue:
            unit = self._queue.popleft()
            outcome: UnitResult | BaseException
            if unit.job in errors:
                outcome = errors[unit.job]
            else:
                try:
                    outcome = run_unit(unit, self.enhancer, self._options, other=self.other, on_frame=self.on_frame)
                except Interrupted:  # SIGTERM / SIGINT: stops the run, not one file
                    raise
                except Exception as e:  # noqa: BLE001 - one bad file must not stop an archive run
                    outcome = errors[unit.job] = e
            yield unit, outcome

    def close(self) -> None:
        self._queue.clear()


def run_jobs(jobs: Sequence[EnhanceJob], executor: Executor, options: JobOptions, *, keep_going: bool = True,
             on_units: Callable[[EnhanceJob, list[WorkUnit]], None] | None = None,
             on_result: Callable[[JobResult], None] | None = None) -> list[JobResult]:
    """Run `jobs` on `executor`; their results, in job order.

    Complete outputs are skipped (status "skipped", the figures of the run that wrote them) unless
    `options.overwrite`. With `keep_going`, a job that fails (any error but Ctrl-C) becomes a "failed" result
    and the others go on; without it the error propagates (after on_result has seen the failed result).
    on_units(job, units) once a job is planned; on_result(result) as each job ends.
    Ctrl-C / SIGTERM (KeyboardInterrupt / Interrupted): the executor is stopped, every started job that has
    not ended gets an "interrupted" result (on_result) and its segments and partial outputs are removed,
    then the stop propagates; finished outputs stay.
    """
    results: dict[int, JobResult] = {}
    units: dict[int, list[WorkUnit]] = {}
    outcomes: dict[int, dict[int, UnitResult | BaseException]] = {}
    started: dict[int, float] = {}
    index: dict[tuple[str, int], int] = {}

    def record(i: int, result: JobResult) -> None:
        results[i] = result
        if on_result is not None:
            on_result(result)

    def collect() -> None:
        for unit, outcome in executor.outcomes():
            i = index[(str(unit.job.input), unit.segment)]
            outcomes[i][unit.segment] = outcome
            if len(outcomes[i]) == len(units[i]):
                ordered = sorted(units[i], key=lambda u: u.segment)
                result, error = close_job(jobs[i], ordered, [outcomes[i][u.segment] for u in ordered], options,
                                          seconds=time.perf_counter() - started[i])
                record(i, result)
                if error is not None and not keep_going:
                    raise error

    todo = {i for i, j in enumerate(jobs) if options.overwrite or not keep_going or not is_complete(j)}
    try:
        if todo:
            executor.prepare([jobs[i] for i in sorted(todo)], options)
        for i, job in enumerate(jobs):
            if i not in todo:
                record(i, skipped(job))
                continue
            started[i] = time.perf_counter()
            try:
                units[i] = plan_units(job, options)
            except Exception as e:  # noqa: BLE001 - a file that cannot be planned fails alone
                record(i, failed(job, e, seconds=time.perf_counter() - started[i]))
                if not keep_going:
                    raise
                continue
            outcomes[i] = {}
            if on_units is not None:
                on_units(job, units[i])
            for unit in units[i]:
                index[(str(job.input), unit.segment)] = i
                executor.submit(unit)
            if executor.sequential:
                collect()
        collect()
    except (KeyboardInterrupt, Interrupted):
        executor.close()  # first: a stopped worker writes nothing more (its partial files are removed below)
        for i in sorted(units):
            if i not in results:
                remove_segments(units[i])
                for path in filter(None, (jobs[i].output, jobs[i].compare)):
                    partial_path(path).unlink(missing_ok=True)
                record(i, interrupted(jobs[i], seconds=time.perf_counter() - started[i]))
        raise
    finally:
        executor.close()
    return [results[i] for i in range(len(jobs))]
