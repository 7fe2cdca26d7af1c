"""Bad input: each case ends with a one-line error naming the file and the problem, a non-zero
exit, no output and no temp file, and the input byte-identical. Awkward but valid input (odd
sizes, 10-bit and 4:4:4 video, CMYK/16-bit/alpha stills, unusual names) must simply work.

Inputs are generated in tmp_path, plus damaged copies of the real files in ../shared/media.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import FAST, pattern, shared_file, write_video
from PIL import Image
from typer.testing import CliRunner

from blur import cli, pipeline
from blur.errors import ExitStatus

FAST_ARGS = ["--preset", "ultrafast"]


def blur(*args):
    """``blur run ARGS`` in-process; stdout and stderr kept apart."""
    return CliRunner().invoke(cli.app, ["run", *map(str, args)])


def tree(root: Path) -> dict[str, str]:
    """Every entry below ``root`` (symlinks not followed): path -> sha256, or -> link target."""
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                entries[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                entries[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                entries[rel] = "dir"
    return entries


def assert_one_line_error(stderr: str, name: str, problem: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{stderr}"
    assert lines[0].startswith("error: "), lines[0]
    assert name in lines[0], f"{name!r} not named in: {lines[0]}"
    assert re.search(problem, lines[0], re.IGNORECASE), f"{problem!r} not in: {lines[0]}"


# ---------------------------------------------------------------------------------- makers
# Each maker writes one input into a folder and returns its path.


def _face(face_frame) -> Image.Image:
    return Image.fromarray(face_frame)


def _noisy(i: int, width: int = 160, height: int = 120) -> np.ndarray:
    """A pattern with moving noise: every frame codes to a large packet with real residuals."""
    noise = np.random.default_rng(0).integers(0, 40, (height, width, 3))
    return np.clip(pattern(i, width, height) + np.roll(noise, 3 * i, axis=1), 0, 255).astype(np.uint8)


def _video_packets(path: Path) -> list[tuple[int, int]]:
    """(byte offset, size) of every video packet, in file order."""
    with av.open(str(path)) as c:
        return [(p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size]


def _damage(path: Path, packet: int, where: float, length: int, seed: int = 7) -> Path:
    """Overwrite ``length`` bytes of one video packet with random bytes."""
    data = bytearray(path.read_bytes())
    pos, size = _video_packets(path)[packet]
    start = pos + int(size * where)
    data[start : start + length] = (
        np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    )
    path.write_bytes(bytes(data))
    return path


def zero_byte_mp4(d, face_frame):
    (d / "empty.mp4").write_bytes(b"")
    return d / "empty.mp4"


def zero_byte_jpg(d, face_frame):
    (d / "empty.jpg").write_bytes(b"")
    return d / "empty.jpg"


def truncated_mp4_without_moov(d, face_frame):
    # The muxer writes the index (moov) last: cutting the file loses it.
    src = write_video(d / "cut.mp4", frames=20)
    data = src.read_bytes()
    assert data.rfind(b"moov") > len(data) // 2
    src.write_bytes(data[: len(data) // 2])
    return src


def truncated_mp4_with_moov(d, face_frame):
    # faststart: the index comes first and still lists every frame; half of them are gone.
    src = write_video(d / "cutfast.mp4", frames=20, options={"movflags": "+faststart"})
    pos, size = _video_packets(src)[9]
    src.write_bytes(src.read_bytes()[: pos + size])
    return src


def truncated_jpeg(d, face_frame):
    path = d / "cut.jpg"
    _face(face_frame).save(path, quality=90)
    path.write_bytes(path.read_bytes()[: -len(path.read_bytes()) // 3])
    return path


def truncated_png(d, face_frame):
    path = d / "cut.png"
    _face(face_frame).save(path)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    return path


def text_named_mp4(d, face_frame):
    (d / "notes.mp4").write_text("meeting notes, not a video\n")
    return d / "notes.mp4"


def text_named_jpg(d, face_frame):
    (d / "notes.jpg").write_text("meeting notes, not a photo\n")
    return d / "notes.jpg"


def audio_only_mp4(d, face_frame):
    from conftest import _write_tone

    path = d / "voice.mp4"
    with av.open(str(path), "w") as out:
        sound = out.add_stream("aac", rate=44100)
        sound.layout = "stereo"
        _write_tone(out, sound, seconds=0.5)
    return path


def concealed_corrupt_frame(d, face_frame):
    # x264 "medium" (CABAC, B-frames): FFmpeg conceals the damage and flags the frame corrupt.
    path = d / "glitch.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.options = {"preset": "medium", "crf": "23"}
        for i in range(24):
            frame = av.VideoFrame.from_ndarray(_noisy(i), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return _damage(path, packet=12, where=0.3, length=32)


def undecodable_frame(d, face_frame):
    # Zeroed slice data: the decoder gives up on the packet (avcodec_send_packet fails).
    path = write_video(
        d / "broken.mp4",
        frames=24,
        image=lambda i: np.random.default_rng(i).integers(0, 256, (120, 160, 3), dtype=np.uint8),
    )
    data = bytearray(path.read_bytes())
    pos, size = _video_packets(path)[12]
    data[pos + size // 4 : pos + 3 * size // 4] = bytes(3 * size // 4 - size // 4)
    path.write_bytes(bytes(data))
    return path


def mkv_damaged_cluster(d, face_frame):
    # A damaged block header: FFmpeg's Matroska demuxer stops there without an error.
    path = write_video(d / "damaged.mkv", frames=30)
    data = bytearray(path.read_bytes())
    pos, _ = _video_packets(path)[15]
    data[pos : pos + 40] = np.random.default_rng(1).integers(0, 256, 40, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png_header(d, face_frame):
    path = d / "bomb.png"
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _png_chunk(b"IEND", b"")
    )
    return path


def huge_jpeg_header(d, face_frame):
    path = d / "bomb.jpg"
    _face(face_frame).save(path)
    data = bytearray(path.read_bytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 30000, 30000)
    path.write_bytes(bytes(data))
    return path


def huge_video_header(d, face_frame):
    # FFV1 in Matroska takes the picture size from the container: claim 12000x12000.
    path = d / "bomb.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 256, 256, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((256, 256, 3), 90, np.uint8), "rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    data = bytearray(path.read_bytes())
    for element in (b"\xb0", b"\xba"):  # PixelWidth, PixelHeight = 256, as two bytes
        at = data.find(element + b"\x82\x01\x00")
        assert at > 0
        data[at + 2 : at + 4] = (12000).to_bytes(2, "big")
    path.write_bytes(bytes(data))
    return path


def _frames_image(d, face_frame, name, fmt, **options):
    frames = [_face(np.roll(face_frame, 10 * i, axis=1)) for i in range(3)]
    frames[0].save(d / name, format=fmt, save_all=True, append_images=frames[1:], **options)
    return d / name


def multipage_tiff(d, face_frame):
    return _frames_image(d, face_frame, "pages.tif", "TIFF")


def heic_photo(d, face_frame):
    # The ftyp box of an iPhone photo, and nothing of a picture after it.
    path = d / "IMG_0001.HEIC"
    path.write_bytes(struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0" + b"mif1heic" + b"\0" * 64)
    return path


def unknown_extension(d, face_frame):
    (d / "clip.xyz").write_bytes(b"\0" * 100)
    return d / "clip.xyz"


def real_truncated_avi(d, face_frame):
    # The real CCTV clip cut inside its fourth frame (early: every frame before is scanned).
    src = shared_file("vtest.avi")
    pos, size = _video_packets(src)[3]
    (d / "vtest_cut.avi").write_bytes(src.read_bytes()[: pos + size // 2])
    return d / "vtest_cut.avi"


def real_truncated_jpeg(d, face_frame):
    data = shared_file("messi5.jpg").read_bytes()
    (d / "messi5_cut.jpg").write_bytes(data[: len(data) * 6 // 10])
    return d / "messi5_cut.jpg"


def real_damaged_avi(d, face_frame):
    path = d / "Megamind_damaged.avi"
    path.write_bytes(shared_file("Megamind.avi").read_bytes())
    return _damage(path, packet=2, where=0.3, length=64, seed=3)


# name -> (maker, problem the error line must state)
FAILURES = {
    "zero_byte_mp4": (zero_byte_mp4, r"empty \(0 bytes\)"),
    "zero_byte_jpg": (zero_byte_jpg, r"empty \(0 bytes\)"),
    "truncated_mp4_without_moov": (truncated_mp4_without_moov, r"truncated, damaged or not a video"),
    "truncated_mp4_with_moov": (truncated_mp4_with_moov, r"only 10 of the 20 frames .* truncated"),
    "truncated_jpeg": (truncated_jpeg, r"truncated"),
    "truncated_png": (truncated_png, r"cannot decode image: image file is truncated"),
    "text_named_mp4": (text_named_mp4, r"not a video"),
    "text_named_jpg": (text_named_jpg, r"not an image"),
    "audio_only_mp4": (audio_only_mp4, r"no video stream"),
    "concealed_corrupt_frame": (concealed_corrupt_frame, r"frame \d+ is damaged"),
    "undecodable_frame": (undecodable_frame, r"damaged video data at frame 12"),
    "mkv_damaged_cluster": (mkv_damaged_cluster, r"stops after 0\.50 s of the 1\.00 s"),
    "huge_png_header": (huge_png_header, r"too large"),
    "huge_jpeg_header": (huge_jpeg_header, r"too large"),
    "huge_video_header": (huge_video_header, r"too large \(12000x12000"),
    "multipage_tiff": (multipage_tiff, r"multi-page TIFF \(3 frames\) is not supported"),
    "heic_photo": (heic_photo, r"not an image blur can read|needs? the pillow-heif package"),
    "unknown_extension": (unknown_extension, r"unknown file type \.xyz"),
    "real_truncated_avi": (real_truncated_avi, r"truncated|damaged"),
    "real_truncated_jpeg": (real_truncated_jpeg, r"truncated"),
    "real_damaged_avi": (real_damaged_avi, r"frame 2 is damaged"),
}


@pytest.mark.parametrize("case", FAILURES)
def test_bad_input_fails_cleanly(tmp_path, face_frame, case):
    maker, problem = FAILURES[case]
    src = maker(tmp_path, face_frame)
    before = tree(tmp_path)
    result = blur(src, "-q", *FAST_ARGS)
    assert result.exit_code == ExitStatus.ERROR, (result.stderr, result.exception)
    assert_one_line_error(result.stderr, str(src), problem)
    assert tree(tmp_path) == before, "an output or temp file was left, or the input changed"


def test_damage_is_never_concealed_in_the_output(tmp_path, face_frame):
    """FFmpeg really does conceal this damage and go on (so a careless tool would ship the
    guessed frame); blur's own decoding sees the flag, and fails instead."""
    src = concealed_corrupt_frame(tmp_path, face_frame)
    with av.open(str(src)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"  # as blur decodes (slice threads lose the corrupt flag)
        flags = [f.is_corrupt for f in c.decode(stream)]
    assert len(flags) == 24 and sum(flags) == 1  # no error raised: the damage was concealed
    with pytest.raises(Exception, match="is damaged"):
        pipeline.anonymise(src, None, FAST)


def test_huge_headers_are_refused_before_allocating(tmp_path, face_frame):
    """In a fresh process, so its peak memory is its own: far below one 30000x30000 picture."""
    bombs = [
        huge_png_header(tmp_path, face_frame),
        huge_jpeg_header(tmp_path, face_frame),
        huge_video_header(tmp_path, face_frame),
    ]
    code = (
        "import resource, sys\n"
        "from blur import cli\n"
        "try:\n"
        "    cli.main(sys.argv[1:])\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024\n"
        "print(f'exit={code} peak_mb={peak}')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *map(str, bombs), "-q"], capture_output=True, text=True, timeout=300
    )
    exit_code, peak = re.search(r"exit=(\d+) peak_mb=(\d+)", proc.stdout).groups()
    assert int(exit_code) == ExitStatus.ERROR
    assert proc.stderr.count("too large") == 3, proc.stderr
    assert int(peak) < 1500, f"peak memory {peak} MB: a 30000x30000 RGB picture is 2700 MB"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in bombs)


# ----------------------------------------------------------------- output problems


@pytest.fixture
def photo(tmp_path, face_frame):
    path = tmp_path / "face.png"
    _face(face_frame).save(path)
    return path


@pytest.fixture
def locked_folder(tmp_path):
    """A folder nobody can write into: read-only mode, and immutable when running as root."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    try:
        (folder / "probe").touch()  # root ignores the mode
    except PermissionError:
        pass
    else:
        (folder / "probe").unlink()
        try:
            immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        except FileNotFoundError:
            pass
        if not immutable:
            folder.chmod(0o755)
            pytest.skip("running as root without chattr: no folder here is unwritable")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


@pytest.mark.parametrize("kind", ["photo", "video"])
def test_unwritable_output_folder(tmp_path, photo, locked_folder, kind):
    src = photo if kind == "photo" else write_video(tmp_path / "clip.mp4", frames=5)
    out = locked_folder / ("x.png" if kind == "photo" else "x.mp4")
    before = tree(tmp_path)
    result = blur(src, "-o", out, "-q", *FAST_ARGS)
    assert result.exit_code == ExitStatus.ERROR, result.stderr
    assert_one_line_error(
        result.stderr,
        str(src),
        rf"cannot write to {re.escape(str(locked_folder))}: "
        r"(permission denied|operation not permitted)",
    )
    assert tree(tmp_path) == before


def test_output_folder_that_is_a_file(tmp_path, photo):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    before = tree(tmp_path)
    result = blur(photo, "-o", tmp_path / "notes.txt" / "face.png", "-q")
    assert result.exit_code == ExitStatus.USAGE
    assert_one_line_error(result.stderr, str(photo), r"notes\.txt is a file, not a folder")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("how", ["same path", "relative path", "symlink", "hard link"])
def test_output_that_is_the_input(tmp_path, photo, how, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = {
        "same path": photo,
        "relative path": Path("face.png"),
        "symlink": tmp_path / "link.png",
        "hard link": tmp_path / "hard.png",
    }[how]
    if how == "symlink":
        out.symlink_to(photo)
    elif how == "hard link":
        os.link(photo, out)
    before = tree(tmp_path)
    result = blur(photo, "-o", out, "-q", "--overwrite")
    assert result.exit_code == ExitStatus.USAGE
    assert_one_line_error(result.stderr, "face.png", r"input itself; refusing to overwrite")
    assert tree(tmp_path) == before


# ------------------------------------------------------------------- names


NAMES = {
    "spaces": "my holiday photo.png",
    "non_ascii": "Café Łódź 日本 🙂.png",
    "brackets": "clip [final] (1).png",  # not Rich markup: shown as it is
    "leading_dash": "-rf.png",
    "undecodable_bytes": os.fsdecode(b"caf\xe9 latin1.png"),  # not UTF-8, as from an old disk
}


@pytest.mark.parametrize("case", NAMES)
def test_awkward_file_names_work(tmp_path, face_frame, case, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = NAMES[case]
    src = tmp_path / name
    _face(face_frame).save(src, format="PNG")
    before = src.read_bytes()
    result = blur(*FAST_ARGS, "--", name)
    assert result.exit_code == 0, result.stderr
    out = src.with_name(Path(name).stem + ".blurred.png")
    assert out.is_file()
    assert src.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == sorted([name, out.name])
    shown = "caf\\xe9 latin1.png" if case == "undecodable_bytes" else name
    assert shown[:8] in result.stdout  # in the summary (long names are cut short there)


def test_awkward_names_in_a_video_and_in_errors(tmp_path):
    """PyAV gets a non-ASCII path; a failing file is named exactly, brackets and all."""
    src = write_video(tmp_path / "Straße [día 1].mp4", frames=4)
    bad = tmp_path / "[bold]broken ü.mp4"
    bad.write_bytes(b"not a video")
    result = blur(src, bad, "-q", *FAST_ARGS)
    assert result.exit_code == ExitStatus.ERROR
    assert (tmp_path / "Straße [día 1].blurred.mp4").is_file()
    assert_one_line_error(result.stderr, str(bad), r"not a video")


def test_leading_dash_without_separator_is_explained(tmp_path, face_frame, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _face(face_frame).save(tmp_path / "-photo.png")
    with pytest.raises(SystemExit) as stop:
        cli.main(["-photo.png", "-q"])
    assert stop.value.code == ExitStatus.USAGE
    assert_one_line_error(
        capsys.readouterr().err,
        "-photo.png",
        r"looks like an option; write \./-photo\.png or put -- before it",
    )
    assert os.listdir(tmp_path) == ["-photo.png"]
    with pytest.raises(SystemExit) as stop:  # the way the message says works
        cli.main(["./-photo.png", "-q", *FAST_ARGS])
    assert stop.value.code in (0, None)
    assert (tmp_path / "-photo.blurred.png").is_file()


def test_long_error_stays_on_one_line(tmp_path):
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / ("and-another-one-" * 4)
    deep.mkdir(parents=True)
    (deep / "empty.mp4").write_bytes(b"")
    result = blur(deep / "empty.mp4", "-q")
    assert len(str(deep)) > 120
    assert_one_line_error(result.stderr, str(deep / "empty.mp4"), r"empty")


# ------------------------------------------------------------ inputs that must work


def _write_pix_fmt_video(
    path: Path, face_frame, codec: str, pix_fmt: str, size=None, frames: int = 4
) -> Path:
    image = face_frame if size is None else cv2.resize(face_frame, size)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25)
        stream.height, stream.width = image.shape[:2]
        stream.pix_fmt = pix_fmt
        stream.options = {"preset": "ultrafast", "crf": "10"} if codec == "libx264" else {}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame.reformat(format=pix_fmt)))
        out.mux(stream.encode(None))
    return path


VIDEOS = {
    "h264_10bit_420": ("libx264", "yuv420p10le", None),
    "h264_444": ("libx264", "yuv444p", None),
    "h264_10bit_444": ("libx264", "yuv444p10le", None),
    "h264_10bit_422": ("libx264", "yuv422p10le", None),
    "hevc_10bit": ("libx265", "yuv420p10le", None),
    "odd_size_444": ("libx264", "yuv444p", (241, 181)),
    "odd_width_only": ("libx264", "yuv444p", (241, 180)),
}


@pytest.mark.parametrize("case", VIDEOS)
def test_unusual_videos_work(tmp_path, face_frame, case):
    codec, pix_fmt, size = VIDEOS[case]
    src = _write_pix_fmt_video(tmp_path / f"{case}.mp4", face_frame, codec, pix_fmt, size)
    before = src.read_bytes()
    with av.open(str(src)) as c:  # the fixture really is what it says
        assert c.streams.video[0].codec_context.pix_fmt == pix_fmt
    result = pipeline.anonymise(src, None, FAST)
    assert src.read_bytes() == before
    assert result.frames == 4
    assert result.frames_redacted == 4, "the face was not found: the pixels were misread"
    with av.open(str(result.dst)) as c:
        out = [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]
    height, width = face_frame.shape[:2] if size is None else size[::-1]
    assert len(out) == 4 and out[0].shape == (height, width, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, result.dst.name])


def _cmyk_jpeg(path, face):
    face.convert("CMYK").save(path, quality=95)


def _png16_rgb(path, face):
    cv2.imwrite(str(path), cv2.cvtColor(np.asarray(face), cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)


def _tiff16_rgb(path, face):
    cv2.imwrite(str(path), cv2.cvtColor(np.asarray(face), cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)


def _rgba(path, face, fmt="PNG", **options):
    rgba = face.convert("RGBA")
    alpha = np.full(face.size[::-1], 255, np.uint8)
    alpha[:, :20] = 0  # a transparent strip
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(path, format=fmt, **options)


STILLS = {
    "cmyk_jpeg": ("cmyk.jpg", _cmyk_jpeg, "RGB"),
    "cmyk_tiff": ("cmyk.tif", lambda p, f: f.convert("CMYK").save(p), "RGB"),
    "rgb16_png": ("rgb16.png", _png16_rgb, "RGB"),
    "rgb16_tiff": ("rgb16.tif", _tiff16_rgb, "RGB"),
    "grey16_png": (
        "grey16.png",
        lambda p, f: Image.fromarray(np.asarray(f.convert("L")).astype(np.uint16) * 257).save(p),
        "L",
    ),
    "rgba_png": ("rgba.png", _rgba, "RGBA"),
    "rgba_webp": ("rgba.webp", lambda p, f: _rgba(p, f, "WEBP", lossless=True), "RGBA"),
    "rgba_tiff": ("rgba.tif", lambda p, f: _rgba(p, f, "TIFF"), "RGBA"),
    "la_png": ("la.png", lambda p, f: f.convert("LA").save(p), "RGBA"),
    "palette_transparent_png": ("pal.png", lambda p, f: f.convert("P").save(p, transparency=0), "RGBA"),
    "grey_jpeg": ("grey.jpg", lambda p, f: f.convert("L").save(p, quality=95), "L"),
}


@pytest.mark.parametrize("case", STILLS)
def test_unusual_stills_work(tmp_path, face_frame, case):
    name, write, out_mode = STILLS[case]
    src = tmp_path / name
    write(src, _face(face_frame))
    before = src.read_bytes()
    result = pipeline.anonymise(src, None, FAST)
    assert src.read_bytes() == before
    assert result.frames_redacted == 1 and result.detections >= 1, "the face was not found"
    with Image.open(result.dst) as out:
        assert out.size == (face_frame.shape[1], face_frame.shape[0])
        assert out.mode == out_mode
        rgb = np.asarray(out.convert("RGB")).astype(int)
    # The face (top half, left of centre) was redacted, the bottom right corner kept.
    original = np.asarray(_face(face_frame).convert(out_mode).convert("RGB")).astype(int)
    diff = np.abs(rgb - original).mean(axis=2)
    assert diff[40:110, 60:130].mean() > 20
    assert diff[150:, 200:].mean() < 12
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, result.dst.name])


# ------------------------------------------------------------------------- batch


def test_batch_of_bad_files_in_a_folder_with_symlink_loops(tmp_path, face_frame):
    """The good files complete, each bad one is one error line and a summary row, the symlink
    loops end, nothing else is written, every input is untouched."""
    root = tmp_path / "footage"
    (root / "day1").mkdir(parents=True)
    _face(face_frame).save(root / "a good photo.png")
    write_video(root / "day1" / "good clip.mp4", frames=5)
    bad = [
        maker(root / "day1", face_frame)
        for maker in (
            zero_byte_mp4,
            truncated_jpeg,
            text_named_mp4,
            audio_only_mp4,
            multipage_tiff,
            heic_photo,
            truncated_mp4_with_moov,
        )
    ]
    (root / "day1" / "loop").symlink_to(root, target_is_directory=True)  # a folder loop
    (root / "self.jpg").symlink_to("self.jpg")  # a link to itself
    (root / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")  # a dangling link
    before = tree(root)
    result = blur(root, "-o", tmp_path / "clean", *FAST_ARGS)
    assert result.exit_code == ExitStatus.ERROR, result.stderr
    written = sorted(
        p.relative_to(tmp_path / "clean").as_posix() for p in (tmp_path / "clean").rglob("*") if p.is_file()
    )
    assert written == ["a good photo.png", "day1/good clip.mp4"]
    assert not list((tmp_path / "clean").rglob(".*"))
    assert tree(root) == before
    errors = result.stderr.strip().splitlines()
    failed = [*bad, root / "self.jpg", root / "gone.mp4"]
    assert len(errors) == len(failed)
    for path in failed:
        assert sum(str(path) in line for line in errors) == 1, f"{path} not reported once"
    assert any("self.jpg" in e and "symbolic links" in e for e in errors)
    assert any("gone.mp4" in e and "no such file" in e.lower() for e in errors)
    summary = result.stdout
    assert f"2 file(s) done, {len(failed)} failed" in summary
    assert summary.count("failed:") == len(failed)


def test_unreadable_subfolder_fails_the_run_instead_of_being_skipped(tmp_path, face_frame, monkeypatch):
    root = tmp_path / "footage"
    (root / "private").mkdir(parents=True)
    _face(face_frame).save(root / "a.png")
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "private":  # as a folder without read permission behaves
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = blur(root, "-q")
    assert result.exit_code == ExitStatus.USAGE
    assert_one_line_error(result.stderr, "private", r"cannot read this folder: permission denied")
    assert not (tmp_path / "footage.blurred").exists()
