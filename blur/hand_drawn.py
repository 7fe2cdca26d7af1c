"""Regions a person drew in the regions file: a ``box`` over a range of time or frames, or
``keyframes`` a box moves between (interpolated linearly). See ``blur.regions`` for the format.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import RegionsError

# Times closer than this are equal: frame times are stored to the microsecond, and 12 * 0.1 is
# not 1.2 in floating point.
_EPS = 1e-6


def whole(value) -> int:
    """A frame number: an int, or a float with no fraction (JSON writers differ)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError(f"frame {value!r} is not a whole number")
    return int(value)


def _box_of(value, tid: int, what: str) -> list[float]:
    if (
        not isinstance(value, list)
        or len(value) != 4
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise RegionsError(f"track {tid}: {what} must be [x1, y1, x2, y2], not {value!r}")
    return [float(v) for v in value]


def _seconds(t: dict, key: str, tid: int) -> float | None:
    value = t.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise RegionsError(f'track {tid}: bad time "{key}": {value!r} (seconds, 0 or more)')
    return float(value)


def _frame_field(t: dict, key: str, tid: int, frame_count: int) -> int | None:
    value = t.get(key)
    if value is None:
        return None
    try:
        frame = whole(value)
    except ValueError as exc:
        raise RegionsError(f'track {tid}: bad "{key}": {exc}') from exc
    if not 0 <= frame < frame_count:
        raise RegionsError(
            f'track {tid}: "{key}" {frame} is outside the file (frames 0 to {frame_count - 1})'
        )
    return frame


def frames_during(times: np.ndarray, start: float, end: float) -> tuple[int, int]:
    """First and last frame shown during [start, end) seconds, or (1, 0) when there is none.

    ``times`` has one entry per frame plus the end of the last one (``frame_times``). A frame
    counts when its display interval overlaps the range at all: a region is never uncovered
    while the player is inside it.
    """
    begins, ends = times[:-1], times[1:]
    hit = np.nonzero((begins < end - _EPS) & (ends > start + _EPS))[0]
    return (int(hit[0]), int(hit[-1])) if len(hit) else (1, 0)


def _frame_at(times: np.ndarray, seconds: float) -> int:
    """The frame on screen at ``seconds``."""
    return int(max(0, np.searchsorted(times[:-1], seconds + _EPS, side="right") - 1))


def rows(t: dict, tid: int, times: np.ndarray, frame_count: int) -> list:
    """Rows (frame, box, score, "manual") of a region given by a box or keyframes."""
    duration = float(times[-1])
    if "keyframes" in t:
        if "box" in t:
            raise RegionsError(f'track {tid}: give either "box" or "keyframes", not both')
        keys = t["keyframes"]
        if not isinstance(keys, list) or not keys:
            raise RegionsError(f'track {tid}: "keyframes" must be a non-empty list')
    else:
        keys = [{"frame": None, "box": t["box"]}]
    key_frames, key_boxes = [], []
    for k in keys:
        if not isinstance(k, dict) or set(k) - {"frame", "time", "box"} or "box" not in k:
            raise RegionsError(f'track {tid}: a keyframe is {{"frame" or "time", "box"}}, not {k!r}')
        if "frame" in k and "time" in k:
            raise RegionsError(f'track {tid}: a keyframe has a "frame" or a "time", not both')
        box = _box_of(k["box"], tid, "a keyframe's box" if "keyframes" in t else '"box"')
        if "time" in k:
            at = _seconds(k, "time", tid)
            if at is None or at >= duration:
                raise RegionsError(
                    f"track {tid}: bad time {k['time']!r}: outside the file (0 to {duration:.3f} s)"
                )
            frame = _frame_at(times, at)
        elif k.get("frame") is not None:
            frame = _frame_field(k, "frame", tid, frame_count)
        elif "keyframes" in t:
            raise RegionsError(f'track {tid}: a keyframe needs a "frame" or a "time"')
        else:
            frame = None  # a single box: no position in time of its own
        key_frames.append(frame)
        key_boxes.append(box)
    if len({f for f in key_frames if f is not None}) != sum(f is not None for f in key_frames):
        raise RegionsError(f"track {tid}: two keyframes fall on the same frame")

    first, last = _range(t, tid, times, frame_count, key_frames)
    frames = np.arange(first, last + 1)
    if key_frames == [None]:
        boxes = np.tile(np.array(key_boxes[0], dtype=np.float64), (len(frames), 1))
    else:
        order = np.argsort(key_frames)
        kf = np.array(key_frames, dtype=np.float64)[order]
        kb = np.array(key_boxes, dtype=np.float64)[order]
        boxes = np.stack([np.interp(frames, kf, kb[:, j]) for j in range(4)], axis=1)
    return [(int(f), list(map(float, b)), 0.0, "manual") for f, b in zip(frames, boxes)]


def _range(
    t: dict, tid: int, times: np.ndarray, frame_count: int, key_frames: list[int | None]
) -> tuple[int, int]:
    """First and last frame (inclusive) a hand-drawn region covers."""
    in_seconds = "start" in t or "end" in t
    in_frames = "first_frame" in t or "last_frame" in t
    if in_seconds and in_frames:
        raise RegionsError(
            f"track {tid}: give the range in seconds (start/end) or in frames "
            f"(first_frame/last_frame), not both"
        )
    duration = float(times[-1])
    if in_seconds:
        start = _seconds(t, "start", tid)
        end = _seconds(t, "end", tid)
        start = 0.0 if start is None else start
        end = duration if end is None else end
        if end <= start:
            raise RegionsError(f"track {tid}: bad times: end {end} s is not after start {start} s")
        first, last = frames_during(times, start, end)
        if first > last:
            raise RegionsError(
                f"track {tid}: bad times: {start}-{end} s is outside the file (0 to {duration:.3f} s)"
            )
        return first, last
    if in_frames:
        first = _frame_field(t, "first_frame", tid, frame_count)
        last = _frame_field(t, "last_frame", tid, frame_count)
        first = 0 if first is None else first
        last = frame_count - 1 if last is None else last
        if last < first:
            raise RegionsError(f"track {tid}: last_frame {last} is before first_frame {first}")
        return first, last
    placed = [f for f in key_frames if f is not None]
    if not placed:
        return 0, frame_count - 1
    return min(placed), max(placed)
