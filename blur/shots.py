"""Cuts between shots in a video, so that a face's track is not carried onto another picture.

Tracking links detections into tracks and redacts a track's weak hits as its continuation
(see ``blur.tracking``). Across a cut, "continuation" means only "a box of a similar size near
where the face was", in another picture. On ``Megamind.avi`` a close-up of a man is followed
at frame 154 by a close-up of a woman; in 29 of her shot's 46 frames the detector reports a box
170-270 px tall at 0.10-0.22 on the hair and the background behind her. Continuing the man's
track, those boxes were redacted through her whole shot (a median 16 % of each frame, bridged
where they were missing). A large box at a low score is not a face on its own
(``tracking.unsure_large_faces``), and across a cut it continues no track either.

A frame starts a new shot when it differs from the previous frame both in *layout* (the
correlation of the two frames' brightness, shrunk to 32x18 and normalised to zero mean and unit
variance, falls below ``LAYOUT_CORRELATION``) and in *colours* (hue/saturation histograms differ by
more than ``COLOUR_DISTANCE``, half the L1 distance). One of the two alone is not enough: a pan,
shake or a person walking past the lens changes the layout but keeps the colours; a flash or a
light switched on changes the colours' brightness but keeps the layout. A frame nearly uniform
in brightness (black, a fade) has no layout and never starts a shot. A cut missed links as
before (more redaction, never less); a cut found where there is none costs nothing but that one
rule, since confident and small boxes link across cuts as before.

Measured on the decoded frames: ``Megamind.avi`` has three cuts (frames 98, 154, 200), found
at layout correlations 0.10-0.23 and colour distances 0.16-0.18, while every other pair of its
frames correlates at 0.98 or more; ``vtest.avi`` (795 frames) and the sample clip have no pair
below 0.96 and no colour distance above 0.07: no cut. Of the generated clips of
``benchmarks/video_recall.py``, the panning one has its one scene cut found (frame 48) and the
hand-held one (zooms, shake) none; coverage of both is the same as without cuts, face for face.
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
    grey = (
        cv2.resize(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), _LAYOUT_SIZE, interpolation=cv2.INTER_AREA)
        .astype(np.float32)
        .ravel()
    )
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
