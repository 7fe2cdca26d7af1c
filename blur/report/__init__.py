"""The review report of a scan: a JSON summary, and one self-contained HTML page to look at.

The page is a single file: crops are embedded as ``data:`` URIs, styles are inline, there is no
script, and a Content-Security-Policy forbids loading anything else, so opening it makes no
network request. It shows the file's facts, the metadata that will not be copied, a timeline of
the tracks and a contact sheet (a few crops per track with its frame range and score). A short
list of the riskiest tracks comes first, each with the reason it is there (``blur.risk``: large
weak regions, long bridges, weak-only tracks), and the cards follow the same order.

The crops are of the *unredacted* input unless ``redacted=True``, which shows each crop as the
output will show it (every planned region redacted first): that version is safe to share.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..boxes import clip_to_image
from ..errors import UsageError
from ..files import atomic_output
from ..media import frames_at, image, leftover
from ..redact import Redactor, redact_frame
from ..risk import frame_seconds, rank_plan, short_list
from ..settings import Settings
from ..tracking import boxes_at
from ..types import FLAGGED, HITS, SOURCES
from .page import html_page

__all__ = ["crops", "html_page", "overview", "summary", "write"]

CROPS_PER_TRACK = 4
CROP_HEIGHT = 112  # px on the page; small faces are enlarged to it, large ones shrunk
CONTEXT = 1.6  # a crop shows the box grown by this factor, to see what is around it
MIN_MARGIN = 8  # px of the frame shown on each side of a box, however small the box


def _ranges(frames) -> list[tuple[int, int]]:
    """[3, 4, 5, 9] -> [(3, 5), (9, 9)]."""
    out: list[list[int]] = []
    for f in sorted({int(f) for f in frames}):
        if out and f == out[-1][1] + 1:
            out[-1][1] = f
        else:
            out.append([f, f])
    return [(a, b) for a, b in out]


def summary(plan, settings: Settings | None = None, output: Path | None = None) -> dict:
    """What a scan found, as plain data (no pixels): the JSON report, and what the page shows.

    Args:
        plan: the scan's plan.
        settings: the settings it was made with.
        output: the rendered output, if there is one yet: its leftover metadata is listed
            (``metadata_in_output``; None before any output exists).
    """
    from .. import __version__

    settings = settings or Settings()
    info = plan.info
    times = frame_seconds(plan)
    ranked = rank_plan(plan)
    risks = {r.track: r for r in ranked}
    tracks = []
    for t in plan.tracks:
        risk = risks[int(t.id)]
        src = [str(s) for s in t.source]
        detected = t.score[np.isin(t.source, HITS)]
        flagged = [int(f) for f, s in zip(t.frames, src) if s in FLAGGED]
        runs = []
        for f, s in zip(t.frames, src):
            if runs and runs[-1][2] == s and runs[-1][1] == f - 1:
                runs[-1][1] = int(f)
            else:
                runs.append([int(f), int(f), s])
        best = int(np.argmax(t.score)) if len(t) else None
        tracks.append(
            {
                "id": int(t.id),
                "kind": t.kind,
                "keep": bool(t.keep),
                "best": None
                if best is None
                else {"frame": int(t.frames[best]), "box": [round(float(v), 1) for v in t.xyxy[best]]},
                "first_frame": int(t.frames[0]) if len(t) else None,
                "last_frame": int(t.frames[-1]) if len(t) else None,
                "first_time": round(times[int(t.frames[0])], 3) if times and len(t) else None,
                "last_time": round(times[int(t.frames[-1])], 3) if times and len(t) else None,
                "frames": {s: src.count(s) for s in SOURCES if s in src},
                "max_score": round(float(detected.max()), 3) if len(detected) else None,
                "mean_score": round(float(detected.mean()), 3) if len(detected) else None,
                "flagged_frames": flagged,
                "segments": runs,
                "risk": {
                    "share": round(risk.share, 4),
                    "weakness": round(risk.weakness, 3),
                    "longest_bridge": None
                    if risk.bridge is None
                    else {
                        "first_frame": risk.bridge[0],
                        "last_frame": risk.bridge[1],
                        "seconds": round(risk.bridge[2], 3),
                    },
                    "reasons": risk.reasons,
                },
            }
        )
    bridged, weak = [], []
    for t in plan.tracks:
        if t.keep:
            continue
        for kind, into in (("interpolated", bridged), ("weak", weak)):
            for a, b in _ranges(t.frames[t.source == kind]):
                into.append(
                    {
                        "track": int(t.id),
                        "first_frame": a,
                        "last_frame": b,
                        "first_time": round(times[a], 3) if times else None,
                        "last_time": round(times[b], 3) if times else None,
                    }
                )
    redacted = {int(f) for t in plan.tracks if not t.keep for f in t.frames}
    redacted |= set(plan.unanalysed_frames)
    size = info.path.stat().st_size if info.path.exists() else None
    return {
        "blur_version": __version__,
        "file": {
            "name": info.path.name,
            "kind": info.kind,
            "bytes": size,
            "width": info.width,
            "height": info.height,
            "duration": round(info.duration, 3) if info.duration else None,
            "fps": str(info.fps) if info.fps else None,
            "frame_count": plan.frame_count,
            "rotation": info.rotation,
            "audio_streams": list(info.audio_streams),
        },
        "metadata_found": list(info.metadata_found),
        "metadata_in_output": None if output is None else leftover(Path(output)),
        "settings": {
            "kinds": list(settings.kinds),
            "face_threshold": settings.face_threshold,
            "mask_scale": settings.mask_scale,
            "shape": settings.shape,
            "style": settings.style,
        },
        "frames_with_regions": len(redacted),
        "review_order": [r.track for r in ranked],
        "check_first": {
            "tracks": [{"track": r.track, "kind": r.kind, "why": r.reasons} for r in short_list(ranked)],
            "bridged": bridged,
            "weak": weak,
            "unanalysed": [{"first_frame": a, "last_frame": b} for a, b in _ranges(plan.unanalysed_frames)],
        },
        "tracks": tracks,
    }


def _pick_rows(t, limit: int) -> list[int]:
    """Row indices of ``t`` to show: flagged rows first, the best detection, the ends, and
    evenly spaced rows after that."""
    n = len(t)
    if n == 0:
        return []
    wanted = [i for i in range(n) if t.source[i] in FLAGGED][:1]
    hits = np.nonzero(np.isin(t.source, HITS))[0]
    if len(hits):
        wanted.append(int(hits[np.argmax(t.score[hits])]))
    wanted += [0, n - 1] + [int(i) for i in np.linspace(0, n - 1, limit + 2)[1:-1].round()]
    rows: list[int] = []
    for i in wanted:
        if i not in rows:
            rows.append(i)
    return sorted(rows[:limit])


def _crop_window(box, width: int, height: int) -> tuple[int, int, int, int]:
    """The part of the frame a crop of ``box`` shows: the box clipped to the frame (what is
    redacted of it) with a margin around it (``CONTEXT`` of the box's size, at least
    ``MIN_MARGIN`` px), clipped again. A box that overhangs the frame (a padded track at the
    border) shows its visible part and what is next to it, never the whole frame."""
    x1, y1, x2, y2 = np.asarray(box, np.float64).reshape(4)
    mx = max((CONTEXT - 1) / 2 * max(x2 - x1, 0.0), MIN_MARGIN)
    my = max((CONTEXT - 1) / 2 * max(y2 - y1, 0.0), MIN_MARGIN)
    x1, x2 = min(max(x1, 0.0), width - 1.0), min(max(x2, 0.0), float(width))
    y1, y2 = min(max(y1, 0.0), height - 1.0), min(max(y2, 0.0), float(height))
    x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)  # wholly outside: the nearest pixel at the border
    grown = np.array([[x1 - mx, y1 - my, x2 + mx, y2 + my]])
    # Never empty: the grown box holds the clipped one, which holds at least one pixel.
    return tuple(int(v) for v in clip_to_image(grown, width, height)[0])


def _crop(rgb: np.ndarray, box: np.ndarray, outline: bool) -> str:
    """A JPEG data URI of the region around ``box``, optionally with the box outlined."""
    height, width = rgb.shape[:2]
    x1, y1, x2, y2 = _crop_window(box, width, height)
    im = Image.fromarray(np.ascontiguousarray(rgb[y1:y2, x1:x2]))
    scale = CROP_HEIGHT / im.height
    im = im.resize(
        (max(1, round(im.width * scale)), CROP_HEIGHT),
        Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC,
    )
    if outline:
        bx1, by1, bx2, by2 = ((np.asarray(box, np.float64) - [x1, y1, x1, y1]) * scale).tolist()
        ImageDraw.Draw(im).rectangle([bx1, by1, bx2 - 1, by2 - 1], outline=(255, 40, 40))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def crops(
    src: Path,
    plan,
    settings: Settings | None = None,
    redacted: bool = False,
    per_track: int = CROPS_PER_TRACK,
) -> dict[int, list[dict]]:
    """A few crops per track, decoded again from ``src``: {track id: [{frame, source, score,
    uri}]}. With ``redacted`` every planned region is redacted before cropping, so a crop shows
    what the output will show."""
    settings = settings or Settings()
    wanted: dict[int, list[tuple[int, object, int]]] = {}
    for t in plan.tracks:
        for row in _pick_rows(t, per_track):
            wanted.setdefault(int(t.frames[row]), []).append((int(t.id), t, row))
    out: dict[int, list[dict]] = {int(t.id): [] for t in plan.tracks}
    if not wanted:
        return out
    per_frame = boxes_at(plan.tracks, plan.frame_count) if redacted else None
    for index, rgb in frames_at(replace(plan.info, path=Path(src)), set(wanted)):
        if redacted:
            rgb = _redacted(rgb, index, plan, per_frame, settings)
        for tid, t, row in wanted[index]:
            out[tid].append(
                {
                    "frame": index,
                    "source": str(t.source[row]),
                    "score": round(float(t.score[row]), 3),
                    "uri": _crop(rgb, t.xyxy[row], outline=not redacted),
                }
            )
    for items in out.values():
        items.sort(key=lambda c: c["frame"])
    return out


def _redacted(rgb: np.ndarray, index: int, plan, per_frame, settings: Settings) -> np.ndarray:
    """A copy of one frame with every planned region redacted, as the output will show it."""
    rgb = rgb.copy()
    redactor = Redactor(settings.style, settings.mask_scale, settings.shape)
    redact_frame(rgb, redactor, per_frame[index], index in set(plan.unanalysed_frames))
    return rgb


def overview(
    src: Path, plan, settings: Settings | None = None, redacted: bool = False, max_width: int = 900
) -> str | None:
    """A photo with every track's box outlined and numbered (None for a video: a track's boxes
    are in different frames)."""
    if plan.info.kind != "image":
        return None
    settings = settings or Settings()
    rgb = image.read(Path(src)).rgb
    if redacted:
        rgb = _redacted(rgb, 0, plan, boxes_at(plan.tracks, 1), settings)
    im = Image.fromarray(rgb)
    scale = min(1.0, max_width / im.width)
    if scale < 1:
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(im)
    for t in plan.tracks:
        colour = (40, 170, 60) if t.keep else (130, 70, 200) if t.kind == "manual" else (255, 40, 40)
        for box in t.xyxy[t.frames == 0]:
            x1, y1, x2, y2 = (float(v) * scale for v in box)
            draw.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=colour, width=2)
            draw.text((x1 + 2, max(0.0, y1 - 12)), str(t.id), fill=colour)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def write(
    path: Path,
    src: Path,
    plan,
    settings: Settings | None = None,
    redacted: bool = False,
    regions_path: Path | None = None,
) -> Path:
    """Write the report of ``plan`` to ``path``: HTML (``.html``/``.htm``) or JSON (``.json``).

    Raises:
        UsageError: ``path`` has another extension.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".html", ".htm", ".json"):
        raise UsageError(f"a report must end in .html or .json, not {path.name}")
    data = summary(plan, settings)
    if suffix == ".json":
        text = json.dumps(data, indent=1) + "\n"
    else:
        text = html_page(
            data,
            crops(src, plan, settings, redacted),
            redacted,
            Path(regions_path).name if regions_path else None,
            overview(src, plan, settings, redacted),
        )
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
