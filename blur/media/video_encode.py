"""Writing videos: decode, redact each upright frame, encode H.264 with the input's PTS, copy the
audio packets bit-exact, and carry nothing else over (no tags, chapters, attachments, subtitle or
data streams, and no x264 settings string). Reading is in ``video``.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.bitstream import BitStreamFilterContext

from ..errors import MediaError
from ..record import encode as encode_record
from ..types import Frame
from . import embedded
from .video import _Checked, _geometry, _InTimeOrder, _open, _reason, _time, upright

# Audio codecs each output container can hold as-is.
_COPYABLE_AUDIO = {
    "mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
    "matroska": None,  # anything
}


def transcode(
    src: Path,
    dst: Path,
    muxer: str,
    process: Callable[[Frame], np.ndarray],
    *,
    crf: int = 18,
    preset: str = "medium",
    audio: str = "copy",
    on_frame: Callable[[int], None] | None = None,
    geometry: tuple[int, int, int] | None = None,
    record: dict | None = None,
) -> dict:
    """Decode ``src``, pass each upright frame through ``process``, encode H.264 into ``dst``.

    Args:
        src: input video.
        dst: output path (a temp file; the caller renames it when everything succeeded).
        muxer: FFmpeg muxer name ("mp4" or "matroska").
        process: returns the redacted RGB image for a frame (same size); raising aborts.
        crf / preset: libx264 settings.
        audio: "copy" (packets copied bit-exact) or "drop".
        on_frame: called with the number of frames written so far.
        geometry: (rotation, upright width, upright height) as ``video.probe`` found them;
            None: decoded from the first frame in a pass of its own.
        record: blur's record of the render (``blur.record.record_of``), written as the container
            tag ``embedded.VIDEO_TAG`` before the first packet; None: no tag at all.

    Returns:
        counts: {"frames": n, "audio_streams": copied, "audio_reencoded": [codec names]}.
    """
    rotation, width, height = geometry or _geometry(src)
    inp = _open(src)
    # bitexact: no "encoder" tag naming the FFmpeg build; faststart: playable while downloading.
    options = {"fflags": "+bitexact"}
    if muxer == "mp4":
        options["movflags"] = "+faststart"
        # A video that starts after 0 gets an empty edit of that length, counted in the movie
        # timescale (1000 by default): 41.708 ms would become 41 ms, moving every frame.
        options["movie_timescale"] = str(_track_timescale(inp.streams.video[0].time_base))
    out = open_output(dst, muxer, options, record)
    try:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        # Every output stream must exist before the first packet is written (adding one later
        # crashes FFmpeg), hence the size is known up front.
        vout = _video_stream(out, vin, width, height, crf, preset, rotation)
        strip = _StripSei(vout)
        audio_map, reencoded = _audio_streams(inp, out, muxer) if audio == "copy" else ({}, [])
        last_pts = None
        durations: dict[int, int] = {}
        count = 0
        checked = _Checked(inp, vin, src)
        in_order = _InTimeOrder(vin)

        def encode(vf: av.VideoFrame, pts: int) -> None:
            nonlocal count, last_pts
            image = upright(vf.to_ndarray(format="rgb24"), rotation)
            result = process(Frame(image=image, index=count, time=_time(pts, vin)))
            if result.shape != (height, width, 3):
                raise MediaError(
                    f"frame {count} is {result.shape[1]}x{result.shape[0]}, expected {width}x{height}", src
                )
            if last_pts is not None and pts <= last_pts:
                pts = last_pts + 1  # encoders need strictly increasing timestamps
            last_pts = pts
            of = av.VideoFrame.from_ndarray(result, format="rgb24")
            of.pts = pts
            of.time_base = vin.time_base
            durations[pts] = vf.duration
            _mux_video(out, strip(vout.encode(of)), durations)
            count += 1
            if on_frame:
                on_frame(count)

        try:
            for packet in inp.demux([vin] + [inp.streams[i] for i in audio_map]):
                if packet.stream.type == "audio":
                    _write_audio(out, packet, *audio_map[packet.stream.index])
                    continue
                checked.packet(packet)
                for vf in packet.decode():
                    checked.frame(vf, in_order.count)
                    for ready, pts in in_order.push(vf):
                        encode(ready, pts)
            for ready, pts in in_order.finish():
                encode(ready, pts)
            _mux_video(out, strip(vout.encode(None)) + strip.drain(), durations)
            for aout, decode_from in audio_map.values():
                if decode_from is not None:
                    out.mux(aout.encode(None))
        except av.error.FFmpegError as exc:
            if isinstance(exc, OSError):  # the system (disk full, permissions), not the media
                raise
            raise MediaError(f"transcoding failed at frame {count} ({_reason(exc)})", src) from exc
        if count == 0:
            raise MediaError("the video stream has no frames", src)
        checked.finish(count)
        return {"frames": count, "audio_streams": len(audio_map), "audio_reencoded": reencoded}
    finally:
        try:
            out.close()
        finally:
            inp.close()


def open_output(dst: Path, muxer: str, options: dict, record: dict | None):
    """The output container, carrying blur's record (``blur.record``) as the tag
    ``embedded.VIDEO_TAG`` when given: set before the first packet, as the muxer writes the
    header then (MP4 needs ``use_metadata_tags``, else FFmpeg writes only iTunes tags)."""
    options = dict(options)
    if record is not None and muxer == "mp4":
        options["movflags"] = options.get("movflags", "") + "+use_metadata_tags"
    out = av.open(str(dst), "w", format=muxer, options=options)
    if record is not None:
        out.metadata[embedded.VIDEO_TAG] = encode_record(record)
    return out


class _StripSei:
    """Removes SEI units from the encoded H.264 packets. x264 writes one into the first frame
    naming itself and every option used ("x264 - core 164 ... crf=18.0 ..."): a fingerprint
    of the tool, its version and settings that no player needs."""

    def __init__(self, stream):
        self.stream = stream
        self.bsf = None

    def __call__(self, packets) -> list:
        if self.bsf is None:  # the filter needs the encoder's parameters, set once it has run
            self.bsf = BitStreamFilterContext("filter_units=remove_types=6", self.stream)
        return [self._own(q) for p in packets for q in self.bsf.filter(p)]

    def drain(self) -> list:
        return [self._own(q) for q in self.bsf.filter(None)] if self.bsf else []

    def _own(self, packet):
        packet.stream = self.stream
        return packet


def _mux_video(out, packets, durations: dict[int, int]) -> None:
    """Write encoded packets with their input frame's duration: libx264 does not pass it on, and
    the muxer would guess the last frame's from the average rate (a VFR clip's end would move)."""
    for packet in packets:
        duration = durations.pop(packet.pts, None)
        if duration:
            packet.duration = duration
        out.mux(packet)


def _audio_streams(inp, out, muxer: str) -> tuple[dict, list[str]]:
    """Output audio streams for every input one: {input index: (output stream, decode_from)}.

    ``decode_from`` is None when packets are copied as they are; it is the input stream when
    the output container cannot hold the codec and the audio is re-encoded to AAC.
    """
    allowed = _COPYABLE_AUDIO.get(muxer)
    audio_map, reencoded = {}, []
    for ain in inp.streams.audio:
        name = ain.codec_context.codec.canonical_name  # "mp3", not the decoder's "mp3float"
        if allowed is None or name in allowed:
            aout = out.add_stream_from_template(ain)
            aout.metadata.clear()  # no language, title or handler names copied from the input
            audio_map[ain.index] = (aout, None)
        else:
            aout = out.add_stream("aac", rate=ain.codec_context.sample_rate)
            audio_map[ain.index] = (aout, ain)
            reencoded.append(name)
    return audio_map, reencoded


def _write_audio(out, packet, aout, decode_from) -> None:
    if decode_from is None:
        if packet.size == 0:
            return  # the demuxer's end-of-stream marker, not data
        packet.stream = aout
        out.mux(packet)
    else:
        for af in packet.decode():
            af.pts = None
            out.mux(aout.encode(af))


def _track_timescale(time_base: Fraction | None) -> int:
    """The timescale FFmpeg's MP4 muxer gives a video track of this time base: its
    denominator, doubled until at least 10000."""
    scale = time_base.denominator if time_base else 1000
    while scale < 10000:
        scale *= 2
    return scale


def _video_stream(out, vin, width: int, height: int, crf: int, preset: str, rotation: int):
    rate = vin.average_rate or vin.guessed_rate or Fraction(25)
    stream = out.add_stream("libx264", rate=rate)
    stream.width, stream.height = width, height
    # Non-square pixels (anamorphic DV/HDV) keep their shape, turned with the picture.
    sar = vin.sample_aspect_ratio or vin.codec_context.sample_aspect_ratio
    if sar and sar != 1:
        stream.codec_context.sample_aspect_ratio = 1 / sar if rotation in (90, 270) else sar
    # yuv420p needs even sizes; odd ones keep their exact size in 4:4:4 instead of being cropped.
    stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    stream.time_base = vin.time_base
    stream.codec_context.time_base = vin.time_base
    stream.options = {"crf": str(crf), "preset": preset}
    return stream
