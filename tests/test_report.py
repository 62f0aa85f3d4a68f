"""The record of an archive run survives whatever stops it: a report written at the start and after every
file, with the file a real SIGINT/SIGTERM stopped marked `interrupted`, and a resume that keeps the first
run's figures for the files it skips (real PyAV clips, real signals to a real process); a folder's subfolders
in the report with --recursive, a truncated recording salvaged."""

import json
import signal
from pathlib import Path

import pytest

from helpers import corrupt_packet, frame_times, popen_cli, run_main, signal_when
from streamsr.errors import OutputError
from streamsr.report import ReportFile, done_earlier, sidecar_path
from streamsr.testing import make_clip


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_sigint_in_the_second_of_three_files_leaves_a_report_and_a_resume_keeps_the_first_runs_figures(
        tmp_path, tiny_weights, capsys):
    folder, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "report.json"
    folder.mkdir()
    corrupt_packet(make_clip(tmp_path / "a.mp4", frames=12), folder / "a.mp4", 6)  # damaged: repeated frames
    make_clip(folder / "b.mp4", frames=400, width=64, height=48)
    make_clip(folder / "c.mp4", frames=3, audio=True)
    args = ("enhance", str(folder), "-o", str(out), "--weights", str(tiny_weights), "--engine", "torch",
            "--report", str(report))
    proc = popen_cli(*args)
    # a is written (its line printed), and frames of b are flowing (the bar is past a's 12 frames)
    err = signal_when(proc, r"wrote \S*a\.mp4[^\n]*\n(.|\n)*\|\s*(1[3-9]|[2-9]\d|\d{3})/415", signal.SIGINT)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    body = json.loads(report.read_text())
    assert body["state"] == "interrupted"
    a, b, c = body["files"]
    assert (a["status"], b["status"], c["status"]) == ("ok", "interrupted", "pending")
    assert (body["ok"], body["interrupted"], body["pending"]) == (1, 1, 1)
    assert a["frames_out"] == 12 and a["repeated"] >= 1 and a["seconds"] > 0
    assert visible(out) == ["a.mp4"] and sidecar_path(out / "a.mp4").is_file()
    assert not [p for p in out.iterdir() if "partial" in p.name]

    code, err = run_main(capsys, *args, "-q")  # the resume: no signal, so in this process
    assert code == 0, err
    resumed = json.loads(report.read_text())
    assert resumed["state"] == "done" and (resumed["skipped"], resumed["ok"]) == (1, 2)
    a2, b2, c2 = resumed["files"]
    assert a2["status"] == "skipped" and a2["done_earlier"] is True
    figures = ("frames_in", "frames_out", "damaged", "repeated", "decode_errors", "audio_tracks", "seconds", "fps")
    assert {k: a2[k] for k in figures} == {k: a[k] for k in figures}
    assert (b2["status"], b2["frames_out"], c2["status"], c2["audio_tracks"]) == ("ok", 400, "ok", 1)
    assert visible(out) == ["a.mp4", "b.mp4", "c.mp4"]


def test_sigterm_on_a_single_file_marks_it_interrupted(tmp_path, tiny_weights):
    clip = make_clip(tmp_path / "long.mp4", frames=400, width=64, height=48)
    out, report = tmp_path / "out.mp4", tmp_path / "r.json"
    proc = popen_cli("enhance", str(clip), "-o", str(out), "--weights", str(tiny_weights), "--report", str(report))
    err = signal_when(proc, r"\|\s*[1-9]\d*/400", signal.SIGTERM)
    assert proc.returncode == 130 and "Traceback" not in err, err
    body = json.loads(report.read_text())
    assert body["state"] == "interrupted" and [f["status"] for f in body["files"]] == ["interrupted"]
    assert not out.exists()


def test_a_single_file_failure_is_reported(tmp_path, tiny_weights, capsys):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video\n" * 40)
    report = tmp_path / "r.json"
    code, err = run_main(capsys, "enhance", str(bad), "-o", str(tmp_path / "o.mp4"), "--weights", str(tiny_weights),
                         "--report", str(report))
    assert code == 1 and "not a readable video" in err
    body = json.loads(report.read_text())
    assert body["state"] == "failed" and body["failed"] == 1
    assert "not a readable video" in body["files"][0]["error"] and "not a readable video" in body["error"]


def test_a_resume_without_a_sidecar_takes_the_figures_from_the_previous_report(tmp_path):
    src, out, report = tmp_path / "a.mp4", tmp_path / "a_x4.mp4", tmp_path / "r.json"
    out.write_bytes(b"a complete output")
    earlier = {"input": str(src), "output": str(out), "status": "ok", "frames_in": 74, "frames_out": 80,
               "damaged": 1, "repeated": 6, "decode_errors": 3, "audio_tracks": 2, "seconds": 9.5, "fps": 8.4}
    report.write_text(json.dumps({"files": [earlier]}))
    record = ReportFile(report, [(src, out)])
    assert json.loads(report.read_text())["files"][0]["status"] == "pending"  # written at once
    skipped = done_earlier(src, out)
    assert skipped.frames_out is None  # no sidecar: unknown, not zero
    recorded = record.record(skipped)
    assert (recorded.status, recorded.done_earlier, recorded.repeated, recorded.frames_out) == ("skipped", True, 6, 80)
    entry = json.loads(report.read_text())["files"][0]
    assert (entry["repeated"], entry["damaged"], entry["decode_errors"]) == (6, 1, 3)


def test_a_report_path_holding_something_else_is_refused_untouched(tmp_path):
    precious = tmp_path / "a.mp4"
    precious.write_bytes(b"\x00\x00\x00\x18ftypmp42 a recording")
    with pytest.raises(OutputError, match="is not a streamsr report"):
        ReportFile(precious, [(tmp_path / "x.mp4", tmp_path / "y.mp4")])
    assert precious.read_bytes() == b"\x00\x00\x00\x18ftypmp42 a recording"


def test_recursive_mirrors_subfolders_and_without_it_one_warning_names_them(tmp_path, tiny_weights, capsys):
    folder, out = tmp_path / "in", tmp_path / "out"
    (folder / "patient1" / "day2").mkdir(parents=True)
    make_clip(folder / "top.mp4", frames=2)
    make_clip(folder / "patient1" / "a.mp4", frames=3, audio=True)
    make_clip(folder / "patient1" / "day2" / "b.mkv", frames=2)
    args = ("enhance", str(folder), "-o", str(out), "--weights", str(tiny_weights), "--engine", "torch")
    code, err = run_main(capsys, *args)
    assert code == 0, err
    assert [ln for ln in err.splitlines() if "warning" in ln] == [
        "streamsr: warning: 1 subfolder(s) with videos not enhanced: patient1 (add --recursive)"]
    assert visible(out) == ["top.mp4"]
    code, err = run_main(capsys, *args, "--recursive", "--report", str(tmp_path / "r.json"), "-q")
    assert code == 0, err
    assert visible(out) == ["patient1", "top.mp4"] and visible(out / "patient1") == ["a.mp4", "day2"]
    assert visible(out / "patient1" / "day2") == ["b.mp4"]
    body = json.loads((tmp_path / "r.json").read_text())
    assert [(Path(f["output"]).relative_to(out).as_posix(), f["status"]) for f in body["files"]] == [
        ("patient1/a.mp4", "ok"), ("patient1/day2/b.mp4", "ok"), ("top.mp4", "skipped")]
    assert body["files"][0]["audio_tracks"] == 1


def test_salvage_keeps_the_decodable_frames_of_a_truncated_recording(tmp_path, tiny_weights, capsys):
    import av

    clip = make_clip(tmp_path / "c.mp4", frames=20, audio=True)
    indexed = tmp_path / "indexed.mp4"  # moov first, as recorders that write the index up front do
    with av.open(str(clip)) as src, av.open(str(indexed), "w", options={"movflags": "faststart"}) as dst:
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.size:
                packet.stream = streams[packet.stream.index]
                dst.mux(packet)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(indexed.read_bytes()[: int(indexed.stat().st_size * 0.6)])
    args = ("enhance", str(cut), "-o", str(tmp_path / "out.mp4"), "--weights", str(tiny_weights))
    code, err = run_main(capsys, *args)
    assert code == 1 and "truncated" in err and "--salvage keeps them" in err
    report = tmp_path / "r.json"
    code, err = run_main(capsys, *args, "--salvage", "--report", str(report))
    assert code == 0, err
    entry = json.loads(report.read_text())["files"][0]
    assert entry["status"] == "salvaged" and entry["lost_frames"] > 0
    kept = 20 - entry["lost_frames"]
    times, _, _ = frame_times(tmp_path / "out.mp4")
    assert entry["frames_out"] == len(times) and kept - 1 <= len(times) <= kept
    source = frame_times(clip)[0]
    assert times[:10] == source[:10] and set(times) <= set(source)  # kept frames at their own times (B-frames
    assert times == sorted(times)                                    # past the cut may leave a gap near the end)
    assert "salvaged from a truncated file" in err
