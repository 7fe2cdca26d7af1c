"""What identifying metadata a file carries. Used twice: to report what an input had, and to
prove that an output has none left (the pipeline refuses to finish otherwise)."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import ExifTags, Image

from . import heif

# Technical fields that describe the encoding and identify nobody.
_IMAGE_INFO_ALLOWED = {"icc_profile", "jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi",
                       "progressive", "progression", "compression", "adobe", "adobe_transform",
                       "loop", "background", "duration", "lossless", "transparency", "gamma",
                       "aspect", "srgb", "chromaticity", "resolution", "interlace"}
# What the HEIF decoder reports about the coding (bit depth, chroma, colour, HDR levels, grid).
# Its lists of thumbnails, depth and auxiliary images and metadata blocks are left out here:
# ``heif.contents`` finds those in the file itself.
_HEIF_INFO_ALLOWED = {"primary", "bit_depth", "chroma", "nclx_profile", "icc_profile_type",
                      "tiling", "original_orientation", "pixel_aspect_ratio", "content_light_level",
                      "mastering_display_colour_volume", "ambient_viewing_environment",
                      "nominal_diffuse_white_luminance", "thumbnails", "depth_images", "aux",
                      "metadata"}
# Animation fields: how frames are shown (the GIF version, and its looping extension).
_ANIMATION_INFO_ALLOWED = {"version", "disposal", "blend", "default_image", "timestamp", "bbox"}
# TIFF fields that describe the pixel layout (and the ICC profile, which is kept on purpose).
_TIFF_LAYOUT = {256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 282, 283, 284, 296, 317, 320,
                322, 323, 324, 325, 338, 339, 34675}
# Tags a muxer writes by itself, with the values that identify nobody (regular expressions).
# Matroska always names its writing application; with ``fflags=+bitexact`` that is just "Lavf".
_VIDEO_FORMAT_ALLOWED = {"major_brand": r"[ -~]{4}", "minor_version": r"\d+",
                         "compatible_brands": r"[ -~]*", "encoder": r"Lavf"}
_VIDEO_STREAM_ALLOWED = {"handler_name": r"VideoHandler|SoundHandler",
                         "vendor_id": r"\[0\]\[0\]\[0\]\[0\]", "language": r"und",
                         "DURATION": r"\d+:\d\d:\d\d\.\d+"}


def _allowed(table: dict[str, str], key: str, value: str) -> bool:
    pattern = table.get(key)
    return pattern is not None and re.fullmatch(pattern, str(value)) is not None


def image_metadata(im: Image.Image) -> list[str]:
    """Names of the metadata items an open Pillow image carries, beyond technical fields."""
    found = []
    exif = im.getexif()
    for tag in exif:
        # A TIFF keeps its layout in the same directory as EXIF tags; those fields are not metadata.
        if im.format == "TIFF" and tag in _TIFF_LAYOUT:
            continue
        found.append(f"EXIF:{ExifTags.TAGS.get(tag, hex(tag))}")
    for ifd_name, ifd in (("GPS", ExifTags.IFD.GPSInfo), ("EXIF", ExifTags.IFD.Exif)):
        try:
            sub = exif.get_ifd(ifd)
        except (KeyError, ValueError, OSError):
            sub = {}
        if sub:
            found.append(f"{ifd_name}:{len(sub)} tags")
    allowed = _IMAGE_INFO_ALLOWED | _ANIMATION_INFO_ALLOWED
    if im.format in heif.FORMATS:
        allowed = allowed | _HEIF_INFO_ALLOWED
    for key, value in im.info.items():
        if key == "extension" and im.format == "GIF":
            name = value[0].decode("latin-1", "replace") if isinstance(value, tuple) else "?"
            if name != "NETSCAPE2.0":  # that one holds the loop count
                found.append(f"GIF:application extension {name}")
            continue
        if key not in allowed and not key.startswith("exif"):
            found.append(f"info:{key}")
        elif key == "exif" and value and not exif:
            found.append("info:exif")
    if getattr(im, "applist", None):
        for marker, _ in im.applist:
            if marker not in ("APP0", "APP2", "APP14"):  # JFIF, ICC, Adobe colour transform
                found.append(f"JPEG:{marker}")
    return sorted(set(found))


def image_leftover(path: Path) -> list[str]:
    """Identifying metadata still present in a written still or animation (should be [])."""
    heif.enable()
    with Image.open(path) as im:
        left = image_metadata(im)
        for index in range(1, getattr(im, "n_frames", 1) if im.format != "MPO" else 1):
            im.seek(index)  # an animation's later frames carry their own comments and blocks
            left += image_metadata(im)
        if im.format in heif.FORMATS:
            left += heif.contents(path)
        if im.format == "JPEG":
            data = Path(path).read_bytes()
            end = data.rfind(b"\xff\xd9")
            if end != -1 and end + 2 < len(data):
                left.append(f"trailing data: {len(data) - end - 2} bytes after end of image")
    return sorted(set(left))


def video_metadata(container) -> list[str]:
    """Identifying metadata of an open PyAV input or output container."""
    found = [f"format:{k}" for k, v in container.metadata.items()
             if not _allowed(_VIDEO_FORMAT_ALLOWED, k, v)]
    for stream in container.streams:
        if stream.type not in ("video", "audio"):
            found.append(f"stream {stream.index}: {stream.type} stream")
        found += [f"stream {stream.index}:{k}" for k, v in stream.metadata.items()
                  if not _allowed(_VIDEO_STREAM_ALLOWED, k, v)]
        if stream.type == "video" and getattr(stream.disposition, "name", "") == "attached_pic":
            found.append(f"stream {stream.index}: cover picture")
    try:
        chapters = container.chapters()
    except AttributeError:  # older PyAV
        chapters = []
    if chapters:
        found.append(f"chapters:{len(chapters)}")
    return sorted(set(found))
