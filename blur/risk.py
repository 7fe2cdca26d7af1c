"""Which tracks a person should look at first, and why: the plan's tracks ranked by the risk
each one carries for the publication.

A review that lists every bridged or weak frame lists most tracks of a busy clip, and the few
that matter drown in it. The ranking puts first, in this order:

1. *Large weak regions*: a box whose share of the frame, times its weakness (1 - best score),
   is at least ``LARGE_SHARE``. A large face is seen clearly, so a large box at a weak score is
   rarely a face, and its mask blanks a large part of the picture (bystanders, a sign). A plate
   or text score says there is text, not that the text is a plate, so those count as fully weak:
   a plate box that covers a large part of the frame is worth a look whatever its score.
2. *Long bridges*: a track not detected for at least ``LONG_BRIDGE_SECONDS`` in a row, its box
   interpolated between two detections. The longer the face went unseen, the further it may have
   strayed from the straight line the box follows: the likeliest place for a leak.
3. *Weak only*: a track that no detection reached the redaction threshold in: perhaps not a face
   at all, perhaps a face the detector barely sees (and may miss in the frames around it).

Within a rank, the larger measure (share x weakness, seconds unseen, frames) comes first. At
most ``SHORT_LIST`` of those tracks make the short list; the rest follow them, then tracks with
shorter bridges or some weak frames, then the others. Kept and hand-drawn tracks are a person's
own decisions and come last. Ranking only orders what a person looks at: no track is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .types import FLAGGED, HITS

# Share of the frame x weakness from which a region is "large". On samples/street.mp4 the two
# false giants (a face box over three walkers, a "plate" on a sign) measure 0.098 and 0.038; no
# other track reaches 0.006.
LARGE_SHARE = 0.01
LONG_BRIDGE_SECONDS = 0.5  # two thirds of the default longest bridge (0.75 s)
SHORT_LIST = 5  # tracks in "check these first": a handful a person actually opens
SCORE_IS_CONFIDENCE = {"face"}  # kinds whose score says how sure the detector is of the *kind*

# Ranks, riskiest first.
LARGE, LONG_BRIDGE, WEAK_ONLY, SOME_FLAGGED, NOTHING, DECIDED = range(6)
SHORT = {LARGE: "large", LONG_BRIDGE: "long gap", WEAK_ONLY: "weak only"}


@dataclass
class Risk:
    """How much a person should worry about one track, and why.

    Attributes:
        track: the track's id.
        kind: the track's kind.
        rank: ``LARGE`` (riskiest) to ``DECIDED``.
        measure: orders tracks of the same rank, larger first.
        share: largest share of the frame one of its boxes covers (clipped to the frame).
        weakness: 1 - best detection score (1 for kinds whose score is not a confidence).
        bridge: (first frame, last frame, seconds) of its longest bridge, or None.
        reasons: why it is on the list, in words, riskiest first.
        at: seconds into the video where the reason is seen (None for a photo).
    """

    track: int
    kind: str
    rank: int
    measure: float
    share: float
    weakness: float
    bridge: tuple[int, int, float] | None
    reasons: list[str] = field(default_factory=list)
    at: float | None = None

    @property
    def check_first(self) -> bool:
        """Does it belong in the short list (if there is room)?"""
        return self.rank in SHORT

    def label(self) -> str:
        """A few words for a table cell: "#83 large at 4.9 s", "#12 gap 0.8 s at 1.3 s" (a
        track id means something in the regions file; the time, in the video itself)."""
        what = f"gap {self.bridge[2]:.1f} s" if self.rank == LONG_BRIDGE else SHORT.get(self.rank, "")
        where = f" at {self.at:.1f} s" if self.at is not None else ""
        return f"#{self.track} {what}{where}" if what else f"#{self.track}"


def _share(track, width: int, height: int) -> tuple[float, int]:
    """(largest share of the frame one box of ``track`` covers, clipped to the frame; its
    frame)."""
    if not len(track) or width <= 0 or height <= 0:
        return 0.0, 0
    box = np.clip(track.xyxy.astype(np.float64), 0, [width, height, width, height])
    wh = np.clip(box[:, 2:] - box[:, :2], 0, None)
    area = wh[:, 0] * wh[:, 1]
    row = int(np.argmax(area))
    return float(area[row] / (width * height)), int(track.frames[row])


def _longest_bridge(track, times: list[float] | None) -> tuple[int, int, float] | None:
    """(first, last, seconds) of the longest run of interpolated frames. The seconds run from
    the bridge's first frame to the detection after it (the time the box was not seen)."""
    best = None
    frames = [int(f) for f, s in zip(track.frames, track.source) if s == "interpolated"]
    runs: list[list[int]] = []
    for f in frames:
        if runs and f == runs[-1][1] + 1:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    for a, b in runs:
        seconds = 0.0
        if times:  # a bridge always ends at a detection, in frame b + 1
            seconds = times[min(b + 1, len(times) - 1)] - times[a]
        if best is None or (seconds, b - a) > (best[2], best[1] - best[0]):
            best = (a, b, float(seconds))
    return best


def _when(a: int, b: int) -> str:
    return f"frame {a}" if a == b else f"frames {a}–{b}"


def assess(track, width: int, height: int, times: list[float] | None = None) -> Risk:
    """The risk of one track of a ``width`` x ``height`` picture; ``times`` are the seconds of
    each frame (None for a photo)."""
    src = track.source
    hits = np.isin(src, HITS)
    best = float(track.score[hits].max()) if hits.any() else 0.0
    weakness = 1.0 - best if track.kind in SCORE_IS_CONFIDENCE else 1.0
    share, largest = _share(track, width, height)
    bridge = _longest_bridge(track, times)
    risk = Risk(int(track.id), track.kind, NOTHING, 0.0, share, weakness, bridge)
    if track.keep or track.kind == "manual" or not hits.any():
        risk.rank = DECIDED
        return risk
    n_weak = int((src == "weak").sum())
    weak_only = n_weak > 0 and not (src == "detected").any()
    candidates = []
    if share * weakness >= LARGE_SHARE:
        score = f"at score {best:.2f}"
        if track.kind not in SCORE_IS_CONFIDENCE:
            score += f" (for a {track.kind}, the score says there is text, not what it is)"
        candidates.append(
            (
                LARGE,
                share * weakness,
                f"a large region: covers {100 * share:.1f} % of the frame {score}",
                largest,
            )
        )
    if bridge and bridge[2] >= LONG_BRIDGE_SECONDS:
        candidates.append(
            (
                LONG_BRIDGE,
                bridge[2],
                f"not detected for {bridge[2]:.1f} s ({_when(bridge[0], bridge[1])}): "
                f"the box is interpolated",
                bridge[0],
            )
        )
    if weak_only:
        candidates.append(
            (
                WEAK_ONLY,
                float(n_weak),
                f"only weak detections (best score {best:.2f})",
                int(track.frames[src == "weak"][0]),
            )
        )
    if not candidates and (bridge or n_weak):
        parts = []
        if bridge:
            parts.append(f"longest bridge {bridge[2]:.1f} s")
        if n_weak:
            parts.append(f"{n_weak} weak frame(s)")
        candidates.append(
            (
                SOME_FLAGGED,
                float((src == "interpolated").sum() + n_weak),
                ", ".join(parts),
                int(track.frames[np.isin(src, FLAGGED)][0]),
            )
        )
    if candidates:
        risk.rank, risk.measure, _, frame = min(candidates, key=lambda c: (c[0], -c[1]))
        risk.at = times[frame] if times else None
        risk.reasons = [c[2] for c in sorted(candidates, key=lambda c: c[0])]
    return risk


def frame_seconds(plan) -> list[float] | None:
    """Seconds from the first frame to each frame (None for a photo)."""
    if plan.info.kind != "video":
        return None
    stored = plan.frame_times
    if stored and len(stored) == plan.frame_count and all(t is not None for t in stored):
        return [float(t - stored[0]) for t in stored]
    fps = float(plan.info.fps or 25)
    return [i / fps for i in range(plan.frame_count)]


def rank(tracks, width: int, height: int, times: list[float] | None = None) -> list[Risk]:
    """Every track's risk, riskiest first (then by id)."""
    risks = [assess(t, width, height, times) for t in tracks]
    return sorted(risks, key=lambda r: (r.rank, -r.measure, r.track))


def short_list(ranked: list[Risk], limit: int = SHORT_LIST) -> list[Risk]:
    """The tracks to check first: at most ``limit`` of the riskiest that have a reason to be."""
    return [r for r in ranked if r.check_first][:limit]


def rank_plan(plan) -> list[Risk]:
    """``rank`` of a scan's plan (``blur.types.Plan``)."""
    return rank(plan.tracks, plan.info.width, plan.info.height, frame_seconds(plan))
