"""Which pass runs on which video frame, and where.

A video is not a pile of independent photos. Between two frames of a fixed camera most pixels
do not change, and the networks blur runs are fully convolutional: what they output for a place
depends on the pixels around it. So the costly passes run *incrementally*
(``blur.incremental.ChangeDrivenNetwork``, the kinds in ``INCREMENTAL_KINDS``): the face
detector's upscaled small-face pass (CenterFace's or RetinaFace's). The input is compared with
the input each tile was last analysed with, and the network runs only on windows around the
tiles that changed; its output maps are patched there and reused elsewhere. The detector's own
decoding (thresholds, NMS, calibration) then runs on the whole patched map as on a full pass, so
nothing downstream knows the difference. The face detector's large-face pass (the frame at most
640 px wide, a quarter of the small-face pass's pixels or less) runs in full on every frame: a
large face's score depends on pixels far from its centre, more context than a window around a
change carries (measured: patching it cost a 160 px face a frame on the panning clip of
``benchmarks/video_recall.py``; and on ``vtest.avi`` windows with even two tiles of context
would cover 88 % of its input, 96 % with three). Running it on every other frame only, the
tracker bridging the frames between, was measured and dropped too: on the panning clip a 39 px
face went unredacted for 2 frames and a 160 px one for 1 (faces of 20 px or more: coverage
1.000 -> 0.989). The text detector behind plates runs at its stride, not patched
(patched, it lost text lines a full pass finds, see ``INCREMENTAL_KINDS``) but re-run on
standalone crops around what changed, keeping earlier lines elsewhere (``blur.text_changes``).

Measured (``benchmarks/stages.py``, first 100 frames of ``vtest.avi``): the face network is
given 1.15 instead of 2.08 million pixels per frame (1.30 while one changed pixel made a tile
count), its small-face pass costing 196 ms CPU per frame instead of 233 (loaded machine, both
runs side by side); on the hand-held clip of ``benchmarks/video_recall.py --clip moving`` 2.75
(151 of 200 frames analysed in full: it moves), with the same coverage on both generated clips.

With ``Settings.follow_tracks`` (off by default), faces are also *followed*: a small face
seen on one of the last ``LOST_FRAMES`` frames that this frame's pass does not find near its
predicted box is looked for in a crop magnified so the face is ~40 px tall, where CenterFace
scores it much higher; what is found there is added. A face not found in its crop either makes its
neighbourhood count as changed, so the next frame analyses it again; the tracker bridges and
pads it meanwhile.

Why no face can hide in a skipped area (fail closed)
----------------------------------------------------
* **Same pixels, same detections; a face cannot appear where nothing changed; codec noise,
  measured; global change forces a full pass**: see ``blur.incremental``, which patches a
  network's output maps only where the input did not change.
* **Keyframes.** Every incremental pass runs in full at least every ``keyframe_seconds`` (sooner
  the more of the picture moves), which bounds how long any approximation can last.
* **Only ever adds.** Followed faces add boxes; nothing here removes one. A frame that fails to
  be analysed resets the failing detector's passes (its next frame is analysed in full), and
  the frame itself is never written unredacted (see ``blur.pipeline``).
* **Side by side, same result.** In a video scan (``Schedule.detect_all``) the face detector
  and the text detector run on threads of their own, each taking the frames in order with its
  own state, so each finds on each frame exactly what it finds one after the other (tested on
  the sample clip); only the order in time changes.

``Settings.analyse = "every-frame"`` (``--analyse every-frame``) analyses every frame in full
(the text detector and the small-face pass at their strides, as before) and
``Settings.follow_tracks = False`` stops following: both together are the plain per-frame scan.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import text_changes
from .boxes import clip_xyxy, iou_matrix
from .errors import DetectionError
from .incremental import FULL_SHARE, NOISE_LEVELS, TILE, ChangeDrivenNetwork, Forward
from .types import Detections, Frame

__all__ = ["FULL_SHARE", "NOISE_LEVELS", "TILE", "ChangeDrivenNetwork", "Schedule"]

# Kinds whose detectors run incrementally. Not the text detector behind plates and text: its
# map is not local enough for a window with two tiles of context (``benchmarks/change.py
# --text``, first 45 frames of vtest.avi: 83 % of the input, largest map difference 1.0, 48 of
# 109 text lines a full pass finds lost, one scoring 0.93), and a missed plate is a leak.
INCREMENTAL_KINDS = ("face",)

# Faces followed by ``Schedule.follow`` are looked for this many frames after they were last
# seen (the tracker bridges up to ``max_gap_seconds`` anyway; beyond a few frames the predicted
# box is a guess).
LOST_FRAMES = 3
# Only faces up to this tall are followed: magnifying helps small faces, which fall below the
# threshold; a large face's crop would hold part of it, and a partial box could steal the
# track's link from the right one (measured on the panning clip: a 160 px face lost a frame).
FOLLOW_MAX_PX = 48
# ``Schedule.detect_all``: a group of detectors runs at most this many frames ahead of the
# slowest (the text detector's frames take longer than a face pass, and come every few frames).
AHEAD_FRAMES = 6
_SIZE_RATIO = 1.5  # a crop's box continues a followed face only within this size factor


class Live:
    """A face seen recently: its last box, its motion per frame, frames since it was seen."""

    def __init__(self, xyxy: np.ndarray, velocity: np.ndarray | None = None, unseen: int = 0):
        self.xyxy = np.asarray(xyxy, np.float32)
        self.velocity = np.zeros(2, np.float32) if velocity is None else velocity
        self.unseen = unseen

    def predicted(self) -> np.ndarray:
        """Where it should be on the next frame (constant velocity)."""
        return self.xyxy + np.tile(self.velocity * (self.unseen + 1), 2)


def _near(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Which of ``others`` have their centre within ``box`` grown by half its size (the same
    face, moved a little)."""
    others = np.asarray(others, np.float32).reshape(-1, 4)
    centre = (box[:2] + box[2:]) / 2
    half = np.maximum(box[2:] - box[:2], 1.0)
    mid = (others[:, :2] + others[:, 2:]) / 2
    return (np.abs(mid - centre) <= half).all(axis=1)


def _continues(predicted: np.ndarray, boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Which boxes found in crops continue a followed face: near its predicted box, of a size
    within ``_SIZE_RATIO`` of it, and not a face this frame's pass already has (a neighbour in
    a crowd: a second box on it could take the followed face's place in the tracker)."""
    keep = np.zeros(len(boxes), dtype=bool)
    for k, box in enumerate(np.asarray(boxes, np.float32).reshape(-1, 4)):
        height = box[3] - box[1]
        sizes = predicted[:, 3] - predicted[:, 1]
        ratio = np.maximum(height / np.maximum(sizes, 1), sizes / max(height, 1))
        fits = _near_any(predicted, box) & (ratio <= _SIZE_RATIO)
        taken = len(others) and (iou_matrix(box[None], others)[0] >= 0.3).any()
        keep[k] = bool(fits.any()) and not taken
    return keep


def _near_any(predicted: np.ndarray, box: np.ndarray) -> np.ndarray:
    return np.array([_near(p, box[None])[0] for p in predicted], dtype=bool)


def _update(live: list[Live], predicted: np.ndarray, found: Detections, threshold: float) -> list[Live]:
    """The faces to follow on the next frame: confident faces found now (velocity from the
    followed face each continues), and followed faces unseen for at most ``LOST_FRAMES``."""
    faces = found.xyxy[(found.kind == "face") & (found.score >= threshold)]
    out, used = [], set()
    for box in faces:
        match = None
        for k in range(len(live)):
            if k not in used and _near(predicted[k], box[None])[0]:
                match = k
                break
        if match is None:
            out.append(Live(box))
            continue
        used.add(match)
        old = live[match]
        moved = ((box[:2] + box[2:]) - (old.xyxy[:2] + old.xyxy[2:])) / 2 / (old.unseen + 1)
        out.append(Live(box, moved.astype(np.float32)))
    for k, old in enumerate(live):
        if k not in used and old.unseen < LOST_FRAMES:
            out.append(Live(old.xyxy, old.velocity, old.unseen + 1))
    return out


def _takes(det, name: str) -> bool:
    """Does ``det.detect`` (the instance's, which a wrapper may have replaced) take ``name``?"""
    return name in inspect.signature(det.detect).parameters


class Schedule:
    """What each detector analyses on each frame of one video.

    Args:
        detectors: the detectors, in the order their results are concatenated.
        strides: per detector, every how many frames it runs (see ``pipeline.frame_stride``).
        small_every: every how many frames a face detector's small-face pass runs.
        fps: the video's average frame rate.
        analyse: "changes" (incremental, see the module docstring) or "every-frame".
        keyframe_seconds: longest time between two full passes of each network.
        follow: look again, in a magnified crop, for each recently seen face the whole-frame
            pass did not find on this frame (see ``follow``).
    """

    def __init__(
        self,
        detectors: list,
        strides: list[int],
        small_every: int,
        fps: float,
        analyse: str = "changes",
        keyframe_seconds: float = 2.0,
        follow: bool = True,
    ):
        self.detectors = detectors
        self.follow_tracks = follow
        self.live: dict[int, list[Live]] = {}  # per face detector: faces seen recently
        self.crops = 0  # magnified crops looked at (for benchmarks)
        self.strides = strides
        self.small_every = small_every
        self.incremental = analyse == "changes"
        self.keyframe_frames = max(1, int(round(keyframe_seconds * fps)))
        self.networks: dict[tuple, ChangeDrivenNetwork] = {}
        self.text = text_changes.TextPasses(self.keyframe_frames)  # the text detector's passes
        self.last_full: dict[tuple, int] = {}  # frame of each pass's last full analysis
        # Per detector: (picture version, small faces included, result), reused on a repeat of
        # the same picture (a frozen or duplicated frame) instead of analysing it again.
        self.memo: dict[int, tuple[int, bool, Detections]] = {}
        self.version, self.previous = 0, None

    def detect(self, image: np.ndarray, index: int, last: bool) -> Detections:
        """Everything the detectors find in frame ``index`` (``last``: the video's final frame,
        where strided passes also run, so something that appears in the final skipped frames is
        found and padded back).

        Raises:
            DetectionError: a detector failed or returned garbage; every pass then starts again
                from a full analysis.
        """
        version, small = self._picture(image, index, last)
        try:
            parts = [self._detect_one(i, image, index, version, small) for i in self._running(index, last)]
        except DetectionError:
            self.reset()
            raise
        return Detections.concat(parts)

    def detect_all(self, frames: Iterable[tuple[Frame, bool]], ahead: int = AHEAD_FRAMES):
        """``detect`` on every (frame, is last) pair, in order, the detectors running side by
        side: each group of detectors (``_group``) on its own thread, up to ``ahead`` frames
        before the slowest one. Yields (frame, is last, its ``Detections``, or the
        ``DetectionError`` that stopped it: the failing group then starts again from a full
        analysis; the other groups' state is sound, they analysed the frame).

        Why: ONNX Runtime spreads one network over the cores, but not evenly (small layers,
        Python between runs), and the text detector runs on some frames only; run one after the
        other, the passes left a core idle much of the time.
        """
        members_of = {_group(self.detectors[m[0]]): m for m in groups(self.detectors)}
        workers = {g: ThreadPoolExecutor(1, thread_name_prefix=f"blur-{g}") for g in members_of}
        pending: deque = deque()
        try:
            for frame, last in frames:
                version, small = self._picture(frame.image, frame.index, last)
                running = set(self._running(frame.index, last))
                args = (running, frame.image, frame.index, version, small)
                jobs = [
                    workers[g].submit(self._detect_group, members, *args)
                    for g, members in members_of.items()
                    if running.intersection(members)
                ]
                pending.append((frame, last, jobs))
                while pending and (len(pending) > ahead or all(j.done() for j in pending[0][2])):
                    yield _collected(*pending.popleft())
            while pending:
                yield _collected(*pending.popleft())
        finally:
            for worker in workers.values():
                worker.shutdown(wait=True, cancel_futures=True)

    def _picture(self, image: np.ndarray, index: int, last: bool) -> tuple[int, bool]:
        """The picture's version (a repeat of the previous picture keeps it) and whether the
        small-face pass runs on it. Called once per frame, in order."""
        if self.previous is None or not np.array_equal(self.previous, image):
            self.version += 1
        self.previous = image
        return self.version, last or index % self.small_every == 0

    def _running(self, index: int, last: bool) -> list[int]:
        """The detectors that run on frame ``index`` (at their strides; all on the last)."""
        return [i for i, n in enumerate(self.strides) if last or index % n == 0]

    def _detect_group(self, members, running, image, index: int, version: int, small: bool) -> list:
        """One group's detections on one frame (its detectors in order); on a failure, that
        group's passes start again from a full analysis."""
        try:
            return [(i, self._detect_one(i, image, index, version, small)) for i in members if i in running]
        except DetectionError:
            self.reset(members)
            raise

    def _detect_one(self, i: int, image: np.ndarray, index: int, version: int, small: bool) -> Detections:
        det = self.detectors[i]
        hit = self.memo.get(i)
        if hit is not None and hit[0] == version and (hit[1] or not small):
            return hit[2]
        found = self._run(i, det, image, index, small)
        if self.follow_tracks and hasattr(det, "look_around"):
            found = self.follow(i, det, image, index, found)
        self.memo[i] = (version, small or not det.small_face_pass, found)
        return found

    def reset(self, members=None) -> None:
        """Forget the passes' state (of detectors ``members``; None: all): the next frame is
        analysed in full."""
        members = range(len(self.detectors)) if members is None else members
        for (j, _), net in list(self.networks.items()):
            if j in members:
                net.reset()
        self.text.reset(members)
        for i in members:
            self.memo.pop(i, None)
            self.live.pop(i, None)
        if len(members) == len(self.detectors):
            self.previous = None

    def follow(self, i: int, det, image: np.ndarray, index: int, found: Detections) -> Detections:
        """Track-guided re-detection: each face seen in the last ``LOST_FRAMES`` frames that
        this frame's pass did not find near where it should be is looked for in a crop
        magnified around its predicted box (``det.look_around``); what is found there is added
        (only ever added: the tracker bridges and pads the rest). A face not found in its crop
        either makes its neighbourhood count as changed, so the next frame analyses it again.
        """
        live = self.live.get(i, [])
        predicted = np.array([f.predicted() for f in live], np.float32).reshape(-1, 4)
        missing = [
            k
            for k in range(len(live))
            if predicted[k, 3] - predicted[k, 1] <= FOLLOW_MAX_PX
            and not _near(predicted[k], found.xyxy[found.kind == "face"]).any()
        ]
        if missing:
            self.crops += len(missing)
            try:
                extra = det.look_around(image, predicted[missing])
            except DetectionError:
                raise
            except Exception as exc:  # fail closed, as for the whole-frame pass
                raise DetectionError(f"{det.name} failed on a track's crop: {exc}") from exc
            if not isinstance(extra, Detections) or not extra.validate():
                raise DetectionError(f"{det.name} returned invalid boxes in a track's crop")
            extra.xyxy = clip_xyxy(extra.xyxy, image.shape[1], image.shape[0])
            extra = extra[_continues(predicted[missing], extra.xyxy, found.xyxy)]
            for k in missing:
                if not _near(predicted[k], extra.xyxy).any():
                    self._recheck(i, predicted[k], image.shape)
            found = Detections.concat([found, extra])
        self.live[i] = _update(live, predicted, found, getattr(det, "threshold", 0.0))
        return found

    def _recheck(self, i: int, xyxy: np.ndarray, shape: tuple) -> None:
        """Make the area around a lost face count as changed for detector ``i``'s passes."""
        for (j, _), net in list(self.networks.items()):
            if j == i:
                net.invalidate(xyxy, shape[1], shape[0])

    def _run(self, i: int, det, image: np.ndarray, index: int, small: bool) -> Detections:
        """``det.run`` (which fails closed and clips the boxes), given the incremental
        analysis where the detector takes it."""
        kwargs = {}
        if self.incremental and det.kind in INCREMENTAL_KINDS and _takes(det, "incremental"):
            kwargs["incremental"] = lambda key, forward, levels=1.0: self._network(
                (i, key), forward, levels, index
            )
        elif self.incremental and det.kind in text_changes.KINDS and _takes(det, "incremental"):
            kwargs["incremental"] = self.text.hook(i, index)
        return det.run(image, small, **kwargs)

    def _network(self, key: tuple, forward: Forward, levels: float, index: int) -> ChangeDrivenNetwork:
        net = self.networks.get(key)
        if net is None:
            net = self.networks[key] = ChangeDrivenNetwork(forward, levels)
        net.forward = forward
        # Keyframes come sooner the more of the picture moves: after keyframe_frames frames
        # of a still picture, after half as many when half the picture keeps changing.
        due = self.keyframe_frames * (1.0 - min(net.last_share, FULL_SHARE))
        if index - self.last_full.get(key, index) >= due:
            net.full_next = True
        if net.full_next or key not in self.last_full:
            self.last_full[key] = index
        return net

    def stats(self) -> dict[str, int]:
        """Input pixels and full passes per network pass (for benchmarks and logs)."""
        return {f"{k}": (n.pixels, n.full_passes) for k, n in self.networks.items()}


def _group(det) -> str:
    """Detectors that share a model run on one thread, one after the other: the text detector
    behind plates and text reuses its lines for a second kind on the same picture."""
    return det.model_group or f"{det.name}-{id(det)}"


def groups(found_by: list) -> list[list[int]]:
    """The detectors' indices by group (``_group``), in order of first appearance."""
    out: dict[str, list[int]] = {}
    for i, det in enumerate(found_by):
        out.setdefault(_group(det), []).append(i)
    return list(out.values())


def _collected(frame: Frame, last: bool, jobs: list) -> tuple:
    """(frame, last, its detections in detector order, or the DetectionError that stopped one)."""
    parts: list[tuple[int, Detections]] = []
    for job in jobs:
        try:
            parts.extend(job.result())
        except DetectionError as exc:
            return frame, last, exc
    return frame, last, Detections.concat([found for _, found in sorted(parts, key=lambda p: p[0])])
