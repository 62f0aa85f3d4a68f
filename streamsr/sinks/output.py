"""An output video file written atomically: the path checks, the time base each container keeps, the copy of
a source's audio/subtitle/data streams, and `AtomicOutput` (written under a partial name, moved into place
only when finished). FileSink (file.py) and join_segments (join.py) write through it."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av

from ..errors import InputError, OutputError

log = logging.getLogger(__name__)


def check_output_path(path: Path, *, overwrite: bool) -> None:
    """OutputError (one line) unless `path` can be created: not existing (or overwrite), folder writable."""
    if path.is_dir():
        raise OutputError(f"output {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise OutputError(f"output {path} already exists (use --overwrite to replace it)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {parent} is not writable")


def partial_path(path: Path) -> Path:
    """Where a FileSink writes until it is complete: a hidden sibling that keeps the suffix (so FFmpeg
    picks the container from it) and says `.partial` in its name."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


_MOV_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".3gp", ".3g2", ".f4v", ".ismv"})
_MATROSKA_SUFFIXES = frozenset({".mkv", ".webm", ".mka"})
_MPEGTS_SUFFIXES = frozenset({".ts", ".mts", ".m2ts"})


def output_time_base(path: Path, time_base: Fraction) -> tuple[Fraction, dict[str, str]]:
    """The video time base an output at `path` (its suffix picks the container, as FFmpeg guesses it)
    gets for a source in `time_base`, and the muxer options that make the container keep it.

    MP4/MOV: 1/D for a source time base n/D (the same, or an exact rescale when n > 1), with the movie
    timescale set to D too, so edit lists do not round the start time to 1/1000 s. Matroska/WebM store
    1/1000 s and MPEG-TS 1/90000 s whatever is asked; other containers are given the source's."""
    suffix = path.suffix.lower()
    if suffix in _MOV_SUFFIXES and time_base.denominator < 2**31:
        d = str(time_base.denominator)
        return Fraction(1, time_base.denominator), {"movie_timescale": d, "video_track_timescale": d}
    if suffix in _MATROSKA_SUFFIXES:
        return Fraction(1, 1000), {}
    if suffix in _MPEGTS_SUFFIXES:
        return Fraction(1, 90000), {}
    return time_base, {}


class _StreamCopier:
    """Copies every audio, subtitle and data stream of `source` into `container` untouched (packets bit for
    bit, stream metadata such as language and title kept), interleaved up to a given time. Streams the
    output container cannot hold are not copied and named in `skipped` (one phrase each)."""

    def __init__(self, source: Path, container: av.container.OutputContainer, *, label: Path) -> None:
        self._in = av.open(str(source))
        self._map: dict[int, av.stream.Stream] = {}
        self.skipped: list[str] = []
        self.audio_tracks = 0
        supported = container.supported_codecs
        for s in self._in.streams:
            if s.type not in ("audio", "subtitle", "data"):
                continue
            codec = s.codec_context.name if s.codec_context is not None else None
            lang = s.metadata.get("language")
            what = f"{s.type} stream #{s.index} ({codec or 'unknown codec'}{', ' + lang if lang else ''})"
            if codec is None or (supported and codec not in supported):  # empty: the muxer lists none; try
                self.skipped.append(what)
                continue
            try:
                out = container.add_stream_from_template(s)
            except (av.error.FFmpegError, ValueError, TypeError) as e:
                self.skipped.append(f"{what}: {e}")
                continue
            meta = dict(s.metadata)
            if "title" not in meta and "name" in meta:  # MP4 keeps a track title as "name"; others say "title"
                meta["title"] = meta.pop("name")
            out.metadata.update(meta)
            self._map[s.index] = out
            self.audio_tracks += s.type == "audio"
        if self.skipped:
            log.warning("output %s: not copied (the %s container cannot hold them): %s", label,
                        label.suffix or "output", "; ".join(self.skipped))
        self._container = container
        self._packets = self._in.demux([s for s in self._in.streams if s.index in self._map]) if self._map else iter(())
        self._pending: av.Packet | None = None
        self._done = not self._map

    def _next(self) -> av.Packet | None:
        while True:
            try:
                packet = next(self._packets)
            except (StopIteration, av.error.FFmpegError):
                self._done = True
                return None
            if packet.dts is not None and packet.size:
                return packet

    def copy_until(self, seconds: float | None) -> None:
        """Mux every copied packet with a timestamp before `seconds` (all remaining when None)."""
        while not self._done:
            packet = self._pending or self._next()
            self._pending = None
            if packet is None:
                return
            if seconds is not None and float(packet.dts * packet.time_base) > seconds:
                self._pending = packet
                return
            packet.stream = self._map[packet.stream_index]
            self._container.mux(packet)

    def close(self) -> None:
        self._in.close()


class AtomicOutput:
    """An output container written under `partial_path(path)` and moved into place only by `finish()`;
    `abort()` and any error delete it — unless `keep_on_error` (a live recording, which may be the only copy
    of a procedure): then a file that cannot be finished is left as it is, under its partial name. With
    `copy_streams(streams_from)`, that file's audio/subtitle/data streams are copied in, interleaved by
    `copy_streams_until` as the writer goes."""

    def __init__(self, path: Path, *, options: dict[str, str], overwrite: bool, keep_on_error: bool = False) -> None:
        self.path = Path(path)
        check_output_path(self.path, overwrite=overwrite)
        self._tmp = partial_path(self.path)
        self._keep_on_error = keep_on_error
        self._copier: _StreamCopier | None = None
        try:
            self._container = av.open(str(self._tmp), mode="w", options=options)
        except (av.error.FFmpegError, ValueError) as e:
            raise OutputError(f"output {self.path}: cannot create a video file here ({e})") from None

    @property
    def container(self) -> av.container.OutputContainer:
        """The open output container, to add the written streams to and mux their packets into."""
        return self._container

    def copy_streams(self, streams_from: Path | None) -> None:
        """Copy `streams_from`'s audio, subtitle and data streams in (nothing when None); call once, after
        adding the written streams and before the first packet. InputError (the output discarded) when they
        cannot be read."""
        if streams_from is None:
            return
        try:
            self._copier = _StreamCopier(streams_from, self._container, label=self.path)
        except (av.error.FFmpegError, ValueError, IndexError) as e:
            self._discard()
            raise InputError(f"input {streams_from}: its audio/subtitle streams cannot be copied ({e})") from None

    def copy_streams_until(self, seconds: float | None) -> None:
        """Mux the copied streams' packets with a timestamp before `seconds`, all remaining when None
        (nothing without copy_streams)."""
        if self._copier is not None:
            self._copier.copy_until(seconds)

    @property
    def audio_tracks(self) -> int:
        """Audio tracks copied from the source."""
        return 0 if self._copier is None else self._copier.audio_tracks

    @property
    def skipped_streams(self) -> list[str]:
        """Source streams the container could not hold (also logged once as a warning)."""
        return [] if self._copier is None else list(self._copier.skipped)

    def finish(self, flush: Callable[[], None] = lambda: None) -> None:
        """Run `flush` (the writer's last packets), copy the rest of the other streams, close the container
        and move the file into place. OutputError when that fails (the file deleted, or kept under its
        partial name with `keep_on_error`)."""
        try:
            flush()
            if self._copier is not None:
                self._copier.copy_until(None)
                self._copier.close()
            self._container.close()
        except (av.error.FFmpegError, OSError) as e:
            if self._keep_on_error:
                self._close_quietly()
                raise OutputError(f"output {self.path}: finishing the file failed ({e}); what was written is "
                                  f"kept as {self._tmp}") from None
            self._discard()
            raise OutputError(f"output {self.path}: finishing the file failed ({e})") from None
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._discard()

    def _close_quietly(self) -> None:
        for closer in (getattr(self, "_copier", None), getattr(self, "_container", None)):
            if closer is not None:
                try:
                    closer.close()
                except Exception:  # noqa: BLE001 - best effort while discarding or giving up
                    pass

    def _discard(self) -> None:
        self._close_quietly()
        self._tmp.unlink(missing_ok=True)
