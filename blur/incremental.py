"""A fully convolutional network run frame after frame, recomputed only near input tiles that
changed beyond codec noise (``ChangeDrivenNetwork``); ``blur.schedule`` decides which passes
run this way.

Why reusing an output cannot hide a face (fail closed):

* **Same pixels, same detections.** Output cells are reused only where no input tile within
  ``margin`` tiles changed beyond codec noise; every cell near a change is recomputed from a crop
  that gives it ``context`` further tiles of surrounding pixels on every side (the image border,
  where a crop is cut, is the border the full pass sees too). Crops start on the network's
  32-pixel grid, so a recomputed cell sees its pixels through the same downsampling as in a full
  pass. ``benchmarks/change.py`` compares patched maps with full passes frame by frame.
* **How much context** (``benchmarks/change.py --reach``: CenterFace's small-face map
  recomputed on 1-3 tile windows around its peaks from crops with 0-3 tiles of context, against
  the full pass, no codec noise involved; every 10th of the first 60 frames): the largest
  difference is 0.43 / 0.18 / 0.13 / 0.07 with 0 / 1 / 2 / 3 tiles on ``vtest.avi``, 0.47 / 0.17
  / 0.15 / 0.07 on ``samples/street.mp4``. One tile of context moves candidate scores by more
  than the threshold's distance from its neighbours, so margin 1 and context 2 stay (against
  full passes on 60 frames of vtest, margin 1 / context 1 loses 36 candidates, best 0.18,
  margin 0 / context 2 49, best 0.18, margin 1 / context 2 30, best 0.15; they save 23 % and
  18 % of the input).
* **A face cannot appear where nothing changed.** A face that enters, moves, turns or is
  uncovered changes the pixels where it is; those tiles are re-analysed. The reference a tile is
  compared with is the input *when that tile was last analysed*, not the previous frame, so a
  slow drift adds up until it counts.
* **Codec noise, measured** (``benchmarks/change.py``, first 100 frames): between consecutive
  decoded frames of ``vtest.avi`` (CCTV) and ``samples/street.mp4`` (H.264), 55 % / 40 % of
  32-pixel tiles hold a pixel whose grey level moved by more than 4, 14 % / 11 % one that moved
  by more than 12, against 8 % / 8 % by more than 32 (the real motion). A pixel has changed when
  a channel moved by more than ``NOISE_LEVELS`` = 12; a tile has changed when at least
  ``NOISE_PIXELS`` = 8 of its 1024 pixels have. Isolated specks of noise are what makes a lone
  tile count, and a lone tile costs a 7x7-tile window: at the small-face pass's input (vtest
  / street) 6.3 % / 5.7 % of tiles hold one changed pixel, 5.6 % / 5.1 % eight, and the pass is
  given 18 % / 14 % less input (0.62 -> 0.51, 0.51 -> 0.44 of full passes) for the same
  candidates lost against full passes (vtest 30 -> 32, best score 0.15 -> 0.17; street 11 ->
  10). Sixteen pixels lost 36 (best 0.17), 32 lost 50 (best 0.24: a small face moving slowly
  left its box behind), so 8 stays. Any change of 32 pixels inside a 33-pixel square (a face
  of 6x6 pixels) puts 8 of them in one tile; the smallest face the small-face pass finds is
  ~16 pixels tall at its input, and one that appears or moves changes far more pixels than that.
* **Global change** (a cut, a pan, shake, a lighting change): when more than ``FULL_SHARE`` of
  the tiles changed, or when the windows would give the network as many pixels as the whole
  input, the whole input is analysed.

The network may be called with a (1, C, H, W) float blob or with the (H, W, C) uint8 image it
is made from: the image is compared with a quarter of the bytes, and only the crops that run
are converted.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from .errors import DetectionError

TILE = 32  # input pixels per change tile: the networks' coarsest stride
NOISE_LEVELS = 12  # a pixel moved by more than this many grey levels (0-255) has changed
NOISE_PIXELS = 8  # a tile holding at least this many changed pixels has changed (see above)
FULL_SHARE = 0.5  # above this share of changed tiles, a full pass is cheaper and simpler

Forward = Callable[[np.ndarray], tuple]


class ChangeDrivenNetwork:
    """One pass of a fully convolutional network, run frame after frame on inputs of one size,
    recomputing its output only near input tiles that changed (see the module docstring).

    Called with a (1, C, H, W) float32 blob, or with an (H, W, C) uint8 image, which is cheaper:
    the change test then reads a quarter of the bytes, and only the crops that run are converted
    to the network's input (by ``forward``).

    Args:
        forward: the network: its input (a blob or crop of the image, as the network is called
            with) -> tuple of (1, K, H/s, W/s) maps.
        levels: how many input units one grey level is (1 for raw pixels, 2/255 for inputs
            scaled to [-1, 1]).
        margin: tiles around a changed tile whose output is recomputed.
        context: further tiles of input each recomputed cell is given on every side.
    """

    def __init__(
        self,
        forward: Forward,
        levels: float = 1.0,
        margin: int = 1,
        context: int = 2,
        noise_pixels: int | None = None,
    ):
        self.forward = forward
        self.threshold = NOISE_LEVELS * levels
        self.noise_pixels = NOISE_PIXELS if noise_pixels is None else max(1, noise_pixels)
        self.margin = margin
        self.context = context
        self.reference: np.ndarray | None = None  # the input each tile was last analysed with
        self.stale: np.ndarray | None = None  # (rows, cols) tiles to analyse again regardless
        self.outputs: tuple | None = None
        self.full_next = True
        self.last_share = 0.0  # share of tiles that changed, when last measured
        self.pixels = 0  # input pixels given to the network, all calls
        self.full_passes = 0

    def reset(self) -> None:
        """Forget everything: the next input is analysed in full."""
        self.reference, self.outputs, self.full_next = None, None, True

    def __call__(self, blob: np.ndarray) -> tuple:
        image = blob.ndim == 3
        if not image and (blob.ndim != 4 or blob.shape[0] != 1):
            return self.forward(blob)
        height, width = blob.shape[:2] if image else blob.shape[2:]
        if (
            self.full_next
            or self.reference is None
            or self.reference.shape != blob.shape
            or height % TILE
            or width % TILE
        ):
            return self._full(blob)
        changed = self.changed_tiles(blob)
        self.last_share = float(changed.mean())
        if self.last_share > FULL_SHARE:
            return self._full(blob)
        if not changed.any():
            return self.outputs
        windows = self.windows(changed)
        if sum((x1 - x0) * (y1 - y0) for _, (x0, y0, x1, y1) in windows) * TILE * TILE >= height * width:
            return self._full(blob)  # the windows would cost more than the whole input
        outputs = tuple(o.copy() for o in self.outputs)
        for (ix0, iy0, ix1, iy1), (cx0, cy0, cx1, cy1) in windows:
            crop = _region(blob, cy0 * TILE, cy1 * TILE, cx0 * TILE, cx1 * TILE)
            crop = np.ascontiguousarray(crop)
            crop_height = (cy1 - cy0) * TILE
            self.pixels += crop_height * (cx1 - cx0) * TILE
            patch = self.forward(crop)
            for out, part in zip(outputs, patch):
                s = height // out.shape[2]  # input pixels per output cell
                if s * out.shape[2] != height or part.shape[2] * s != crop_height:
                    raise DetectionError("network output does not tile its input")
                t = TILE // s
                out[:, :, iy0 * t : iy1 * t, ix0 * t : ix1 * t] = part[
                    :, :, (iy0 - cy0) * t : (iy1 - cy0) * t, (ix0 - cx0) * t : (ix1 - cx0) * t
                ]
            rows = (iy0 * TILE, iy1 * TILE, ix0 * TILE, ix1 * TILE)
            _region(self.reference, *rows)[...] = _region(blob, *rows)
            self.stale[iy0:iy1, ix0:ix1] = False
        self.outputs = outputs
        return outputs

    def invalidate(self, xyxy: np.ndarray, width: int, height: int) -> None:
        """Make the tiles under ``xyxy`` (frame pixels of a ``width`` x ``height`` frame),
        grown by its size on every side, count as changed on the next call."""
        if self.reference is None:
            return
        in_h, in_w = self.stale.shape[0] * TILE, self.stale.shape[1] * TILE
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        grow_x, grow_y = x2 - x1, y2 - y1
        xa = int(max(0, (x1 - grow_x) * in_w / width))
        xb = int(min(in_w, np.ceil((x2 + grow_x) * in_w / width)))
        ya = int(max(0, (y1 - grow_y) * in_h / height))
        yb = int(min(in_h, np.ceil((y2 + grow_y) * in_h / height)))
        if xb > xa and yb > ya:
            self.stale[ya // TILE : -(-yb // TILE), xa // TILE : -(-xb // TILE)] = True

    def _full(self, blob: np.ndarray) -> tuple:
        outputs = tuple(self.forward(blob))
        height, width = blob.shape[:2] if blob.ndim == 3 else blob.shape[2:]
        self.pixels += height * width
        self.full_passes += 1
        self.reference, self.outputs = blob.copy(), outputs
        self.stale = np.zeros((height // TILE, width // TILE), dtype=bool)
        self.full_next = False
        return outputs

    def changed_tiles(self, blob: np.ndarray) -> np.ndarray:
        """(rows, cols) bool: tiles holding at least ``noise_pixels`` pixels with a channel
        that moved beyond codec noise since that tile was last analysed (and tiles made
        stale by ``invalidate``)."""
        return changed_tiles(blob, self.reference, self.threshold, self.noise_pixels) | self.stale

    def windows(self, changed: np.ndarray) -> list[tuple[tuple, tuple]]:
        """(interior, crop) pairs in tiles (x0, y0, x1, y1): the interior is recomputed and
        pasted, the crop around it (``context`` tiles more) is what the network is given."""
        rows, cols = changed.shape
        grown = _dilate(changed, self.margin)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(grown.astype(np.uint8), connectivity=8)
        boxes = [(x, y, x + w, y + h) for x, y, w, h, _ in stats[1:count]]
        boxes = merge_boxes(boxes, self.context)
        c = self.context
        return [
            ((x0, y0, x1, y1), (max(0, x0 - c), max(0, y0 - c), min(cols, x1 + c), min(rows, y1 + c)))
            for x0, y0, x1, y1 in boxes
        ]


def _region(x: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Rows y0:y1 and columns x0:x1 of an (H, W, C) image or a (1, C, H, W) blob (a view)."""
    return x[y0:y1, x0:x1] if x.ndim == 3 else x[:, :, y0:y1, x0:x1]


def _dilate(mask: np.ndarray, n: int) -> np.ndarray:
    if n <= 0:
        return mask
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * n + 1, 2 * n + 1), np.uint8)) > 0


def changed_tiles(
    blob: np.ndarray, reference: np.ndarray, threshold: float, noise_pixels: int = 1
) -> np.ndarray:
    """(rows, cols) bool: ``TILE``-pixel tiles of an (H, W, C) image or a (1, C, H, W) blob
    holding at least ``noise_pixels`` pixels with a channel that moved by more than
    ``threshold`` from ``reference``."""
    if blob.ndim == 3:  # (H, W, C): each row's channels side by side
        height, width, channels = blob.shape
        diff = cv2.absdiff(blob.reshape(height, -1), reference.reshape(height, -1))
        moved = diff > threshold
        if noise_pixels > 1:
            moved = moved.reshape(height, width, channels).any(axis=2)
    else:
        channels, height, width = blob.shape[1:]
        diff = cv2.absdiff(blob[0].reshape(-1, width), reference[0].reshape(-1, width))
        moved = diff.reshape(channels, height, width).max(axis=0) > threshold
    rows, cols = height // TILE, width // TILE
    tiles = moved.reshape(rows, TILE, cols, -1)
    if noise_pixels <= 1:
        return tiles.any(axis=(1, 3))
    return tiles.sum(axis=(1, 3), dtype=np.int32) >= noise_pixels


def merge_boxes(boxes: list[tuple], context: int, join_overlapping: bool = False) -> list[tuple]:
    """Union boxes (in tiles) when one crop around both, ``context`` tiles wider on every side,
    costs no more than two (and, with ``join_overlapping``, whenever they overlap): fewer,
    larger network calls (each call has a fixed cost and its own context border)."""
    boxes = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                u = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                overlap = join_overlapping and a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
                if overlap or _area(u, context) <= _area(a, context) + _area(b, context):
                    boxes[i] = u
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def _area(box: tuple, context: int) -> int:
    return (box[2] - box[0] + 2 * context) * (box[3] - box[1] + 2 * context)
