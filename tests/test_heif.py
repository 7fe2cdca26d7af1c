"""HEIC/HEIF and AVIF photos, as phones write them: in, anonymised, out as a clean JPEG (or the
same format with --keep-format), proven clean by exiftool and by blur's own reader.

Every test file is made here: HEIC with pillow-heif (a dependency of blur), AVIF with Pillow,
thumbnails and copied EXIF/XMP with libheif's own ``heif-enc`` (Debian's libheif-examples),
metadata added with exiftool. A test skips, saying why, when its encoder is missing.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST, exiftool_all, need_tool
from PIL import Image, ImageCms
from typer.testing import CliRunner

from blur import cli, pipeline
from blur.errors import ExitStatus
from blur.media import heif, image, metadata

pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif (HEIC support) is not installed")
pillow_heif.register_heif_opener()

FACES = FAST.merged(kinds=("face",))
SECRETS = [
    "52.52",
    "52 deg 31",
    "Canon",
    "EOS 5D",
    "012345678901",
    "2024:05:01",
    "Jane Reporter",
    "Alexanderplatz",
    "iPhone",
]


def run(*args) -> str:
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True).stdout


def secrets_in(tags: dict) -> list[str]:
    text = json.dumps(tags)
    return [s for s in SECRETS if s in text]


def add_phone_metadata(path: Path) -> None:
    """GPS, make, model, serial number, capture time and an author, as exiftool writes them."""
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
        "-XMP-dc:Creator=Jane Reporter",
        path,
    )


def blur(*args):
    return CliRunner().invoke(cli.app, ["run", "--preset", "ultrafast", "--only", "faces", *map(str, args)])


@pytest.fixture
def portrait(astronaut) -> np.ndarray:
    """The astronaut at 384x384: one face, top half, left of centre."""
    return np.asarray(Image.fromarray(astronaut).resize((384, 384), Image.Resampling.LANCZOS))


def face_box(plan) -> tuple[int, int, int, int]:
    """The astronaut's face (the best-scoring one a scan found), as integer pixel corners."""
    faces = [t for t in plan.tracks if t.kind == "face"]
    assert faces, "no face found"
    best = max(faces, key=lambda t: float(t.score.max()))
    assert best.score.max() > 0.5, best
    return tuple(int(v) for v in best.xyxy[0])


def assert_face_hidden(before: np.ndarray, after: np.ndarray, box) -> None:
    """Inside the face box the picture changed beyond recovery; far from it, it is the same
    picture (a re-encoded copy, in the same orientation)."""
    x1, y1, x2, y2 = box
    diff = np.abs(before.astype(int) - after.astype(int)).mean(axis=2)
    assert diff[y1:y2, x1:x2].mean() > 12, "the face was not redacted"
    far = np.ones(diff.shape, bool)
    far[max(0, y1 - 60) : y2 + 60, max(0, x1 - 60) : x2 + 60] = False
    assert diff[far].mean() < 6, "the rest of the picture changed (turned, shifted or recoloured)"


# ---------------------------------------------------------------------- HEIC to JPEG


def test_iphone_heic_becomes_a_clean_upright_jpeg(tmp_path, portrait):
    """GPS, make, model, serial, date and author gone; the face hidden; the ICC profile kept;
    the output named IMG_0042.blurred.jpg."""
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "IMG_0042.HEIC"
    Image.fromarray(portrait).save(src, format="HEIF", quality=92, icc_profile=icc)
    add_phone_metadata(src)
    before = exiftool_all(src)
    assert len(secrets_in(before)) >= 6, before
    found = pipeline.probe(src).metadata_found
    assert "HEIF:Exif item" in found and any(f.startswith("GPS:") for f in found), found

    result = blur(src)
    assert result.exit_code == 0, (result.stderr, result.exception)
    dst = tmp_path / "IMG_0042.blurred.jpg"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["IMG_0042.HEIC", dst.name]
    after = exiftool_all(dst)
    assert secrets_in(after) == []
    assert not [
        k for k in after if k.split(":")[0] in ("IFD0", "ExifIFD", "GPS", "XMP-dc", "IFD1", "MPF0")
    ], after
    assert metadata.image_leftover(dst) == []
    with Image.open(dst) as out:
        assert out.format == "JPEG" and out.mode == "RGB"
        assert out.info.get("icc_profile") == icc
        rgb = np.asarray(out)
    plan = pipeline.scan(src, FACES)
    assert_face_hidden(np.asarray(Image.open(src).convert("RGB")), rgb, face_box(plan))


@pytest.mark.parametrize("fmt, name", [("HEIF", "sideways.heic"), ("AVIF", "sideways.avif")])
def test_orientation_6_is_applied_once(tmp_path, portrait, fmt, name):
    """An iPhone stores the sensor's landscape picture, an ``irot`` turn and EXIF orientation 6
    for the same turn: the output is upright (the face is found: a sideways one is not, without
    --sideways), turned once, not twice."""
    stored = Image.fromarray(portrait[:, :288]).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    src = tmp_path / name
    stored.save(src, format=fmt, quality=92, exif=exif.tobytes())
    upright = portrait[:, :288]
    info = pipeline.probe(src)
    assert (info.width, info.height) == (288, 384)

    result = pipeline.anonymise(src, None, FACES)
    assert result.dst.name == "sideways.blurred.jpg"
    with Image.open(result.dst) as out:
        rgb = np.asarray(out.convert("RGB"))
    assert rgb.shape == upright.shape
    assert_face_hidden(upright, rgb, face_box(result.plan))


@pytest.mark.parametrize(
    "orientation, stored_as",
    [
        (2, Image.Transpose.FLIP_LEFT_RIGHT),
        (3, Image.Transpose.ROTATE_180),
        (5, Image.Transpose.TRANSPOSE),
        (7, Image.Transpose.TRANSVERSE),
        (8, Image.Transpose.ROTATE_270),
    ],
)
def test_mirrored_and_turned_heic_is_read_upright(tmp_path, portrait, orientation, stored_as):
    """Every EXIF orientation a camera writes becomes the container's ``irot``/``imir``
    transforms (mirrors included), and blur reads the picture upright, turned once."""
    upright = Image.fromarray(portrait[:, :288])
    exif = Image.Exif()
    exif[0x0112] = orientation
    src = tmp_path / f"o{orientation}.heic"
    upright.transpose(stored_as).save(src, format="HEIF", quality=95, exif=exif.tobytes())
    data = src.read_bytes()
    meta = next((s, e) for k, s, e in heif._boxes(data, 0, len(data)) if k == "meta")
    iprp = next((s, e) for k, s, e in heif._boxes(data, meta[0] + 4, meta[1]) if k == "iprp")
    transforms = {p for p in heif._properties(data, *iprp) if p in ("irot", "imir")}
    assert transforms == {2: {"imir"}, 3: {"irot"}, 8: {"irot"}}.get(orientation, {"irot", "imir"})
    info = pipeline.probe(src)
    assert (info.width, info.height) == upright.size
    rgb = image.read(src).rgb
    assert rgb.shape == (upright.height, upright.width, 3)
    assert np.abs(rgb.astype(int) - np.asarray(upright)).mean() < 6


def test_grid_heic_is_assembled(tmp_path, portrait):
    """A tiled (grid) HEIC, as phones write every photo: 12 tiles of 256x256 make one picture,
    and the face across tile borders is found and hidden."""
    big = Image.fromarray(portrait).resize((1024, 768))
    src = tmp_path / "grid.heic"
    big.save(src, format="HEIF", quality=92, tile_size=256)
    data = src.read_bytes()
    meta = next((s, e) for k, s, e in heif._boxes(data, 0, len(data)) if k == "meta")
    iinf = next((s, e) for k, s, e in heif._boxes(data, meta[0] + 4, meta[1]) if k == "iinf")
    items = list(heif._items(data, *iinf).values())
    assert items.count("grid") == 1 and items.count("hvc1") == 12, items

    result = pipeline.anonymise(src, None, FACES)
    with Image.open(result.dst) as out:
        assert out.size == (1024, 768)
        rgb = np.asarray(out)
    assert_face_hidden(np.asarray(big), rgb, face_box(result.plan))


def test_ten_bit_heic_becomes_8_bit(tmp_path, portrait):
    """A 10-bit HEIC (HDR phones): decoded to 8 bits for the detector and the output, with its
    colours (not clipped to white, not darkened)."""
    ten = pillow_heif.from_bytes(
        mode="RGB;16", size=(384, 384), data=(portrait.astype(np.uint16) * 257).tobytes()
    )
    src = tmp_path / "hdr.heic"
    ten.save(src, quality=92)
    assert pillow_heif.open_heif(src, convert_hdr_to_8bit=False).info["bit_depth"] == 10

    result = pipeline.anonymise(src, None, FACES)
    with Image.open(result.dst) as out:
        assert out.mode == "RGB"
        rgb = np.asarray(out)
    assert_face_hidden(portrait, rgb, face_box(result.plan))


def test_avif_becomes_a_clean_jpeg(tmp_path, portrait):
    src = tmp_path / "photo.avif"
    Image.fromarray(portrait).save(src, format="AVIF", quality=90)
    add_phone_metadata(src)
    assert len(secrets_in(exiftool_all(src))) >= 6

    result = pipeline.anonymise(src, None, FACES)
    assert result.dst.name == "photo.blurred.jpg"
    assert secrets_in(exiftool_all(result.dst)) == []
    assert metadata.image_leftover(result.dst) == []
    with Image.open(result.dst) as out:
        rgb = np.asarray(out)
    assert_face_hidden(np.asarray(Image.open(src).convert("RGB")), rgb, face_box(result.plan))


def test_thumbnail_exif_and_xmp_items_are_found_and_dropped(tmp_path, portrait):
    """libheif's own encoder copies a JPEG's EXIF and XMP into the HEIC and adds a thumbnail:
    blur's reader lists each in the input, and finds none in the output."""
    heif_enc = need_tool("heif-enc")
    jpeg = tmp_path / "camera.jpg"
    Image.fromarray(portrait).save(jpeg, quality=95)
    add_phone_metadata(jpeg)
    src = tmp_path / "camera.heic"
    run(heif_enc, "-q", "80", "-t", "96", "-o", src, jpeg)
    found = heif.contents(src)
    assert "HEIF:thumbnail images: 1" in found and "HEIF:Exif item" in found
    assert "HEIF:mime:application/rdf+xml item" in found  # the XMP packet
    assert secrets_in(exiftool_all(src))

    result = pipeline.anonymise(src, None, FACES)
    assert set(found) <= set(result.metadata_removed)
    assert secrets_in(exiftool_all(result.dst)) == []
    assert not [k for k in exiftool_all(result.dst) if "Thumbnail" in k or "Preview" in k]


@pytest.mark.parametrize("aux", ["alpha", "depth"])
def test_auxiliary_image_is_found_and_dropped(tmp_path, portrait, aux):
    """An auxiliary image (an alpha plane, or a depth map as portrait-mode photos carry; phones
    also add HDR gain maps and mattes) is listed in the input; the output, JPEG or HEIC, has
    none. The depth map is the alpha plane with its type rewritten to HEVC's depth (auxid 2)."""
    rgba = np.dstack([portrait, np.tile(np.linspace(0, 255, 384, dtype=np.uint8), (384, 1))])
    src = tmp_path / f"{aux}.heic"
    Image.fromarray(rgba, "RGBA").save(src, format="HEIF", quality=90)
    if aux == "depth":
        data = src.read_bytes()
        alpha_type = b"urn:mpeg:hevc:2015:auxid:1\0"
        assert data.count(alpha_type) == 1
        src.write_bytes(data.replace(alpha_type, b"urn:mpeg:hevc:2015:auxid:2\0"))
        assert len(pillow_heif.open_heif(src).info["depth_images"]) == 1
    assert any(f.startswith("HEIF:auxiliary images") for f in heif.contents(src))
    for dst in (tmp_path / "out.jpg", tmp_path / "kept.heic"):
        result = pipeline.anonymise(src, dst, FACES)
        assert any(f.startswith("HEIF:auxiliary images") for f in result.metadata_removed)
        assert metadata.image_leftover(dst) == []
        assert "Auxiliary" not in json.dumps(exiftool_all(dst))
    kept = pillow_heif.open_heif(tmp_path / "kept.heic")
    assert (
        kept.info["depth_images"] == [] and kept.mode == "RGB" and heif.contents(tmp_path / "kept.heic") == []
    )


# ---------------------------------------------------------------------- --keep-format


@pytest.mark.parametrize("name, fmt", [("IMG_0042.HEIC", "HEIF"), ("photo.avif", "AVIF")])
def test_keep_format_writes_heic_and_avif_back_clean(tmp_path, portrait, name, fmt):
    """Same format, no metadata, the ICC profile kept (a profile is not identifying)."""
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / name
    Image.fromarray(portrait).save(src, format=fmt, quality=90, icc_profile=icc)
    add_phone_metadata(src)
    result = blur("--keep-format", src)
    assert result.exit_code == 0, (result.stderr, result.exception)
    dst = src.with_name(f"{src.stem}.blurred{src.suffix}")
    assert dst.exists()
    with Image.open(dst) as out:
        assert out.format == fmt and out.info.get("icc_profile") == icc
        rgb = np.asarray(out.convert("RGB"))
    assert heif.contents(dst) == [] and metadata.image_leftover(dst) == []
    assert secrets_in(exiftool_all(dst)) == []
    plan = pipeline.scan(src, FACES)
    assert_face_hidden(np.asarray(Image.open(src).convert("RGB")), rgb, face_box(plan))


def test_output_name_says_the_format(tmp_path, portrait):
    src = tmp_path / "IMG_0042.HEIC"
    Image.fromarray(portrait).save(src, format="HEIF")
    assert blur(src, "-o", tmp_path / "out.png").exit_code == 0
    with Image.open(tmp_path / "out.png") as out:
        assert out.format == "PNG"
    refused = blur(src, "-o", tmp_path / "out.avif")
    assert refused.exit_code == ExitStatus.USAGE and "must end in" in refused.stderr
    assert not (tmp_path / "out.avif").exists()


# ---------------------------------------------------------------------- Live Photo


def test_live_photo_pair_in_a_folder_is_done_whole(tmp_path, portrait):
    """A Live Photo is IMG_0042.HEIC plus IMG_0042.MOV sharing an identifier: a folder run
    anonymises both halves and neither output keeps the identifier or the phone's tags."""
    ffmpeg = need_tool("ffmpeg")
    folder = tmp_path / "DCIM"
    folder.mkdir()
    pair_id = "4D2C6A0E-1B7F-4C1A-9E55-0123456789AB"
    still = folder / "IMG_0042.HEIC"
    Image.fromarray(portrait).save(still, format="HEIF", quality=90)
    run(
        need_tool("exiftool"),
        "-q",
        "-overwrite_original",
        f"-ImageUniqueID={pair_id}",
        "-Make=Apple",
        "-Model=iPhone 15",
        still,
    )
    movie = folder / "IMG_0042.MOV"
    frame = tmp_path / "frame.png"
    Image.fromarray(portrait).resize((192, 192)).save(frame)
    run(
        ffmpeg,
        "-v",
        "error",
        "-loop",
        "1",
        "-i",
        frame,
        "-t",
        "0.5",
        "-r",
        "10",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "use_metadata_tags",
        "-metadata",
        f"com.apple.quicktime.content.identifier={pair_id}",
        "-metadata",
        "com.apple.quicktime.model=iPhone 15",
        movie,
    )
    assert pair_id in json.dumps(exiftool_all(movie)) and pair_id in json.dumps(exiftool_all(still))

    result = blur(folder)
    assert result.exit_code == 0, (result.stderr, result.exception)
    out = tmp_path / "DCIM.blurred"
    assert sorted(p.name for p in out.iterdir()) == ["IMG_0042.jpg", "IMG_0042.mp4"]
    for path in out.iterdir():
        tags = json.dumps(exiftool_all(path))
        assert pair_id not in tags and "iPhone" not in tags, path


# ---------------------------------------------------------------------- bad input


def _truncated_heic(d: Path, portrait) -> Path:
    path = d / "IMG_0001.HEIC"
    Image.fromarray(portrait).save(path, format="HEIF")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _zero_heic(d: Path, portrait) -> Path:
    (d / "IMG_0002.HEIC").write_bytes(b"")
    return d / "IMG_0002.HEIC"


def _zero_avif(d: Path, portrait) -> Path:
    (d / "empty.avif").write_bytes(b"")
    return d / "empty.avif"


def _truncated_avif(d: Path, portrait) -> Path:
    path = d / "cut.avif"
    Image.fromarray(portrait).save(path, format="AVIF")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _broken_grid(d: Path, portrait) -> Path:
    """A grid HEIC whose grid claims more rows of tiles than the file has."""
    path = d / "grid.heic"
    Image.fromarray(portrait).resize((512, 512)).save(path, format="HEIF", tile_size=256)
    data = bytearray(path.read_bytes())
    meta = next((s, e) for k, s, e in heif._boxes(data, 0, len(data)) if k == "meta")
    idat = next(s for k, s, e in heif._boxes(data, meta[0] + 4, meta[1]) if k == "idat")
    assert data[idat + 2 : idat + 4] == b"\x01\x01"  # rows - 1, columns - 1: a 2x2 grid
    data[idat + 2] = 7
    path.write_bytes(bytes(data))
    return path


BAD = {
    "truncated_heic": (_truncated_heic, r"cannot decode image|not an image"),
    "zero_byte_heic": (_zero_heic, r"empty \(0 bytes\)"),
    "zero_byte_avif": (_zero_avif, r"empty \(0 bytes\)"),
    "truncated_avif": (_truncated_avif, r"cannot decode image|not an image"),
    "broken_grid_heic": (_broken_grid, r"cannot decode image|not an image"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_heif_input_fails_cleanly(tmp_path, portrait, case):
    maker, problem = BAD[case]
    src = maker(tmp_path, portrait)
    before = sorted(p.name for p in tmp_path.iterdir())
    for keep in ([], ["--keep-format"]):
        result = blur("-q", *keep, src)
        assert result.exit_code == ExitStatus.ERROR, (result.stderr, result.exception)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and src.name in lines[0], lines
        assert __import__("re").search(problem, lines[0]), lines[0]
        assert sorted(p.name for p in tmp_path.iterdir()) == before, "something was written"


def test_keep_format_setting_is_checked():
    from blur.errors import SettingsError
    from blur.settings import Settings

    assert Settings(keep_format=True).keep_format is True
    with pytest.raises(SettingsError, match="keep_format"):
        Settings(keep_format="yes")
