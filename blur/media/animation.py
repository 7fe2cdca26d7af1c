"""Animated pictures (GIF, animated WebP, APNG): a short video without sound, read with Pillow,
written with Pillow (APNG) or ``animation_writer`` (GIF, WebP).

The pipeline treats one like a video: every frame is scanned, faces are tracked and gaps
filled across frames, and every frame is redacted. The output is the input's format, with the
same frames (identical neighbours too), per-frame durations and loop count, checked by
re-reading the output. Pillow hands over each frame composited onto
the canvas (GIF disposal, APNG blending, WebP sub-frames), so each one is a whole picture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import MediaError, UnsupportedMediaError
from ..types import Frame, MediaInfo
from . import animation_writer, metadata

# Always this family, even with one frame; .png and .webp only when they hold several frames.
EXTENSIONS = {".gif", ".apng"}
MAYBE_ANIMATED = {".png", ".webp"}
FORMATS = {"GIF", "WEBP", "PNG"}
# Every frame is held until the output is written (the encoders need them all), at about 4-5
# bytes a pixel: refuse before decoding what would not fit in memory (frames x width x height;
# 60 frames of 1280x720, 55 million pixels: a whole run peaked at 0.94 GB, models included).
MAX_PIXELS = 250_000_000
# A frame shown for 0 ms is shown for about 100 ms by browsers: the frame rate tracking uses.
_ZERO_DELAY_FPS = Fraction(10)


def is_animation(path: Path) -> bool:
    """A GIF or APNG by its name, or a PNG/WebP holding several frames (read from its header;
    a file that cannot be opened is left to the still-image reader and its error message)."""
    suffix = path.suffix.lower()
    if suffix in EXTENSIONS:
        return True
    if suffix not in MAYBE_ANIMATED or not path.is_file() or path.stat().st_size == 0:
        return False
    try:
        with Image.open(path) as im:
            return im.format in FORMATS and getattr(im, "n_frames", 1) > 1
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return False


def _open(path: Path) -> Image.Image:
    if path.is_file() and path.stat().st_size == 0:
        raise UnsupportedMediaError("the file is empty (0 bytes)", path)
    try:
        im = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise UnsupportedMediaError(f"image is too large: {exc}", path) from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedMediaError(
            "not an image blur can read (damaged, truncated or another format)", path
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise UnsupportedMediaError(f"cannot open image: {exc}", path) from exc
    try:
        count = getattr(im, "n_frames", 1)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # counting reads every frame
        im.close()
        raise UnsupportedMediaError(f"cannot decode animation: {exc}", path) from exc
    if im.format not in FORMATS:
        im.close()
        raise UnsupportedMediaError(f"{im.format} is not an animation format blur reads", path)
    w, h = im.size
    if w * h * count > MAX_PIXELS:
        im.close()
        raise UnsupportedMediaError(f"animation is too large ({count} frames of {w}x{h})", path)
    return im


def _durations(im: Image.Image) -> list[float]:
    """Each frame's display time in milliseconds (seeking reads each frame's header)."""
    out = []
    for index in range(getattr(im, "n_frames", 1)):
        im.seek(index)
        if im.format == "WEBP":
            im.load()  # Pillow's WebP reader learns a frame's duration only by decoding it
        out.append(im.info.get("duration", 0) or 0)
    im.seek(0)
    return out


def _times(durations: list[float]) -> list[Fraction]:
    times, at = [], Fraction(0)
    for d in durations:
        times.append(at)
        at += Fraction(d).limit_denominator(1000) / 1000
    return times


def probe(path: Path) -> MediaInfo:
    """Size, frame count, duration and identifying metadata of an animation."""
    with _open(path) as im:
        try:
            durations = _durations(im)
            found = []
            for index in range(len(durations)):
                im.seek(index)
                found += metadata.image_metadata(im)
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise UnsupportedMediaError(f"cannot decode animation: {exc}", path) from exc
        total = sum(durations) / 1000
        fps = (
            Fraction(len(durations)) / Fraction(total).limit_denominator(100000)
            if total > 0
            else _ZERO_DELAY_FPS
        )
        return MediaInfo(
            path=path,
            kind="animation",
            width=im.width,
            height=im.height,
            fps=fps,
            frame_count=len(durations),
            duration=total,
            metadata_found=sorted(set(found)),
        )


def _decoded(path: Path) -> Iterator[tuple[Frame, np.ndarray, float]]:
    """(frame, alpha channel, duration in ms) of each frame, composited, RGB."""
    with _open(path) as im:
        try:
            durations = _durations(im)
            for index, (time, duration) in enumerate(zip(_times(durations), durations)):
                im.seek(index)
                rgba = np.asarray(im.convert("RGBA"))
                frame = Frame(image=np.ascontiguousarray(rgba[..., :3]), index=index, time=time)
                yield frame, np.ascontiguousarray(rgba[..., 3]), duration
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise MediaError(f"damaged animation data ({exc})", path) from exc


def frames(path: Path) -> Iterator[Frame]:
    """Decode every frame, upright RGB composited onto the canvas, with its start time."""
    for frame, _, _ in _decoded(path):
        yield frame


def _write(
    dst: Path, fmt: str, images: list[Image.Image], durations: list[float], info: dict, quality: int
) -> None:
    """Write every frame, identical neighbours included, each with its own duration."""
    if fmt == "GIF":
        # No NETSCAPE block in the input means "play once": none in the output either.
        animation_writer.write_gif(dst, images, durations, info.get("loop"))
    elif fmt == "WEBP":
        animation_writer.write_webp(dst, images, durations, info.get("loop", 0), quality)
    else:
        # Whole frames (blend: source) replacing each other. Pillow stores a frame identical to
        # the one before as a longer display of it, unless the two differ in disposal: the
        # disposal alternates between none and clear-to-transparent (both show whole frames
        # alike, and Pillow encodes each frame against what the one before leaves behind).
        with open(dst, "wb") as fh:
            images[0].save(
                fh,
                format="PNG",
                save_all=True,
                append_images=images[1:],
                duration=durations,
                loop=info.get("loop", 0),
                blend=0,
                disposal=[i % 2 for i in range(len(images))],
                default_image=False,
            )


def transcode(
    src: Path,
    dst: Path,
    process: Callable[[Frame], np.ndarray],
    *,
    quality: int = 95,
    on_frame: Callable[[int], None] | None = None,
) -> dict:
    """Decode ``src``, pass each frame through ``process``, write ``dst`` in the same format with
    the same per-frame durations and loop count, then re-read it and check the timing.

    Returns:
        {"frames": frames decoded, processed and written}.

    Raises:
        MediaError: damaged input, or an output whose frames or timing differ from the input's.
    """
    with _open(src) as im:
        fmt, info = im.format, dict(im.info)
    images, alphas, durations = [], [], []
    for frame, alpha, duration in _decoded(src):
        # Held as Pillow images (4 bytes a pixel), the alpha plane only where it is not opaque.
        images.append(Image.fromarray(process(frame), "RGB"))
        alphas.append(alpha if (alpha < 255).any() else None)
        durations.append(duration)
        if on_frame:
            on_frame(frame.index + 1)
    if any(a is not None for a in alphas):  # one transparent frame: every frame gets alpha
        for im, alpha in zip(images, alphas):
            im.putalpha(Image.fromarray(alpha, "L") if alpha is not None else 255)
    _write(dst, fmt, images, durations, info, quality)
    _check_timing(dst, src, durations, info)
    return {"frames": len(images)}


def _check_timing(dst: Path, src: Path, durations: list[float], info: dict) -> None:
    """The output, re-read, has the input's frame count, per-frame durations and loop count."""
    with Image.open(dst) as out:
        got = _durations(out)
        loop = out.info.get("loop")
    if len(got) != len(durations):
        raise MediaError(f"wrote {len(got)} frames from {len(durations)}", src)
    if any(abs(a - b) > 1e-6 for a, b in zip(got, durations)):
        raise MediaError(f"the output's frame durations {got} differ from the input's {durations}", src)
    if loop != info.get("loop", loop):
        raise MediaError(f"the output loops {loop} times, the input {info.get('loop')}", src)
