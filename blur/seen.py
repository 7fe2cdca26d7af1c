"""What the scan's face detector saw, weak candidates included: kept in the regions file so that
``blur check`` can tell a face blur chose not to redact from one that appeared after the scan.

The face detector returns candidates from ``face_candidate_threshold`` (0.1) up; the scan asks
it for candidates from ``FLOOR`` up and keeps every one, per frame, in this record (with every
plate and text line found), while tracking gets only those it always got, so what is redacted
does not change (greedy NMS never lets a lower-scoring box remove a higher one). In the
regions file::

    "seen": {"floor": 0.05, "threshold": 0.12, "every_n_frames": 3,
             "boxes": [[frame, x1, y1, x2, y2, score, kind], ...]}

Why ``blur check`` needs it: the check re-scans the output at blur's own threshold, and the
output is not the input. A redaction changes what the detector sees around it, and re-encoding
moves every score a little, so a blob that scored 0.09 at the scan may score 0.13 beside a fill
(measured: see ``FLOOR``). The record says what the scan saw at that place:
a face that was weak there was not redacted by choice; a face that was strong there, or a
plate found there, and is not redacted now is a track someone deleted from the regions file.
"""

from __future__ import annotations

import math

import numpy as np

from .boxes import iou_matrix
from .errors import RegionsError
from .types import Detections

# Lowest score kept. Measured on blur's renders of 20 faces-dev photos (3 styles x 2 shapes:
# 183 detections at the check's threshold lying mostly off the redactions, none of them a
# labelled face): 115 had scored 0.05 or more at the scan, 171 0.02 or more; but a floor of
# 0.02 keeps ~130 candidates per frame of the sample clip against ~25 at 0.05. Of the 68 below
# 0.05, 65 lie beside a redaction, which ``blur.check`` judges on its own.
FLOOR = 0.05
# A detection and a recorded candidate are the same thing seen twice from this overlap on.
SAME_PLACE_IOU = 0.3


def split(found: Detections, candidate_threshold: float) -> tuple[Detections, Detections]:
    """(what tracking gets, what the record keeps) from one frame's detections.

    Tracking gets everything but the face candidates below ``candidate_threshold``: exactly
    what a face detector asked for candidates from that threshold returns. The record keeps
    everything.
    """
    weak = (found.kind == "face") & (found.score < candidate_threshold)
    return found[~weak], found


def to_dict(
    per_frame: list[Detections], threshold: float, every_n_frames: int = 1, floor: float = FLOOR
) -> dict:
    """The ``seen`` section of a regions file.

    Args:
        per_frame: every frame's record (from ``split``).
        threshold: the scan's face threshold.
        every_n_frames: the largest stride at which a kind other than faces was looked for
            (plates on every n-th frame are recorded on those frames only).
        floor: the lowest face score recorded.
    """
    boxes = []
    for f, found in enumerate(per_frame):
        for box, score, kind in zip(found.xyxy, found.score, found.kind):
            # Rounded down: a score just under the threshold must stay under it.
            boxes.append(
                [f, *(round(float(v), 1) for v in box), math.floor(float(score) * 1e4) / 1e4, str(kind)]
            )
    return {"floor": floor, "threshold": threshold, "every_n_frames": every_n_frames, "boxes": boxes}


class Seen:
    """The record read back: per frame and kind, what the scan saw.

    Attributes:
        threshold: the scan's face threshold.
        every_n_frames: kinds other than faces were looked for on every n-th frame only.
        per_frame: (frame, kind) -> (xyxy (N, 4), score (N,)).
    """

    def __init__(
        self,
        threshold: float,
        every_n_frames: int,
        per_frame: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]],
    ):
        self.threshold = threshold
        self.every_n_frames = every_n_frames
        self.per_frame = per_frame

    @classmethod
    def from_dict(cls, data: dict, frame_count: int) -> Seen | None:
        """The record of a regions file, or None when it has none (a file made by hand or by an
        older blur).

        Raises:
            RegionsError: the section is malformed.
        """
        section = data.get("seen") if isinstance(data, dict) else None
        if section is None:
            return None
        try:
            threshold = float(section["threshold"])
            every = int(section.get("every_n_frames", 1))
            rows = section["boxes"]
            numbers = np.asarray([r[:6] for r in rows], dtype=np.float64).reshape(-1, 6)
            kinds = [str(r[6]) for r in rows]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise RegionsError(
                f'"seen" is malformed ({exc}): make it again with blur scan, or delete the section'
            ) from exc
        frames = numbers[:, 0].astype(np.int64)
        if every < 1 or (
            len(rows) and (frames.min() < 0 or frames.max() >= frame_count or not np.isfinite(numbers).all())
        ):
            raise RegionsError('"seen" lists frames or numbers outside the file')
        groups: dict[tuple[int, str], list[int]] = {}
        for row, (f, kind) in enumerate(zip(frames, kinds)):
            groups.setdefault((int(f), kind), []).append(row)
        per_frame = {
            key: (numbers[rows_of, 1:5].astype(np.float32), numbers[rows_of, 5].astype(np.float32))
            for key, rows_of in groups.items()
        }
        return cls(threshold, every, per_frame)

    def best_here(self, frame: int, box, kind: str = "face") -> float | None:
        """The best score the scan saw at ``box``'s place (None: nothing there; for faces,
        nothing from the floor up). Kinds other than faces are looked up in the frames around
        ``frame`` that the scan looked at them in."""
        reach = 0 if kind == "face" else self.every_n_frames - 1
        best = None
        for f in range(int(frame) - reach, int(frame) + reach + 1):
            xyxy, score = self.per_frame.get((f, kind), (None, None))
            if xyxy is None or not len(xyxy):
                continue
            overlap = iou_matrix(np.asarray(box, np.float32).reshape(1, 4), xyxy)[0]
            same = overlap >= SAME_PLACE_IOU
            if same.any():
                best = max(best or 0.0, float(score[same].max()))
        return best

    def faces_at(self, frame: int, box, min_score: float) -> list[np.ndarray]:
        """The face boxes the scan saw at ``box``'s place in ``frame`` scoring ``min_score`` or
        more: overlapping by ``SAME_PLACE_IOU``, or either box's centre inside the other (a
        detection of half a face is shifted off the whole face's box)."""
        xyxy, score = self.per_frame.get((int(frame), "face"), (None, None))
        if xyxy is None or not len(xyxy):
            return []
        box = np.asarray(box, np.float32).reshape(4)
        overlap = iou_matrix(box.reshape(1, 4), xyxy)[0]
        centre = (box[:2] + box[2:]) / 2
        centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2
        inside = ((xyxy[:, :2] <= centre) & (centre <= xyxy[:, 2:])).all(axis=1) | (
            (box[:2] <= centres) & (centres <= box[2:])
        ).all(axis=1)
        return list(xyxy[((overlap >= SAME_PLACE_IOU) | inside) & (score >= min_score)])

    def plates_at(self, frame: int, box) -> list[np.ndarray]:
        """The plate boxes the scan saw at ``box``'s place, in the frames around ``frame`` that
        it looked for plates in."""
        reach = self.every_n_frames - 1
        found = []
        for f in range(int(frame) - reach, int(frame) + reach + 1):
            xyxy, _ = self.per_frame.get((f, "plate"), (None, None))
            if xyxy is not None and len(xyxy):
                overlap = iou_matrix(np.asarray(box, np.float32).reshape(1, 4), xyxy)[0]
                found += list(xyxy[overlap >= SAME_PLACE_IOU])
        return found
