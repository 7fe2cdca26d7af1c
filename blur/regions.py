"""The regions file: what will be redacted, per track and frame, as JSON.

Scanning writes it and rendering reads it, so a person can look at the plan, correct it and
render again without re-detecting. Schema (version 1)::

    {"version": 1,
     "media": {"file": "clip.mp4", "kind": "video", "width": 1280, "height": 720,
               "fps": "30000/1001", "frame_count": 300,
               "frame_times": [0.0, 0.033367, ...]},
     "tracks": [{"id": 1, "kind": "face", "keep": false,
                 "boxes": [[frame, x1, y1, x2, y2, score, "detected"], ...]}],
     "flags": {"bridged_frames": [...], "weak_frames": [...], "unanalysed_frames": [...]}}

Boxes are in upright (display) pixels, x2/y2 exclusive. Detected kinds (face, plate, text) are
grown by the mask scale and drawn in the mask shape when rendering; ``manual`` regions are
redacted exactly as drawn (a rectangle, not grown). ``source`` is "detected", "weak" (a
detection below the redaction threshold, redacted because it continues or repeats a track),
"interpolated", "padded" or "manual". ``flags.weak_frames`` lists the frames where some face
is redacted on weak detections only, ``flags.bridged_frames`` those where a track is
interpolated across missed frames. ``frame_times`` are seconds from the first frame (from the PTS, so
variable frame rate is exact); without them frame i is at i / fps.

What a person may change before ``blur render``:

- drop a false positive: delete its entry from ``tracks``;
- keep a consenting person visible: ``"keep": true`` (a bool; nothing sets it automatically);
- widen a box: edit its numbers;
- add a region by hand, e.g. a name badge from 1.5 s to 4 s::

      {"id": 100, "kind": "manual", "start": 1.5, "end": 4.0, "box": [10, 20, 90, 60],
       "note": "name badge"}

  or a moving one, interpolated linearly between keyframes (each ``frame`` or ``time``)::

      {"id": 101, "kind": "manual", "keyframes": [{"time": 1.5, "box": [10, 20, 90, 60]},
                                                  {"frame": 120, "box": [200, 20, 280, 60]}]}

  A range is ``start``/``end`` in seconds (every frame shown during [start, end) is covered)
  or ``first_frame``/``last_frame`` (inclusive); either end may be left out (from the first /
  to the last frame). Without a range a ``box`` covers the whole file and ``keyframes`` span
  their first to last keyframe. Before the first and after the last keyframe the box is held.

Mistakes are refused with an error naming the track (``RegionsError``): unknown fields or kinds,
repeated ids, malformed or empty boxes, boxes wholly outside the frame, frames or times outside
the file, end before start. A box that only overhangs the frame is clipped to it when rendering
(``clip_tracks``), and the render says so; ``blur scan`` writes every box inside the frame.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from . import hand_drawn
from .boxes import clip_xyxy
from .errors import RegionsError
from .hand_drawn import whole
from .regions_file import dumps, load, outward, save  # noqa: F401  (regions.load, .save: one entry)
from .types import MediaInfo, Track

VERSION = 1
_TRACK_FIELDS = {
    "id",
    "kind",
    "keep",
    "boxes",
    "box",
    "keyframes",
    "start",
    "end",
    "first_frame",
    "last_frame",
    "note",
}
_RANGE_FIELDS = ("start", "end", "first_frame", "last_frame")


def to_dict(
    info: MediaInfo,
    frame_count: int,
    tracks: list[Track],
    flags: dict | None = None,
    frame_times: list | None = None,
) -> dict:
    """The regions file of a plan.

    Args:
        info: the media scanned.
        frame_count: frames decoded.
        tracks: what to redact.
        flags: frames a person should look at first (bridged, unanalysed, ...).
        frame_times: presentation time of each frame (seconds or Fractions), if known.
    """
    media = {
        "file": info.path.name,
        "kind": info.kind,
        "width": info.width,
        "height": info.height,
        "fps": str(info.fps) if info.fps else None,
        "frame_count": frame_count,
    }
    if frame_times and len(frame_times) == frame_count and all(t is not None for t in frame_times):
        first = frame_times[0]
        media["frame_times"] = [round(float(t - first), 6) for t in frame_times]
    return {
        "version": VERSION,
        "media": media,
        "tracks": [
            {
                "id": t.id,
                "kind": t.kind,
                "keep": t.keep,
                "boxes": [
                    [int(f), *outward(box), round(float(s), 4), str(src)]
                    for f, box, s, src in zip(t.frames, t.xyxy, t.score, t.source)
                ],
            }
            for t in tracks
        ],
        "flags": flags or {},
    }


def frame_times(data: dict, frame_count: int) -> np.ndarray:
    """Seconds from the first frame to each frame, plus one more entry: the end of the last frame.

    Taken from ``media.frame_times`` when it fits ``frame_count``, else from the frame rate.
    """
    fps = fps_of(data) or Fraction(1)
    step = 1 / float(fps)
    stored = data.get("media", {}).get("frame_times")
    if isinstance(stored, list) and len(stored) == frame_count:
        try:
            times = np.array([float(t) for t in stored], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise RegionsError(f"media.frame_times is malformed ({exc})") from exc
        if not np.isfinite(times).all() or (np.diff(times) <= 0).any():
            raise RegionsError("media.frame_times must be increasing numbers")
    else:
        times = np.arange(frame_count, dtype=np.float64) * step
    last_step = float(times[-1] - times[-2]) if len(times) > 1 else step
    return np.append(times, times[-1] + last_step)


def from_dict(
    data: dict, width: int | None = None, height: int | None = None, frame_count: int | None = None
) -> list[Track]:
    """Tracks from a regions dict, validated against the media when its size is given.

    Manual regions (a ``box`` or ``keyframes`` with an optional range) are expanded into one box
    per frame; ``frame_count`` is needed for them (1 for a photo).

    Raises:
        RegionsError: the file is malformed or does not fit the media; the message names the
            track and what is wrong.
    """
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise RegionsError(f'not a blur regions file (expected "version": {VERSION})')
    entries = data.get("tracks", [])
    if not isinstance(entries, list):
        raise RegionsError('"tracks" must be a list')
    from .detectors import kinds as detector_kinds  # the registry (it loads the models' runtime)

    kinds = (*detector_kinds(), "manual")
    times = None
    tracks, seen = [], set()
    for t in entries:
        if not isinstance(t, dict):
            raise RegionsError(f"every track must be an object, not {t!r}")
        tid = t.get("id")
        if not isinstance(tid, int) or isinstance(tid, bool) or tid in seen:
            raise RegionsError(f"track id {tid!r} is missing, not a whole number, or repeated")
        seen.add(tid)
        unknown = sorted(set(t) - _TRACK_FIELDS)
        if unknown:
            raise RegionsError(
                f"track {tid}: unknown field(s) {', '.join(map(repr, unknown))} "
                f"(known: {', '.join(sorted(_TRACK_FIELDS))})"
            )
        if t.get("kind") not in kinds:
            raise RegionsError(f"track {tid}: unknown kind {t.get('kind')!r} (one of {', '.join(kinds)})")
        keep = t.get("keep", False)
        if not isinstance(keep, bool):
            raise RegionsError(f'track {tid}: "keep" must be true or false, not {keep!r}')
        drawn = "box" in t or "keyframes" in t
        if drawn:
            if "boxes" in t:
                raise RegionsError(
                    f'track {tid}: give either "boxes" (one per frame) or "box"/"keyframes", not both'
                )
            if frame_count is None:
                raise RegionsError(f"track {tid}: the number of frames is needed to place it")
            if times is None:
                times = frame_times(data, frame_count)
            rows = hand_drawn.rows(t, tid, times, frame_count)
        else:
            if any(k in t for k in _RANGE_FIELDS):
                raise RegionsError(f'track {tid}: a time or frame range needs a "box" or "keyframes"')
            rows = _per_frame_rows(t, tid)
        for f, box, _, _ in rows:
            _check_box(tid, f, box, width, height)
            if f < 0 or (frame_count is not None and f >= frame_count):
                raise RegionsError(
                    f"track {tid}: frame {f} is outside the file (frames 0 to {(frame_count or 1) - 1})"
                )
        rows.sort(key=lambda r: r[0])
        frames = [r[0] for r in rows]
        if len(set(frames)) != len(frames):
            raise RegionsError(
                f"track {tid}: frame {_first_repeat(frames)} has two boxes "
                f"(use another track for a second region)"
            )
        tracks.append(
            Track(
                tid,
                t["kind"],
                frames,
                np.array([r[1] for r in rows], dtype=np.float32).reshape(-1, 4),
                [r[2] for r in rows],
                [r[3] for r in rows],
                keep=keep,
            )
        )
    return tracks


def for_media(data: dict, info: MediaInfo) -> tuple[int, list[Track], list[int], list[str]]:
    """What a regions file says for the media ``info`` describes, checked against it.

    Returns:
        (frame count, tracks, unanalysed frames, notes on what was changed: boxes overhanging
        the frame are clipped to it).

    Raises:
        RegionsError: the file is malformed, or was made for media of another kind or size.
    """
    media = data.get("media") if isinstance(data, dict) else None
    if not isinstance(media, dict):
        raise RegionsError('the regions file has no "media" section (make it with blur scan)')
    if media.get("kind") not in (None, info.kind):
        noun = {"image": "photo", "animation": "animation", "video": "video"}
        raise RegionsError(
            f"the regions file is for a {noun.get(media.get('kind'), 'file')}, "
            f"this is a {noun.get(info.kind, 'file')}"
        )
    if (media.get("width"), media.get("height")) != (info.width, info.height):
        raise RegionsError(
            f"the regions file is for a {media.get('width')}x{media.get('height')} "
            f"picture, this one is {info.width}x{info.height}"
        )
    count = media.get("frame_count", 1 if info.kind == "image" else None)
    if (
        not isinstance(count, int)
        or isinstance(count, bool)
        or count < 1
        or (info.kind == "image" and count != 1)
    ):
        raise RegionsError(f"media.frame_count {count!r} is not a number of frames")
    tracks = from_dict(data, info.width, info.height, count)
    notes = []
    clipped = clip_tracks(tracks, info.width, info.height)
    if clipped:
        notes.append(
            f"{sum(clipped.values())} box(es) overhanging the {info.width}x{info.height} "
            f"frame clipped to it (track(s) {', '.join(map(str, sorted(clipped)))})"
        )
    unanalysed = (data.get("flags") or {}).get("unanalysed_frames") or []
    if not isinstance(unanalysed, list) or not all(isinstance(f, int) for f in unanalysed):
        raise RegionsError("flags.unanalysed_frames must be a list of frame numbers")
    return count, tracks, unanalysed, notes


def clip_tracks(tracks: list[Track], width: int, height: int) -> dict[int, int]:
    """Clip every box that overhangs the frame to the full frame, in place.

    A box that merely overhangs (a padded face walking out of the picture, a box a person
    widened past the edge) redacts the same pixels either way; ``from_dict`` has already refused
    boxes wholly outside the frame.

    Returns:
        {track id: number of its boxes that were clipped}, only tracks with some.
    """
    clipped = {}
    for t in tracks:
        inside = clip_xyxy(t.xyxy, width, height)
        changed = int((inside != t.xyxy).any(axis=1).sum())
        if changed:
            t.xyxy = inside
            clipped[t.id] = changed
    return clipped


def _first_repeat(values: list[int]) -> int:
    seen = set()
    for v in values:
        if v in seen:
            return v
        seen.add(v)
    raise ValueError("no repeat")


def _per_frame_rows(t: dict, tid: int) -> list:
    boxes = t.get("boxes", [])
    if not isinstance(boxes, list):
        raise RegionsError(
            f'track {tid}: "boxes" must be a list of [frame, x1, y1, x2, y2, score, source] rows'
        )
    try:
        return [
            (
                whole(b[0]),
                [float(v) for v in b[1:5]] if len(b) >= 5 else _short(b),
                float(b[5]) if len(b) > 5 else 0.0,
                str(b[6]) if len(b) > 6 else "manual",
            )
            for b in boxes
        ]
    except (TypeError, ValueError, IndexError) as exc:
        raise RegionsError(
            f"track {tid}: malformed box row ({exc}); expected [frame, x1, y1, x2, y2, score, source]"
        ) from exc


def _short(row) -> list:
    raise ValueError(f"{row!r} has fewer than 5 numbers")


def _check_box(tid: int, frame: int, box, width: int | None, height: int | None) -> None:
    x1, y1, x2, y2 = box
    where = f"track {tid}, frame {frame}"
    if not all(math.isfinite(v) for v in box):
        raise RegionsError(f"{where}: box {box} has a value that is not a number")
    if x2 <= x1 or y2 <= y1:
        raise RegionsError(f"{where}: empty box {box} (x2 must exceed x1 and y2 exceed y1)")
    if width is not None and (x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height):
        raise RegionsError(f"{where}: box {box} lies outside the {width}x{height} frame")


def fps_of(data: dict) -> Fraction | None:
    fps = data.get("media", {}).get("fps")
    try:
        return Fraction(fps) if fps else None
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        raise RegionsError(f"media.fps {fps!r} is not a frame rate") from exc
