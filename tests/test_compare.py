"""The labelled comparison video: caption strips, CompareSink's panels (exactly, with a fake engine), and
`enhance --compare / --compare-with` through the entry point (labels read back from the encoded file,
three-panel size, timestamps and audio equal to the main output's, one-line refusals that leave nothing)."""

from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from helpers import assert_one_line_error, leftovers, make_timed_clip, probe, run_main
from streamsr.compare import BICUBIC_LABEL, DIVIDER_VALUE, STRIP_VALUE, CompareSink, label_strip, strip_height
from streamsr.enhancer import Enhancer
from streamsr.errors import WeightsError
from streamsr.frame import Frame
from streamsr.spec import EnhancerSpec
from streamsr.model import Generator, save_weights
from streamsr.testing import CollectingSink, NearestEngine
from streamsr.tiling import Tiler


@pytest.fixture(scope="module")
def gray_weights(tmp_path_factory):
    """Tiny-preset weights whose output is about mid-gray everywhere (tail bias 0.5), so a panel they made
    is told apart from the (near-black) random tiny model's at a glance."""
    torch.manual_seed(1)
    g = Generator("srgan-x4-tiny")
    with torch.no_grad():
        g.tail.weight.mul_(0.01)
        g.tail.bias.fill_(0.5)
    return save_weights(g, tmp_path_factory.mktemp("gray") / "gray.safetensors")


def first_frame(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def assert_caption(region: np.ndarray) -> None:
    """A caption strip read back from a lossy video: mostly the dark strip, with some bright text pixels."""
    luma = region.mean(axis=2)
    assert np.median(luma) < STRIP_VALUE + 24, np.median(luma)
    assert (luma > 150).sum() >= 10, (luma > 150).sum()


# ---- the pieces ------------------------------------------------------------------------------------------


def test_label_strip_draws_the_text_on_a_dark_strip():
    a, b = label_strip("bicubic", 192, 11), label_strip("srgan-x4-lite", 192, 11)
    assert a.shape == (11, 192, 3) and a.dtype == np.uint8
    for strip in (a, b):
        assert np.median(strip) == STRIP_VALUE and (strip > 150).sum() >= 20
    assert not np.array_equal(a, b)
    assert (label_strip("a-very-long-weights-file-name", 24, 11) >= STRIP_VALUE).all()  # shrinks to fit, no error
    assert strip_height(160) == 11 and strip_height(480) == 34 and strip_height(8) == 4


def test_compare_sink_composes_labelled_panels_exactly():
    enhancer = Enhancer(NearestEngine(), Tiler(tile=8, halo=2))
    lowres = np.random.default_rng(0).integers(0, 256, (10, 12, 3), np.uint8)
    frame = enhancer.enhance(Frame(image=lowres, seq=3, pts=90, time_base=Fraction(1, 30)))
    seen = []

    def other(f: Frame) -> Frame:
        seen.append(f)
        return f.with_image(np.full((40, 48, 3), 200, np.uint8), scale=4)

    inner = CollectingSink()
    sink = CompareSink(inner, width=48, height=40, labels=(BICUBIC_LABEL, "model", "other"), others=(other,))
    sink.write(frame)
    sink.close()
    (out,) = inner.frames
    rows = strip_height(40)
    assert out.image.shape == (40, 144, 3) and (out.seq, out.pts, out.time_base) == (3, 90, Fraction(1, 30))
    assert inner.closed
    body = out.image[rows:]
    np.testing.assert_array_equal(body[:, 49:95], frame.image[rows:, 1:47])  # dividers: columns 47-48, 95-96
    assert (body[:, 97:] == 200).all()
    assert (out.image[:, [47, 48, 95, 96]] == DIVIDER_VALUE).all()
    np.testing.assert_array_equal(out.image[:rows, 49:95], label_strip("model", 48, rows)[:, 1:47])
    (given,) = seen
    assert given.image is frame.lowres and (given.seq, given.pts) == (3, 90)
    assert given.timeline is not frame.timeline  # the second model's stamps do not overwrite the main frame's


# ---- through the CLI ------------------------------------------------------------------------------------


def test_enhance_writes_4x_video_with_audio_and_a_labelled_compare(clip, tmp_path, tiny_weights, capsys):
    out = tmp_path / "out.mp4"
    code, err = run_main(capsys, "enhance", str(clip), "-o", str(out), "--weights", str(tiny_weights), "--compare")
    assert code == 0, err
    src, dst, both = probe(clip), probe(out), probe(tmp_path / "out.compare.mp4")
    assert dst["size"] == (192, 160) and both["size"] == (384, 160)
    assert dst["frames"] == both["frames"] == src["frames"] and dst["pts_s"] == both["pts_s"]
    assert dst["rate"] == src["rate"]
    assert dst["audio"] == both["audio"] == ["aac"]
    assert "wrote" in err and "8 frames" in err
    main, cmp = first_frame(out), first_frame(tmp_path / "out.compare.mp4")
    h, w = main.shape[:2]
    assert cmp.shape == (h, 2 * w, 3)
    rows = strip_height(h)
    for k in range(2):
        assert_caption(cmp[:rows, k * w + 2 : (k + 1) * w - 2])
    # the bicubic picture is bright and colourful where its caption now is; the rest is the picture
    bicubic = cmp[rows + 2 :, 2 : w - 2].astype(int)
    assert np.abs(cmp[:rows, 2 : w - 2].astype(int) - bicubic[:rows]).mean() > 40
    assert np.abs(cmp[rows + 2 :, w + 2 : 2 * w - 2].astype(int) - main[rows + 2 :, 2 : w - 2]).mean() < 6
    # the two captions say different things (bicubic, tiny)
    assert not np.array_equal(cmp[:rows, 2:60] > 150, cmp[:rows, w + 2 : w + 60] > 150)


def test_compare_with_adds_a_third_labelled_panel_with_the_same_timestamps(tmp_path, tiny_weights, gray_weights,
                                                                           capsys):
    pts = [0, 40, 120, 130, 200, 290]  # variable frame rate, ms
    clip = make_timed_clip(tmp_path / "vfr.mp4", pts, audio=(("eng", "room"),))
    out = tmp_path / "out.mp4"
    code, err = run_main(capsys, "enhance", str(clip), "-o", str(out), "--weights", str(tiny_weights),
                         "--compare-with", str(gray_weights))  # implies --compare
    assert code == 0, err
    assert "compare video panels: bicubic | tiny | gray" in err
    cmp_path = tmp_path / "out.compare.mp4"
    main, cmp = probe(out), probe(cmp_path)
    w, h = main["size"]
    assert cmp["size"] == (3 * w, h)
    assert cmp["pts_s"] == main["pts_s"] == [p / 1000 for p in pts]
    assert cmp["audio"] == main["audio"] == ["aac"]
    frame = first_frame(cmp_path)
    rows = strip_height(h)
    for k in range(3):
        assert_caption(frame[:rows, k * w + 2 : (k + 1) * w - 2])
    model, other = frame[rows + 2 :, w + 2 : 2 * w - 2], frame[rows + 2 :, 2 * w + 2 : 3 * w - 2]
    assert np.abs(model.astype(int) - first_frame(out)[rows + 2 :, 2 : w - 2]).mean() < 6
    assert abs(other.mean() - 128) < 20 and model.mean() < 60  # the third panel is the gray model's
    assert leftovers(tmp_path) == ["out.compare.mp4", "out.mp4"]


def test_unknown_compare_with_weights_is_one_line_and_leaves_nothing(clip, tmp_path, tiny_weights, capsys):
    code, err = run_main(capsys, "enhance", str(clip), "-o", str(tmp_path / "out.mp4"), "--weights", str(tiny_weights),
                         "--compare-with", "srgan-x4-nope")
    assert_one_line_error(code, err, "--compare-with", "srgan-x4-nope", "srgan-x4-lite")
    assert leftovers(tmp_path) == []
    from streamsr.cli.enhance import _compare_options  # the same check, for a file that is not there

    with pytest.raises(WeightsError, match=r"^--compare-with: weights file .*missing.safetensors does not exist$"):
        _compare_options(EnhancerSpec.resolve(str(tiny_weights)), str(tmp_path / "missing.safetensors"))
