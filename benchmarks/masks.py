"""What blur redacts, as a pixel mask, and how much of a labelled box that mask covers: the one
copy that the benchmarks and the tests measure coverage with.

Built only on ``blur.redact.region_masks``, the renderer's own masks, imported when first used
so that a benchmark can put another checkout of blur first on the path and measure it. A version
whose ``region_masks`` takes no kinds drew manual regions as exact boxes and every other box in
the given shape; the mask of such a version is drawn that way.
"""

from __future__ import annotations

import math

import numpy as np


def redaction_mask(
    xyxy: np.ndarray, width: int, height: int, mask_scale: float, shape: str, kinds: np.ndarray | None = None
) -> np.ndarray:
    """Boolean (height, width) image of every pixel blur redacts for these boxes.

    Args:
        xyxy: (N, 4) boxes in the image's pixels.
        mask_scale / shape: as ``Settings.mask_scale`` and ``Settings.shape``.
        kinds: the kind of each box ("face", "plate", "manual", ...); None: all faces.
    """
    from blur.redact import region_masks

    if kinds is None:
        parts = list(region_masks(xyxy, width, height, mask_scale, shape))
    else:
        try:
            parts = list(region_masks(xyxy, width, height, mask_scale, shape, kinds))
        except TypeError:  # a version without kinds (see the module docstring)
            xyxy, manual = np.asarray(xyxy).reshape(-1, 4), np.asarray(kinds) == "manual"
            parts = list(region_masks(xyxy[~manual], width, height, mask_scale, shape))
            parts += list(region_masks(xyxy[manual], width, height, 1.0, "box"))
    mask = np.zeros((height, width), dtype=bool)
    for x1, y1, x2, y2, m in parts:
        mask[y1:y2, x1:x2] |= m
    return mask


def covered_share(mask: np.ndarray, box) -> float:
    """Share of the pixels of ``box`` (xyxy, widened to whole pixels and clipped to the image)
    inside ``mask``; 0.0 for a box that holds no pixel of the image."""
    height, width = mask.shape
    x1, y1 = max(math.floor(box[0]), 0), max(math.floor(box[1]), 0)
    x2, y2 = min(math.ceil(box[2]), width), min(math.ceil(box[3]), height)
    if x2 <= x1 or y2 <= y1:
        return 0.0
    return float(mask[y1:y2, x1:x2].mean())
