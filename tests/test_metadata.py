"""Dirty inputs -> outputs with no identifying metadata left.

Each test writes places, times, camera and person names into a file, checks that blur's own
reader sees them in the input (so an empty list afterwards means something), runs blur, and
re-reads the output three ways: Pillow/PyAV, blur's ``leftover`` check, and the raw bytes
(plus exiftool, an independent reader, when it is installed).
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import pytest
from conftest import FAST, exif_with_gps, need_tool, write_video
from PIL import Image, PngImagePlugin

from blur import pipeline, record
from blur.errors import MetadataLeftError
from blur.media import metadata, video

# Strings a dirty input carries; none may appear anywhere in an output's bytes.
SECRETS = [
    b"Jane Reporter",
    b"Canon",
    b"EOS 5D",
    b"012345678901",
    b"2024:05:01",
    b"2024-05-01",
    b"+52.5200",
    b"iPhone",
    b"Alexanderplatz",
    b"Photoshop 3.0",
    b"ns.adobe.com/xap",
    b"motion photo",
]
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf'
    b'-syntax-ns#"><rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool='
    b'"Jane Reporter"/></rdf:RDF></x:xmpmeta>'
)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def dirty_jpeg(path: Path, pixels) -> Path:
    """A JPEG with EXIF (GPS, camera, serial, times, artist), XMP, IPTC (APP13), a comment and a
    "motion photo" appended after the end-of-image marker, as some phones do."""
    Image.fromarray(pixels).save(path, exif=exif_with_gps(), xmp=XMP, quality=90)
    data = path.read_bytes()
    iptc = b"\x1c\x02\x50" + struct.pack(">H", 13) + b"Jane Reporter"
    app13 = _segment(0xED, b"Photoshop 3.0\x008BIM\x04\x04\x00\x00" + struct.pack(">I", len(iptc)) + iptc)
    comment = _segment(0xFE, b"Alexanderplatz, shot by Jane Reporter")
    trailer = b"\x00\x00\x00\x18ftypmp42" + b"motion photo of Jane Reporter" * 4
    path.write_bytes(data[:2] + app13 + comment + data[2:] + trailer)
    return path


def dirty_png(path: Path, pixels) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Reporter")
    info.add_text("Location", "Alexanderplatz +52.5200+013.4050", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    Image.fromarray(pixels).save(path, pnginfo=info, exif=exif_with_gps())
    return path


def dirty_webp(path: Path, pixels) -> Path:
    Image.fromarray(pixels).save(path, exif=exif_with_gps(), xmp=XMP, quality=90)
    return path


def dirty_tiff(path: Path, pixels) -> Path:
    exif = exif_with_gps()
    exif[0x0131] = "Canon firmware 1.0"  # Software
    Image.fromarray(pixels).save(path, exif=exif)
    return path


DIRTY_PHOTOS = {".jpg": dirty_jpeg, ".png": dirty_png, ".webp": dirty_webp, ".tif": dirty_tiff}


def exiftool(path: Path) -> dict:
    """Every tag exiftool finds, as {"Group:Tag": value}; skips the test without exiftool."""
    out = subprocess.run(
        [need_tool("exiftool"), "-j", "-a", "-u", "-G1", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)[0]


# Groups exiftool reports for any file, whose tags describe the encoding only.
_TECHNICAL_GROUPS = {
    "ExifTool",
    "System",
    "File",
    "JFIF",
    "ICC-header",
    "ICC_Profile",
    "ICC-view",
    "ICC-meas",
    "Composite",
    "PNG",
    "RIFF",
    "IFD0",
    "QuickTime",
    "Track1",
    "Track2",
    "Matroska",
    "Track",
}
_IDENTIFYING_TAGS = (
    "GPS",
    "Make",
    "Model",
    "Serial",
    "Artist",
    "Author",
    "Creator",
    "DateTimeOriginal",
    "Location",
    "Comment",
    "Software",
    "Title",
)


def _blur_record(value) -> bool:
    """Is this exiftool value blur's own record of the render (``blur.record``), well formed?
    (A JPEG comment carries it behind "blur-record 1/1 ".)"""
    return record.well_formed(re.sub(r"^blur-record 1/1 ", "", str(value)))


def _identifying(tags: dict) -> dict:
    """exiftool tags that name a place, time, device or person (technical fields dropped;
    blur's own record of the render is boxes and scores, see ``blur.record``)."""
    found = {}
    for key, value in tags.items():
        if key == "SourceFile" or _blur_record(value):
            continue
        group, _, name = key.partition(":")
        if group not in _TECHNICAL_GROUPS or any(w in name for w in _IDENTIFYING_TAGS):
            found[key] = value
        elif "Date" in name and str(value).strip("0: ") and not str(value).startswith("0000"):
            if group not in ("System", "ExifTool", "File"):
                found[key] = value
    return found


@pytest.mark.parametrize("ext", sorted(DIRTY_PHOTOS))
def test_photo_metadata_does_not_survive(tmp_path, face_frame, ext):
    src = DIRTY_PHOTOS[ext](tmp_path / f"dirty{ext}", face_frame)
    found = metadata.image_leftover(src)
    assert any("GPS" in item or "Make" in item for item in found), found  # the check can see it

    result = pipeline.anonymise(src, None, FAST)
    dst = result.dst
    assert result.metadata_removed  # reported to the user
    assert metadata.image_leftover(dst) == []
    with Image.open(dst) as out:
        exif = out.getexif()
        assert 0x8825 not in exif and not exif.get_ifd(0x8825)  # no GPS IFD
        assert not {0x010F, 0x0110, 0x013B, 0x0132} & set(exif)  # make, model, artist, time
        assert not {"exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop", "Author", "Location"} & {
            key for key, value in out.info.items() if not metadata.is_blur_record(out, key, value)
        }
        if ext in (".jpg", ".png"):  # blur's record of the render (``blur.record``), and only it
            assert [k for k, v in out.info.items() if metadata.is_blur_record(out, k, v)]
    data = dst.read_bytes()
    for secret in SECRETS:
        assert secret not in data, secret
    if ext == ".jpg":
        assert data.endswith(b"\xff\xd9")  # nothing after the end of the image
        assert b"Exif\x00\x00" not in data


@pytest.mark.parametrize("ext", sorted(DIRTY_PHOTOS))
def test_photo_output_is_clean_for_exiftool(tmp_path, face_frame, ext):
    src = DIRTY_PHOTOS[ext](tmp_path / f"dirty{ext}", face_frame)
    assert _identifying(exiftool(src))  # exiftool sees the dirt in the input
    dst = pipeline.anonymise(src, None, FAST).dst
    assert _identifying(exiftool(dst)) == {}


TAGS = {
    "creation_time": "2024-05-01T12:34:56Z",
    "location": "+52.5200+013.4050/",
    "title": "Demo at Alexanderplatz",
    "comment": "shot by Jane Reporter",
}
APPLE_TAGS = {
    "com.apple.quicktime.location.ISO6709": "+52.5200+013.4050+034.000/",
    "com.apple.quicktime.make": "Apple",
    "com.apple.quicktime.model": "iPhone 15",
    "com.apple.quicktime.creationdate": "2024-05-01T12:34:56+0200",
    "make": "Apple",
    "model": "iPhone 15",
}
STREAM_TAGS = {
    "creation_time": "2024-05-01T12:34:56Z",
    "title": "Jane Reporter's phone",
    "handler_name": "Core Media Video",
}
DIRTY_VIDEOS = {
    "mp4": ("dirty.mp4", dict(tags=TAGS, stream_tags=STREAM_TAGS, audio="aac")),
    "mov_apple_keys": (
        "dirty.mov",
        dict(
            tags={**TAGS, **APPLE_TAGS},
            stream_tags=STREAM_TAGS,
            audio="aac",
            options={"movflags": "use_metadata_tags"},
        ),
    ),
    "mkv": ("dirty.mkv", dict(tags=TAGS, stream_tags=STREAM_TAGS, audio="libopus")),
}


@pytest.mark.parametrize("case", sorted(DIRTY_VIDEOS))
def test_video_tags_do_not_survive(tmp_path, case):
    name, kwargs = DIRTY_VIDEOS[case]
    src = write_video(tmp_path / name, **kwargs)
    found = video.probe(src).metadata_found
    assert "format:location" in found or "format:LOCATION" in found, found
    assert any("creation_time" in f for f in found), found

    result = pipeline.anonymise(src, None, FAST)
    assert metadata.leftover(result.dst) == []
    with av.open(str(result.dst)) as out:
        keys = {
            k for k, v in out.metadata.items() if not (k.lower() == "blur_record" and record.well_formed(v))
        }
        assert keys <= {"major_brand", "minor_version", "compatible_brands", "encoder"}
        assert out.metadata.get("encoder", "Lavf") == "Lavf"  # no FFmpeg version
        for stream in out.streams:
            assert not {"creation_time", "title", "location"} & set(stream.metadata)
            assert stream.metadata.get("handler_name") in (None, "VideoHandler", "SoundHandler")
        assert [s.type for s in out.streams] == ["video", "audio"]
    data = result.dst.read_bytes()
    for secret in SECRETS + [b"Core Media", b"Apple"]:
        assert secret not in data, secret


@pytest.mark.parametrize("case", sorted(DIRTY_VIDEOS))
def test_video_output_is_clean_for_exiftool(tmp_path, case):
    name, kwargs = DIRTY_VIDEOS[case]
    src = write_video(tmp_path / name, **kwargs)
    assert _identifying(exiftool(src))
    dst = pipeline.anonymise(src, None, FAST).dst
    assert _identifying(exiftool(dst)) == {}


def test_mp4_output_names_no_ffmpeg_build(tmp_path):
    src = write_video(tmp_path / "plain.mp4")
    with av.open(str(src)) as c:
        assert c.metadata["encoder"].startswith("Lavf")  # PyAV writes it unless told not to
    dst = pipeline.anonymise(src, None, FAST).dst
    with av.open(str(dst)) as c:
        assert "encoder" not in c.metadata
    data = dst.read_bytes()
    assert b"Lavf" not in data and b"Lavc" not in data


def test_subtitles_attachments_and_chapters_are_dropped(tmp_path):
    """A Matroska file with a subtitle track, an attached file and chapters: only the video
    (and audio) streams are written, with no chapter list."""
    srt = tmp_path / "notes.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,300\nJane Reporter at Alexanderplatz\n\n")
    src = tmp_path / "rich.mkv"
    with av.open(str(srt)) as subs, av.open(str(src), "w") as out:
        out.metadata["title"] = "Demo at Alexanderplatz"
        v = out.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 160, 120, "yuv420p"
        s = out.add_stream_from_template(subs.streams[0])
        out.add_attachment("owner.txt", "text/plain", b"Jane Reporter, +49 30 1234567")
        out.set_chapters(
            [
                {
                    "id": 1,
                    "start": 0,
                    "end": 200,
                    "time_base": Fraction(1, 1000),
                    "metadata": {"title": "Arrest at Alexanderplatz"},
                }
            ]
        )
        from conftest import pattern

        for i in range(8):
            frame = av.VideoFrame.from_ndarray(pattern(i, 160, 120), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 30)
            out.mux(v.encode(frame))
            if i == 0:
                for packet in subs.demux(subs.streams[0]):
                    if packet.size:
                        packet.stream = s
                        out.mux(packet)
        out.mux(v.encode(None))
    found = video.probe(src).metadata_found
    assert {"chapters:1", "stream 1: subtitle stream", "stream 2: attachment stream"} <= set(found)

    dst = pipeline.anonymise(src, None, FAST).dst
    assert dst.suffix == ".mkv"
    assert metadata.leftover(dst) == []
    with av.open(str(dst)) as out:
        assert [s.type for s in out.streams] == ["video"]
        assert out.chapters() == []
    data = dst.read_bytes()
    assert b"Jane Reporter" not in data and b"Alexanderplatz" not in data


def test_output_with_leftover_metadata_is_refused(tmp_path, monkeypatch):
    """Fail closed: if the re-read output still carries metadata, no output is kept."""
    src = write_video(tmp_path / "clip.mp4", frames=4)
    monkeypatch.setattr(metadata, "video_leftover", lambda path, encoder=False: ["format:location"])
    with pytest.raises(MetadataLeftError, match="location"):
        pipeline.anonymise(src, None, FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
