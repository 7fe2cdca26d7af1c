"""Change-driven video analysis (``blur.schedule``) must never hide a face: a patched network
output equals a full pass's, a face that appears in a still scene on a frame that is not a
keyframe is covered from its first frame, a cut or a pan forces a full pass, a face moving across
tiles stays covered, and a failed frame starts the analysis again from a full pass."""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np
import pytest
from conftest import FAST, SAMPLES, redacted_mask, write_video

from blur import detectors, incremental, pipeline, schedule
from blur.detectors import Detector
from blur.errors import DetectionError
from blur.schedule import ChangeDrivenNetwork, Schedule
from blur.settings import Settings
from blur.types import Detections, Frame


def local_net(blob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A stand-in for a fully convolutional network: a 9x9 box filter at stride 4 (a receptive
    field well inside one tile of context) and a stride-1 map, both zero-padded at the border
    as a network's convolutions are."""
    grey = blob[0].max(axis=0).astype(np.float32)
    smooth = cv2.boxFilter(grey, -1, (9, 9), borderType=cv2.BORDER_CONSTANT)
    return smooth[None, None, 2::4, 2::4].copy(), grey[None, None] * 0.5


def blob_of(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)


def background(width=256, height=192, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 3)
    return np.clip(120 + 400 * noise, 0, 255).astype(np.uint8)[..., None].repeat(3, axis=2)


def test_patched_outputs_equal_a_full_pass_and_skip_unchanged_tiles():
    rng = np.random.default_rng(1)
    image = background(512, 384)
    net = ChangeDrivenNetwork(local_net)
    net(blob_of(image))
    full_pixels = image.shape[0] * image.shape[1]
    scene = image.copy()
    for _ in range(12):
        x, y = rng.integers(0, 220), rng.integers(0, 160)
        scene[y : y + 20, x : x + 30] = rng.integers(0, 255, 3)  # something moves
        image = np.clip(scene.astype(np.int16) + rng.integers(-3, 4, scene.shape), 0, 255).astype(
            np.uint8
        )  # and codec noise everywhere
        before = net.pixels
        patched = net(blob_of(image))
        full = local_net(blob_of(image))
        for p, f in zip(patched, full):
            # Unchanged tiles keep an earlier output, which differs from today's only by the
            # noise (at most 6 levels between two noisy frames); elsewhere it is today's.
            assert np.abs(p - f).max() <= 6.0
        assert net.pixels - before < full_pixels  # only windows around the change ran
    assert net.full_passes == 1


def test_noise_below_the_threshold_runs_nothing_and_a_few_changed_pixels_rerun_their_tiles():
    """Codec noise (every pixel moved by NOISE_LEVELS, or fewer than NOISE_PIXELS pixels of a
    tile moved by more) runs nothing; NOISE_PIXELS moved pixels rerun their tile, and so does a
    change of 4 x NOISE_PIXELS pixels split evenly across the corner where four tiles meet."""
    calls = []

    def counted(blob):
        calls.append(blob.shape)
        return local_net(blob)

    image = background(512, 384)
    net = ChangeDrivenNetwork(counted)
    net(blob_of(image))
    noisy = np.clip(image.astype(np.int16) + schedule.NOISE_LEVELS, 0, 255).astype(np.uint8)
    net(blob_of(noisy))
    assert len(calls) == 1  # codec noise: nothing recomputed
    k = incremental.NOISE_PIXELS
    specks = noisy.copy()
    specks[100, 70 : 70 + k - 1] = (specks[100, 70 : 70 + k - 1].astype(np.int16) + 128) % 256
    net(blob_of(specks))
    assert len(calls) == 1  # fewer than NOISE_PIXELS pixels in a tile: noise
    moved = noisy.copy()
    moved[100, 66 : 66 + k] = (moved[100, 66 : 66 + k].astype(np.int16) + 128) % 256
    net(blob_of(moved))
    assert len(calls) == 2 and calls[1][2] < image.shape[0] and calls[1][3] < image.shape[1]
    side = int(np.ceil(np.sqrt(k)))
    corner = noisy.copy()  # tiles meet at (128, 96): side x side changed pixels in each
    patch = np.s_[96 - side : 96 + side, 128 - side : 128 + side]
    corner[patch] = (corner[patch].astype(np.int16) + 128) % 256
    assert net.changed_tiles(blob_of(corner))[2:4, 3:5].all()


class IncrementalFaces(Detector):
    """A face detector whose network is ``local_net``; a "face" is a bright spot."""

    name = "fake-faces"
    kind = "face"
    small_face_pass = True

    def __init__(self):
        self.fail_next = False

    def detect(self, image, *, small_faces: bool = True, incremental=None) -> Detections:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("the model crashed")
        forward = incremental(("face", None, 1.0), local_net) if incremental else local_net
        heat = forward(blob_of(image))[1][0, 0]
        ys, xs = np.nonzero(heat > 120)
        if not len(xs):
            return Detections.empty()
        box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
        return Detections.of(box, np.array([0.9], np.float32), "face")


def frames_with_face(appear_at: int, n: int, path=lambda t: (100, 80), cut_at=None):
    """Dark still scene (another one after ``cut_at``); a bright 24x24 'face' from ``appear_at``;
    a few grey levels of noise on every frame, as a decoder gives."""
    out = []
    for t in range(n):
        image = background(seed=0 if cut_at is None or t < cut_at else 5) // 3
        if t >= appear_at:
            x, y = path(t)
            image[y : y + 24, x : x + 24] = 250
        noise = np.random.default_rng(100 + t).integers(0, 3, image.shape, dtype=np.uint8)
        out.append(np.maximum(image, 3) - noise)
    return out


def run_schedule(frames, det, keyframe_seconds=2.0):
    sched = Schedule([det], [1], 1, 25.0, "changes", keyframe_seconds)
    found, full = [], []
    for t, image in enumerate(frames):
        before = sum(n.full_passes for n in sched.networks.values())
        try:
            found.append(sched.detect(image, t, t == len(frames) - 1))
        except DetectionError:
            found.append(None)
        full.append(sum(n.full_passes for n in sched.networks.values()) > before)
    return sched, found, full


def test_a_face_appearing_between_keyframes_is_found_on_its_first_frame():
    det = IncrementalFaces()
    frames = frames_with_face(appear_at=13, n=20)
    _, found, full = run_schedule(frames, det)
    assert full[0] and not any(full[1:])  # frame 13 is not a keyframe
    assert all(len(f) == 0 for f in found[:13])
    for f in found[13:]:
        assert len(f) == 1 and np.allclose(f.xyxy[0], [100, 80, 124, 104], atol=1)


def test_a_cut_forces_a_full_pass_and_keyframes_come_anyway():
    det = IncrementalFaces()
    _, _, full = run_schedule(frames_with_face(30, 30, cut_at=10), det, keyframe_seconds=0.4)
    assert full[0] and full[10]  # the first frame and the cut
    keyframes = [t for t in range(11, 30) if full[t]]
    assert keyframes and max(np.diff([10] + keyframes)) <= 10  # at least every 0.4 s


def test_a_face_moving_across_tiles_is_found_on_every_frame():
    det = IncrementalFaces()
    frames = frames_with_face(0, 24, path=lambda t: (10 + 9 * t, 40 + 5 * t))
    _, found, full = run_schedule(frames, det)
    # Mostly windows; a full pass where they would cover the whole (small) frame anyway.
    assert sum(full[1:]) <= 4
    for t, f in enumerate(found):
        x, y = 10 + 9 * t, 40 + 5 * t
        assert len(f) == 1 and np.allclose(f.xyxy[0], [x, y, x + 24, y + 24], atol=1), t


def test_a_failed_frame_makes_the_next_one_a_full_pass():
    det = IncrementalFaces()
    frames = frames_with_face(5, 12)
    sched = Schedule([det], [1], 1, 25.0, "changes", 2.0)
    for t in range(5):
        sched.detect(frames[t], t, False)
    det.fail_next = True
    with pytest.raises(DetectionError):
        sched.detect(frames[5], 5, False)
    net = next(iter(sched.networks.values()))
    before = net.full_passes
    assert len(sched.detect(frames[6], 6, False)) == 1  # the face that came with frame 5
    assert net.full_passes == before + 1


def test_a_scheduled_detector_is_checked_and_clipped_as_everywhere():
    """The schedule runs detectors through ``Detector.run``: garbage output fails the frame,
    and a box grown off the picture is clipped to it."""

    class Garbage(IncrementalFaces):
        def __init__(self, box):
            super().__init__()
            self.box = box

        def detect(self, image, *, small_faces=True, incremental=None):
            super().detect(image, small_faces=small_faces, incremental=incremental)
            return Detections.of(np.array([self.box], np.float32), np.array([0.9], np.float32), "face")

    frames = frames_with_face(0, 2)
    height, width = frames[0].shape[:2]
    with pytest.raises(DetectionError, match="invalid boxes"):
        Schedule([Garbage([50, 50, 40, 60])], [1], 1, 25.0).detect(frames[0], 0, False)
    found = Schedule([Garbage([-5, 10, width + 30, 40])], [1], 1, 25.0).detect(frames[0], 0, False)
    assert found.xyxy.tolist() == [[0, 10, width, 40]]


def test_every_frame_mode_gives_detectors_the_whole_frame():
    seen = []

    class Spy(IncrementalFaces):
        def detect(self, image, *, small_faces=True, incremental=None):
            seen.append(incremental)
            return super().detect(image, small_faces=small_faces, incremental=incremental)

    sched = Schedule([Spy()], [1], 1, 25.0, "every-frame", 2.0)
    for t, image in enumerate(frames_with_face(2, 4)):
        sched.detect(image, t, t == 3)
    assert seen == [None] * 4


def test_settings_refuse_an_unknown_schedule():
    with pytest.raises(Exception, match="analyse"):
        Settings(analyse="sometimes")
    with pytest.raises(Exception, match="keyframe_seconds"):
        Settings(keyframe_seconds=0)


@pytest.mark.parametrize("model", ["centerface", "retinaface"])
@pytest.mark.parametrize("motion", ["appears", "moves"])
def test_real_face_in_a_still_scene_is_covered_on_every_frame(tmp_path, astronaut, motion, model):
    """The real detector on a generated clip: a face pasted into a still textured scene on
    frame 9 (no keyframe) and then still, or walking across tiles; every frame it is in is
    covered, and the incremental analysis did skip work, with either small-face model."""
    face = cv2.resize(astronaut[30:250, 130:330], (44, 48), interpolation=cv2.INTER_AREA)
    scene = background(320, 240, seed=3)

    def where(t):
        return (150, 90) if motion == "appears" else (40 + 11 * t, 60 + 4 * t)

    def image(t):
        picture = scene.copy()
        if t >= 9:  # not a keyframe
            x, y = where(t)
            picture[y : y + 48, x : x + 44] = face
        return picture

    clip = write_video(tmp_path / "still.mp4", frames=20, size=(320, 240), rate=25, image=image)
    made = []

    class Recording(Schedule):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    settings = FAST.merged(kinds=("face",), face_small_model=model)
    original = schedule.Schedule
    schedule.Schedule = Recording
    try:
        plan = pipeline.scan(clip, settings)
    finally:
        schedule.Schedule = original
    detector = detectors.build(settings)[0]
    for t in range(9, 20):
        # The face as the detector sees it on the whole (unencoded) picture.
        seen = detector.detect(image(t))
        face_box = seen.xyxy[np.argmax(seen.score)]
        x1, y1, x2, y2 = (int(round(v)) for v in face_box)
        mask = redacted_mask(plan, t, 320, 240, settings)
        assert mask[y1:y2, x1:x2].mean() >= 0.95, t
    nets = made[0].networks.values()
    full = sum(n.full_passes for n in nets)
    assert nets and full < 20 * len(nets)  # most frames were not analysed in full


class DimmingFaces(IncrementalFaces):
    """Finds a face on the whole frame only while it is bright, and in a crop (``look_around``)
    while it is at least dim, as CenterFace scores a small face higher magnified."""

    threshold = 0.5

    def __init__(self):
        super().__init__()
        self.looked = 0

    def look_around(self, image, xyxy):
        self.looked += len(xyxy)
        boxes = []
        for x1, y1, x2, y2 in np.asarray(xyxy).astype(int):
            ys, xs = np.nonzero(image[max(y1, 0) : y2, max(x1, 0) : x2].max(axis=2) > 150)
            if len(xs):
                boxes.append([x1 + xs.min(), y1 + ys.min(), x1 + xs.max() + 1, y1 + ys.max() + 1])
        return Detections.of(
            np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9, np.float32), "face"
        )


def test_following_adds_a_face_the_whole_frame_pass_loses_and_never_removes_one():
    frames = []
    for t in range(10):
        image = frames_with_face(1, 1)[0]  # the still scene, no face yet
        image[80:104, 100 + 2 * t : 124 + 2 * t] = 250 if t < 4 else 200  # dims from frame 4
        frames.append(image)
    for follow, expect in ((False, 4), (True, 10)):
        det = DimmingFaces()
        sched = Schedule([det], [1], 1, 25.0, "changes", 2.0, follow=follow)
        found = [sched.detect(image, t, t == 9) for t, image in enumerate(frames)]
        assert sum(len(f) == 1 for f in found) == expect
        assert all(len(f) <= 1 for f in found)
        assert (det.looked > 0) == follow


def test_a_small_real_face_appearing_across_tile_corners_is_found_on_its_first_frame(astronaut):
    """CenterFace's small-face pass, change-driven: a ~11 px face (with hair, 20x22 px) that
    appears between keyframes where four change tiles meet, so that each tile holds only a
    quarter of what changed, is found on its first frame, where a full pass finds it; frames
    with only noise below the threshold are not analysed again."""
    det = detectors.CenterFaceDetector()
    face = cv2.resize(astronaut[30:250, 130:330], (20, 22), interpolation=cv2.INTER_AREA)
    scene = background(320, 240, seed=3)
    x, y = 150, 117  # the small-face pass works at 2x: tiles meet at (160, 128) here
    rng = np.random.default_rng(7)
    sched = Schedule([det], [1], 1, 25.0, "changes", 2.0)
    for t in range(10):
        picture = scene.copy()
        if t >= 6:
            picture[y : y + 22, x : x + 20] = face
        noisy = np.clip(picture.astype(np.int16) + rng.integers(-3, 4, picture.shape), 0, 255)
        found = sched.detect(noisy.astype(np.uint8), t, False)
        faces = found[found.score >= det.threshold]
        if t < 6:
            assert len(faces) == 0, t
        else:
            assert len(faces) == 1 and faces.xyxy[0, 0] < x + 10 < faces.xyxy[0, 2], t
    small = [n for key, n in sched.networks.items() if key[1][0] == "face"]
    assert small and all(n.full_passes == 1 for n in small)  # frame 6 was no keyframe
    full = det.detect(picture)
    assert (full.score >= det.threshold).sum() == 1


def test_windows_that_would_cost_more_than_the_whole_input_give_way_to_a_full_pass():
    calls = []

    def counted(blob):
        calls.append(blob.shape[2] * blob.shape[3])
        return local_net(blob)

    image = background(512, 384)
    net = ChangeDrivenNetwork(counted)
    net(blob_of(image))
    scattered = image.copy()
    for y in range(16, 384, 96):  # a changed speck in every third tile: under half the tiles
        for x in range(16, 512, 96):
            scattered[y : y + 3, x : x + 3] = (scattered[y : y + 3, x : x + 3].astype(np.int16) + 128) % 256
    assert net.changed_tiles(blob_of(scattered)).mean() < schedule.FULL_SHARE
    net(blob_of(scattered))
    assert calls[1:] == [512 * 384] and net.full_passes == 2  # one full pass, no windows


def test_an_image_and_its_blob_give_the_same_patched_outputs():
    """The network may be called with (H, W, C) uint8 images (cheaper) or (1, C, H, W) blobs:
    same tiles analysed, same outputs."""
    rng = np.random.default_rng(3)
    by_blob = ChangeDrivenNetwork(local_net)
    by_image = ChangeDrivenNetwork(lambda pixels: local_net(blob_of(pixels)))
    scene = background(512, 384)
    for t in range(6):
        if t:
            x, y = rng.integers(0, 400), rng.integers(0, 300)
            scene[y : y + 30, x : x + 40] = rng.integers(0, 255, 3)
        a, b = by_blob(blob_of(scene)), by_image(scene.copy())
        assert all(np.array_equal(p, q) for p, q in zip(a, b))
        assert by_blob.pixels == by_image.pixels
    by_blob.invalidate(np.array([100, 100, 120, 130]), 512, 384)
    by_image.invalidate(np.array([100, 100, 120, 130]), 512, 384)
    assert np.array_equal(by_blob.changed_tiles(blob_of(scene)), by_image.changed_tiles(scene))
    assert by_image.changed_tiles(scene).sum() == by_image.changed_tiles(scene)[2:6, 1:6].sum() > 0


def _frames_of(images):
    return [(Frame(image, t, t / 25), t == len(images) - 1) for t, image in enumerate(images)]


def test_detectors_side_by_side_find_what_they_find_one_after_the_other():
    """The real detectors (faces and plates) on the first frames of the sample clip: run side
    by side (``detect_all``), each on its own thread, they return exactly what the one-after-
    the-other loop returns, frame by frame, in the same order."""
    clip = pytest.importorskip("av").open(str(SAMPLES / "street.mp4"))
    with clip:
        images = [f.to_ndarray(format="rgb24") for _, f in zip(range(7), clip.decode(video=0))]
    settings = pipeline.scan_settings(Settings())
    found_by = detectors.build(settings)
    assert {d.kind for d in found_by} >= {"face", "plate"}
    strides = [2 if d.kind == "plate" else 1 for d in found_by]
    one_by_one = Schedule(found_by, strides, 1, 25.0)
    expected = [one_by_one.detect(image, t, t == len(images) - 1) for t, image in enumerate(images)]
    assert sum(len(found) for found in expected) >= 10
    side_by_side = list(Schedule(found_by, strides, 1, 25.0).detect_all(_frames_of(images), ahead=3))
    assert [frame.index for frame, _, _ in side_by_side] == list(range(len(images)))
    for want, (_, _, got) in zip(expected, side_by_side):
        assert np.array_equal(got.xyxy, want.xyxy) and np.array_equal(got.score, want.score)
        assert list(got.kind) == list(want.kind)


def test_a_detector_failing_side_by_side_fails_its_frame_only_and_starts_again_in_full():
    """One group failing on a frame yields that frame's error (the frame is then redacted
    whole by the caller); the other frames keep both detectors' boxes, the failing detector's
    next frame is a full pass, and the other detector is not held back more than ``ahead``."""
    threads: dict[str, set] = {"face": set(), "plate": set()}

    class Faces(IncrementalFaces):
        def detect(self, image, *, small_faces=True, incremental=None):
            threads["face"].add(threading.current_thread().name)
            return super().detect(image, small_faces=small_faces, incremental=incremental)

    class Plates(Detector):
        name, kind, small_face_pass = "fake-plates", "plate", False
        done = 0

        def detect(self, image, *, small_faces=True):
            threads["plate"].add(threading.current_thread().name)
            Plates.done += 1
            return Detections.of(np.array([[1, 1, 30, 10]], np.float32), np.array([0.8], np.float32), "plate")

    faces = Faces()
    images = frames_with_face(2, 10)
    sched = Schedule([faces, Plates()], [1, 1], 1, 25.0)
    out = []
    for frame, _, found in sched.detect_all(_frames_of(images), ahead=2):
        if frame.index == 4:
            faces.fail_next = True  # frame 4 is queued already: the failure hits a later one
        out.append((frame.index, found))
        assert Plates.done <= frame.index + 1 + 2  # never more than `ahead` frames beyond
    failed = [t for t, found in out if isinstance(found, DetectionError)]
    assert len(failed) == 1 and failed[0] > 4
    for t, found in out:
        if t not in failed:
            assert "plate" in found.kind and ("face" in found.kind) == (t >= 2)
    net = next(iter(sched.networks.values()))
    assert net.full_passes >= 2  # the first frame, and the one after the failure
    assert (
        threads["face"].isdisjoint(threads["plate"]) and threading.main_thread().name not in threads["face"]
    )


def test_networks_side_by_side_share_the_cores_and_a_photo_finds_the_same():
    """Two groups (faces, and the text model behind plates) get half the cores each; faces
    alone get them all. A photo's detectors run side by side too, with the same result as one
    after the other."""
    from blur.detectors import runtime

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    found_by = detectors.build(Settings())
    assert len(schedule.groups(found_by)) == 2 and runtime.share() == max(1, cores // 2)
    image = cv2.cvtColor(cv2.imread(str(SAMPLES / "messi5.jpg")), cv2.COLOR_BGR2RGB)
    together = pipeline.detect(found_by, image)
    apart = Detections.concat([det.run(image) for det in found_by])
    assert len(together) >= 5
    assert np.array_equal(together.xyxy, apart.xyxy) and list(together.kind) == list(apart.kind)
    detectors.build(Settings(kinds=("face",)))
    assert runtime.share() == cores
