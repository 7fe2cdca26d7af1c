"""Face detail: how much an identifiable face's features (eyes, brows, mouth, nostrils) show in
a box, measured the same way at every size.

The box's central part (``CENTRE`` of its width and height, where a face's features sit) is
resampled to a ``GRID`` x ``GRID`` grey picture, so a 12 px face and a 300 px face are judged
at the scale of their features, not of their skin texture or of a fill's fine noise. Detail is
the median gradient there (grey levels per grid cell), taken in each half of the box (left,
right, top, bottom) and the largest kept: a face with half of it covered still has its other
half's detail. ``flat`` is the share of neighbouring pixel pairs, at the file's own resolution,
that differ by at most ``FLAT_STEP`` grey levels: a mosaic (pixelation) or a flat fill is flat
almost everywhere, a photographed face nearly nowhere.

The numbers that set the thresholds are in ``blur.check``'s module docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

GRID = 12
CENTRE = 0.65
FLAT_STEP = 2


@dataclass(frozen=True)
class Detail:
    """The detail of one box.

    Attributes:
        gradient: the largest, over the box's four halves, of the median gradient (grey
            levels per cell of the ``GRID``) of its central part; -1 when nothing was measured.
        fine: the same for the fine detail (the residue after a one-cell blur).
        flat: smallest, over the halves measured, share of flat neighbouring pixel pairs
            (0 when nothing was measured).
    """

    gradient: float
    fine: float
    flat: float


def grey(rgb: np.ndarray) -> np.ndarray:
    """Luma of an RGB uint8 picture as float32 (detail lives in brightness)."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)


def _central(box, width: int, height: int) -> tuple[int, int, int, int] | None:
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    hw, hh = (x2 - x1) * CENTRE / 2, (y2 - y1) * CENTRE / 2
    a, b = max(int(np.floor(cx - hw)), 0), max(int(np.floor(cy - hh)), 0)
    c, d = min(int(np.ceil(cx + hw)), width), min(int(np.ceil(cy + hh)), height)
    if c - a < 2 or d - b < 2:
        return None
    return a, b, c, d


def judgeable(box) -> bool:
    """Is the box large enough for its central part to hold ``GRID`` pixels across? Below that
    (boxes under ~18 px) the measure reads the resampling of a few pixels, not features: a
    10 px head under blur's fill measures as much detail after video compression as a face."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return min(x2 - x1, y2 - y1) * CENTRE >= GRID


def _halves(n: int) -> list[tuple[slice, slice]]:
    m = n // 2
    return [
        (slice(0, m), slice(None)),
        (slice(m, None), slice(None)),
        (slice(None), slice(0, m)),
        (slice(None), slice(m, None)),
    ]


def measure(luma: np.ndarray, box, mask: np.ndarray | None = None) -> Detail:
    """The detail of ``box`` (xyxy) in a grey picture.

    Args:
        luma: the picture, from ``grey``.
        box: the detected box.
        mask: optional boolean picture of the same size: only the pixels where it is set are
            judged (the regions a regions file says were redacted), and a half of the box with
            less than a quarter of its cells there is left out.

    Returns:
        ``Detail``; ``gradient`` is -1 when the box (or its masked part) is too small to judge.
    """
    height, width = luma.shape
    span = _central(box, width, height)
    if span is None:
        return Detail(-1.0, -1.0, 0.0)
    a, b, c, d = span
    part = luma[b:d, a:c]
    shrink = min(part.shape) >= GRID
    small = cv2.resize(part, (GRID, GRID), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3) / 8
    gradient = np.hypot(gx, gy)
    # What a smooth picture lacks: the residue after a one-cell blur. A ramp of colours (a
    # fill built from a few average colours) leaves none, eyes and a mouth leave plenty.
    fine = np.abs(small - cv2.GaussianBlur(small, (0, 0), 1.0))
    dx = np.abs(np.diff(part, axis=1)) <= FLAT_STEP
    dy = np.abs(np.diff(part, axis=0)) <= FLAT_STEP
    if mask is None:
        inside = np.ones((GRID, GRID), dtype=bool)
        pixels = np.ones(part.shape, dtype=bool)
    else:
        pixels = mask[b:d, a:c]
        # A cell counts when all of it is masked, and its neighbours the gradient reads,
        share = cv2.resize(pixels.astype(np.float32), (GRID, GRID), interpolation=cv2.INTER_AREA)
        # and the cells the blur above reads (two around it) are inside too.
        inside = cv2.erode(
            (share >= 0.999).astype(np.uint8), np.ones((5, 5), np.uint8), borderType=cv2.BORDER_REPLICATE
        ).astype(bool)
    keep_x = pixels[:, 1:] & pixels[:, :-1]
    keep_y = pixels[1:, :] & pixels[:-1, :]
    ph, pw = part.shape
    best, finest, flattest, measured = -1.0, -1.0, 1.0, False
    for rows, cols in _halves(GRID):
        cells = inside[rows, cols]
        if mask is not None and cells.mean() < 0.25:
            continue
        if not cells.any():
            continue
        best = max(best, float(np.median(gradient[rows, cols][cells])))
        finest = max(finest, float(np.median(fine[rows, cols][cells])))
        measured = True
        # the same half at the file's resolution
        r0, r1 = _scale(rows, GRID, ph)
        c0, c1 = _scale(cols, GRID, pw)
        fx, kx = dx[r0:r1, c0 : max(c1 - 1, c0)], keep_x[r0:r1, c0 : max(c1 - 1, c0)]
        fy, ky = dy[r0 : max(r1 - 1, r0), c0:c1], keep_y[r0 : max(r1 - 1, r0), c0:c1]
        pairs = kx.sum() + ky.sum()
        if pairs:
            flattest = min(flattest, float((fx & kx).sum() + (fy & ky).sum()) / float(pairs))
    # Nothing measured is never "flat": a box that cannot be judged keeps its finding.
    return Detail(best, finest, flattest) if measured else Detail(-1.0, -1.0, 0.0)


def _scale(s: slice, n: int, size: int) -> tuple[int, int]:
    start = 0 if s.start is None else s.start
    stop = n if s.stop is None else s.stop
    return round(start * size / n), round(stop * size / n)
