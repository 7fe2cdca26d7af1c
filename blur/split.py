"""One long video in segments: cut at keyframes, scanned and rendered in parallel, joined losslessly.

Exact by construction, not by tuning an overlap:
- A cut is made only at a keyframe where decoding can start afresh and that separates the
  frames cleanly (``blur.segments``), so decoding a segment gives the very pictures a decode of
  the whole file gives, numbered as in the whole video. A video that cannot be cut that way
  runs whole, as one task.
- Each segment's scan runs every detector on the frames a whole-file scan runs it on (the
  strided ones by frame number in the whole video, all of them on the video's last frame) and
  returns the raw detections of every frame. The tracks are then built once, from the
  detections of all frames in order, exactly as a whole-file scan builds them: a face moving
  across a cut is one track, bridged and padded across it as anywhere else, so no overlap
  between segments and no joining of part-tracks is needed. A regions file of a split run
  equals that of a single-process run (tested).
- Each segment is rendered (redacted and H.264-encoded with the run's settings, keeping every
  frame's timestamp) into a temp file beside the output; the segments' packets are then copied,
  not re-encoded, into one output, with the audio copied once from the input. The frame count
  and every timestamp are those of the input.

Splitting needs the face detector's small-face pass on every frame
(``face_small_every_n_frames == 1``, the default): with a stride, a whole-file scan reuses the
analysis of a repeated picture across a cut, which a segment cannot see, so such a video runs
whole.

Segments are analysed frame by frame in full (``analyse="every-frame"``): change-driven
analysis (``schedule.py``) carries what it saw from one frame to the next, which a segment that
starts cold cannot reproduce, and a full analysis is the reference the change-driven one is
measured against. A split run's regions therefore equal those of a single-process run with
``--analyse every-frame`` (tested).
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from . import detectors, pipeline, seen, tracking
from .errors import MediaError, MetadataLeftError
from .files import atomic_output, check_output, temp_path
from .media import metadata, probe, video, video_encode
from .record import record_of
from .redact import Redactor, redact_frame
from .segments import Segment, decode_segment, plan_segments, segment_frames
from .settings import Settings
from .types import HITS, Detections, FileResult, MediaInfo, Plan

# Cutting is ``blur.segments``; callers plan and run segments through this module.
__all__ = [
    "Segment",
    "SegmentScan",
    "anonymise_in_segments",
    "can_split",
    "join_scans",
    "join_segments",
    "plan_segments",
    "render_segment",
    "scan_segment",
    "segment_frames",
    "segment_part",
]


@dataclass
class SegmentScan:
    """Raw detections of each frame of one segment (not yet tracked)."""

    segment: Segment
    per_frame: list[Detections]
    times: list[Fraction | None]
    unanalysed: list[int]


def scan_segment(
    src: Path,
    segment: Segment,
    info: MediaInfo,
    settings: Settings,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> SegmentScan:
    """Detect in one segment with the loop of a whole-file scan (``pipeline.scan_video_frames``):
    the strided detectors run by whole-video frame number, all of them on the video's last frame."""
    last = segment.stop - 1 if segment.last else None
    frames = ((frame, frame.index == last) for frame in segment_frames(src, segment, info.rotation))
    progress = None
    if on_progress:

        def progress(stage: str, done: int, _total: int) -> None:
            on_progress(stage, done - segment.start, segment.stop - segment.start)

    settings = settings.merged(analyse="every-frame")  # see the module docstring
    per_frame, times, unanalysed = pipeline.scan_video_frames(
        src, info, detectors.build(pipeline.scan_settings(settings)), settings, progress, frames
    )
    return SegmentScan(segment, per_frame, times, unanalysed)


def join_scans(info: MediaInfo, settings: Settings, scans: list[SegmentScan]) -> Plan:
    """The plan of the whole video from its segments' detections: tracks built once, over all
    frames in order, as ``pipeline.scan`` builds them."""
    scans = sorted(scans, key=lambda s: s.segment.start)
    scanned = [d for s in scans for d in s.per_frame]
    # What tracking gets, and the scan's record of everything it saw, as in ``pipeline.scan``.
    per_frame, recorded = [], []
    for found in scanned:
        kept, record = seen.split(found, settings.face_candidate_threshold)
        per_frame.append(kept)
        recorded.append(record)
    seen_every = max(
        (
            pipeline.frame_stride(d, float(info.fps or 25), settings)
            for d in detectors.build(pipeline.scan_settings(settings))
        ),
        default=1,
    )
    times = [t for s in scans for t in s.times]
    expected = scans[-1].segment.stop
    if len(per_frame) != expected or [s.segment.start for s in scans] != [
        0,
        *(s.segment.stop for s in scans[:-1]),
    ]:
        raise MediaError(f"the segments cover {len(per_frame)} of {expected} frames", info.path)
    unanalysed = [f for s in scans for f in s.unanalysed]
    return pipeline.video_plan(info, per_frame, recorded, times, unanalysed, seen_every, settings)


def segment_part(segment: Segment) -> str:
    """The name of a segment's temp file piece (``files.temp_path``)."""
    return f"seg{segment.number:05d}"


def render_segment(
    src: Path,
    dst: Path,
    segment: Segment,
    plan: Plan,
    settings: Settings,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> tuple[Path, int]:
    """Redact and encode one segment (video only) into a temp file beside ``dst``.

    Returns:
        (the temp file, how many of its frames were redacted).
    """
    redactor = Redactor(settings.style, settings.mask_scale, settings.shape)
    boxes = tracking.boxes_at(plan.tracks, plan.frame_count)
    unanalysed = set(plan.unanalysed_frames)
    info = plan.info
    dst.parent.mkdir(parents=True, exist_ok=True)  # as atomic_output does for the output
    tmp = temp_path(dst, segment_part(segment))
    redacted = 0
    inp = video._open(src)
    try:
        vin = inp.streams.video[0]
        out = av.open(str(tmp), "w", format="mp4", options={"fflags": "+bitexact"})
        try:
            vout = video_encode._video_stream(
                out, vin, info.width, info.height, settings.crf, settings.preset, info.rotation
            )
            strip = video_encode._StripSei(vout)
            durations: dict[int, int] = {}
            for frame, duration in decode_segment(src, segment, info.rotation):
                rgb = frame.image if frame.image.flags.writeable else frame.image.copy()
                if redact_frame(rgb, redactor, boxes[frame.index], frame.index in unanalysed):
                    redacted += 1
                pts = segment.pts[frame.index - segment.start]
                of = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                of.pts, of.time_base = pts, vin.time_base
                durations[pts] = duration
                video_encode._mux_video(out, strip(vout.encode(of)), durations)
                if on_progress:
                    on_progress("render", frame.index + 1 - segment.start, segment.stop - segment.start)
            video_encode._mux_video(out, strip(vout.encode(None)) + strip.drain(), durations)
        finally:
            out.close()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        inp.close()
    return tmp, redacted


def join_segments(
    src: Path,
    dst: Path,
    plan: Plan,
    settings: Settings,
    rendered: list[tuple[Path, int]],
    started: float | None = None,
) -> FileResult:
    """Copy the segments' packets, in order, into ``dst`` (atomically), with the input's audio
    copied once; check the frame count and the metadata left; remove the segment files."""
    try:
        check_output(src, dst, settings.overwrite)
        muxer = video.output_format(dst)[0] if dst.suffix.lower() == ".mkv" else "mp4"
        with atomic_output(dst) as tmp:
            record = record_of(plan, settings.mask_scale) if settings.record else None
            frames, reencoded = _concatenate(
                src, tmp, muxer, [p for p, _ in rendered], settings.audio, record
            )
            if frames != plan.frame_count:
                raise MediaError(f"wrote {frames} frames but scanned {plan.frame_count}", src)
            left = metadata.leftover(tmp, "video", written_by_blur=True)
            if left:
                raise MetadataLeftError("identifying metadata left in the output: " + ", ".join(left), src)
    finally:
        for path, _ in rendered:
            path.unlink(missing_ok=True)
    notes = list(plan.notes)
    if reencoded:
        notes.append(
            "audio re-encoded to AAC (the output container cannot hold " + ", ".join(reencoded) + ")"
        )
    notes.append(f"rendered in {len(rendered)} segments on the cluster")
    flags = tracking.flagged_frames(plan.tracks)
    return FileResult(
        src=src,
        dst=dst,
        kind="video",
        tracks=dict(Counter(t.kind for t in plan.tracks if not t.keep)),
        detections=sum(int(np.isin(t.source, HITS).sum()) for t in plan.tracks),
        frames=frames,
        frames_redacted=sum(n for _, n in rendered),
        seconds=time.monotonic() - started if started else 0.0,
        metadata_removed=plan.info.metadata_found,
        notes=notes,
        plan=plan,
        bridged_frames=len(flags["bridged_frames"]),
        weak_frames=len(flags["weak_frames"]),
    )


def _concatenate(
    src: Path, dst: Path, muxer: str, parts: list[Path], audio: str, record: dict | None = None
) -> tuple[int, list[str]]:
    """Packets of ``parts`` (one H.264 stream each, same parameters) one after another, and the
    audio of ``src``, into ``dst``, with blur's ``record`` when given; nothing is decoded or
    encoded but audio a container cannot hold. Returns (video packets written, audio codecs
    re-encoded)."""
    inp = video._open(src)
    first = av.open(str(parts[0]))
    options = {"fflags": "+bitexact"}
    if muxer == "mp4":
        options["movflags"] = "+faststart"
        options["movie_timescale"] = str(video_encode._track_timescale(inp.streams.video[0].time_base))
    out = video_encode.open_output(dst, muxer, options, record)
    try:
        template = first.streams.video[0]
        vout = out.add_stream_from_template(template)
        vout.time_base = template.time_base
        vout.metadata.clear()
        audio_map, reencoded = video_encode._audio_streams(inp, out, muxer) if audio == "copy" else ({}, [])
        extradata = template.codec_context.extradata
        count = 0

        def video_packets() -> Iterator[tuple[Fraction, int, object]]:
            last_dts = None
            for n, part in enumerate(parts):
                with av.open(str(part)) as container:
                    stream = container.streams.video[0]
                    if stream.codec_context.extradata != extradata:
                        raise MediaError(f"segment {n} was encoded with other parameters", src)
                    for packet in container.demux(stream):
                        if not packet.size:
                            continue
                        at = Fraction(packet.dts) * stream.time_base
                        if last_dts is not None and at <= last_dts:
                            raise MediaError(f"segment {n} does not follow on in time", src)
                        last_dts = at
                        yield at, 0, packet

        def audio_packets() -> Iterator[tuple[Fraction, int, object]]:
            if not audio_map:
                return
            for packet in inp.demux([inp.streams[i] for i in audio_map]):
                if packet.size and packet.dts is not None:
                    yield Fraction(packet.dts) * packet.time_base, 1, packet
                elif not packet.size:
                    continue
                else:
                    yield Fraction(0), 1, packet

        for _, which, packet in heapq.merge(
            video_packets(), audio_packets(), key=lambda item: (item[0], item[1])
        ):
            if which == 0:
                packet.stream = vout
                out.mux(packet)
                count += 1
            else:
                video_encode._write_audio(out, packet, *audio_map[packet.stream.index])
        for aout, decode_from in audio_map.values():
            if decode_from is not None:
                out.mux(aout.encode(None))
        return count, reencoded
    finally:
        try:
            out.close()
        finally:
            first.close()
            inp.close()


def can_split(src: Path, settings: Settings) -> bool:
    """Whether ``src`` may be cut at all with these settings (see the module docstring)."""
    from .media import is_video

    return is_video(src) and settings.face_small_every_n_frames == 1


def anonymise_in_segments(
    src: Path, dst: Path, settings: Settings, min_seconds: float, regions_path: Path | None = None
) -> FileResult:
    """The segmented path run in this process, one segment after another: what a cluster run
    does, without the cluster (for tests and for measuring the cost of splitting)."""
    from . import regions

    started = time.monotonic()
    src, dst = Path(src), Path(dst)
    check_output(src, dst, settings.overwrite)
    segments = plan_segments(src, min_seconds) if can_split(src, settings) else []
    if len(segments) < 2:
        return pipeline.anonymise(src, dst, settings, regions_path)
    info = probe(src)
    scans = [scan_segment(src, s, info, settings) for s in segments]
    plan = join_scans(info, settings, scans)
    if regions_path is not None:
        regions.save(Path(regions_path), plan.to_dict())
    rendered = []
    try:
        for s in segments:
            rendered.append(render_segment(src, dst, s, plan, settings))
    except BaseException:
        for path, _ in rendered:
            path.unlink(missing_ok=True)
        raise
    return join_segments(src, dst, plan, settings, rendered, started)
