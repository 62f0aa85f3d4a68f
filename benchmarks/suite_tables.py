"""Markdown tables from `streamsr eval --suite --json` results: what the model card and README quote.

    python benchmarks/suite_tables.py streamsr/weights/eval/kvasir_seg.json streamsr/weights/eval/cvc_clinicdb.json
    python benchmarks/suite_tables.py --summary streamsr/weights/eval/*.json   # README: mean and worst row

Per file: PSNR-Y gain over bicubic per suite row and model (frames losing to bicubic in brackets), the mean
and worst row, SSIM-Y; then the specular-highlight figures (PSNR-Y inside the highlight mask, and the share
of ring pixels 3-4 px outside a highlight that come out more than 10 levels too dark).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def tables(path: Path) -> str:
    d = json.loads(path.read_text())
    models = list(d["summary"])
    rows = d["rows"]
    out = [f"**{Path(d['source']).name}** ({d['frames']} frames, `{path.name}`): PSNR-Y gain over bicubic, dB "
           "(frames losing to bicubic in brackets)", "",
           "| model | " + " | ".join(r["degradation"] for r in rows) + " | mean | worst |",
           "|---|" + "---:|" * (len(rows) + 2)]
    for m in models:
        cells = []
        for r in rows:
            lose = r["frames_losing"][m]
            cells.append(f"{r['gain_psnr_y'][m]:+.2f}" + (f" ({lose})" if lose else ""))
        s = d["summary"][m]
        out.append(f"| {m} | " + " | ".join(cells) + f" | **{s['mean_gain_psnr_y']:+.2f}** | "
                   f"{s['worst_gain_psnr_y']:+.2f} |")
    out += ["", "SSIM-Y (bicubic, then each model):", "",
            "| degradation | bicubic | " + " | ".join(models) + " |", "|---|" + "---:|" * (len(models) + 1)]
    for r in rows:
        ms = r["methods"]
        out.append(f"| {r['degradation']} | {ms['bicubic']['ssim_y']:.4f} | "
                   + " | ".join(f"{ms[m]['ssim_y']:.4f}" for m in models) + " |")
    out += ["", "Specular highlights: PSNR-Y inside the mask / dark ring (share of ring pixels > 10 levels too dark):",
            "", "| degradation | bicubic | " + " | ".join(models) + " |", "|---|" + "---:|" * (len(models) + 1)]
    for r in rows:
        ms = r["methods"]
        out.append(f"| {r['degradation']} | " + " | ".join(
            f"{ms[m]['psnr_y_highlight']:.2f} / {100 * ms[m]['ring_dark_fraction']:.1f}%"
            for m in ["bicubic", *models]) + " |")
    return "\n".join(out) + "\n"


def summary(paths: list[Path]) -> str:
    """One row per held-out set: each model's mean gain over the suite rows and its worst row."""
    data = [json.loads(p.read_text()) for p in paths]
    models = list(data[0]["summary"])
    out = ["| held-out set | " + " | ".join(f"{m} mean / worst row" for m in models) + " |",
           "|---|" + "---:|" * len(models)]
    for d in data:
        worst = {m: min(d["rows"], key=lambda r: r["gain_psnr_y"][m]) for m in models}
        cells = [f"{d['summary'][m]['mean_gain_psnr_y']:+.2f} / {worst[m]['gain_psnr_y'][m]:+.2f} "
                 f"({worst[m]['degradation']})" for m in models]
        out.append(f"| {Path(d['source']).name}, {d['frames']} frames | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    if not argv or argv == ["--summary"]:
        print(__doc__)
        return 2
    if argv[0] == "--summary":
        print(summary([Path(p) for p in argv[1:]]))
    else:
        print("\n".join(tables(Path(p)) for p in argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
