"""Media families: which module reads and writes a given file.

By name (``kind_of``) a file is an "image" (a photo, or a picture format that may be animated)
or a "video". By content (``probe``) an image is a still ("image", ``image``; HEIC/AVIF
through ``heif``) or an "animation" (``animation``: GIF, animated WebP, APNG), which is
scanned and tracked frame by frame like a video.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import UnsupportedMediaError
from ..types import Frame, MediaInfo
from . import animation, heif, image, video
from .families import FAMILIES, Family, family_of
from .metadata import leftover

__all__ = [
    "FAMILIES",
    "Family",
    "animation",
    "family_of",
    "frames",
    "frames_at",
    "heif",
    "image",
    "is_media",
    "is_video",
    "kind_of",
    "leftover",
    "probe",
    "video",
]

PICTURE_EXTENSIONS = image.EXTENSIONS | animation.EXTENSIONS


def kind_of(path: Path) -> str:
    """ "image" or "video", from the file name's extension."""
    suffix = path.suffix.lower()
    if suffix in PICTURE_EXTENSIONS:
        return "image"
    if suffix in video.EXTENSIONS:
        return "video"
    raise UnsupportedMediaError(f"unknown file type {suffix or '(no extension)'}", path)


def probe(path: Path) -> MediaInfo:
    """Facts about a file, from the family that reads it (an animation by its content)."""
    kind = kind_of(path)
    if kind == "image" and animation.is_animation(path):
        kind = "animation"
    return FAMILIES[kind].probe(path)


def frames(info: MediaInfo, ahead: int = 0) -> Iterator[Frame]:
    """Every frame of a video or an animation, upright RGB, in order (``ahead``: see
    ``video.frames``; an animation is decoded in the caller's thread)."""
    return family_of(info).frames(info.path, ahead=ahead)


def is_media(path: Path) -> bool:
    """A photo, animation or video by its name."""
    return path.suffix.lower() in PICTURE_EXTENSIONS | video.EXTENSIONS


def is_video(path: Path) -> bool:
    """A video by its name (never raises, unlike ``kind_of``)."""
    return path.suffix.lower() in video.EXTENSIONS


def frames_at(info: MediaInfo, wanted: set[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(index, upright RGB) of the frames in ``wanted``, decoded once, stopping after the last."""
    if not wanted:
        return
    last = max(wanted)
    for frame in family_of(info).frames(info.path):
        if frame.index in wanted:
            yield frame.index, frame.image
        if frame.index >= last:
            break
