"""Settings: the only place where defaults live."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from .errors import SettingsError

# Choices of the settings that name one. The others come from their registries: kinds from
# ``detectors.DETECTORS``, styles and shapes from ``redact``, devices from ``detectors.runtime``.
AUDIO = ("copy", "drop")
FAIL_FRAME = ("fail", "redact")
SMALL_FACE_MODELS = ("centerface", "retinaface")
ANALYSE = ("changes", "every-frame")
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)


@dataclass(frozen=True)
class Settings:
    """Everything that changes what blur does. CLI options default to None and are merged over this.

    Attributes:
        kinds: what to redact ("face", "plate", "text": every line of text, off by default).
        face_threshold: first-look score (CenterFace heatmap) from which a face is redacted on
            its own, whatever the second look says.
        face_candidate_threshold: score from which a weak face candidate is reported: in videos
            redacted when it continues or repeats a track; with ``face_second_look``, given a
            second look and redacted when it confirms the face.
        face_second_look: confirm weak face candidates on a magnified crop (and its mirror
            image); a confirmed candidate is redacted like a face scoring ``face_threshold``.
            Off by default: measured, it does not buy precision at the default's coverage and
            costs ~6 ms CPU per candidate; with ``face_threshold=0.3`` and
            ``face_candidate_threshold=0.08`` it nearly keeps coverage (see the README).
        face_flip: also analyse the mirrored image (better recall, twice the time).
        face_rotate: also analyse the image turned +-90 degrees, for people lying down or filmed
            sideways (three times the time).
        face_max_upscale: largest factor by which a small picture is enlarged to find small
            faces (the cost grows with its square).
        face_small_model: the model of that enlarged small-face pass: "centerface" (the face
            model of the native pass) or "retinaface" (a lighter one, ~2.4x less CPU for that pass;
            it misses a few more faces under 20 px, see the README).
        weak_min_frames: in videos, weak face detections linked to no confident one are
            redacted when they persist for this many frames.
        mask_scale: redacted box = detected box enlarged by this factor about its centre.
        shape: "ellipse" or "box", for faces; plates, text lines and manual regions are always
            rectangles (see ``blur.redact``).
        style: redaction style name, see ``blur.redact.STYLES``.
        max_gap_seconds: a track missed for at most this long is bridged (box interpolated).
        pad_seconds: tracks are redacted this long before their first and after their last hit.
        crf / preset: libx264 quality and speed.
        audio: "copy" (bit-exact) or "drop".
        overwrite: allow replacing an existing output (never an input).
        jpeg_quality: quality of re-encoded JPEG/WebP/HEIC/AVIF stills and WebP animations.
        keep_format: write a HEIC/HEIF/AVIF photo back in its own format (by default it
            becomes a JPEG, which every editor and website reads).
        record: carry blur's record of the render in the output (JPEG, PNG, MP4, MKV: the
            regions and what the scan saw, as boxes and scores; see ``blur.record``), so that
            ``blur check`` needs no regions file; False: the output carries no trace of blur.
        fail_frame: "fail" (the file fails) or "redact" (the whole frame is redacted) when a frame
            cannot be analysed.
        text_max_side: plates and text are looked for with the frame's long side at most this
            many pixels (larger frames are shrunk; plates need characters >= ~8 px there).
        text_every_n_frames: in videos, plates and text are looked for on every n-th frame and
            tracked in between (lowered when the gap or padding would not bridge it).
        check_face_threshold: ``blur check`` looks for faces from this score: by default blur's
            own redaction threshold, so that check asks whether blur's detectors still see a
            face blur would redact (on every frame, unpadded); lower it for a harder look.
        face_small_every_n_frames: in videos, the face detector's upscaled small-face pass (the
            costly one) runs on every n-th frame and its large-face pass on every frame; tracks
            bridge the frames between (lowered when the gap or padding would not bridge it).
        decode_ahead: video frames decoded ahead in a background thread while the previous ones
            are analysed (0: decode in turn; frames of 6 million pixels or more are never
            decoded ahead, to keep a 4K run's memory down).
        analyse: in videos, "changes" (each network recomputes only where the picture changed
            since it last looked, with full passes at keyframes and on global change; see
            ``blur.schedule``) or "every-frame" (every pass over the whole frame, to compare).
        keyframe_seconds: in videos, the longest time between two full passes of each network
            (shorter when much of the picture moves).
        follow_tracks: in videos, a face seen on the last few frames that a frame's pass does
            not find is looked for again in a magnified crop around where it should be (see
            ``blur.schedule``). Off by default: measured on the generated clips of
            ``benchmarks/video_recall.py`` it found no face the tracker did not already
            cover, for 7-15 crops per frame.
        device: where ONNX Runtime runs the face, plate and text models: "auto" (cuda or
            directml when an ONNX Runtime build for it is installed, else the CPU), "cpu",
            "cuda", "coreml" or "directml" (a name this ONNX Runtime build lacks is refused).
    """

    kinds: tuple[str, ...] = ("face", "plate")
    face_threshold: float = 0.12
    face_candidate_threshold: float = 0.1
    face_second_look: bool = False
    face_flip: bool = False
    face_rotate: bool = False
    face_max_upscale: float = 2.0
    face_small_model: str = "centerface"
    weak_min_frames: int = 3
    mask_scale: float = 1.3
    shape: str = "ellipse"
    style: str = "blur"
    max_gap_seconds: float = 0.75
    pad_seconds: float = 0.2
    crf: int = 18
    preset: str = "medium"
    audio: str = "copy"
    overwrite: bool = False
    jpeg_quality: int = 95
    keep_format: bool = False
    record: bool = True
    fail_frame: str = "fail"
    text_max_side: int = 1280
    text_every_n_frames: int = 3
    check_face_threshold: float = 0.12
    face_small_every_n_frames: int = 1
    decode_ahead: int = 4
    analyse: str = "changes"
    keyframe_seconds: float = 2.0
    follow_tracks: bool = False
    device: str = "auto"

    def __post_init__(self):
        """Refuse a setting blur would otherwise misread (a typo must not change what is hidden)."""
        # Here, not at import: the registries need OpenCV and ONNX Runtime.
        from .detectors import kinds
        from .detectors.runtime import DEVICE_NAMES
        from .redact import SHAPES, STYLES

        def choice(name, allowed):
            value = getattr(self, name)
            if value not in allowed:
                raise SettingsError(f"{name}={value!r} is not one of {', '.join(allowed)}")

        def number(name, low, high=None, integer=False):
            value = getattr(self, name)
            kind = int if integer else (int, float)
            if isinstance(value, bool) or not isinstance(value, kind) or value != value:
                raise SettingsError(f"{name}={value!r} is not a {'whole ' if integer else ''}number")
            if value < low or (high is not None and value > high):
                bound = f"from {low}" + (f" to {high}" if high is not None else "")
                raise SettingsError(f"{name}={value!r} is out of range ({bound})")

        known = kinds()
        if not self.kinds or any(k not in known for k in self.kinds):
            raise SettingsError(f"kinds={self.kinds!r}: give one or more of {', '.join(known)}")
        choice("style", tuple(STYLES))
        choice("shape", SHAPES)
        choice("audio", AUDIO)
        choice("fail_frame", FAIL_FRAME)
        choice("face_small_model", SMALL_FACE_MODELS)
        choice("preset", X264_PRESETS)
        choice("analyse", ANALYSE)
        if not isinstance(self.device, str) or self.device.lower() not in DEVICE_NAMES:
            raise SettingsError(f"device={self.device!r} is not one of {', '.join(DEVICE_NAMES)}")
        for name in ("face_threshold", "face_candidate_threshold", "check_face_threshold"):
            number(name, 0.0, 1.0)
        # A mask smaller than the detected box would leave part of the face.
        number("mask_scale", 1.0, 10.0)
        number("face_max_upscale", 1.0, 8.0)
        number("max_gap_seconds", 0.0)
        number("pad_seconds", 0.0)
        number("keyframe_seconds", 0.04, 60.0)
        number("crf", 0, 51, integer=True)
        number("jpeg_quality", 1, 100, integer=True)
        number("weak_min_frames", 1, integer=True)
        number("text_max_side", 64, integer=True)
        number("text_every_n_frames", 1, integer=True)
        number("face_small_every_n_frames", 1, integer=True)
        number("decode_ahead", 0, integer=True)
        for name in (
            "face_second_look",
            "face_flip",
            "face_rotate",
            "overwrite",
            "keep_format",
            "record",
            "follow_tracks",
        ):
            if not isinstance(getattr(self, name), bool):
                raise SettingsError(f"{name}={getattr(self, name)!r} is not true or false")

    def merged(self, **overrides: Any) -> Settings:
        """Return a copy with every override that is not None applied."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})
