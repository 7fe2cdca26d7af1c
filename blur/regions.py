"""The regions file: what will be redacted, per track and frame, as JSON.

Scanning writes it and rendering reads it, so a person can look at the plan, correct it and
render again without re-detecting. Schema (version 1)::

    {"version": 1,
     "media": {"file": "clip.mp4", "kind": "video", "width": 1280, "height": 720,
               "fps": "30000/1001", "frame_count": 300},
     "tracks": [{"id": 1, "kind": "face", "keep": false,
                 "boxes": [[frame, x1, y1, x2, y2, score, "detected"], ...]}],
     "flags": {"bridged_frames": [...], "weak_frames": [...]}}

Boxes are in upright (display) pixels, x2/y2 exclusive, before the mask scale is applied.
``source`` is "detected", "interpolated", "padded" or "manual".
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import RegionsError
from .types import KINDS, MediaInfo, Track

VERSION = 1


def to_dict(info: MediaInfo, frame_count: int, tracks: list[Track],
            flags: dict | None = None) -> dict:
    return {
        "version": VERSION,
        "media": {"file": info.path.name, "kind": info.kind, "width": info.width,
                  "height": info.height, "fps": str(info.fps) if info.fps else None,
                  "frame_count": frame_count},
        "tracks": [{
            "id": t.id, "kind": t.kind, "keep": t.keep,
            "boxes": [[int(f), *(round(float(v), 2) for v in box), round(float(s), 4), str(src)]
                      for f, box, s, src in zip(t.frames, t.xyxy, t.score, t.source)],
        } for t in tracks],
        "flags": flags or {},
    }


def from_dict(data: dict, width: int | None = None, height: int | None = None,
              frame_count: int | None = None) -> list[Track]:
    """Tracks from a regions dict, validated against the media when its size is given."""
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise RegionsError(f"not a blur regions file (expected version {VERSION})")
    tracks, seen = [], set()
    for t in data.get("tracks", []):
        tid = t.get("id")
        if not isinstance(tid, int) or tid in seen:
            raise RegionsError(f"track id {tid!r} is missing or repeated")
        seen.add(tid)
        if t.get("kind") not in KINDS:
            raise RegionsError(f"track {tid}: unknown kind {t.get('kind')!r}")
        try:
            rows = [(int(b[0]), [float(v) for v in b[1:5]], float(b[5]) if len(b) > 5 else 0.0,
                     str(b[6]) if len(b) > 6 else "manual") for b in t.get("boxes", [])]
        except (TypeError, ValueError, IndexError) as exc:
            raise RegionsError(f"track {tid}: malformed box ({exc})") from exc
        for f, (x1, y1, x2, y2), _, _ in rows:
            if x2 <= x1 or y2 <= y1:
                raise RegionsError(f"track {tid}, frame {f}: empty box")
            if f < 0 or (frame_count is not None and f >= frame_count):
                raise RegionsError(f"track {tid}: frame {f} is outside the video")
            if width is not None and (x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height):
                raise RegionsError(f"track {tid}, frame {f}: box lies outside the frame")
        rows.sort(key=lambda r: r[0])
        tracks.append(Track(tid, t["kind"], [r[0] for r in rows],
                            np.array([r[1] for r in rows], dtype=np.float32).reshape(-1, 4),
                            [r[2] for r in rows], [r[3] for r in rows], keep=bool(t.get("keep"))))
    return tracks


def save(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n")


def load(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RegionsError(f"cannot read regions file: {exc}", path) from exc


def fps_of(data: dict) -> Fraction | None:
    fps = data.get("media", {}).get("fps")
    return Fraction(fps) if fps else None
