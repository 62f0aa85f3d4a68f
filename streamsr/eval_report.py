"""What `streamsr eval` shows of an EvalReport (evaluate.py): the fixed-width tables (`format_table`, the
per-degradation `format_suite` built from `suite_rows`), the same as strict JSON (`suite_json`,
`nan_to_none`), and the picture grid (`grid_image`, `write_png`). Formats only; never scores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .degradations import SUITE
from .errors import InputError, OutputError
from .evaluate import DARK_LEVELS, RING, EvalReport


def format_table(report: EvalReport, *, baseline: str = "bicubic") -> str:
    """A fixed-width table: one row per method, mean PSNR (dB) / SSIM on Y and RGB, and dB gain over bicubic."""
    base = report.scores[baseline].mean() if baseline in report.scores else None
    name_w = max(8, *(len(n) for n in report.scores))
    lines = [
        f"{'method':<{name_w}}  {'PSNR-Y':>7}  {'SSIM-Y':>7}  {'PSNR-RGB':>8}  {'SSIM-RGB':>8}  {'dPSNR-Y':>7}",
    ]
    for name, s in report.scores.items():
        m = s.mean()
        gain = f"{m['psnr_y'] - base['psnr_y']:+7.2f}" if base is not None else f"{'':>7}"
        lines.append(
            f"{name:<{name_w}}  {m['psnr_y']:7.2f}  {m['ssim_y']:7.4f}  {m['psnr_rgb']:8.2f}  {m['ssim_rgb']:8.4f}  {gain}"
        )
    lines.append(f"({len(report.frames)} frames; Y = BT.601 luma; 4-px border shave; SSIM 11x11 Gaussian, sigma 1.5)")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteRow:
    """One degradation's comparison of a model with the baseline: means, the gain and frames that lose."""

    degradation: str
    baseline: dict[str, float]
    model: dict[str, float]
    gain_psnr_y: float
    frames_losing: int  # frames whose model PSNR-Y is below the baseline's
    baseline_texture: float  # Scores.texture_ratio
    model_texture: float


def suite_rows(report: EvalReport, model: str, *, baseline: str = "bicubic") -> list[SuiteRow]:
    """The per-degradation comparison of `model` with `baseline` (both method names in the report)."""
    out = []
    for name, by_method in report.rows.items():
        b, m = by_method[baseline], by_method[model]
        out.append(SuiteRow(degradation=name, baseline=b.mean(), model=m.mean(),
                            gain_psnr_y=m.mean()["psnr_y"] - b.mean()["psnr_y"],
                            frames_losing=int((m.psnr_y < b.psnr_y).sum()), baseline_texture=b.texture_ratio(),
                            model_texture=m.texture_ratio()))  # fmt: skip
    return out


def format_suite(report: EvalReport, *, baseline: str = "bicubic") -> str:
    """Per model, one line per degradation: baseline and model PSNR-Y / SSIM-Y / PSNR-RGB, the PSNR-Y gain and
    frames losing; then the mean and worst gain; then the highlight figures of every method."""
    lines = []
    first = next(iter(report.rows.values()))
    deg_w = max(12, *(len(n) for n in report.rows))
    for model in (m for m in first if m != baseline):
        rows = suite_rows(report, model, baseline=baseline)
        lines.append(f"{model} vs {baseline}")
        lines.append(f"{'degradation':<{deg_w}}  {'PSNR-Y':>15}  {'SSIM-Y':>15}  {'PSNR-RGB':>15}  {'dPSNR-Y':>7}  "
                     f"{'losing':>6}  {'texture':>12}")  # fmt: skip
        for r in rows:
            b, m = r.baseline, r.model
            lines.append(
                f"{r.degradation:<{deg_w}}  {b['psnr_y']:6.2f} -> {m['psnr_y']:6.2f}  {b['ssim_y']:.4f} -> {m['ssim_y']:.4f}"
                f"  {b['psnr_rgb']:6.2f} -> {m['psnr_rgb']:6.2f}  {r.gain_psnr_y:+7.2f}  {r.frames_losing:>6}"
                f"  {r.baseline_texture:.2f} -> {r.model_texture:.2f}"
            )
        gains = [r.gain_psnr_y for r in rows]
        worst = min(rows, key=lambda r: r.gain_psnr_y)
        lines.append(f"mean gain {np.mean(gains):+.2f} dB PSNR-Y over {len(rows)} degradations; "
                     f"worst {worst.gain_psnr_y:+.2f} dB ({worst.degradation})")  # fmt: skip
        lines.append("")
    lines.append(f"specular highlights (PSNR-Y inside / outside the mask; dark ring: pixels {RING[0]}-{RING[1]} px "
                 f"outside a highlight more than {DARK_LEVELS:g} levels too dark)")  # fmt: skip
    name_w = max(8, *(len(n) for n in first))
    lines.append(f"{'degradation':<{deg_w}}  {'method':<{name_w}}  {'inside':>7}  {'outside':>7}  {'err share':>9}  {'dark ring':>9}")
    for deg, by_method in report.rows.items():
        for name, s in by_method.items():
            h = s.highlights()
            lines.append(f"{deg:<{deg_w}}  {name:<{name_w}}  {h['psnr_y_highlight']:7.2f}  {h['psnr_y_outside']:7.2f}"
                         f"  {100 * h['highlight_error_share']:8.1f}%  {100 * h['ring_dark_fraction']:8.2f}%")  # fmt: skip
    hl = first[next(iter(first))].highlights()["highlight_pixels"]
    lines.append(f"({len(report.frames)} frames; highlights cover {100 * hl:.1f}% of the scored pixels; "
                 "Y = BT.601 luma; 4-px border shave; texture: high-frequency energy / the HR frame's)")  # fmt: skip
    return "\n".join(lines)


def suite_json(report: EvalReport, *, source: str, baseline: str = "bicubic") -> dict:
    """Everything `format_suite` prints, as plain JSON-able data (for `streamsr eval --suite --json`)."""
    specs = {d.name: d for d in SUITE}
    models = [m for m in next(iter(report.rows.values())) if m != baseline]
    compared = {m: {r.degradation: r for r in suite_rows(report, m, baseline=baseline)} for m in models}
    rows = []
    for deg, by_method in report.rows.items():
        spec = specs.get(deg)
        rows.append({
            "degradation": deg,
            "recipe": {f: getattr(spec, f) for f in spec.__dataclass_fields__} if spec else None,
            "methods": {name: {**s.mean(), **s.highlights(), "texture_ratio": s.texture_ratio()}
                        for name, s in by_method.items()},
            "gain_psnr_y": {m: compared[m][deg].gain_psnr_y for m in models},
            "frames_losing": {m: compared[m][deg].frames_losing for m in models},
        })  # fmt: skip
    summary = {m: {"mean_gain_psnr_y": float(np.mean([r.gain_psnr_y for r in compared[m].values()])),
                   "worst_gain_psnr_y": float(min(r.gain_psnr_y for r in compared[m].values()))}
               for m in models}  # fmt: skip
    return nan_to_none({"source": source, "frames": len(report.frames), "baseline": baseline, "rows": rows,
                         "summary": summary})  # fmt: skip


def nan_to_none(x: object) -> object:
    """NaN (a figure with nothing to measure, e.g. highlights in frames without any) -> None, recursively
    through dicts and lists: what strict JSON can hold (eval --json, benchmarks/run.py)."""
    if isinstance(x, float) and x != x:
        return None
    if isinstance(x, dict):
        return {k: nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [nan_to_none(v) for v in x]
    return x


def grid_image(report: EvalReport, labels: list[str]) -> np.ndarray:
    """The picture grid as one (H, W, 3) uint8 RGB image: a header row of labels, then one row per frame
    (cells resized to a common edge so frames of different sizes line up), 4-px gaps."""
    if not report.grid_rows:
        raise InputError("no frames to put in the grid")
    edge = min(c.shape[0] for row in report.grid_rows for c in row)
    gap, header = 4, 24
    ncol = len(report.grid_rows[0])
    if len(labels) != ncol:
        raise ValueError(f"{len(labels)} labels for {ncol} grid columns")
    width = ncol * edge + (ncol + 1) * gap
    height = header + len(report.grid_rows) * (edge + gap) + gap
    canvas = np.full((height, width, 3), 255, np.uint8)
    for j, label in enumerate(labels):
        x = gap + j * (edge + gap)
        cv2.putText(canvas, label[: max(4, edge // 9)], (x + 2, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)  # fmt: skip
    for i, row in enumerate(report.grid_rows):
        y = header + i * (edge + gap)
        for j, cell in enumerate(row):
            if cell.shape[0] != edge:
                cell = cv2.resize(cell, (edge, edge), interpolation=cv2.INTER_AREA)
            x = gap + j * (edge + gap)
            canvas[y : y + edge, x : x + edge] = cell
    return canvas


def write_png(image: np.ndarray, path: str | Path) -> Path:
    """Write an (H, W, 3) uint8 RGB image as PNG; OutputError if it cannot be written."""
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {path.parent} does not exist")
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1])):
        raise OutputError(f"cannot write {path} (is the extension .png?)")
    return path
