"""Animated GIF and WebP files that keep every frame.

Pillow's GIF encoder and libwebp's animation encoder store a frame identical to the one before
it (for lossy WebP: close to it) as a longer display of that one, so the output would have
fewer frames than the input, and other durations; neither has an option to turn that off.
Here each frame's picture is encoded by Pillow as a still (LZW for GIF, VP8/VP8L for WebP) and
the container is laid out around it: one whole frame per input frame, each shown for its own
duration, replacing the one before (no blending with it), and the loop count as given.

Formats: GIF89a (https://www.w3.org/Graphics/GIF/spec-gif89a.txt) and the WebP container
(RFC 9649).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

# GIF disposal methods: leave the frame in place, or clear it to the background (transparent)
# before the next one is drawn, so that a transparent pixel shows nothing of the last frame.
_GIF_KEEP, _GIF_CLEAR = 1, 2
# A transparent GIF frame is quantised to 255 colours; index 255 is its transparent pixels.
_TRANSPARENT_INDEX = 255
_WEBP_NO_BLEND = 0b10  # ANMF flags: replace the canvas area, do not alpha-blend; no disposal
_WEBP_MAX_DURATION = (1 << 24) - 1


def write_gif(path: Path, frames: list[Image.Image], durations: list[float], loop: int | None) -> None:
    """Write ``frames`` (RGB, or RGBA with binary transparency) as an animated GIF.

    Args:
        path: the output file.
        frames: one picture per frame, all of one size and mode.
        durations: display time of each frame in milliseconds (stored in hundredths of a
            second).
        loop: the NETSCAPE loop count (0: for ever), or None for no looping block (play once).
    """
    width, height = frames[0].size
    transparent = frames[0].mode == "RGBA"
    out = [b"GIF89a", struct.pack("<HHBBB", width, height, 0, 0, 0)]  # no global colour table
    if loop is not None:
        out.append(b"!\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", loop) + b"\0")
    for frame, duration in zip(frames, durations):
        palette, lzw = _gif_picture(frame)
        delay = min(round(duration / 10), 0xFFFF)
        disposal = _GIF_CLEAR if transparent else _GIF_KEEP
        out.append(
            struct.pack(
                "<3sBHBB",
                b"!\xf9\x04",
                disposal << 2 | transparent,
                delay,
                _TRANSPARENT_INDEX if transparent else 0,
                0,
            )
        )
        size_bits = (len(palette) // 3).bit_length() - 2  # the table holds 2 ** (bits + 1)
        out.append(struct.pack("<BHHHHB", 0x2C, 0, 0, width, height, 0x80 | size_bits))
        out += [palette, lzw]
    out.append(b";")
    Path(path).write_bytes(b"".join(out))


def _gif_picture(frame: Image.Image) -> tuple[bytes, bytes]:
    """(colour table of 2**n entries, LZW image data with its terminator) of one frame."""
    if frame.mode == "RGBA":
        rgba = np.asarray(frame)
        indexed = Image.fromarray(np.ascontiguousarray(rgba[..., :3])).quantize(_TRANSPARENT_INDEX)
        palette = (indexed.getpalette() or [])[: 3 * _TRANSPARENT_INDEX]
        pixels = np.array(indexed)
        pixels[rgba[..., 3] < 128] = _TRANSPARENT_INDEX
        indexed = Image.fromarray(pixels, "P")
        indexed.putpalette(palette + [0] * (768 - len(palette)))
    else:
        indexed = frame.convert("P", palette=Image.Palette.ADAPTIVE)
    buffer = io.BytesIO()
    indexed.save(buffer, format="GIF", optimize=False, interlace=False)
    return _gif_single_frame(buffer.getvalue())


def _gif_single_frame(data: bytes) -> tuple[bytes, bytes]:
    """The global colour table and the image data of a one-frame GIF as Pillow writes it."""
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        raise ValueError("not a GIF")
    flags = data[10]
    at = 13
    if not flags & 0x80:
        raise ValueError("a GIF frame without a colour table")
    table_size = 3 << ((flags & 7) + 1)
    palette = data[at : at + table_size]
    at += table_size
    while data[at] == 0x21:  # extension blocks (graphic control): skipped, written anew
        at += 2
        while data[at]:
            at += data[at] + 1
        at += 1
    if data[at] != 0x2C or data[at + 9] & 0x80:
        raise ValueError("unexpected GIF frame layout")
    start = at + 10  # LZW minimum code size, then sub-blocks up to an empty one
    at = start + 1
    while data[at]:
        at += data[at] + 1
    return palette, data[start : at + 1]


def write_webp(
    path: Path, frames: list[Image.Image], durations: list[float], loop: int, quality: int
) -> None:
    """Write ``frames`` (RGB or RGBA) as an animated WebP, lossy at ``quality``.

    Args:
        path: the output file.
        frames: one picture per frame, all of one size and mode.
        durations: display time of each frame in milliseconds.
        loop: how many times the animation plays (0: for ever).
        quality: the VP8 quality, 0-100.
    """
    width, height = frames[0].size
    alpha = frames[0].mode == "RGBA"
    chunks = [
        _chunk(
            b"VP8X", struct.pack("<B3x", 0x02 | (0x10 if alpha else 0)) + _u24(width - 1) + _u24(height - 1)
        ),
        _chunk(b"ANIM", struct.pack("<4BH", 0, 0, 0, 0, loop)),
    ]  # transparent background
    for frame, duration in zip(frames, durations):
        buffer = io.BytesIO()
        frame.save(buffer, format="WEBP", quality=quality, method=4)
        header = (
            _u24(0)
            + _u24(0)
            + _u24(width - 1)
            + _u24(height - 1)
            + _u24(min(round(duration), _WEBP_MAX_DURATION))
            + bytes([_WEBP_NO_BLEND])
        )
        chunks.append(_chunk(b"ANMF", header + _webp_bitstream(buffer.getvalue())))
    body = b"WEBP" + b"".join(chunks)
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def _u24(value: int) -> bytes:
    return value.to_bytes(3, "little")


def _chunk(kind: bytes, payload: bytes) -> bytes:
    """A RIFF chunk, padded to an even size."""
    return kind + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) & 1)


def _webp_bitstream(data: bytes) -> bytes:
    """The ALPH, VP8 and VP8L chunks of a still WebP as Pillow writes it, as they are."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP")
    kept, at = [], 12
    while at + 8 <= len(data):
        kind, size = data[at : at + 4], struct.unpack_from("<I", data, at + 4)[0]
        end = at + 8 + size + (size & 1)
        if kind in (b"ALPH", b"VP8 ", b"VP8L"):
            kept.append(data[at:end])
        elif kind != b"VP8X":
            raise ValueError(f"unexpected chunk {kind!r} in a WebP frame")
        at = end
    return b"".join(kept)
