"""Metadata proven gone by independent readers: exiftool (-a -G1 -ee) and FFmpeg's ffprobe.

The dirty inputs are made the way cameras and phones make them, by the tools that write such
files: FFmpeg (chapters, cover art, a subtitle track, a chapter-text and a timecode data track,
creation time, place, device and handler names) and exiftool (EXIF GPS/camera/serial/dates, an
EXIF thumbnail, XMP, IPTC) on a multi-picture (MPF) JPEG with bytes after its end as the
aCropalypse bug left them, and a PNG with tEXt/iTXt/eXIf chunks and data after IEND.
Each test first shows the reader sees the dirt in the input, so a clean output means something.
The tools come from Debian (``ffmpeg``, ``libimage-exiftool-perl``; ``.ci/run`` installs them);
without them these tests skip. blur itself never uses them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import FAST, exiftool_all, need_tool
from PIL import Image

from blur import pipeline, record

FACES = FAST.merged(kinds=("face",))
PERSON, PLACE = "Jane Reporter", "Alexanderplatz"
SECRETS = [
    PERSON,
    PLACE,
    "52.52",
    "+52.5200",
    "Canon",
    "EOS 5D",
    "012345678901",
    "2024:05:01",
    "2024-05-01",
    "iPhone",
    "Core Media",
    "01:02:03:04",
]


def run(*args) -> str:
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True).stdout


def ffprobe(path: Path) -> dict:
    return json.loads(
        run(
            need_tool("ffprobe"),
            "-v",
            "error",
            "-show_format",
            "-show_streams",
            "-show_chapters",
            "-of",
            "json",
            path,
        )
    )


def secrets_in(tags: dict) -> list[str]:
    text = json.dumps(tags)
    return [s for s in SECRETS if s in text]


# ---- videos -----------------------------------------------------------------------------


def dirty_video(tmp_path: Path, name: str, apple: bool = False) -> Path:
    """A clip as a phone or an editor leaves it: see the module docstring."""
    ffmpeg = need_tool("ffmpeg")
    subs = tmp_path / "subs.srt"
    subs.write_text(f"1\n00:00:00,000 --> 00:00:00,500\n{PERSON} at {PLACE}\n\n")
    chapters = tmp_path / "chapters.txt"
    chapters.write_text(
        f";FFMETADATA1\ntitle=Demo at {PLACE}\n[CHAPTER]\nTIMEBASE=1/1000\n"
        f"START=0\nEND=500\ntitle=Arrest at {PLACE}\n"
    )
    cover = tmp_path / "cover.jpg"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(cover)
    dst = tmp_path / name
    tags = {
        "location": "+52.5200+013.4050/",
        "creation_time": "2024-05-01T12:34:56Z",
        "make": "Canon",
        "model": "EOS 5D",
        "artist": PERSON,
    }
    if apple:
        tags.update(
            {
                "com.apple.quicktime.location.ISO6709": "+52.5200+013.4050+034.000/",
                "com.apple.quicktime.make": "Apple",
                "com.apple.quicktime.model": "iPhone 15",
            }
        )
    cmd = [
        ffmpeg,
        "-y",
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=30:duration=1",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=1",
        "-i",
        subs,
        "-i",
        chapters,
        "-i",
        cover,
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:s",
        "-map_metadata",
        "3",
        "-map_chapters",
        "3",
        "-c:v:0",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-c:s",
        "mov_text",
        "-timecode",
        "01:02:03:04",
        "-metadata:s:v:0",
        "handler_name=Core Media Video",
    ]
    if not apple:  # MP4 holds cover art as an attached picture; QuickTime MOV does not
        cmd += ["-map", "4:v", "-c:v:1", "mjpeg", "-disposition:v:1", "attached_pic"]
    for key, value in tags.items():
        cmd += ["-metadata", f"{key}={value}"]
    if apple:
        cmd += ["-movflags", "use_metadata_tags"]
    run(*cmd, dst)
    return dst


@pytest.mark.parametrize("name, apple", [("phone.mp4", False), ("iphone.mov", True)])
def test_video_output_is_clean_for_ffprobe_and_exiftool(tmp_path, name, apple):
    src = dirty_video(tmp_path, name, apple)
    before = ffprobe(src)
    types = [s["codec_type"] for s in before["streams"]]
    assert {"subtitle", "data"} <= set(types) and before["chapters"], types
    assert secrets_in(before["format"].get("tags", {})) and secrets_in(exiftool_all(src))
    if not apple:
        assert any(s.get("disposition", {}).get("attached_pic") for s in before["streams"])

    dst = pipeline.anonymise(src, None, FACES).dst
    after = ffprobe(dst)
    assert [s["codec_type"] for s in after["streams"]] == ["video", "audio"]
    assert after["chapters"] == []
    tags = dict(after["format"].get("tags", {}))
    assert record.well_formed(tags.pop("blur_record"))  # blur's record of the render, see blur.record
    assert set(tags) <= {"major_brand", "minor_version", "compatible_brands"}
    for stream in after["streams"]:
        assert not any(stream["disposition"].get(k) for k in ("attached_pic", "timed_thumbnails"))
        tags = stream.get("tags", {})
        assert set(tags) <= {"language", "handler_name", "vendor_id"}, tags
        assert tags.get("handler_name") in (None, "VideoHandler", "SoundHandler")
    assert secrets_in(after) == []
    found = exiftool_all(dst)
    assert secrets_in(found) == []
    dates = {k: v for k, v in found.items() if "Date" in k and not str(v).startswith("0000")}
    assert dates == {}  # no date from the source (nor any other)
    assert not [
        k
        for k in found
        if any(w in k for w in ("GPS", "Make", "Model", "Text", "Chapter", "Cover", "Thumbnail"))
    ]


# ---- photos -----------------------------------------------------------------------------


def _exif_dirt(path: Path, thumbnail: Path) -> None:
    run(
        need_tool("exiftool"),
        "-q",
        "-overwrite_original",
        "-GPSLatitude=52.52",
        "-GPSLatitudeRef=N",
        "-GPSLongitude=13.405",
        "-GPSLongitudeRef=E",
        "-Make=Canon",
        "-Model=EOS 5D",
        "-SerialNumber=012345678901",
        "-DateTimeOriginal=2024:05:01 12:34:56",
        f"-Artist={PERSON}",
        f"-XMP-dc:Creator={PERSON}",
        f"-XMP-iptcCore:Location={PLACE}",
        *(
            [f"-IPTC:By-line={PERSON}", f"-ThumbnailImage<={thumbnail}"]
            if path.suffix == ".jpg"
            else [f"-PNG:Author={PERSON}", f"-PNG:Comment={PLACE}"]
        ),
        path,
    )


def dirty_photo(tmp_path: Path, face_frame, ext: str) -> Path:
    thumbnail = tmp_path / "thumb.jpg"
    Image.fromarray(face_frame).resize((80, 60)).save(thumbnail)
    picture = Image.fromarray(face_frame)
    if ext == ".jpg":  # a multi-picture JPEG (MPF), like phones' depth or gain-map photos
        mpo = tmp_path / "two.mpo"
        picture.save(mpo, save_all=True, append_images=[picture.rotate(90)])
        src = mpo.rename(tmp_path / "phone.jpg")
    else:
        src = tmp_path / "phone.png"
        picture.save(src)
    _exif_dirt(src, thumbnail)
    # What an aCropalypse-style editor leaves: the rest of the longer original after the end.
    with open(src, "ab") as f:
        f.write(b"\x00\x00rest of the original by " + PERSON.encode() + b" at " + PLACE.encode())
    return src


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_photo_output_is_clean_for_exiftool(tmp_path, face_frame, ext):
    src = dirty_photo(tmp_path, face_frame, ext)
    before = exiftool_all(src)
    assert secrets_in(before)
    assert any("GPS" in k for k in before)
    if ext == ".jpg":
        assert any(k.startswith("MPImage2:") for k in before)  # the second picture
        assert "IFD1:ThumbnailImage" in before
    else:
        assert any(k.startswith("PNG:") and PERSON in str(v) for k, v in before.items())
        assert "eXIf" in src.read_bytes().decode("latin-1")

    dst = pipeline.anonymise(src, None, FACES).dst
    after = exiftool_all(dst)
    assert secrets_in(after) == []
    assert not [
        k
        for k in after
        if k.split(":")[0] in ("IFD0", "IFD1", "ExifIFD", "GPS", "IPTC", "MPF0", "MPImage1", "MPImage2")
        or k.split(":")[0].startswith("XMP")
    ]
    assert not [k for k in after if "Warning" in k]  # e.g. "Trailer data after PNG IEND chunk"
    data = dst.read_bytes()
    assert data.endswith(b"\xff\xd9" if ext == ".jpg" else b"IEND\xaeB`\x82")
    assert PERSON.encode() not in data and b"Exif" not in data
