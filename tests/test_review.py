"""Scan, edit the regions file, render: the render honours exactly what the file says.

The round trips run the real commands (``blur scan`` / ``blur render``) on a PNG still, where
pixels can be compared exactly, and on a tiny video for time ranges. The regions file's own
rules (manual regions, keyframes, validation) are tested on plain dicts.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST, redaction_mask, video_facts, write_video
from PIL import Image
from typer.testing import CliRunner

from blur import cli, pipeline, regions
from blur.errors import ExitStatus, RegionsError
from blur.types import MediaInfo, Track


def blur(*args):
    return CliRunner().invoke(cli.app, [*map(str, args)])


@pytest.fixture
def three_faces(tmp_path, face_frame):
    """A 720x180 PNG with three copies of one face, 240 px apart (masks never overlap)."""
    path = tmp_path / "three.png"
    Image.fromarray(np.ascontiguousarray(np.concatenate([face_frame] * 3, axis=1))).save(path)
    return path


def test_round_trip_drop_keep_manual_on_a_still(tmp_path, three_faces):
    regions_path = tmp_path / "three.regions.json"
    result = blur("scan", three_faces, "--regions", regions_path, "--only", "faces")
    assert result.exit_code == 0, result.output
    data = json.loads(regions_path.read_text())
    faces = sorted(data["tracks"], key=lambda t: t["boxes"][0][1])
    assert len(faces) == 3, faces
    dropped, kept, redacted = faces
    assert [t["boxes"][0][1] // 240 for t in faces] == [0, 1, 2]  # one face in each third

    # A person corrects the plan: drop the first face (say a false positive), keep the second
    # (a consenting interviewee), and draw a region by hand over a badge in the background.
    data["tracks"].remove(dropped)
    kept["keep"] = True
    badge = [10, 140, 70, 170]
    data["tracks"].append({"id": 100, "kind": "manual", "box": badge, "note": "badge"})
    regions_path.write_text(json.dumps(data))

    out = tmp_path / "three.out.png"
    result = blur("render", three_faces, "--regions", regions_path, "-o", out)
    assert result.exit_code == 0, result.output
    before = np.asarray(Image.open(three_faces).convert("RGB"))
    after = np.asarray(Image.open(out).convert("RGB"))
    height, width = before.shape[:2]
    changed = (before != after).any(axis=2)

    # The dropped and the kept face are untouched, to the last bit.
    for track in (dropped, kept):
        x1, y1, x2, y2 = (int(v) for v in track["boxes"][0][1:5])
        assert not changed[y1:y2, x1:x2].any(), track["id"]
    # The remaining face is redacted over its whole (grown, elliptical) mask.
    face_mask = redaction_mask([redacted["boxes"][0][1:5]], width, height, FAST.mask_scale, FAST.shape)
    assert changed[face_mask].mean() > 0.9
    # The manual region is redacted exactly as drawn: the whole rectangle, not one pixel more.
    x1, y1, x2, y2 = badge
    assert changed[y1:y2, x1:x2].mean() > 0.9
    badge_mask = np.zeros_like(changed)
    badge_mask[y1:y2, x1:x2] = True
    assert not changed[~(face_mask | badge_mask)].any()
    assert changed[y1:y2, x1].any() and changed[y1:y2, x2 - 1].any()  # first and last column


def test_manual_region_redacted_in_exactly_its_time_range(tmp_path):
    src = write_video(tmp_path / "clip.mp4", frames=20, rate=10, size=(160, 120))
    regions_path = tmp_path / "clip.regions.json"
    result = blur("scan", src, "--regions", regions_path, "--only", "faces")
    assert result.exit_code == 0, result.output
    data = json.loads(regions_path.read_text())
    assert data["media"]["frame_count"] == 20 and data["tracks"] == []  # nothing to find
    assert data["media"]["frame_times"][:3] == [0.0, 0.1, 0.2]
    # Shown from 0.5 s up to (not including) 1.2 s: frames 5 to 11 at 10 fps.
    box = [60, 40, 130, 100]
    data["tracks"].append({"id": 1, "kind": "manual", "start": 0.5, "end": 1.2, "box": box})
    regions_path.write_text(json.dumps(data))

    out = tmp_path / "clip.out.mp4"
    result = blur(
        "render", src, "--regions", regions_path, "-o", out, "--style", "solid", "--preset", "ultrafast"
    )
    assert result.exit_code == 0, result.output
    before, after = video_facts(src), video_facts(out)
    assert after["marks"] == before["marks"] == [i % 16 for i in range(20)]
    x1, y1, x2, y2 = box
    covered = []
    for i, (a, b) in enumerate(zip(before["images"], after["images"])):
        inside = np.abs(b[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2].astype(int)).mean()
        diff = np.abs(a[y1:y2, x1:x2].astype(int) - b[y1:y2, x1:x2]).mean()
        if inside < 12:  # black: the solid fill
            covered.append(i)
        else:
            assert diff < 6, (i, diff)  # untouched, up to the codec's own loss
    assert covered == list(range(5, 12))


def _video_dict(frame_count=20, fps="10", times=None, width=160, height=120):
    media = {
        "file": "x.mp4",
        "kind": "video",
        "width": width,
        "height": height,
        "fps": fps,
        "frame_count": frame_count,
    }
    if times is not None:
        media["frame_times"] = times
    return {"version": 1, "media": media, "tracks": [], "flags": {}}


def _tracks(data, **kw):
    media = data["media"]
    return regions.from_dict(data, media["width"], media["height"], media["frame_count"], **kw)


def test_keyframes_are_interpolated_and_held_over_their_range():
    data = _video_dict()
    data["tracks"].append(
        {
            "id": 7,
            "kind": "manual",
            "first_frame": 2,
            "last_frame": 14,
            "keyframes": [{"frame": 4, "box": [0, 0, 10, 10]}, {"time": 1.2, "box": [40, 20, 50, 30]}],
        }
    )
    (t,) = _tracks(data)
    assert t.frames.tolist() == list(range(2, 15)) and set(t.source) == {"manual"}
    by_frame = dict(zip(t.frames.tolist(), t.xyxy.tolist()))
    assert by_frame[2] == by_frame[4] == [0, 0, 10, 10]  # held before the first key
    assert by_frame[8] == [20, 10, 30, 20]  # halfway from frame 4 to 12
    assert by_frame[12] == by_frame[14] == [40, 20, 50, 30]  # held after the last


def test_time_ranges_follow_the_real_frame_times():
    # Variable frame rate: frames at 0, 0.1, 0.2, then a pause, 1.0, 1.1.
    data = _video_dict(frame_count=5, times=[0.0, 0.1, 0.2, 1.0, 1.1])
    data["tracks"].append({"id": 1, "kind": "manual", "start": 0.5, "end": 0.9, "box": [0, 0, 10, 10]})
    (t,) = _tracks(data)
    assert t.frames.tolist() == [2]  # frame 2 is on screen from 0.2 s to 1.0 s
    data["tracks"][0].update(start=1.05, end=None)
    data["tracks"][0].pop("end")
    assert _tracks(data)[0].frames.tolist() == [3, 4]


def test_box_without_range_covers_the_whole_file():
    data = _video_dict(frame_count=6)
    data["tracks"].append({"id": 1, "kind": "face", "box": [5, 5, 20, 20], "keep": False})
    (t,) = _tracks(data)
    assert t.frames.tolist() == list(range(6)) and t.kind == "face"


@pytest.mark.parametrize(
    "track, message",
    [
        ({"id": 1, "kind": "face", "kepp": True, "boxes": []}, "unknown field(s) 'kepp'"),
        ({"id": 1, "kind": "tattoo", "boxes": []}, "unknown kind 'tattoo'"),
        ({"id": 1, "kind": "face", "keep": "false", "boxes": []}, '"keep" must be true or false'),
        (
            {"id": 1, "kind": "face", "boxes": [[0, 170, 10, 200, 50, 0.9, "detected"]]},
            "lies outside the 160x120 frame",
        ),
        ({"id": 1, "kind": "face", "boxes": [[0, 50, 10, 40, 50, 0.9, "detected"]]}, "empty box"),
        ({"id": 1, "kind": "face", "boxes": [[25, 5, 5, 40, 50]]}, "frame 25 is outside the file"),
        ({"id": 1, "kind": "face", "boxes": [[0, 5, 5, 40]]}, "malformed box row"),
        (
            {"id": 1, "kind": "manual", "start": 1.5, "end": 1.0, "box": [0, 0, 9, 9]},
            "bad times: end 1.0 s is not after start 1.5 s",
        ),
        (
            {"id": 1, "kind": "manual", "start": 5.0, "end": 6.0, "box": [0, 0, 9, 9]},
            "bad times: 5.0-6.0 s is outside the file (0 to 2.000 s)",
        ),
        ({"id": 1, "kind": "manual", "start": -1, "box": [0, 0, 9, 9]}, 'bad time "start"'),
        ({"id": 1, "kind": "manual", "start": 0, "first_frame": 3, "box": [0, 0, 9, 9]}, "not both"),
        ({"id": 1, "kind": "manual", "keyframes": [{"time": 9.0, "box": [0, 0, 9, 9]}]}, "bad time 9.0"),
        ({"id": 1, "kind": "manual", "box": [0, 0, 9]}, '"box" must be [x1, y1, x2, y2]'),
        ({"id": 1, "kind": "manual", "box": [200, 0, 209, 9]}, "outside the 160x120 frame"),
        ({"id": 1, "kind": "manual", "end": 1.0, "boxes": []}, 'needs a "box" or "keyframes"'),
    ],
)
def test_mistakes_are_refused_with_a_clear_error(track, message):
    data = _video_dict()
    data["tracks"].append(track)
    with pytest.raises(RegionsError) as info:
        _tracks(data)
    assert message in str(info.value)
    assert "track 1" in str(info.value) or "track id" in str(info.value)


def test_repeated_track_id_is_refused():
    data = _video_dict()
    data["tracks"] += [{"id": 3, "kind": "face", "boxes": []}] * 2
    with pytest.raises(RegionsError, match="track id 3 is missing, not a whole number, or repeated"):
        _tracks(data)


def test_regions_file_round_trips_and_is_editable(tmp_path):
    info = MediaInfo(
        path=tmp_path / "v.mp4", kind="video", width=160, height=120, fps=Fraction(30000, 1001), frame_count=3
    )
    track = Track(
        4, "face", [0, 1, 2], [[1, 2, 30, 40]] * 3, [0.9, 0, 0.1], ["detected", "interpolated", "weak"]
    )
    times = [Fraction(1001, 30000) * i + Fraction(1, 2) for i in range(3)]
    data = regions.to_dict(info, 3, [track], {"bridged_frames": [1]}, times)
    assert data["media"]["frame_times"] == [0.0, 0.033367, 0.066733]  # from the first frame
    path = tmp_path / "v.regions.json"
    regions.save(path, data)
    text = path.read_text()
    assert '[0, 1.0, 2.0, 30.0, 40.0, 0.9, "detected"]' in text  # one box row per line
    loaded = regions.load(path)
    assert loaded == json.loads(json.dumps(data))
    (back,) = regions.from_dict(loaded, 160, 120, 3)
    assert back.frames.tolist() == [0, 1, 2] and back.source.tolist() == track.source.tolist()
    np.testing.assert_allclose(back.xyxy, track.xyxy)


def test_render_refuses_a_regions_file_made_for_another_file(tmp_path, three_faces, face_frame):
    regions_path = tmp_path / "three.regions.json"
    assert blur("scan", three_faces, "--regions", regions_path, "--only", "faces", "-q").exit_code == 0
    other = tmp_path / "other.png"
    Image.fromarray(face_frame).save(other)
    result = blur("render", other, "--regions", regions_path, "-o", tmp_path / "o.png")
    assert result.exit_code == ExitStatus.USAGE  # the wrong regions file was given
    assert "regions file is for a 720x180 picture, this one is 240x180" in result.stderr
    assert not (tmp_path / "o.png").exists()


def test_render_reports_a_broken_regions_file_and_writes_nothing(tmp_path, three_faces):
    regions_path = tmp_path / "bad.json"
    regions_path.write_text(
        '{"version": 1, "media": {"kind": "image", "width": 720, '
        '"height": 180, "frame_count": 1}, "tracks": [{"id": 1, '
        '"kind": "face", "boxes": [[0, 800, 10, 900, 50]]}]}'
    )
    out = tmp_path / "o.png"
    result = blur("render", three_faces, "--regions", regions_path, "-o", out)
    assert result.exit_code == ExitStatus.USAGE
    assert (
        "bad.json: track 1, frame 0: box [800.0, 10.0, 900.0, 50.0] lies outside the "
        "720x180 frame" in " ".join(result.stderr.split())
    )
    assert not out.exists()
    regions_path.write_text("{not json")
    result = blur("render", three_faces, "--regions", regions_path, "-o", out)
    assert result.exit_code == ExitStatus.USAGE
    assert "bad.json: not a regions file: invalid JSON at line 1" in result.stderr


def test_scan_never_overwrites_an_edited_regions_file(tmp_path, three_faces):
    regions_path = tmp_path / "three.regions.json"
    regions_path.write_text("my edits")
    result = blur("scan", three_faces, "--regions", regions_path)
    assert result.exit_code == ExitStatus.USAGE and "already exists" in result.stderr
    assert regions_path.read_text() == "my edits"


def test_unanalysed_frames_in_the_file_are_still_redacted_whole(tmp_path, face_frame):
    src = tmp_path / "f.png"
    Image.fromarray(face_frame).save(src)
    data = {
        "version": 1,
        "media": {"kind": "image", "width": 240, "height": 180, "frame_count": 1},
        "tracks": [],
        "flags": {"unanalysed_frames": [0]},
    }
    plan = pipeline.load_plan(src, data)
    pipeline.render(src, tmp_path / "o.png", plan, FAST)
    after = np.asarray(Image.open(tmp_path / "o.png"))
    assert (after != face_frame).any(axis=2).mean() > 0.9


def test_render_writes_a_manifest_that_names_no_file(tmp_path, three_faces):
    import hashlib
    import importlib.resources

    regions_path = tmp_path / "three.regions.json"
    assert blur("scan", three_faces, "--regions", regions_path, "-q").exit_code == 0
    out, manifest = tmp_path / "three.out.png", tmp_path / "three.manifest.json"
    result = blur(
        "render",
        three_faces,
        "--regions",
        regions_path,
        "-o",
        out,
        "--manifest",
        manifest,
        "--style",
        "pixelate",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(manifest.read_text())

    def sha(path):
        return hashlib.sha256(path.read_bytes()).hexdigest()

    import blur as package

    assert data["blur_version"] == package.__version__
    assert data["input"]["sha256"] == sha(three_faces)
    assert data["output"]["sha256"] == sha(out)
    assert data["regions"]["sha256"] == sha(regions_path)
    face_model = importlib.resources.files("blur") / "models" / "centerface.onnx"
    (face,) = [m for m in data["models"] if m["kind"] == "face"]
    assert face["files"] == [{"name": "centerface.onnx", "sha256": sha(face_model)}]
    assert {m["kind"] for m in data["models"]} == {"face", "plate"}
    assert all(len(f["sha256"]) == 64 for m in data["models"] for f in m["files"])
    assert data["settings"]["style"] == "pixelate" and data["settings"]["mask_scale"] == 1.3
    assert data["libraries"]["onnx"] and data["onnxruntime"]["version"]  # what ran the models
    assert "CPUExecutionProvider" in data["onnxruntime"]["providers"]
    assert data["redaction"]["tracks_redacted"] == {"face": 3}
    assert "three" not in manifest.read_text()  # names often say who or where
    result = blur(
        "render", three_faces, "--regions", regions_path, "-o", tmp_path / "o2.png", "--manifest", manifest
    )
    assert result.exit_code == ExitStatus.USAGE and "already exists" in result.stderr
    assert not (tmp_path / "o2.png").exists()


# ---- scan -> render, untouched: blur reads back every regions file it writes ------------------


def _walking_face(face_frame):
    """Frame i of a face that walks right, out of a 320x180 picture (25 px a frame)."""
    face = face_frame[10:110, 60:160]

    def image(i):
        picture = np.full((180, 320, 3), 90, np.uint8)
        x = 60 + 25 * i
        x1, x2 = max(x, 0), min(x + 100, 320)
        if x1 < x2:
            picture[40:140, x1:x2] = face[:, x1 - x : x2 - x]
        return picture

    return image


GENERATED_CLIPS = {
    "plain": lambda d, face: write_video(d / "plain.mp4"),
    "vfr": lambda d, face: write_video(
        d / "vfr.mp4", frames=8, pts=[0, 1, 2, 5, 6, 10, 11, 20], time_base=Fraction(1, 30)
    ),
    "rotated": lambda d, face: write_video(d / "rotated.mp4", rotation=-90),
    "odd size": lambda d, face: write_video(d / "odd.mp4", size=(161, 121)),
    "audio": lambda d, face: write_video(d / "audio.mp4", audio="aac"),
    "mkv": lambda d, face: write_video(d / "clip.mkv"),
    # Padding carries the face's motion on past its last hit: off the picture.
    "face walks out": lambda d, face: write_video(
        d / "walk.mp4", frames=12, rate=10, size=(320, 180), image=_walking_face(face)
    ),
}


def _scan_then_render(src, tmp_path):
    """``blur scan`` then ``blur render`` with the regions file as written; its boxes."""
    regions_path = tmp_path / f"{src.stem}.regions.json"
    result = blur("scan", src, "--regions", regions_path, "-q")
    assert result.exit_code == 0, result.output
    data = json.loads(regions_path.read_text())
    width, height = data["media"]["width"], data["media"]["height"]
    boxes = np.array([row[1:5] for t in data["tracks"] for row in t["boxes"]], np.float64).reshape(-1, 4)
    assert ((boxes[:, :2] >= 0) & (boxes[:, 2:] <= [width, height])).all(), boxes
    assert ((boxes[:, 2:] > boxes[:, :2]).all(axis=1)).all(), boxes
    out = tmp_path / f"{src.stem}.out{src.suffix}"
    result = blur("render", src, "--regions", regions_path, "-o", out, "--preset", "ultrafast")
    assert result.exit_code == 0, result.output
    assert "clipped" not in result.output  # nothing left for render to clip
    assert len(video_facts(out)["times"]) == data["media"]["frame_count"]
    return data, boxes


@pytest.mark.parametrize("clip", GENERATED_CLIPS)
def test_scan_then_render_untouched_on_every_generated_clip(tmp_path, face_frame, clip):
    src = GENERATED_CLIPS[clip](tmp_path, face_frame)
    data, boxes = _scan_then_render(src, tmp_path)
    if clip == "face walks out":
        faces = [t for t in data["tracks"] if t["kind"] == "face"]
        assert faces and boxes[:, 2].max() == 320  # the face is covered up to the edge


@pytest.mark.slow
def test_scan_then_render_untouched_on_the_sample(tmp_path):
    src = tmp_path / "clip.mp4"
    src.write_bytes((Path(__file__).resolve().parents[1] / "samples" / "street.mp4").read_bytes())
    data, boxes = _scan_then_render(src, tmp_path)
    assert data["media"]["frame_count"] == 50 and len(boxes) > 100


def test_a_sliver_at_the_frame_edge_survives_the_regions_file(tmp_path):
    # A padded box carried almost wholly out of a 1280 px frame by a panning camera: 0.004 px
    # wide inside it. Rounded to the nearest 0.01 px it became [1280.0, y, 1280.0, y] and the
    # render refused the scan's own file ("empty box"); rounded outwards it is read back.
    info = MediaInfo(
        path=tmp_path / "v.mp4", kind="video", width=1280, height=720, fps=Fraction(25), frame_count=2
    )
    track = Track(
        211,
        "face",
        [0, 1],
        [[1200.3, 496.911, 1240.7, 529.487], [1279.996, 496.911, 1280.0, 529.487]],
        [0.9, 0.0],
        ["detected", "padded"],
    )
    path = tmp_path / "v.regions.json"
    regions.save(path, regions.to_dict(info, 2, [track]))
    (back,) = regions.from_dict(regions.load(path), 1280, 720, 2)
    assert (back.xyxy[:, :2] <= track.xyxy[:, :2]).all()  # never smaller than what was planned
    assert (back.xyxy[:, 2:] >= track.xyxy[:, 2:]).all() and (back.xyxy[:, 2] <= 1280).all()


def test_tracks_are_clipped_to_the_frame_where_they_are_made():
    from blur.tracking import build_tracks
    from blur.types import Detections

    # A 40 px face moving 26 px a frame to the right, last seen overhanging a 160 px frame
    # (x 124-164): padding carries it on, partly (frame 5) then wholly (frames 6, 7) outside.
    per_frame = [Detections.of([[20 + 26 * f, 50, 60 + 26 * f, 90]], [0.9], "face") for f in range(5)] + [
        Detections.empty() for _ in range(3)
    ]
    (track,) = build_tracks(per_frame, [None] * 8, 10.0, 0.5, 0.3, size=(160, 120))
    assert track.frames.tolist() == [0, 1, 2, 3, 4, 5]  # frames 6, 7: wholly outside, left out
    np.testing.assert_allclose(track.xyxy[4:], [[124, 50, 160, 90], [150, 50, 160, 90]], atol=1e-3)
    assert track.source[4] == "detected"
    assert track.source[-1] == "padded"


def test_render_clips_a_box_that_overhangs_and_says_so(tmp_path, three_faces):
    regions_path = tmp_path / "over.json"
    regions_path.write_text(
        json.dumps(
            {
                "version": 1,
                "media": {"kind": "image", "width": 720, "height": 180, "frame_count": 1},
                "tracks": [{"id": 7, "kind": "manual", "box": [700, -10, 760, 40]}],
            }
        )
    )
    out = tmp_path / "o.png"
    result = blur("render", three_faces, "--regions", regions_path, "-o", out, "--style", "solid")
    assert result.exit_code == 0, result.output
    assert "1 box(es) overhanging the 720x180 frame clipped to it (track(s) 7)" in " ".join(
        result.output.split()
    )
    changed = (
        np.asarray(Image.open(out).convert("RGB")) != np.asarray(Image.open(three_faces).convert("RGB"))
    ).any(axis=2)
    assert changed[0:40, 700:720].all() and not changed[40:, :].any() and not changed[:, :700].any()
