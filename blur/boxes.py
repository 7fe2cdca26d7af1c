"""Box arithmetic shared by detectors, the tracker and redaction (numpy only)."""

from __future__ import annotations

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0).astype(np.float32)


def nms(xyxy: np.ndarray, score: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-score, kind="stable")
    keep: list[int] = []
    suppressed = np.zeros(len(order), dtype=bool)
    ious = iou_matrix(xyxy, xyxy)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        suppressed |= ious[i] >= iou_threshold
    return np.asarray(keep, dtype=np.int64)


def scale_about_centre(xyxy: np.ndarray, factor: float) -> np.ndarray:
    """Grow (factor > 1) or shrink boxes about their centres."""
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    half = (xyxy[:, 2:] - xyxy[:, :2]) * (factor / 2)
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)


def clip_to_image(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Integer pixel boxes covering every pixel the float box touches, clipped to the FULL image.

    x2/y2 are exclusive, so they are clipped to width/height (not width - 1): a box touching the
    right edge must include the last column.
    """
    out = np.empty((len(xyxy), 4), dtype=np.int64)
    out[:, 0] = np.clip(np.floor(xyxy[:, 0]), 0, width)
    out[:, 1] = np.clip(np.floor(xyxy[:, 1]), 0, height)
    out[:, 2] = np.clip(np.ceil(xyxy[:, 2]), 0, width)
    out[:, 3] = np.clip(np.ceil(xyxy[:, 3]), 0, height)
    return out


def clip_xyxy(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Float boxes clipped to the FULL image, [0, width] x [0, height] (x2/y2 exclusive).

    A box wholly outside the image comes back empty (x2 <= x1 or y2 <= y1); ``non_empty`` tells.
    """
    out = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4).copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return out


def non_empty(xyxy: np.ndarray) -> np.ndarray:
    """(N,) bool: which boxes cover some area."""
    xyxy = np.asarray(xyxy).reshape(-1, 4)
    return (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
