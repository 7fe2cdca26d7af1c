"""Licence plates: found on a real motion-blurred photo and on generated cars, covered in every
frame of a moving clip, told apart from other text, and left alone with ``--only faces``."""

from __future__ import annotations

import json
from fractions import Fraction

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from blur import pipeline
from blur.cli import app
from blur.detectors.plates import PlateDetector, plate_like
from blur.detectors.text import TextDetector, db_lines, rect_xyxy
from blur.settings import Settings
from conftest import FAST, redacted_mask, shared_file, write_video

PLATES = FAST.merged(kinds=("plate",))


def car_scene(width: int, height: int, plate_x: int, plate_y: int, plate_w: int = 60,
              text: str = "KX 4729") -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The back of a car (body, rear window, tail lights, bumper) with a licence plate: a light
    rectangle with a dark border and dark characters. Returns the RGB image and the plate's
    xyxy box (exclusive ends)."""
    image = np.empty((height, width, 3), np.uint8)
    shade = np.linspace(0, 60, height)[:, None, None]
    image[...] = (np.array([90, 100, 110]) + shade).astype(np.uint8)
    pw, ph = plate_w, plate_w * 2 // 7 + 2
    x1, y1 = plate_x - int(0.8 * pw), plate_y - int(1.6 * pw)
    x2, y2 = plate_x + int(1.8 * pw), plate_y + ph + pw // 3
    cv2.rectangle(image, (x1, y1), (x2, y2), (40, 60, 140), -1)
    cv2.rectangle(image, (x1 + pw // 4, y1 + pw // 6), (x2 - pw // 4, y1 + int(0.8 * pw)),
                  (30, 35, 40), -1)
    cv2.rectangle(image, (x1 + 4, plate_y - pw // 3), (x1 + pw // 2, plate_y), (200, 30, 30), -1)
    cv2.rectangle(image, (x2 - pw // 2, plate_y - pw // 3), (x2 - 4, plate_y), (200, 30, 30), -1)
    cv2.rectangle(image, (x1, plate_y + ph + 4), (x2, plate_y + ph + pw // 5), (25, 25, 25), -1)
    cv2.rectangle(image, (plate_x, plate_y), (plate_x + pw, plate_y + ph), (235, 235, 225), -1)
    cv2.rectangle(image, (plate_x, plate_y), (plate_x + pw, plate_y + ph), (20, 20, 20), 1)
    scale = pw / 150
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, 1)
    cv2.putText(image, text, (plate_x + (pw - tw) // 2, plate_y + (ph + th) // 2),
                cv2.FONT_HERSHEY_DUPLEX, scale, (15, 15, 15), max(1, round(1.5 * scale)),
                cv2.LINE_AA)
    return image, (plate_x, plate_y, plate_x + pw + 1, plate_y + ph + 1)


def banner(width: int = 320, height: int = 240) -> np.ndarray:
    """A protest banner: several lines of large words and no licence plate."""
    image = np.full((height, width, 3), (70, 110, 60), np.uint8)
    cv2.rectangle(image, (10, 20), (width - 10, height - 20), (240, 235, 220), -1)
    for i, line in enumerate(["FREE PRESS", "STOP THE WAR", "CITY HALL"]):
        cv2.putText(image, line, (24, 75 + 60 * i), cv2.FONT_HERSHEY_DUPLEX, 1.0, (150, 20, 20), 2,
                    cv2.LINE_AA)
    return image


def covered(mask: np.ndarray, box) -> float:
    x1, y1, x2, y2 = box
    return float(mask[y1:y2, x1:x2].mean())


def test_plate_like_readings():
    for text in ["KX 4729", "OSG-719", "1Z7:5233", "AJK7551", "4639520", "3-V0"]:
        assert plate_like(text), text
    # Words, phone numbers, dates and clock times are not plates.
    for text in ["Jeep", "CHEVROLET", "626-257-2977", "2014-04-28", "06:23:47", "12:30", "SK",
                 "07825:13", "03854805", "14-05-12"]:
        assert not plate_like(text), text


def test_db_lines_unclips_the_shrunk_kernel():
    """A 40x10 kernel in a map analysed at half size comes back as one horizontal line, grown by
    the DB offset and scaled to the image."""
    prob = np.zeros((64, 64), np.float32)
    prob[20:30, 10:50] = 0.9
    lines = db_lines(prob, (2.0, 2.0), unclip_ratio=1.5)
    assert len(lines) == 1
    cx, cy, long_side, short_side, angle = lines.rects[0]
    assert abs(cx - 60) < 3 and abs(cy - 50) < 3 and abs(angle) < 1
    offset = 40 * 10 * 1.5 / (2 * 50)  # area * ratio / perimeter of the kernel
    assert abs(long_side - 2 * (40 + 2 * offset)) < 6
    assert abs(short_side - 2 * (10 + 2 * offset)) < 6
    x1, y1, x2, y2 = rect_xyxy(lines.rects)[0]
    assert x1 < 20 < 100 < x2 and y1 < 40 < 60 < y2


def test_generated_plate_found_and_padded_to_the_whole_plate():
    image, box = car_scene(240, 180, 60, 90, plate_w=72)
    found = PlateDetector().detect(image)
    assert len(found) == 1 and set(found.kind) == {"plate"}
    x1, y1, x2, y2 = found.xyxy[0]
    assert x1 <= box[0] and y1 <= box[1] and x2 >= box[2] and y2 >= box[3]


def test_banner_text_is_not_a_plate_but_is_text():
    image = banner()
    assert len(PlateDetector().detect(image)) == 0
    # The words are there to be found: --text redacts them.
    assert len(TextDetector().detect(image)) >= 3


def test_moving_plate_covered_in_every_frame(tmp_path):
    """A car drives across a 160x120 clip; the plate detector runs on every 3rd frame and the
    tracker bridges the others: the whole plate is redacted in every frame."""
    frames = 24
    positions = [(8 + 3 * i, 62 + i // 4) for i in range(frames)]
    src = write_video(tmp_path / "car.mp4", frames=frames, size=(160, 120),
                      image=lambda i: car_scene(160, 120, *positions[i])[0])
    settings = PLATES
    plan = pipeline.scan(src, settings)
    detector = pipeline.detectors_for(settings)[0]
    assert pipeline.frame_stride(detector, 30.0, settings) == 3  # frames really were skipped
    assert {t.kind for t in plan.tracks} == {"plate"}
    sources = {str(s) for t in plan.tracks for s in t.source}
    assert "interpolated" in sources  # the frames in between come from the tracker
    for i in range(frames):
        box = car_scene(160, 120, *positions[i])[1]
        mask = redacted_mask(plan, i, 160, 120, settings)
        assert covered(mask, box) >= 0.98, f"frame {i}: plate only {covered(mask, box):.2f} covered"


def test_stride_never_exceeds_what_tracking_bridges():
    detector = PlateDetector(every_n_frames=3)
    assert pipeline.frame_stride(detector, 30.0, Settings()) == 3
    # At 5 fps the 0.2 s padding is one frame: only every 2nd frame may be skipped.
    assert pipeline.frame_stride(detector, 5.0, Settings()) == 2
    # No padding or no gap filling: every frame is analysed.
    assert pipeline.frame_stride(detector, 30.0, Settings(pad_seconds=0)) == 1
    assert pipeline.frame_stride(detector, 30.0, Settings(max_gap_seconds=0)) == 1


def test_plate_appearing_in_the_last_skipped_frames_is_covered(tmp_path):
    """A plate that enters only after the last strided run is still found (the last frame is
    always analysed) and padded back."""
    frames = 11  # strided runs at 0, 3, 6, 9; the plate appears at frame 10 only
    empty = car_scene(160, 120, 40, 62)[0]
    empty[:] = 120
    src = write_video(tmp_path / "late.mp4", frames=frames, size=(160, 120),
                      image=lambda i: car_scene(160, 120, 40, 62)[0] if i == 10 else empty)
    plan = pipeline.scan(src, PLATES)
    box = car_scene(160, 120, 40, 62)[1]
    assert covered(redacted_mask(plan, 10, 160, 120), box) >= 0.98


def _regions(tmp_path, image: np.ndarray, *options: str) -> list[str]:
    photo = tmp_path / "car.png"
    Image.fromarray(image).save(photo)
    regions = tmp_path / "regions.json"
    out = tmp_path / f"out{len(list(tmp_path.iterdir()))}.png"
    result = CliRunner().invoke(app, ["run", str(photo), "-o", str(out), "--regions",
                                      str(regions), "--overwrite", "-q", *options])
    assert result.exit_code == 0, result.output
    return [t["kind"] for t in json.loads(regions.read_text())["tracks"]]


def test_only_faces_leaves_plates_and_default_redacts_them(tmp_path):
    image = car_scene(320, 240, 110, 150, plate_w=90)[0]
    assert "plate" in _regions(tmp_path, image)
    assert "plate" in _regions(tmp_path, image, "--only", "plates")
    assert "plate" not in _regions(tmp_path, image, "--only", "faces")


def test_text_option_redacts_banner_words(tmp_path):
    assert _regions(tmp_path, banner()).count("text") == 0
    assert _regions(tmp_path, banner(), "--text").count("text") >= 3


@pytest.mark.slow
def test_motion_blurred_plate_is_covered():
    """../shared/media/licenseplate_motion.jpg: a plate smeared by strong motion blur. It cannot
    be read, so it is kept on geometry alone and padded; the hand-measured plate box must be
    inside the redacted region."""
    src = shared_file("licenseplate_motion.jpg")
    plan = pipeline.scan(src, PLATES)
    mask = redacted_mask(plan, 0, plan.info.width, plan.info.height)
    assert covered(mask, (225, 225, 360, 297)) >= 0.95
