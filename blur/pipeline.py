"""The one orchestrator: scan (detect + track) -> plan -> render (redact + encode) -> verify.

The library never prints and never exits; it reports progress through a callback and raises
``BlurError`` subclasses. Unredacted pixels are never written to disk: frames go from the decoder
to the detector (scan) and from the decoder through the redactor to the encoder (render).
"""

from __future__ import annotations

import ctypes
import gc
import inspect
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import regions, seen, tracking
from .boxes import clip_xyxy
from .detectors import DEFAULT_FOR_KIND, DETECTORS, runtime
from .errors import (BlurError, DetectionError, MediaError, MetadataLeftError,
                     RegionsError, UsageError)
from .files import atomic_output, check_output, default_output, describe_os_error
from .media import animation, image, metadata, video
from .media import frames as media_frames, probe as media_probe
from .redact import Redactor
from .settings import Settings
from .types import Detections, MediaInfo, Track

# on_progress(stage, done, total): stage is "scan" or "render"; total may be 0 when unknown.
ProgressFn = Callable[[str, int, int], None]


@dataclass
class Plan:
    """What will be redacted in one file: the result of a scan, the input of a render."""

    info: MediaInfo
    frame_count: int
    tracks: list[Track]
    unanalysed_frames: list[int] = field(default_factory=list)
    frame_times: list | None = None  # presentation time of each frame (videos), from the PTS
    notes: list[str] = field(default_factory=list)  # what loading it changed, said in the result
    # Per frame, everything the scan saw, weak face candidates included (see ``blur.seen``).
    seen: list[Detections] | None = None
    face_threshold: float | None = None
    seen_every: int = 1  # plates and text were looked for on every n-th frame

    def to_dict(self) -> dict:
        flags = {"unanalysed_frames": self.unanalysed_frames}
        flags.update(_flags(self.tracks))
        data = regions.to_dict(self.info, self.frame_count, self.tracks, flags, self.frame_times)
        if self.seen is not None:
            data["seen"] = seen.to_dict(self.seen, self.face_threshold, self.seen_every)
        return data


@dataclass
class FileResult:
    """What happened to one file."""

    src: Path
    dst: Path
    kind: str
    tracks: dict[str, int]
    detections: int
    frames: int
    frames_redacted: int
    seconds: float
    metadata_removed: list[str]
    notes: list[str] = field(default_factory=list)
    plan: Plan | None = None
    bridged_frames: int = 0  # frames where a track was bridged by interpolation
    weak_frames: int = 0     # frames where a face was redacted on weak detections only


def _flags(tracks: list[Track]) -> dict:
    return tracking.flagged_frames(tracks)


def _thresholds(settings: Settings) -> dict[str, float]:
    """Redaction threshold per kind: detections below it are weak (see ``blur.tracking``)."""
    return {"face": settings.face_threshold}


_DETECTOR_CACHE: dict[tuple, object] = {}
# From this many pixels per frame (4K is 8.3 million), memory comes first: frames are not decoded
# ahead (at 4K that thread's frames and allocator arena cost ~100-180 MB for a <1 % gain), and the
# models are dropped between scan and render, since what their large inputs left allocated would
# add to the encoder's memory. Measured on a 4K clip: peak 2.5 GB -> 1.64 GB (models dropped) ->
# 1.48 GB (no decoding ahead either); reloading the models costs well under a second.
LARGE_FRAME_PIXELS = 6_000_000


def release_models() -> None:
    """Forget the cached detectors and models and hand the freed memory back to the system
    (glibc keeps freed blocks, decoder threads' ones included, unless asked to trim)."""
    from .detectors import text

    _DETECTOR_CACHE.clear()
    text.shared_model.cache_clear()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to trim
        pass


def _detector_options(kind: str, settings: Settings) -> dict:
    """The settings each kind's detector is built with."""
    if kind == "face":
        options = {"threshold": settings.face_threshold,
                   "candidate_threshold": settings.face_candidate_threshold,
                   "second_look": settings.face_second_look, "flip": settings.face_flip,
                   "rotate": settings.face_rotate, "max_upscale": settings.face_max_upscale}
    else:
        options = {"max_side": settings.text_max_side,
                   "every_n_frames": settings.text_every_n_frames}
    return options | {"device": settings.device}


def check_device(device: str) -> str:
    """The ONNX Runtime provider that ``device`` ("cpu", "auto", "cuda", ...) runs the models on.

    Raises:
        UsageError: an unknown name, or a provider this ONNX Runtime build does not have.
    """
    return runtime.providers(device)[0]


def detectors_for(settings: Settings) -> list:
    """One detector per kind asked for, built once per process and reused across files."""
    check_device(settings.device)
    out = []
    for kind in settings.kinds:
        name = DEFAULT_FOR_KIND.get(kind)
        if name is None:
            raise UsageError(f"no detector available for {kind!r}")
        options = _detector_options(kind, settings)
        key = (name, tuple(sorted(options.items())))
        if key not in _DETECTOR_CACHE:
            _DETECTOR_CACHE[key] = DETECTORS[name](**options)
        out.append(_DETECTOR_CACHE[key])
    return out


def frame_stride(detector, fps: float, settings: Settings) -> int:
    """Run ``detector`` on every n-th video frame, n = its ``every_n_frames``, but never more
    sparsely than tracking can bridge: the frames skipped between two runs must fit in the gap
    the tracker fills and in the padding before a first / after a last hit (fail closed)."""
    return bridged_stride(getattr(detector, "every_n_frames", 1), fps, settings)


def small_face_stride(fps: float, settings: Settings) -> int:
    """Every how many video frames the face detector's upscaled small-face pass runs (its
    large-face pass runs on every frame); capped like ``frame_stride``."""
    return bridged_stride(settings.face_small_every_n_frames, fps, settings)


def bridged_stride(wanted: int, fps: float, settings: Settings) -> int:
    """``wanted``, lowered until the frames skipped between two runs fit in both the tracker's
    gap and its padding (a face first seen at a run was there up to n-1 frames earlier)."""
    bridged = min(int(round(settings.max_gap_seconds * fps)),
                  int(round(settings.pad_seconds * fps)))
    return max(1, min(max(1, int(wanted)), bridged + 1))


def detect(detectors: list, rgb: np.ndarray) -> Detections:
    """Run every detector on one image; any failure or garbage output raises DetectionError."""
    return Detections.concat([detect_one(det, rgb) for det in detectors])


def detect_one(det, rgb: np.ndarray, small_faces: bool = True) -> Detections:
    """Run one detector; ``small_faces=False`` skips a face detector's small-face pass."""
    try:
        found = det.detect(rgb) if small_faces or not _has_passes(det) else det.detect(
            rgb, small_faces=False)
    except DetectionError:
        raise
    except Exception as exc:  # fail closed: an unanalysed frame must never pass unredacted
        raise DetectionError(f"{det.name} failed: {exc}") from exc
    if not _valid(found):
        raise DetectionError(f"{det.name} returned invalid boxes")
    # Detectors grow their boxes (a chin, a plate around its text), which may run off the
    # picture: every box is clipped to the full image where it is made.
    found.xyxy = clip_xyxy(found.xyxy, rgb.shape[1], rgb.shape[0])
    return found


@lru_cache(maxsize=None)
def _takes_small_faces(cls: type) -> bool:
    return "small_faces" in inspect.signature(cls.detect).parameters


def _has_passes(det) -> bool:
    """Does the detector have a separate small-face pass that can be left out?"""
    return _takes_small_faces(type(det))


def _valid(found) -> bool:
    """Detections with finite scores and finite, non-inverted boxes (an inverted box would
    redact nothing, and a NaN score could drop a box from a threshold or NMS)."""
    if not isinstance(found, Detections):
        return False
    try:
        xyxy = np.asarray(found.xyxy, dtype=np.float64).reshape(-1, 4)
        score = np.asarray(found.score, dtype=np.float64).reshape(len(xyxy))
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(xyxy).all() and np.isfinite(score).all()
                and (xyxy[:, 2] >= xyxy[:, 0]).all() and (xyxy[:, 3] >= xyxy[:, 1]).all())


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


def probe(src: Path) -> MediaInfo:
    return media_probe(src)


def scan(src: Path, settings: Settings | None = None,
         on_progress: ProgressFn | None = None) -> Plan:
    """Detect and track everything to redact in one photo or video."""
    settings = settings or Settings()
    src = Path(src)
    info = probe(src)
    detectors = detectors_for(scan_settings(settings))
    if info.kind == "image":
        still = image.read(src)
        try:
            found, record = seen.split(detect(detectors, still.rgb),
                                      settings.face_candidate_threshold)
            unanalysed = []
        except DetectionError as exc:
            if settings.fail_frame != "redact":
                raise DetectionError(exc.message, src) from exc
            found, record, unanalysed = Detections.empty(), Detections.empty(), [0]
        tracks = tracking.build_tracks([found], [None], 1.0, 0, 0,
                                       thresholds=_thresholds(settings),
                                       size=(info.width, info.height),
                                       frame_height=info.height)
        if on_progress:
            on_progress("scan", 1, 1)
        return Plan(info, 1, tracks, unanalysed, seen=[record],
                    face_threshold=settings.face_threshold)

    per_frame, times, unanalysed, recorded = [], [], [], []
    fps = float(info.fps or 25)
    strides = [frame_stride(d, fps, settings) for d in detectors]
    small_every = small_face_stride(fps, settings)
    # Per detector: (picture version, small faces included, result), to reuse on a repeat of
    # the same picture (a frozen or duplicated frame) instead of analysing it again.
    memo: dict[int, tuple[int, bool, Detections]] = {}
    version, previous = 0, None
    ahead = settings.decode_ahead if info.width * info.height < LARGE_FRAME_PIXELS else 0
    for frame, last in _with_last(media_frames(info, ahead=ahead)):
        if previous is None or not np.array_equal(previous, frame.image):
            version += 1
        previous = frame.image
        # Strided detectors and the small-face pass also run on the last frame, so something
        # that appears in the final skipped frames is found (and padded back).
        small = last or frame.index % small_every == 0
        parts = []
        try:
            for i, (det, n) in enumerate(zip(detectors, strides)):
                if frame.index % n and not last:
                    continue
                hit = memo.get(i)
                if hit is not None and hit[0] == version and (hit[1] or not small):
                    parts.append(hit[2])
                    continue
                found = detect_one(det, frame.image, small)
                memo[i] = (version, small or not _has_passes(det), found)
                parts.append(found)
            found = Detections.concat(parts)
        except DetectionError as exc:
            if settings.fail_frame != "redact":
                raise DetectionError(f"frame {frame.index}: {exc.message}", src) from exc
            found = Detections.empty()
            unanalysed.append(frame.index)
        found, record = seen.split(found, settings.face_candidate_threshold)
        recorded.append(record)
        per_frame.append(found)
        times.append(frame.time)
        if on_progress:
            on_progress("scan", frame.index + 1, info.frame_count)
    if not per_frame:
        raise MediaError("the video has no frames", src)
    tracks = tracking.build_tracks(per_frame, times, float(info.fps), settings.max_gap_seconds,
                                   settings.pad_seconds, thresholds=_thresholds(settings),
                                   min_weak_hits=settings.weak_min_frames,
                                   size=(info.width, info.height), frame_height=info.height)
    return Plan(info, len(per_frame), tracks, unanalysed, times, seen=recorded,
                face_threshold=settings.face_threshold, seen_every=max(strides, default=1))


def scan_settings(settings: Settings) -> Settings:
    """The settings the scan's detectors are built with: face candidates from ``seen.FLOOR``
    (split off again before tracking). Not with the second look, which could confirm them."""
    if settings.face_second_look:
        return settings
    return settings.merged(
        face_candidate_threshold=min(settings.face_candidate_threshold, seen.FLOOR))


def load_plan(src: Path, data: dict) -> Plan:
    """The plan a regions file describes, checked against the media it is to be applied to.

    Raises:
        RegionsError: the file is malformed, or was made for media of another kind or size.
    """
    src = Path(src)
    info = probe(src)
    media = data.get("media") if isinstance(data, dict) else None
    if not isinstance(media, dict):
        raise RegionsError("the regions file has no \"media\" section (make it with blur scan)")
    if media.get("kind") not in (None, info.kind):
        noun = {"image": "photo", "video": "video"}
        raise RegionsError(f"the regions file is for a {noun.get(media.get('kind'), 'file')}, "
                           f"this is a {noun[info.kind]}")
    if (media.get("width"), media.get("height")) != (info.width, info.height):
        raise RegionsError(f"the regions file is for a {media.get('width')}x{media.get('height')} "
                           f"picture, this one is {info.width}x{info.height}")
    count = media.get("frame_count", 1 if info.kind == "image" else None)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1 or (
            info.kind == "image" and count != 1):
        raise RegionsError(f"media.frame_count {count!r} is not a number of frames")
    tracks = regions.from_dict(data, info.width, info.height, count)
    notes = []
    clipped = regions.clip_tracks(tracks, info.width, info.height)
    if clipped:
        notes.append(f"{sum(clipped.values())} box(es) overhanging the {info.width}x{info.height} "
                     f"frame clipped to it (track(s) {', '.join(map(str, sorted(clipped)))})")
    unanalysed = (data.get("flags") or {}).get("unanalysed_frames") or []
    if not isinstance(unanalysed, list) or not all(isinstance(f, int) for f in unanalysed):
        raise RegionsError("flags.unanalysed_frames must be a list of frame numbers")
    return Plan(info, count, tracks, unanalysed, notes=notes)


def render(src: Path, dst: Path, plan: Plan, settings: Settings | None = None,
           on_progress: ProgressFn | None = None) -> FileResult:
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
            raise MediaError(f"frame {index} was not scanned (the file changed since the scan?)",
                             src)
        if not rgb.flags.writeable:
            rgb = rgb.copy()
        if index in unanalysed:
            redactor.apply_everywhere(rgb)
            redacted_frames += 1
        else:
            boxes = per_frame[index]
            if redactor.apply(rgb, boxes.xyxy, boxes.kind):
                redacted_frames += 1
        return rgb

    with atomic_output(dst) as tmp:
        if plan.info.kind == "image":
            still = image.read(src)
            still.rgb = redact(still.rgb, 0)
            still.format = image.output_format(still, dst)  # HEIC: JPEG unless kept
            image.write(still, tmp, settings.jpeg_quality)
            left = metadata.image_leftover(tmp)
            frames = 1
            if on_progress:
                on_progress("render", 1, 1)
        elif plan.info.kind == "animation":
            stats = animation.transcode(
                src, tmp, lambda fr: redact(fr.image, fr.index), quality=settings.jpeg_quality,
                on_frame=(lambda n: on_progress("render", n, plan.frame_count))
                if on_progress else None)
            frames = stats["frames"]
            if frames != plan.frame_count:
                raise MediaError(f"wrote {frames} frames but scanned {plan.frame_count}", src)
            if stats["written"] < frames:
                notes.append(f"{frames - stats['written']} frame(s) identical to the one before "
                             f"stored as a longer display of it (same timing)")
            left = metadata.image_leftover(tmp)
        else:
            muxer = video.output_format(dst)[0] if dst.suffix.lower() == ".mkv" else "mp4"
            stats = video.transcode(
                src, tmp, muxer, lambda fr: redact(fr.image, fr.index), crf=settings.crf,
                preset=settings.preset, audio=settings.audio,
                on_frame=(lambda n: on_progress("render", n, plan.frame_count))
                if on_progress else None)
            frames = stats["frames"]
            if frames != plan.frame_count:
                raise MediaError(f"wrote {frames} frames but scanned {plan.frame_count}", src)
            if stats["audio_reencoded"]:
                notes.append("audio re-encoded to AAC (the output container cannot hold "
                             + ", ".join(stats["audio_reencoded"]) + ")")
            left = video.leftover(tmp) + video.encoder_settings(tmp)
        if left:
            raise MetadataLeftError("identifying metadata left in the output: " + ", ".join(left),
                                    src)
    detections = Counter()
    for t in plan.tracks:
        detections[t.kind] += int(np.isin(t.source, ("detected", "weak")).sum())
    flags = _flags(plan.tracks)
    return FileResult(
        src=src, dst=dst, kind=plan.info.kind,
        tracks=dict(Counter(t.kind for t in plan.tracks if not t.keep)),
        detections=sum(detections.values()), frames=frames, frames_redacted=redacted_frames,
        seconds=time.monotonic() - started, metadata_removed=plan.info.metadata_found,
        notes=notes, plan=plan, bridged_frames=len(flags["bridged_frames"]),
        weak_frames=len(flags["weak_frames"]))


def anonymise(src: Path, dst: Path | None = None, settings: Settings | None = None,
              regions_path: Path | None = None,
              on_progress: ProgressFn | None = None) -> FileResult:
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
            release_models()
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

