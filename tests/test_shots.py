"""Cuts between shots: found where the picture changes in both layout and colours, not on a
pan, a flash or a black frame; on real footage exactly where the shots change."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import shared_file, write_video

from blur.shots import ShotCuts


def _scene(seed: int, hue: int, size=(360, 640)) -> np.ndarray:
    """A smooth random picture, in colours around ``hue`` (OpenCV hue, 0-180), wider than the
    frame so that a camera can pan over it."""
    rng = np.random.default_rng(seed)
    h, w = size
    value = cv2.resize(
        rng.uniform(40, 220, (h // 20, 3 * w // 20)).astype(np.float32),
        (3 * w, h),
        interpolation=cv2.INTER_CUBIC,
    )
    hsv = np.stack(
        [
            np.full_like(value, hue) + rng.uniform(-8, 8, value.shape).astype(np.float32),
            np.full_like(value, 160),
            np.clip(value, 0, 255),
        ],
        axis=-1,
    )
    return cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)


def _cuts(frames) -> list[int]:
    cuts = ShotCuts()
    for i, frame in enumerate(frames):
        cuts.see(i, frame)
    return cuts.starts


def test_a_pan_a_flash_and_a_black_frame_are_not_cuts():
    scene = _scene(0, 100)
    # A fast pan: a quarter of the frame's width per frame.
    pan = [np.ascontiguousarray(scene[:, 160 * k : 160 * k + 640]) for k in range(6)]
    flash = np.clip(pan[-1].astype(np.float32) * 1.6 + 30, 0, 255).astype(np.uint8)
    black = np.zeros_like(flash)
    assert _cuts(pan + [flash, pan[-1], black, pan[-1]]) == []


def test_another_picture_is_a_cut():
    first = np.ascontiguousarray(_scene(0, 100)[:, :640])
    second = np.ascontiguousarray(_scene(1, 10)[:, :640])
    assert _cuts([first, first, second, second, first]) == [2, 4]


def test_a_video_scan_gives_tracking_its_cuts(tmp_path, monkeypatch):
    """``pipeline.scan`` finds the cuts of the frames it scans and hands them to tracking."""
    from blur import pipeline, tracking
    from blur.settings import Settings

    scenes = [np.ascontiguousarray(_scene(k, hue)[:120, :160]) for k, hue in ((0, 100), (1, 10))]
    clip = write_video(tmp_path / "cut.mp4", frames=12, image=lambda i: scenes[i >= 6])
    given = {}
    build = tracking.build_tracks

    def recording(*args, **kwargs):
        given.update(kwargs)
        return build(*args, **kwargs)

    monkeypatch.setattr(tracking, "build_tracks", recording)
    pipeline.scan(clip, Settings(kinds=("face",)))
    assert given["cuts"] == [6]


@pytest.mark.parametrize(
    ("name", "frames", "starts"),
    [
        ("Megamind.avi", None, [98, 154, 200]),  # a film's three cuts
        ("vtest.avi", 300, []),  # a fixed CCTV camera, people walking by
    ],
)
def test_cuts_on_real_footage(name, frames, starts):
    from blur.media import video

    cuts = ShotCuts()
    for frame in video.frames(shared_file(name)):
        if frames is not None and frame.index >= frames:
            break
        cuts.see(frame.index, frame.image)
    assert cuts.starts == starts


def test_megamind_no_face_region_is_carried_across_a_cut():
    """Megamind.avi cuts from a man's close-up to a woman's at frame 154. From frame 159 on,
    the detector reports boxes 170-270 px tall at 0.10-0.22 on the hair behind her; continuing
    the man's track, they had his box bridged over her shot. Scanned over frames 150-162: the
    cut is found, after the man's padding no region of her shot belongs to a track found only
    in his, and every face detection is still redacted as detected."""
    from blur import detectors, pipeline, seen, tracking
    from blur.boxes import clip_xyxy, iou_matrix
    from blur.media import probe, video
    from blur.settings import Settings

    path = shared_file("Megamind.avi")
    first, last, cut = 150, 162, 154
    settings = Settings(kinds=("face",))
    info = probe(path)
    frames = [f for f in video.frames(path) if first <= f.index <= last]
    cuts = ShotCuts()
    found, times, _ = pipeline.scan_video_frames(
        path,
        info,
        detectors.build(pipeline.scan_settings(settings)),
        settings,
        frames=[(f, f.index == last) for f in frames],
        cuts=cuts,
    )
    assert cuts.starts == [cut]
    # Tracking numbers the excerpt's frames from 0: frame k is the file's frame first + k.
    per_frame = [seen.split(d, settings.face_candidate_threshold)[0] for d in found]
    options = dict(
        thresholds={"face": settings.face_threshold},
        min_weak_hits=settings.weak_min_frames,
        size=(info.width, info.height),
        frame_height=info.height,
    )
    pad = round(settings.pad_seconds * float(info.fps))

    def carried(tracks) -> int:
        """Frames past the padding after the cut where a track shows that was found, apart
        from large unsure boxes, only before it."""
        count = 0
        for t in tracks:
            hits = t.score > 0
            unsure = tracking.unsure_large_faces(t.xyxy, t.score, info.height)
            if not (t.frames[hits & ~unsure] + first >= cut).any():
                count += int((t.frames + first >= cut + pad).sum())
        return count

    args = (per_frame, times, float(info.fps), settings.max_gap_seconds, settings.pad_seconds)
    assert carried(tracking.build_tracks(*args, **options)) > 0, (
        "no track is carried across the cut without the rule: this test checks nothing"
    )
    tracks = tracking.build_tracks(*args, cuts=[s - first for s in cuts.starts], **options)
    assert carried(tracks) == 0
    redacted = tracking.boxes_at(tracks, len(per_frame))
    for k, dets in enumerate(per_frame):
        # (A large box at a low score is not a face on its own: see ``unsure_large_faces``.)
        sure = (dets.score >= settings.face_threshold) & ~tracking.unsure_large_faces(
            dets.xyxy, dets.score, info.height
        )
        confident = clip_xyxy(dets.xyxy[sure], info.width, info.height)
        if len(confident):
            assert (iou_matrix(confident, redacted[k].xyxy).max(axis=1) > 0.999).all(), (
                f"frame {first + k}: a face detection is not redacted as detected"
            )
