"""Offline tracking with gap filling and padding. It only ever adds boxes.

Trackers built for analytics hold back a detection until a track is confirmed, or drop boxes
they cannot match; that would leak faces. Here every raw detection is part of some track (a
single hit is a track of one frame), short gaps between hits are bridged by interpolation, and
every track is padded before its first and after its last hit.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from .boxes import iou_matrix
from .types import Detections, Track


def _similarity(prev: np.ndarray, boxes: np.ndarray, frames_apart: np.ndarray) -> np.ndarray:
    """How well each detection continues each open track: IoU, or a closeness score for small or
    fast faces whose boxes no longer overlap (centre distance relative to the box size)."""
    iou = iou_matrix(prev, boxes)
    c_prev = (prev[:, None, :2] + prev[:, None, 2:]) / 2
    c_new = (boxes[None, :, :2] + boxes[None, :, 2:]) / 2
    size = np.maximum(prev[:, 2:] - prev[:, :2], 1).max(axis=1)[:, None]
    dist = np.linalg.norm(c_prev - c_new, axis=2) / size
    # Allow more motion the longer the track was unseen.
    reach = 0.75 * np.sqrt(frames_apart)[:, None]
    close = np.where(dist < reach, 0.5 * (1 - dist / reach), 0)
    return np.maximum(iou, close)


def link(per_frame: list[Detections], times: list[Fraction | None], max_gap_seconds: float,
         fps: float) -> list[list[tuple[int, int]]]:
    """Group detections into chains of (frame index, detection index), one chain per object.

    A chain continues across at most ``max_gap_seconds`` without hits; a detection that
    continues no chain starts a new one, so every detection is in exactly one chain.
    """
    max_gap = max(1, int(round(max_gap_seconds * fps)))
    chains: list[list[tuple[int, int]]] = []
    open_ids: list[int] = []
    for f, dets in enumerate(per_frame):
        open_ids = [c for c in open_ids if f - chains[c][-1][0] <= max_gap + 1]
        unmatched = set(range(len(dets)))
        if open_ids and len(dets):
            prev = np.stack([per_frame[chains[c][-1][0]].xyxy[chains[c][-1][1]] for c in open_ids])
            apart = np.array([f - chains[c][-1][0] for c in open_ids], dtype=np.float32)
            sim = _similarity(prev, dets.xyxy, apart)
            kind_ok = np.array([[per_frame[chains[c][-1][0]].kind[chains[c][-1][1]] == k
                                 for k in dets.kind] for c in open_ids])
            sim = np.where(kind_ok, sim, 0)
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


def build_tracks(per_frame: list[Detections], times: list[Fraction | None], fps: float,
                 max_gap_seconds: float, pad_seconds: float, first_id: int = 1) -> list[Track]:
    """Tracks covering every detection, bridged across short gaps and padded at both ends.

    Args:
        per_frame: detections of each frame, in frame order.
        times: presentation time of each frame (unused by the linking, kept for the report).
        fps: average frame rate, to turn seconds into frames.
        max_gap_seconds: longest run of missed frames that is bridged by interpolation.
        pad_seconds: how long before the first and after the last hit a track is redacted.
        first_id: id of the first track.
    """
    n_frames = len(per_frame)
    pad = int(round(pad_seconds * fps))
    tracks = []
    for chain in link(per_frame, times, max_gap_seconds, fps):
        hit_frames = np.array([f for f, _ in chain])
        hit_boxes = np.stack([per_frame[f].xyxy[d] for f, d in chain])
        hit_scores = np.array([per_frame[f].score[d] for f, d in chain], dtype=np.float32)
        kind = str(per_frame[chain[0][0]].kind[chain[0][1]])
        first, last = int(hit_frames[0]), int(hit_frames[-1])
        frames = np.arange(max(0, first - pad), min(n_frames - 1, last + pad) + 1)
        # Linear interpolation between hits; held constant before the first and after the last.
        xyxy = np.stack([np.interp(frames, hit_frames, hit_boxes[:, j]) for j in range(4)], axis=1)
        score = np.zeros(len(frames), dtype=np.float32)
        source = np.where(frames < first, "padded", np.where(frames > last, "padded", "interpolated"))
        idx = np.searchsorted(frames, hit_frames)
        # Several hits in one frame cannot happen within a chain; scores of hits are kept.
        score[idx] = hit_scores
        source[idx] = "detected"
        xyxy[idx] = hit_boxes
        tracks.append(Track(first_id + len(tracks), kind, frames, xyxy, score, source))
    return tracks


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
        out.append(Detections(np.stack([b for b, *_ in r]), [s for _, s, _, _ in r],
                              [k for *_, k, _ in r], [i for *_, i in r]))
    return out
