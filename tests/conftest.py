"""Shared fixtures: tiny generated photos and videos (written into tmp_path), a real face, and
the real footage in ../shared/media when it is there.

Generated clips are small (160x120 to 320x240, at most 30 frames) so the whole suite stays fast.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms

from blur.settings import Settings

SHARED_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
# The coverage helper the benchmarks measure with (benchmarks/masks.py) is the tests' too;
# tests take it from here (from conftest import covered_share).
sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))
from masks import covered_share, redaction_mask  # noqa: E402, F401

# Settings for tests: the fastest x264 preset; everything else is the default.
FAST = Settings(preset="ultrafast")


def shared_file(name: str) -> Path:
    """A file of ../shared/media, or skip the test saying why."""
    path = SHARED_MEDIA / name
    if not path.is_file():
        pytest.skip(f"real footage {path} is not available (../shared/media is absent)")
    return path


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """NASA's public-domain portrait (samples/astronaut.jpg, as bundled with scikit-image): one
    large, frontal face, 512x512 RGB."""
    return np.asarray(Image.open(SAMPLES / "astronaut.jpg").convert("RGB"))


@pytest.fixture(scope="session")
def face_frame(astronaut) -> np.ndarray:
    """A 240x180 RGB picture with one upright face, in the top half, left of centre."""
    small = cv2.resize(astronaut, (240, 240), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small[:180])


def pattern(index: int, width: int, height: int) -> np.ndarray:
    """A frame that says which frame it is: a smooth gradient plus a grey level set by ``index``
    in the top-left block, readable back after lossy encoding (``frame_index``)."""
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.empty((height, width, 3), np.uint8)
    image[..., 0] = (xx * 255 // max(width - 1, 1)).astype(np.uint8)
    image[..., 1] = (yy * 255 // max(height - 1, 1)).astype(np.uint8)
    image[..., 2] = 128
    image[:16, :16] = 15 + 14 * (index % 16)
    return image


def frame_index(image: np.ndarray) -> int:
    """Inverse of ``pattern``: the index (mod 16) written into the top-left block."""
    level = float(image[4:12, 4:12].mean())
    return int(round((level - 15) / 14)) % 16


def write_video(
    path: Path,
    *,
    frames: int = 12,
    size: tuple[int, int] = (160, 120),
    rate: Fraction | int = 30,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    image=None,
    rotation: int | None = None,
    tags: dict | None = None,
    stream_tags: dict | None = None,
    audio: str | None = None,
    video_codec: str = "libx264",
    container_format: str | None = None,
    options: dict | None = None,
    sample_aspect_ratio: Fraction | None = None,
) -> Path:
    """Write a small test video with PyAV.

    Args:
        path: where; the extension picks the container unless ``container_format`` is given.
        frames: number of video frames.
        size: (width, height) of the stored pictures.
        rate: nominal frame rate (a Fraction for rates such as 30000/1001).
        pts: explicit presentation timestamps (in ``time_base``), for variable frame rate.
        time_base: time base of ``pts``; default 1/rate.
        image: ``image(i) -> (H, W, 3) uint8`` for frame i; default ``pattern``.
        rotation: display rotation (counter-clockwise degrees) stored in the container.
        tags / stream_tags: container and video-stream metadata to write.
        audio: an audio encoder name ("aac", "libopus", "mp3", "pcm_s16le", ...) or None.
        video_codec: the video encoder.
        container_format / options: muxer name and options (e.g. MOV's
            ``movflags=use_metadata_tags``, which writes Apple's ``mdta`` keys as an iPhone does).
        sample_aspect_ratio: non-square pixels (anamorphic video).
    """
    width, height = size
    rate = Fraction(rate)
    time_base = time_base or 1 / rate
    out = av.open(str(path), "w", format=container_format, options=options or {})
    out.metadata.update(tags or {})
    video = out.add_stream(video_codec, rate=rate)
    video.width, video.height = width, height
    video.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    if video_codec == "libx264":
        video.options = {"preset": "ultrafast", "crf": "12"}
    video.time_base = time_base
    video.codec_context.time_base = time_base
    video.metadata.update(stream_tags or {})
    if sample_aspect_ratio is not None:
        video.codec_context.sample_aspect_ratio = sample_aspect_ratio
    if rotation is not None:
        video.set_display_rotation(rotation)
    sound = None
    if audio:
        sound = out.add_stream(audio, rate=48000 if audio in ("libopus", "opus") else 44100)
        sound.layout = "stereo"
    timestamps = pts if pts is not None else list(range(frames))
    for i, t in enumerate(timestamps):
        picture = image(i) if image is not None else pattern(i, width, height)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
        frame.pts = t
        frame.time_base = time_base
        out.mux(video.encode(frame))
    out.mux(video.encode(None))
    if sound is not None:
        _write_tone(out, sound, seconds=float(timestamps[-1] * time_base + 1 / rate))
    out.close()
    return path


def _write_tone(out, sound, seconds: float) -> None:
    """A sine tone with some noise, so every audio packet differs."""
    rate = sound.codec_context.sample_rate
    chunk = sound.codec_context.frame_size or 1024
    fmt = sound.codec_context.format.name
    rng = np.random.default_rng(1)
    total = int(seconds * rate)
    for start in range(0, total, chunk):
        t = (np.arange(start, start + chunk) / rate)[None, :]
        wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal((2, chunk))
        if fmt.startswith("s16"):
            samples = (wave * 32767).astype(np.int16)
        elif fmt.startswith("s32"):
            samples = (wave * 2147483647).astype(np.int32)
        else:
            samples = wave.astype(np.float64 if fmt.startswith("dbl") else np.float32)
        if not fmt.endswith("p"):
            samples = samples.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format=fmt, layout="stereo")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        out.mux(sound.encode(frame))
    out.mux(sound.encode(None))


def video_facts(path: Path) -> dict:
    """What a reader of ``path`` sees: sizes, rotation, rate, every frame's time and index mark,
    the audio packets' bytes, and all tags."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        facts = {
            "format": c.format.name,
            "tags": dict(c.metadata),
            "stream_tags": [dict(s.metadata) for s in c.streams],
            "stream_types": [s.type for s in c.streams],
            "rate": v.average_rate,
            "width": v.codec_context.width,
            "height": v.codec_context.height,
            "duration": _stream_seconds(v),
        }
        times, marks, rotations, images = [], [], set(), []
        for frame in c.decode(v):
            times.append(Fraction(frame.pts) * frame.time_base)
            rotations.add(frame.rotation)
            rgb = frame.to_ndarray(format="rgb24")
            images.append(rgb)
            marks.append(frame_index(rgb))
        facts.update(times=times, marks=marks, rotations=rotations, images=images)
    with av.open(str(path)) as c:
        facts["audio_packets"] = [
            bytes(p) for p in c.demux(c.streams.audio) if p.size and p.stream.type == "audio"
        ]
        facts["audio_codecs"] = [s.codec_context.name for s in c.streams.audio]
    return facts


def _stream_seconds(stream) -> float:
    """A stream's own duration (Matroska keeps it in a DURATION tag, "HH:MM:SS.nnnnnnnnn")."""
    if stream.duration is not None:
        return float(stream.duration * stream.time_base)
    h, m, s = stream.metadata["DURATION"].split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def exif_with_gps(orientation: int | None = None) -> Image.Exif:
    """EXIF naming a camera, a time and a place (Berlin), as a phone would write."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "Canon EOS 5D Mark IV"
    exif[ExifTags.Base.DateTime] = "2024:05:01 12:34:56"
    exif[ExifTags.Base.Artist] = "Jane Reporter"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2024:05:01 12:34:56"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.BodySerialNumber] = "012345678901"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 1.0)
    return exif


@pytest.fixture(scope="session")
def srgb_icc() -> bytes:
    """An ICC colour profile (Little CMS's sRGB), to check it is kept."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture
def fast() -> Settings:
    return FAST


def redacted_mask(plan, index: int, width: int, height: int, settings: Settings = FAST):
    """Boolean (H, W) mask of every pixel the plan redacts in frame ``index``."""
    from blur.tracking import boxes_at

    boxes = boxes_at(plan.tracks, plan.frame_count)[index]
    return redaction_mask(boxes.xyxy, width, height, settings.mask_scale, settings.shape, boxes.kind)


def iou(a, b) -> float:
    """IoU of two xyxy boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# Debian package of each outside tool the tests use to make fixtures or re-read outputs.
TOOL_PACKAGES = {
    "exiftool": "libimage-exiftool-perl",
    "ffmpeg": "ffmpeg",
    "ffprobe": "ffmpeg",
    "heif-enc": "libheif-examples",
}


def need_tool(tool: str) -> str:
    """The path of an outside tool, or skip the test saying which package brings it."""
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (apt-get install {TOOL_PACKAGES[tool]})")
    return path


def exiftool_all(path) -> dict:
    """Every tag exiftool finds, embedded documents included (-ee), as {"Group:Tag": value},
    without the groups that describe the file itself."""
    out = subprocess.run(
        [need_tool("exiftool"), "-j", "-a", "-u", "-G1", "-ee", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {
        k: v
        for k, v in json.loads(out)[0].items()
        if k.split(":")[0] not in ("SourceFile", "System", "ExifTool", "File")
    }
