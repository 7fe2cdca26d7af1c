"""Still images: read upright RGB, write a fresh file that carries no metadata but the ICC profile."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UnsupportedMediaError
from ..types import MediaInfo
from . import heif, metadata

# Pillow format name -> what we write back (a HEIF-family photo: see ``heif.written_as``).
FORMATS = {
    "JPEG": "JPEG",
    "PNG": "PNG",
    "WEBP": "WEBP",
    "TIFF": "TIFF",
    "BMP": "BMP",
    "MPO": "JPEG",
    "HEIF": "HEIF",
    "AVIF": "AVIF",
}
EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"} | heif.EXTENSIONS
MAX_PIXELS = 250_000_000  # refuse before decoding: a forged header must not exhaust memory


@dataclass
class Still:
    """A decoded still: upright RGB pixels plus what is needed to write it back."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    format: str
    mode: str
    icc_profile: bytes | None
    lossless: bool = False


def _open(path: Path) -> Image.Image:
    if path.is_file() and path.stat().st_size == 0:
        raise UnsupportedMediaError("the file is empty (0 bytes)", path)
    missing = heif.unreadable_because(path)
    if missing:
        raise UnsupportedMediaError(missing, path)
    try:
        im = Image.open(path)
    except Image.DecompressionBombError as exc:  # a header claiming a gigantic size
        raise UnsupportedMediaError(f"image is too large: {exc}", path) from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedMediaError(
            "not an image blur can read (damaged, truncated or another format)", path
        ) from exc
    except (ValueError, RuntimeError, EOFError) as exc:  # libheif's and libavif's refusals
        raise UnsupportedMediaError(f"cannot decode image: {exc}", path) from exc
    except OSError as exc:
        raise UnsupportedMediaError(f"cannot open image: {exc.strerror or exc}", path) from exc
    if im.format not in FORMATS:
        raise UnsupportedMediaError(f"image format {im.format} is not supported", path)
    w, h = im.size
    if w * h > MAX_PIXELS:
        raise UnsupportedMediaError(f"image is too large ({w}x{h} pixels)", path)
    if getattr(im, "n_frames", 1) > 1 and im.format in heif.FORMATS:
        raise UnsupportedMediaError(
            f"{im.format} file with {im.n_frames} images (a burst or an image sequence) is not "
            f"supported: only single photos are",
            path,
        )
    if getattr(im, "n_frames", 1) > 1 and im.format != "MPO":
        raise UnsupportedMediaError(
            f"animated or multi-page {im.format} ({im.n_frames} frames) is not supported: "
            f"convert an animation to a video (MP4), or pages to single images",
            path,
        )
    return im


def probe(path: Path) -> MediaInfo:
    """Size (upright) and identifying metadata of a still, without decoding its pixels."""
    with _open(path) as im:
        w, h = im.size
        try:  # a PNG's EXIF may follow its pixels, so this can read (and fail on) the whole file
            orientation = im.getexif().get(0x0112, 1)
            found = metadata.image_metadata(im)
            if im.format in heif.FORMATS:
                found = sorted(set(found) | set(heif.contents(path)))
        except (OSError, ValueError, SyntaxError, RuntimeError) as exc:
            raise UnsupportedMediaError(f"cannot decode image: {exc}", path) from exc
        if orientation in (5, 6, 7, 8):
            w, h = h, w
        return MediaInfo(path=path, kind="image", width=w, height=h, metadata_found=found)


def read(path: Path) -> Still:
    """Decode a still, apply its EXIF orientation, and split off any alpha channel."""
    with _open(path) as im:
        try:
            im.load()
            fmt, icc = im.format, im.info.get("icc_profile")
            upright = ImageOps.exif_transpose(im)
        except (OSError, ValueError, SyntaxError, RuntimeError, EOFError) as exc:
            raise UnsupportedMediaError(f"cannot decode image: {exc}", path) from exc
    mode = upright.mode
    alpha = None
    if "A" in upright.getbands() or (mode == "P" and "transparency" in upright.info):
        rgba = np.asarray(upright.convert("RGBA"))
        rgb, alpha = np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
    else:
        rgb = np.asarray(_eight_bit(upright).convert("RGB")).copy()
    return Still(
        rgb=rgb,
        alpha=alpha,
        format=FORMATS[fmt],
        mode=mode,
        icc_profile=icc,
        lossless=fmt == "WEBP" and _webp_is_lossless(path),
    )


def _eight_bit(im: Image.Image) -> Image.Image:
    """16-bit and float greys scaled to 8 bits: Pillow's own conversion clips them (a 16-bit
    scan would turn white, and its faces would go undetected)."""
    if im.mode not in ("I", "F") and not im.mode.startswith("I;16"):
        return im
    values = np.asarray(im, dtype=np.float64)
    if im.mode.startswith("I;16") or (im.mode == "I" and values.max() > 255):
        values = values / 257
    elif im.mode == "F" and values.max() <= 1.0:
        values = values * 255
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")


def _webp_is_lossless(path: Path) -> bool:
    """Whether a WebP's image chunk is VP8L (lossless): Pillow does not say."""
    with open(path, "rb") as fh:
        fh.read(12)  # RIFF, size, WEBP
        while True:
            header = fh.read(8)
            if len(header) < 8:
                return False
            tag, size = header[:4], int.from_bytes(header[4:], "little")
            if tag in (b"VP8 ", b"VP8L"):
                return tag == b"VP8L"
            fh.seek(size + (size & 1), 1)  # chunks are padded to an even size


def _icc_fits(profile: bytes, mode: str) -> bool:
    """A profile describes one colour space (bytes 16-20 of its header); a CMYK source's profile
    on the RGB pixels written back would show wrong colours, so it is dropped."""
    space = profile[16:20]
    return space == b"GRAY" if mode == "L" else space == b"RGB "


def output_format(still: Still, name: Path) -> str:
    """The format a still is written in, as an output called ``name``: its own, except that a
    HEIC/AVIF photo becomes what the name says (JPEG by default, see ``heif.written_as``).

    Raises:
        UnsupportedMediaError: a HEIC/AVIF photo given an output name of another format.
    """
    if still.format not in heif.FORMATS:
        return still.format
    try:
        return heif.written_as(name)
    except ValueError as exc:
        raise UnsupportedMediaError(str(exc)) from exc


def write(still: Still, path: Path, quality: int = 95) -> None:
    """Write a fresh file from pixels only, in ``still.format``: nothing of the source's
    metadata is carried over except the ICC colour profile (it changes how colours look, and
    identifies nobody). ``quality``: of JPEG, WebP, HEIC and AVIF outputs."""
    fmt = still.format
    if still.alpha is not None and fmt in ("PNG", "WEBP", "TIFF"):
        im = Image.fromarray(np.dstack([still.rgb, still.alpha]), "RGBA")
    else:
        im = Image.fromarray(still.rgb, "RGB")
        grey = still.mode in ("L", "1", "I", "F") or still.mode.startswith("I;16")
        if grey and fmt not in ("BMP", "HEIF", "AVIF"):
            im = im.convert("L")  # a grey source stays grey
    options: dict = {}
    if still.icc_profile and _icc_fits(still.icc_profile, im.mode):
        options["icc_profile"] = still.icc_profile
    if fmt == "JPEG":
        options.update(quality=quality, subsampling=0 if quality >= 90 else 2)
    elif fmt == "WEBP" and still.lossless:
        options.update(lossless=True)
    elif fmt == "WEBP":
        options.update(quality=quality, method=4)
    elif fmt == "PNG":
        options.update(optimize=False, compress_level=6)
    elif fmt == "TIFF":
        options.update(compression="tiff_lzw")
    elif fmt in heif.FORMATS:
        options.update(heif.save_options(fmt, quality))
    with open(path, "wb") as fh:
        im.save(fh, format=fmt, **options)
