"""Where blur's record (``blur.record``) rides in its outputs, and how it is found again.

* JPEG: comment (COM) segments after the header segments, each ``blur-record N/M <text>``
  (a segment holds at most 65,533 bytes, so a large record takes several).
* PNG: one ``tEXt`` chunk with the keyword ``blur-record``, before the image data.
* MP4 and MKV: the container tag ``blur_record`` (MP4 writes it in the movie header with
  ``movflags=use_metadata_tags``; without that flag FFmpeg's MP4 muxer keeps only the iTunes
  tags), set before the first packet is written. See ``video_encode.transcode``.
* Other formats (WebP, TIFF, BMP, HEIC, AVIF, animations) carry none: ``blur check`` then needs
  the regions file, as for any file without a record.

Binding: a photo's record holds the SHA-256 of the file as written without the record, so a
photo edited or re-saved after blur (Pillow and many editors keep a JPEG's comment) no longer
matches and its record is refused. A video's record holds its frame count and size, checked
against the file; its packets cannot be hashed into a header written before them. Either way
``blur check`` judges the pixels against the record as against a regions file.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from .. import record

PNG_KEYWORD = b"blur-record"
VIDEO_TAG = "blur_record"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COM_PREFIX = b"blur-record "
_COM_ROOM = 65533 - 32  # bytes of record text per comment segment, leaving room for "N/M "


@dataclass
class Carried:
    """A record found in a file.

    Attributes:
        text: the record as written (``blur.record.encode``).
        unbound_sha256: the SHA-256 of the file without the record (photos), to compare with
            the record's own ``sha256``; None where there is none to compare (videos).
    """

    text: str
    unbound_sha256: str | None = None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- JPEG --------------------------------------------------------------------------------


def _jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each header segment from SOI up to the first scan (SOS)."""
    segments = []
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: the entropy-coded data follows
            break
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        segments.append((marker, pos, pos + 2 + length))
        pos += 2 + length
    return segments


def jpeg_with(data: bytes, text: str) -> bytes:
    """``data`` (a JPEG as Pillow wrote it) with ``text`` in comment segments after its
    application segments (JFIF, ICC), before the tables."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    at = 2
    for marker, _, end in _jpeg_segments(data):
        if 0xE0 <= marker <= 0xEF:
            at = end
        else:
            break
    raw = text.encode("ascii")
    chunks = [raw[i : i + _COM_ROOM] for i in range(0, len(raw), _COM_ROOM)] or [b""]
    segments = b""
    for n, chunk in enumerate(chunks, 1):
        payload = _COM_PREFIX + f"{n}/{len(chunks)} ".encode() + chunk
        segments += b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload
    return data[:at] + segments + data[at:]


def _joined(payloads: list[bytes]) -> bytes | None:
    """The record text split over comment payloads ``blur-record N/M <part>``: every part from
    1 to M exactly once (None otherwise)."""
    parts: dict[int, bytes] = {}
    total = None
    for payload in payloads:
        if not payload.startswith(_COM_PREFIX):
            return None
        head, _, chunk = payload[len(_COM_PREFIX) :].partition(b" ")
        try:
            n, m = (int(v) for v in head.split(b"/"))
        except ValueError:
            return None
        if total not in (None, m) or n in parts or not 1 <= n <= m:
            return None
        total, parts[n] = m, chunk
    if total is None or set(parts) != set(range(1, total + 1)):
        return None
    return b"".join(parts[n] for n in range(1, total + 1))


def _jpeg_carried(data: bytes) -> Carried | None:
    payloads, rest, last = [], bytearray(), 0
    for marker, start, end in _jpeg_segments(data):
        payload = data[start + 4 : end]
        if marker == 0xFE and payload.startswith(_COM_PREFIX):
            payloads.append(payload)
            rest += data[last:start]
            last = end
    text = _joined(payloads) if payloads else None
    if text is None:
        return None
    rest += data[last:]
    try:
        return Carried(text.decode("ascii"), sha256(bytes(rest)))
    except UnicodeDecodeError:
        return None


def jpeg_comments_are_record(comments: list[bytes]) -> bool:
    """Are these comment segments (Pillow's ``applist`` ``COM`` entries) exactly one
    well-formed blur record, and nothing else?"""
    text = _joined(comments) if comments else None
    return text is not None and record.well_formed(text)


# --- PNG ---------------------------------------------------------------------------------


def _png_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of each chunk."""
    chunks = []
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        chunks.append((kind, pos, end))
        pos = end
        if kind == b"IEND":
            break
    return chunks


def png_with(data: bytes, text: str) -> bytes:
    """``data`` (a PNG) with ``text`` in a ``tEXt`` chunk just before the first image data."""
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG")
    at = next(start for kind, start, _ in _png_chunks(data) if kind == b"IDAT")
    body = b"tEXt" + PNG_KEYWORD + b"\x00" + text.encode("ascii")
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return data[:at] + chunk + data[at:]


def _png_carried(data: bytes) -> Carried | None:
    found = None
    rest = bytearray()
    last = 0
    for kind, start, end in _png_chunks(data):
        if kind == b"tEXt" and data[start + 8 : end - 4].startswith(PNG_KEYWORD + b"\x00"):
            if found is not None:
                return None
            found = data[start + 8 + len(PNG_KEYWORD) + 1 : end - 4]
            rest += data[last:start]
            last = end
    if found is None:
        return None
    rest += data[last:]
    try:
        return Carried(found.decode("ascii"), sha256(bytes(rest)))
    except UnicodeDecodeError:
        return None


# --- any file ----------------------------------------------------------------------------


def bind_photo(data: bytes, fmt: str, body: dict) -> bytes:
    """A photo as written (``data``, format ``fmt``) with its record, bound to it; formats
    that carry none are returned as they are."""
    if fmt == "JPEG":
        return jpeg_with(data, record.encode(dict(body, sha256=sha256(data))))
    if fmt == "PNG":
        return png_with(data, record.encode(dict(body, sha256=sha256(data))))
    return data


def carried(path: Path) -> Carried | None:
    """The record a file carries, if any (not yet validated: see ``blur.record.decode``)."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head[:2] == b"\xff\xd8":
        return _jpeg_carried(path.read_bytes())
    if head == _PNG_SIGNATURE:
        return _png_carried(path.read_bytes())
    from . import is_video

    if not is_video(path):
        return None
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            for key, value in container.metadata.items():
                if key.lower() == VIDEO_TAG:
                    return Carried(str(value))
    except (av.error.FFmpegError, UnicodeDecodeError):
        return None
    return None


def is_record_tag(key: str, value) -> bool:
    """Is this container tag blur's record, well formed (and so nothing identifying)?"""
    return key.lower() == VIDEO_TAG and record.well_formed(str(value))


def regions_in(path: Path) -> tuple[dict | None, str, float | None]:
    """The record blur carried in ``path`` (``blur.record``), as a regions file.

    Returns:
        (regions dict or None, what the check judged against -- "record carried in the file",
        "none" or "refused: why" -- and the mask scale the record says the file was rendered
        with).
    """
    found = carried(path)
    if found is None:
        return None, "none", None
    try:
        body = record.decode(found.text)
    except ValueError:
        return None, "refused: the record field is not a well-formed blur record", None
    if "sha256" in body and body["sha256"] != found.unbound_sha256:
        return None, "refused: the file was changed after blur wrote it (edited or re-saved)", None
    if body["kind"] == "image" and "sha256" not in body:
        return None, "refused: a photo's record must be bound to its file", None
    return record.as_regions(body), "record carried in the file", float(body["mask_scale"])
