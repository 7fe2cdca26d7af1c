"""The one orchestrator: scan (detect + track) -> plan -> render (redact + encode) -> verify.

The library never prints and never exits; it reports progress through a callback and raises
``BlurError`` subclasses. Unredacted pixels are never written to disk: frames go from the decoder
to the detector (scan) and from the decoder through the redactor to the encoder (render).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import detectors, regions, schedule, seen, shots, tracking
from .detectors import Detector
from .errors import BlurError, DetectionError, MediaError, MetadataLeftError
from .files import atomic_output, check_output, default_output, describe_os_error
from .media import family_of, image, probe
from .media import frames as media_frames
from .record import attach_seen, record_of
from .redact import Redactor, redact_frame
from .settings import Settings
from .types import HITS, Detections, FileResult, Frame, MediaInfo, Plan, ProgressFn

# From this many pixels per frame (4K is 8.3 million), memory comes first: frames are not decoded
# ahead (at 4K that thread's frames and allocator arena cost ~100-180 MB for a <1 % gain), and the
# models are dropped between scan and render, since what their large inputs left allocated would
# add to the encoder's memory. Measured on a 4K clip: peak 2.5 GB -> 1.64 GB (models dropped) ->
# 1.48 GB (no decoding ahead either); reloading the models costs well under a second.
LARGE_FRAME_PIXELS = 6_000_000


def _thresholds(settings: Settings) -> dict[str, float]:
    """Redaction threshold per kind: detections below it are weak (see ``blur.tracking``)."""
    return {"face": settings.face_threshold}


def frame_stride(detector: Detector, fps: float, settings: Settings) -> int:
    """Run ``detector`` on every n-th video frame, n = its ``every_n_frames``, but never more
    sparsely than tracking can bridge: the frames skipped between two runs must fit in the gap
    the tracker fills and in the padding before a first / after a last hit (fail closed)."""
    return bridged_stride(detector.every_n_frames, fps, settings)


def small_face_stride(fps: float, settings: Settings) -> int:
    """Every how many video frames the face detector's upscaled small-face pass runs (its
    large-face pass runs on every frame); capped like ``frame_stride``."""
    return bridged_stride(settings.face_small_every_n_frames, fps, settings)


def bridged_stride(wanted: int, fps: float, settings: Settings) -> int:
    """``wanted``, lowered until the frames skipped between two runs fit in both the tracker's
    gap and its padding (a face first seen at a run was there up to n-1 frames earlier)."""
    bridged = min(int(round(settings.max_gap_seconds * fps)), int(round(settings.pad_seconds * fps)))
    return max(1, min(max(1, int(wanted)), bridged + 1))


def detect(found_by: list[Detector], rgb: np.ndarray) -> Detections:
    """Run every detector on one image, each group of detectors that share a model on a thread
    of its own (each network has its share of the cores, ``detectors.build``); any failure or
    garbage output raises DetectionError."""
    groups = schedule.groups(found_by)
    if len(groups) == 1:
        return Detections.concat([det.run(rgb) for det in found_by])

    def run_group(members: list[int]) -> list[tuple[int, Detections]]:
        return [(i, found_by[i].run(rgb)) for i in members]

    with ThreadPoolExecutor(len(groups), thread_name_prefix="blur-photo") as pool:
        parts = [part for done in pool.map(run_group, groups) for part in done]
    return Detections.concat([found for _, found in sorted(parts, key=lambda p: p[0])])


def _with_last(items):
    """(item, is_last) for each item: one item of look-ahead."""
    it = iter(items)
    try:
        current = next(it)
    except StopIteration:
        return
    for following in it:
        yield current, False
        current = following
    yield current, True


def scan(src: Path, settings: Settings | None = None, on_progress: ProgressFn | None = None) -> Plan:
    """Detect and track everything to redact in one photo or video."""
    settings = settings or Settings()
    src = Path(src)
    info = probe(src)
    found_by = detectors.build(scan_settings(settings))
    if info.kind == "image":
        still = image.read(src)
        try:
            found, record = seen.split(detect(found_by, still.rgb), settings.face_candidate_threshold)
            unanalysed = []
        except DetectionError as exc:
            if settings.fail_frame != "redact":
                raise DetectionError(exc.message, src) from exc
            found, record, unanalysed = Detections.empty(), Detections.empty(), [0]
        tracks = tracking.build_tracks(
            [found],
            [None],
            1.0,
            0,
            0,
            thresholds=_thresholds(settings),
            size=(info.width, info.height),
            frame_height=info.height,
        )
        if on_progress:
            on_progress("scan", 1, 1)
        return Plan(info, 1, tracks, unanalysed, seen=[record], face_threshold=settings.face_threshold)

    cuts = shots.ShotCuts()
    scanned, times, unanalysed = scan_video_frames(src, info, found_by, settings, on_progress, cuts=cuts)
    # What tracking gets, and the scan's record of everything it saw (see ``blur.seen``).
    per_frame, recorded = zip(*(seen.split(found, settings.face_candidate_threshold) for found in scanned))
    per_frame, recorded = list(per_frame), list(recorded)
    seen_every = max((frame_stride(d, float(info.fps or 25), settings) for d in found_by), default=1)
    return video_plan(info, per_frame, recorded, times, unanalysed, seen_every, settings, cuts.starts)


def video_plan(
    info, per_frame, recorded, times, unanalysed, seen_every: int, settings: Settings, cuts=None
) -> Plan:
    """The plan of a scanned video: its detections tracked (``tracking.build_tracks`` with the
    settings' gaps, padding and thresholds; ``cuts``: frames starting a new shot) and the scan's
    record. Used by ``scan`` and by a split run joining its segments."""
    tracks = tracking.build_tracks(
        per_frame,
        times,
        float(info.fps),
        settings.max_gap_seconds,
        settings.pad_seconds,
        thresholds=_thresholds(settings),
        min_weak_hits=settings.weak_min_frames,
        size=(info.width, info.height),
        frame_height=info.height,
        cuts=cuts,
    )
    return Plan(
        info,
        len(per_frame),
        tracks,
        unanalysed,
        times,
        seen=recorded,
        face_threshold=settings.face_threshold,
        seen_every=seen_every,
    )


def scan_settings(settings: Settings) -> Settings:
    """The settings the scan's detectors are built with: face candidates from ``seen.FLOOR``
    (split off again before tracking). Not with the second look, which could confirm them."""
    if settings.face_second_look:
        return settings
    return settings.merged(face_candidate_threshold=min(settings.face_candidate_threshold, seen.FLOOR))


def scan_video_frames(
    src: Path,
    info: MediaInfo,
    found_by: list[Detector],
    settings: Settings,
    on_progress: ProgressFn | None = None,
    frames: Iterable[tuple[Frame, bool]] | None = None,
    cuts: shots.ShotCuts | None = None,
) -> tuple[list[Detections], list, list[int]]:
    """Run the detectors over every frame of a video or animation.

    Args:
        frames: (frame, is the video's last frame) pairs to scan instead of the whole file,
            numbered as in the whole file (one segment of a long video).
        cuts: given every frame in order, to find the cuts between shots.

    Returns:
        (detections per frame, presentation time per frame, frames that could not be analysed).
    """
    per_frame, times, unanalysed = [], [], []
    fps = float(info.fps or 25)
    plan_passes = schedule.Schedule(
        found_by,
        [frame_stride(d, fps, settings) for d in found_by],
        small_face_stride(fps, settings),
        fps,
        settings.analyse,
        settings.keyframe_seconds,
        follow=settings.follow_tracks,
    )
    ahead = settings.decode_ahead if info.width * info.height < LARGE_FRAME_PIXELS else 0
    if frames is None:
        frames = _with_last(media_frames(info, ahead=ahead))

    def seen_in_order():
        for frame, last in frames:
            if cuts is not None:
                cuts.see(frame.index, frame.image)
            yield frame, last

    for frame, _, found in plan_passes.detect_all(seen_in_order()):
        if isinstance(found, DetectionError):
            if settings.fail_frame != "redact":
                raise DetectionError(f"frame {frame.index}: {found.message}", src) from found
            found = Detections.empty()
            unanalysed.append(frame.index)
        per_frame.append(found)
        times.append(frame.time)
        if on_progress:
            on_progress("scan", frame.index + 1, info.frame_count)
    if not per_frame:
        raise MediaError("the video has no frames", src)
    return per_frame, times, unanalysed


def load_plan(src: Path, data: dict) -> Plan:
    """The plan a regions file describes, checked against the media it is to be applied to.

    Raises:
        RegionsError: the file is malformed, or was made for media of another kind or size.
    """
    info = probe(Path(src))
    count, tracks, unanalysed, notes = regions.for_media(data, info)
    plan = Plan(info, count, tracks, unanalysed, notes=notes)
    attach_seen(plan, data)  # the scan's record rides on into the output
    return plan


def render(
    src: Path, dst: Path, plan: Plan, settings: Settings | None = None, on_progress: ProgressFn | None = None
) -> FileResult:
    """Redact ``src`` as ``plan`` says and write ``dst`` atomically, then prove it is clean."""
    settings = settings or Settings()
    src, dst = Path(src), Path(dst)
    check_output(src, dst, settings.overwrite)
    started = time.monotonic()
    redactor = Redactor(settings.style, settings.mask_scale, settings.shape)
    per_frame = tracking.boxes_at(plan.tracks, plan.frame_count)
    unanalysed = set(plan.unanalysed_frames)
    redacted_frames = 0
    notes: list[str] = list(plan.notes)

    def redact(rgb: np.ndarray, index: int) -> np.ndarray:
        nonlocal redacted_frames
        if index >= plan.frame_count:
            raise MediaError(f"frame {index} was not scanned (the file changed since the scan?)", src)
        if not rgb.flags.writeable:
            rgb = rgb.copy()
        if redact_frame(rgb, redactor, per_frame[index], index in unanalysed):
            redacted_frames += 1
        return rgb

    family = family_of(plan.info)
    with atomic_output(dst) as tmp:
        written = family.write(
            src,
            tmp,
            dst,
            lambda fr: redact(fr.image, fr.index),
            settings,
            (lambda n: on_progress("render", n, plan.frame_count)) if on_progress else None,
            plan.info,
            record_of(plan, settings.mask_scale) if settings.record else None,
        )
        if written.frames != plan.frame_count:
            raise MediaError(f"wrote {written.frames} frames but scanned {plan.frame_count}", src)
        notes += written.notes
        left = family.leftover(tmp, written_by_blur=True)
        if left:
            raise MetadataLeftError("identifying metadata left in the output: " + ", ".join(left), src)
    detections = Counter()
    for t in plan.tracks:
        detections[t.kind] += int(np.isin(t.source, HITS).sum())
    flags = tracking.flagged_frames(plan.tracks)
    return FileResult(
        src=src,
        dst=dst,
        kind=plan.info.kind,
        tracks=dict(Counter(t.kind for t in plan.tracks if not t.keep)),
        detections=sum(detections.values()),
        frames=written.frames,
        frames_redacted=redacted_frames,
        seconds=time.monotonic() - started,
        metadata_removed=plan.info.metadata_found,
        notes=notes,
        plan=plan,
        bridged_frames=len(flags["bridged_frames"]),
        weak_frames=len(flags["weak_frames"]),
    )


def anonymise(
    src: Path,
    dst: Path | None = None,
    settings: Settings | None = None,
    regions_path: Path | None = None,
    on_progress: ProgressFn | None = None,
) -> FileResult:
    """Scan and render one file: the whole of ``blur PATH``.

    Args:
        src: photo or video.
        dst: output path; default ``NAME.blurred.EXT`` beside ``src``.
        settings: see ``Settings``.
        regions_path: where to save the regions JSON (the plan), if wanted.
        on_progress: progress callback ``(stage, done, total)``.
    """
    settings = settings or Settings()
    src = Path(src)
    dst = Path(dst) if dst is not None else default_output(src, settings.keep_format)
    started = time.monotonic()
    try:
        check_output(src, dst, settings.overwrite)  # before the long scan, not after
        plan = scan(src, settings, on_progress)
        if plan.info.width * plan.info.height >= LARGE_FRAME_PIXELS:
            detectors.release()
        if regions_path is not None:
            regions.save(Path(regions_path), plan.to_dict())
        result = render(src, dst, plan, settings, on_progress)
    except BlurError as exc:
        if exc.path is None:
            exc.path = src
        raise
    except OSError as exc:  # the system, not the media: disk full, unwritable folder, I/O error
        raise MediaError(describe_os_error(exc, dst), src) from exc
    result.seconds = time.monotonic() - started
    return result
