"""What identifying metadata a file carries: to report what an input had, and, with the ONE
``leftover()``, what a file has left: render proves its output clean with it (and refuses to
finish otherwise), ``blur check`` lists it for any file, and the report shows it."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import ExifTags, Image

from .. import record
from . import embedded, heif

# Technical fields that describe the encoding and identify nobody.
_IMAGE_INFO_ALLOWED = {
    "icc_profile",
    "jfif",
    "jfif_version",
    "jfif_unit",
    "jfif_density",
    "dpi",
    "progressive",
    "progression",
    "compression",
    "adobe",
    "adobe_transform",
    "loop",
    "background",
    "duration",
    "lossless",
    "transparency",
    "gamma",
    "aspect",
    "srgb",
    "chromaticity",
    "resolution",
    "interlace",
}
# What the HEIF decoder reports about the coding (bit depth, chroma, colour, HDR levels, grid).
# Its lists of thumbnails, depth and auxiliary images and metadata blocks are left out here:
# ``heif.contents`` finds those in the file itself.
_HEIF_INFO_ALLOWED = {
    "primary",
    "bit_depth",
    "chroma",
    "nclx_profile",
    "icc_profile_type",
    "tiling",
    "original_orientation",
    "pixel_aspect_ratio",
    "content_light_level",
    "mastering_display_colour_volume",
    "ambient_viewing_environment",
    "nominal_diffuse_white_luminance",
    "thumbnails",
    "depth_images",
    "aux",
    "metadata",
}
# Animation fields: how frames are shown (the GIF version, and its looping extension).
_ANIMATION_INFO_ALLOWED = {"version", "disposal", "blend", "default_image", "timestamp", "bbox"}
# TIFF fields that describe the pixel layout (and the ICC profile, which is kept on purpose).
_TIFF_LAYOUT = {
    256,
    257,
    258,
    259,
    262,
    266,
    273,
    277,
    278,
    279,
    282,
    283,
    284,
    296,
    317,
    320,
    322,
    323,
    324,
    325,
    338,
    339,
    34675,
}
# Tags a muxer writes by itself, with the values that identify nobody (regular expressions).
# Matroska always names its writing application; with ``fflags=+bitexact`` that is just "Lavf".
_VIDEO_FORMAT_ALLOWED = {
    "major_brand": r"[ -~]{4}",
    "minor_version": r"\d+",
    "compatible_brands": r"[ -~]*",
    "encoder": r"Lavf",
}
_VIDEO_STREAM_ALLOWED = {
    "handler_name": r"VideoHandler|SoundHandler",
    "vendor_id": r"\[0\]\[0\]\[0\]\[0\]",
    "language": r"und",
    "DURATION": r"\d+:\d\d:\d\d\.\d+",
}


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
        if is_blur_record(im, key, value):
            continue  # blur's record of the render: boxes and scores, nothing identifying
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
        record_only = is_blur_record(im, "comment", None)
        for marker, _ in im.applist:
            if marker == "COM" and record_only:
                continue
            if marker not in ("APP0", "APP2", "APP14"):  # JFIF, ICC, Adobe colour transform
                found.append(f"JPEG:{marker}")
    return sorted(set(found))


def is_blur_record(im: Image.Image, key: str, value) -> bool:
    """Is this item of ``im.info`` blur's own record (``blur.record``), well formed? A JPEG's
    comment only when every comment segment of the file is part of the record; a PNG's text
    only under the record's keyword."""
    if im.format == "JPEG" and key == "comment":
        comments = [data for marker, data in getattr(im, "applist", []) if marker == "COM"]
        return embedded.jpeg_comments_are_record(comments)
    if im.format == "PNG" and key == embedded.PNG_KEYWORD.decode():
        return record.well_formed(value)
    return False


def leftover(path: Path, kind: str | None = None, written_by_blur: bool = False) -> list[str]:
    """Identifying metadata in any photo, animation or video (``[]`` when there is none).

    The one definition of clean: render verifies its output with it, ``blur check`` and the
    report use it for whatever file they are given.

    Args:
        path: the file.
        kind: "image", "animation" or "video"; None: from the file's name.
        written_by_blur: also look for the x264 settings string, which blur removes from its
            own outputs; it names no one, so files from elsewhere are not failed for it.
    """
    if kind is None:
        from . import kind_of  # the families build on this module

        kind = kind_of(Path(path))
    if kind == "video":
        return video_leftover(path, written_by_blur)
    return image_leftover(path)


def image_leftover(path: Path) -> list[str]:
    """Identifying metadata in a still or animation: what Pillow and the HEIF reader see, data
    after the end of a JPEG and JPEGs inside a JPEG (thumbnails, previews)."""
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
    data = Path(path).read_bytes()
    if data[:3] == b"\xff\xd8\xff":
        # Thumbnails and previews (EXIF, MPF, vendor blocks) are JPEGs inside the JPEG;
        # the marker cannot occur in entropy-coded data (0xFF is always stuffed there).
        extra = data.count(b"\xff\xd8\xff") - 1
        if extra > 0:
            left.append(f"embedded JPEG image(s): {extra} (thumbnail or preview)")
    return sorted(set(left))


def video_leftover(path: Path, encoder: bool = False) -> list[str]:
    """Identifying metadata in a video: container and stream tags, chapters, streams that are
    neither video nor audio, cover pictures, and a second picture stream (a preview).

    Args:
        encoder: also look for the x264 settings string (``encoder_settings``), in the same
            reading of the file.
    """
    import av

    with av.open(str(path), metadata_errors="ignore") as container:
        found = video_metadata(container)
        pictures = [
            s for s in container.streams.video if getattr(s.disposition, "name", "") != "attached_pic"
        ]
        if len(pictures) > 1:
            found.append(f"{len(pictures)} video streams (a second picture may be a preview)")
        if encoder:
            found += _encoder_settings(container)
    return sorted(set(found))


def encoder_settings(path: Path) -> list[str]:
    """The x264 settings string, if the first video packet still carries it (should be [] in
    blur's outputs; it names no one, so ``leftover`` reports it only when asked)."""
    import av

    with av.open(str(path), metadata_errors="ignore") as container:
        return _encoder_settings(container)


def _encoder_settings(container) -> list[str]:
    """``encoder_settings`` of an open PyAV input container (reads its first video packets)."""
    first = next((p for p in container.demux(container.streams.video[0]) if p.size), None)
    if first is not None and b"x264 - core" in bytes(first):
        return ["video stream: x264 settings string (SEI)"]
    return []


def video_metadata(container) -> list[str]:
    """Identifying metadata of an open PyAV input or output container."""
    found = [
        f"format:{k}"
        for k, v in container.metadata.items()
        if not _allowed(_VIDEO_FORMAT_ALLOWED, k, v) and not embedded.is_record_tag(k, v)
    ]
    for stream in container.streams:
        if stream.type not in ("video", "audio"):
            found.append(f"stream {stream.index}: {stream.type} stream")
        found += [
            f"stream {stream.index}:{k}"
            for k, v in stream.metadata.items()
            if not _allowed(_VIDEO_STREAM_ALLOWED, k, v)
        ]
        if stream.type == "video" and getattr(stream.disposition, "name", "") == "attached_pic":
            found.append(f"stream {stream.index}: cover picture")
    try:
        chapters = container.chapters()
    except AttributeError:  # older PyAV
        chapters = []
    if chapters:
        found.append(f"chapters:{len(chapters)}")
    return sorted(set(found))
