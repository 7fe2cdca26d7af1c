"""Detector contract, parametrised over the registry, plus the face detector's own promises.

Faces are judged as the redaction sees them: a labelled face counts as found when at least 70 %
of its box lies inside the masks ``blur.redact.region_masks`` draws for the detections that are
redacted on their own (score at or above the detector's threshold). The labelled boxes below
were drawn by hand on the pictures (brows to chin), not taken from a detector's output.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import covered_share, redaction_mask, shared_file
from PIL import Image

from blur.detectors import DETECTORS
from blur.detectors.centerface import CenterFaceDetector
from blur.settings import Settings
from blur.types import Detections

ASTRONAUT_FACE = [188, 88, 266, 182]  # samples/astronaut.jpg, 512x512
MESSI_FACE = [226, 96, 257, 134]  # ../shared/media/messi5.jpg, 548x342


def coverage(face, found: Detections, width: int, height: int) -> float:
    """Share of the labelled ``face`` box inside the redaction masks of ``found``."""
    settings = Settings()
    return covered_share(redaction_mask(found.xyxy, width, height, settings.mask_scale, settings.shape), face)


def confident(det, found: Detections) -> Detections:
    return found[found.score >= getattr(det, "threshold", 0.0)]


@pytest.fixture(scope="module", params=sorted(DETECTORS))
def detector(request):
    return DETECTORS[request.param]()


@pytest.fixture(scope="module", params=sorted(n for n, cls in DETECTORS.items() if cls.kind == "face"))
def face_detector(request):
    return DETECTORS[request.param]()


def check_contract(det, image: np.ndarray) -> Detections:
    found = det.detect(image)
    assert isinstance(found, Detections)
    n = len(found)
    assert found.xyxy.shape == (n, 4) and found.xyxy.dtype == np.float32
    assert found.score.shape == (n,) and found.kind.shape == (n,) and found.track_id.shape == (n,)
    assert np.isfinite(found.xyxy).all() and np.isfinite(found.score).all()
    height, width = image.shape[:2]
    assert (found.xyxy[:, [0, 2]] >= 0).all() and (found.xyxy[:, [0, 2]] <= width).all()
    assert (found.xyxy[:, [1, 3]] >= 0).all() and (found.xyxy[:, [1, 3]] <= height).all()
    assert (found.xyxy[:, 2] > found.xyxy[:, 0]).all() and (found.xyxy[:, 3] > found.xyxy[:, 1]).all()
    assert ((found.score >= 0) & (found.score <= 1)).all()
    assert (found.kind == det.kind).all()
    assert (found.track_id == -1).all()
    return found


def test_contract_on_a_photo(detector, astronaut):
    check_contract(detector, astronaut)


def test_contract_on_odd_and_tiny_sizes(detector, astronaut):
    check_contract(detector, np.ascontiguousarray(astronaut[:97, :131]))
    check_contract(detector, np.full((7, 5, 3), 90, dtype=np.uint8))


@pytest.mark.parametrize("value", [0, 128, 255])
def test_nothing_on_a_blank_image(detector, value):
    found = check_contract(detector, np.full((240, 320, 3), value, dtype=np.uint8))
    assert len(found) == 0


def test_face_detectors_find_the_astronaut(face_detector, astronaut):
    detector = face_detector
    found = confident(detector, detector.detect(astronaut))
    assert coverage(ASTRONAUT_FACE, found, 512, 512) >= 0.7
    # One face, one box: duplicates from the several passes are merged.
    overlapping = [b for b in found.xyxy if b[0] < 266 and b[2] > 188 and b[1] < 182 and b[3] > 88]
    assert len(overlapping) == 1


def test_face_detectors_find_messi(face_detector):
    detector = face_detector
    rgb = np.asarray(Image.open(shared_file("messi5.jpg")).convert("RGB"))
    assert rgb.shape[:2] == (342, 548)
    found = confident(detector, detector.detect(rgb))
    assert coverage(MESSI_FACE, found, 548, 342) >= 0.7


@pytest.fixture(scope="module")
def centerface():
    return CenterFaceDetector()


def test_the_box_is_extended_to_the_chin_and_grown(centerface, astronaut):
    """CenterFace's own box stops above the chin (well above it on masked faces): what the
    detector returns reaches further down than what the network said, and is a bit wider."""
    raw, score = centerface._detect_at(astronaut, 1.0, 0.5)
    raw = raw[np.argmax(score)]
    found = confident(centerface, centerface.detect(astronaut))
    box = found.xyxy[np.argmax(found.score)]
    height = raw[3] - raw[1]
    assert box[3] >= raw[3] + 0.1 * height
    assert box[0] < raw[0] and box[2] > raw[2]


def test_weak_candidates_are_reported_with_their_scores(astronaut):
    small = np.ascontiguousarray(astronaut[::4, ::4])  # 128x128: a 24 px face
    det = CenterFaceDetector(threshold=0.9, candidate_threshold=0.05)
    found = det.detect(small)
    assert len(found) and (found.score >= 0.05).all()
    strict = CenterFaceDetector(threshold=0.9, candidate_threshold=0.9).detect(small)
    assert (strict.score >= 0.9).all()
    assert len(strict) <= len(found)


@pytest.mark.parametrize("how", ["flip", "rot90", "rot270"])
def test_boxes_from_mirrored_and_turned_copies_map_back(how):
    """A box drawn in a picture, found in its mirrored or turned copy, maps back onto itself."""
    from blur.detectors.centerface import _unview

    height, width = 90, 160
    picture = np.zeros((height, width), dtype=bool)
    picture[20:50, 100:130] = True  # rows 20..49, columns 100..129: xyxy (100, 20, 130, 50)
    copy = {"flip": picture[:, ::-1], "rot90": np.rot90(picture, 1), "rot270": np.rot90(picture, -1)}[how]
    rows, cols = np.nonzero(copy)
    seen = np.array([[cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]], np.float32)
    assert _unview(seen, how, width, height).tolist() == [[100, 20, 130, 50]]


@pytest.mark.parametrize("turns", [1, -1])
def test_rotation_pass_finds_a_sideways_face_where_it_is(astronaut, turns):
    # Off centre, so that a box mapped back the wrong way would land elsewhere.
    crop = astronaut[0:320, 60:512]
    turned = np.ascontiguousarray(np.rot90(crop, turns))
    det = CenterFaceDetector(rotate=True)
    found = confident(det, check_contract(det, turned))
    x1, y1, x2, y2 = ASTRONAUT_FACE
    x1, x2 = x1 - 60, x2 - 60
    w, h = crop.shape[1], crop.shape[0]
    if turns == 1:  # counter-clockwise: (x, y) -> (y, w - x)
        face = [y1, w - x2, y2, w - x1]
    else:  # clockwise: (x, y) -> (h - y, x)
        face = [h - y2, x1, h - y1, x2]
    assert coverage(face, found, turned.shape[1], turned.shape[0]) >= 0.7
    for bx1, by1, bx2, by2 in found.xyxy[found.score >= 0.5]:  # no confident box elsewhere
        assert bx1 < face[2] and bx2 > face[0] and by1 < face[3] and by2 > face[1]


def test_mirror_pass_agrees_with_the_plain_one(centerface, astronaut):
    plain = confident(centerface, centerface.detect(astronaut))
    det = CenterFaceDetector(flip=True)
    mirrored = confident(det, check_contract(det, astronaut))
    assert coverage(ASTRONAUT_FACE, mirrored, 512, 512) >= coverage(ASTRONAUT_FACE, plain, 512, 512)


def _small_astronaut(astronaut) -> tuple[np.ndarray, list[int]]:
    """The astronaut at a quarter size (128x128, a ~24 px face) and its face box there."""
    small = np.ascontiguousarray(astronaut[::4, ::4])
    face = [v / 4 for v in ASTRONAUT_FACE]
    return small, [int(face[0]), int(face[1]), int(np.ceil(face[2])), int(np.ceil(face[3]))]


def test_second_look_confirms_a_real_face_the_first_look_scores_weakly(astronaut):
    small, face = _small_astronaut(astronaut)
    plain = CenterFaceDetector(threshold=0.9, candidate_threshold=0.05).detect(small)
    assert coverage(face, plain[plain.score >= 0.9], 128, 128) < 0.7  # weak at first look
    looked = CenterFaceDetector(threshold=0.9, candidate_threshold=0.05, second_look=True).detect(small)
    assert coverage(face, looked[looked.score >= 0.9], 128, 128) >= 0.7
    # Only what the look confirmed was raised, and only to the threshold.
    assert len(looked) == len(plain) and set(looked.score) - set(plain.score) == {np.float32(0.9)}


def test_second_look_confirms_messi():
    rgb = np.asarray(Image.open(shared_file("messi5.jpg")).convert("RGB"))
    det = CenterFaceDetector(threshold=0.999, candidate_threshold=0.05, second_look=True)
    found = det.detect(rgb)
    assert coverage(MESSI_FACE, found[found.score >= 0.999], 548, 342) >= 0.7


def test_second_look_does_not_confirm_non_faces():
    det = CenterFaceDetector()
    box = np.array([[50, 50, 70, 74]], np.float32)
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    blob = np.full((128, 128, 3), 128, np.uint8)
    blob[50:74, 52:70] = 30  # a dark head-sized blob: the commonest false candidate in crowds
    for image in (noise, blob):
        assert det._look_again(image, box)[0] < det.confirm_threshold


def test_second_look_leaves_faces_the_first_look_is_sure_of(astronaut, monkeypatch):
    """A look that confirms nothing changes nothing: boxes at or above the threshold stay."""
    plain = CenterFaceDetector(threshold=0.5, candidate_threshold=0.05).detect(astronaut)
    det = CenterFaceDetector(threshold=0.5, candidate_threshold=0.05, second_look=True)
    monkeypatch.setattr(det, "_look_again", lambda image, xyxy: np.zeros(len(xyxy), np.float32))
    found = det.detect(astronaut)
    assert (plain.score >= 0.5).any()
    assert np.array_equal(found.xyxy, plain.xyxy) and np.array_equal(found.score, plain.score)


def test_weak_candidates_beyond_the_look_budget_are_redacted_from_0_1(astronaut, monkeypatch):
    """Fail closed: a crowd with more weak candidates than are looked at keeps the rest from
    ``_UNLOOKED`` on, unseen."""
    from blur.detectors import centerface as module

    small, _ = _small_astronaut(astronaut)
    plain = CenterFaceDetector(threshold=0.9, candidate_threshold=0.05).detect(small)
    monkeypatch.setattr(module, "_LOOK_MAX", 0)
    found = CenterFaceDetector(threshold=0.9, candidate_threshold=0.05, second_look=True).detect(small)
    expected = np.where(plain.score >= module._UNLOOKED, np.maximum(plain.score, 0.9), plain.score)
    assert np.allclose(np.sort(found.score), np.sort(expected))


@pytest.mark.parametrize("size", [(3840, 2176), (7680, 4320), (2048, 1152), (992, 320)])
def test_tiles_cover_the_input_with_overlap_and_bounded_size(size):
    from blur.detectors import centerface

    width, height = size
    found = centerface.tiles(width, height)
    covered = np.zeros((height, width), dtype=np.int32)
    for x, y, w, h in found:
        assert w * h <= centerface._TILE_PIXELS and w % 32 == 0 and h % 32 == 0
        assert x + w <= width and y + h <= height
        covered[y : y + h, x : x + w] += 1
    assert covered.min() >= 1
    xs = sorted({x for x, _, _, _ in found})
    w = found[0][2]
    assert all(b - a <= w - centerface._TILE_OVERLAP for a, b in zip(xs, xs[1:]))


def test_large_inputs_are_run_as_tiles_with_the_same_faces(astronaut, monkeypatch):
    """A big input runs as tiles (bounded memory) and finds what one whole pass finds,
    including a face across a tile boundary."""
    import cv2

    from blur.detectors import centerface_maps

    canvas = np.full((720, 1280, 3), 90, np.uint8)
    canvas[200:456, 520:776] = cv2.resize(astronaut, (256, 256))  # across the middle
    small = cv2.resize(astronaut, (64, 64))
    for x in range(40, 1200, 160):
        canvas[560:624, x : x + 64] = small
    detector = CenterFaceDetector()
    whole = detector.detect(canvas)
    inputs = []
    real_forward = detector._forward
    monkeypatch.setattr(
        detector, "_forward", lambda blob: inputs.append(blob.shape[2] * blob.shape[3]) or real_forward(blob)
    )
    monkeypatch.setattr(centerface_maps, "_TILE_PIXELS", 400_000)
    tiled = detector.detect(canvas)
    assert max(inputs) <= 400_000 and len(inputs) > 2
    sure = whole[whole.score >= 0.5]
    assert len(sure) >= 8
    for box in sure.xyxy:
        face = [int(v) for v in box.round()]
        assert coverage(face, tiled[tiled.score >= 0.5], 1280, 720) >= 0.95


def test_rewritten_face_model_gives_the_original_graph_outputs(astronaut):
    """The model is rewritten for ONNX Runtime when loaded (free input size, weights as
    constants); it must compute what the file itself computes. OpenCV's DNN module runs the
    unmodified file as the reference, at a size and batch the file does not declare."""
    import cv2

    from blur.detectors import centerface, runtime

    images = [astronaut[:320, :224], np.ascontiguousarray(astronaut[:320, 288:][:, ::-1])]
    blob = cv2.dnn.blobFromImages(images, 1.0, (224, 320), (0, 0, 0), swapRB=False, crop=False)
    reference = cv2.dnn.readNetFromONNX(centerface.model_path())
    reference.setInput(blob)
    expected = reference.forward(centerface._OUTPUTS + ["540"])[:3]  # OpenCV 5 wants them all
    sess = runtime.session(centerface.model_bytes(), "cpu")
    got = sess.run(centerface._OUTPUTS, {sess.get_inputs()[0].name: blob})
    for want, have in zip(expected, got):
        assert have.shape == want.shape
        assert np.abs(have - want).max() < 1e-3
    assert expected[0].max() > 0.5  # the astronaut's face is in the first crop


def test_an_accelerator_finds_what_the_cpu_finds(astronaut):
    """Runs only where a GPU provider is installed (none on the machine blur is built on): the
    face detector on the accelerator must report the CPU's faces, boxes and scores."""
    import onnxruntime

    from blur.boxes import iou_matrix
    from blur.detectors import runtime
    from blur.errors import UsageError

    installed = onnxruntime.get_available_providers()
    accelerators = [d for d in ("cuda", "directml", "coreml") if runtime.DEVICES[d] in installed]
    if not accelerators:
        pytest.skip("no GPU execution provider installed (onnxruntime-gpu or -directml)")
    images = [
        astronaut,
        np.ascontiguousarray(astronaut[::2, ::2]),
        (np.random.default_rng(0).random((300, 500, 3)) * 255).astype(np.uint8),
    ]
    cpu = CenterFaceDetector(device="cpu")
    for device in accelerators:
        try:
            accelerated = CenterFaceDetector(device=device)
        except UsageError as exc:
            pytest.skip(f"{device} is installed but does not start here: {exc}")
        for image in images:
            want, got = cpu.detect(image), accelerated.detect(image)
            confident_want = want.xyxy[want.score >= 0.12]
            confident_got = got.xyxy[got.score >= 0.12]
            assert len(confident_got) == len(confident_want), device
            if len(confident_want):
                assert iou_matrix(confident_want, confident_got).max(axis=1).min() > 0.9, device
