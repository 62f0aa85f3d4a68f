"""The GAN's held-out figures beside bicubic and the PSNR model it was fine-tuned from, and issue 30's checks.

    python benchmarks/gan_tables.py --psnr srgan-x4-lite --gan srgan-x4-lite-gan \
        streamsr/weights/eval/kvasir_seg.json:streamsr/weights/eval/kvasir_seg-gan.json \
        streamsr/weights/eval/cvc_clinicdb.json:streamsr/weights/eval/cvc_clinicdb-gan.json

Each argument is one held-out set: `streamsr eval --suite --json` files joined by ':' (the methods of all of
them are merged; the bicubic rows must agree, which checks that they scored the same frames the same way).
Per set: PSNR-Y, SSIM-Y, texture ratio (high-frequency energy over the HR frame's: 1 = as much fine detail
as the truth) and the dark ring (share of highlight-ring pixels > 10 levels too dark) per suite row, then
the acceptance lines: texture nearer 1 than the PSNR model's (mean over rows); PSNR-Y above bicubic on the
aa-bicubic, area and blur rows; within 1.0 dB of the PSNR model on every row; dark ring no worse (mean).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ABOVE_BICUBIC_ROWS = ("aa-bicubic", "area", "blur1.2+area")
MAX_DROP_DB = 1.0


def merged(paths: list[Path]) -> dict:
    """One eval JSON with the methods of all `paths` (same source, frames and bicubic figures)."""
    base = json.loads(paths[0].read_text())
    for p in paths[1:]:
        other = json.loads(p.read_text())
        if (other["source"], other["frames"]) != (base["source"], base["frames"]):
            raise SystemExit(f"{p}: another set ({other['source']}, {other['frames']} frames)")
        for row, orow in zip(base["rows"], other["rows"], strict=True):
            b, ob = row["methods"]["bicubic"]["psnr_y"], orow["methods"]["bicubic"]["psnr_y"]
            if row["degradation"] != orow["degradation"] or abs(b - ob) > 1e-6:
                raise SystemExit(f"{p}: row {orow['degradation']} differs from {paths[0]} (bicubic {ob} vs {b})")
            row["methods"].update({k: v for k, v in orow["methods"].items() if k != "bicubic"})
    return base


def report(d: dict, psnr: str, gan: str) -> tuple[str, list[tuple[str, bool]]]:
    rows = d["rows"]
    names = ["bicubic", psnr, gan]
    out = [f"**{Path(d['source']).name}** ({d['frames']} frames)", "",
           "| degradation | PSNR-Y " + " / ".join(names) + " | SSIM-Y | texture ratio | dark ring |",
           "|---|---:|---:|---:|---:|"]
    for r in rows:
        m = [r["methods"][n] for n in names]
        out.append(f"| {r['degradation']} | " + " / ".join(f"{x['psnr_y']:.2f}" for x in m) + " | "
                   + " / ".join(f"{x['ssim_y']:.4f}" for x in m) + " | "
                   + " / ".join(f"{x['texture_ratio']:.3f}" for x in m) + " | "
                   + " / ".join(f"{100 * x['ring_dark_fraction']:.1f}%" for x in m) + " |")

    def mean(name: str, key: str) -> float:
        return sum(r["methods"][name][key] for r in rows) / len(rows)

    tex = {n: mean(n, "texture_ratio") for n in names}
    ring = {n: mean(n, "ring_dark_fraction") for n in names}
    out.append(f"| **mean** | " + " / ".join(f"{mean(n, 'psnr_y'):.2f}" for n in names) + " | "
               + " / ".join(f"{mean(n, 'ssim_y'):.4f}" for n in names) + " | "
               + " / ".join(f"{tex[n]:.3f}" for n in names) + " | "
               + " / ".join(f"{100 * ring[n]:.1f}%" for n in names) + " |")
    drops = {r["degradation"]: r["methods"][psnr]["psnr_y"] - r["methods"][gan]["psnr_y"] for r in rows}
    above = {r["degradation"]: r["methods"][gan]["psnr_y"] - r["methods"]["bicubic"]["psnr_y"]
             for r in rows if r["degradation"] in ABOVE_BICUBIC_ROWS}
    checks = [
        (f"texture nearer 1 than {psnr}: |1 - {tex[gan]:.3f}| < |1 - {tex[psnr]:.3f}|",
         abs(1 - tex[gan]) < abs(1 - tex[psnr])),
        ("above bicubic on " + ", ".join(f"{k} ({v:+.2f} dB)" for k, v in above.items()),
         all(v > 0 for v in above.values())),
        (f"within {MAX_DROP_DB:g} dB of {psnr} on every row (largest drop {max(drops.values()):.2f} dB, "
         f"{max(drops, key=drops.get)})", max(drops.values()) <= MAX_DROP_DB),
        (f"dark ring no worse than {psnr}: {100 * ring[gan]:.2f}% vs {100 * ring[psnr]:.2f}%", ring[gan] <= ring[psnr]),
    ]
    out += [""] + [f"- {'PASS' if ok else 'FAIL'}: {text}" for text, ok in checks]
    return "\n".join(out) + "\n", checks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--psnr", required=True, help="method name of the PSNR model in the JSON")
    ap.add_argument("--gan", required=True, help="method name of the GAN in the JSON")
    ap.add_argument("sets", nargs="+", help="one per held-out set: eval JSON files joined by ':'")
    args = ap.parse_args()
    passed = True
    for spec in args.sets:
        text, checks = report(merged([Path(p) for p in spec.split(":")]), args.psnr, args.gan)
        print(text)
        passed &= all(ok for _, ok in checks)
    print(f"issue 30 acceptance on {len(args.sets)} set(s): {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
