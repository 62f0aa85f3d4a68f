"""`streamsr enhance INPUT -o OUTPUT`: recorded video(s) in, 4x video(s) out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from tqdm import tqdm

from ..enhancer import Enhancer
from ..errors import StreamSRError
from ..jobs import enhance_video, plan_jobs
from ..sinks import EncoderOptions
from ..tiling import DEFAULT_HALO, DEFAULT_TILE
from .options import (
    Batch, DeviceName, EngineName, HaloSize, PrecisionName, PresetName, TileSize, WeightsPath,
)


def enhance(
    input: Path = typer.Argument(..., help="A video file, or a folder of video files."),
    output: Path = typer.Option(..., "-o", "--output", help="Output file (or folder when INPUT is a folder)."),
    engine: EngineName = "auto",
    device: DeviceName = "auto",
    precision: PrecisionName = "auto",
    batch: Batch = 16,
    tile: TileSize = DEFAULT_TILE,
    halo: HaloSize = DEFAULT_HALO,
    weights: WeightsPath = None,
    preset: PresetName = None,
    codec: str = typer.Option("libx264", help="FFmpeg video encoder."),
    crf: int = typer.Option(18, min=0, max=63, help="Constant quality (lower is better); ignored with --bitrate."),
    bitrate: Optional[int] = typer.Option(None, min=1, help="Target video bitrate in bits/s."),
    pix_fmt: str = typer.Option("yuv420p", "--pix-fmt", help="Encoded pixel format."),
    compare: bool = typer.Option(False, help="Also write OUTPUT.compare.mp4: bicubic | streamsr side by side."),
    overwrite: bool = typer.Option(False, help="Replace existing outputs."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar."),
) -> None:
    """Enhance recorded video 4x: same frame count, rate, timestamps and audio as the input."""
    jobs = plan_jobs(input, output, compare=compare, overwrite=overwrite)
    if input.is_dir():
        output.mkdir(parents=True, exist_ok=True)
    enhancer = Enhancer.build(engine=engine, device=device, precision=precision, batch=batch, tile=tile,
                              halo=halo, weights=weights, preset=preset)
    eng = enhancer.engine
    encoder = EncoderOptions(codec=codec, crf=crf, bitrate=bitrate, pix_fmt=pix_fmt)
    if not quiet:
        print(f"streamsr: {eng.describe()}, tile {tile}+{halo} halo", file=sys.stderr)
    failures = 0
    for job in jobs:
        bars: list[tqdm] = []

        def on_start(info, job=job, bars=bars):
            bars.append(tqdm(desc=job.input.name, total=info.frames, unit="frame", disable=quiet,
                             dynamic_ncols=True, file=sys.stderr))

        try:
            report = enhance_video(
                job, enhancer, encoder=encoder, overwrite=overwrite, on_start=on_start,
                on_frame=lambda _f, bars=bars: bars[0].update(1),
            )
        except StreamSRError as e:
            if len(jobs) == 1:
                raise
            failures += 1
            print(f"streamsr: error: {e}", file=sys.stderr)
            continue
        finally:
            for bar in bars:
                bar.close()
        info = report.info
        note = ""
        if report.repeated_frames or report.decode_errors:
            note = (f"; {report.repeated_frames} corrupt frame(s) repeated to keep sync"
                    f" ({report.decode_errors} packet(s) failed to decode)")
        extra = f" and {job.compare}" if job.compare else ""
        print(
            f"streamsr: wrote {job.output}{extra}: {report.frames} frames, {info.width * 4}x{info.height * 4}, "
            f"{float(info.rate):g} fps, {report.seconds:.1f} s ({report.frames / max(report.seconds, 1e-9):.2f} fps)"
            f"{note}",
            file=sys.stderr,
        )
    if failures:
        raise typer.Exit(1)
