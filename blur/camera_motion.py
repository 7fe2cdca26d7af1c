"""How the whole picture moves from one video frame to the next, read off the tracked faces.

A panning, zooming or shaking camera moves every face of a frame together: between two frames a
point at ``p`` goes to ``s * p + t`` (``s`` the zoom, ``t`` the shift, in pixels). The tracker
links most faces in consecutive frames, so each pair of linked hits is one observation of that
motion; a least-squares fit over them, refitted once without the pairs it explains worst (a
walker, a wrong link), gives the picture's motion at every place of the frame, also where no
face was seen. With fewer than three pairs only a shift is taken (their median); with none the
picture moves on as it moved between the frames before (still, at the start).

The tracker uses it where a face's own boxes are untrustworthy: a face cut by the frame's edge
(see ``blur.tracking``). Numpy only.
"""

from __future__ import annotations

import numpy as np

# A fitted zoom outside this range between two frames is a fit on wrong links, not a camera.
_ZOOM_RANGE = (0.8, 1.25)
# Pairs whose residual exceeds this many times the median residual (and this many pixels) are
# dropped before the refit.
_OUTLIER_FACTOR, _OUTLIER_PX = 2.5, 2.0


class CameraMotion:
    """Per frame ``f >= 1``, the map (zoom, shift x, shift y) from frame ``f - 1`` to frame ``f``."""

    def __init__(self, maps: np.ndarray):
        self.maps = np.asarray(maps, dtype=np.float64).reshape(-1, 3)  # row f: f-1 -> f

    @classmethod
    def fit(cls, n_frames: int, pairs: list[tuple[np.ndarray, np.ndarray]]) -> CameraMotion:
        """From ``pairs[f]``: the (K, 4) boxes of K faces in frame ``f - 1`` and the same faces'
        boxes in frame ``f`` (``pairs[0]`` is unused)."""
        maps = np.tile([1.0, 0.0, 0.0], (max(n_frames, 1), 1))
        for f in range(1, n_frames):
            before, after = pairs[f]
            if len(before):
                maps[f] = _fit_one(_centres(before), _centres(after))
            else:  # nothing linked (a lone face reaching the edge): the motion goes on
                maps[f] = maps[f - 1]
        return cls(maps)

    def carry(self, xyxy: np.ndarray, start: int, end: int) -> np.ndarray:
        """``xyxy`` (a box seen in frame ``start``) moved with the picture to frame ``end``."""
        box = np.asarray(xyxy, dtype=np.float64).copy()
        step = 1 if end >= start else -1
        for f in range(start, end, step):
            g = f + 1 if step > 0 else f  # the map between frames f and f + step
            if not 0 < g < len(self.maps):
                continue
            s, tx, ty = self.maps[g]
            shift = np.array([tx, ty, tx, ty])
            box = s * box + shift if step > 0 else (box - shift) / s
        return box


def _centres(xyxy: np.ndarray) -> np.ndarray:
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return (xyxy[:, :2] + xyxy[:, 2:]) / 2


def _fit_one(p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """(zoom, shift x, shift y) taking the points ``p0`` to ``p1``."""
    if len(p0) < 3:
        t = np.median(p1 - p0, axis=0)
        return np.array([1.0, t[0], t[1]])
    keep = np.ones(len(p0), dtype=bool)
    for _ in range(2):
        s, t = _least_squares(p0[keep], p1[keep])
        residual = np.linalg.norm(s * p0 + t - p1, axis=1)
        limit = max(_OUTLIER_FACTOR * np.median(residual[keep]), _OUTLIER_PX)
        new_keep = residual <= limit
        if new_keep.sum() < 3:
            break
        keep = new_keep
    if not _ZOOM_RANGE[0] <= s <= _ZOOM_RANGE[1]:
        t = np.median(p1 - p0, axis=0)
        return np.array([1.0, t[0], t[1]])
    return np.array([s, t[0], t[1]])


def _least_squares(p0: np.ndarray, p1: np.ndarray) -> tuple[float, np.ndarray]:
    """Zoom and shift minimising the squared distances from ``s * p0 + t`` to ``p1``."""
    m0, m1 = p0.mean(axis=0), p1.mean(axis=0)
    d0, d1 = p0 - m0, p1 - m1
    spread = (d0**2).sum()
    s = float((d0 * d1).sum() / spread) if spread > 1e-6 else 1.0
    return s, m1 - s * m0
