"""``blur check``: fails on a visible face, on identifying metadata, passes on blur's output.

It must work on files blur did not make, so the dirty inputs here are written by Pillow and PyAV
directly, the way a camera or phone would.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FAST, exif_with_gps, pattern, shared_file, write_video
from PIL import Image
from typer.testing import CliRunner

from blur import check, cli, detail, detectors
from blur.errors import ExitStatus
from blur.media import metadata
from blur.types import Detections


def blur(*args):
    return CliRunner().invoke(cli.app, [*map(str, args)])


@pytest.fixture
def face_png(tmp_path, astronaut):
    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    return path


def test_check_fails_on_an_unredacted_face(face_png):
    result = blur("check", face_png)
    assert result.exit_code == ExitStatus.FOUND, result.output
    assert "NOT clean" in result.stdout and "face: frame 0" in result.stdout
    found = check.check(face_png, FAST)
    face = [f for f in found.visible if f.kind == "face"]
    assert len(face) == 1 and face[0].score > 0.5
    x1, y1, x2, y2 = face[0].box
    assert 150 < (x1 + x2) / 2 < 300 and 40 < (y1 + y2) / 2 < 220  # the astronaut's face
    assert found.metadata == [] and not found.clean


def test_check_fails_on_a_photo_carrying_gps(tmp_path):
    path = tmp_path / "street.jpg"
    Image.fromarray(pattern(0, 320, 240)).save(path, quality=95, exif=exif_with_gps())
    found = check.check(path, FAST)
    assert found.findings == []  # nothing to see: it fails on the metadata alone
    assert "GPS:4 tags" in found.metadata and "EXIF:Make" in found.metadata
    result = blur("check", path)
    assert result.exit_code == ExitStatus.FOUND
    assert "metadata: GPS:4 tags" in result.stdout


def test_check_fails_on_an_embedded_preview_image(tmp_path):
    path = tmp_path / "multi.jpg"
    im = Image.fromarray(pattern(0, 160, 120))
    im.save(path, "MPO", save_all=True, append_images=[im.resize((80, 60))])
    left = metadata.leftover(path)
    assert "embedded JPEG image(s): 1 (thumbnail or preview)" in left
    assert blur("check", path).exit_code == ExitStatus.FOUND


def test_check_fails_on_video_tags_and_passes_blurs_output(tmp_path):
    src = write_video(
        tmp_path / "phone.mp4",
        frames=10,
        size=(160, 120),
        tags={"location": "+52.5200+013.4050/", "creation_time": "2024-05-01T12:00:00Z"},
        stream_tags={"handler_name": "Core Media Video"},
    )
    result = blur("check", src)
    assert result.exit_code == ExitStatus.FOUND
    assert "format:location" in result.stdout and "format:creation_time" in result.stdout
    assert "handler_name" in result.stdout
    out = tmp_path / "phone.blurred.mp4"
    assert blur("run", src, "-o", out, "--preset", "ultrafast", "-q").exit_code == 0
    result = blur("check", out)
    assert result.exit_code == ExitStatus.OK, result.output
    assert "clean" in result.stdout


def test_check_passes_on_blurs_output_given_its_regions(tmp_path, face_png):
    regions = tmp_path / "astronaut.regions.json"
    out = tmp_path / "astronaut.blurred.png"
    assert blur("run", face_png, "--regions", regions, "-q").exit_code == 0
    result = blur("check", out, "--regions", regions)
    assert result.exit_code == ExitStatus.OK, result.output
    assert result.stdout.startswith(f"{out}: clean")
    # The same regions file does not whitewash the original: its face is clear, not a blob.
    result = blur("check", face_png, "--regions", regions)
    assert result.exit_code == ExitStatus.FOUND
    assert "face: frame 0" in result.stdout


def test_check_counts_a_dropped_face_and_not_a_kept_one(tmp_path, face_frame):
    src = tmp_path / "two.png"
    Image.fromarray(np.ascontiguousarray(np.concatenate([face_frame] * 2, axis=1))).save(src)
    regions = tmp_path / "two.regions.json"
    assert blur("scan", src, "--regions", regions, "--only", "faces", "-q").exit_code == 0
    data = json.loads(regions.read_text())
    # The two faces: keep the left one, and drop every track on the right half.
    faces = sorted(data["tracks"], key=lambda t: -t["boxes"][0][5])[:2]
    left = min(faces, key=lambda t: t["boxes"][0][1])
    left["keep"] = True
    data["tracks"] = [
        t for t in data["tracks"] if t is left or (t["boxes"][0][1] + t["boxes"][0][3]) / 2 < 240
    ]
    regions.write_text(json.dumps(data))
    out = tmp_path / "two.out.png"
    assert blur("render", src, "--regions", regions, "-o", out, "-q").exit_code == 0
    found = check.check(out, FAST, json.loads(regions.read_text()))
    faces = [f for f in found.findings if f.kind == "face" and f.score > 0.5]
    by_side = {("left" if (f.box[0] + f.box[2]) / 2 < 240 else "right"): f.status for f in faces}
    assert by_side == {"left": "kept", "right": "visible"}
    result = blur("check", out, "--regions", regions)
    assert result.exit_code == ExitStatus.FOUND
    assert "[on a region kept visible: not counted]" in result.stdout


def test_check_folder_and_errors(tmp_path, face_png):
    folder = tmp_path / "folder"
    folder.mkdir()
    clean = folder / "clean.png"
    Image.fromarray(pattern(0, 160, 120)).save(clean)
    assert blur("check", folder).exit_code == ExitStatus.OK
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    result = blur("check", folder)
    assert result.exit_code == ExitStatus.ERROR
    assert "broken.jpg" in result.stderr and f"{clean}: clean" in result.stdout
    assert blur("check", tmp_path / "missing.png").exit_code == ExitStatus.USAGE
    result = blur("check", folder, face_png, "--regions", tmp_path / "r.json")
    assert result.exit_code == ExitStatus.USAGE and "exactly one file" in result.stderr


def test_check_survives_an_unexpected_failure_on_one_file(tmp_path, monkeypatch):
    """A bug on one file is that file's error (never "clean"); the others are still checked."""
    for name in ("a.png", "b.png"):
        Image.fromarray(pattern(0, 160, 120)).save(tmp_path / name)
    real = check.check

    def flaky(path, *args, **kwargs):
        if path.name == "a.png":
            raise ValueError("boom")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(check, "check", flaky)
    result = blur("check", tmp_path / "a.png", tmp_path / "b.png")
    assert result.exit_code == ExitStatus.ERROR
    assert "a.png" in result.stderr and "internal error: ValueError: boom" in result.stderr
    assert "b.png: clean" in result.stdout and "a.png: clean" not in result.stdout


# ---- face detail: a redaction has none, a face (even half of one) has it ---------------------

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _sample(name: str) -> Path:
    path = SAMPLES / name
    assert path.is_file(), f"{path}: samples/ is part of the repository"
    return path


def _face_box(rgb: np.ndarray) -> list[float]:
    found = detectors.build(FAST)[0].detect(rgb)
    return [float(v) for v in found.xyxy[int(np.argmax(found.score))]]


@pytest.mark.parametrize("fill", ["solid", "grey", "smoothed", "mosaic"])
def test_a_filled_face_box_has_no_face_detail_and_the_face_has(astronaut, fill):
    """Generated only: the astronaut's face box, measured as it is and after each kind of fill
    (flat black, flat grey, heavily smoothed, a 6-block mosaic)."""
    luma = detail.grey(astronaut)
    box = _face_box(astronaut)
    face = detail.measure(luma, box)
    assert not check.blank(face) and face.fine > 3 * check.BLANK_FINE
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    out = astronaut.copy()
    roi = out[y1:y2, x1:x2]
    if fill == "solid":
        roi[:] = 0
    elif fill == "grey":
        roi[:] = 128
    elif fill == "smoothed":
        roi[:] = cv2.GaussianBlur(roi, (0, 0), 0.25 * (x2 - x1))
    else:
        small = cv2.resize(roi, (6, 6), interpolation=cv2.INTER_AREA)
        roi[:] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
    assert check.blank(detail.measure(detail.grey(out), box))


@pytest.mark.parametrize("half", ["left", "top", "bottom"])
def test_a_half_covered_face_keeps_its_detail(astronaut, half):
    box = _face_box(astronaut)
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
    out = astronaut.copy()
    covered = {
        "left": (slice(y1, y2), slice(x1, cx)),
        "top": (slice(y1, cy), slice(x1, x2)),
        "bottom": (slice(cy, y2), slice(x1, x2)),
    }[half]
    out[covered] = 0
    assert not check.blank(detail.measure(detail.grey(out), box))


def test_a_box_too_small_to_judge_keeps_its_finding():
    luma = np.zeros((40, 40), np.float32)
    found = detail.measure(luma, [10, 10, 11, 11])
    assert found.fine < 0 and found.flat == 0 and not check.blank(found)
    mask = np.zeros((40, 40), bool)  # nothing of the box was redacted: not judged as a fill
    assert not check.blank_fill(detail.measure(luma, [0, 0, 40, 40], mask))


def test_a_half_redacted_face_fails_the_check(tmp_path, astronaut):
    """Blur's own fill over half of the face: what is left is a face, the check says so."""
    from blur.redact import Redactor

    box = np.array([_face_box(astronaut)], np.float32)
    half = box.copy()
    half[0, 2] = (box[0, 0] + box[0, 2]) / 2
    out = astronaut.copy()
    Redactor("blur", 1.3, "box").apply(out, half)
    path = tmp_path / "half.png"
    Image.fromarray(out).save(path)
    result = blur("check", path)
    assert result.exit_code == ExitStatus.FOUND, result.output


@pytest.mark.parametrize(
    "style,shape",
    [
        ("blur", "ellipse"),
        ("pixelate", "ellipse"),
        ("pixelate", "box"),
        ("solid", "ellipse"),
        ("solid", "box"),
        ("blur", "box"),
    ],
)
def test_blurs_output_of_the_astronaut_passes_given_its_regions(tmp_path, style, shape):
    src = _sample("astronaut.jpg")
    out, regions = tmp_path / f"a.{style}.{shape}.jpg", tmp_path / "a.regions.json"
    assert (
        blur("run", src, "-o", out, "--style", style, "--shape", shape, "--regions", regions, "-q").exit_code
        == 0
    )
    result = blur("check", out, "--regions", regions)
    assert result.exit_code == ExitStatus.OK, result.output
    # The same regions file does not whitewash the unredacted original.
    assert blur("check", src, "--regions", regions).exit_code == ExitStatus.FOUND


def test_the_unredacted_samples_fail(tmp_path):
    for name in ("astronaut.jpg", "messi5.jpg"):
        found = check.check(_sample(name), FAST)
        faces = [f for f in found.visible if f.kind == "face" and f.score > 0.8]
        assert faces, name


def test_faces_in_real_footage_keep_their_detail_and_blurs_fill_over_them_has_none():
    """Megamind.avi (computer animation: the smoothest faces there are) -- every face the check
    finds at score >= 0.3 in its first frames has face detail, and blur's fill over the same
    boxes has none."""
    from blur.media import video
    from blur.redact import Redactor

    path = shared_file("Megamind.avi")
    detector = detectors.build(check.check_settings(FAST))[0]
    seen = 0
    for frame in video.frames(path):
        if frame.index % 40:
            continue
        if frame.index > 240:
            break
        rgb = np.ascontiguousarray(frame.image)
        found = detector.detect(rgb)
        boxes = found.xyxy[found.score >= 0.3]
        luma = detail.grey(rgb)
        for box in boxes:
            assert not check.blank(detail.measure(luma, box)), (frame.index, box)
        out = rgb.copy()
        Redactor("blur", 1.3, "ellipse").apply(out, boxes)
        mask = check._region_mask(
            Detections.of(boxes, np.ones(len(boxes)), "face"), 1.3, rgb.shape[1], rgb.shape[0]
        )
        for box in boxes:
            assert check.blank_fill(detail.measure(detail.grey(out), box, mask)), (frame.index, box)
        seen += len(boxes)
    assert seen >= 3


def test_the_face_detail_benchmark_runs():
    """benchmarks/check.py on the samples alone (no ../shared needed): it runs, and no
    unredacted face of the samples is judged blank."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "benchmarks/check.py", "--limit", "0", "--frames", "0"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "samples    unredacted" in proc.stdout
    face = [line for line in proc.stdout.splitlines() if line.startswith("face   dev")]
    assert face and face[0].split()[-1].startswith("0/"), proc.stdout


def test_the_check_without_regions_benchmark_runs_and_no_wrong_render_passes():
    """benchmarks/check_without_regions.py on one faces-dev photo: it runs, and without a
    regions file no render that left a face (or half of one) visible passes the check, with the
    record the outputs carry or with it taken out."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    if not (root.parent / "shared" / "eval" / "faces-dev").is_dir():
        pytest.skip(
            "../shared/eval/faces-dev (the labelled photos this benchmark check runs on) is not available"
        )
    proc = subprocess.run(
        [sys.executable, "benchmarks/check_without_regions.py", "--set", "held", "--photos", "1"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    carried, stripped = proc.stdout.split("\n\n")[:2]
    failed, wrong_renders = re.search(r"all wrong renders fail\s+(\d+)/(\d+)", carried).groups()
    assert failed == wrong_renders == "5", proc.stdout
    rows = [line.split() for line in stripped.splitlines()[1:]]
    wrong = [r for r in rows if r[0] in ("clear", "top", "bottom", "left", "right")]
    assert len(wrong) == 5 and all(r[2].startswith("0/") for r in wrong), proc.stdout
    assert "half-covered faces fail" in proc.stdout
