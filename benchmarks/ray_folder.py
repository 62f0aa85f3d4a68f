"""Local vs `--ray` (2 workers) wall time on the same folder, and segment splitting of one long clip.

    PYTHONPATH=$PWD python benchmarks/ray_folder.py [--frames 60] [--size 128x96]

Makes a folder of 4 clips plus one long clip (synthetic, real H.264), runs `streamsr enhance` on it
locally and with `--ray` (a local Ray instance started by the command, 2 CPU workers), checks the outputs
are the same bytes, and prints a Markdown table. Wall times include process start (and Ray's start).
"""

from __future__ import annotations

import argparse
import filecmp
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import make_timed_clip  # noqa: E402

from streamsr.testing import make_clip  # noqa: E402


def run(args: list[str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "streamsr", "enhance", *args, "-q"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", default="128x96")
    a = ap.parse_args()
    w, h = map(int, a.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder, long_dir = root / "folder", root / "long"
        folder.mkdir(), long_dir.mkdir()
        for k in range(4):
            make_clip(folder / f"c{k}.mp4", frames=a.frames, width=w, height=h, audio=True)
        make_timed_clip(long_dir / "long.mp4", [100 * i for i in range(4 * a.frames)], width=w, height=h,
                        gop=a.frames // 2, audio=(("eng", "room"),))
        rows = []
        for name, src, extra in (("folder of 4 clips", folder, []),
                                 ("1 long clip, 4 segments", long_dir, ["--segment-seconds", str(a.frames / 10)])):
            t_local = run([str(src), "-o", str(root / "local" / src.name), *extra])
            t_ray = run([str(src), "-o", str(root / "ray" / src.name), "--ray", "--workers", "2", *extra])
            same = all(filecmp.cmp(p, root / "ray" / src.name / p.name, shallow=False)
                       for p in (root / "local" / src.name).iterdir())
            frames = 4 * a.frames
            rows.append(f"| {name} ({frames} frames {w}x{h}) | {t_local:.1f} s | {t_ray:.1f} s | "
                        f"{t_local / t_ray:.2f}x | {'yes' if same else 'NO'} |")
        print("| job | local | --ray, 2 workers | speed-up | same bytes |\n|---|---:|---:|---:|---|")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
