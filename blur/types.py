"""The vocabulary: detections, tracks, frames, media facts, plans and results. No I/O here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from pathlib import Path

import numpy as np

# What can be redacted: every kind a detector finds (``blur.detectors.KINDS``) and "manual", a
# region a person drew. Kept in step with the detector registry by a test.
KINDS = ("face", "plate", "text", "manual")


class Source(str, Enum):
    """Where a track's box at one frame comes from (stored as its plain string value).

    Attributes:
        DETECTED: a detection at or above the redaction threshold.
        WEAK: a detection below it, redacted because it continues or repeats a track.
        INTERPOLATED: a gap between two detections, bridged.
        PADDED: before a track's first or after its last detection.
        MANUAL: drawn by a person in the regions file.
    """

    DETECTED = "detected"
    WEAK = "weak"
    INTERPOLATED = "interpolated"
    PADDED = "padded"
    MANUAL = "manual"

    def __str__(self) -> str:
        return self.value


SOURCES = tuple(s.value for s in Source)
# The sources of boxes a detector returned (as opposed to boxes tracking or a person added).
HITS = (Source.DETECTED.value, Source.WEAK.value)
# The sources of frames a person should look at first.
FLAGGED = (Source.INTERPOLATED.value, Source.WEAK.value)

# on_progress(stage, done, total): stage is "scan" or "render"; total may be 0 when unknown.
ProgressFn = Callable[[str, int, int], None]


@dataclass
class Detections:
    """A set of boxes in one image, vectorised (like supervision's ``Detections``).

    Attributes:
        xyxy: (N, 4) float32 pixel corners in display orientation; x2/y2 are exclusive.
        score: (N,) float32 detector confidence in [0, 1].
        kind: (N,) str, one of ``KINDS``.
        track_id: (N,) int32, -1 when the box belongs to no track.
    """

    xyxy: np.ndarray
    score: np.ndarray
    kind: np.ndarray
    track_id: np.ndarray

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(self.xyxy)
        self.score = np.asarray(self.score, dtype=np.float32).reshape(n)
        self.kind = np.asarray(self.kind, dtype="<U8").reshape(n)
        self.track_id = np.asarray(self.track_id, dtype=np.int32).reshape(n)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, "<U8"), np.zeros(0))

    @classmethod
    def of(cls, xyxy, score, kind: str) -> Detections:
        """Boxes of one kind, not yet tracked."""
        xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(xyxy)
        return cls(xyxy, score, np.full(n, kind, dtype="<U8"), np.full(n, -1, dtype=np.int32))

    @classmethod
    def concat(cls, parts: list[Detections]) -> Detections:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.score for p in parts]),
            np.concatenate([p.kind for p in parts]),
            np.concatenate([p.track_id for p in parts]),
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index) -> Detections:
        """Index with a boolean mask, an index array or a slice; always returns Detections."""
        if isinstance(index, (int, np.integer)):
            index = [index]
        return Detections(self.xyxy[index], self.score[index], self.kind[index], self.track_id[index])

    def validate(self) -> bool:
        """Finite scores and finite, non-inverted boxes: an inverted box would redact nothing,
        and a NaN score could drop a box from a threshold or NMS."""
        try:
            xyxy = np.asarray(self.xyxy, dtype=np.float64).reshape(-1, 4)
            score = np.asarray(self.score, dtype=np.float64).reshape(len(xyxy))
        except (TypeError, ValueError):
            return False
        return bool(
            np.isfinite(xyxy).all()
            and np.isfinite(score).all()
            and (xyxy[:, 2] >= xyxy[:, 0]).all()
            and (xyxy[:, 3] >= xyxy[:, 1]).all()
        )

    @property
    def size_wh(self) -> np.ndarray:
        """(N, 2) width and height in pixels."""
        return self.xyxy[:, 2:] - self.xyxy[:, :2]

    @property
    def area(self) -> np.ndarray:
        wh = np.clip(self.size_wh, 0, None)
        return wh[:, 0] * wh[:, 1]


@dataclass
class Frame:
    """One decoded picture, upright.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        index: 0-based position in decode order.
        time: presentation time in seconds, from the PTS (None for stills).
    """

    image: np.ndarray
    index: int = 0
    time: Fraction | None = None


@dataclass
class MediaInfo:
    """Facts about one input file, as found before processing.

    Attributes:
        path: the file.
        kind: "image" or "video".
        width / height: upright (display) size in pixels.
        fps: average frame rate as an exact fraction (videos).
        frame_count: number of frames (1 for stills; for videos an estimate until decoded).
        duration: seconds (videos).
        rotation: degrees the stored pictures are turned to display upright.
        audio_streams: codec names of the audio streams.
        metadata_found: identifying metadata keys seen in the input (reported, never copied).
    """

    path: Path
    kind: str
    width: int
    height: int
    fps: Fraction | None = None
    frame_count: int = 1
    duration: float | None = None
    rotation: int = 0
    audio_streams: list[str] = field(default_factory=list)
    metadata_found: list[str] = field(default_factory=list)


@dataclass
class Track:
    """One thing to redact over a range of frames (a face, a plate, or a region a person drew).

    Attributes:
        id: unique within a regions file.
        kind: one of ``KINDS``.
        frames: (K,) int frame indices, increasing.
        xyxy: (K, 4) float32 box at each of those frames (unscaled: the mask scale is applied
            when rendering).
        score: (K,) float32 detector score; 0 where the box was not detected.
        source: (K,) str: a ``Source`` value.
        keep: a person decided this one stays visible (never set automatically).
    """

    id: int
    kind: str
    frames: np.ndarray
    xyxy: np.ndarray
    score: np.ndarray
    source: np.ndarray
    keep: bool = False

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, dtype=np.int64).reshape(-1)
        k = len(self.frames)
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(k, 4)
        self.score = np.asarray(self.score, dtype=np.float32).reshape(k)
        self.source = np.asarray(self.source, dtype="<U12").reshape(k)

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class Plan:
    """What will be redacted in one file: the result of a scan, the input of a render."""

    info: MediaInfo
    frame_count: int
    tracks: list[Track]
    unanalysed_frames: list[int] = field(default_factory=list)
    frame_times: list | None = None  # presentation time of each frame (videos), from the PTS
    notes: list[str] = field(default_factory=list)  # what loading it changed, said in the result
    # Per frame, everything the scan saw, weak face candidates included (see ``blur.seen``).
    seen: list[Detections] | None = None
    face_threshold: float | None = None
    seen_every: int = 1  # plates and text were looked for on every n-th frame

    def to_dict(self) -> dict:
        """The regions file of this plan (see ``blur.regions``), with the scan's record."""
        from . import regions, seen, tracking  # they build on these types

        flags = {"unanalysed_frames": self.unanalysed_frames}
        flags.update(tracking.flagged_frames(self.tracks))
        data = regions.to_dict(self.info, self.frame_count, self.tracks, flags, self.frame_times)
        if self.seen is not None:
            if self.face_threshold is None:  # the record is read against it (``blur check``)
                raise ValueError("the scan's record needs the face threshold it was made with")
            data["seen"] = seen.to_dict(self.seen, self.face_threshold, self.seen_every)
        return data


@dataclass
class FileResult:
    """What happened to one file."""

    src: Path
    dst: Path
    kind: str
    tracks: dict[str, int]
    detections: int
    frames: int
    frames_redacted: int
    seconds: float
    metadata_removed: list[str]
    notes: list[str] = field(default_factory=list)
    plan: Plan | None = None
    bridged_frames: int = 0  # frames where a track was bridged by interpolation
    weak_frames: int = 0  # frames where a face was redacted on weak detections only


@dataclass
class Finding:
    """One face or plate the re-scan found, over the frames it was seen in.

    Attributes:
        kind: "face" or "plate".
        frames: frames it was detected in.
        score: best detector score.
        frame / box: where the best detection is (xyxy, upright pixels).
        status: "visible" (fails the check), "redacted" (lies on a region the regions file
            redacted: the redaction itself is what the detector sees), "blank" (no face detail
            in its box: see ``blank``), "kept" (a region the regions file keeps visible on
            purpose), "weak at scan" or "beside a redaction" (a weak detection the regions
            file's record of the scan explains: see ``blur.seen``).
    """

    kind: str
    frames: list[int]
    score: float
    frame: int
    box: list[float]
    status: str = "visible"


@dataclass
class CheckResult:
    """What ``check`` found in one file."""

    path: Path
    kind: str
    frame_count: int
    metadata: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    # What the findings were judged against: "regions file" (given), "record carried in the
    # file" (``blur.record``), "none", or "refused: why" (a record that does not fit the file).
    regions: str = "none"

    @property
    def visible(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "visible"]

    @property
    def clean(self) -> bool:
        return not self.metadata and not self.visible
