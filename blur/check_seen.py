"""How ``blur check`` uses the scan's record (``blur.seen``) to explain a weak detection off the
redactions, or to refuse to: see ``blur.check``'s module docstring for the rules and the
measurements behind them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import detail, tracking
from .boxes import clip_to_image, scale_about_centre
from .seen import Seen
from .types import Detections

# A weak detection the scan saw nothing at is put down to a redaction's fill when a region lies
# within this reach (the box grown by this factor about its centre: a box's size on every side).
# The fill changes what the detector sees beyond the box's own edge: on blur's renders of 20
# faces-dev photos (see ``blur.seen.FLOOR``), of 68 weak detections the scan had scored under
# 0.05, 50 touched a region grown by ``blur.check.ON_REGION_MARGIN`` and 65 lay within this reach.
BESIDE_REACH = 3.0
# A face the scan saw at its threshold counts as redacted when this share of the central part
# (COVER_CENTRE of its box, where the features are) lies under the regions as rendered.
COVER_CENTRE = 0.65
COVERED = 0.95


def as_scanned(
    record: Seen,
    frame: int,
    box: np.ndarray,
    kind: str,
    regions: Detections,
    luma: np.ndarray,
    mask: np.ndarray | None,
    size: tuple,
    is_fill: Callable[[detail.Detail], bool],
) -> str | None:
    """What the scan saw where a weak face detection (or a plate) off the redactions lies, when
    that explains it: "weak at scan" (the scan saw the face there below its threshold and did
    not redact it, by choice) or "beside a redaction" (the scan saw a face there that the
    regions cover, or nothing -- for faces, nothing from the record's floor up -- and the box
    touches a redacted region, whose fill changed what the detector sees around it: a
    box-shaped fill over a face reads as a plate when text lies beside it). None when it is
    unexplained: the scan saw a face the regions do not cover, or a plate, there (a track
    deleted from the regions file or edited smaller), or nothing at all, far from any
    redaction."""
    best = record.best_here(frame, box, kind)
    if kind == "face" and record.faces_at(frame, box, record.threshold):
        filled = _filled(record, frame, box, luma, mask, is_fill)
        return "beside a redaction" if filled else None
    if best is not None and kind != "face":
        # A plate the scan saw there that lies under a redaction: what reads as a plate now is
        # the fill with what is around it.
        covered = mask is not None and any(
            under(seen, mask) >= COVERED for seen in record.plates_at(frame, box)
        )
        return "beside a redaction" if covered else None
    if best is not None:
        return "weak at scan"
    if touches(box, regions, *size):
        return "beside a redaction"
    return None


def uncovered(record: Seen, frame: int, box: np.ndarray, mask: np.ndarray | None) -> bool:
    """Did the scan see a face at its threshold at ``box``'s place, and do the redacted regions
    wholly cover the central part of none of its boxes? (One face is often seen twice, a few
    pixels apart, and tracked once: one covered box is enough.)"""
    seen_boxes = record.faces_at(frame, box, record.threshold)
    if not seen_boxes:
        return False
    if mask is None:
        return True
    for seen_box in seen_boxes:
        x1, y1, x2, y2 = clip_to_image(
            scale_about_centre(seen_box.reshape(1, 4), COVER_CENTRE), mask.shape[1], mask.shape[0]
        )[0]
        if x2 > x1 and y2 > y1 and mask[y1:y2, x1:x2].mean() >= COVERED:
            return False
    return True


def under(box: np.ndarray, mask: np.ndarray | None) -> float:
    """Share of ``box``'s pixels that the regions were rendered over."""
    if mask is None:
        return 0.0
    x1, y1, x2, y2 = clip_to_image(np.asarray(box, np.float32).reshape(1, 4), mask.shape[1], mask.shape[0])[0]
    return float(mask[y1:y2, x1:x2].mean()) if x2 > x1 and y2 > y1 else 0.0


def _filled(
    record: Seen,
    frame: int,
    box: np.ndarray,
    luma: np.ndarray,
    mask: np.ndarray | None,
    is_fill: Callable[[detail.Detail], bool],
) -> bool:
    """Is the face the scan saw at ``box``'s place covered by the regions, and is what covers
    it a fill (no face detail under the regions, or a box too small to measure)? Not when blur
    left half of it visible."""
    if uncovered(record, frame, box, mask):
        return False
    return any(
        not detail.judgeable(seen_box) or is_fill(detail.measure(luma, seen_box, mask))
        for seen_box in record.faces_at(frame, box, record.threshold)
    )


def touches(box: np.ndarray, regions: Detections, mask_scale: float, width: int, height: int) -> bool:
    """Does a redacted region, as rendered, lie within ``BESIDE_REACH`` of the box?"""
    if not len(regions):
        return False
    reach = scale_about_centre(np.asarray(box, np.float32).reshape(1, 4), BESIDE_REACH)[0]
    manual = (regions.kind == "manual")[:, None]
    rendered = np.where(manual, regions.xyxy, scale_about_centre(regions.xyxy, mask_scale))
    return bool(
        (
            (rendered[:, 0] < reach[2])
            & (rendered[:, 2] > reach[0])
            & (rendered[:, 1] < reach[3])
            & (rendered[:, 3] > reach[1])
        ).any()
    )


# A face the scan saw at its threshold is "partly covered" by the regions when this share of
# its central part, or more, lies under them but less than COVERED: a track a person cut to a
# part of the face. Wholly uncovered faces are not judged here (blur leaves some on purpose, and
# a deleted track is judged where the re-scan finds the face).
PARTLY = 0.1
# A re-scan finding and a recorded face are the same face from this overlap on.
SAME_PLACE = 0.3


def partly_covered(
    record: Seen, frame: int, mask: np.ndarray, frame_height: int
) -> list[tuple[np.ndarray, float]]:
    """The faces the scan saw in ``frame`` at its threshold whose central part the regions, as
    rendered (``mask``), cover only in part: (box, score) each. The re-scan may not find such
    a face at all (half a face beside a black box is no face to the detector), so the record
    is the evidence. Large weak boxes, which blur does not redact on their own, are left out.
    """
    xyxy, score = record.per_frame.get((int(frame), "face"), (None, None))
    if xyxy is None or not len(xyxy):
        return []
    strong = (score >= record.threshold) & ~tracking.unsure_large_faces(xyxy, score, frame_height)
    found = []
    for box, s in zip(xyxy[strong], score[strong]):
        x1, y1, x2, y2 = clip_to_image(
            scale_about_centre(box.reshape(1, 4), COVER_CENTRE), mask.shape[1], mask.shape[0]
        )[0]
        if x2 <= x1 or y2 <= y1:
            continue
        share = float(mask[y1:y2, x1:x2].mean())
        if PARTLY <= share < COVERED:
            found.append((box, float(s)))
    return found
