"""Running one work unit (a whole file or one segment) and closing a job from its units' outcomes.

`run_unit` decodes, enhances and encodes one unit into its own file, atomically; `close_job` joins a
segmented job's segments (no re-encode, other streams copied once) or records why the job failed. Both are
what every executor (`run.LocalExecutor`, `distributed.RayExecutor`) and the runner share.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import av

from ..compare import CompareSink
from ..enhancer import Enhancer
from ..errors import StreamSRError
from ..frame import Frame
from ..pipeline import PipelineConfig, PipelineStats, run_pipeline
from ..report import JobResult, done_earlier, write_sidecar
from ..sinks import FileSink, ResizedSink, Sink, join_segments
from ..sources import FileSource, StreamInfo
from .plan import EnhanceJob, JobOptions, WorkUnit, output_size


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitResult:
    """What a unit did. frames_in: frames decoded; repeated: timestamps filled with the previous good frame;
    damaged: frames decoded with errors (kept); decode_errors: packets rejected; moved: frames moved by a
    tick to keep timestamps increasing; audio_tracks / skipped_streams: what was copied / left out;
    lost: frames a truncated input promised and no longer holds (with options.salvage)."""

    frames_in: int
    frames_out: int
    repeated: int
    damaged: int
    decode_errors: int
    moved: int
    audio_tracks: int
    skipped_streams: tuple[str, ...]
    seconds: float
    info: StreamInfo
    stats: PipelineStats
    lost: int = 0


def build_other(options: JobOptions) -> Enhancer | None:
    """The Enhancer of the comparison video's third panel (`options.compare.other`), or None without one."""
    return Enhancer.build(options.compare.other) if options.compare.other is not None else None


def run_unit(unit: WorkUnit, enhancer: Enhancer, options: JobOptions, *, other: Enhancer | None = None,
             on_frame: Callable[[Frame], None] | None = None) -> UnitResult:
    """Decode the unit's frames, enhance each, encode them to `unit.path` at their own timestamps. A whole
    file also gets its audio/subtitle/data streams; a segment is video only (the join adds them once).
    With `job.compare`, also the labelled comparison video there (same timestamps and other streams),
    its third panel (when `options.compare.other`) enhanced by `other`, which must then be given.
    The outputs appear only when complete; on any error or Ctrl-C none is left behind."""
    started = time.perf_counter()
    job = unit.job
    whole = unit.window is None
    if job.compare is not None and options.compare.other is not None and other is None:
        raise ValueError("run_unit: options.compare.other is set, so `other` (its built Enhancer) must be given")
    with FileSource(job.input, strict=options.strict, window=unit.window, index=unit.index,
                    salvage=options.salvage) as source:
        info = source.info
        config = PipelineConfig(live=False)
        # 4x frames alive at once: the queue between enhancer and sinks, one being enhanced, one being
        # written, and a comparison frame of its panels. Refused here, before any output is started.
        panels = len(options.compare.labels) if job.compare is not None else 0
        enhancer.check_fits(info.height, info.width, frames=config.queue_size + 2 + panels)
        s = enhancer.tiler.scale
        width, height = output_size(info.width, info.height, s, options.outscale)
        streams_from = job.input if whole else None
        overwrite = options.overwrite or not whole
        sinks: list[Sink] = []
        try:
            main = FileSink(unit.path, width=width, height=height, rate=info.rate,
                            time_base=info.time_base, options=options.encoder, streams_from=streams_from,
                            overwrite=overwrite)
            sinks.append(main if (width, height) == (s * info.width, s * info.height)
                         else ResizedSink(main, width=width, height=height))
            if job.compare is not None:
                labels = options.compare.labels
                inner = FileSink(job.compare, width=len(labels) * width, height=height,
                                 rate=info.rate, time_base=info.time_base, options=options.encoder,
                                 streams_from=streams_from, overwrite=overwrite)
                sinks.append(CompareSink(inner, width=width, height=height, labels=labels,
                                         others=(other.enhance,) if other is not None else ()))
        except BaseException:
            for sink in sinks:
                sink.abort()
            raise
        stats = run_pipeline(source, enhancer, sinks, config=config, on_frame=on_frame)
        return UnitResult(
            frames_in=stats.frames_out - source.repeated_frames, frames_out=stats.frames_out,
            repeated=source.repeated_frames, damaged=source.damaged_frames, decode_errors=source.decode_errors,
            moved=main.moved_frames, audio_tracks=main.audio_tracks, skipped_streams=tuple(main.skipped_streams),
            seconds=time.perf_counter() - started, info=info, stats=stats, lost=source.lost_frames,
        )


def finish_job(job: EnhanceJob, units: Sequence[WorkUnit], results: Sequence[UnitResult],
               options: JobOptions, *, seconds: float) -> JobResult:
    """Join a segmented job's segments into its output (copying the other streams once) and remove them;
    sum the units' counts into the job's result. `seconds`: the job's wall time so far."""
    audio, skipped = results[0].audio_tracks, results[0].skipped_streams
    if len(units) > 1:
        started = time.perf_counter()
        try:
            join_segments([u.path for u in units], job.output, streams_from=job.input, overwrite=options.overwrite)
            with av.open(str(job.output)) as c:
                audio = len(c.streams.audio)
        finally:
            remove_segments(units)
        seconds += time.perf_counter() - started
    frames_out = sum(r.frames_out for r in results)
    lost = sum(r.lost for r in results)
    result = JobResult(
        input=str(job.input), output=str(job.output), status="salvaged" if lost else "ok", lost_frames=lost,
        frames_in=sum(r.frames_in for r in results), frames_out=frames_out,
        damaged=sum(r.damaged for r in results), repeated=sum(r.repeated for r in results),
        decode_errors=sum(r.decode_errors for r in results), audio_tracks=audio, skipped_streams=skipped,
        segments=len(units), seconds=round(seconds, 3), fps=round(frames_out / max(seconds, 1e-9), 3),
    )
    if options.sidecars:
        write_sidecar(result)
    return result


def close_job(job: EnhanceJob, units: Sequence[WorkUnit], outcomes: Sequence[UnitResult | BaseException],
              options: JobOptions, *, seconds: float) -> tuple[JobResult, BaseException | None]:
    """The result of `job` once every unit is back (`outcomes[k]` is units[k]'s): its segments joined
    (`finish_job`), or, when a unit or the join failed, "failed" with the first error, which is returned
    too (the runner decides whether it ends the run). Segments are removed either way."""
    error = next((o for o in outcomes if isinstance(o, BaseException)), None)
    if error is None:
        try:
            return finish_job(job, units, outcomes, options, seconds=seconds), None  # type: ignore[arg-type]
        except Exception as e:  # noqa: BLE001 - a failed join fails this file only
            error = e
    remove_segments(units)
    return failed(job, error, seconds=seconds), error


def remove_segments(units: Sequence[WorkUnit]) -> None:
    """Delete the segment files of a segmented job (finished or not)."""
    for unit in units:
        if unit.window is not None:
            unit.path.unlink(missing_ok=True)


def failed(job: EnhanceJob, error: BaseException, *, seconds: float = 0.0) -> JobResult:
    """The result of a job that failed: its one-line reason (StreamSRError's message, else type and text)."""
    reason = str(error) if isinstance(error, StreamSRError) else f"{type(error).__name__}: {error}"
    return JobResult(input=str(job.input), output=str(job.output), status="failed", seconds=round(seconds, 3),
                     error=" ".join(reason.split()) or type(error).__name__)


def interrupted(job: EnhanceJob, *, seconds: float = 0.0) -> JobResult:
    """The result of a job the run stopped in the middle of (Ctrl-C, SIGTERM): no output was left."""
    return JobResult(input=str(job.input), output=str(job.output), status="interrupted", seconds=round(seconds, 3),
                     error="interrupted; partial output removed")


def skipped(job: EnhanceJob) -> JobResult:
    """The result of a job whose output is complete already: the figures of the run that wrote it, from its
    sidecar (report.done_earlier)."""
    return done_earlier(job.input, job.output)
