"""`streamsr enhance` through its entry point (streamsr.cli.main, in this process): outputs (a folder, 2x
with --outscale), one-line errors, exit codes; Ctrl-C on a real process."""

import os
import signal

import av
import pytest

from helpers import (
    assert_one_line_error,
    audio_packets,
    corrupt_packet,
    frame_times,
    leftovers,
    make_timed_clip,
    popen_cli,
    probe,
    run_main,
    signal_when,
)
from streamsr.testing import make_clip


def test_enhance_a_folder(tmp_path, tiny_weights, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    make_clip(folder / "a.mp4", frames=3)
    make_clip(folder / "b.mov", frames=4)
    code, err = run_main(capsys, "enhance", str(folder), "-o", str(tmp_path / "out"), "--weights", str(tiny_weights),
                         "-q")
    assert code == 0, err
    assert [probe(tmp_path / "out" / n)["frames"] for n in ("a.mp4", "b.mp4")] == [3, 4]


def test_missing_input(tmp_path, tiny_weights, capsys):
    code, err = run_main(capsys, "enhance", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "out.mp4"), "--weights",
                         str(tiny_weights))
    assert_one_line_error(code, err, "nope.mp4", "does not exist")
    assert leftovers(tmp_path) == []


def test_not_a_video(tmp_path, tiny_weights, capsys):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 50)
    code, err = run_main(capsys, "enhance", str(bad), "-o", str(tmp_path / "out.mp4"), "--weights", str(tiny_weights))
    assert_one_line_error(code, err, "notes.mp4", "not a readable video")
    assert leftovers(tmp_path) == []


def test_truncated_video(tmp_path, tiny_weights, capsys):
    clip = make_clip(tmp_path / "c.mkv", frames=30)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    code, err = run_main(capsys, "enhance", str(cut), "-o", str(tmp_path / "out.mp4"), "--weights", str(tiny_weights))
    assert_one_line_error(code, err, "cut.mkv", "truncated")
    assert leftovers(tmp_path) == []


def test_corrupt_frame_is_reported_and_sync_kept(tmp_path, tiny_weights, capsys):
    clip = make_clip(tmp_path / "c.mp4", frames=12)
    bad = tmp_path / "bad.mp4"
    corrupt_packet(clip, bad, 6)
    out = tmp_path / "out.mp4"
    code, err = run_main(capsys, "enhance", str(bad), "-o", str(out), "--weights", str(tiny_weights))
    assert code == 0, err
    assert "corrupt frame(s) repeated" in err
    assert probe(out)["frames"] == 12


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_read_only_output_folder(clip, tmp_path, tiny_weights, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, err = run_main(capsys, "enhance", str(clip), "-o", str(locked / "out.mp4"), "--weights",
                             str(tiny_weights))
        assert_one_line_error(code, err, "not writable")
    finally:
        locked.chmod(0o700)
    assert leftovers(locked) == []


def test_output_folder_missing(clip, tmp_path, tiny_weights, capsys):
    code, err = run_main(capsys, "enhance", str(clip), "-o", str(tmp_path / "no" / "out.mp4"), "--weights",
                         str(tiny_weights))
    assert_one_line_error(code, err, "no", "does not exist")


def test_output_on_a_filesystem_that_refuses_files(clip, tiny_weights, capsys):
    # /proc refuses new files even for root: the open itself fails
    code, err = run_main(capsys, "enhance", str(clip), "-o", "/proc/streamsr-out.mp4", "--weights", str(tiny_weights))
    assert_one_line_error(code, err, "/proc/streamsr-out.mp4")


def test_existing_output_needs_overwrite(clip, tmp_path, tiny_weights, capsys):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    code, err = run_main(capsys, "enhance", str(clip), "-o", str(out), "--weights", str(tiny_weights))
    assert_one_line_error(code, err, "already exists", "--overwrite")
    assert out.read_bytes() == b"precious"
    code, err = run_main(capsys, "enhance", str(clip), "-o", str(out), "--weights", str(tiny_weights), "--overwrite",
                         "-q")
    assert code == 0, err
    assert probe(out)["frames"] == 8


def test_weights_of_the_wrong_preset(clip, tmp_path, tiny_weights, capsys):
    code, err = run_main(capsys, "enhance", str(clip), "-o", str(tmp_path / "out.mp4"), "--weights", str(tiny_weights),
                         "--preset", "srgan-x4")
    assert_one_line_error(code, err, "srgan-x4-tiny", "srgan-x4")
    assert leftovers(tmp_path) == []


def test_ctrl_c_leaves_no_file_that_looks_complete(tmp_path, tiny_weights):
    clip = make_clip(tmp_path / "long.mp4", frames=300, width=64, height=48)
    out = tmp_path / "out.mp4"
    proc = popen_cli("enhance", str(clip), "-o", str(out), "--weights", str(tiny_weights))  # a real Ctrl-C: a process
    err = signal_when(proc, r"\|\s*[1-9]\d*/300", signal.SIGINT)  # once frames flow (the bar counts > 0)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err
    assert leftovers(tmp_path) == []


def test_unknown_weights_name_lists_the_shipped_ones(clip, tmp_path, capsys):
    from streamsr.model import SHIPPED

    code, err = run_main(capsys, "enhance", str(clip), "-o", str(tmp_path / "out.mp4"), "--weights", "srgan-x4-nope")
    assert_one_line_error(code, err, "unknown weights 'srgan-x4-nope'", *SHIPPED)
    assert leftovers(tmp_path) == []


def test_enhance_names_the_tile_it_resolved(clip, tmp_path, tiny_weights, capsys):
    """No --tile: the CPU engine takes any window, so the large tile; the line says which, not "None"."""
    from streamsr.tiling import ANY_WINDOW_TILE, DEFAULT_HALO

    code, err = run_main(capsys, "enhance", str(clip), "-o", str(tmp_path / "out.mp4"), "--weights", str(tiny_weights),
                         "--device", "cpu")
    assert code == 0, err
    assert f"tile {ANY_WINDOW_TILE}+{DEFAULT_HALO} halo" in err


def test_an_image_name_as_output_says_what_to_do(tmp_path, tiny_weights, capsys):
    clip = make_clip(tmp_path / "c.mp4", frames=2)
    code, err = run_main(capsys, "enhance", str(clip), "-o", str(tmp_path / "out.png"), "--weights", str(tiny_weights))
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"streamsr: error: output {tmp_path / 'out.png'} is an image name; streamsr enhance writes videos: give a "
        f"video name such as {tmp_path / 'out.mp4'} (to enhance single images, call streamsr.upscale from Python)")


def test_outscale_2_gives_2x_outputs_with_audio_and_timestamps_intact(tmp_path, tiny_weights, capsys):
    pts = [0, 33, 70, 100, 160, 166, 200, 290, 300]
    clip = make_timed_clip(tmp_path / "vfr.mp4", pts, audio=(("eng", "mic"),))
    out = tmp_path / "out.mp4"
    code, err = run_main(capsys, "enhance", str(clip), "-o", str(out), "--weights", str(tiny_weights), "--outscale", "2",
                         "--compare", "-q")
    assert code == 0, err
    for path, panels in ((out, 1), (tmp_path / "out.compare.mp4", 2)):
        with av.open(str(path)) as c:
            assert (c.streams.video[0].width, c.streams.video[0].height) == (panels * 2 * 48, 2 * 40)
    assert frame_times(out)[0] == frame_times(clip)[0]
    assert audio_packets(out) == audio_packets(clip)
    code, err = run_main(capsys, "enhance", str(clip), "-o", str(tmp_path / "o2.mp4"), "--outscale", "5")
    assert code == 2 and err.strip() == "streamsr: error: --outscale must be > 0 and <= 4, got 5"
