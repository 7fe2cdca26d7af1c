"""Cuts between shots in a video, so that no face region is carried onto another picture.

Tracking pads every track before its first and after its last detection and bridges the frames
between detections (see ``blur.tracking``): a face the detector misses for a few frames stays
covered. Across a cut that box lies on another picture, where it hides whatever is there (a
background, a bystander, the back of a head) and protects nothing: the face it followed is not
in that shot. Worse, a chain can link a face in one shot to a weak candidate of similar size in
the next one, and carry its box through the other shot.

A frame starts a new shot when it differs from the previous frame both in *layout* (the
correlation of the two frames' brightness, shrunk to 32x18 and normalised to zero mean and unit
variance, falls below ``LAYOUT_CORRELATION``) and in *colours* (hue/saturation histograms differ by
more than ``COLOUR_DISTANCE``, half the L1 distance). One of the two alone is not enough: a pan,
shake or a person walking past the lens changes the layout but keeps the colours; a flash or a
light switched on changes the colours' brightness but keeps the layout. A frame nearly uniform
in brightness (black, a fade) has no layout and never starts a shot. A cut missed keeps the
padding and bridging across it, as before (more redaction, never less).

Measured (``benchmarks/redacted_share.py``; the frames are the decoded ones): ``Megamind.avi``
has three cuts (frames 98, 154 and 200), found with a layout correlation of 0.10-0.23 and
colour distances of 0.14-0.19, while every other frame pair correlates at 0.95 or more; no cut
is found in ``vtest.avi``, the sample clip, or the two generated clips of
``benchmarks/video_recall.py`` except its one scene cut (frame 48), through their fast pan with
motion blur, zooms and camera shake.
"""

from __future__ import annotations

import cv2
import numpy as np

# A frame starts a new shot below this layout correlation with the previous frame ...
LAYOUT_CORRELATION = 0.5
# ... and above this colour distance (half the L1 distance of hue/saturation histograms, 0-1).
COLOUR_DISTANCE = 0.1
# Frames whose shrunk brightness varies less than this (grey levels) have no layout to compare.
FLAT_LEVELS = 2.0
_LAYOUT_SIZE = (32, 18)
_COLOUR_SIZE = (64, 36)
_BINS = (16, 8)


def _signature(rgb: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """(normalised layout or None when the frame is flat, colour histogram) of one RGB frame."""
    small = cv2.resize(rgb, _COLOUR_SIZE, interpolation=cv2.INTER_AREA)
    grey = cv2.resize(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), _LAYOUT_SIZE,
                      interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    spread = float(grey.std())
    layout = None if spread < FLAT_LEVELS else (grey - grey.mean()) / spread
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, list(_BINS), [0, 180, 0, 256]).ravel()
    return layout, hist / max(float(hist.sum()), 1.0)


class ShotCuts:
    """Watches a video's frames in order and records the frames that start a new shot.

    Attributes:
        starts: indices of the frames that start a new shot (the first frame is not listed).
    """

    def __init__(self) -> None:
        self.starts: list[int] = []
        self._previous: tuple[np.ndarray | None, np.ndarray] | None = None

    def see(self, index: int, rgb: np.ndarray) -> bool:
        """Take the next frame (RGB uint8); True when it starts a new shot."""
        current = _signature(np.ascontiguousarray(rgb))
        previous, self._previous = self._previous, current
        if previous is None or previous[0] is None or current[0] is None:
            return False
        layout = float(np.mean(previous[0] * current[0]))
        colours = 0.5 * float(np.abs(previous[1] - current[1]).sum())
        cut = layout < LAYOUT_CORRELATION and colours > COLOUR_DISTANCE
        if cut:
            self.starts.append(int(index))
        return cut
