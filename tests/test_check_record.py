"""``blur check OUTPUT`` with no regions file: blur's outputs carry their record (``blur.record``:
the regions and the scan's record), so check judges them as it would given the regions file.

It passes blur's outputs in every style and shape, still fails a face the render left clear or
half covered, refuses a record that does not fit its file, and a file whose record was taken
out is checked as before. The metadata check does not count the record, and counts any other
comment as before.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import FAST, SAMPLES, write_video
from PIL import Image
from typer.testing import CliRunner

from blur import check, cli, pipeline, record, regions
from blur.errors import ExitStatus
from blur.media import embedded, metadata, video
from blur.types import MediaInfo, Plan, Track

STYLE_SHAPES = [(style, shape) for style in ("blur", "pixelate", "solid") for shape in ("ellipse", "box")]
CARRIED = "record carried in the file"


def blur(*args):
    return CliRunner().invoke(cli.app, [*map(str, args)])


def _strip_record(path: Path, dst: Path) -> Path:
    """A copy of a JPEG without blur's comment segments, byte for byte otherwise."""
    data = path.read_bytes()
    kept, last = bytearray(), 0
    for marker, start, end in embedded._jpeg_segments(data):
        if marker == 0xFE:
            kept += data[last:start]
            last = end
    dst.write_bytes(bytes(kept + data[last:]))
    return dst


@pytest.mark.parametrize("style,shape", STYLE_SHAPES)
def test_blurs_photo_output_passes_without_regions(tmp_path, style, shape):
    """messi5.jpg: a crowd of weak, defocused heads, fills that the detector scores up to 0.6."""
    src = SAMPLES / "messi5.jpg"
    out = tmp_path / f"m.{style}.{shape}.jpg"
    assert blur("run", src, "-o", out, "--style", style, "--shape", shape, "-q").exit_code == 0
    result = blur("check", out)
    assert result.exit_code == ExitStatus.OK, result.output
    assert "judged against the record blur carried in the file" in result.stdout
    assert metadata.leftover(out) == []
    # The original is not whitewashed by anything: it carries no record.
    assert check.check(src, FAST).regions == "none"


def test_a_png_output_carries_its_record_too(tmp_path):
    src = tmp_path / "astronaut.png"
    Image.open(SAMPLES / "astronaut.jpg").save(src)
    out = tmp_path / "a.blurred.png"
    assert blur("run", src, "-o", out, "--style", "solid", "-q").exit_code == 0
    found = check.check(out, FAST)
    assert found.regions == CARRIED and found.clean, found.findings
    assert metadata.leftover(out) == []


def _clip(src: Path, dst: Path, frames: int) -> Path:
    """The first ``frames`` frames of a clip, re-encoded nearly losslessly at 25 fps (as in
    ``test_check_regions``: the sample's 10 fps frames shown faster)."""
    rate = 25
    out = av.open(str(dst), "w")
    stream = None
    for frame in video.frames(src):
        if frame.index >= frames:
            break
        if stream is None:
            stream = out.add_stream("libx264", rate=rate)
            stream.height, stream.width = frame.image.shape[:2]
            stream.pix_fmt = "yuv420p"
            stream.options = {"preset": "ultrafast", "crf": "12"}
        out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame.image), format="rgb24")))
    out.mux(stream.encode(None))
    out.close()
    return dst


def test_blurs_video_output_passes_without_regions(tmp_path):
    """samples/street.mp4's first 32 frames (faces of 10-15 px, fills the detector scores
    above 0.5); the record rides in the MP4 header, and a copy re-muxed without it has none."""
    src = _clip(SAMPLES / "street.mp4", tmp_path / "street.mp4", 32)
    out = tmp_path / "street.out.mp4"
    assert blur("run", src, "-o", out, "--preset", "ultrafast", "-q").exit_code == 0
    with av.open(str(out)) as container:
        assert record.well_formed(container.metadata[embedded.VIDEO_TAG])
    found = check.check(out, FAST)
    assert found.regions == CARRIED
    assert found.clean, [f for f in found.visible]
    assert metadata.leftover(out) == []
    # The same file without its tag (any re-encode or re-mux drops it): as before, not clean.
    bare = tmp_path / "bare.mp4"
    with av.open(str(out)) as inp, av.open(str(bare), "w") as copy:
        stream = copy.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                copy.mux(packet)
    assert embedded.regions_in(bare) == (None, "none", None)  # checked as before: see the photos


def _edited(data: dict, how: str) -> dict:
    """The regions with the best face's track deleted ("clear") or cut to its top half."""
    data = json.loads(json.dumps(data))
    best = max(
        (t for t in data["tracks"] if t["kind"] == "face"), key=lambda t: max(b[5] for b in t["boxes"])
    )
    if how == "clear":
        data["tracks"] = [t for t in data["tracks"] if t["id"] != best["id"]]
    else:
        for b in next(t for t in data["tracks"] if t["id"] == best["id"])["boxes"]:
            b[4] = round((b[2] + b[4]) / 2, 2)  # the bottom half (mouth, chin) left out
    return data


@pytest.mark.parametrize("how", ["clear", "half"])
def test_a_face_left_clear_or_half_covered_fails_without_regions(tmp_path, how):
    """Rendered from an edited regions file, the output carries the edited regions and the
    scan's record: the scan saw a face there that the regions do not (wholly) cover."""
    src = SAMPLES / "messi5.jpg"
    regions = tmp_path / "m.regions.json"
    assert blur("scan", src, "--regions", regions, "-q").exit_code == 0
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(_edited(json.loads(regions.read_text()), how)))
    out = tmp_path / f"{how}.jpg"
    assert blur("render", src, "--regions", edited, "-o", out, "-q").exit_code == 0
    result = blur("check", out)
    assert result.exit_code == ExitStatus.FOUND, result.output
    assert "judged against the record blur carried in the file" in result.stdout


@pytest.mark.parametrize("side", ["left", "right"])
def test_half_a_face_beside_a_black_box_fails_without_regions(tmp_path, side):
    """The re-scan does not find half a face beside a black box at all; the carried record of
    the scan does."""
    src = SAMPLES / "astronaut.jpg"
    data = pipeline.scan(src, FAST).to_dict()
    best = max(
        (t for t in data["tracks"] if t["kind"] == "face"), key=lambda t: max(b[5] for b in t["boxes"])
    )
    for b in best["boxes"]:
        b[3 if side == "left" else 1] = round((b[1] + b[3]) / 2, 2)
    edited = tmp_path / "half.json"
    edited.write_text(json.dumps(data))
    out = tmp_path / "half.jpg"
    assert (
        blur(
            "render", src, "--regions", edited, "-o", out, "--style", "solid", "--shape", "box", "-q"
        ).exit_code
        == 0
    )
    found = check.check(out, FAST)
    assert found.regions == CARRIED
    assert [f for f in found.visible if f.kind == "face"], found.findings


def test_a_record_taken_out_or_not_matching_is_not_used(tmp_path):
    src = SAMPLES / "messi5.jpg"
    out = tmp_path / "m.jpg"
    assert blur("run", src, "-o", out, "-q").exit_code == 0
    assert check.check(out, FAST).clean
    # Taken out (exiftool -Comment=, a strict re-save): checked as before, and told so.
    bare = _strip_record(out, tmp_path / "bare.jpg")
    assert embedded.carried(bare) is None
    assert embedded.regions_in(bare) == (None, "none", None)  # checked as before: see the photos
    result = blur("check", bare)
    assert result.exit_code == ExitStatus.FOUND and "carries no usable blur record" in result.stdout
    # Re-saved by an editor that keeps the comment (Pillow does): the record no longer fits.
    resaved = tmp_path / "resaved.jpg"
    with Image.open(out) as im:
        im.save(resaved, quality=90)
    assert embedded.carried(resaved) is not None
    found = check.check(resaved, FAST)
    assert found.regions.startswith("refused: the file was changed") and not found.clean


def test_a_face_pasted_back_under_a_forged_record_still_fails(tmp_path):
    """The binding is a plain hash: someone who means to can bind a record to a file of their
    own. The pixels are still judged against it: a clear face on a region is a face."""
    src = SAMPLES / "astronaut.jpg"
    out = tmp_path / "a.jpg"
    assert blur("run", src, "-o", out, "--style", "solid", "-q").exit_code == 0
    body = record.decode(embedded.carried(out).text)
    original = np.asarray(Image.open(src).convert("RGB"))
    encoded = io.BytesIO()
    Image.fromarray(original).save(encoded, "JPEG", quality=95)
    forged = tmp_path / "forged.jpg"
    forged.write_bytes(embedded.bind_photo(encoded.getvalue(), "JPEG", body))
    found = check.check(forged, FAST)
    assert found.regions == CARRIED
    assert [f for f in found.visible if f.kind == "face" and f.score > 0.5], found.findings


def test_regions_file_wins_and_no_record_leaves_none(tmp_path):
    src = SAMPLES / "messi5.jpg"
    out, regions = tmp_path / "m.jpg", tmp_path / "m.regions.json"
    assert blur("run", src, "-o", out, "--regions", regions, "--no-record", "-q").exit_code == 0
    assert b"blur-record" not in out.read_bytes()
    assert check.check(out, FAST).regions == "none"
    assert check.check(out, FAST, json.loads(regions.read_text())).regions == "regions file"
    rendered = tmp_path / "r.jpg"
    assert blur("render", src, "--regions", regions, "-o", rendered, "--no-record", "-q").exit_code == 0
    assert embedded.carried(rendered) is None


def test_the_record_round_trips_and_is_small():
    src = SAMPLES / "messi5.jpg"
    plan = pipeline.scan(src, FAST)
    text = record.encode(record.record_of(plan, 1.3))
    assert len(text) < 2000  # 20 regions and 69 candidates
    back = record.as_regions(record.decode(text))
    given = plan.to_dict()
    assert len(back["tracks"]) == len(given["tracks"])
    for a, b in zip(back["tracks"], given["tracks"]):
        assert a["kind"] == b["kind"]
        for row, box in zip(a["boxes"], b["boxes"]):  # whole pixels, rounded outwards
            assert row[0] == box[0]
            assert row[1] <= box[1] < row[1] + 1 and row[2] <= box[2] < row[2] + 1
            assert row[3] - 1 < box[3] <= row[3] and row[4] - 1 < box[4] <= row[4]
    scores = sorted(r[5] for r in back["seen"]["boxes"])
    assert scores == pytest.approx(sorted(r[5] for r in given["seen"]["boxes"]), abs=0.0011)
    assert back["seen"]["threshold"] == given["seen"]["threshold"]
    # Nothing of the file: no name, path, time or device.
    assert "messi" not in json.dumps(record.decode(text))


def test_only_a_well_formed_record_is_not_metadata(tmp_path):
    """The metadata check passes blur's record and nothing else in that field: a foreign
    comment, a comment dressed as a record, a record with an extra field, a record beside
    another comment."""
    base = tmp_path / "plain.jpg"
    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(base, quality=90)
    data = base.read_bytes()
    body = {
        "v": 1,
        "kind": "image",
        "size": [64, 48],
        "frames": 1,
        "mask_scale": 1.3,
        "unanalysed": [],
        "tracks": [],
    }
    good = tmp_path / "good.jpg"
    good.write_bytes(embedded.bind_photo(data, "JPEG", body))
    assert metadata.leftover(good) == []

    def with_comment(name: str, *comments: bytes) -> Path:
        path = tmp_path / name
        at = 20  # after SOI and the JFIF segment
        segments = b"".join(b"\xff\xfe" + (len(c) + 2).to_bytes(2, "big") + c for c in comments)
        path.write_bytes(data[:at] + segments + data[at:])
        return path

    assert data[2:4] == b"\xff\xe0" and int.from_bytes(data[4:6], "big") == 16
    foreign = with_comment("foreign.jpg", b"Jane Reporter, Alexanderplatz")
    dressed = with_comment("dressed.jpg", b"blur-record 1/1 Jane Reporter, Alexanderplatz")
    extra = with_comment(
        "extra.jpg", b"blur-record 1/1 " + record.encode(dict(body, gps="52.52,13.40")).encode()
    )
    beside = with_comment("beside.jpg", b"blur-record 1/1 " + record.encode(body).encode(), b"Jane Reporter")
    for path in (foreign, dressed, extra, beside):
        left = metadata.leftover(path)
        assert "info:comment" in left or "JPEG:COM" in left, (path.name, left)
    # A video tag of that name that is not a record is metadata too.
    assert not embedded.is_record_tag("blur_record", "Jane Reporter")
    assert embedded.is_record_tag("BLUR_RECORD", record.encode(dict(body, kind="video")))


def test_a_record_too_large_for_one_jpeg_comment_is_split_and_found_whole(tmp_path):
    """A JPEG comment holds at most 65,533 bytes: a larger record (a big crowd) takes several
    segments, found again whole, bound, and not counted as metadata."""
    rng = np.random.default_rng(0)
    base = tmp_path / "plain.jpg"
    Image.fromarray(np.full((480, 640, 3), 90, np.uint8)).save(base, quality=90)
    track = lambda: ["face", 0, [0], *([int(v)] for v in rng.integers(0, 300, 4))]  # noqa: E731
    body = {
        "v": 1,
        "kind": "image",
        "size": [640, 480],
        "frames": 1,
        "mask_scale": 1.3,
        "unanalysed": [],
        "tracks": [track() for _ in range(12000)],
    }
    out = tmp_path / "big.jpg"
    out.write_bytes(embedded.bind_photo(base.read_bytes(), "JPEG", body))
    segments = embedded._jpeg_segments(out.read_bytes())
    assert sum(marker == 0xFE for marker, _, _ in segments) >= 2
    found = embedded.carried(out)
    assert record.decode(found.text)["tracks"] == body["tracks"]
    assert record.decode(found.text)["sha256"] == found.unbound_sha256
    assert metadata.leftover(out) == []


def test_a_video_record_of_another_length_or_size_is_refused(tmp_path):
    """A video's record is bound to its frame count and size: one that does not fit (a clip
    cut after blur by a tool that kept the tag) is not used, and the check says so."""
    body = {"v": 1, "kind": "video", "size": [160, 120], "frames": 24, "mask_scale": 1.3, "unanalysed": []}
    body["tracks"] = [["face", 0, [0, 1], [10, 0], [10, 0], [40, 0], [40, 0]]]
    fits = write_video(
        tmp_path / "fits.mp4",
        frames=24,
        tags={embedded.VIDEO_TAG: record.encode(body)},
        options={"movflags": "use_metadata_tags"},
    )
    cut = write_video(
        tmp_path / "cut.mp4",
        frames=12,
        tags={embedded.VIDEO_TAG: record.encode(body)},
        options={"movflags": "use_metadata_tags"},
    )
    assert not [item for item in metadata.leftover(cut) if "blur_record" in item]
    assert check.check(fits, FAST).regions == CARRIED
    found = check.check(cut, FAST)
    assert found.regions.startswith("refused: it does not fit this file"), found.regions
    assert "24 frame(s), this file has 12" in found.regions


def test_a_box_with_nothing_in_the_frame_is_left_out_of_the_record():
    """A sliver box lying wholly on the frame's edge covered nothing; carried, it would make
    the record unreadable as a regions file (empty boxes are refused)."""
    info = MediaInfo(path=Path("x.jpg"), kind="image", width=100, height=80)
    tracks = [
        Track(0, "face", [0], [[10.2, 10.7, 29.5, 30.0]], [0.9], ["detected"]),
        Track(1, "face", [0], [[100.0, 5.0, 100.0, 20.0]], [0.2], ["padded"]),
    ]
    back = record.as_regions(record.decode(record.encode(record.record_of(Plan(info, 1, tracks), 1.3))))
    assert [t["boxes"] for t in back["tracks"]] == [[[0, 10, 10, 30, 30, 0.0, "detected"]]]
    assert regions.from_dict(back, 100, 80, 1)[0].xyxy.tolist() == [[10, 10, 30, 30]]
