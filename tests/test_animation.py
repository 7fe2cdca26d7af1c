"""Animated GIF, WebP and PNG: every frame anonymised with tracking, as a video is, and written
back in the same format with the same frames, per-frame durations and loop count."""

from __future__ import annotations

import json
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import FAST, exiftool_all, need_tool
from PIL import Image
from typer.testing import CliRunner

from blur import cli, pipeline, regions
from blur.errors import ExitStatus
from blur.media import animation, metadata

FACES = FAST.merged(kinds=("face",))
DURATIONS = [80, 120, 80, 200, 80, 60, 100, 300]
CANVAS = (320, 200)
FACE = (96, 120)
PERSON = "Jane Reporter"


def positions() -> list[tuple[int, int]]:
    """Where the face is in each frame: moving right, bobbing up and down."""
    return [(8 + 28 * i, 30 + 12 * (i % 3)) for i in range(len(DURATIONS))]


@pytest.fixture
def frames(astronaut) -> list[np.ndarray]:
    """Eight frames with the astronaut's face moving across a plain background."""
    face = Image.fromarray(astronaut).crop((150, 20, 330, 245)).resize(FACE)
    out = []
    for x, y in positions():
        canvas = Image.new("RGB", CANVAS, (70, 110, 150))
        canvas.paste(face, (x, y))
        out.append(np.asarray(canvas))
    return out


def save(frames: list[np.ndarray], path: Path, **options) -> Path:
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=DURATIONS, **options)
    return path


def read(path: Path) -> tuple[str, list[np.ndarray], list[float], int | None]:
    """(format, frames, durations, loop) as a viewer would show them."""
    with Image.open(path) as im:
        fmt, loop = im.format, im.info.get("loop")
        pictures, durations = [], []
        for index in range(im.n_frames):
            im.seek(index)
            pictures.append(np.asarray(im.convert("RGB")))
            durations.append(im.info.get("duration"))
    return fmt, pictures, durations, loop


def assert_every_face_hidden(
    before: list[np.ndarray], after: list[np.ndarray], where: list[tuple[int, int]] | None = None
) -> None:
    """In every frame the face (the middle of the pasted portrait, at ``where``, by default
    ``positions()``) changed beyond recovery, and the background far from it did not move."""
    assert len(after) == len(before)
    w, h = FACE
    for index, ((x, y), src, out) in enumerate(zip(where or positions(), before, after)):
        diff = np.abs(src.astype(int) - out.astype(int)).mean(axis=2)
        face = diff[y + h // 5 : y + 4 * h // 5, x + w // 5 : x + 4 * w // 5]
        assert face.mean() > 12, f"frame {index}: the face was not redacted"
        assert diff[:, x + w + 60 :].mean() < 4 if x + w + 60 < CANVAS[0] else True


@pytest.mark.parametrize(
    "name, options",
    [
        ("moving.gif", {"loop": 0, "comment": f"by {PERSON}".encode()}),
        ("moving.webp", {"loop": 3, "quality": 95}),
        ("moving.png", {"loop": 2}),
    ],
)
def test_every_frame_is_anonymised_with_the_same_timing(tmp_path, frames, name, options):
    src = save(frames, tmp_path / name, **options)
    fmt, shown, durations, loop = read(src)
    assert len(shown) == 8 and durations == pytest.approx(DURATIONS)

    result = pipeline.anonymise(src, None, FACES)
    assert result.kind == "animation" and result.frames == 8 and result.frames_redacted == 8
    assert result.dst.name == f"moving.blurred{src.suffix}"
    out_fmt, out_frames, out_durations, out_loop = read(result.dst)
    assert out_fmt == fmt
    assert out_durations == pytest.approx(durations)
    assert out_loop == loop
    assert_every_face_hidden(shown, out_frames)
    assert metadata.image_leftover(result.dst) == []


# Frame i shows picture REPEATS[i] (BLANK: the background alone): runs of identical frames,
# each with its own duration.
BLANK = -1
REPEATS = [0, 0, 1, BLANK, BLANK, BLANK, 3, 0]
REPEAT_DURATIONS = [70, 130, 40, 90, 250, 60, 100, 300]


def save_with_ffmpeg(pictures: list[np.ndarray], path: Path, durations: list[int], loop: int) -> Path:
    """Write an animation keeping every frame, identical ones included, with FFmpeg's muxers
    (Pillow's and libwebp's encoders merge identical neighbours): GIF from 256-colour frames,
    WebP from libwebp stills, APNG from RGB frames."""
    fmt, codec, pix, options = {
        ".gif": ("gif", "gif", "pal8", {"loop": str(loop)}),
        ".webp": ("webp", "libwebp", "yuv420p", {"loop": str(loop)}),
        ".png": ("apng", "apng", "rgb24", {"plays": str(loop), "final_delay": f"{durations[-1]}/1000"}),
    }[path.suffix]
    with av.open(str(path), "w", format=fmt, options=options) as out:
        stream = out.add_stream(codec, options={"quality": "95"} if codec == "libwebp" else {})
        stream.height, stream.width = pictures[0].shape[:2]
        stream.pix_fmt = pix
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        at = 0
        for picture, duration in zip(pictures, durations):
            if pix == "pal8":
                indexed = Image.fromarray(picture).convert("P", palette=Image.Palette.ADAPTIVE)
                rgb = np.array(indexed.getpalette(), np.uint8).reshape(-1, 3)
                argb = np.full((256, 4), 255, np.uint8)
                argb[: len(rgb), 1:] = rgb
                frame = av.VideoFrame.from_ndarray((np.asarray(indexed), argb), format="pal8")
            else:
                frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format=pix)
            frame.pts, frame.time_base = at, Fraction(1, 1000)
            at += duration
            for packet in stream.encode(frame):
                packet.duration = duration
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.mark.parametrize("name, loop", [("held.gif", 0), ("held.webp", 5), ("held.png", 1)])
def test_writer_keeps_every_frame_and_each_duration(tmp_path, name, loop):
    """Frames written back unchanged: identical neighbours stay separate frames, each with its
    own duration, in the same order (the encoders alone would write 3 frames of 200, 380 and
    60 ms)."""
    rng = np.random.default_rng(7)
    a, b = (rng.integers(0, 255, (50, 60, 3), dtype=np.uint8) for _ in range(2))
    pictures, durations = [a, a, b, b, b, a], [70, 130, 40, 90, 250, 60]
    src = save_with_ffmpeg(pictures, tmp_path / name, durations, loop)
    fmt, shown, src_durations, src_loop = read(src)
    assert (len(shown), src_durations, src_loop) == (6, durations, loop)

    dst = tmp_path / f"out{src.suffix}"
    assert animation.transcode(src, dst, lambda frame: frame.image)["frames"] == 6
    out_fmt, out_frames, out_durations, out_loop = read(dst)
    assert (out_fmt, len(out_frames), out_durations, out_loop) == (fmt, 6, durations, loop)
    for before, after in zip(shown, out_frames):
        assert np.abs(before.astype(int) - after).mean() < (12 if fmt == "WEBP" else 1)


@pytest.mark.parametrize("name, loop", [("repeats.gif", 2), ("repeats.webp", 4), ("repeats.png", 3)])
def test_identical_frames_are_kept_each_with_its_duration(tmp_path, frames, name, loop):
    """A still held for a while is often several identical frames: every one is written back,
    each with its own duration, and the loop count kept (the encoders would store a run of
    identical frames as one longer frame)."""
    blank = np.full_like(frames[0], (70, 110, 150))
    pictures = [blank if i == BLANK else frames[i] for i in REPEATS]
    src = save_with_ffmpeg(pictures, tmp_path / name, REPEAT_DURATIONS, loop)
    fmt, shown, durations, src_loop = read(src)
    assert len(shown) == 8 and durations == pytest.approx(REPEAT_DURATIONS) and src_loop == loop

    result = pipeline.anonymise(src, None, FACES)
    assert result.frames == 8
    out_fmt, out_frames, out_durations, out_loop = read(result.dst)
    assert (out_fmt, len(out_frames), out_loop) == (fmt, 8, loop)
    assert out_durations == pytest.approx(REPEAT_DURATIONS)
    with_face = [i for i, picture in enumerate(REPEATS) if picture != BLANK]
    assert_every_face_hidden(
        [shown[i] for i in with_face],
        [out_frames[i] for i in with_face],
        [positions()[REPEATS[i]] for i in with_face],
    )
    for i, picture in enumerate(REPEATS):
        if picture == BLANK:
            assert np.abs(out_frames[i].astype(int) - shown[i]).mean() < 3, i


def test_gif_comment_and_xmp_are_gone(tmp_path, frames):
    src = save(frames, tmp_path / "shared.gif", loop=0, comment=f"by {PERSON}".encode())
    tool = need_tool("exiftool")
    subprocess.run([tool, "-q", "-overwrite_original", f"-XMP-dc:Creator={PERSON}", str(src)], check=True)
    assert PERSON in json.dumps(exiftool_all(src))
    found = pipeline.probe(src).metadata_found
    assert "info:comment" in found and any("XMP" in f for f in found), found

    result = pipeline.anonymise(src, None, FACES)
    after = exiftool_all(result.dst)
    assert PERSON not in json.dumps(after)
    assert not [k for k in after if k.startswith(("XMP", "GIF:Comment"))], after
    assert after.get("GIF:FrameCount") == 8 and after.get("GIF:AnimationIterations") == "Infinite"


@pytest.mark.parametrize("name", ["shared.webp", "shared.png"])
def test_webp_and_apng_metadata_is_gone(tmp_path, frames, name):
    """EXIF (camera, GPS), XMP and PNG text written into an animated WebP or APNG: exiftool
    (every group, embedded documents too) finds none of it in the output, nor blur's reader."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x013B] = "Canon", "EOS 5D", PERSON  # make, model, artist
    xmp = (
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
        f'02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:creator>{PERSON}</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    options = {"loop": 0, "exif": exif.tobytes()}
    if name.endswith(".webp"):
        options["xmp"] = xmp.encode()
    else:
        from PIL import PngImagePlugin

        text = PngImagePlugin.PngInfo()
        text.add_text("Author", PERSON)
        text.add_itxt("XML:com.adobe.xmp", xmp)
        options["pnginfo"] = text
    src = save(frames, tmp_path / name, **options)
    before = json.dumps(exiftool_all(src))
    assert PERSON in before and "EOS 5D" in before
    assert pipeline.probe(src).metadata_found

    result = pipeline.anonymise(src, None, FACES)
    after = exiftool_all(result.dst)
    assert PERSON not in json.dumps(after) and "EOS 5D" not in json.dumps(after), after
    # Only what describes the pictures: size, frames, loop, PNG structure.
    technical = (
        "Composite:",
        "RIFF:",
        "PNG:Animation",
        "PNG:BitDepth",
        "PNG:ColorType",
        "PNG:Compression",
        "PNG:Filter",
        "PNG:Image",
        "PNG:Interlace",
    )
    assert not [k for k in after if not k.startswith(technical)], after
    assert metadata.image_leftover(result.dst) == []


def test_gif_that_plays_once_still_plays_once(tmp_path, frames):
    """No looping block in the input: none in the output (a loop count of 0 would repeat it
    forever)."""
    src = save(frames, tmp_path / "once.gif")
    assert read(src)[3] is None
    result = pipeline.anonymise(src, None, FACES)
    assert read(result.dst)[3] is None


@pytest.mark.parametrize("name", ["cutout.gif", "cutout.webp", "cutout.png"])
def test_transparent_animation_stays_transparent(tmp_path, frames, name):
    """Transparent stays transparent in every frame, and nothing of the frame before shows
    through it (each frame replaces the last, it is not drawn over it)."""
    images = []
    for index, f in enumerate(frames):
        rgba = np.dstack([f, np.full(f.shape[:2], 255, np.uint8)])
        rgba[:, -40:, 3] = 0  # a transparent strip on the right
        rgba[:40, (index % 2) * 40 : (index % 2) * 40 + 40, 3] = 0  # a hole that moves
        images.append(Image.fromarray(rgba, "RGBA"))
    src = tmp_path / name
    images[0].save(
        src,
        save_all=True,
        append_images=images[1:],
        duration=DURATIONS,
        loop=0,
        **({"disposal": 2} if name.endswith(".gif") else {}),
    )
    result = pipeline.anonymise(src, None, FACES)
    with Image.open(result.dst) as out:
        assert out.n_frames == len(images)
        for index, image in enumerate(images):
            out.seek(index)
            alpha = np.asarray(out.convert("RGBA"))[..., 3]
            assert (alpha == np.asarray(image)[..., 3]).all(), index


def test_scan_then_render_honours_the_regions_file(tmp_path, frames):
    """The review loop works for animations: scan, save the regions, render from them."""
    src = save(frames, tmp_path / "loop.webp", loop=0, quality=95)
    plan = pipeline.scan(src, FACES)
    saved = tmp_path / "loop.regions.json"
    regions.save(saved, plan.to_dict())
    again = pipeline.load_plan(src, regions.load(saved))
    assert again.frame_count == 8 and again.info.kind == "animation"
    result = pipeline.render(src, tmp_path / "out.webp", again, FACES)
    assert_every_face_hidden(read(src)[1], read(result.dst)[1])


def test_one_frame_gif_is_a_one_frame_gif(tmp_path, frames):
    src = tmp_path / "still.gif"
    Image.fromarray(frames[0]).save(src)
    result = pipeline.anonymise(src, None, FACES)
    assert result.frames == 1
    fmt, shown, _, _ = read(result.dst)
    assert fmt == "GIF" and len(shown) == 1


def test_a_still_png_or_webp_stays_a_still(tmp_path, frames):
    for name in ("still.png", "still.webp"):
        Image.fromarray(frames[0]).save(tmp_path / name)
        assert not animation.is_animation(tmp_path / name)
        assert pipeline.probe(tmp_path / name).kind == "image"


# ---------------------------------------------------------------------- bad input


def _truncated(name: str):
    def make(d: Path, frames) -> Path:
        path = save(frames, d / name, loop=0)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * 6 // 10])
        return path

    return make


def _empty(name: str):
    def make(d: Path, frames) -> Path:
        (d / name).write_bytes(b"")
        return d / name

    return make


BAD = {
    "truncated_gif": (_truncated("cut.gif"), r"damaged|truncated|cannot"),
    "truncated_apng": (_truncated("cut.apng"), r"damaged|truncated|cannot|not an image"),
    "zero_byte_apng": (_empty("empty.apng"), r"empty \(0 bytes\)"),
    "truncated_webp": (_truncated("cut.webp"), r"damaged|truncated|cannot|not an image"),
    "zero_byte_gif": (_empty("empty.gif"), r"empty \(0 bytes\)"),
    "zero_byte_webp": (_empty("empty.webp"), r"empty \(0 bytes\)"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_animation_fails_cleanly(tmp_path, frames, case):
    maker, problem = BAD[case]
    src = maker(tmp_path, frames)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(cli.app, ["run", "-q", "--only", "faces", str(src)])
    assert result.exit_code == ExitStatus.ERROR, (result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and src.name in lines[0], lines
    assert re.search(problem, lines[0]), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "something was written"


@pytest.mark.parametrize("name", ["loop.webp", "loop.gif"])
def test_review_page_of_an_animation_shows_its_frames(tmp_path, frames, name):
    """The review page reads an animation's frames with the animation reader (FFmpeg cannot
    decode animated WebP)."""
    src = save(frames, tmp_path / name, loop=0)
    page = tmp_path / "loop.review.html"
    result = CliRunner().invoke(
        cli.app,
        ["scan", str(src), "--regions", str(tmp_path / "r.json"), "--report", str(page), "--only", "faces"],
    )
    assert result.exit_code == 0, result.output
    assert page.read_text().count("data:image/jpeg;base64,") >= 2
