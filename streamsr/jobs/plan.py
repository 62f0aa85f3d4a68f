"""Planning file jobs: which inputs become which outputs, and the work units each job is cut into.

A job is one input -> one output (`plan_jobs` expands a file or a folder into jobs and checks every path
before any work starts). A long input may be cut at keyframes into segments (`plan_units`); that cut depends
only on the file and the options, so a local run and a distributed one write the same bytes. Planning reads
file headers and packet indexes, never decodes, and needs no model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av

from ..compare import BICUBIC_LABEL, MODEL_LABEL
from ..errors import InputError, OutputError
from ..sinks import EncoderOptions, check_output_path, scaled_size
from ..sources import VIDEO_SUFFIXES, PacketIndex, index_packets
from ..spec import EnhancerSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class EnhanceJob:
    """One input file -> one 4x output file (and optionally a labelled side-by-side comparison file)."""

    input: Path
    output: Path
    compare: Path | None = None


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
