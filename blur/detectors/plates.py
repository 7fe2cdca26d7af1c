"""Licence plates: text lines that look like a plate, padded to cover the whole plate.

A plate is text on a rectangle, so a text detector finds plates of any country. Other text
(signs, shop fronts, badges, tail-light patterns, overlaid clocks) is told apart by:

- geometry: a plate's number is one short, near-horizontal line of large characters
  (aspect 1.2-10, height at least ``min_height_px`` and at most a quarter of the image);
- reading it with the recogniser: a plate (or the part of one a line holds) carries 3-9 letters
  and digits with at least one digit; text read with some confidence as something else (a brand
  name, a phone number, a date or a clock time) is dropped. Text the recogniser cannot read at
  all (motion blur, small or dirty plates) is kept when its geometry fits: a plate that cannot
  be read must still be hidden.

Each kept line is grown to the plate around it (plates are about twice as tall as their
characters, frame included) and then enough that the default ellipse mask covers the rectangle.
"""

from __future__ import annotations

import re

import numpy as np

from ..types import Detections
from .text import analysis_scale, rect_xyxy, shared_model

_ALNUM = re.compile(r"[0-9A-Z]")
# Clock times and dates: overlays of dashcams and CCTV, never a plate.
# A sticker between groups often reads as ":" (Czech "1Z7:5233"), hence the digit guards.
_CLOCK = re.compile(r"(?<!\d)(\d{1,2}[:.]\d{2}[:.]\d{2}|\d{1,2}:\d{2}|\d{4}[-/.:]\d{1,2}[-/.:]\d{1,2}"
                    r"|\d{2}[-/]\d{2}[-/]\d{2})(?!\d)")


def plate_like(text: str, min_chars: int = 3) -> bool:
    """Does a recognised string read like (part of) a licence plate number?"""
    text = text.upper()
    if _CLOCK.search(text):
        return False
    chars = _ALNUM.findall(text)
    digits = sum(c.isdigit() for c in chars)
    if digits == len(chars) and (":" in text or digits >= 8):
        # Only digits: with a colon it is a clock whose other colons were misread ("07825:13");
        # eight or more is a phone number or timestamp (all-digit plates are at most 7 long).
        return False
    return min_chars <= len(chars) <= 9 and digits >= 1


class PlateDetector:
    """Licence plates found by the PP-OCR text detector and a plate classifier.

    Args:
        max_side: the image is analysed with its long side at most this many pixels.
        upscale: smaller images are enlarged up to this factor towards ``max_side``.
        box_thresh: minimum mean text probability of a line.
        min_height_px: lines shorter than this (in the analysed image) are not plates.
        max_height: lines taller than this share of the image height are not plates.
        min_aspect / max_aspect: allowed length / height of a line.
        max_angle: largest tilt of a line from horizontal, in degrees.
        read_conf: a line read with at least this confidence as something other than a plate
            number is dropped; lines read with less confidence are kept (fail closed).
        min_chars: fewest letters and digits a reading needs to count as (part of) a plate.
        pad_x / pad_y: the line's box grows by this many line heights left/right and up/down
            to reach the plate's edges and frame.
        every_n_frames: in videos, run on every n-th frame; the tracker bridges the others.
        device: where ONNX Runtime runs the text model (see ``runtime.providers``).
    """

    name = "ppocr-plates"
    kind = "plate"

    def __init__(self, max_side: int = 1280, box_thresh: float = 0.5, min_height_px: float = 8.0,
                 min_aspect: float = 1.2, max_aspect: float = 10.0, max_angle: float = 30.0,
                 read_conf: float = 0.4, min_chars: int = 3, pad_x: float = 0.6,
                 pad_y: float = 0.55, max_height: float = 0.35, upscale: float = 2.0,
                 every_n_frames: int = 1, device: str = "auto", **_ignored):
        self.max_side = max_side
        self.upscale = upscale
        self.max_height = max_height
        self.box_thresh = box_thresh
        self.min_height_px = min_height_px
        self.min_aspect = min_aspect
        self.max_aspect = max_aspect
        self.max_angle = max_angle
        self.read_conf = read_conf
        self.min_chars = min_chars
        self.pad_x = pad_x
        self.pad_y = pad_y
        self.every_n_frames = every_n_frames
        self._model = shared_model(device)

    def candidates(self, image: np.ndarray):
        """Text lines whose geometry fits a plate: (rects, scores)."""
        height, width = image.shape[:2]
        lines = self._model.find(image, self.max_side, self.box_thresh, self.upscale)
        if not len(lines):
            return lines.rects, lines.score
        scale = analysis_scale(width, height, self.max_side, self.upscale)
        _, _, lng, sht, ang = lines.rects.T
        ok = ((sht * scale >= self.min_height_px) & (sht <= self.max_height * height)
              & (lng >= self.min_aspect * sht) & (lng <= self.max_aspect * sht)
              & (np.abs(ang) <= self.max_angle))
        return lines.rects[ok], lines.score[ok]

    def classify(self, image: np.ndarray, rects: np.ndarray) -> np.ndarray:
        """Boolean mask of the candidate lines that are plates (unreadable ones kept)."""
        keep = np.ones(len(rects), dtype=bool)
        for i, (text, conf) in enumerate(self._model.read(image, rects)):
            if conf >= self.read_conf and not plate_like(text, self.min_chars):
                keep[i] = False
        return keep

    def detect(self, image: np.ndarray) -> Detections:
        """Plates in one upright RGB uint8 image, boxes padded to the whole plate."""
        rects, score = self.candidates(image)
        if len(rects):
            keep = self.classify(image, rects)
            rects, score = rects[keep], score[keep]
        xyxy = rect_xyxy(rects, self.pad_x, self.pad_y)
        xyxy, score = _merge(xyxy, score)
        return Detections.of(xyxy, score, "plate")


def _merge(xyxy: np.ndarray, score: np.ndarray, inside: float = 0.8):
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
