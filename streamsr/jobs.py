"""File jobs: enhance a recorded video (or a folder of them) into 4x videos, losslessly and atomically."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .enhancer import Enhancer
from .errors import InputError, OutputError
from .frame import Frame
from .pipeline import PipelineConfig, PipelineStats, run_pipeline
from .sinks import EncoderOptions, FileSink, SideBySideSink, Sink, check_output_path
from .sources import VIDEO_SUFFIXES, FileSource, StreamInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class EnhanceJob:
    """One input file -> one 4x output file (and optionally a side-by-side comparison file)."""

    input: Path
    output: Path
    compare: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EnhanceReport:
    """What one job did: frames written, corrupt frames repeated to keep sync, wall time (s)."""

    job: EnhanceJob
    info: StreamInfo
    frames: int
    repeated_frames: int
    decode_errors: int
    seconds: float
    stats: PipelineStats


def compare_path_for(output: Path) -> Path:
    """out.mp4 -> out.compare.mp4: where `--compare` writes the (bicubic | streamsr) video."""
    return output.with_name(f"{output.stem}.compare{output.suffix}")


def plan_jobs(input: Path, output: Path, *, compare: bool = False, overwrite: bool = False) -> list[EnhanceJob]:
    """Expand INPUT/OUTPUT into jobs: a file -> that output file; a folder -> every video in it (sorted, not
    recursive) -> OUTPUT folder/<stem>.mp4. Checks inputs exist and outputs can be written before any work
    starts: InputError/OutputError with one line otherwise."""
    if not input.exists():
        raise InputError(f"input {input} does not exist")
    if input.is_dir():
        files = sorted(p for p in input.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not files:
            raise InputError(f"input folder {input} holds no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
        if output.exists() and not output.is_dir():
            raise OutputError(f"output {output} must be a folder when the input {input} is a folder")
        pairs = [(f, output / f"{f.stem}.mp4") for f in files]
    else:
        pairs = [(input, output)]
    jobs = [EnhanceJob(input=i, output=o, compare=compare_path_for(o) if compare else None) for i, o in pairs]
    for job in jobs:
        if job.output.resolve() == job.input.resolve():
            raise OutputError(f"output {job.output} is the input file; choose another name")
        if not (input.is_dir() and not output.exists()):
            for path in filter(None, (job.output, job.compare)):
                check_output_path(path, overwrite=overwrite)
    return jobs


def enhance_video(
    job: EnhanceJob,
    enhancer: Enhancer,
    *,
    encoder: EncoderOptions = EncoderOptions(),
    overwrite: bool = False,
    on_start: Callable[[StreamInfo], None] | None = None,
    on_frame: Callable[[Frame], None] | None = None,
) -> EnhanceReport:
    """Decode `job.input`, enhance every frame, encode to `job.output` with the same frame count, rate,
    timestamps and audio. Outputs appear only when complete; on any error or Ctrl-C none is left behind."""
    started = time.perf_counter()
    with FileSource(job.input) as source:
        info = source.info
        if on_start is not None:
            on_start(info)
        s = enhancer.tiler.scale
        sinks: list[Sink] = []
        try:
            sinks.append(
                FileSink(
                    job.output, width=info.width * s, height=info.height * s, rate=info.rate,
                    time_base=info.time_base, options=encoder, audio_from=info.audio_path, overwrite=overwrite,
                )
            )
            if job.compare is not None:
                inner = FileSink(
                    job.compare, width=2 * info.width * s, height=info.height * s, rate=info.rate,
                    time_base=info.time_base, options=encoder, audio_from=info.audio_path, overwrite=overwrite,
                )
                sinks.append(SideBySideSink(inner))
        except BaseException:
            for sink in sinks:
                sink.abort()
            raise
        stats = run_pipeline(source, enhancer, sinks, config=PipelineConfig(live=False), on_frame=on_frame)
        return EnhanceReport(
            job=job,
            info=info,
            frames=stats.frames_out,
            repeated_frames=source.repeated_frames,
            decode_errors=source.decode_errors,
            seconds=time.perf_counter() - started,
            stats=stats,
        )
