"""HEIF-family photos (HEIC, HEIF, AVIF), as phones take them.

Decoding goes through Pillow: HEIC/HEIF with the ``pillow-heif`` plugin (libheif, libde265),
AVIF with Pillow's own plugin (libavif, dav1d). Both assemble grid (tiled) images, apply the
container's ``irot``/``imir`` transforms (libheif) or report them as the EXIF orientation
(libavif), and hand over 8-bit RGB even when the picture is stored with 10 or 12 bits. Only
the primary image is decoded; thumbnails, depth maps and auxiliary images (HDR gain maps,
portrait mattes) are never read, and never written.

A HEIF file is a box tree (ISO/IEC 23008-12); ``contents`` lists what the tree holds besides
the picture itself, so that an input's metadata can be reported and an output's proven absent
without trusting the decoder's view of the file.
"""

from __future__ import annotations

import struct
from functools import cache
from pathlib import Path

# Pillow format names of this family, and the file names that say each.
FORMATS = {"HEIF": (".heic", ".heif", ".hif"), "AVIF": (".avif",)}
EXTENSIONS = {suffix for suffixes in FORMATS.values() for suffix in suffixes}
# What a HEIF-family photo is written as, by the output's file name: JPEG unless the format is
# kept (``--keep-format``); PNG for a name ending .png (lossless, read everywhere).
_WRITTEN_AS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    **{s: fmt for fmt, suffixes in FORMATS.items() for s in suffixes},
}


@cache
def enable() -> bool:
    """Teach Pillow to open HEIC/HEIF (once per process); False when pillow-heif is missing."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def unreadable_because(path: Path) -> str | None:
    """Why this installation cannot decode ``path`` (None when it can)."""
    suffix = path.suffix.lower()
    if suffix in FORMATS["HEIF"] and not enable():
        return "HEIC/HEIF photos need the pillow-heif package (pip install pillow-heif)"
    if suffix in FORMATS["AVIF"]:
        from PIL import features

        if not features.check("avif"):
            return "AVIF photos need Pillow 11.3 or later, built with AVIF (libavif)"
    return None


def is_heif(path: Path) -> bool:
    """A HEIF-family photo by its name."""
    return path.suffix.lower() in EXTENSIONS


def default_suffix(src: Path, keep_format: bool) -> str:
    """The output's extension: the input's own with ``keep_format``, else ``.jpg``."""
    return src.suffix if keep_format else ".jpg"


def output_suffixes(src: Path) -> set[str]:
    """Names an output of ``src`` may have: JPEG or PNG, or the input's own format."""
    own = next(set(s) for s in FORMATS.values() if src.suffix.lower() in s)
    return {".jpg", ".jpeg", ".png"} | own


def written_as(name: Path) -> str:
    """The Pillow format an output named ``name`` is written in.

    Raises:
        ValueError: a name that says no format this family is written in.
    """
    try:
        return _WRITTEN_AS[Path(name).suffix.lower()]
    except KeyError:
        raise ValueError(f"a HEIC/AVIF photo cannot be written as {Path(name).suffix}") from None


def save_options(fmt: str, quality: int) -> dict:
    """Encoder options for a HEIC or AVIF output (``quality`` as for JPEG)."""
    if fmt == "HEIF":
        return {"quality": quality, "chroma": 444 if quality >= 90 else 420}
    return {"quality": quality, "subsampling": "4:4:4" if quality >= 90 else "4:2:0"}


# ---------------------------------------------------------------------- the box tree

# Item properties that describe how the picture is coded and shown, and identify nobody.
# (``auxC`` names an auxiliary image's type; the images themselves are reported from ``iref``.)
_TECHNICAL_PROPERTIES = {
    "ispe",
    "pixi",
    "colr",
    "hvcC",
    "av1C",
    "vvcC",
    "irot",
    "imir",
    "clap",
    "auxC",
    "pasp",
    "lsel",
    "a1op",
    "a1lx",
    "clli",
    "mdcv",
    "amve",
    "rloc",
    "iscl",
    "free",
    "skip",
}
_CONTAINER_BOXES = {"ftyp", "meta", "mdat", "free", "skip"}
_PICTURE_ITEMS = {"hvc1", "av01", "grid", "iden", "iovl"}


def _boxes(data: bytes, start: int, end: int):
    """(type, payload start, payload end) of each box in data[start:end]."""
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            if at + 16 > end:
                raise ValueError("truncated box header")
            size, header = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            raise ValueError(f"box {kind!r} runs past the end of the file")
        yield kind.decode("latin-1"), at + header, at + size
        at += size
    if at != end:
        raise ValueError("trailing bytes after the last box")


def _c_string(data: bytes, at: int, end: int) -> tuple[str, int]:
    stop = data.find(b"\0", at, end)
    stop = end if stop == -1 else stop
    return data[at:stop].decode("utf-8", "replace"), min(stop + 1, end)


def _items(data: bytes, start: int, end: int) -> dict[int, str]:
    """item id -> type (``mime`` items as ``mime:<content type>``) from an ``iinf`` box."""
    version = data[start]
    at = start + 4 + (2 if version == 0 else 4)
    items = {}
    for kind, s, e in _boxes(data, at, end):
        if kind != "infe" or data[s] < 2:
            continue
        id_size = 2 if data[s] == 2 else 4
        at = s + 4
        item_id = int.from_bytes(data[at : at + id_size], "big")
        at += id_size + 2
        item_type = data[at : at + 4].decode("latin-1")
        if item_type == "mime":
            _, after_name = _c_string(data, at + 4, e)
            content_type, _ = _c_string(data, after_name, e)
            item_type = f"mime:{content_type}"
        items[item_id] = item_type
    return items


def _references(data: bytes, start: int, end: int) -> list[tuple[str, int, list[int]]]:
    """(reference type, from item, to items) from an ``iref`` box."""
    id_size = 2 if data[start] == 0 else 4
    refs = []
    for kind, s, _ in _boxes(data, start + 4, end):
        from_id = int.from_bytes(data[s : s + id_size], "big")
        count = int.from_bytes(data[s + id_size : s + id_size + 2], "big")
        at = s + id_size + 2
        refs.append(
            (
                kind,
                from_id,
                [
                    int.from_bytes(data[at + i * id_size : at + (i + 1) * id_size], "big")
                    for i in range(count)
                ],
            )
        )
    return refs


def _properties(data: bytes, start: int, end: int) -> list[str]:
    """Types of the item properties in an ``iprp`` box."""
    found = []
    for kind, s, e in _boxes(data, start, end):
        if kind == "ipco":
            found += [k for k, _, _ in _boxes(data, s, e)]
    return found


def contents(path: Path) -> list[str]:
    """What a HEIF/AVIF file holds besides its picture: metadata items (EXIF, XMP), thumbnails,
    auxiliary images (depth maps, HDR gain maps, mattes), properties that are not about the
    pixels (camera parameters, timestamps, user descriptions), and boxes outside the image
    structure (an image sequence, a Motion Photo video). A file whose box tree cannot be
    followed is reported as such, never as clean."""
    data = Path(path).read_bytes()
    found: list[str] = []
    try:
        top = list(_boxes(data, 0, len(data)))
        for kind, s, e in top:
            if kind not in _CONTAINER_BOXES:
                found.append(f"HEIF:{kind} box (outside the image structure)")
            if kind != "meta":
                continue
            items: dict[int, str] = {}
            refs: list = []
            for child, cs, ce in _boxes(data, s + 4, e):
                if child == "iinf":
                    items = _items(data, cs, ce)
                elif child == "iref":
                    refs = _references(data, cs, ce)
                elif child == "iprp":
                    found += [
                        f"HEIF:{p} property"
                        for p in _properties(data, cs, ce)
                        if p not in _TECHNICAL_PROPERTIES
                    ]
            for item_type in items.values():
                if item_type not in _PICTURE_ITEMS:
                    found.append(f"HEIF:{item_type} item")
            thumbnails = sum(1 for kind, _, _ in refs if kind == "thmb")
            auxiliary = sum(1 for kind, _, _ in refs if kind == "auxl")
            if thumbnails:
                found.append(f"HEIF:thumbnail images: {thumbnails}")
            if auxiliary:
                found.append(f"HEIF:auxiliary images (depth, gain map, matte, alpha): {auxiliary}")
    except (ValueError, IndexError, struct.error) as exc:
        found.append(f"HEIF:box structure cannot be read ({exc})")
    return sorted(set(found))
