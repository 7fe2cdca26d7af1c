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
    if suffix in (".heic", ".heif", ".gif", ".avif"):
        raise UnsupportedMediaError(f"{suffix} files are not supported yet", path)
    raise UnsupportedMediaError(f"unknown file type {suffix or '(no extension)'}", path)


def is_media(path: Path) -> bool:
    return path.suffix.lower() in image.EXTENSIONS | video.EXTENSIONS
