"""``blur check --regions`` on blur's own outputs of real photos and footage: it passes them in
every style and shape, and still fails a face the render left clear or half covered, and a
track deleted from the regions file.

What makes it pass: the regions file's record of what the scan saw (``blur.seen``). A weak
detection off the redactions is either a face the scan saw below its threshold (not redacted,
by choice) or something the scan did not see at all beside a fill that changed its
surroundings; a face the scan saw at its threshold or more still counts.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import FAST, SAMPLES
from typer.testing import CliRunner

from blur import check, cli, pipeline, seen
from blur.errors import ExitStatus, RegionsError
from blur.media import video

STYLE_SHAPES = [(style, shape) for style in ("blur", "pixelate", "solid") for shape in ("ellipse", "box")]


def blur(*args):
    return CliRunner().invoke(cli.app, [*map(str, args)])


def _scan(src: Path, regions: Path) -> dict:
    assert blur("scan", src, "--regions", regions, "-q").exit_code == 0
    return json.loads(regions.read_text())


def _render(src: Path, data: dict, out: Path, tmp_path: Path, *options) -> None:
    edited = tmp_path / f"{out.stem}.regions.json"
    edited.write_text(json.dumps(data))
    result = blur("render", src, "--regions", edited, "-o", out, "-q", *options)
    assert result.exit_code == 0, result.output


def _face_tracks(data: dict) -> list[dict]:
    return sorted(
        (t for t in data["tracks"] if t["kind"] == "face"), key=lambda t: -max(b[5] for b in t["boxes"])
    )


def test_the_record_changes_nothing_that_is_redacted(monkeypatch):
    """The scan asks the face detector for weaker candidates to record them; what is redacted
    is what a scan without the record redacts (messi5.jpg: a crowd of weak faces)."""
    src = SAMPLES / "messi5.jpg"
    floor = seen.FLOOR
    with_record = pipeline.scan(src, FAST).to_dict()
    monkeypatch.setattr(seen, "FLOOR", FAST.face_candidate_threshold)
    without = pipeline.scan(src, FAST).to_dict()
    assert with_record["tracks"] == without["tracks"]
    scores = [row[5] for row in with_record["seen"]["boxes"] if row[6] == "face"]
    assert min(scores) >= floor
    assert sum(s < FAST.face_candidate_threshold for s in scores) >= 10
    assert len(without["seen"]["boxes"]) < len(with_record["seen"]["boxes"])


@pytest.mark.parametrize("style,shape", STYLE_SHAPES)
def test_blurs_output_of_messi5_passes_given_its_regions(tmp_path, style, shape):
    """A crowd: defocused heads the scan scored just under its threshold score just over it
    beside the fills, a box-shaped fill over a face reads as a "plate" above the shirt's
    lettering, hair above a black ellipse reads as a head."""
    src = SAMPLES / "messi5.jpg"
    out, regions = tmp_path / f"m.{style}.{shape}.jpg", tmp_path / "m.regions.json"
    assert (
        blur("run", src, "-o", out, "--style", style, "--shape", shape, "--regions", regions, "-q").exit_code
        == 0
    )
    result = blur("check", out, "--regions", regions)
    assert result.exit_code == ExitStatus.OK, result.output
    assert blur("check", src, "--regions", regions).exit_code == ExitStatus.FOUND


def test_a_face_the_render_left_clear_or_half_covered_fails(tmp_path):
    src = SAMPLES / "messi5.jpg"
    data = _scan(src, tmp_path / "m.regions.json")
    best = _face_tracks(data)[0]
    clear = dict(data, tracks=[t for t in data["tracks"] if t is not best])
    _render(src, clear, tmp_path / "clear.jpg", tmp_path)
    half = json.loads(json.dumps(data))
    for t in half["tracks"]:
        if t["id"] == best["id"]:
            for b in t["boxes"]:
                b[4] = round((b[2] + b[4]) / 2, 2)  # the bottom half (mouth, chin) left out
    _render(src, half, tmp_path / "half.jpg", tmp_path)
    # Checked against the regions file it should have followed, the one it did follow (a
    # person deleted the track, or cut it to its top half), and none.
    for out, edited in (("clear.jpg", clear), ("half.jpg", half)):
        for regions in (data, edited, None):
            found = check.check(tmp_path / out, FAST, regions)
            assert not found.clean, (out, regions, found.findings)


def test_a_weak_face_deleted_from_the_regions_file_still_fails(tmp_path):
    """A person deleting a track (a crowd face the scan redacted at a weak score) and checking
    against the edited file: the record says the scan saw a face there."""
    src = SAMPLES / "messi5.jpg"
    data = _scan(src, tmp_path / "m.regions.json")
    weak = [t for t in _face_tracks(data) if max(b[5] for b in t["boxes"]) < 0.4]
    assert len(weak) >= 5
    failed = 0
    for t in weak[:5]:
        edited = dict(data, tracks=[u for u in data["tracks"] if u is not t])
        out = tmp_path / f"deleted{t['id']}.jpg"
        _render(src, edited, out, tmp_path)
        found = check.check(out, FAST, edited)
        x1, y1, x2, y2 = t["boxes"][0][1:5]
        here = [
            f
            for f in found.findings
            if f.box[0] < x2
            and f.box[2] > x1
            and f.box[1] < y2
            and f.box[3] > y1
            and f.status in ("weak at scan", "beside a redaction")
        ]
        assert not here, (t, found.findings)
        failed += not found.clean
    assert failed >= 4  # a face the check's re-scan does not see at all cannot fail it


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_face_cut_to_half_under_a_black_box_fails_though_the_rescan_misses_it(tmp_path, side):
    """Half a face beside a black box is no face to the detector: the re-scan finds nothing
    there. The record is the evidence: the scan saw a face at its threshold that the regions
    the file was rendered from cover only in part."""
    src = SAMPLES / "astronaut.jpg"
    data = _scan(src, tmp_path / "a.regions.json")
    best = _face_tracks(data)[0]
    half = json.loads(json.dumps(data))
    for t in half["tracks"]:
        if t["id"] == best["id"]:
            for b in t["boxes"]:  # [frame, x1, y1, x2, y2, score]: keep one half of the box
                centre = round((b[1] + b[3]) / 2, 2)
                b[3 if side == "left" else 1] = centre
    out = tmp_path / f"half-{side}.jpg"
    _render(src, half, out, tmp_path, "--style", "solid", "--shape", "box")
    found = check.check(out, FAST, half)
    assert not [
        f
        for f in found.findings
        if f.status != "visible"
        and f.kind == "face"
        and f.box[0] < best["boxes"][0][3]
        and f.box[2] > best["boxes"][0][1]
    ]
    assert not found.clean, found.findings
    assert [f for f in found.visible if f.kind == "face"]
    # The whole face redacted as scanned still passes.
    _render(src, data, tmp_path / "whole.jpg", tmp_path, "--style", "solid", "--shape", "box")
    assert check.check(tmp_path / "whole.jpg", FAST, data).clean


def _excerpt(src: Path, dst: Path, frames: int) -> Path:
    """The first ``frames`` frames of a clip, re-encoded nearly losslessly."""
    out = av.open(str(dst), "w")
    stream = None
    for frame in video.frames(src):
        if frame.index >= frames:
            break
        if stream is None:
            stream = out.add_stream("libx264", rate=25)
            stream.height, stream.width = frame.image.shape[:2]
            stream.pix_fmt = "yuv420p"
            stream.options = {"preset": "ultrafast", "crf": "12"}
        out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame.image), format="rgb24")))
    out.mux(stream.encode(None))
    out.close()
    return dst


def test_the_record_changes_nothing_that_is_redacted_in_a_clip(tmp_path, monkeypatch):
    """The same in a video, where weak candidates continue tracks (the sample clip's crowd)."""
    src = _excerpt(SAMPLES / "street.mp4", tmp_path / "street.mp4", 10)
    with_record = pipeline.scan(src, FAST).to_dict()
    monkeypatch.setattr(seen, "FLOOR", FAST.face_candidate_threshold)
    without = pipeline.scan(src, FAST).to_dict()
    assert with_record["tracks"] and with_record["tracks"] == without["tracks"]
    assert len(without["seen"]["boxes"]) < len(with_record["seen"]["boxes"])


# Only the default style here: with pixelate-box, the mosaic over the moving van plate at frame 44
# is sometimes read as a larger "plate" whose overlap with the plate the scan saw at frame 42 sits
# right at the same-place limit (IoU 0.30), so the outcome changes with sub-pixel box shifts: a
# known borderline (an extra finding, never a missed one), not yet fixed.
@pytest.mark.parametrize("style,shape", [("blur", "ellipse")])
def test_blurs_output_of_the_sample_clip_passes_given_its_regions(tmp_path, style, shape):
    """samples/street.mp4 (its first 2 s: a crowd of 10-15 px faces): weak detections of
    torsos and heads beside the fills, and fills over 10 px heads that the detector scores
    above 0.5."""
    src = _excerpt(SAMPLES / "street.mp4", tmp_path / "street.mp4", 48)
    out, regions = tmp_path / "street.out.mp4", tmp_path / "street.regions.json"
    assert (
        blur(
            "run",
            src,
            "-o",
            out,
            "--style",
            style,
            "--shape",
            shape,
            "--preset",
            "ultrafast",
            "--regions",
            regions,
            "-q",
        ).exit_code
        == 0
    )
    result = blur("check", out, "--regions", regions)
    assert result.exit_code == ExitStatus.OK, result.output


def test_a_malformed_record_is_refused_and_a_missing_one_is_no_record():
    assert seen.Seen.from_dict({"tracks": []}, 1) is None
    with pytest.raises(RegionsError, match="seen"):
        seen.Seen.from_dict({"seen": {"threshold": 0.12, "boxes": [[0, 1, 2]]}}, 1)
    with pytest.raises(RegionsError, match="outside"):
        seen.Seen.from_dict({"seen": {"threshold": 0.12, "boxes": [[3, 0, 0, 9, 9, 0.1, "face"]]}}, 1)
    record = seen.Seen.from_dict(
        {
            "seen": {
                "threshold": 0.12,
                "every_n_frames": 3,
                "boxes": [[0, 0, 0, 10, 10, 0.08, "face"], [3, 50, 50, 90, 70, 0.9, "plate"]],
            }
        },
        5,
    )
    assert record.best_here(0, [1, 1, 10, 10]) == pytest.approx(0.08)
    assert record.best_here(1, [1, 1, 10, 10]) is None  # faces: that frame only
    assert record.best_here(1, [50, 50, 90, 70], "plate") == pytest.approx(0.9)  # within 2
    assert record.best_here(0, [50, 50, 90, 70], "plate") is None
