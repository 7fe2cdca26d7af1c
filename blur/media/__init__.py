"""Media families: which module reads and writes a given file."""

from __future__ import annotations

from pathlib import Path

from ..errors import UnsupportedMediaError
from . import image, video

FAMILIES = {"image": image, "video": video}


def kind_of(path: Path) -> str:
    """"image" or "video", from the file name's extension."""
    suffix = path.suffix.lower()
    if suffix in image.EXTENSIONS:
        return "image"
    if suffix in video.EXTENSIONS:
        return "video"
    if suffix in REFUSED - {".gif"}:
        raise UnsupportedMediaError(f"{suffix[1:].upper()} photos are not supported: convert to "
                                    f"JPEG or PNG first", path)
    if suffix == ".gif":
        raise UnsupportedMediaError("GIF is not supported: convert a still GIF to PNG, an "
                                    "animated one to a video (MP4)", path)
    raise UnsupportedMediaError(f"unknown file type {suffix or '(no extension)'}", path)


# Photo formats refused by name, with advice (``kind_of``); still listed by a folder walk so
# that each is reported as a failure instead of being left out without a word.
REFUSED = {".heic", ".heif", ".avif", ".gif"}


def is_media(path: Path) -> bool:
    """A photo or video by its name, including the formats blur refuses."""
    return path.suffix.lower() in image.EXTENSIONS | video.EXTENSIONS | REFUSED


def is_video(path: Path) -> bool:
    """A video by its name (never raises, unlike ``kind_of``)."""
    return path.suffix.lower() in video.EXTENSIONS
