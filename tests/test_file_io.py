"""FileSource / FileSink / enhance_video on real PyAV files."""

from fractions import Fraction

import numpy as np
import pytest

from helpers import corrupt_packet, enhance_file, engine_for, probe
from streamsr.enhancer import Enhancer
from streamsr.errors import InputError
from streamsr.jobs import EnhanceJob
from streamsr.sinks import FileSink, partial_path
from streamsr.sources import FileSource
from streamsr.testing import make_clip, synthetic_image
from streamsr.tiling import Tiler


@pytest.fixture
def enhancer(tiny_weights):
    engine = engine_for(engine="torch", device="cpu", weights=str(tiny_weights), window=48)
    return Enhancer(engine, Tiler(tile=32, halo=8))


def test_file_source_reads_every_frame_with_timestamps(clip):
    with FileSource(clip) as src:
        frames = list(src)
        assert src.info.width == 48 and src.info.height == 40 and src.info.rate == 10
        assert src.info.has_audio
    assert len(frames) == 8
    assert [f.seq for f in frames] == list(range(8))
    assert [f.seconds for f in frames] == pytest.approx([i / 10 for i in range(8)])
    # lossy codec, but each frame is recognisably its own synthetic frame
    errs = [np.abs(f.image.astype(int) - synthetic_image(i, 48, 40)).mean() for i, f in enumerate(frames)]
    assert max(errs) < 12


def test_enhance_video_keeps_count_rate_duration_and_audio(clip, tmp_path, enhancer):
    out = tmp_path / "out.mp4"
    report = enhance_file(EnhanceJob(input=clip, output=out), enhancer)
    src, dst = probe(clip), probe(out)
    assert dst["size"] == (4 * 48, 4 * 40)
    assert dst["frames"] == src["frames"] == report.frames_out == 8
    assert dst["rate"] == src["rate"]
    assert dst["pts_s"] == pytest.approx(src["pts_s"], abs=1e-3)
    assert dst["audio"] == ["aac"]
    assert not partial_path(out).exists()


def test_corrupt_frame_in_the_middle_is_repeated_and_counted(tmp_path, enhancer):
    clip = make_clip(tmp_path / "c.mp4", frames=12)
    bad = tmp_path / "bad.mp4"
    corrupt_packet(clip, bad, 6)
    out = tmp_path / "out.mp4"
    report = enhance_file(EnhanceJob(input=bad, output=out), enhancer)
    assert report.decode_errors >= 1
    assert report.repeated >= 1
    dst = probe(out)
    assert dst["frames"] == 12
    assert dst["pts_s"] == pytest.approx([i / 10 for i in range(12)], abs=1e-3)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_truncated_video_is_an_input_error_and_leaves_no_output(tmp_path, enhancer, suffix):
    clip = make_clip(tmp_path / f"c{suffix}", frames=30)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    out = tmp_path / "out.mp4"
    with pytest.raises(InputError, match="truncated|not a readable video"):
        enhance_file(EnhanceJob(input=cut, output=out), enhancer)
    assert list(tmp_path.glob("*out*")) == []


def test_file_sink_abort_removes_the_partial_file(tmp_path):
    out = tmp_path / "o.mp4"
    sink = FileSink(out, width=32, height=32, rate=Fraction(10), time_base=Fraction(1, 10))
    from streamsr.frame import Frame

    for i in range(60):  # past x264's look-ahead, so packets reach the file
        sink.write(Frame(image=np.full((32, 32, 3), i, np.uint8), seq=i, pts=i, time_base=Fraction(1, 10)))
    assert partial_path(out).exists() and not out.exists()
    sink.abort()
    assert not partial_path(out).exists() and not out.exists()


