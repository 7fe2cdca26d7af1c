"""Offline tracking with gap filling, padding and hysteresis in time. It only ever adds boxes.

Trackers built for analytics hold back a detection until a track is confirmed, or drop boxes
they cannot match; that would leak faces. Here every confident detection (score at or above its
kind's redaction threshold) is part of some track (a single hit is a track of one frame), short
gaps between hits are bridged by interpolation, and every track is padded before its first and
after its last hit.

Detectors may also report *weak* detections (below the threshold). Linking is offline, so it
looks both ways: a chain of hits that contains a confident one is redacted in full, through its
weak hits before and after (hysteresis); a chain of weak hits only is redacted when it persists
for ``min_weak_hits`` frames. What is left, weak hits seen in fewer frames than that and linked
to no confident one, is not redacted: those are below the threshold, like any weak candidate in
a still photo.

A large face is seen clearly, so a detector that is unsure of a large box is almost always looking
at hair, a torso, a sign or a van: a face box at least ``LARGE_FACE_PX`` pixels and
``LARGE_FACE_SHARE`` of the frame tall needs ``LARGE_FACE_SCORE`` to count as confident. Below
that it is weak: redacted when it continues a confident track, but it does not count towards the
``min_weak_hits`` that make a chain of weak hits redacted on its own. Measured: on the labelled
photos (``benchmarks/recall.py``) and the generated clip (``benchmarks/video_recall.py``) no
covered face depends on such a box (at 80 px instead of 100, one out-of-focus 86 px face scoring
0.24 would be lost), while on real footage these boxes were the largest face regions: hair,
torsos and backgrounds in ``Megamind.avi`` (a median 22 % of each frame inside face masks, 17 %
with the rule), three walkers and a tripod under one 242x207 box in the sample
(``benchmarks/redacted_share.py``).

Nor does such a box continue a track across a cut (``cuts``, found by ``blur.shots``): next to
the face of one shot, it lies on another picture. On ``Megamind.avi`` such boxes on a woman's
hair continued the track of the man in the shot before, and his box was redacted through her
whole shot; with the rule the median share of a frame inside face masks falls from 19.5 % to
15.5 % (deface 17.8 %). Only that link is cut. Stopping padding at cuts as well, or every weak
link, was measured and dropped: on the generated clip of ``benchmarks/video_recall.py`` a 61 px
face entering at the frame's edge just after its cut and a 39 px one were covered in 2 and 1
frames only by boxes carried from the other shot, and lost them (both rules gain < 0.5 % of a
Megamind frame more).

A face cut by the frame's edge is seen in part, and the detector boxes the part it sees: on the
hand-held clip of ``benchmarks/video_recall.py`` a 56 px masked face with its eyes above the top
edge was boxed on its cheek and ear, 0.4 face widths beside its centre, for two frames as it left
and two as it came back in a fast pan (covered 0.50-0.68; along the edge, boxes of cut faces
are off by a median 0.11 widths, 0.04 inside the frame). Where its track saw it in the frames
around, moved as the picture moved, it still is: so a hit at the frame's edge is joined with
the same chain's hits up to ``EDGE_JOIN_SECONDS`` away, each carried to its frame with the
picture's motion (``blur.camera_motion``, fitted on the faces linked in consecutive frames).
Only boxes at the edge grow, and only ever grow. Measured (planned share of a frame inside the
masks, median / 95th percentile): hand-held clip 23.38/34.02 -> 23.44/34.13 %, panning clip
22.43/33.56 -> 22.96/35.73 %, ``samples/street.mp4`` 0.63/0.87 -> 0.63/0.88 %,
``Megamind.avi`` 16.72/38.61 % unchanged. Joining over five frames instead of two cost the
panning clip 1.4 points of its median for nothing more covered.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from .boxes import clip_xyxy, iou_matrix, non_empty
from .camera_motion import CameraMotion
from .types import Detections, Source, Track

# Linking: how far (in face sizes) a face may stray from where its track predicts it, after one
# frame; the reach grows with the square root of the frames it was unseen.
_REACH = 0.75
# A detection continues a track only if its size is within this factor of the track's.
_SIZE_RATIO = 1.6
# Velocity is taken from a track's last two hits when they are at most this many frames apart.
_VELOCITY_FRAMES = 3
# Face boxes this large (both in pixels and as a share of the frame's height) need this score
# to be confident; see the module docstring.
LARGE_FACE_PX = 100
LARGE_FACE_SHARE = 0.15
LARGE_FACE_SCORE = 0.5
# A box this close to the frame's edge (pixels) holds a face cut by it.
_EDGE_PX = 1.0
# A hit at the frame's edge is joined with its chain's hits this many seconds around it (two
# frames at 25 fps), carried with the picture's motion; see the module docstring.
EDGE_JOIN_SECONDS = 0.08


def unsure_large_faces(xyxy: np.ndarray, score: np.ndarray, frame_height: int | None) -> np.ndarray:
    """Which face boxes are large (``LARGE_FACE_PX`` and ``LARGE_FACE_SHARE`` of the frame's
    height, or more) yet score below ``LARGE_FACE_SCORE``; all False when the height is unknown."""
    if frame_height is None:
        return np.zeros(len(xyxy), dtype=bool)
    height = xyxy[:, 3] - xyxy[:, 1]
    large = (height >= LARGE_FACE_PX) & (height >= LARGE_FACE_SHARE * frame_height)
    return large & (score < LARGE_FACE_SCORE)


def _similarity(pred: np.ndarray, boxes: np.ndarray, frames_apart: np.ndarray) -> np.ndarray:
    """How well each detection continues each open track, from the box the track predicts for
    this frame: IoU, or for small or fast faces whose boxes no longer overlap a closeness score
    (centre distance relative to the face size). Zero when the sizes differ too much (a face
    does not double in size between frames; a neighbour in a crowd often does), and tracks
    seen recently win over tracks unseen for longer."""
    iou = iou_matrix(pred, boxes)
    c_pred = (pred[:, None, :2] + pred[:, None, 2:]) / 2
    c_new = (boxes[None, :, :2] + boxes[None, :, 2:]) / 2
    size_pred = np.maximum(pred[:, 2:] - pred[:, :2], 1).max(axis=1)[:, None]
    size_new = np.maximum(boxes[:, 2:] - boxes[:, :2], 1).max(axis=1)[None, :]
    dist = np.linalg.norm(c_pred - c_new, axis=2) / size_pred
    reach = _REACH * np.sqrt(frames_apart)[:, None]
    close = np.where(dist < reach, 0.5 * (1 - dist / reach), 0)
    ratio = np.maximum(size_new / size_pred, size_pred / size_new)
    sim = np.where(ratio <= _SIZE_RATIO, np.maximum(iou, close), 0)
    return sim / (1 + 0.1 * (frames_apart[:, None] - 1))


def _predicted(per_frame: list[Detections], chain: list[tuple[int, int]], f: int) -> np.ndarray:
    """Where a chain's object should be at frame ``f``: its last box moved at the velocity of
    its last two hits (when they are recent enough to trust)."""
    f1, d1 = chain[-1]
    last = per_frame[f1].xyxy[d1]
    if len(chain) < 2:
        return last
    f0, d0 = chain[-2]
    if f1 - f0 > _VELOCITY_FRAMES:
        return last
    centre_v = (
        ((last[:2] + last[2:]) - (per_frame[f0].xyxy[d0][:2] + per_frame[f0].xyxy[d0][2:])) / 2 / (f1 - f0)
    )
    return last + np.tile(centre_v * (f - f1), 2)


def link(
    per_frame: list[Detections],
    times: list[Fraction | None],
    max_gap_seconds: float,
    fps: float,
    cuts: list[int] | None = None,
    crosses: list[np.ndarray] | None = None,
) -> list[list[tuple[int, int]]]:
    """Group detections into chains of (frame index, detection index), one chain per object.

    A chain continues across at most ``max_gap_seconds`` without hits; a detection that
    continues no chain starts a new one, so every detection is in exactly one chain. Across a
    cut (``cuts``: the frames that start a new shot) a chain is continued only by a detection
    ``crosses`` allows (per frame, a boolean per detection; None: none).
    """
    max_gap = max(1, int(round(max_gap_seconds * fps)))
    starts = np.array(sorted({0, *(cuts or ())}), dtype=np.int64)
    chains: list[list[tuple[int, int]]] = []
    open_ids: list[int] = []
    for f, dets in enumerate(per_frame):
        open_ids = [c for c in open_ids if f - chains[c][-1][0] <= max_gap + 1]
        unmatched = set(range(len(dets)))
        if open_ids and len(dets):
            pred = np.stack([_predicted(per_frame, chains[c], f) for c in open_ids])
            apart = np.array([f - chains[c][-1][0] for c in open_ids], dtype=np.float32)
            sim = _similarity(pred, dets.xyxy, apart)
            kind_ok = np.array(
                [
                    [per_frame[chains[c][-1][0]].kind[chains[c][-1][1]] == k for k in dets.kind]
                    for c in open_ids
                ]
            )
            sim = np.where(kind_ok, sim, 0)
            shot = np.searchsorted(starts, f, side="right")
            earlier_shot = np.searchsorted(starts, [chains[c][-1][0] for c in open_ids], side="right") < shot
            may_cross = crosses[f] if crosses is not None else np.zeros(len(dets), dtype=bool)
            sim = np.where(earlier_shot[:, None] & ~may_cross[None, :], 0, sim)
            while True:
                t, d = np.unravel_index(np.argmax(sim), sim.shape)
                if sim[t, d] <= 0.05:
                    break
                chains[open_ids[t]].append((f, int(d)))
                unmatched.discard(int(d))
                sim[t, :] = 0
                sim[:, d] = 0
        for d in sorted(unmatched):
            chains.append([(f, d)])
            open_ids.append(len(chains) - 1)
    return chains


def build_tracks(
    per_frame: list[Detections],
    times: list[Fraction | None],
    fps: float,
    max_gap_seconds: float,
    pad_seconds: float,
    first_id: int = 1,
    thresholds: dict[str, float] | None = None,
    min_weak_hits: int = 3,
    size: tuple[int, int] | None = None,
    frame_height: int | None = None,
    cuts: list[int] | None = None,
) -> list[Track]:
    """Tracks covering every confident detection, bridged across short gaps, padded at both ends.

    Args:
        per_frame: detections of each frame, in frame order.
        times: presentation time of each frame (unused by the linking, kept for the report).
        fps: average frame rate, to turn seconds into frames.
        max_gap_seconds: longest run of missed frames that is bridged by interpolation.
        pad_seconds: how long before the first and after the last hit a track is redacted.
        first_id: id of the first track.
        thresholds: redaction threshold per kind; a detection scoring below its kind's is weak.
            Kinds not listed (and every kind when None) have no weak detections.
        min_weak_hits: a chain of weak hits only is redacted when it has at least this many
            (at least 2, so that a weak candidate in a still photo is never redacted alone).
        size: (width, height) of the frames. When given, every box is clipped to the full
            frame, and the frames where a padded box has moved wholly out of it are left out:
            a regions file never holds a box that lies outside the picture.
        frame_height: the frames' height in pixels, for the large-face rule (None: no rule).
        cuts: frames that start a new shot (see ``blur.shots``). Across a cut, a large face box
            at a low score (``unsure_large_faces``) does not continue a track of the shot before.
    """
    thresholds = thresholds or {}
    min_weak_hits = max(2, min_weak_hits)
    n_frames = len(per_frame)
    pad = int(round(pad_seconds * fps))
    tracks = []
    crosses = [~((d.kind == "face") & unsure_large_faces(d.xyxy, d.score, frame_height)) for d in per_frame]
    chains = link(per_frame, times, max_gap_seconds, fps, cuts, crosses)
    camera = camera_motion(per_frame, chains, size, cuts) if size is not None else None
    edge_reach = max(1, int(round(EDGE_JOIN_SECONDS * fps)))
    for chain in chains:
        hit_frames = np.array([f for f, _ in chain])
        hit_boxes = np.stack([per_frame[f].xyxy[d] for f, d in chain])
        hit_scores = np.array([per_frame[f].score[d] for f, d in chain], dtype=np.float32)
        kind = str(per_frame[chain[0][0]].kind[chain[0][1]])
        weak = hit_scores < thresholds.get(kind, -np.inf)
        unsure = (
            unsure_large_faces(hit_boxes, hit_scores, frame_height)
            if kind == "face"
            else np.zeros(len(chain), dtype=bool)
        )
        weak |= unsure
        if weak.all() and (~unsure).sum() < min_weak_hits:
            continue
        first, last = int(hit_frames[0]), int(hit_frames[-1])
        frames = np.arange(max(0, first - pad), min(n_frames - 1, last + pad) + 1)
        # Linear interpolation between hits; before the first and after the last, the end box
        # keeps moving as it moved over its last hits (a held box misses a face that walks on
        # or that a panning camera moves).
        xyxy = np.stack([np.interp(frames, hit_frames, hit_boxes[:, j]) for j in range(4)], axis=1)
        before, after = frames < first, frames > last
        xyxy[before] += (frames[before] - first)[:, None] * _end_velocity(hit_frames, hit_boxes, 0)
        xyxy[after] += (frames[after] - last)[:, None] * _end_velocity(hit_frames, hit_boxes, -1)
        score = np.zeros(len(frames), dtype=np.float32)
        padded, bridged = Source.PADDED.value, Source.INTERPOLATED.value
        source = np.where(frames < first, padded, np.where(frames > last, padded, bridged))
        idx = np.searchsorted(frames, hit_frames)
        # Several hits in one frame cannot happen within a chain; scores of hits are kept.
        score[idx] = hit_scores
        source[idx] = np.where(weak, Source.WEAK.value, Source.DETECTED.value)
        xyxy[idx] = hit_boxes
        if size is not None:
            xyxy[idx] = _joined_at_edges(hit_frames, hit_boxes, camera, size, edge_reach)
            xyxy = clip_xyxy(xyxy, *size)
            inside = non_empty(xyxy)
            if not inside.any():
                continue
            frames, xyxy = frames[inside], xyxy[inside]
            score, source = score[inside], source[inside]
        tracks.append(Track(first_id + len(tracks), kind, frames, xyxy, score, source))
    return tracks


def _end_velocity(hit_frames: np.ndarray, hit_boxes: np.ndarray, end: int) -> np.ndarray:
    """Per-frame motion (xyxy, the box's centre only) of a chain at its first (``end=0``) or last
    (``end=-1``) hit: a least-squares fit over the hits within ``_VELOCITY_FRAMES * 3`` frames of
    that end, zero with fewer than three such hits (too few to tell motion from jitter)."""
    near = np.abs(hit_frames - hit_frames[end]) <= 3 * _VELOCITY_FRAMES
    if near.sum() < 3:
        return np.zeros(4)
    t = hit_frames[near].astype(np.float64)
    centre = (hit_boxes[near, :2] + hit_boxes[near, 2:]) / 2
    t = t - t.mean()
    v = (t[:, None] * (centre - centre.mean(axis=0))).sum(axis=0) / (t**2).sum()
    return np.tile(v, 2)


def at_edge(xyxy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Which boxes reach the frame's edge (within ``_EDGE_PX``): faces cut by it."""
    xyxy = np.asarray(xyxy).reshape(-1, 4)
    width, height = size
    return (
        (xyxy[:, 0] <= _EDGE_PX)
        | (xyxy[:, 1] <= _EDGE_PX)
        | (xyxy[:, 2] >= width - _EDGE_PX)
        | (xyxy[:, 3] >= height - _EDGE_PX)
    )


def camera_motion(
    per_frame: list[Detections],
    chains: list[list[tuple[int, int]]],
    size: tuple[int, int] | None,
    cuts: list[int] | None = None,
) -> CameraMotion:
    """The picture's motion between consecutive frames, fitted on the hits that ``chains`` link
    in both (not across a cut, and not boxes cut by the frame's edge, whose centres move with
    what is visible of them); see ``blur.camera_motion``."""
    n = len(per_frame)
    starts = set(cuts or ())
    before: list[list[np.ndarray]] = [[] for _ in range(n)]
    after: list[list[np.ndarray]] = [[] for _ in range(n)]
    for chain in chains:
        for (f0, d0), (f1, d1) in zip(chain, chain[1:]):
            if f1 != f0 + 1 or f1 in starts:
                continue
            a, b = per_frame[f0].xyxy[d0], per_frame[f1].xyxy[d1]
            if size is not None and at_edge(np.stack([a, b]), size).any():
                continue
            before[f1].append(a)
            after[f1].append(b)
    pairs = [
        (np.array(b, np.float64).reshape(-1, 4), np.array(a, np.float64).reshape(-1, 4))
        for b, a in zip(before, after)
    ]
    return CameraMotion.fit(n, pairs)


def _joined_at_edges(
    hit_frames: np.ndarray, hit_boxes: np.ndarray, camera: CameraMotion, size: tuple[int, int], reach: int
) -> np.ndarray:
    """Each hit's box, joined (for hits at the frame's edge) with the boxes of the same chain's
    hits up to ``reach`` frames away, carried to its frame with the picture's motion."""
    out = hit_boxes.astype(np.float64).copy()
    for k in np.nonzero(at_edge(hit_boxes, size))[0]:
        f = int(hit_frames[k])
        for j in np.nonzero((np.abs(hit_frames - f) <= reach) & (hit_frames != f))[0]:
            box = camera.carry(hit_boxes[j], int(hit_frames[j]), f)
            out[k, :2] = np.minimum(out[k, :2], box[:2])
            out[k, 2:] = np.maximum(out[k, 2:], box[2:])
    return out


def flagged_frames(tracks: list[Track]) -> dict[str, list[int]]:
    """Frames a person should look at: where a track was bridged by interpolation
    (``bridged_frames``) and where a face was redacted on weak detections only (``weak_frames``).
    Tracks marked ``keep`` are left out."""
    bridged: set[int] = set()
    weak: set[int] = set()
    for t in tracks:
        if t.keep:
            continue
        bridged.update(int(f) for f in t.frames[t.source == Source.INTERPOLATED.value])
        weak.update(int(f) for f in t.frames[t.source == Source.WEAK.value])
    return {"bridged_frames": sorted(bridged), "weak_frames": sorted(weak)}


def boxes_at(tracks: list[Track], n_frames: int) -> list[Detections]:
    """Invert tracks into the boxes to redact in each frame (tracks marked ``keep`` excluded)."""
    rows: list[list[tuple[np.ndarray, float, str, int]]] = [[] for _ in range(n_frames)]
    for t in tracks:
        if t.keep:
            continue
        for f, box, s in zip(t.frames, t.xyxy, t.score):
            if 0 <= f < n_frames:
                rows[f].append((box, float(s), t.kind, t.id))
    out = []
    for r in rows:
        if not r:
            out.append(Detections.empty())
            continue
        out.append(
            Detections(
                np.stack([b for b, *_ in r]),
                [s for _, s, _, _ in r],
                [k for *_, k, _ in r],
                [i for *_, i in r],
            )
        )
    return out
