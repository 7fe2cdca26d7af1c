"""The text detector re-run on crops around what changed (``blur.text_changes``) must never lose a
line: a line that appears in a changed area between passes is found on that pass, a line
straddling changed and unchanged tiles is found whole, a crop that would cut a line makes the
frame a full pass, and a real plate driving into a still scene is covered on every frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import FAST, covered_share, redacted_mask, write_video
from test_plates import car_scene

from blur import pipeline, schedule
from blur.detectors.plates import PlateDetector
from blur.detectors.text import TextLines
from blur.schedule import Schedule
from blur.text_changes import ChangedCrops, TextPasses, crop_tiles

PLATES = FAST.merged(kinds=("plate",))


def bars(blob: np.ndarray, min_long: int = 0) -> TextLines:
    """A stand-in text detector: every bright blob of the input (its first channel above 200) at
    least ``min_long`` pixels long is a line, as its upright rectangle in input pixels."""
    bright = (blob[0, 0] > 200).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8)
    rects = [
        (x + w / 2, y + h / 2, max(w, h), min(w, h), 0.0 if w >= h else 90.0)
        for x, y, w, h, _ in stats[1:count]
        if max(w, h) >= min_long
    ]
    return TextLines(np.array(rects, np.float32).reshape(-1, 5), np.full(len(rects), 0.9, np.float32))


def lines_in(detector):
    """``detector`` (blob -> lines) as ``ChangedCrops`` calls it: with channel means, and
    returning them (a stand-in has none)."""

    def run(blob, means=None):
        return detector(blob), ()

    return run


def blob_of(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)


def scene(width=768, height=512, seed=0) -> np.ndarray:
    """A still textured scene (no bright pixels) with a few grey levels of codec noise."""
    rng = np.random.default_rng(seed)
    grey = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 3)
    base = np.clip(100 + 200 * grey, 0, 180).astype(np.uint8)[..., None].repeat(3, axis=2)
    return base


def noisy(image: np.ndarray, t: int) -> np.ndarray:
    rng = np.random.default_rng(100 + t)
    return np.clip(image.astype(np.int16) + rng.integers(-3, 4, image.shape), 0, 255).astype(np.uint8)


def boxes(lines: TextLines) -> list[list[int]]:
    return sorted(np.round(lines.xyxy()).astype(int).tolist())


def counting(detector):
    calls = []

    def run(blob, means=None):
        calls.append(blob.shape[2:])
        return detector(blob), ()

    return run, calls


def test_a_line_appearing_between_passes_is_found_from_a_crop():
    run, calls = counting(bars)
    crops = ChangedCrops(run)
    still = scene()
    still[40:60, 40:200] = 250  # a line that stays
    assert boxes(crops(blob_of(noisy(still, 0)))) == [[40, 40, 200, 60]]
    assert crops(blob_of(noisy(still, 1))) is crops.lines and len(calls) == 1  # noise: nothing runs
    later = still.copy()
    later[300:320, 500:620] = 250  # a plate drives in
    found = crops(blob_of(noisy(later, 2)))
    assert boxes(found) == [[40, 40, 200, 60], [500, 300, 620, 320]]
    assert crops.full_passes == 1 and len(calls) == 2 and calls[1] != (512, 768)  # from a crop


def test_a_line_straddling_changed_and_unchanged_tiles_is_found_whole():
    run, calls = counting(bars)
    crops = ChangedCrops(run)
    still = scene()
    still[200:220, 100:400] = 250  # a long line
    crops(blob_of(noisy(still, 0)))
    longer = still.copy()
    longer[200:220, 400:470] = 250  # grows at its right end only: its left end is unchanged
    found = crops(blob_of(noisy(longer, 1)))
    assert boxes(found) == [[100, 200, 470, 220]]  # whole, once; the old shorter line dropped
    shorter = longer.copy()
    shorter[200:220, 100:160] = 60  # loses its left end, far from the right one
    assert boxes(crops(blob_of(noisy(shorter, 2)))) == [[160, 200, 470, 220]]
    assert crops.full_passes == 1 and crops.crop_calls == 2


def test_a_crop_that_would_cut_a_new_line_makes_a_full_pass():
    """A detector that sees a bar only once a mark is on it: a mark appearing at the end of a
    long bar brings out a line reaching far past the crop around the change."""

    def marked_bars(blob):
        lines = bars(blob)
        mark = blob[0, 1] > 200
        keep = [mark[int(r[1]), int(r[0] - r[2] / 2) : int(r[0] + r[2] / 2)].any() for r in lines.rects]
        return TextLines(lines.rects[keep], lines.score[keep])

    crops = ChangedCrops(lines_in(marked_bars))
    still = scene()
    still[100:120, 40:700] = (250, 0, 0)
    assert len(crops(blob_of(noisy(still, 0)))) == 0
    marked = still.copy()
    marked[100:120, 650:670] = (250, 250, 0)
    assert boxes(crops(blob_of(noisy(marked, 1)))) == [[40, 100, 700, 120]]
    assert crops.full_passes == 2  # the crop's line was cut: the frame was analysed in full


def test_a_line_brought_out_by_a_change_nearby_is_found_in_the_margin():
    """Context: a detector that sees a bar only when a marker is within 100 px of it. The marker
    appears in changed tiles; the bar itself is unchanged and found from the crop's margin."""

    def near_marker(blob):
        lines = bars(blob)
        marker = blob[0, 1] > 200
        if not marker.any() or not len(lines):
            return TextLines(np.zeros((0, 5), np.float32), np.zeros(0, np.float32))
        ys, xs = np.nonzero(marker)
        near = [abs(r[0] - xs.mean()) < 100 + r[2] / 2 for r in lines.rects]
        return TextLines(lines.rects[near], lines.score[near])

    crops = ChangedCrops(lines_in(near_marker))
    still = scene()
    still[300:316, 300:380] = (250, 0, 0)  # a bar, not yet a line
    assert len(crops(blob_of(still))) == 0
    marked = still.copy()
    marked[300:310, 420:430] = (0, 250, 0)  # the marker, 40 px to the right
    assert boxes(crops(blob_of(marked))) == [[300, 300, 380, 316]]
    assert crops.full_passes == 1


def test_a_slow_drift_next_to_a_change_adds_up_until_it_counts():
    """A bar brightening by 8 grey levels a frame (under the noise threshold each time) inside
    the margin of a crop: compared with the input it was last analysed with, not the crop's, it
    counts as changed once it has moved by 16, and the line it became is found."""
    crops = ChangedCrops(lines_in(bars))
    still = scene()
    still[200:216, 300:380] = 190  # not bright enough to be a line yet
    crops(blob_of(still))
    brighter = still.copy()
    brighter[200:216, 300:380] = 198
    brighter[200:216, 420:440] = 250  # a change nearby: the bar lies in its crop's margin
    assert boxes(crops(blob_of(brighter))) == [[420, 200, 440, 216]]
    line = brighter.copy()
    line[200:216, 300:380] = 206  # a line now, 8 levels on from the frame before
    assert boxes(crops(blob_of(line))) == [[300, 200, 380, 216], [420, 200, 440, 216]]


def test_global_change_and_costly_crops_make_a_full_pass():
    crops = ChangedCrops(lines_in(bars))
    crops(blob_of(scene(seed=0)))
    crops(blob_of(scene(seed=1)))  # a cut
    assert crops.full_passes == 2 and crops.crop_calls == 0
    spots = scene(seed=1)
    for x in range(64, 768, 192):  # small changes all over: crops would cover most of it
        spots[100:110, x : x + 10] = spots[400:410, x : x + 10] = 250
    crops(blob_of(spots))
    assert crops.full_passes == 3 and crops.crop_calls == 0


def test_crops_hold_each_changed_tile_with_its_margin_and_do_not_overlap():
    needed = np.zeros((16, 24), bool)
    needed[2, 3] = needed[3, 4] = needed[12, 20] = needed[13, 2] = True
    made = crop_tiles(needed, 2)
    for y, x in zip(*np.nonzero(needed)):
        inside = [c for c in made if c[0] <= x < c[2] and c[1] <= y < c[3]]
        assert len(inside) == 1
        x0, y0, x1, y1 = inside[0]
        assert x0 <= max(0, x - 2) and y0 <= max(0, y - 2) and x1 >= min(24, x + 3) and y1 >= min(16, y + 3)
    for i, a in enumerate(made):
        for b in made[i + 1 :]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


def test_keyframes_come_anyway():
    passes = TextPasses(keyframe_frames=5)
    still = blob_of(scene())
    for index in range(12):
        passes.hook(0, index)(("text",), lines_in(bars), 1.0)(still)
    assert next(iter(passes.passes.values())).full_passes == 3  # frames 0, 5, 10


@pytest.mark.parametrize("motion", ["appears", "drives"])
def test_real_plate_in_a_still_scene_is_covered_on_every_frame(tmp_path, motion):
    """The real plate detector through the video schedule: a car appears on frame 7 (not a
    keyframe) in a still textured scene, or drives across it; the plate is covered on every
    frame it is in, and the text detector ran on crops for some frames."""
    car, plate = car_scene(200, 150, 60, 80, plate_w=60)
    still = scene(480, 320, seed=4)

    def where(t):
        return (230, 120) if motion == "appears" else (40 + 12 * (t - 7), 120 + 2 * (t - 7))

    def image(t):
        picture = still.copy()
        if t >= 7:
            x, y = where(t)
            picture[y : y + 150, x : x + 200] = car
        return picture

    clip = write_video(tmp_path / "car.mp4", frames=24, size=(480, 320), rate=25, image=image)
    made = []

    class Recording(Schedule):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    original = schedule.Schedule
    schedule.Schedule = Recording
    try:
        plan = pipeline.scan(clip, PLATES)
    finally:
        schedule.Schedule = original
    for t in range(7, 24):
        x, y = where(t)
        box = (x + plate[0], y + plate[1], x + plate[2], y + plate[3])
        share = covered_share(redacted_mask(plan, t, 480, 320, PLATES), box)
        assert share >= 0.98, f"frame {t}: plate only {share:.2f} covered"
    runs = list(made[0].text.passes.values())
    assert runs and sum(r.crop_calls for r in runs) > 0  # crops were used
    assert PlateDetector().detect(image(12)).xyxy.shape[0] == 1  # the plate is a plate


def test_the_crop_model_with_the_frames_means_is_the_text_detector():
    """``det_models``: the crop model given a whole image and that image's channel means is the
    text detector itself, to the last bit; given a crop, it weighs channels as the frame does."""
    from blur.detectors.text import shared_model

    model = shared_model()
    image, _ = car_scene(320, 240, 120, 150, plate_w=80)
    x = model.network_input(image, 1280, 2.0)
    prob, means = model._detect_text(x)
    again, _ = model._detect_text(x, means)
    assert len(means) > 0 and np.array_equal(prob, again)
    crop = np.ascontiguousarray(x[:, :, 128:, 128:])
    own, own_means = model._detect_text(crop)
    framed, _ = model._detect_text(crop, means)
    assert not all(np.allclose(a, b) for a, b in zip(own_means, means))  # a crop's own differ
    assert framed.shape == own.shape == (1, 1, x.shape[2] - 128, x.shape[3] - 128)
