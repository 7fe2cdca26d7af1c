"""Where a video can be cut into segments that decode on their own, and decoding one segment.

A cut is made only at a keyframe where decoding can start afresh and that separates the frames
cleanly: an H.264 IDR picture or an HEVC IRAP picture, every packet before it in decoding order
shown before it and every packet from it on shown at or after it (no leading pictures that
reference the previous segment). Decoding a segment from its keyframe then gives the very
pictures a decode of the whole file gives, numbered from the segment's first frame in the whole
video. Anything else (other codecs, containers whose timestamps are guessed, frames the container
lists but does not hold, packets an edit list discards) is not cut: the video runs whole.

Only packets are read to plan the cuts; nothing is decoded. How the segments are scanned,
rendered and joined is in ``blur.split``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from .errors import MediaError
from .media import video
from .types import Frame

_CONTAINERS = {"mov", "mp4", "matroska", "webm"}  # timestamps stored, not guessed
_H264_IDR = 5
_HEVC_IRAP = range(16, 24)


@dataclass(frozen=True)
class Segment:
    """A run of whole-video frames that decodes on its own.

    Attributes:
        number: position among the video's segments, from 0.
        start / stop: its frames, ``start`` included, ``stop`` not, numbered in the whole video.
        key_pts: timestamp of the keyframe it starts at.
        next_key_pts: timestamp of the next segment's keyframe (None for the last segment).
        pts: presentation timestamps of its frames, in order.
    """

    number: int
    start: int
    stop: int
    key_pts: int
    next_key_pts: int | None
    pts: tuple[int, ...]

    @property
    def last(self) -> bool:
        return self.next_key_pts is None


def plan_segments(src: Path, min_seconds: float) -> list[Segment]:
    """Cut ``src`` into segments of at least ``min_seconds`` where the cut is exact (see the
    module docstring); one segment when it cannot be cut. Reads packets only, decodes nothing."""
    container = video._open(src)
    try:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        formats = set(container.format.name.split(","))
        nal_size = _nal_length_size(codec, stream.codec_context.extradata)
        if not formats & _CONTAINERS or nal_size is None or not stream.time_base:
            return []
        packets: list[tuple[int, bool]] = []
        for packet in container.demux(stream):
            if not packet.size:
                continue
            if packet.pts is None or packet.is_discard or packet.is_corrupt:
                return []
            packets.append(
                (int(packet.pts), packet.is_keyframe and _random_access(bytes(packet), codec, nal_size))
            )
        listed = stream.frames or 0
        time_base = stream.time_base
    finally:
        container.close()
    ordered = sorted(p for p, _ in packets)
    if not packets or len(set(ordered)) != len(ordered) or (listed and listed != len(packets)):
        return []
    # A keyframe at decoding position j is a clean cut when everything before it is shown
    # before it and everything from it on is shown at or after it: it is then frame j.
    before_max = np.maximum.accumulate([p for p, _ in packets])
    after_min = np.minimum.accumulate([p for p, _ in packets][::-1])[::-1]
    cuts = [0]
    for j, (pts, key) in enumerate(packets):
        if j == 0 or not key or before_max[j - 1] >= pts or after_min[j] != pts:
            continue
        if (pts - ordered[cuts[-1]]) * time_base >= min_seconds:
            cuts.append(j)
    if len(cuts) < 2:
        return []
    bounds = cuts + [len(packets)]
    return [
        Segment(
            number=i,
            start=a,
            stop=b,
            key_pts=ordered[a],
            next_key_pts=ordered[b] if b < len(packets) else None,
            pts=tuple(ordered[a:b]),
        )
        for i, (a, b) in enumerate(zip(bounds, bounds[1:]))
    ]


def _nal_length_size(codec: str, extradata: bytes | None) -> int | None:
    """Bytes of the length before each NAL unit in a packet (avcC / hvcC), or None when the
    stream is not H.264/HEVC stored that way."""
    if not extradata:
        return None
    if codec == "h264" and extradata[0] == 1 and len(extradata) > 4:
        return (extradata[4] & 3) + 1
    if codec == "hevc" and extradata[0] == 1 and len(extradata) > 21:
        return (extradata[21] & 3) + 1
    return None


def _random_access(data: bytes, codec: str, size: int) -> bool:
    """Does the packet hold a picture decoding can start at without anything before it?"""
    at = 0
    while at + size <= len(data):
        length = int.from_bytes(data[at : at + size], "big")
        at += size
        if length == 0 or at + length > len(data):
            return False
        head = data[at]
        if codec == "h264" and head & 0x1F == _H264_IDR:
            return True
        if codec == "hevc" and (head >> 1) & 0x3F in _HEVC_IRAP:
            return True
        at += length
    return False


def segment_frames(src: Path, segment: Segment, rotation: int) -> Iterator[Frame]:
    """The frames of one segment, upright, numbered and timed as in the whole video.

    Raises:
        MediaError: the segment did not decode into exactly the frames the packets promised.
    """
    for frame, _ in decode_segment(src, segment, rotation):
        yield frame


def decode_segment(src: Path, segment: Segment, rotation: int) -> Iterator[tuple[Frame, int | None]]:
    """``segment_frames``, each with the duration the decoder gave it (for the encoder)."""
    container = video._open(src)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        checked = video._Checked(container, stream, src)
        container.seek(segment.key_pts, stream=stream, backward=True, any_frame=False)
        index = segment.start

        def decoded() -> Iterator[av.VideoFrame]:
            started = False
            for packet in container.demux(stream):
                if packet.size and not started:
                    if packet.pts != segment.key_pts:
                        continue  # the seek landed on an earlier keyframe
                    started = True
                if packet.size and packet.pts == segment.next_key_pts:
                    yield from stream.codec_context.decode(None)  # the frames held back
                    return
                if started:
                    yield from packet.decode()  # the end of the file: an empty packet flushes
            if not started:
                raise MediaError(f"segment {segment.number}: its keyframe was not found", src)

        try:
            for vf in decoded():
                at = index - segment.start
                if at >= len(segment.pts) or vf.pts != segment.pts[at]:
                    raise MediaError(
                        f"segment {segment.number} decoded frame {index} at an unexpected time", src
                    )
                checked.frame(vf, index)
                image = video.upright(vf.to_ndarray(format="rgb24"), rotation)
                yield (Frame(image=image, index=index, time=video._time(vf.pts, stream)), vf.duration)
                index += 1
        except av.error.FFmpegError as exc:
            raise MediaError(f"damaged video data at frame {index} ({video._reason(exc)})", src) from exc
        if index != segment.stop:
            raise MediaError(
                f"segment {segment.number} decoded {index - segment.start} of its "
                f"{segment.stop - segment.start} frames",
                src,
            )
    finally:
        container.close()
