"""What identifying metadata a file carries. Used twice: to report what an input had, and to
prove that an output has none left (the pipeline refuses to finish otherwise)."""

from __future__ import annotations

from pathlib import Path

from PIL import ExifTags, Image

# Technical fields that describe the encoding and identify nobody.
_IMAGE_INFO_ALLOWED = {"icc_profile", "jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi",
                       "progressive", "progression", "compression", "adobe", "adobe_transform",
                       "loop", "background", "duration", "lossless", "transparency", "gamma",
                       "aspect", "srgb", "chromaticity", "resolution", "interlace"}
_VIDEO_FORMAT_ALLOWED = {"major_brand", "minor_version", "compatible_brands"}
_VIDEO_STREAM_ALLOWED = {"handler_name": {"VideoHandler", "SoundHandler"},
                         "vendor_id": {"[0][0][0][0]"}, "language": {"und"}}


def image_metadata(im: Image.Image) -> list[str]:
    """Names of the metadata items an open Pillow image carries, beyond technical fields."""
    found = []
    exif = im.getexif()
    for tag in exif:
        found.append(f"EXIF:{ExifTags.TAGS.get(tag, hex(tag))}")
    for ifd_name, ifd in (("GPS", ExifTags.IFD.GPSInfo), ("EXIF", ExifTags.IFD.Exif)):
        try:
            sub = exif.get_ifd(ifd)
        except (KeyError, ValueError, OSError):
            sub = {}
        if sub:
            found.append(f"{ifd_name}:{len(sub)} tags")
    for key in im.info:
        if key not in _IMAGE_INFO_ALLOWED and not key.startswith("exif"):
            found.append(f"info:{key}")
        elif key == "exif" and not exif:
            found.append("info:exif")
    if getattr(im, "applist", None):
        for marker, _ in im.applist:
            if marker not in ("APP0", "APP2", "APP14"):  # JFIF, ICC, Adobe colour transform
                found.append(f"JPEG:{marker}")
    return sorted(set(found))


def image_leftover(path: Path) -> list[str]:
    """Identifying metadata still present in a written still (should be [])."""
    with Image.open(path) as im:
        left = image_metadata(im)
        if im.format == "JPEG":
            data = Path(path).read_bytes()
            end = data.rfind(b"\xff\xd9")
            if end != -1 and end + 2 < len(data):
                left.append(f"trailing data: {len(data) - end - 2} bytes after end of image")
    return left


def video_metadata(container) -> list[str]:
    """Identifying metadata of an open PyAV input or output container."""
    found = [f"format:{k}" for k in container.metadata if k not in _VIDEO_FORMAT_ALLOWED]
    for stream in container.streams:
        if stream.type not in ("video", "audio"):
            found.append(f"stream {stream.index}: {stream.type} stream")
        for key, value in stream.metadata.items():
            allowed = _VIDEO_STREAM_ALLOWED.get(key)
            if allowed is None or value not in allowed:
                found.append(f"stream {stream.index}:{key}")
        if stream.type == "video" and getattr(stream.disposition, "name", "") == "attached_pic":
            found.append(f"stream {stream.index}: cover picture")
    try:
        chapters = container.chapters()
    except AttributeError:  # older PyAV
        chapters = []
    if chapters:
        found.append(f"chapters:{len(chapters)}")
    return sorted(set(found))
