"""The human-readable report of a BenchResult: setup lines and markdown tables (what `streamsr bench` prints)."""

from __future__ import annotations

from ..metrics import LatencySummary
from .results import BenchResult


def _f(x: float | None, nd: int = 1) -> str:
    if x is None or x != x:
        return "–"
    return f"{x:.{nd}f}"


def _lat_cells(s: LatencySummary) -> str:
    return f"{_f(s.p50)} | {_f(s.p95)} | {_f(s.p99)} | {_f(s.max)}"


STAGE_LABELS = {
    "uploaded": "upload",
    "tiled": "tile",
    "inferred": "infer",
    "stitched": "stitch",
    "downloaded": "download",
}


def _stage_table(header: str, stages: dict[str, LatencySummary], span: str, e2e: LatencySummary) -> list[str]:
    """Markdown rows: one per stage (p50/p95/p99/max ms), then the end-to-end row for `span`."""
    rows = [f"| {header} | p50 | p95 | p99 | max |", "|---|---:|---:|---:|---:|"]
    rows += [f"| {STAGE_LABELS.get(st, st)} | {_lat_cells(s)} |" for st, s in stages.items()]
    return rows + [f"| **end to end ({span})** | {_lat_cells(e2e)} |"]


def format_markdown(result: BenchResult) -> str:
    """The human-readable report: setup lines, then markdown tables (variants, stages, pipeline, efficiency)."""
    c, m = result.config, result.machine
    w, h = result.lr_size
    lines = [
        f"- date: {m['date']}; machine: {m['cpu']}, {m['cores']} cores (torch threads {m['torch_threads']}, "
        f"{m['cpu_capability']}){'; GPU ' + str(m['gpu']) if m.get('gpu') else ''}; load average (1 min) "
        f"{_f(m.get('load_avg_1m_start'), 2)} at start, {_f(m.get('load_avg_1m_end'), 2)} at end",
        f"- versions: python {m['python']}, torch {m['torch']}, av {m['av']}, opencv {m['opencv']}, "
        f"numpy {m['numpy']}{', onnxruntime ' + str(m['onnxruntime']) if m.get('onnxruntime') else ''}",
        f"- engine: {result.engine}; weights: {result.weights}",
        f"- input {w}x{h} LR -> {4 * w}x{4 * h}; tile {c.tile} + halo {c.halo} (window {c.tile + 2 * c.halo}): "
        f"{result.tiles_per_frame} tiles/frame = {result.halo_overhead:.2f}x the whole-frame MACs "
        f"({result.macs_tiled / 1e9:.2f} vs {result.macs_whole / 1e9:.2f} GMAC)",
        f"- {c.repeats} repetitions x {c.frames} timed frames per variant, interleaved (rotated order), after "
        f"{c.warmup} warm-up frame(s); latency percentiles pool all timed frames, fps is the median over "
        f"repetitions, speed-ups are medians of per-repetition ratios; wall time {result.wall_s:.0f} s",
        "",
        "| variant | fps | LR MP/s | GFLOP/s | latency p50 | p95 | p99 | max (ms) | streamsr speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, v in result.variants.items():
        sp = result.speedups.get(name)
        lines.append(
            f"| {name} | {_f(v.fps, 2)} | {_f(v.lr_mpix_s, 3)} | {_f(v.gflops)} | {_lat_cells(v.latency)} | "
            f"{'–' if sp is None else f'{sp:.3g}x'} |"
        )
    lines += [""] + [f"- {name}: {v.description}" for name, v in result.variants.items()]
    lines += ["", "Per-stage latency of the Enhancer (streamsr variant, from the Frame timelines), ms:", ""]
    lines += _stage_table("stage", result.stages, "upload..download", result.variants["streamsr"].latency)
    p = result.pipeline
    if p is not None:
        lines += [
            "",
            f"Pipeline: run_pipeline(FileSource ‖ Enhancer ‖ FileSink) on {p.clip}, encoder {p.encoder}; "
            f"{p.frames} frames measured (warm-up excluded), {p.dropped} dropped:",
            "",
            f"- pipeline {_f(p.fps, 2)} fps; **pipeline / engine-only = {_f(p.ratio_engine, 2)}** (target >= 0.9); "
            f"pipeline / enhancer-alone = {_f(p.ratio_streamsr, 2)}; infer p50 in the pipeline is "
            f"{_f(p.infer_slowdown, 2)}x the isolated one",
            "",
        ]
        lines += _stage_table("stage (pipeline)", p.stages, "captured..emitted", p.e2e)
    lv = result.live
    if lv is not None:
        lines += [
            "",
            f"Live: a {lv.rate} fps clip replayed in real time ({lv.seconds:g} s per repetition), newest frame wins: "
            f"{lv.frames_out} of {lv.frames_in} frames enhanced, **{lv.dropped} dropped**, output "
            f"{_f(lv.fps_out, 2)} fps, into a FileSink and a ZeroMQ Publisher read back by a Subscriber:",
            f"  - latency captured..emitted: {lv.e2e.format()}",
            f"  - latency captured..received at the subscriber ({lv.received} frames): {lv.e2e_received.format()}",
        ]
        if lv.uncounted:
            lines.append(f"  ({lv.uncounted} frame(s) neither enhanced nor counted as dropped: lost at the end "
                         f"of the stream)")
    if result.ceilings:
        lines += ["", "Efficiency (2 FLOP per MAC; tiled MACs include the halo overlap):", ""]
        eng = result.variants["engine"]
        for ce in result.ceilings:
            lines.append(f"- ceiling: {ce.dtype} {ce.n}x{ce.n} matmul {_f(ce.gflops)} GFLOP/s median "
                         f"(best {_f(ce.gflops_best)})")
        lines.append(f"- engine: {_f(eng.gflops)} GFLOP/s = **{_f(100 * (result.efficiency or float('nan')))}% "
                     f"of the matmul ceiling**; useful work (whole-frame MACs at engine fps): "
                     f"{_f(eng.gflops / result.halo_overhead if eng.gflops else None)} GFLOP/s")
    return "\n".join(lines)
