"""The text detector behind plates and text, run frame after frame on a video and re-run only in
standalone crops around what changed (``ChangedCrops``); ``TextPasses`` holds one per pass of a
video and decides when each runs in full.

The text detector (DB) is fully convolutional, but its probability map is not local enough to be
patched around changed tiles the way ``blur.incremental`` patches the face detector's maps
(measured: patched maps lost 48 of 109 lines a full pass finds, see ``blur.schedule``). Here the
unit is the *line*, not the map cell: a crop around the changed tiles, grown by ``MARGIN_PX``
input pixels on every side, is analysed as an image of its own at the same scale, and

* every line found earlier whose box touches no changed tile is kept as it was;
* every earlier line that touches a changed tile is dropped, and the crop is grown to hold it
  whole, so that if the line is still there the crop finds it again;
* every line the crop finds is added, except a copy of a kept earlier line (same place, IoU at
  least 0.5) and a line cut by the crop's edge that touches no changed tile (an earlier line
  holds that place); a line cut by the crop's edge that does touch a changed tile makes the
  whole frame be analysed instead.

Why no plate or text line can hide in a skipped area (fail closed)
------------------------------------------------------------------
* **Same pixels, same lines.** A line is carried from an earlier pass only when no tile under
  its box changed beyond codec noise since it was found; the reference a tile is compared with is
  the input when that tile was last analysed, so a slow drift adds up until it counts (as in
  ``blur.incremental``, with the same test: one pixel of one channel moved by more than
  ``NOISE_LEVELS`` grey levels in a 32-pixel tile).
* **A line cannot appear where nothing changed**, except through the network's context: a
  change can make a line appear or vanish some way off, in two ways. Locally, through the
  network's receptive field: the crop gives every changed tile ``MARGIN_PX`` of real surrounding
  pixels on every side, and every line the crop finds counts, changed tiles or not, so a line the
  change brings out within the crop is found. Globally, through the attention layers, which weigh
  each channel by its mean over the whole image: a crop is analysed with the channel means of the
  frame's last full pass (``text.det_models``), not its own, so it sees the frame's statistics.
  Measured (``benchmarks/change.py --text --plates``, the generated clip of plates driving across
  a still frame of vtest.avi, 90 frames, every 3rd analysed): no line a full pass finds on the
  same frame was lost (0 of 91) with 0.444 of the input pixels; plates 84, each at least 94.7 %
  covered (a pixel of jitter at a plate's edge). With the crops' own channel means 2 of 91 were
  lost (one a plate entering at the frame's edge); with a 64 px margin 3, with 32 px 2 (6 px lines).
* **A crop cannot cut a line.** Crops hold every earlier line they replace whole; a new line that
  reaches a crop's cut edge and touches a changed tile makes the frame a full pass.
* **Only ever adds.** Lines are dropped only where they are re-detected; duplicates are dropped
  only when an equal line is kept.
* **Where it pays.** On a fixed camera with little motion. Where people walk all over the frame
  (vtest.avi: 14 % of the tiles change between every 3rd frame, 76 % of the frame within
  ``MARGIN_PX`` of one) the crops would cost more than ``CROP_MOST`` of a full pass, and every
  pass is a full one, as before. The text detector keeps its stride (``text_every_n_frames``):
  crops on every frame of the plate clip cost 0.346 of a full pass per frame, against 0.148
  (0.444 / 3) with crops on every 3rd.
* **Global change and keyframes.** When more than ``FULL_SHARE`` of the tiles changed, or the
  crops would cost more than ``CROP_MOST`` of a full pass, the whole input is analysed; so it is
  at least every ``keyframe_seconds`` (sooner the more of the picture moves), which bounds how
  long any approximation can last. A frame that fails to be analysed resets every pass.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from .boxes import iou_matrix
from .detectors.text import TextLines
from .incremental import FULL_SHARE, NOISE_LEVELS, TILE, changed_tiles, merge_boxes

# Detector kinds whose text passes run on crops around changes.
KINDS = ("plate", "text")
# Real pixels (of the network's input) each changed tile is given on every side.
MARGIN_PX = 128
# Above this share of a full pass's pixels, crops are not worth their per-call cost.
CROP_MOST = 0.7
# A line whose box comes within this many input pixels of a crop's cut edge may have been cut.
EDGE_PX = 2
_NEVER = -1e6  # a reference value no input has: the tile counts as changed

# (1, 3, H, W) input, channel means of a whole frame or None -> (lines in input pixels, the
# channel means the network took).
LinesIn = Callable[..., tuple[TextLines, tuple]]


class ChangedCrops:
    """One pass of the text detector over a video's frames, re-detecting lines only in crops
    around input tiles that changed (see the module docstring).

    Args:
        lines_in: the detector: ``lines_in(blob, means=None) -> (lines, means)``, the lines of a
            (1, 3, H, W) input in its pixels, analysed with the given channel means of a whole
            frame (None: the input's own), and the means it took.
        levels: how many input units one grey level is.
        margin_px: real pixels each changed tile is given on every side.
        frame_means: analyse crops with the channel means of the last full pass (the frame's
            statistics) rather than the crop's own.
    """

    def __init__(
        self, lines_in: LinesIn, levels: float = 1.0, margin_px: int = MARGIN_PX, frame_means: bool = True
    ):
        self.lines_in = lines_in
        self.frame_means = frame_means
        self.means: tuple | None = None  # channel means of the last full pass
        self.threshold = NOISE_LEVELS * levels
        self.margin = -(-margin_px // TILE)
        self.reference: np.ndarray | None = None  # the input each tile was last analysed with
        self.lines: TextLines | None = None
        self.full_next = True
        self.last_share = 0.0  # share of tiles that changed, when last measured
        self.pixels = 0  # input pixels given to the network, all calls
        self.full_passes = 0
        self.crop_calls = 0
        self.frame = 0  # the frame being analysed (set by ``TextPasses``)
        self.full_frame: int | None = None  # the frame of the last full pass

    def reset(self) -> None:
        """Forget everything: the next input is analysed in full."""
        self.reference, self.lines, self.full_next = None, None, True

    def __call__(self, blob: np.ndarray) -> TextLines:
        height, width = blob.shape[2:]
        if (
            self.full_next
            or self.reference is None
            or self.reference.shape != blob.shape
            or height % TILE
            or width % TILE
        ):
            return self._full(blob)
        changed = changed_tiles(blob, self.reference, self.threshold)
        self.last_share = float(changed.mean())
        if self.last_share > FULL_SHARE:
            return self._full(blob)
        if not changed.any():
            return self.lines
        old = self.lines
        old_boxes = _boxes(old)
        stale = _touches(old_boxes, changed)
        needed = changed.copy()
        for x0, y0, x1, y1 in _tile_spans(old_boxes[stale], changed.shape):
            needed[y0:y1, x0:x1] = True
        crops = crop_tiles(needed, self.margin)
        if sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in crops) * TILE * TILE > CROP_MOST * height * width:
            return self._full(blob)
        kept_boxes = old_boxes[~stale]
        rects, scores = [old.rects[~stale]], [old.score[~stale]]
        for x0, y0, x1, y1 in crops:
            crop = np.ascontiguousarray(blob[:, :, y0 * TILE : y1 * TILE, x0 * TILE : x1 * TILE])
            self.pixels += crop.shape[2] * crop.shape[3]
            self.crop_calls += 1
            found, _ = self.lines_in(crop, self.means if self.frame_means else None)
            if not len(found):
                continue
            found = TextLines(found.rects.copy(), found.score)
            found.rects[:, 0] += x0 * TILE
            found.rects[:, 1] += y0 * TILE
            boxes = _boxes(found)
            cut = _cut(boxes, (x0, y0, x1, y1), changed.shape)
            touching = _touches(boxes, changed)
            if (cut & touching).any():
                return self._full(blob)
            copy = np.zeros(len(found), dtype=bool)
            if len(kept_boxes):
                copy = ~touching & (iou_matrix(boxes, kept_boxes).max(axis=1) >= 0.5)
            take = ~cut & ~copy
            rects.append(found.rects[take])
            scores.append(found.score[take])
        # Only the changed tiles were analysed anew; the others keep the input their kept
        # lines were found in.
        grown = np.repeat(np.repeat(changed, TILE, axis=0), TILE, axis=1)
        self.reference[:, :, grown] = blob[:, :, grown]
        self.lines = TextLines(
            np.concatenate(rects).astype(np.float32).reshape(-1, 5),
            np.concatenate(scores).astype(np.float32).reshape(-1),
        )
        return self.lines

    def invalidate(self) -> None:
        """Make the next call a full pass."""
        self.full_next = True

    def _full(self, blob: np.ndarray) -> TextLines:
        lines, self.means = self.lines_in(blob)
        self.pixels += blob.shape[2] * blob.shape[3]
        self.full_passes += 1
        self.full_frame = self.frame
        self.reference, self.lines = blob.copy(), lines
        self.full_next = False
        return lines


def crop_tiles(needed: np.ndarray, margin: int) -> list[tuple[int, int, int, int]]:
    """Crops (x0, y0, x1, y1 in tiles) that hold every needed tile with ``margin`` tiles around
    it: the boxes of the grown mask's connected parts, overlapping ones joined, and two joined
    when one crop around both costs no more than the two."""
    rows, cols = needed.shape
    grown = cv2.dilate(needed.astype(np.uint8), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    boxes = [(x, y, x + w, y + h) for x, y, w, h, _ in stats[1:count]]
    boxes = merge_boxes(boxes, 0, join_overlapping=True)
    return [(max(0, x0), max(0, y0), min(cols, x1), min(rows, y1)) for x0, y0, x1, y1 in boxes]


def _boxes(lines: TextLines) -> np.ndarray:
    return lines.xyxy() if len(lines) else np.zeros((0, 4), np.float32)


def _tile_spans(boxes: np.ndarray, shape: tuple) -> list[tuple[int, int, int, int]]:
    """The tiles (x0, y0, x1, y1, end exclusive) under each box (input pixels), clipped to the grid."""
    rows, cols = shape
    out = []
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
        tx0 = int(np.clip(np.floor(x1 / TILE), 0, cols - 1))
        ty0 = int(np.clip(np.floor(y1 / TILE), 0, rows - 1))
        tx1 = int(np.clip(np.floor(x2 / TILE), 0, cols - 1)) + 1
        ty1 = int(np.clip(np.floor(y2 / TILE), 0, rows - 1)) + 1
        out.append((tx0, ty0, max(tx1, tx0 + 1), max(ty1, ty0 + 1)))
    return out


def _touches(boxes: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """Which boxes (input pixels) lie over at least one changed tile."""
    return np.array(
        [changed[y0:y1, x0:x1].any() for x0, y0, x1, y1 in _tile_spans(boxes, changed.shape)], dtype=bool
    ).reshape(-1)


def _cut(boxes: np.ndarray, crop: tuple, shape: tuple) -> np.ndarray:
    """Which boxes (input pixels) reach an edge of ``crop`` (tiles) that is not the image's."""
    rows, cols = shape
    x0, y0, x1, y1 = crop
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    cut = np.zeros(len(boxes), dtype=bool)
    if x0 > 0:
        cut |= boxes[:, 0] <= x0 * TILE + EDGE_PX
    if y0 > 0:
        cut |= boxes[:, 1] <= y0 * TILE + EDGE_PX
    if x1 < cols:
        cut |= boxes[:, 2] >= x1 * TILE - EDGE_PX
    if y1 < rows:
        cut |= boxes[:, 3] >= y1 * TILE - EDGE_PX
    return cut


class TextPasses:
    """The change-driven text passes of one video (one ``ChangedCrops`` per detector and pass),
    each analysed in full at least every ``keyframe_frames`` frames, sooner the more of the
    picture moves.

    Args:
        keyframe_frames: longest run of frames between two full passes of one pass.
        margin_px: see ``ChangedCrops``.
    """

    def __init__(self, keyframe_frames: int, margin_px: int = MARGIN_PX, frame_means: bool = True):
        self.keyframe_frames = keyframe_frames
        self.margin_px = margin_px
        self.frame_means = frame_means
        self.passes: dict[tuple, ChangedCrops] = {}

    def hook(self, owner: int, index: int) -> Callable:
        """The ``incremental`` argument of ``TextModel.find`` for detector ``owner`` on frame
        ``index``."""

        def incremental(key, lines_in: LinesIn, levels: float = 1.0) -> ChangedCrops:
            return self.crops((owner, key), lines_in, levels, index)

        return incremental

    def crops(self, key: tuple, lines_in: LinesIn, levels: float, index: int) -> ChangedCrops:
        run = self.passes.get(key)
        if run is None:
            run = self.passes[key] = ChangedCrops(lines_in, levels, self.margin_px, self.frame_means)
        run.lines_in, run.frame = lines_in, index
        due = self.keyframe_frames * (1.0 - min(run.last_share, FULL_SHARE))
        if run.full_frame is None or index - run.full_frame >= due:
            run.full_next = True
        return run

    def reset(self, owners=None) -> None:
        """Forget the passes' state (of detectors ``owners``; None: all): the next frame is
        analysed in full."""
        for (owner, _), run in list(self.passes.items()):
            if owners is None or owner in owners:
                run.reset()
