"""Videos through PyAV (FFmpeg's libraries inside the wheel; no system ffmpeg).

Frames are handed out upright (the display matrix applied) with their PTS kept, and written
back with the same PTS, so frame count, timing (variable frame rate included) and duration are
preserved. Where a container attaches the times to the wrong frames (AVI with packed B-frames),
frame i gets the i-th time in sorted order (``_InTimeOrder``). Audio packets are copied
bit-exact. Nothing else is carried over: the output is a new container with no tags, chapters,
attachments, subtitle or data streams.
"""

from __future__ import annotations

import heapq
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import MediaError, UnsupportedMediaError
from ..types import Frame, MediaInfo
from . import metadata

EXTENSIONS = {
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".avi",
    ".webm",
    ".mpg",
    ".mpeg",
    ".ts",
    ".mts",
    ".m2ts",
    ".3gp",
    ".wmv",
    ".flv",
    ".ogv",
}
# Per frame; refused before decoding (8K is 33 million; a forged header must not exhaust memory).
MAX_PIXELS = 100_000_000


def _open(path: Path):
    if path.is_file() and path.stat().st_size == 0:
        raise UnsupportedMediaError("the file is empty (0 bytes)", path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        if isinstance(exc, OSError):  # missing, unreadable, a symlink loop: not the content
            raise UnsupportedMediaError(f"cannot open it: {_reason(exc)}", path) from exc
        raise UnsupportedMediaError(
            f"cannot read it as a video ({_reason(exc)}): the file is truncated, damaged or not a video", path
        ) from exc
    except UnicodeDecodeError as exc:
        raise UnsupportedMediaError("cannot read it as a video (undecodable header)", path) from exc
    if not container.streams.video:
        container.close()
        raise UnsupportedMediaError("no video stream (audio-only files are not supported)", path)
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > MAX_PIXELS:
        container.close()
        raise UnsupportedMediaError(f"video frames are too large ({width}x{height} pixels)", path)
    # The decoder refuses bigger pictures itself, before allocating them (a frame's own header
    # may claim more than the container did).
    stream.codec_context.options = {"max_pixels": str(MAX_PIXELS)}
    return container


def _reason(exc: Exception) -> str:
    """FFmpeg's one-line reason, without errno numbers and function names."""
    return getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__


class _Checked:
    """Watches decoded frames so that damage fails the file instead of passing unnoticed.

    FFmpeg conceals errors (a damaged frame is guessed from its neighbours and flagged corrupt)
    and stops quietly where a file is cut short; either way the output would silently differ
    from the input. A frame that cannot be decoded cannot be checked for faces, so it fails.
    """

    def __init__(self, container, stream, path: Path):
        self.path = path
        # An MP4/MOV index lists every sample, and a cut-off file still carries the whole index.
        # (Other containers' counts are looser: AVI counts skipped frames, Matroska has none.)
        iso = any(name in container.format.name.split(",") for name in ("mov", "mp4"))
        self.listed = (stream.frames or 0) if iso else 0
        self.packets = 0
        self.declared = _declared_seconds(stream)
        self.first = self.end = None
        self.interval = None

    def packet(self, packet) -> None:
        if packet.size:
            self.packets += 1

    def frame(self, vf: av.VideoFrame, index: int) -> None:
        if vf.is_corrupt:
            raise MediaError(f"frame {index} is damaged (the decoder had to guess parts of it)", self.path)
        if vf.width * vf.height > MAX_PIXELS:
            raise UnsupportedMediaError(
                f"video frames are too large ({vf.width}x{vf.height} pixels)", self.path
            )
        if vf.pts is not None and vf.time_base:
            start = Fraction(vf.pts) * vf.time_base
            length = Fraction(vf.duration or 0) * vf.time_base
            self.first = start if self.first is None else min(self.first, start)
            self.end = max(self.end or start, start + length)
            if length and self.interval is None:
                self.interval = length

    def finish(self, count: int) -> None:
        """Fail if frames the file lists, or a stretch of its stated duration, never decoded."""
        # Packets, not decoded frames: an edit list (a trimmed clip) rightly hides a few frames.
        if self.listed and self.packets < self.listed:
            raise MediaError(
                f"only {self.packets} of the {self.listed} frames it lists are in "
                f"the file: it is truncated or damaged",
                self.path,
            )
        if self.declared and self.end is not None:
            decoded = float(self.end - self.first)
            slack = max(0.2, 3 * float(self.interval or 0))
            if decoded + slack < self.declared:
                raise MediaError(
                    f"the video stops after {decoded:.2f} s of the {self.declared:.2f}"
                    f" s it states: the file is truncated or damaged",
                    self.path,
                )


def _declared_seconds(stream) -> float | None:
    """The video stream's own stated duration (Matroska keeps it in a DURATION tag)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION", "")
    parts = tag.split(":")
    try:
        return int(parts[0]) * 3600 + int(parts[1]) * 60 + float(parts[2])
    except (ValueError, IndexError):
        return None


def _rotation(frame: av.VideoFrame) -> int:
    """Counter-clockwise degrees to turn a stored picture for display, a multiple of 90.

    ``VideoFrame.rotation`` is FFmpeg's ``av_display_rotation_get``: counter-clockwise degrees
    (an iPhone portrait clip says -90, i.e. turn 90 degrees clockwise).
    """
    return int(round((frame.rotation or 0) / 90.0)) * 90 % 360


def _geometry(path: Path) -> tuple[int, int, int]:
    """(rotation, upright width, upright height), from the first decoded frame.

    The display matrix is only exposed on decoded frames, and the output stream must exist
    before the first packet is written, so a writer that was not told the geometry decodes the
    first frame in a separate pass.
    """
    container = _open(path)
    try:
        return _first_frame_geometry(container, path)
    finally:
        container.close()


def _first_frame_geometry(container, path: Path) -> tuple[int, int, int]:
    """``_geometry`` of an open container, whose first video frame this decodes."""
    try:
        first = next(container.decode(container.streams.video[0]), None)
    except av.error.FFmpegError as exc:
        raise MediaError(f"cannot decode the first video frame ({_reason(exc)})", path) from exc
    if first is None:
        raise MediaError("the video stream has no frames", path)
    rotation = _rotation(first)
    if rotation in (90, 270):
        return rotation, first.height, first.width
    return rotation, first.width, first.height


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a stored picture so it displays the right way up."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def probe(path: Path) -> MediaInfo:
    """Facts about a video, from its headers and first frame (one opening of the file)."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        fps = stream.average_rate or stream.guessed_rate or Fraction(25)
        duration = None
        if stream.duration is not None and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        count = stream.frames or (int(round(duration * fps)) if duration else 0)
        audio_streams = [s.codec_context.name for s in container.streams.audio]
        found = metadata.video_metadata(container)
        # The headers are read before anything is decoded, as when they had a pass of their own.
        rotation, w, h = _first_frame_geometry(container, path)
        return MediaInfo(
            path=path,
            kind="video",
            width=w,
            height=h,
            fps=Fraction(fps),
            frame_count=count,
            duration=duration,
            rotation=rotation,
            audio_streams=audio_streams,
            metadata_found=found,
        )
    finally:
        container.close()


def frames(path: Path, ahead: int = 0) -> Iterator[Frame]:
    """Decode every frame of the first video stream, upright RGB, in presentation order.

    Args:
        path: the video.
        ahead: decode up to this many frames ahead in a background thread, so decoding overlaps
            the caller's work on the previous frames (FFmpeg releases the GIL); 0 decodes in
            the caller's thread. Memory stays bounded by ``ahead`` frames.
    """
    if ahead > 0:
        return read_ahead(lambda: _frames(path), ahead)
    return _frames(path)


_END = object()


def read_ahead(make: Callable[[], Iterator], depth: int, name: str = "blur-decode") -> Iterator:
    """Items of the iterator ``make()`` returns, produced in a background thread at most
    ``depth`` items ahead of the consumer. The iterator is created, consumed and closed in that
    thread; its exceptions are re-raised in the consumer; a consumer that stops early (an error,
    Ctrl-C) stops and joins the thread."""
    items: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                items.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            source = make()
            try:
                for item in source:
                    if not put((item, None)):
                        return
            finally:
                close = getattr(source, "close", None)
                if close is not None:
                    close()
            put((_END, None))
        except BaseException as exc:  # handed to the consumer, which decides
            put((None, exc))

    def consume() -> Iterator:
        thread = threading.Thread(target=produce, name=name, daemon=True)
        thread.start()
        try:
            while True:
                item, exc = items.get()
                if exc is not None:
                    raise exc
                if item is _END:
                    return
                yield item
        finally:
            stop.set()
            thread.join()

    return consume()


class _InTimeOrder:
    """Decoded frames with their timestamps put back in presentation order.

    A decoder hands out frames in presentation order, but the timestamps it attaches are only as
    good as the container's. AVI stores none for B-frames, so FFmpeg guesses them from the
    packet order, and a clip with packed B-frames (MPEG-4 part 2, as DivX/Xvid wrote it)
    decodes with times 1, 2, 3, 5, 4, 6, 8, 7, ... (in frame durations): right as a set,
    attached to the wrong frames. Frame i is shown at the i-th time in sorted order: each frame
    waits until the decoder's reordering window has passed, so the smallest time seen is its
    own. Files whose times are in order come out unchanged. Memory: the frames waiting, the
    reorder depth plus one (1-3 for most files, at most 17).
    """

    def __init__(self, stream):
        self.stream = stream
        self.waiting: deque[av.VideoFrame] = deque()
        self.times: list[int] = []  # a heap of the timestamps not yet handed out
        self.count = 0

    def push(self, vf: av.VideoFrame) -> list[tuple[av.VideoFrame, int]]:
        """Take one decoded frame; return the (frame, pts) pairs whose time is now certain."""
        heapq.heappush(self.times, _pts(vf, self.count, self.stream))
        self.waiting.append(vf)
        self.count += 1
        window = _reorder_depth(self.stream.codec_context) + 1  # one frame of margin
        ready = []
        while len(self.waiting) > window:
            ready.append((self.waiting.popleft(), heapq.heappop(self.times)))
        return ready

    def finish(self) -> list[tuple[av.VideoFrame, int]]:
        """The frames still waiting, at the end of the stream."""
        ready = [(vf, heapq.heappop(self.times)) for vf in self.waiting]
        self.waiting.clear()
        return ready


def _reorder_depth(codec_context) -> int:
    """How many frames the decoder holds back to reorder them (it learns this as it goes)."""
    depth = getattr(codec_context, "reorder_depth", None)
    if depth is None:  # PyAV before it exposed the depth: only whether there is reordering
        return 4 if getattr(codec_context, "has_b_frames", True) else 0
    return int(depth)


def _frames(path: Path) -> Iterator[Frame]:
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rotation = None
        index = 0
        checked = _Checked(container, stream, path)
        in_order = _InTimeOrder(stream)

        def decoded() -> Iterator[tuple[av.VideoFrame, int]]:
            for packet in container.demux(stream):
                checked.packet(packet)
                for vf in packet.decode():
                    checked.frame(vf, in_order.count)
                    yield from in_order.push(vf)
            yield from in_order.finish()

        try:
            for vf, pts in decoded():
                if rotation is None:
                    rotation = _rotation(vf)
                image = upright(vf.to_ndarray(format="rgb24"), rotation)
                yield Frame(image=image, index=index, time=_time(pts, stream))
                index += 1
        except av.error.FFmpegError as exc:
            raise MediaError(f"damaged video data at frame {in_order.count} ({_reason(exc)})", path) from exc
        checked.finish(index)
    finally:
        container.close()


def _time(pts: int, stream) -> Fraction | None:
    """Seconds of a timestamp in the stream's time base."""
    return Fraction(pts) * stream.time_base if stream.time_base else None


def output_format(src: Path) -> tuple[str, str]:
    """(FFmpeg muxer, file extension) for the output of ``src``: MKV stays MKV, else MP4."""
    if src.suffix.lower() == ".mkv":
        return "matroska", ".mkv"
    return "mp4", ".mp4"


def _pts(vf: av.VideoFrame, index: int, vin) -> int:
    if vf.pts is not None:
        return int(vf.pts)
    rate = vin.average_rate or vin.guessed_rate or Fraction(25)
    return int(round(Fraction(index) / Fraction(rate) / vin.time_base))
