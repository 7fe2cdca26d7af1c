"""Redaction styles. Each one replaces the pixels inside regions, in place; pixels outside every
region are never touched.

Gaussian blur and pixelation of a face's own pixels can be undone or recognised, more so across
many video frames, so the default style ``blur`` first throws the face away: it keeps only a 3x3
grid of average colours, adds noise drawn afresh for every frame, and smooths the result so it
looks like a blur. Kernels scale with each box; nothing uses a fixed pixel size.
"""

from __future__ import annotations

import cv2
import numpy as np

from .boxes import clip_to_image, scale_about_centre


def region_masks(xyxy: np.ndarray, width: int, height: int, scale: float, shape: str):
    """Yield (x1, y1, x2, y2, mask) for each box grown by ``scale`` and clipped to the image.

    ``mask`` is a boolean array of the clipped box's size; for ellipses it is drawn from the
    unclipped box, so a face cut by the image edge keeps its full ellipse up to the edge.
    """
    grown = scale_about_centre(np.asarray(xyxy, dtype=np.float32).reshape(-1, 4), scale)
    for (bx1, by1, bx2, by2), (x1, y1, x2, y2) in zip(grown, clip_to_image(grown, width, height)):
        if x2 <= x1 or y2 <= y1:
            continue
        if shape == "box":
            mask = np.ones((y2 - y1, x2 - x1), dtype=bool)
        else:
            yy, xx = np.mgrid[y1:y2, x1:x2].astype(np.float32) + 0.5
            cx, cy = (bx1 + bx2) / 2, (by1 + by2) / 2
            rx, ry = max((bx2 - bx1) / 2, 0.5), max((by2 - by1) / 2, 0.5)
            mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
            # A pixel the ellipse only grazes (tiny boxes) still counts: never leave a box empty.
            if not mask.any():
                mask[:] = True
        yield int(x1), int(y1), int(x2), int(y2), mask


class NoiseBlur:
    """Default: coarse colour average + fresh noise, smoothed. Irreversible by construction."""

    name = "blur"

    def __init__(self, rng: np.random.Generator | None = None):
        self.rng = rng or np.random.default_rng()

    def fill(self, roi: np.ndarray) -> np.ndarray:
        h, w = roi.shape[:2]
        coarse = cv2.resize(roi, (3, 3), interpolation=cv2.INTER_AREA).astype(np.float32)
        coarse += self.rng.normal(0, 12, coarse.shape)
        out = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
        out += self.rng.normal(0, 18, out.shape)
        sigma = max(1.0, 0.06 * max(w, h))
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=sigma, sigmaY=sigma)
        return np.clip(out, 0, 255).astype(np.uint8)


class Pixelate:
    """Coarse mosaic (at most 6 blocks across) with fresh noise per frame."""

    name = "pixelate"

    def __init__(self, rng: np.random.Generator | None = None):
        self.rng = rng or np.random.default_rng()

    def fill(self, roi: np.ndarray) -> np.ndarray:
        h, w = roi.shape[:2]
        bw = max(1, min(6, w))
        bh = max(1, min(6, round(6 * h / max(w, 1))))
        small = cv2.resize(roi, (bw, bh), interpolation=cv2.INTER_AREA).astype(np.float32)
        small += self.rng.normal(0, 6, small.shape)
        out = cv2.resize(np.clip(small, 0, 255).astype(np.uint8), (w, h),
                         interpolation=cv2.INTER_NEAREST)
        return out


class Solid:
    """A flat black fill."""

    name = "solid"

    def __init__(self, rng: np.random.Generator | None = None, colour=(0, 0, 0)):
        self.colour = np.asarray(colour, dtype=np.uint8)

    def fill(self, roi: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.colour, roi.shape)


STYLES: dict[str, type] = {"blur": NoiseBlur, "pixelate": Pixelate, "solid": Solid}


class Redactor:
    """Applies one style to the regions of an image.

    Args:
        style: a name from ``STYLES``.
        mask_scale: boxes are grown by this factor about their centre.
        shape: "ellipse" or "box".
    """

    def __init__(self, style: str = "blur", mask_scale: float = 1.3, shape: str = "ellipse",
                 rng: np.random.Generator | None = None):
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}; choose from {', '.join(STYLES)}")
        if shape not in ("ellipse", "box"):
            raise ValueError(f"unknown shape {shape!r}; choose ellipse or box")
        self.style = STYLES[style](rng=rng)
        self.mask_scale = mask_scale
        self.shape = shape

    def apply(self, image: np.ndarray, xyxy: np.ndarray) -> int:
        """Redact every box of ``xyxy`` in ``image`` (H, W, 3 uint8) in place.

        Returns:
            the number of regions redacted.
        """
        height, width = image.shape[:2]
        count = 0
        for x1, y1, x2, y2, mask in region_masks(xyxy, width, height, self.mask_scale, self.shape):
            roi = image[y1:y2, x1:x2]
            fill = self.style.fill(np.ascontiguousarray(roi))
            roi[mask] = fill[mask]
            count += 1
        return count

    def apply_everywhere(self, image: np.ndarray) -> None:
        """Redact the whole frame (used when a frame could not be analysed)."""
        image[:] = NoiseBlur().fill(image)
