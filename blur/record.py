"""The record blur carries inside its outputs, so that ``blur check OUTPUT`` needs no regions file.

``blur check`` passes blur's own outputs only when it knows what the render covered and what
the scan saw (see ``blur.check``): with no such knowledge, a re-detected fill and a small
defocused face, or a fill's edge and half a face, look the same to any measurement of the
pixels. That knowledge is exactly two things of the regions file: the regions redacted (and
kept) per frame, and the scan's record (``blur.seen``). blur writes them into the output as
one text field (where: ``blur.media.embedded``), compact and versioned::

    blur-record:<base64 of zlib of JSON>

The JSON holds only numbers and kind names: the output's kind, size and frame count (so a
record on a file of another length or size is refused), the mask scale it was rendered with,
the frames that could not be analysed, each region as whole-pixel boxes (rounded outwards, as
the render covered at least that) with its kind and whether a person kept it visible, and the
scan's candidates (whole-pixel boxes, scores to 0.001 rounded down, kinds), all in columns of
differences, which compress well. Photos also carry the SHA-256 of the file without the record
(``sha256``): a record on a photo that was edited or re-saved after blur is refused.

Nothing in it identifies anyone or anything: no pixels or crops, no names, no source path, no
dates, no device, no software version. A face's box says where in the frame something was and
how large, which anyone looking at the published picture sees already (the redaction is there
to see); it says nothing about who it was. The record is validated field by field when read, so
that the field can carry nothing else: a comment that is not exactly such a record is reported
as metadata like any other.

Measured (``python benchmarks/check_without_regions.py --record-sizes``): messi5.jpg (20
regions, 69 candidates) 1,060 bytes, 1,132 with its hash; ``samples/street.mp4`` (5 s at 10
fps, 88 tracks, 2,163 candidates) 17,140 bytes, 343 a frame, 2.9 % of blur's 597 KB output of
it. An hour of such busy footage would carry about 12 MB at 10 fps and 31 MB at 25 fps: the
size grows with the candidates a frame (weak ones included), not with the picture. In an MP4
it sits in the header at the start of the file, which a player reads before it starts.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import zlib

import numpy as np


def _kinds() -> tuple[str, ...]:
    """The kinds a record may name: those of the registered detectors, and "manual"."""
    from .detectors import kinds  # the registry (it loads the models' runtime)

    return (*kinds(), "manual")


MAGIC = "blur-record:"
VERSION = 1
# A record larger than this (compressed and in base64) is refused when read: it would be no
# blur output (a 24-hour video at 60 fps with 100 candidates a frame stays under it).
MAX_CHARS = 512 * 1024 * 1024
_FIELDS = {"v", "kind", "size", "frames", "mask_scale", "unanalysed", "tracks", "seen", "sha256"}
_SEEN_FIELDS = {"threshold", "every", "kinds", "columns"}
_MEDIA_KINDS = ("image", "animation", "video")


def _deltas(values) -> list[int]:
    values = [int(v) for v in values]
    return [v - p for v, p in zip(values, [0, *values[:-1]])]


def _undelta(values) -> list[int]:
    return [int(v) for v in np.cumsum(np.asarray(values, dtype=np.int64))] if len(values) else []


def record_of(plan, mask_scale: float) -> dict:
    """The record of a plan as rendered with ``mask_scale``: a dict for ``encode`` (the writer
    adds the binding, ``sha256``, where it can).

    Args:
        plan: a ``blur.types.Plan``; its ``seen`` (the scan's record) is carried when present.
        mask_scale: the settings' ``mask_scale``.
    """
    info = plan.info
    width, height = int(info.width), int(info.height)
    tracks = []
    for t in plan.tracks:
        xyxy = np.asarray(t.xyxy, dtype=np.float64).reshape(-1, 4)
        x1 = np.clip(np.floor(xyxy[:, 0]), 0, width)
        y1 = np.clip(np.floor(xyxy[:, 1]), 0, height)
        x2 = np.clip(np.ceil(xyxy[:, 2]), 0, width)
        y2 = np.clip(np.ceil(xyxy[:, 3]), 0, height)
        # A box with nothing inside the frame covered nothing (and a regions file refuses it).
        inside = (x2 > x1) & (y2 > y1)
        if not inside.any():
            continue
        columns = (np.asarray(t.frames)[inside], x1[inside], y1[inside], x2[inside], y2[inside])
        tracks.append([str(t.kind), int(bool(t.keep)), *(_deltas(c) for c in columns)])
    body = {
        "v": VERSION,
        "kind": info.kind,
        "size": [width, height],
        "frames": int(plan.frame_count),
        "mask_scale": float(mask_scale),
        "unanalysed": sorted(int(f) for f in plan.unanalysed_frames),
        "tracks": tracks,
    }
    if plan.seen is not None and plan.face_threshold is not None:
        body["seen"] = _seen_columns(plan.seen, plan.face_threshold, plan.seen_every)
    return body


def attach_seen(plan, data: dict) -> None:
    """Give a plan loaded from a regions file (``blur render``) the scan's record that file
    holds, so that the output carries it too. A malformed record is left out, with a note."""
    from .errors import RegionsError
    from .seen import Seen
    from .types import Detections

    try:
        found = Seen.from_dict(data, plan.frame_count)
    except RegionsError:
        plan.notes.append('the regions file\'s "seen" section is malformed: the output carries no record')
        return
    if found is None:
        return
    per_frame: list[list] = [[] for _ in range(plan.frame_count)]
    for (f, kind), (xyxy, score) in found.per_frame.items():
        per_frame[f].append(Detections.of(xyxy, score, kind))
    plan.seen = [Detections.concat(parts) for parts in per_frame]
    plan.face_threshold, plan.seen_every = found.threshold, found.every_n_frames


def _seen_columns(per_frame, threshold: float, every: int) -> dict:
    """The scan's candidates in columns, sorted by frame, kind and left edge: frame (difference
    from the row before), kind (index into ``kinds``), x1 (difference from the row before in
    the same frame and kind), y1, width, height, score in thousandths (rounded down: a score
    under a threshold stays under it)."""
    rows = []
    for f, found in enumerate(per_frame):
        for box, score, kind in zip(found.xyxy, found.score, found.kind):
            x1, y1, x2, y2 = (int(round(float(v))) for v in box)
            rows.append(
                (f, str(kind), x1, y1, max(x2 - x1, 0), max(y2 - y1, 0), math.floor(float(score) * 1000))
            )
    rows.sort()
    kinds = sorted({r[1] for r in rows})
    columns: list[list[int]] = [[] for _ in range(7)]
    before = None
    for f, kind, x1, y1, w, h, s in rows:
        same = before is not None and before[:2] == (f, kind)
        columns[0].append(f - (before[0] if before else 0))
        columns[1].append(kinds.index(kind))
        columns[2].append(x1 - before[2] if same else x1)
        for k, v in zip(range(3, 7), (y1, w, h, s)):
            columns[k].append(v)
        before = (f, kind, x1)
    return {"threshold": float(threshold), "every": int(every), "kinds": kinds, "columns": columns}


def encode(body: dict) -> str:
    """The record as the text blur writes into a file."""
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return MAGIC + base64.b64encode(zlib.compress(raw, 9)).decode("ascii")


def decode(text) -> dict:
    """The record in ``text``, validated field by field.

    Raises:
        ValueError: ``text`` is not exactly a well-formed blur record.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii")
    if not isinstance(text, str) or not text.startswith(MAGIC) or len(text) > MAX_CHARS:
        raise ValueError("not a blur record")
    try:
        raw = zlib.decompressobj().decompress(base64.b64decode(text[len(MAGIC) :], validate=True), 1 << 30)
        body = json.loads(raw)
    except (binascii.Error, zlib.error, ValueError) as exc:
        raise ValueError(f"not a blur record: {exc}") from exc
    _validate(body)
    return body


def well_formed(text) -> bool:
    """Is ``text`` exactly a blur record (and so nothing that identifies anyone)?"""
    try:
        decode(text)
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _ints(value, what: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValueError(f"not a blur record: {what} must be whole numbers")
    return value


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"not a blur record: {what} must be a number")
    return float(value)


def _validate(body) -> None:
    """Only the fields a record has, each of the type it has: nothing else can ride along."""
    if not isinstance(body, dict) or body.get("v") != VERSION:
        raise ValueError(f"not a blur record of version {VERSION}")
    required = _FIELDS - {"seen", "sha256"}
    if not required <= set(body) <= _FIELDS:
        raise ValueError("not a blur record: unexpected or missing fields")
    if body["kind"] not in _MEDIA_KINDS:
        raise ValueError("not a blur record: unknown media kind")
    size = _ints(body["size"], "size")
    frames = body["frames"]
    if (
        len(size) != 2
        or min(size) < 1
        or not isinstance(frames, int)
        or isinstance(frames, bool)
        or frames < 1
    ):
        raise ValueError("not a blur record: size or frame count")
    _number(body["mask_scale"], "mask_scale")
    _ints(body["unanalysed"], "unanalysed")
    if not isinstance(body["tracks"], list):
        raise ValueError("not a blur record: tracks")
    kinds = _kinds()
    for t in body["tracks"]:
        if not isinstance(t, list) or len(t) != 7 or t[0] not in kinds or t[1] not in (0, 1):
            raise ValueError("not a blur record: a track")
        lengths = {len(_ints(c, "a track's columns")) for c in t[2:]}
        if len(lengths) != 1:
            raise ValueError("not a blur record: a track's columns differ in length")
    if "sha256" in body and (
        not isinstance(body["sha256"], str)
        or len(body["sha256"]) != 64
        or any(c not in "0123456789abcdef" for c in body["sha256"])
    ):
        raise ValueError("not a blur record: sha256")
    if "seen" in body:
        seen = body["seen"]
        if not isinstance(seen, dict) or set(seen) != _SEEN_FIELDS:
            raise ValueError("not a blur record: seen")
        _number(seen["threshold"], "seen.threshold")
        if not isinstance(seen["every"], int) or isinstance(seen["every"], bool) or seen["every"] < 1:
            raise ValueError("not a blur record: seen.every")
        if not isinstance(seen["kinds"], list) or any(k not in kinds for k in seen["kinds"]):
            raise ValueError("not a blur record: seen.kinds")
        columns = seen["columns"]
        if not isinstance(columns, list) or len(columns) != 7:
            raise ValueError("not a blur record: seen.columns")
        if len({len(_ints(c, "seen.columns")) for c in columns}) != 1:
            raise ValueError("not a blur record: seen.columns differ in length")
        if any(not 0 <= k < len(seen["kinds"]) for k in columns[1]):
            raise ValueError("not a blur record: seen kind index")


def as_regions(body: dict) -> dict:
    """The record as the regions file ``blur check --regions`` reads: its regions (boxes as
    rendered, without scores) and its ``seen`` section."""
    width, height = body["size"]
    tracks = []
    for n, (kind, keep, *columns) in enumerate(body["tracks"]):
        frames, x1, y1, x2, y2 = (_undelta(c) for c in columns)
        tracks.append(
            {
                "id": n,
                "kind": kind,
                "keep": bool(keep),
                "boxes": [[f, a, b, c, d, 0.0, "detected"] for f, a, b, c, d in zip(frames, x1, y1, x2, y2)],
            }
        )
    from .regions import VERSION as REGIONS_VERSION

    data = {
        "version": REGIONS_VERSION,
        "media": {"kind": body["kind"], "width": width, "height": height, "frame_count": body["frames"]},
        "tracks": tracks,
        "flags": {"unanalysed_frames": body["unanalysed"]},
    }
    if "seen" in body:
        data["seen"] = _seen_section(body["seen"])
    return data


def _seen_section(seen: dict) -> dict:
    """The ``seen`` section of a regions file (``blur.seen.to_dict``) from its columns."""
    f_d, kind_i, x_d, y1, w, h, score = seen["columns"]
    frames = _undelta(f_d)
    boxes = []
    before = None
    for f, k, dx, y, wi, hi, s in zip(frames, kind_i, x_d, y1, w, h, score):
        kind = seen["kinds"][k]
        x1 = before[2] + dx if before is not None and before[:2] == (f, kind) else dx
        boxes.append([f, x1, y, x1 + wi, y + hi, s / 1000, kind])
        before = (f, kind, x1)
    return {"threshold": seen["threshold"], "every_n_frames": seen["every"], "boxes": boxes}
