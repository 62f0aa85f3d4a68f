"""`streamsr eval` on a tmp folder of synthetic frames: table, grid, errors; the library under it."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import run_main_io
from streamsr.degradations import SUITE, suite_names
from streamsr.errors import InputError
from streamsr.eval_report import format_table
from streamsr.evaluate import (
    bicubic_upscaler,
    evaluate_folder,
    list_frames,
    make_lr,
    read_hr,
)


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hr")
    yy, xx = np.mgrid[0:70, 0:90].astype(np.float32)  # not multiples of 4: eval crops to 68x88
    for i in range(3):
        base = 0.5 + 0.3 * np.sin(xx / (6 + i)) * np.cos(yy / 8)
        img = np.stack([200 * base, 120 * base, 90 * base], -1).astype(np.uint8)
        cv2.imwrite(str(d / f"{i}.png"), img[:, :, ::-1])
    (d / "notes.txt").write_text("not an image")
    return d


def test_library_pieces(frames: Path) -> None:
    paths = list_frames(frames)
    assert [p.name for p in paths] == ["0.png", "1.png", "2.png"]
    assert [p.name for p in list_frames(frames, limit=2)] == ["0.png", "2.png"]  # spread evenly
    hr = read_hr(paths[0])
    assert hr.shape == (68, 88, 3) and hr.dtype == np.uint8
    lr = make_lr(hr)
    assert lr.shape == (17, 22, 3) and lr.dtype == np.uint8
    identity = {"bicubic": bicubic_upscaler, "oracle": lambda _lr, hr=hr: hr}
    rep = evaluate_folder(paths[:1], identity, grid_frames=1)
    assert rep.scores["oracle"].psnr_y[0] == np.inf and rep.scores["oracle"].ssim_rgb[0] == pytest.approx(1.0)
    assert 20 < rep.scores["bicubic"].psnr_y[0] < 60
    assert len(rep.grid_rows) == 1 and len(rep.grid_rows[0]) == 4
    assert "oracle" in format_table(rep)


def test_eval_cli_prints_table_and_writes_grid(frames: Path, tiny_weights: Path, tmp_path: Path, capsys) -> None:
    grid = tmp_path / "grid.png"
    code, out, err = run_main_io(capsys, "eval", str(frames), "--weights", str(tiny_weights), "--device", "cpu",
                                 "--grid", str(grid), "--quiet")  # fmt: skip
    assert code == 0, err
    assert "PSNR-Y" in out and "SSIM-RGB" in out and "bicubic" in out and "tiny" in out
    assert "3 frames" in out
    img = cv2.imread(str(grid))
    assert img is not None and img.shape[0] > 3 * 60 and img.shape[1] > 4 * 60


def test_eval_errors(tmp_path: Path, capsys) -> None:
    with pytest.raises(InputError, match="does not exist"):
        list_frames(tmp_path / "missing")
    with pytest.raises(InputError, match="no images"):
        list_frames(tmp_path)
    code, out, err = run_main_io(capsys, "eval", str(tmp_path), "--quiet")
    assert (code, out) == (1, "") and err.startswith("streamsr: error: ") and "no images" in err, err


def test_eval_suite_json_writes_every_row(frames: Path, tiny_weights: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "suite.json"
    code, out, err = run_main_io(capsys, "eval", str(frames), "--weights", str(tiny_weights), "--device", "cpu",
                                 "--suite", "--json", str(path), "--quiet", "--limit", "2")  # fmt: skip
    assert code == 0, err
    data = json.loads(path.read_text())
    assert [row["degradation"] for row in data["rows"]] == suite_names()
    assert data["frames"] == 2 and set(data["summary"]) == {"tiny"}
    for row in data["rows"]:
        assert set(row["methods"]) == {"bicubic", "tiny"} and set(row["gain_psnr_y"]) == {"tiny"}
        b, m = row["methods"]["bicubic"], row["methods"]["tiny"]
        assert row["gain_psnr_y"]["tiny"] == pytest.approx(m["psnr_y"] - b["psnr_y"])
        assert 10 < b["psnr_y"] < 60 and m["ring_dark_fraction"] is None  # no highlights here
    assert all(name in out for name in suite_names()) and "specular highlights" in out
    gains = [row["gain_psnr_y"]["tiny"] for row in data["rows"]]
    assert data["summary"]["tiny"]["mean_gain_psnr_y"] == pytest.approx(float(np.mean(gains)))


def test_suite_rows_differ_and_highlights_pool_pixels(frames: Path) -> None:
    paths = list_frames(frames)[:2]
    rep = evaluate_folder(paths, {"bicubic": bicubic_upscaler}, degradations=SUITE, grid_frames=0)
    means = [rep.rows[d.name]["bicubic"].mean()["psnr_y"] for d in SUITE]
    assert len(set(np.round(means, 6))) == len(SUITE)  # every degradation makes a different LR
    noisy = rep.rows["area+noise3"]["bicubic"].mean()["psnr_y"]
    assert noisy < rep.rows["area"]["bicubic"].mean()["psnr_y"]  # noise costs the baseline PSNR
    h = rep.rows["area"]["bicubic"].highlights()
    assert np.isnan(h["psnr_y_highlight"]) and h["highlight_pixels"] == 0  # these frames have no reflections


def test_texture_ratio_is_one_for_the_truth_and_below_one_for_a_blurred_truth(tmp_path: Path) -> None:
    """Scores.texture_ratio through the evaluation path: a method that returns the HR frame itself (looked up
    by its LR) has exactly the HR frames' fine detail, ratio 1; the HR frame Gaussian-blurred has less."""
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(64, 80), (48, 96), (72, 72)]):  # multiples of 4: read_hr crops nothing
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        smooth = 128 + 60 * np.sin(xx / (5 + i)) * np.cos(yy / 7)
        img = np.clip(smooth[..., None] + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), img[:, :, ::-1])
        paths.append(path)
    truth = {SUITE[0](read_hr(p)).tobytes(): read_hr(p) for p in paths}  # evaluate_folder's default LR
    assert len(truth) == 3

    def oracle(lr: np.ndarray) -> np.ndarray:
        return truth[lr.tobytes()].copy()

    def blurred(lr: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(truth[lr.tobytes()], (0, 0), 1.0)

    scores = evaluate_folder(paths, {"oracle": oracle, "blurred": blurred, "bicubic": bicubic_upscaler},
                             grid_frames=0).scores
    assert scores["oracle"].texture_ratio() == pytest.approx(1.0, rel=1e-9)
    assert np.all(scores["oracle"].psnr_y == np.inf)  # it really returned the truth, every frame
    assert 0 < scores["blurred"].texture_ratio() < 0.5
    assert 0 < scores["bicubic"].texture_ratio() < scores["blurred"].texture_ratio()  # from 1/16 the pixels
