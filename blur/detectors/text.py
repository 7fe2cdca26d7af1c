"""Text detection with the PP-OCR text detector (DB), and the package's recogniser for filters.

The ONNX files (Apache-2.0, converted from PaddleOCR by RapidOCR) are read from the installed
PyPI wheel named in ``MODELS``; nothing is downloaded and none of that package's code is imported
or run: the pre-processing, the DB post-processing (binarise the probability map, contours,
unclip) and the CTC decoding are the few lines below. The models run through ONNX Runtime.

``TextDetector`` (kind "text") redacts every line of text it finds; ``plates.PlateDetector`` uses
the same ``TextModel`` and keeps only the lines that look like licence plates.
"""

from __future__ import annotations

import importlib.metadata
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import DetectionError
from ..types import Detections
from . import runtime
from .base import Detector, cached, cached_result
from .runtime import session

# (distribution, file inside it). The distribution is only a carrier for the model files.
MODELS = {
    "det": ("rapidocr-onnxruntime", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"),
    "rec": ("rapidocr-onnxruntime", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx"),
}

_REC_HEIGHT = 48


@cached_result(("text-det-models",))
def det_models() -> tuple[bytes, bytes]:
    """The text detector twice, rewritten: (whole, crop).

    Its attention layers (squeeze-and-excitation) weigh every channel by the channel's mean over
    the whole image (``GlobalAveragePool``), so what it sees in one place depends on the whole
    frame. ``whole`` also outputs those means; ``crop`` takes them as inputs in place of its own,
    so a crop is analysed with the statistics of the frame it was cut from.
    """
    import onnx

    model = onnx.load(str(model_file("det")))
    means = [n.output[0] for n in model.graph.node if n.op_type == "GlobalAveragePool"]
    whole = onnx.ModelProto()
    whole.CopyFrom(model)
    for name in means:
        whole.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    crop = onnx.ModelProto()
    crop.CopyFrom(model)
    kept = [n for n in crop.graph.node if n.op_type != "GlobalAveragePool"]
    del crop.graph.node[:]
    crop.graph.node.extend(kept)
    for name in means:
        crop.graph.input.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [1, None, 1, 1])
        )
    return whole.SerializeToString(), crop.SerializeToString()


def model_file(role: str) -> Path:
    """Path of a model file inside its installed distribution, found without importing it."""
    dist_name, rel = MODELS[role]
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError as exc:
        raise DetectionError(f"the text model package {dist_name!r} is not installed") from exc
    path = Path(dist.locate_file(rel))
    if not path.is_file():
        raise DetectionError(f"text model missing from the installed package: {path}")
    return path


@dataclass
class TextLines:
    """Lines of text in one image, as rotated rectangles in its pixel coordinates.

    Attributes:
        rects: (N, 5) float32 centre x, centre y, long side, short side, angle in degrees of the
            long side from horizontal (-90, 90]. Sizes are the unclipped (full-text) sizes.
        score: (N,) float32 mean text probability inside the line.
    """

    rects: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return len(self.rects)

    def xyxy(self, grow_long: float = 0.0, grow_short: float = 0.0) -> np.ndarray:
        """Axis-aligned boxes around the rectangles, each side grown by ``grow_*`` x the height."""
        return rect_xyxy(self.rects, grow_long, grow_short)


def rect_xyxy(rects: np.ndarray, grow_long: float = 0.0, grow_short: float = 0.0) -> np.ndarray:
    """Axis-aligned xyxy boxes enclosing rotated rects (cx, cy, long, short, angle), grown first."""
    rects = np.asarray(rects, dtype=np.float32).reshape(-1, 5)
    cx, cy, lng, sht, ang = rects.T
    lng = lng + 2 * grow_long * sht
    sht = sht + 2 * grow_short * sht
    t = np.deg2rad(ang)
    half_w = (np.abs(np.cos(t)) * lng + np.abs(np.sin(t)) * sht) / 2
    half_h = (np.abs(np.sin(t)) * lng + np.abs(np.cos(t)) * sht) / 2
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1).astype(np.float32)


def db_lines(
    prob: np.ndarray,
    scale_xy: tuple[float, float],
    thresh: float = 0.3,
    box_thresh: float = 0.5,
    unclip_ratio: float = 1.6,
    min_side: float = 3.0,
) -> TextLines:
    """DB post-processing: text lines from the detector's probability map.

    The network predicts a *shrunk* text kernel; each connected blob above ``thresh`` is kept if
    its mean probability reaches ``box_thresh`` and grown back ("unclipped") by the offset
    ``area * unclip_ratio / perimeter`` of its minimum-area rectangle, as in the DB paper.

    Args:
        prob: (H', W') text probability at the network's input resolution.
        scale_xy: factors from the network input back to the image (x, y).
    """
    bitmap = (prob > thresh).astype(np.uint8)
    # A 2x2 dilation joins characters the kernel split, as PaddleOCR does.
    bitmap = cv2.dilate(bitmap, np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    rects, scores = [], []
    for contour in contours[:1000]:
        (cx, cy), (w, h), ang = cv2.minAreaRect(contour)
        if min(w, h) < min_side:
            continue
        x, y, bw, bh = cv2.boundingRect(contour)
        mask = np.zeros((bh, bw), np.uint8)
        cv2.fillPoly(mask, [contour - [x, y]], 1)
        score = float(prob[y : y + bh, x : x + bw][mask > 0].mean())
        if score < box_thresh:
            continue
        offset = w * h * unclip_ratio / (2 * (w + h))
        w, h = w + 2 * offset, h + 2 * offset
        if w < h:  # express as (long side, short side, angle of the long side)
            w, h, ang = h, w, ang - 90
        ang = (ang + 90) % 180 - 90  # (-90, 90]
        rects.append((cx, cy, w, h, ang))
        scores.append(score)
    return scaled(
        TextLines(np.asarray(rects, np.float32).reshape(-1, 5), np.asarray(scores, np.float32).reshape(-1)),
        scale_xy,
    )


def scaled(lines: TextLines, scale_xy: tuple[float, float]) -> TextLines:
    """``lines`` with their coordinates multiplied by ``scale_xy`` (x, y): each rectangle's long
    and short sides by the axis factors they mostly lie along."""
    sx, sy = scale_xy
    if (sx, sy) == (1.0, 1.0) or not len(lines):
        return lines
    cx, cy, lng, sht, ang = lines.rects.T.astype(np.float64)
    t = np.radians(ang)
    long_scale = np.hypot(np.cos(t) * sx, np.sin(t) * sy)
    short_scale = np.hypot(np.sin(t) * sx, np.cos(t) * sy)
    rects = np.stack([cx * sx, cy * sy, lng * long_scale, sht * short_scale, ang], axis=1)
    return TextLines(rects.astype(np.float32), lines.score)


def upright_transform(rect) -> np.ndarray:
    """2x3 affine map from the image to the upright crop of a rotated rect (see upright_crop)."""
    cx, cy, lng, sht, ang = (float(v) for v in rect)
    w, h = max(1, int(round(lng))), max(1, int(round(sht)))
    m = cv2.getRotationMatrix2D((cx, cy), ang, 1.0)
    m[:, 2] += (w / 2 - cx, h / 2 - cy)
    return m


def upright_crop(image: np.ndarray, rect) -> np.ndarray:
    """The pixels of a rotated rectangle, turned so its text runs left to right."""
    w, h = max(1, int(round(float(rect[2])))), max(1, int(round(float(rect[3]))))
    return cv2.warpAffine(
        image, upright_transform(rect), (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def equalised(bgr: np.ndarray) -> np.ndarray:
    """Local contrast stretched: CLAHE on the L channel of Lab, colours kept.

    Tiles are about 64 px so a plate's surroundings, not the whole frame, set its stretch; the clip
    limit keeps flat areas (sky, car body) from turning into amplified noise.
    """
    lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2LAB)
    h, w = bgr.shape[:2]
    clahe = cv2.createCLAHE(clipLimit=2.5, tileGridSize=(max(1, w // 64), max(1, h // 64)))
    lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)


def analysis_scale(width: int, height: int, max_side: int, upscale: float = 1.0) -> float:
    """Resize factor of an image for the text detector: its long side at most ``max_side``;
    small images are enlarged up to ``upscale`` times towards it (small characters are missed)."""
    return min(max_side / max(width, height), max(1.0, upscale))


class TextModel:
    """The PP-OCR detector and recogniser, loaded once and shared by the text and plate detectors.

    Args:
        threads: ONNX Runtime intra-op threads (0: its default, one per core).
        device: where ONNX Runtime runs them (see ``runtime.providers``).
    """

    def __init__(self, threads: int = 0, device: str = "auto"):
        whole, crop = det_models()
        self._det = session(whole, device, threads)
        self._device, self._threads = device, threads
        self._det_crop = None  # loaded when a video first needs it
        self._rec = session(model_file("rec"), device, threads)
        meta = self._rec.get_modelmeta().custom_metadata_map
        if "character" not in meta:
            raise DetectionError("the text recogniser carries no character list")
        # CTC: index 0 is the blank, the dictionary follows, then a space.
        self._chars = [""] + meta["character"].splitlines() + [" "]
        self._lock = threading.Lock()
        self._last: tuple | None = None

    def find(
        self,
        rgb: np.ndarray,
        max_side: int,
        box_thresh: float = 0.5,
        upscale: float = 1.0,
        equalise: bool = False,
        incremental: Callable | None = None,
    ) -> TextLines:
        """Text lines in an RGB image, analysed at ``analysis_scale``.

        Args:
            equalise: stretch local contrast first (CLAHE on the luminance of the resized
                image), so grey text on a grey plate at dusk stands out as much as in daylight.
            incremental: ``incremental(key, lines_in, levels)`` returns what to run in place of
                ``lines_in`` on the (1, 3, H, W) input: in videos one that re-detects only around
                what changed (``blur.text_changes``). ``lines_in(blob, means=None)`` is the
                network and DB post-processing: (the blob's ``TextLines`` in its pixels, the
                channel means taken), analysed with the given means of a whole frame (None: its
                own; see ``det_models``). ``levels`` is one grey level in input units.

        The same image object asked again (plates and all text in one frame) is not re-run.
        """
        key = (max_side, box_thresh, upscale, equalise)
        last = self._last
        if last is not None and last[0] is rgb and last[1] == key:
            return last[2]
        height, width = rgb.shape[:2]
        x = self.network_input(rgb, max_side, upscale, equalise)
        w_in, h_in = x.shape[3], x.shape[2]

        def lines_in(blob: np.ndarray, means: tuple | None = None) -> tuple[TextLines, tuple]:
            prob, means = self._detect_text(blob, means)
            if prob.ndim != 4 or prob.shape[2:] != blob.shape[2:] or not np.isfinite(prob).all():
                raise DetectionError("text model returned an invalid probability map")
            return db_lines(prob[0, 0], (1.0, 1.0), box_thresh=box_thresh), means

        if incremental is None:
            found = lines_in(x)[0]
        else:
            found = incremental(("text", max_side, box_thresh, upscale, equalise), lines_in, 2 / 255)(x)
        lines = scaled(found, (width / w_in, height / h_in))
        self._last = (rgb, key, lines)
        return lines

    @staticmethod
    def network_input(
        rgb: np.ndarray, max_side: int, upscale: float = 1.0, equalise: bool = False
    ) -> np.ndarray:
        """The detector's (1, 3, H, W) float32 input for an RGB image: resized by
        ``analysis_scale`` to sides that are multiples of 32 (the network downsamples by 32),
        optionally equalised, BGR scaled to [-1, 1]."""
        height, width = rgb.shape[:2]
        scale = analysis_scale(width, height, max_side, upscale)
        w_in = max(32, int(round(width * scale / 32)) * 32)
        h_in = max(32, int(round(height * scale / 32)) * 32)
        bgr = cv2.resize(
            rgb[..., ::-1], (w_in, h_in), interpolation=cv2.INTER_AREA if w_in < width else cv2.INTER_LINEAR
        )
        if equalise:
            bgr = equalised(bgr)
        return np.ascontiguousarray((bgr.astype(np.float32) * (2 / 255) - 1).transpose(2, 0, 1)[None])

    def _detect_text(self, x: np.ndarray, means: tuple | None = None) -> tuple[np.ndarray, tuple]:
        """The probability map of input ``x``, and the channel means its attention layers took.

        ``means`` (from an earlier whole image): take these instead of ``x``'s own, so that a
        crop is analysed with its frame's statistics, not the crop's (see ``det_models``)."""
        with self._lock:
            if means is None:
                out = self._det.run(None, {self._det.get_inputs()[0].name: x})
                return out[0], tuple(out[1:])
            if self._det_crop is None:
                self._det_crop = session(det_models()[1], self._device, self._threads)
            names = [i.name for i in self._det_crop.get_inputs()]
            return self._det_crop.run(None, dict(zip(names, (x, *means))))[0], means

    def read(self, rgb: np.ndarray, rects: np.ndarray) -> list[tuple[str, float]]:
        """Recognise the text of each rotated rect: (text, mean character confidence)."""
        out = []
        for rect in np.asarray(rects, np.float32).reshape(-1, 5):
            crop = upright_crop(rgb, rect)[..., ::-1]  # the recogniser reads BGR
            h, w = crop.shape[:2]
            w_in = int(min(960, max(16, math.ceil(_REC_HEIGHT * w / max(h, 1) / 8) * 8)))
            x = cv2.resize(crop, (w_in, _REC_HEIGHT)).astype(np.float32) * (2 / 255) - 1
            with self._lock:
                probs = self._rec.run(None, {self._rec.get_inputs()[0].name: x.transpose(2, 0, 1)[None]})[0][
                    0
                ]
            best = probs.argmax(1)
            conf = probs.max(1)
            keep = (best != 0) & np.r_[True, best[1:] != best[:-1]]
            text = "".join(self._chars[i] if i < len(self._chars) else "" for i in best[keep])
            out.append((text, float(conf[keep].mean()) if keep.any() else 0.0))
        return out


def shared_model(device: str = "auto", threads: int = 0) -> TextModel:
    """One ``TextModel`` per process and device: the text and plate detectors share it (kept
    in the detectors' one cache, emptied by ``blur.detectors.release``)."""
    return cached(("text-model", device, threads, runtime.share()), lambda: TextModel(threads, device))


class TextModelDetector(Detector):
    """A detector built on the shared PP-OCR text model (text lines, plates): the same
    options and the same weights."""

    @classmethod
    def options(cls, settings) -> dict:
        return {
            "max_side": settings.text_max_side,
            "every_n_frames": settings.text_every_n_frames,
            "device": settings.device,
        }

    @classmethod
    def weights(cls) -> tuple[str, list[Path]]:
        return MODELS["det"][0], [model_file(role) for role in ("det", "rec")]


class TextDetector(TextModelDetector):
    """Every line of text (signs, banners, badges, plates), for ``--text``.

    Args:
        max_side: the image is analysed with its long side at most this many pixels.
        box_thresh: minimum mean text probability of a line.
        pad: each line's box grows by this many line heights on every side.
        device: where ONNX Runtime runs the text model (see ``runtime.providers``).
    """

    name = "pptext"
    kind = "text"
    model_group = "ppocr"

    def __init__(
        self,
        max_side: int = 1280,
        box_thresh: float = 0.5,
        pad: float = 0.25,
        upscale: float = 2.0,
        every_n_frames: int = 1,
        device: str = "auto",
        **_ignored,
    ):
        self.max_side = max_side
        self.upscale = upscale
        self.box_thresh = box_thresh
        self.pad = pad
        self.every_n_frames = every_n_frames
        self._model = shared_model(device)

    def detect(self, image: np.ndarray, incremental: Callable | None = None) -> Detections:
        lines = self._model.find(image, self.max_side, self.box_thresh, self.upscale, incremental=incremental)
        return Detections.of(lines.xyxy(self.pad, self.pad), lines.score, "text")
