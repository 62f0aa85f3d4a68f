"""Real recordings kept intact: exact VFR timestamps, every audio track bit for bit, damaged data repaired
and counted, folder jobs that finish, resume and report (real PyAV clips, tiny generator)."""

import json
from fractions import Fraction

import pytest

from helpers import audio_packets, enhance_file, engine_for, frame_times, make_timed_clip, overwrite_middle, run_main
from streamsr.enhancer import Enhancer
from streamsr.errors import InputError
from streamsr.jobs import EnhanceJob, JobOptions, LocalExecutor, plan_units, run_jobs
from streamsr.sinks import partial_path
from streamsr.testing import make_clip
from streamsr.tiling import Tiler

IRREGULAR = [0, 33, 70, 100, 160, 166, 200, 290, 300, 333, 370, 400, 1400, 1433, 1466, 1500]
"""ms: jittered spacing, a 6 ms pair, and a 1 s jump (a recorder paused)."""


@pytest.fixture(scope="module")
def enhancer(tiny_weights):
    engine = engine_for(engine="torch", device="cpu", weights=str(tiny_weights), window=48)
    return Enhancer(engine, Tiler(tile=32, halo=8))


@pytest.mark.parametrize("bframes", [True, False])
def test_vfr_timestamps_kept_exactly(tmp_path, enhancer, bframes):
    clip = make_timed_clip(tmp_path / "vfr.mp4", IRREGULAR, bframes=bframes)
    out = tmp_path / "out.mp4"
    report = enhance_file(EnhanceJob(input=clip, output=out), enhancer)
    src, src_tb, _ = frame_times(clip)
    dst, dst_tb, _ = frame_times(out)
    assert src_tb == Fraction(1, 1000) and dst_tb == src_tb
    assert report.frames_out == len(dst) == len(IRREGULAR)
    assert dst == src == [Fraction(p, 1000) for p in IRREGULAR]


def test_vfr_into_mkv_is_an_exact_rescale(tmp_path, enhancer):
    clip = make_timed_clip(tmp_path / "vfr.mp4", [3 * p for p in IRREGULAR], time_base=Fraction(1, 3000))
    out = tmp_path / "out.mkv"
    enhance_file(EnhanceJob(input=clip, output=out), enhancer)
    dst, tb, _ = frame_times(out)
    assert tb == Fraction(1, 1000)
    assert dst == [Fraction(p, 1000) for p in IRREGULAR]


def test_duplicated_pts_are_made_distinct_by_one_tick(tmp_path, enhancer):
    pts = [0, 40, 80, 80, 120, 160, 160, 200, 240, 1240, 1280]
    clip = make_timed_clip(tmp_path / "dup.mkv", pts, bframes=False)
    out = tmp_path / "out.mp4"
    enhance_file(EnhanceJob(input=clip, output=out), enhancer)
    dst, tb, _ = frame_times(out)
    ticks = [t / tb for t in dst]
    assert len(ticks) == len(pts)
    assert all(b > a for a, b in zip(ticks, ticks[1:]))
    assert max(abs(t - p) for t, p in zip(ticks, pts)) == 1


def test_two_audio_tracks_copied_bit_for_bit_with_metadata(tmp_path, enhancer):
    tracks = (("eng", "room microphone"), ("deu", "narration"))
    clip = make_timed_clip(tmp_path / "two.mp4", [40 * i for i in range(12)], audio=tracks)
    out = tmp_path / "out.mkv"
    enhance_file(EnhanceJob(input=clip, output=out), enhancer)
    src, dst = audio_packets(clip), audio_packets(out)
    assert len(dst) == 2
    for (src_meta, src_packets), (dst_meta, dst_packets), (language, title) in zip(src, dst, tracks):
        assert dst_packets == src_packets and len(src_packets) > 5
        assert dst_meta.get("language") == language and dst_meta.get("title") == title


def test_garbage_in_the_middle_gives_a_complete_output_with_a_damage_count(tmp_path, enhancer):
    clip = make_clip(tmp_path / "c.mp4", frames=40, width=64, height=48, audio=True)
    bad = overwrite_middle(clip, tmp_path / "bad.mp4", 6000)
    out = tmp_path / "out.mp4"
    report = enhance_file(EnhanceJob(input=bad, output=out), enhancer)
    assert report.repeated + report.damaged >= 1
    assert report.decode_errors >= 1
    dst, tb, _ = frame_times(out)
    assert dst == [Fraction(i, 10) for i in range(40)]
    with pytest.raises(InputError, match="damaged.*--strict"):
        enhance_file(EnhanceJob(input=bad, output=tmp_path / "strict.mp4"), enhancer, strict=True)
    assert not (tmp_path / "strict.mp4").exists() and not partial_path(tmp_path / "strict.mp4").exists()


def test_long_clip_is_cut_at_keyframes_and_joined_without_gap_or_duplicate(tmp_path, enhancer):
    pts = [100 * i + (i % 3) * 7 for i in range(40)]  # 4 s, VFR, B-frames, a keyframe every 10 frames
    clip = make_timed_clip(tmp_path / "long.mp4", pts, gop=10, audio=(("eng", "mic"),))
    options = JobOptions(segment_seconds=1.0)
    job = EnhanceJob(input=clip, output=tmp_path / "out.mp4")
    units = plan_units(job, options)
    # keyframes at 0, 1007, 2014, 3000 ms: each cut is the first keyframe >= 1 s after the last one
    assert [u.window[0] for u in units] == [0, 1007, 2014] and [u.frames for u in units] == [10, 10, 20]
    [result] = run_jobs([job], LocalExecutor(enhancer), options)
    dst, tb, packets = frame_times(job.output)
    assert result.status == "ok" and result.segments == 3 and packets == 40
    assert dst == [Fraction(p, 1000) for p in pts]
    assert audio_packets(job.output) == audio_packets(clip)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4", "out.mp4"]  # segments removed


def test_mixed_folder_report_resume_and_overwrite(tmp_path, tiny_weights, capsys):
    folder, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "report.json"
    folder.mkdir()
    make_clip(folder / "a.mp4", frames=3, audio=True)
    (folder / "b_broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 200)
    make_clip(folder / "c.mkv", frames=4)
    args = ("enhance", str(folder), "-o", str(out), "--weights", str(tiny_weights), "--engine", "torch")
    code, err = run_main(capsys, *args, "--report", str(report))
    assert code == 1, err
    assert sorted(p.name for p in out.iterdir()) == [".a.mp4.streamsr.json", ".c.mp4.streamsr.json", "a.mp4", "c.mp4"]
    failures = [line for line in err.splitlines() if "FAILED" in line]
    assert len(failures) == 1 and "b_broken.mp4" in failures[0] and "not a readable video" in failures[0]
    assert "Traceback" not in err
    body = json.loads(report.read_text())
    assert (body["ok"], body["failed"], body["skipped"]) == (2, 1, 0)
    a, b, c = body["files"]
    assert set(a) >= {"input", "output", "frames_in", "frames_out", "damaged", "repeated", "audio_tracks",
                      "seconds", "fps", "status", "error"}
    assert (a["status"], a["frames_in"], a["frames_out"], a["audio_tracks"], a["error"]) == ("ok", 3, 3, 1, None)
    assert (c["frames_out"], c["audio_tracks"]) == (4, 0) and a["seconds"] > 0 and a["fps"] > 0
    assert b["status"] == "failed" and "not a readable video" in b["error"]

    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code, err = run_main(capsys, *args, "--report", str(report), "-q")
    assert code == 1
    body = json.loads(report.read_text())
    assert [f["status"] for f in body["files"]] == ["skipped", "failed", "skipped"]
    assert [(f["done_earlier"], f["frames_out"]) for f in body["files"][::2]] == [(True, 3), (True, 4)]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes
    (folder / "b_broken.mp4").unlink()
    code, err = run_main(capsys, *args, "--overwrite", "-q")
    assert code == 0, err
    assert all(p.stat().st_mtime_ns > mtimes[p.name] for p in out.iterdir())


def test_cli_prints_damage_and_strict_fails(tmp_path, tiny_weights, capsys):
    clip = make_clip(tmp_path / "c.mp4", frames=40, width=64, height=48)
    bad = overwrite_middle(clip, tmp_path / "bad.mp4", 6000)
    code, err = run_main(capsys, "enhance", str(bad), "-o", str(tmp_path / "out.mp4"), "--weights", str(tiny_weights))
    assert code == 0, err
    assert "repeated to keep sync" in err or "damaged frame(s) kept" in err
    code, err = run_main(capsys, "enhance", str(bad), "-o", str(tmp_path / "s.mp4"), "--weights", str(tiny_weights),
                         "--strict")
    assert code == 1 and "Traceback" not in err
    assert [ln for ln in err.splitlines() if ln.startswith("streamsr: error:")][0].count("--strict") == 1
    assert not (tmp_path / "s.mp4").exists()
