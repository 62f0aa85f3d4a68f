"""The record of a file job: what happened to each file (`JobResult`), the `--report` JSON file, and a small
sidecar beside each finished output.

Why all three: an archive run can stop anywhere (Ctrl-C, SIGTERM, a lost node, a full disk), and the
record of what was done to each recording (frames kept, damaged, repeated) must outlive it. So:
- `ReportFile` writes the whole report when the run starts (every file `pending`) and rewrites it after
  every file, always to a temporary name renamed into place, so the report on disk is whole and current
  whatever stops the run; a file that was being enhanced when the run stopped is `interrupted`, and the
  report's `state` says whether the run finished.
- a sidecar (`sidecar_path`: `.NAME.streamsr.json` beside the output) holds one file's result, written
  when its output is complete. A resumed run skips complete outputs and reports, for each, the figures of
  the run that wrote it (from the sidecar, else from the previous report at the same path), marked
  `done_earlier`, never zeros.

No torch here: the report is plain data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .errors import OutputError

STATUSES = ("ok", "salvaged", "skipped", "failed", "interrupted", "pending")
"""A file's status in a report: ok (written), salvaged (written from the decodable part of a truncated
input, --salvage), skipped (its output was already complete: done by an earlier run), failed (`error` says
why), interrupted (the run stopped while it was being enhanced; no output), pending (not started)."""

FIGURES = ("frames_in", "frames_out", "damaged", "repeated", "decode_errors", "lost_frames", "audio_tracks",
           "skipped_streams", "segments", "seconds", "fps")
"""The per-file figures a resumed run carries over from the run that wrote the output."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobResult:
    """One line of the end summary and one entry of `--report`. status: one of STATUSES; seconds: wall time;
    fps: frames_out / seconds. For a skipped file (`done_earlier`), the figures are those of the run that
    wrote its output, or None where no record of that run was found (never zeros). lost_frames: frames
    the input's header promises that a truncated file no longer holds (status salvaged)."""

    input: str
    output: str
    status: str
    frames_in: int | None = 0
    frames_out: int | None = 0
    damaged: int | None = 0
    repeated: int | None = 0
    decode_errors: int | None = 0
    lost_frames: int | None = 0
    audio_tracks: int | None = 0
    skipped_streams: tuple[str, ...] | None = ()
    segments: int | None = 1
    seconds: float | None = 0.0
    fps: float | None = 0.0
    error: str | None = None
    done_earlier: bool = False

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"JobResult.status must be one of {', '.join(STATUSES)}, got {self.status!r}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def written(self) -> bool:
        """True when this run wrote the output (ok or salvaged)."""
        return self.status in ("ok", "salvaged")

    def with_figures_of(self, earlier: dict) -> "JobResult":
        """This result with the FIGURES of `earlier` (a report entry or sidecar dict), where it has them."""
        known = {k: (tuple(v) if k == "skipped_streams" and v is not None else v)
                 for k, v in earlier.items() if k in FIGURES}
        return replace(self, **known)


def sidecar_path(output: Path) -> Path:
    """Where the record of `output` is kept: a hidden `.NAME.streamsr.json` beside it."""
    return output.with_name(f".{output.name}.streamsr.json")


def write_sidecar(result: JobResult) -> bool:
    """Record a written output's figures beside it (atomically), with its size so a replaced output is not
    credited with them. Best effort: False when it cannot be written (the output itself is fine; the
    report still holds the figures)."""
    output = Path(result.output)
    body = {**result.to_dict(), "output_bytes": output.stat().st_size if output.is_file() else None}
    try:
        _write_atomically(sidecar_path(output), body)
    except OSError:
        return False
    return True


def read_sidecar(output: Path) -> dict | None:
    """The figures a sidecar records for `output`, None without a readable sidecar that matches the output
    now on disk (same size)."""
    try:
        body = json.loads(sidecar_path(output).read_text())
        if not isinstance(body, dict) or body.get("output_bytes") != output.stat().st_size:
            return None
    except (OSError, ValueError):
        return None
    return body


def done_earlier(input: Path, output: Path) -> JobResult:
    """The result of a job whose output is already complete: skipped, with the sidecar's figures (None
    for each figure when there is no sidecar; `ReportFile` then looks in the previous report)."""
    result = JobResult(input=str(input), output=str(output), status="skipped", done_earlier=True,
                       **{k: None for k in FIGURES})
    earlier = read_sidecar(output)
    return result.with_figures_of(earlier) if earlier is not None else result


def _write_atomically(path: Path, body: dict) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_text(json.dumps(body, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def summarise(results: Sequence[JobResult], *, state: str, error: str | None = None) -> dict:
    """The report body: {"state", "error", "files": [JobResult.to_dict(), ...], and a count per status}."""
    body: dict = {"state": state, "error": error, "files": [r.to_dict() for r in results]}
    for status in STATUSES:
        body[status] = sum(r.status == status for r in results)
    return body


class ReportFile:
    """`--report FILE.json`, kept current during a run: written whole at the start (every job `pending`,
    `state` "running"), rewritten after every `record(result)`, and closed with `finish(state)`: "done",
    "interrupted" (Ctrl-C / SIGTERM), or "failed" (an error stopped the whole run, `error` says which;
    jobs it never reached stay `pending`). Each write goes to a temporary name renamed into place, so the file is never half
    written.

    An existing file at `path` must be a streamsr report (it is then the previous run's record: its
    figures are carried over for outputs this run skips without a sidecar); anything else is refused with
    OutputError, so a mistyped `--report` never overwrites a recording."""

    def __init__(self, path: Path, jobs: Sequence[tuple[Path, Path]]) -> None:
        """jobs: (input, output) of every job of the run, in order."""
        self.path = Path(path)
        self._previous = self._read_previous()
        self._results = [JobResult(input=str(i), output=str(o), status="pending") for i, o in jobs]
        self._index = {str(o): k for k, (_, o) in enumerate(jobs)}
        self._state = "running"
        self._error: str | None = None
        self._write()

    def _read_previous(self) -> dict[str, dict]:
        if self.path.is_dir():
            raise OutputError(f"report {self.path} is a folder; give a file name")
        if not self.path.exists():
            return {}
        try:
            body = json.loads(self.path.read_text())
            files = body["files"] if isinstance(body, dict) else None
            if not isinstance(files, list):
                raise ValueError("no list of files")
        except (OSError, ValueError, KeyError, UnicodeDecodeError) as e:
            raise OutputError(f"report {self.path} exists and is not a streamsr report ({e}); choose another "
                              "path") from None
        return {f["output"]: f for f in files
                if isinstance(f, dict) and "output" in f
                and (f.get("status") in ("ok", "salvaged") or (f.get("done_earlier") and f.get("frames_out") is not None))}

    def record(self, result: JobResult) -> JobResult:
        """Put `result` in its job's place (filling a skipped file's unknown figures from the previous
        report) and rewrite the file. Returns the result as recorded."""
        if result.done_earlier and result.frames_out is None and result.output in self._previous:
            result = result.with_figures_of(self._previous[result.output])
        self._results[self._index[result.output]] = result
        self._write()
        return result

    def finish(self, state: str, *, error: str | None = None) -> None:
        """Mark the run "done", "interrupted" or "failed" (with its one-line `error`) and rewrite the file."""
        if state not in ("done", "interrupted", "failed"):
            raise ValueError(f"ReportFile.finish: state must be done, interrupted or failed, got {state!r}")
        self._state, self._error = state, error
        self._write()

    @property
    def results(self) -> list[JobResult]:
        return list(self._results)

    def _write(self) -> None:
        try:
            _write_atomically(self.path, summarise(self._results, state=self._state, error=self._error))
        except OSError as e:
            raise OutputError(f"report {self.path} cannot be written ({e.strerror or e})") from None

