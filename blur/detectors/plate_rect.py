"""The plate rectangle around a text line: a plate is a rectangle of one colour around its
characters, closed on all four sides.

``plate_extent`` grows a line to that rectangle (the corners of a plate whose number is short,
off-centre, under a state name or in a dealer's frame); ``plate_like`` says whether a rectangle
has a plate's size relative to its line; ``strokes`` says whether a line shows characters;
``merge_nested`` joins the boxes of one plate's lines.
"""

from __future__ import annotations

import cv2
import numpy as np

from .text import upright_crop, upright_transform


def plate_like(plate: np.ndarray, line: np.ndarray, long: float, short: float) -> bool:
    """Is ``plate`` (xyxy) at most ``long`` times the width and ``short`` times the height of
    the line's box ``line`` (xyxy)? A plate is not much larger than its characters."""
    pw, ph = plate[2:] - plate[:2]
    lw, lh = line[2:] - line[:2]
    return bool(pw <= long * lw and ph <= short * lh)


def strokes(band: np.ndarray) -> float:
    """Mean number of changes between dark and light along a row of a text line's pixels.

    ``band`` is the line's upright crop (RGB). Its pixels split (Otsu) into a dark and a light
    part; across the middle half of its height each row is walked along the line and its changes
    counted. A row through a plate's characters crosses two edges per stroke, so at least four
    for two characters; a shape that is no text (a cheek against dark hair, the rim of a table)
    shows one or two.
    """
    grey = cv2.cvtColor(np.ascontiguousarray(band), cv2.COLOR_RGB2GRAY)
    h = grey.shape[0]
    if grey.shape[1] < 2 or h < 4:
        return 0.0
    _, split = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    middle = split[h // 4 : h - h // 4].astype(np.int8)
    return float(np.abs(np.diff(middle, axis=1)).sum(axis=1).mean())


def plate_extent(
    image: np.ndarray, rect, reach_long: float = 0.5, reach_sides: float = 1.5, reach_up: float = 2.5
) -> np.ndarray | None:
    """The plate rectangle around a text line, found from the plate's own background colour.

    The line's pixels split (Otsu) into characters and background; the background is the larger
    part. From the line outward, columns (along the line) and rows (across it) that are mostly of
    that colour belong to the plate; the walk stops where the plate ends (its border, the car, a
    dealer's frame). A short dip (a sticker, a screw, the thin strokes of a state name above the
    number) does not stop it. When the colour runs on past a side (a white plate on a white car)
    the walk is tried again stopping at the plate's outline: a row or column with almost none of
    the plate's colour across the whole line (short numbers on long white plates on white or
    light grey cars, synthetic seed 777: 3 of 3 such misses covered, 2 of 2 on seed 12). A plate
    is a closed rectangle: when the colour still runs on to the end of the search on any side
    (a word on a car body or a wall) nothing is grown. The search reaches at most
    ``reach_long`` line lengths plus ``reach_sides`` line heights along the line, and
    ``reach_up`` line heights up and down.

    Returns:
        xyxy of the plate (float32) in image coordinates, or None when the line shows no
        contrast to tell characters from background.
    """
    cx, cy, lng, sht, ang = (float(v) for v in rect)
    grow = reach_long * lng + reach_sides * sht
    window = (cx, cy, lng + 2 * grow, sht * (1 + 2 * reach_up), ang)
    crop = upright_crop(image, window).astype(np.float32)
    # Stretch the window's own range: a plate at dusk has a few grey levels of contrast.
    lo, hi = np.percentile(crop, (2, 98))
    if hi - lo < 4:
        return None
    crop = np.clip((crop - lo) * np.float32(255 / (hi - lo)), 0, 255).astype(np.float32)
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.uint8)
    h, w = grey.shape
    y0, y1 = int((h - sht) / 2), int(np.ceil((h + sht) / 2))
    x0, x1 = int((w - lng) / 2), int(np.ceil((w + lng) / 2))
    band = np.ascontiguousarray(grey[y0:y1, x0:x1])
    if band.size < 16:
        return None
    t, _ = cv2.threshold(band, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    is_light = band > t
    background = is_light if is_light.mean() >= 0.5 else ~is_light
    if background.all() or not background.any():
        return None
    colours = crop[y0:y1, x0:x1].reshape(-1, 3)
    bg = np.median(colours[background.ravel()], axis=0)
    fg = np.median(colours[~background.ravel()], axis=0)
    contrast = float(np.abs(bg - fg).max())
    if contrast < 12:
        return None
    # Background: within a quarter of the character contrast of the plate colour, per channel.
    like = np.abs(crop - bg).max(axis=2) <= max(8.0, 0.25 * contrast)
    gap = max(2, int(0.3 * sht))
    col_share, row_share = like[y0:y1].mean(axis=0), like[:, x0:x1].mean(axis=1)
    cols, rows = col_share >= 0.5, row_share >= 0.5
    sides = _sides(cols, rows, x0, x1, y0, y1, gap)
    if None in sides:
        # A light plate on a light car: the plate's colour runs on into the body, across the
        # thin outline the gap rule steps over. A row or column with almost none of the plate's
        # colour across the whole line is that outline: stop there. Tried only when the plain
        # walk finds no rectangle, so it never shrinks one it found.
        sides = _sides(cols, rows, x0, x1, y0, y1, gap, col_share < _EDGE, row_share < _EDGE)
    left, right, top, bottom = sides
    if None in sides:
        return None  # not closed on every side: no plate rectangle to grow to
    corners = np.float32([[left, top], [right + 1, top], [right + 1, bottom + 1], [left, bottom + 1]])
    inverse = cv2.invertAffineTransform(upright_transform(window))
    pts = corners @ inverse[:, :2].T + inverse[:, 2]
    return np.r_[pts.min(axis=0), pts.max(axis=0)].astype(np.float32)


_EDGE = 0.15  # share of the plate's colour below which a row or column is the plate's outline


def _sides(cols, rows, x0, x1, y0, y1, gap, edge_cols=None, edge_rows=None):
    """(left, right, top, bottom) of the plate from the line's box outward (see ``_walk``)."""
    return (
        _walk(cols, x0, -1, gap, edge_cols),
        _walk(cols, x1 - 1, 1, gap, edge_cols),
        _walk(rows, y0, -1, gap, edge_rows),
        _walk(rows, y1 - 1, 1, gap, edge_rows),
    )


def _walk(ok: np.ndarray, start: int, step: int, gap: int, edge: np.ndarray | None = None) -> int | None:
    """Last ok index from ``start`` in direction ``step`` before ``gap`` consecutive non-ok
    cells or an ``edge`` cell: the plate's edge; None when the colour runs on to the end of the
    window."""
    last, misses, i = start, 0, start + step
    while 0 <= i < len(ok):
        if edge is not None and edge[i]:
            return last
        if ok[i]:
            last, misses = i, 0
        else:
            misses += 1
            if misses >= gap:
                return last
        i += step
    return None


def merge_nested(xyxy: np.ndarray, score: np.ndarray, inside: float = 0.8):
    """Union boxes that mostly overlap (two lines of one plate become one region).

    Only a box lying mostly (``inside`` of its area) within another is merged: the union of two
    boxes that merely touch would redact far more than either.
    """
    xyxy, score = [np.asarray(b, np.float32) for b in xyxy], list(score)
    merged = True
    while merged and len(xyxy) > 1:
        merged = False
        for i in range(len(xyxy)):
            for j in range(len(xyxy)):
                if i == j:
                    continue
                a, b = xyxy[i], xyxy[j]
                wh = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None)
                area_b = max(float(np.prod(b[2:] - b[:2])), 1e-6)
                if wh[0] * wh[1] >= inside * area_b:
                    xyxy[i] = np.r_[np.minimum(a[:2], b[:2]), np.maximum(a[2:], b[2:])]
                    score[i] = max(score[i], score[j])
                    del xyxy[j], score[j]
                    merged = True
                    break
            if merged:
                break
    return (np.asarray(xyxy, np.float32).reshape(-1, 4), np.asarray(score, np.float32))
