"""File jobs: enhance recorded videos (a file or a folder of them) into 4x videos, losslessly and atomically.

A job is one input -> one output. Long inputs may be cut at keyframes into segments (`WorkUnit`s) that are
enhanced separately, then joined without re-encoding (`finish_job`); that cut depends only on the file
and the options, so a local run and a distributed one (distributed.py) write the same bytes. `run_jobs`
runs a list of jobs here, one after another: a failing file is recorded and the others go on; outputs
that already exist are complete (every output is renamed into place only when finished), so a re-run
skips them and an interrupted archive run resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av

from .compare import BICUBIC_LABEL, MODEL_LABEL, CompareSink
from .enhancer import Enhancer
from .errors import InputError, Interrupted, OutputError, StreamSRError
from .frame import Frame
from .model import resolve_weights
from .pipeline import PipelineConfig, PipelineStats, run_pipeline
from .report import JobResult, done_earlier, write_sidecar
from .sinks import EncoderOptions, FileSink, ResizedSink, Sink, check_output_path, join_segments, scaled_size
from .sources import VIDEO_SUFFIXES, FileSource, PacketIndex, StreamInfo, index_packets


@dataclass(frozen=True, slots=True, kw_only=True)
class EnhanceJob:
    """One input file -> one 4x output file (and optionally a labelled side-by-side comparison file)."""

    input: Path
    output: Path
    compare: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EnhancerSpec:
    """How to build an Enhancer, as plain values, so a worker process or host can build its own."""

    engine: str = "auto"
    device: str = "auto"
    precision: str = "auto"
    batch: int | None = None  # None: tiling.default_batch of the window
    tile: int | None = None  # None: the engine's default tile (tiling.default_tile)
    halo: int | None = None  # None: tiling.DEFAULT_HALO
    weights: str | None = None
    preset: str | None = None

    def build(self) -> Enhancer:
        """The Enhancer this spec describes (engine selected and built, weights loaded)."""
        return Enhancer.build(engine=self.engine, device=self.device, precision=self.precision, batch=self.batch,
                              tile=self.tile, halo=self.halo, weights=self.weights, preset=self.preset)

    @property
    def label(self) -> str:
        """What a comparison panel of this model is captioned: see `weights_label`."""
        return weights_label(self.weights)


def weights_label(weights: str | Path | None) -> str:
    """The name a viewer knows a model by: the shipped weights name (`srgan-x4-lite` for the default, None),
    else the weights file's stem. WeightsError (one line, listing the shipped names) for a bare word that
    is neither a shipped name nor a file."""
    return resolve_weights(weights).stem


@dataclass(frozen=True, slots=True, kw_only=True)
class CompareOptions:
    """What a job's comparison video (`EnhanceJob.compare`) shows: `bicubic | label` (the main model's
    panel, captioned `label`), and with `other` a third panel enhanced by a second generator built from
    that spec (captioned `other.label`); run_unit must then be given that Enhancer (`build_other`)."""

    label: str = MODEL_LABEL
    other: EnhancerSpec | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        """One caption per panel, left to right."""
        return (BICUBIC_LABEL, self.label) + ((self.other.label,) if self.other is not None else ())


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOptions:
    """encoder: video encoder settings; overwrite: redo outputs that exist (else a folder job skips them);
    strict: any damaged, undecodable or missing frame fails the file; segment_seconds: cut inputs longer
    than twice this into segments of at least this many seconds, at keyframes (None: never); compare: the
    panels of the jobs' comparison videos; sidecars: record each finished job's result beside its output
    (report.sidecar_path), so a resumed folder run reports the figures of the run that wrote it;
    outscale: output size as a multiple of the input's, 0 < outscale <= the model's scale (None: the
    model's 4x), the 4x frames resized with an antialiased filter (sinks.ResizedSink), each side rounded
    to an even number (sinks.scaled_size); salvage: a truncated input (fewer frames than its header
    promises) is enhanced from the frames it still holds, status "salvaged", instead of failing."""

    encoder: EncoderOptions = EncoderOptions()
    overwrite: bool = False
    strict: bool = False
    segment_seconds: float | None = None
    compare: CompareOptions = CompareOptions()
    sidecars: bool = False
    outscale: float | None = None
    salvage: bool = False

    def __post_init__(self) -> None:
        if self.outscale is not None and not 0 < self.outscale <= 4:
            raise ValueError(f"JobOptions.outscale must be > 0 and <= 4, got {self.outscale}")
        if self.segment_seconds is not None and self.segment_seconds <= 0:
            raise ValueError(f"JobOptions.segment_seconds must be > 0 s or None, got {self.segment_seconds}")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkUnit:
    """What one worker does: enhance `job.input`, or the frames `window` = [start_pts, end_pts) of it (a
    segment, number `segment` of `segments`), into `path`. frames: expected output frames (progress)."""

    job: EnhanceJob
    path: Path
    frames: int
    segment: int = 0
    segments: int = 1
    window: tuple[int, int] | None = None
    index: PacketIndex | None = None


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


@dataclass(frozen=True, slots=True, kw_only=True)
class EnhanceReport:
    """What `enhance_video` did: frames written, corrupt frames repeated to keep sync, wall time (s)."""

    job: EnhanceJob
    info: StreamInfo
    frames: int
    repeated_frames: int
    damaged_frames: int
    decode_errors: int
    seconds: float
    stats: PipelineStats


FOUR_K = (3840, 2160)
"""UHD 4K: outputs beyond it are worth a note (players, displays and H.264 levels struggle past it)."""


def output_size(width: int, height: int, scale: int, outscale: float | None) -> tuple[int, int]:
    """The (width, height) of the output of a `width` x `height` input: `scale` times it, or with
    `outscale` that multiple, each side rounded to an even number (sinks.scaled_size)."""
    return (scale * width, scale * height) if outscale is None else scaled_size(width, height, outscale)


def oversized_outputs(jobs: Sequence[EnhanceJob], options: JobOptions, *, scale: int = 4,
                      limit: tuple[int, int] = FOUR_K) -> list[tuple[EnhanceJob, tuple[int, int], tuple[int, int]]]:
    """(job, output size, input size) of each job whose output would be larger than `limit` (4K) in either
    dimension, from the input headers (inputs that cannot be read are left to fail in the run)."""
    found = []
    for job in jobs:
        try:
            with av.open(str(job.input)) as c:
                ctx = c.streams.video[0].codec_context
                source = (ctx.width, ctx.height)
        except (av.error.FFmpegError, IndexError, OSError):
            continue
        size = output_size(*source, scale, options.outscale)
        if size[0] > limit[0] or size[1] > limit[1]:
            found.append((job, size, source))
    return found


def compare_path_for(output: Path) -> Path:
    """out.mp4 -> out.compare.mp4: where `--compare` writes the labelled (bicubic | model [| other]) video."""
    return output.with_name(f"{output.stem}.compare{output.suffix}")


def segment_path(output: Path, segment: int) -> Path:
    """Where segment `segment` of `output` is kept until the join: a hidden sibling in the same container."""
    return output.with_name(f".{output.stem}.seg{segment:04d}{output.suffix}")


IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"})
"""Output names that mean a picture, not a video: refused with a message that says what to do."""


def _videos(folder: Path, *, recursive: bool, exclude: Path | None) -> list[Path]:
    """Video files in `folder` (hidden names left out: partial outputs, sidecars), sorted by path; with
    `recursive` also in its subfolders, except `exclude` (an output folder inside the input)."""
    found = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
            found.append(p)
        elif recursive and p.is_dir() and (exclude is None or p.resolve() != exclude):
            found.extend(_videos(p, recursive=True, exclude=exclude))
    return found


def skipped_subfolders(input: Path, output: Path | None = None) -> list[Path]:
    """The subfolders of the folder `input` that hold videos (at any depth) which a run without `recursive`
    leaves out (the output folder, when it is inside the input, is not one of them)."""
    exclude = output.resolve() if output is not None else None
    return [p for p in sorted(input.iterdir())
            if p.is_dir() and not p.name.startswith(".") and (exclude is None or p.resolve() != exclude)
            and _videos(p, recursive=True, exclude=exclude)]


def plan_jobs(input: Path, output: Path, *, compare: bool = False, overwrite: bool = False,
              suffix: str = ".mp4", recursive: bool = False) -> list[EnhanceJob]:
    """Expand INPUT/OUTPUT into jobs: a file -> that output file; a folder -> every video in it (sorted) ->
    OUTPUT folder/<stem><suffix>; with `recursive` also the videos of its subfolders, mirrored under OUTPUT
    (in/patient1/a.mp4 -> OUTPUT/patient1/a.mp4; `make_output_folders` creates them). Checks inputs exist
    and outputs can be written before any work starts: InputError/OutputError with one line otherwise
    (also for an image name as output, and for two inputs that would write one output). A single file's
    existing output is an error without `overwrite`; a folder's existing outputs are complete ones
    `run_jobs` skips."""
    if not input.exists():
        raise InputError(f"input {input} does not exist")
    if input.is_dir():
        exclude = output.resolve()
        files = _videos(input, recursive=recursive, exclude=exclude)
        if not files:
            raise InputError(f"input folder {input} holds no video files ({', '.join(sorted(VIDEO_SUFFIXES))})"
                             + ("" if recursive or not skipped_subfolders(input, output) else
                                "; its subfolders do (add --recursive)"))
        if output.exists() and not output.is_dir():
            raise OutputError(f"output {output} must be a folder when the input {input} is a folder")
        if output.exists():
            check_output_path(output / ".streamsr-check", overwrite=True)
        pairs = [(f, output / f.relative_to(input).parent / f"{f.stem}{suffix}") for f in files]
        if suffix.lower() in IMAGE_SUFFIXES:
            raise OutputError(f"--suffix {suffix} is an image format; streamsr enhance writes videos: use .mp4, "
                              ".mkv or .mov (to enhance single images, call streamsr.upscale from Python)")
    else:
        pairs = [(input, output)]
        if output.suffix.lower() in IMAGE_SUFFIXES:
            raise OutputError(f"output {output} is an image name; streamsr enhance writes videos: give a video "
                              f"name such as {output.with_suffix('.mp4')} (to enhance single images, call "
                              "streamsr.upscale from Python)")
    seen: dict[Path, Path] = {}
    for i, o in pairs:
        if o in seen:
            raise OutputError(f"inputs {seen[o]} and {i} would both be written to {o}; rename one of them")
        seen[o] = i
    jobs = [EnhanceJob(input=i, output=o, compare=compare_path_for(o) if compare else None) for i, o in pairs]
    for job in jobs:
        if job.output.resolve() == job.input.resolve():
            raise OutputError(f"output {job.output} is the input file; choose another name")
        if not input.is_dir():
            for path in filter(None, (job.output, job.compare)):
                check_output_path(path, overwrite=overwrite)
    return jobs


def make_output_folders(jobs: Sequence[EnhanceJob]) -> None:
    """Create the folders a folder run's outputs go to (OutputError, one line, when one cannot be made)."""
    for folder in sorted({j.output.parent for j in jobs}):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"output folder {folder} cannot be created ({e.strerror or e})") from None


def is_complete(job: EnhanceJob) -> bool:
    """True when every output of `job` exists: they appear only when finished, so existing means complete."""
    return all(p.is_file() for p in filter(None, (job.output, job.compare)))


def _estimated_frames(path: Path) -> tuple[int, float | None]:
    """(frames from the header, or duration x rate; 0 if unreadable) and the duration (s), without decoding."""
    try:
        with av.open(str(path)) as c:
            v = c.streams.video[0]
            duration = c.duration / 1e6 if c.duration else None
            rate = v.average_rate or v.guessed_rate or 25
            return int(v.frames or round((duration or 0) * float(rate))), duration
    except (av.error.FFmpegError, IndexError, OSError):
        return 0, None


def planned_frames(jobs: Sequence[EnhanceJob], options: JobOptions) -> int:
    """Frames the jobs that will run are expected to write (header counts; the progress bar's total)."""
    return sum(_estimated_frames(j.input)[0] for j in jobs if options.overwrite or not is_complete(j))


def plan_units(job: EnhanceJob, options: JobOptions) -> list[WorkUnit]:
    """The work units of `job`: one for the whole file, or, when the input lasts more than twice
    `options.segment_seconds` (and no comparison video is asked for), one per segment: consecutive runs of
    frames from one keyframe to the first keyframe at least `segment_seconds` later (a last piece shorter
    than half that joins the one before). Cuts come from the packet index only, so they are the same on
    every machine."""
    frames, duration = _estimated_frames(job.input)
    whole = [WorkUnit(job=job, path=job.output, frames=frames)]
    seg_s = options.segment_seconds
    if seg_s is None or job.compare is not None or duration is None or duration < 2 * seg_s:
        return whole
    index = index_packets(job.input)
    if index is None or not index.pts:
        return whole
    with av.open(str(job.input)) as c:
        tb = c.streams.video[0].time_base
    step = round(seg_s / tb)
    starts = [index.pts[0]]
    for k in index.keyframes:
        if k >= starts[-1] + step:
            starts.append(k)
    if len(starts) > 1 and index.pts[-1] - starts[-1] < step // 2:
        starts.pop()
    if len(starts) == 1:
        return whole
    ends = starts[1:] + [index.pts[-1] + 1]
    units = []
    for i, (lo, hi) in enumerate(zip(starts, ends)):
        n = sum(1 for p in index.pts if lo <= p < hi)
        units.append(WorkUnit(job=job, path=segment_path(job.output, i), frames=n, segment=i,
                              segments=len(starts), window=(lo, hi), index=index))
    return units


def build_other(options: JobOptions) -> Enhancer | None:
    """The Enhancer of the comparison video's third panel (`options.compare.other`), or None without one."""
    return options.compare.other.build() if options.compare.other is not None else None


def run_unit(unit: WorkUnit, enhancer: Enhancer, options: JobOptions, *, other: Enhancer | None = None,
             on_start: Callable[[StreamInfo], None] | None = None,
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
        if on_start is not None:
            on_start(info)
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


def run_jobs(jobs: Sequence[EnhanceJob], enhancer: Enhancer, options: JobOptions, *,
             other: Enhancer | None = None,
             keep_going: bool = True,
             on_units: Callable[[EnhanceJob, list[WorkUnit]], None] | None = None,
             on_frame: Callable[[Frame], None] | None = None,
             on_result: Callable[[JobResult], None] | None = None) -> list[JobResult]:
    """Run `jobs` here, one after another. Complete outputs are skipped unless `options.overwrite`. With
    `keep_going`, a job that fails (any error but Ctrl-C) becomes a "failed" result and the next one
    starts; without it the error propagates (after on_result has seen the failed result). on_units(job,
    units) before a job's work starts; on_result(result) as each job ends, also for the job a Ctrl-C or
    SIGTERM stops (status "interrupted", then the stop propagates), so a report can record it.
    other: the comparison videos' third-panel Enhancer; when `options.compare.other` asks for one and none
    is given, it is built once, before the first job (its errors are the run's, not one file's)."""
    results: list[JobResult] = []
    todo = {j for j in jobs if options.overwrite or not keep_going or not is_complete(j)}
    if other is None and any(j.compare is not None for j in todo):
        other = build_other(options)
    for job in jobs:
        if job not in todo:
            result = skipped(job)
        else:
            result, error = _run_job(job, enhancer, options, other=other, on_units=on_units, on_frame=on_frame)
            if error is not None and (not keep_going or result.status == "interrupted"):
                if on_result is not None:
                    on_result(result)
                raise error
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _run_job(job, enhancer, options, *, other, on_units, on_frame) -> tuple[JobResult, BaseException | None]:
    """(the job's result, and the error that ended it if any: the caller decides whether it propagates)."""
    started = time.perf_counter()
    units: list[WorkUnit] = []
    try:
        units = plan_units(job, options)
        if on_units is not None:
            on_units(job, units)
        outcomes = [run_unit(u, enhancer, options, other=other, on_frame=on_frame) for u in units]
        return finish_job(job, units, outcomes, options, seconds=time.perf_counter() - started), None
    except (KeyboardInterrupt, Interrupted) as e:
        remove_segments(units)
        return interrupted(job, seconds=time.perf_counter() - started), e
    except Exception as e:  # noqa: BLE001 - one bad file must not stop an archive run
        remove_segments(units)
        return failed(job, e, seconds=time.perf_counter() - started), e


def enhance_video(
    job: EnhanceJob,
    enhancer: Enhancer,
    *,
    encoder: EncoderOptions = EncoderOptions(),
    overwrite: bool = False,
    strict: bool = False,
    compare_label: str = MODEL_LABEL,
    outscale: float | None = None,
    on_start: Callable[[StreamInfo], None] | None = None,
    on_frame: Callable[[Frame], None] | None = None,
) -> EnhanceReport:
    """Decode `job.input`, enhance every frame, encode to `job.output` with the same frame count, rate,
    timestamps and other streams (one unit, never segmented). Outputs appear only when complete.
    compare_label: the caption of the model's panel in `job.compare` (when there is one); outscale: as
    in JobOptions."""
    unit = WorkUnit(job=job, path=job.output, frames=0)
    options = JobOptions(encoder=encoder, overwrite=overwrite, strict=strict,
                         compare=CompareOptions(label=compare_label), outscale=outscale)
    r = run_unit(unit, enhancer, options, on_start=on_start, on_frame=on_frame)
    return EnhanceReport(job=job, info=r.info, frames=r.frames_out, repeated_frames=r.repeated,
                         damaged_frames=r.damaged, decode_errors=r.decode_errors, seconds=r.seconds, stats=r.stats)
