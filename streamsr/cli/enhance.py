"""`streamsr enhance INPUT -o OUTPUT`: recorded video(s) in, 4x video(s) out, here or on a Ray cluster."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from tqdm import tqdm

from ..errors import Interrupted, StreamSRError, WeightsError
from ..enhancer import Enhancer
from ..jobs import (
    CompareOptions, JobOptions, JobResult, LocalExecutor, is_complete, make_output_folders, oversized_outputs, plan_jobs,
    planned_frames, run_jobs, skipped_subfolders,
)
from ..report import ReportFile
from ..sinks import EncoderOptions
from ..spec import EnhancerSpec
from .options import Batch, DeviceName, EngineName, HaloSize, PrecisionName, PresetName, TileSize, WeightsPath


def _describe(result: JobResult) -> str:
    if result.status == "skipped":
        return f"skipped {result.output}: already complete (--overwrite redoes it)"
    if result.status == "interrupted":
        return f"interrupted {result.input}: partial output removed"
    notes = []
    if result.lost_frames:
        notes.append(f"salvaged from a truncated file: {result.lost_frames} frame(s) it promised are gone")
    if result.damaged:
        notes.append(f"{result.damaged} damaged frame(s) kept")
    if result.repeated:
        notes.append(f"{result.repeated} corrupt frame(s) repeated to keep sync")
    if result.decode_errors:
        notes.append(f"{result.decode_errors} packet(s) failed to decode")
    if result.segments > 1:
        notes.append(f"{result.segments} segments")
    note = f"; {', '.join(notes)}" if notes else ""
    return (f"wrote {result.output}: {result.frames_out} frames, {result.audio_tracks} audio track(s), "
            f"{result.seconds:.1f} s ({result.fps:.2f} fps){note}")


def _compare_options(spec: EnhancerSpec, compare_with: str | None) -> CompareOptions:
    """The compare video's panels: the main model labelled by its weights name and, with --compare-with,
    a second model built like the main one (same engine, device, precision, tiling; any preset). Unknown
    or unreadable --compare-with weights fail here, before any output is started."""
    if compare_with is None:
        return CompareOptions(label=spec.label)
    try:
        other = spec.with_weights(compare_with)
    except WeightsError as e:
        raise WeightsError(f"--compare-with: {e}") from None
    return CompareOptions(label=spec.label, other=other)


def enhance(
    input: Path = typer.Argument(..., help="A video file, or a folder of video files."),
    output: Path = typer.Option(..., "-o", "--output", help="Output file (or folder when INPUT is a folder)."),
    engine: EngineName = "auto",
    device: DeviceName = "auto",
    precision: PrecisionName = "auto",
    batch: Batch = None,
    tile: TileSize = None,
    halo: HaloSize = None,
    weights: WeightsPath = None,
    preset: PresetName = None,
    codec: str = typer.Option("libx264", help="FFmpeg video encoder."),
    crf: int = typer.Option(18, min=0, max=63, help="Constant quality (lower is better); ignored with --bitrate."),
    bitrate: Optional[int] = typer.Option(None, min=1, help="Target video bitrate in bits/s."),
    pix_fmt: str = typer.Option("yuv420p", "--pix-fmt", help="Encoded pixel format."),
    encoder_threads: int = typer.Option(4, "--encoder-threads", min=0,
                                        help="Encoder threads (fixed so outputs are the same bytes everywhere; 0 = all cores)."),
    compare: bool = typer.Option(False, help="Also write OUTPUT.compare.mp4: bicubic | the model side by side, "
                                             "each panel labelled."),
    compare_with: Optional[str] = typer.Option(
        None, "--compare-with", metavar="WEIGHTS",
        help="Add a third panel to the compare video: the same frames enhanced by these weights (a shipped "
             "name from `streamsr info`, or a .safetensors file); implies --compare."),
    overwrite: bool = typer.Option(False, help="Replace existing outputs (a folder run otherwise skips them)."),
    strict: bool = typer.Option(False, help="Fail a file with any damaged or undecodable frame instead of repairing."),
    salvage: bool = typer.Option(False, help="Enhance what a truncated recording still holds (status 'salvaged') "
                                             "instead of failing it."),
    suffix: str = typer.Option(".mp4", help="Container of a folder's outputs, by suffix: .mp4, .mkv, .mov..."),
    outscale: Optional[float] = typer.Option(
        None, "--outscale", metavar="S",
        help="Output size as a multiple of the input's (0 < S <= 4, default 4): the 4x frames resized with an "
             "antialiased filter, as Real-ESRGAN's --outscale."),
    recursive: bool = typer.Option(False, "--recursive", "-r",
                                   help="Also enhance the videos of subfolders, mirrored under OUTPUT."),
    report: Optional[Path] = typer.Option(
        None, help="Keep a JSON report of every file at this path, rewritten after each file (also when the run "
                   "is interrupted); a resumed run keeps the figures of files done earlier."),
    segment_seconds: Optional[float] = typer.Option(
        None, "--segment-seconds", min=1.0,
        help="Cut inputs longer than twice this at keyframes into segments enhanced in parallel with --ray."),
    ray: bool = typer.Option(False, "--ray", help="Run the files (and segments) as Ray tasks; see --ray-address."),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", metavar="ADDRESS",
        help="With --ray: 'auto' or ray://host:port joins a cluster; default starts a local Ray instance."),
    workers: Optional[int] = typer.Option(None, min=1, help="Ray workers (default: one per GPU, else per CPU)."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar."),
) -> None:
    """Enhance recorded video 4x: same frames, timestamps, audio and subtitle tracks as the input."""
    suffix = suffix if suffix.startswith(".") else f".{suffix}"
    if outscale is not None and not 0 < outscale <= 4:
        raise typer.BadParameter(f"--outscale must be > 0 and <= 4, got {outscale:g}")
    jobs = plan_jobs(input, output, compare=compare or compare_with is not None, overwrite=overwrite, suffix=suffix,
                     recursive=recursive)
    spec = EnhancerSpec.resolve(weights, preset=preset, engine=engine, device=device, precision=precision,
                                batch=batch, tile=tile, halo=halo)
    panels = _compare_options(spec, compare_with)
    folder = input.is_dir()
    if folder:
        make_output_folders(jobs)
    options = JobOptions(
        encoder=EncoderOptions(codec=codec, crf=crf, bitrate=bitrate, pix_fmt=pix_fmt, threads=encoder_threads),
        overwrite=overwrite, strict=strict, segment_seconds=segment_seconds, compare=panels, sidecars=folder,
        outscale=outscale, salvage=salvage,
    )
    record = ReportFile(report, [(j.input, j.output) for j in jobs]) if report is not None else None
    bar = tqdm(total=planned_frames(jobs, options), unit="frame", disable=quiet, dynamic_ncols=True, file=sys.stderr, desc="enhance")

    def say(line: str) -> None:
        if quiet and not line.startswith(("failed", "warning", "note")):
            return
        tqdm.write(f"streamsr: {line}", file=sys.stderr)

    big = oversized_outputs([j for j in jobs if options.overwrite or not is_complete(j)], options)
    if big:
        (job, (w, h), (iw, ih)), more = big[0], (f" (and {len(big) - 1} more file(s))" if len(big) > 1 else "")
        fit = int(min(3840 / iw, 2160 / ih) * 100) / 100  # rounded down: stays within 4K
        say(f"note: {job.output.name} will be {w}x{h}, larger than 4K (3840x2160){more}; --outscale {fit:g} "
            "keeps it within 4K")
    if folder and not recursive:
        left = skipped_subfolders(input, output)
        if left:
            names = ", ".join(str(p.relative_to(input)) for p in left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
            say(f"warning: {len(left)} subfolder(s) with videos not enhanced: {names} (add --recursive)")

    def on_result(result: JobResult) -> None:
        if record is not None:
            result = record.record(result)
        if result.status != "failed":
            say(_describe(result))
        elif folder:
            say(f"failed {result.input}: {result.error}")

    try:
        if ray or ray_address:
            from ..distributed import run_on_ray

            results = run_on_ray(jobs, spec, options, address=ray_address, workers=workers,
                                 on_frames=bar.update, on_result=on_result,
                                 on_status=say)
        else:
            enhancer = Enhancer.build(spec)
            say(f"{enhancer.engine.describe()}, tile {enhancer.tiler.tile}+{enhancer.tiler.halo} halo")
            if jobs[0].compare is not None:
                say(f"compare video panels: {' | '.join(panels.labels)}")
            results = run_jobs(jobs, LocalExecutor(enhancer, on_frame=lambda _f: bar.update(1)), options,
                               keep_going=folder, on_result=on_result)
    except (KeyboardInterrupt, Interrupted) as e:
        bar.close()
        if record is not None:
            record.finish("interrupted")
        if isinstance(e, Interrupted):
            raise
        raise Interrupted("interrupted; finished outputs kept, unfinished ones removed (re-run to resume)") from None
    except BaseException as e:
        bar.close()
        if record is not None:
            record.finish("failed", error=str(e) if isinstance(e, StreamSRError) else f"{type(e).__name__}: {e}")
        raise
    bar.close()
    if record is not None:
        record.finish("done")
    bad = [r for r in results if r.status == "failed"]
    if folder:
        counts = {s: sum(r.status == s for r in results) for s in ("ok", "salvaged", "skipped", "failed")}
        salvaged = f" ({counts['salvaged']} salvaged)" if counts["salvaged"] else ""
        print(f"streamsr: {len(results)} file(s): {counts['ok'] + counts['salvaged']} enhanced{salvaged}, "
              f"{counts['skipped']} skipped, {counts['failed']} failed", file=sys.stderr)
        for r in bad:
            print(f"streamsr:   FAILED {r.input}: {r.error}", file=sys.stderr)
    elif bad:
        raise StreamSRError(bad[0].error)
    if bad:
        raise typer.Exit(1)

