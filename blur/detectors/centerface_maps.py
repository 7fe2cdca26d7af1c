"""What CenterFace is given and what its maps mean: the network input (resized to the
network's 32-pixel grid, in tiles when large), heatmap decoding into boxes, boxes found in a
mirrored or turned view mapped back, and the box calibration to the face."""

from __future__ import annotations

import math

import cv2
import numpy as np

STRIDE = 4  # input pixels per output cell
# Box calibration measured on the labelled dev set (median of matched boxes): the model's box
# stops 12 % of its height above the chin on masked faces, 5 % on unmasked ones.
_CHIN = 0.15
_MARGIN_PX = 1.0
_GROW = 1.05

# The network's memory grows with the input (2 GB for a 4K frame in one pass): larger inputs are
# run as overlapping tiles of at most this many pixels (a 1080p frame's small-face pass is one tile).
# The overlap exceeds the largest face a native/upscaled pass is there to find, so every such
# face lies whole inside some tile.
_TILE_PIXELS = 2_500_000
_TILE_OVERLAP = 192


def _decode(
    heatmap: np.ndarray, size: np.ndarray, offset: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (in network-input pixels) and scores of every heatmap cell above ``threshold``."""
    rows, cols = np.nonzero(heatmap > threshold)
    score = heatmap[rows, cols].astype(np.float32)
    box_h = np.exp(size[0, rows, cols]) * STRIDE
    box_w = np.exp(size[1, rows, cols]) * STRIDE
    cy = (rows + offset[0, rows, cols] + 0.5) * STRIDE
    cx = (cols + offset[1, rows, cols] + 0.5) * STRIDE
    xyxy = np.stack([cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2], axis=1)
    return xyxy.astype(np.float32), score


def _blob(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) or (N, H, W, 3) uint8 pixels as the network's (N, 3, H, W) float32 input: the
    pixel values as they are (the model normalises), channels in the order given. Twice as fast
    as cv2.dnn.blobFromImage, which resizes in float."""
    pixels = pixels[None] if pixels.ndim == 3 else pixels
    return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2), dtype=np.float32)


def network_input(image: np.ndarray, scale: float) -> tuple[np.ndarray, list[tuple]]:
    """``image`` resized by ``scale`` to a multiple of 32 on each side (the network downsamples
    by 32), and the spans (x0, y0, width, height) it is analysed in: whole, or tiles when large."""
    height, width = image.shape[:2]
    w_in = max(32, int(math.ceil(width * scale / 32)) * 32)
    h_in = max(32, int(math.ceil(height * scale / 32)) * 32)
    resized = (
        image
        if (w_in, h_in) == (width, height)
        else cv2.resize(image, (w_in, h_in), interpolation=cv2.INTER_LINEAR)
    )
    spans = [(0, 0, w_in, h_in)] if w_in * h_in <= _TILE_PIXELS else tiles(w_in, h_in)
    return resized, spans


def tiles(
    width: int, height: int, limit: int | None = None, overlap: int | None = None
) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles (x, y, w, h) covering a ``width`` x ``height`` network input, each at
    most ``limit`` pixels with sides multiple of 32, neighbours sharing at least ``overlap``."""
    limit = _TILE_PIXELS if limit is None else limit
    overlap = _TILE_OVERLAP if overlap is None else overlap
    nx = ny = 1
    while True:
        tw = min(width, int(math.ceil((width + (nx - 1) * overlap) / nx / 32)) * 32)
        th = min(height, int(math.ceil((height + (ny - 1) * overlap) / ny / 32)) * 32)
        if tw * th <= limit or (tw <= 2 * overlap and th <= 2 * overlap):
            break
        if tw >= th:
            nx += 1
        else:
            ny += 1
    xs = [round(i * (width - tw) / (nx - 1)) if nx > 1 else 0 for i in range(nx)]
    ys = [round(j * (height - th) / (ny - 1)) if ny > 1 else 0 for j in range(ny)]
    return [(x, y, tw, th) for y in ys for x in xs]


def _unview(xyxy: np.ndarray, how: str | None, width: int, height: int) -> np.ndarray:
    """Boxes found in a mirrored or turned copy, in the original image's pixels."""
    if how is None or not len(xyxy):
        return xyxy
    x1, y1, x2, y2 = xyxy.T
    if how == "flip":
        out = [width - x2, y1, width - x1, y2]
    elif how == "rot90":  # np.rot90(k=1): original (x, y) -> (y, width - x)
        out = [width - y2, x1, width - y1, x2]
    else:  # rot270: original (x, y) -> (height - y, x)
        out = [y1, height - x2, y2, height - x1]
    return np.stack(out, axis=1).astype(np.float32)


def _calibrate(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Extend each box down to the chin, grow it by a pixel, clip it to the image."""
    out = xyxy.astype(np.float32).copy()
    out[:, 3] += _CHIN * (out[:, 3] - out[:, 1])
    grow = (out[:, 2:] - out[:, :2]) * (_GROW - 1) / 2 + _MARGIN_PX
    out[:, :2] -= grow
    out[:, 2:] += grow
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return out
