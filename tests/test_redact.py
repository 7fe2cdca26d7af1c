"""Redaction: inside a region the face is gone for good, outside nothing changes, borders are
covered to the last pixel, kernels follow the box size, and every style works."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import redaction_mask, shared_file

from blur.redact import STYLES, NoiseBlur, Pixelate, Redactor
from blur.settings import Settings

# The astronaut's face in samples/astronaut.jpg (512x512), as CenterFace finds it.
FACE = (175, 54, 275, 180)


@pytest.fixture
def busy() -> np.ndarray:
    """A 120x160 image with detail everywhere and no black pixel (so "black" means redacted)."""
    rng = np.random.default_rng(7)
    return rng.integers(30, 250, (120, 160, 3), dtype=np.uint8)


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)


def _detail(image: np.ndarray) -> np.ndarray:
    """What makes a face recognisable: the structure left after removing the smooth shading."""
    grey = _grey(image)
    return (grey - cv2.GaussianBlur(grey, (0, 0), 4)).ravel()


def _redact(image, boxes, style="blur", scale=1.0, shape="box", seed=None):
    out = image.copy()
    rng = np.random.default_rng(seed) if seed is not None else None
    Redactor(style, scale, shape, rng=rng).apply(out, np.asarray(boxes, np.float32))
    return out


def test_default_style_leaves_no_face_detail(astronaut):
    x1, y1, x2, y2 = FACE
    face = astronaut[y1:y2, x1:x2]
    out = _redact(astronaut, [FACE])[y1:y2, x1:x2]
    assert np.abs(out.astype(int) - face).mean() > 20
    assert abs(np.corrcoef(_detail(face), _detail(out))[0, 1]) < 0.1
    # Averaging many renders (as many video frames would allow) brings no detail back.
    mean = np.mean([_redact(astronaut, [FACE])[y1:y2, x1:x2] for _ in range(30)], axis=0)
    assert abs(np.corrcoef(_detail(face), _detail(mean.astype(np.uint8)))[0, 1]) < 0.1


def test_default_style_keeps_at_most_a_coarse_colour_layout(astronaut):
    """Scrambling the face's pixels within each cell of a 3x3 grid (the face is destroyed, the
    cell averages stay) gives the same output: nothing finer than that grid reaches the fill."""
    assert NoiseBlur.grid == 3
    x1, y1 = FACE[:2]
    x2, y2 = x1 + 99, y1 + 123  # a multiple of 3 both ways: the cells are exact
    face = astronaut[y1:y2, x1:x2]
    scrambled = face.copy()
    rng = np.random.default_rng(0)
    for rows in np.split(np.arange(123), 3):
        for cols in np.split(np.arange(99), 3):
            cell = scrambled[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].reshape(-1, 3)
            scrambled[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = rng.permutation(cell).reshape(
                len(rows), len(cols), 3
            )
    box = [[0, 0, 99, 123]]
    a = _redact(face, box, seed=1)
    b = _redact(scrambled, box, seed=1)
    assert np.abs(a.astype(int) - b).max() <= 2
    assert np.abs(face.astype(int) - scrambled).mean() > 10  # the scramble did change the face


@pytest.mark.parametrize("style", ["blur", "pixelate"])
def test_fill_changes_from_frame_to_frame(busy, style):
    box = [[40, 30, 100, 90]]
    first, second = _redact(busy, box, style), _redact(busy, box, style)
    assert np.abs(first.astype(int) - second)[30:90, 40:100].mean() > 1


@pytest.mark.parametrize("style", sorted(STYLES))
@pytest.mark.parametrize("shape", ["box", "ellipse"])
def test_pixels_outside_the_region_are_byte_identical(busy, style, shape):
    out = _redact(busy, [[40.3, 30.6, 99.2, 89.5]], style, scale=1.3, shape=shape)
    # The box grown 1.3x about its centre (69.75, 60.05): half sizes 38.35 x 38.35.
    yy, xx = np.mgrid[0:120, 0:160] + 0.5
    outside_box = (
        (xx < 69.75 - 38.35 - 1)
        | (xx > 69.75 + 38.35 + 1)
        | (yy < 60.05 - 38.35 - 1)
        | (yy > 60.05 + 38.35 + 1)
    )
    assert np.array_equal(out[outside_box], busy[outside_box])
    if shape == "ellipse":
        # Corners of the grown box are outside its inscribed ellipse: untouched.
        r = ((xx - 69.75) / 38.35) ** 2 + ((yy - 60.05) / 38.35) ** 2
        assert np.array_equal(out[r > 1.1], busy[r > 1.1])
        inside = r < 0.9
    else:
        inside = ~outside_box & (np.abs(xx - 69.75) < 37) & (np.abs(yy - 60.05) < 37)
    assert (out[inside] != busy[inside]).any(axis=-1).mean() > 0.9


@pytest.mark.parametrize(
    "box",
    [
        [130, 90, 160, 120],  # exactly to the corner
        [130.2, 90.4, 159.6, 119.7],  # fractional, just short of it
        [140, 100, 190, 150],  # running past it
    ],
)
def test_box_at_the_right_and_bottom_edge_covers_the_last_pixels(busy, box):
    out = _redact(busy, [box], "solid")
    x1, y1 = int(box[0]), int(box[1])
    assert (out[y1:, x1:] == 0).all()  # includes the last row and the last column
    assert out[y1 - 1, x1 - 1].any() and out[:y1].any(axis=-1).all()


def test_ellipse_cut_by_the_edge_reaches_the_edge(busy):
    # A face half out of the picture: its ellipse is drawn from the full box, up to the border.
    out = _redact(busy, [[130, 40, 190, 100]], "solid", shape="ellipse")
    assert (out[60:80, 140:] == 0).all()
    assert (out[45:95, 159] == 0).all()
    assert out[41, 131].all()  # the ellipse's corner stays


def test_box_at_the_left_and_top_edge(busy):
    out = _redact(busy, [[-15.5, -3, 20, 25]], "solid")
    assert (out[:25, :20] == 0).all()
    assert out[25:].all() and out[:, 20:].all()


@pytest.mark.parametrize("style", sorted(STYLES))
@pytest.mark.parametrize("box", [[10, 10, 11, 11], [10, 10, 12.5, 13], [0, 0, 1, 120], [-50, -50, 300, 300]])
def test_every_style_handles_tiny_and_huge_boxes(busy, style, box):
    out = _redact(busy, [box], style, shape="ellipse")
    x = min(int((box[0] + box[2]) / 2), 159)
    y = min(int((box[1] + box[3]) / 2), 119)
    assert out.shape == busy.shape and out.dtype == np.uint8
    assert (out[y, x] != busy[y, x]).any()  # even a one-pixel box is redacted


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_style_ignores_empty_and_outside_boxes(busy, style):
    redactor = Redactor(style, 1.3, "ellipse")
    out = busy.copy()
    boxes = np.array([[200, 10, 260, 50], [10, 130, 50, 170], [50, 50, 50, 80], [60, 60, 40, 40]], np.float32)
    assert redactor.apply(out, boxes) == 0
    assert redactor.apply(out, np.zeros((0, 4), np.float32)) == 0
    assert np.array_equal(out, busy)


def test_solid_fill_is_flat_black(busy):
    out = _redact(busy, [[20, 20, 60, 50]], "solid")
    assert (out[20:50, 20:60] == 0).all()


def test_blur_kernel_scales_with_the_box():
    """A fixed pixel kernel would leave big faces barely smoothed: the fill's roughness
    (neighbour differences) must drop as the box grows."""

    def roughness(side):
        roi = np.full((side, side, 3), 128, np.uint8)
        fill = NoiseBlur(np.random.default_rng(3)).fill(roi).astype(float)
        return np.abs(np.diff(fill, axis=1)).mean()

    assert roughness(40) > 4 * roughness(320)


@pytest.mark.parametrize("side", [24, 60, 300])
def test_pixelate_blocks_scale_with_the_box(side):
    roi = np.random.default_rng(0).integers(0, 255, (side, side, 3), dtype=np.uint8)
    fill = Pixelate(np.random.default_rng(1)).fill(roi)
    columns = 1 + np.count_nonzero(np.any(fill[:, 1:] != fill[:, :-1], axis=(0, 2)))
    assert columns <= 6


def test_whole_frame_redaction_changes_everything(busy):
    out = busy.copy()
    Redactor().apply_everywhere(out)
    assert (out != busy).any(axis=-1).mean() > 0.95
    assert abs(np.corrcoef(_detail(busy), _detail(out))[0, 1]) < 0.1


def test_unknown_style_or_shape_is_refused():
    with pytest.raises(ValueError, match="style"):
        Redactor("swirl")
    with pytest.raises(ValueError, match="shape"):
        Redactor("blur", shape="star")


def _ycrcb(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2YCrCb).astype(np.float32)


def test_overlapping_regions_are_filled_as_one_smooth_region(astronaut):
    """A second box inside a face (here over the mouth) must not show as a blob with a seam
    inside the face's fill: overlapping masks are merged and filled once. Measured as the
    largest brightness step between neighbouring pixels inside the merged mask (away from
    its border): a seam is a step of 10-20 levels, a smooth fill steps by 2-3."""
    boxes = np.array([[175, 54, 275, 180], [205, 130, 245, 170]], np.float32)
    mask = redaction_mask(boxes, 512, 512, 1.3, "ellipse").astype(np.uint8)
    inner = cv2.erode(mask, np.ones((5, 5), np.uint8)).astype(bool)
    for seed in range(5):
        out = _redact(astronaut, boxes, scale=1.3, shape="ellipse", seed=seed)
        y = _ycrcb(out)[..., 0]
        steps = np.concatenate(
            [
                np.abs(np.diff(y, axis=1))[inner[:, 1:] & inner[:, :-1]],
                np.abs(np.diff(y, axis=0))[inner[1:] & inner[:-1]],
            ]
        )
        assert steps.max() <= 5, f"seed {seed}: a step of {steps.max()} levels inside the fill"
        assert np.array_equal(out[mask == 0], astronaut[mask == 0])


def test_regions_that_do_not_touch_are_filled_separately(busy):
    """Merging is per connected group: two far-apart regions each get their own fill (the
    colour of one does not spill into the other, and both count)."""
    busy[:, :60] = (200, 40, 40)
    busy[:, 100:] = (40, 40, 200)
    out = busy.copy()
    assert (
        Redactor("blur", 1.0, "box").apply(out, np.array([[10, 10, 50, 50], [110, 10, 150, 50]], np.float32))
        == 2
    )
    assert out[10:50, 10:50, 0].mean() > out[10:50, 10:50, 2].mean() + 100
    assert out[10:50, 110:150, 2].mean() > out[10:50, 110:150, 0].mean() + 100


@pytest.mark.parametrize("style", ["blur", "pixelate"])
def test_fill_noise_is_brightness_not_colour(style):
    """The fresh noise varies brightness only: on a flat skin-coloured patch the fill's
    chroma (Cr, Cb) stays the patch's own, with no green or purple tints, while its
    brightness does vary (the noise is there)."""
    roi = np.empty((90, 70, 3), np.uint8)
    roi[:] = (170, 120, 95)
    base = _ycrcb(roi)[0, 0]
    for seed in range(5):
        fill = _ycrcb(STYLES[style](np.random.default_rng(seed)).fill(roi))
        assert fill[..., 0].std() > 1
        assert np.abs(fill[..., 1:] - base[1:]).max() <= 1


def test_plates_and_manual_regions_are_rectangles_faces_ellipses(busy):
    """Under the default settings (ellipse, grown 1.3x) a plate is redacted as its whole
    grown box, to the corners; a manual region exactly as drawn; a face as an ellipse."""
    s = Settings()
    out = busy.copy()
    boxes = np.array([[20, 20, 60, 40], [100, 20, 140, 60], [20, 70, 60, 110]], np.float32)
    Redactor("solid", s.mask_scale, s.shape).apply(out, boxes, np.array(["plate", "face", "manual"]))
    # plate: (20, 20, 60, 40) grown 1.3x about (40, 30) -> (14, 17, 66, 43), every pixel
    assert (out[17:43, 14:66] == 0).all()
    assert out[16, 14:66].all() and out[43, 14:66].all()
    # manual: exactly its box, not grown
    assert (out[70:110, 20:60] == 0).all() and out[69, 20:60].all() and out[70:110, 19].all()
    # face: ellipse; the grown box's corners stay
    assert (out[40, 120] == 0).all() and out[15, 95].all() and out[65, 145].all()


@pytest.mark.parametrize("where", ["render", "review page"])
def test_a_plate_track_is_redacted_as_a_full_rectangle(tmp_path, busy, where):
    """The kind travels from the plan to the redaction: a plate track renders as a filled
    rectangle to its corners with the default settings, in the output and on the review page."""
    from PIL import Image

    from blur import pipeline, tracking
    from blur.redact import Redactor, redact_frame
    from blur.types import Track

    src = tmp_path / "car.png"
    Image.fromarray(busy).save(src)
    plate = [40, 50, 100, 70]
    plan = pipeline.Plan(pipeline.probe(src), 1, [Track(1, "plate", [0], [plate], [0.9], ["detected"])])
    if where == "render":
        dst = tmp_path / "car.blurred.png"
        pipeline.render(src, dst, plan, Settings())
        out = np.asarray(Image.open(dst).convert("RGB"))
    else:
        out = busy.copy()
        redact_frame(out, Redactor("blur", 1.3, "ellipse"), tracking.boxes_at(plan.tracks, 1)[0])
    changed = (out != busy).any(axis=-1)
    # the box grown 1.3x about (70, 60): (31, 47, 109, 73); corner patches of 3x3 pixels
    for y, x in ((47, 31), (47, 106), (70, 31), (70, 106)):
        assert changed[y : y + 3, x : x + 3].all(), f"corner at ({x}, {y}) left visible"
    assert not changed[:47].any() and not changed[73:].any()
    assert not changed[:, :31].any() and not changed[:, 109:].any()


def test_an_ellipse_clipped_at_the_frame_edge_still_covers_the_face_along_the_edge():
    """Boxes are clipped where they are made; the face they hold runs on past the edge, so the
    ellipse must cover at least what the unclipped box's ellipse covered inside the frame."""
    from blur.redact import union_mask

    width, height = 200, 120
    # a face half out of the right edge: unclipped [170, 30, 230, 100]
    clipped = np.array([[170, 30, 200, 100]], np.float32)
    # The ellipse of the unclipped box grown 1.3x, drawn by hand inside the frame.
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    whole = ((xx - 200) / 39) ** 2 + ((yy - 65) / 45.5) ** 2 <= 1.0
    cut = union_mask(clipped, width, height, 1.3, "ellipse")
    assert whole.any() and not (whole & ~cut).any()
    # and a face on no edge keeps its ellipse exactly
    inner = np.array([[60, 30, 120, 100]], np.float32)
    assert (
        union_mask(inner, width, height, 1.3, "ellipse").sum()
        < union_mask(inner, width, height, 1.3, "box").sum()
    )


@pytest.mark.parametrize("style", sorted(STYLES))
def test_a_one_pixel_region_never_comes_back_unchanged(busy, style):
    """The fill's noise is drawn afresh; a draw near 0 must not hand a tiny region back intact."""
    redactor = Redactor(style, 1.0, "ellipse", rng=np.random.default_rng(0))
    box = np.array([[10, 10, 11, 11]], np.float32)
    for _ in range(400):
        out = busy.copy()
        redactor.apply(out, box)
        assert (out[10, 10] != busy[10, 10]).any()


# The largest face box that blur's scan (default settings) finds in these frames of
# ../shared/media/Megamind.avi: one close, frontal face each, 160-290 px wide.
MEGAMIND_FACES = {
    120: (389.1, 159.7, 551.6, 392.0),
    165: (201.7, 130.3, 372.3, 355.4),
    180: (225.6, 116.0, 400.3, 392.0),
    195: (271.4, 143.2, 434.5, 379.8),
    225: (253.9, 64.8, 542.6, 463.9),
    255: (292.0, 61.5, 526.0, 370.7),
}


@pytest.fixture(scope="module")
def megamind_frames() -> dict[int, np.ndarray]:
    from blur.media import video

    frames = {}
    for frame in video.frames(shared_file("Megamind.avi")):
        if frame.index in MEGAMIND_FACES:
            frames[frame.index] = np.ascontiguousarray(frame.image)
        if frame.index >= max(MEGAMIND_FACES):
            break
    return frames


def _structure(image: np.ndarray, width: float) -> np.ndarray:
    """A face's features (eyes, brows, nose, mouth: 1/40 to 1/10 of its width) in grey levels."""
    grey = _grey(image)
    return cv2.GaussianBlur(grey, (0, 0), width / 40) - cv2.GaussianBlur(grey, (0, 0), width / 10)


def test_fill_of_a_real_face_keeps_none_of_its_features(megamind_frames):
    """On real faces the fill's features (band-passed at the scale of eyes and mouth) do not
    follow the face's, for one render or for the mean of 10 (many frames of a still face). The
    measure can tell: a Gaussian blur of the face with the fill's own kernel keeps them
    (correlation 0.68). Measured on these faces (mean |r|, one render / mean of 10): a 3x3 grid
    0.11 / 0.10, the 4x4 grid 0.09 / 0.08, a 5x5 grid 0.24 / 0.23 (too close to the face)."""
    one, mean, gaussian = [], [], []
    for index, box in MEGAMIND_FACES.items():
        image = megamind_frames[index]
        height, width = image.shape[:2]
        mask = redaction_mask(np.array([box], np.float32), width, height, 1.3, "ellipse").astype(np.uint8)
        inner = cv2.erode(mask, np.ones((9, 9), np.uint8)).astype(bool)
        size = box[2] - box[0]
        face = _structure(image, size)[inner]
        renders = [_redact(image, [box], scale=1.3, shape="ellipse", seed=seed) for seed in range(10)]
        one.append(abs(np.corrcoef(face, _structure(renders[0], size)[inner])[0, 1]))
        average = np.mean(renders, axis=0).astype(np.uint8)
        mean.append(abs(np.corrcoef(face, _structure(average, size)[inner])[0, 1]))
        sigma = 0.06 * 1.3 * max(box[2] - box[0], box[3] - box[1])
        blurred = cv2.GaussianBlur(image, (0, 0), sigma)
        gaussian.append(abs(np.corrcoef(face, _structure(blurred, size)[inner])[0, 1]))
    assert np.mean(gaussian) > 0.5
    assert np.mean(one) < 0.2 and np.mean(mean) < 0.2
