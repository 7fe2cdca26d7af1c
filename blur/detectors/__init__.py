"""Detector registry: name -> class. Add a detector with one file and one line here."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..types import Detections
from .centerface import CenterFaceDetector
from .plates import PlateDetector
from .text import TextDetector


class Detector(Protocol):
    """Finds things to redact in one upright RGB image."""

    name: str
    kind: str

    def detect(self, image: np.ndarray) -> Detections: ...


DETECTORS: dict[str, type] = {
    "centerface": CenterFaceDetector,
    "ppocr-plates": PlateDetector,
    "pptext": TextDetector,
}

# Which detector serves which kind by default.
DEFAULT_FOR_KIND: dict[str, str] = {
    "face": "centerface",
    "plate": "ppocr-plates",
    "text": "pptext",
}

# Optional detectors whose dependencies may be missing are added in guarded imports, e.g.
# try: from .plates import PlateDetector  except ImportError: pass
