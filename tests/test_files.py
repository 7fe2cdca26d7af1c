"""Where outputs go and how they appear: NAME.blurred.EXT, mirrored folders, never over an
input, only when complete."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import FAST, write_video
from PIL import Image

from blur import pipeline
from blur.errors import MediaError, UsageError
from blur.files import atomic_output, check_output, default_output, plan_outputs, walk


def _photo(path, size=(48, 32)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 120, np.uint8)).save(path)
    return path


@pytest.mark.parametrize(
    "name, expected",
    [
        ("photo.jpg", "photo.blurred.jpg"),
        ("photo.JPEG", "photo.blurred.JPEG"),
        ("scan.tiff", "scan.blurred.tiff"),
        ("clip.mp4", "clip.blurred.mp4"),
        ("clip.MOV", "clip.blurred.mp4"),
        ("clip.avi", "clip.blurred.mp4"),
        ("clip.webm", "clip.blurred.mp4"),
        ("clip.mkv", "clip.blurred.mkv"),
        ("my.holiday.png", "my.holiday.blurred.png"),
    ],
)
def test_default_output_name(tmp_path, name, expected):
    assert default_output(tmp_path / name) == tmp_path / expected


def test_folder_is_mirrored_recursively_with_photos_and_videos(tmp_path):
    root = tmp_path / "footage"
    # Planning looks at names only, so empty files will do.
    for rel in [
        "a.jpg",
        "day1/b.png",
        "day1/c.mp4",
        "day1/deep/d.MOV",
        "day2/e.webp",
        "notes.txt",
        ".hidden.jpg",
        "a.blurred.jpg",
    ]:  # the last three are no inputs
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).touch()
    pairs = plan_outputs([root], None)
    out = tmp_path / "footage.blurred"
    assert [(s.relative_to(root).as_posix(), d) for s, d in pairs] == [
        ("a.jpg", out / "a.jpg"),
        ("day1/b.png", out / "day1/b.png"),
        ("day1/c.mp4", out / "day1/c.mp4"),
        ("day1/deep/d.MOV", out / "day1/deep/d.mp4"),
        ("day2/e.webp", out / "day2/e.webp"),
    ]
    assert [d for _, d in plan_outputs([root], tmp_path / "elsewhere")][0] == tmp_path / "elsewhere/a.jpg"


def test_symlinked_folder_loops_are_not_followed(tmp_path):
    root = tmp_path / "f"
    _photo(root / "a.png")
    (root / "loop").symlink_to(root, target_is_directory=True)
    assert [p.name for p in walk(root)] == ["a.png"]


def test_output_folder_inside_the_input_folder_is_not_read_again(tmp_path):
    root = tmp_path / "f"
    _photo(root / "a.png")
    _photo(root / "out" / "a.png")  # left by an earlier `blur f -o f/out`
    assert plan_outputs([root], root / "out") == [(root / "a.png", root / "out" / "a.png")]


def test_output_file_and_folder(tmp_path):
    src = _photo(tmp_path / "in" / "a.png")
    assert plan_outputs([src], tmp_path / "x.png") == [(src, tmp_path / "x.png")]
    # An existing folder, or a name ending in "/" (a folder to create): same name inside it.
    (tmp_path / "existing").mkdir()
    assert plan_outputs([src], tmp_path / "existing") == [(src, tmp_path / "existing/a.png")]
    assert plan_outputs([src], f"{tmp_path}/new/") == [(src, tmp_path / "new/a.png")]
    # -o pointing at the input's own folder: the default name, never the input itself.
    assert plan_outputs([src], src.parent) == [(src, src.parent / "a.blurred.png")]
    # Several inputs: -o is a folder.
    other = _photo(tmp_path / "b.png")
    assert plan_outputs([src, other], tmp_path / "o") == [
        (src, tmp_path / "o/a.png"),
        (other, tmp_path / "o/b.png"),
    ]


def test_two_inputs_with_one_output_are_refused(tmp_path):
    a, b = _photo(tmp_path / "1/a.png"), _photo(tmp_path / "2/a.png")
    with pytest.raises(UsageError, match="both"):
        plan_outputs([a, b], f"{tmp_path}/out/")


def test_a_heic_beside_a_jpeg_of_the_same_name_points_to_keep_format(tmp_path):
    folder = tmp_path / "phone"
    _photo(folder / "x.jpg")
    (folder / "x.heic").write_bytes(b"")  # only its name matters to the plan
    with pytest.raises(UsageError, match="--keep-format"):
        plan_outputs([folder], f"{tmp_path}/out/")
    pairs = plan_outputs([folder], f"{tmp_path}/out/", keep_format=True)
    assert sorted(dst.name for _, dst in pairs) == ["x.heic", "x.jpg"]


def test_an_output_that_is_another_input_is_refused(tmp_path):
    a = _photo(tmp_path / "a.png")
    earlier = _photo(tmp_path / "a.blurred.png")
    with pytest.raises(UsageError, match="replace an input"):
        plan_outputs([a, earlier], None)


def test_missing_input_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        plan_outputs([tmp_path / "nope.jpg"], None)


def test_never_writes_over_the_input(tmp_path):
    src = _photo(tmp_path / "a.png")
    for overwrite in (False, True):
        with pytest.raises(UsageError, match="input itself"):
            check_output(src, src, overwrite)
        with pytest.raises(UsageError, match="input itself"):
            check_output(src, tmp_path / "." / "sub" / ".." / "a.png", overwrite)
    link = tmp_path / "link.png"
    link.symlink_to(src)
    with pytest.raises(UsageError, match="input itself"):
        check_output(src, link, True)
    hard = tmp_path / "hard.png"
    os.link(src, hard)
    with pytest.raises(UsageError, match="input itself"):
        check_output(src, hard, True)


def test_existing_output_needs_overwrite(tmp_path):
    src = _photo(tmp_path / "a.png")
    dst = _photo(tmp_path / "a.blurred.png")
    with pytest.raises(UsageError, match="--overwrite"):
        check_output(src, dst, False)
    check_output(src, dst, True)


@pytest.mark.parametrize(
    "src, dst", [("a.jpg", "out.png"), ("a.png", "out"), ("a.mp4", "out.avi"), ("a.tif", "out.jpg")]
)
def test_output_name_must_match_the_format_written(tmp_path, src, dst):
    with pytest.raises(UsageError, match="must end in"):
        check_output(tmp_path / src, tmp_path / dst, False)


@pytest.mark.parametrize(
    "src, dst", [("a.jpg", "o.jpeg"), ("a.TIF", "o.tiff"), ("a.webm", "o.mp4"), ("a.mp4", "o.mkv")]
)
def test_output_name_with_a_matching_extension_is_fine(tmp_path, src, dst):
    check_output(tmp_path / src, tmp_path / dst, False)


def test_atomic_output_appears_only_on_success(tmp_path):
    dst = tmp_path / "sub" / "out.png"
    with atomic_output(dst) as tmp:
        assert tmp.parent == dst.parent and tmp.name.endswith(".part")
        tmp.write_bytes(b"done")
        assert not dst.exists()
    assert dst.read_bytes() == b"done"
    assert sorted(p.name for p in dst.parent.iterdir()) == ["out.png"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_atomic_output_leaves_nothing_on_failure(tmp_path, error):
    dst = tmp_path / "out.png"
    with pytest.raises(error):
        with atomic_output(dst) as tmp:
            tmp.write_bytes(b"half")
            raise error()
    assert list(tmp_path.iterdir()) == []


def _fail_on_third_frame(monkeypatch, error=MediaError):
    """Make rendering fail part-way through a video, after frames were already encoded."""
    from blur import redact

    calls = {"n": 0}
    real = redact.Redactor.apply

    def apply(self, image, *boxes):
        calls["n"] += 1
        if calls["n"] == 3:
            raise error("simulated failure at frame 3") if error is MediaError else error()
        return real(self, image, *boxes)

    monkeypatch.setattr(redact.Redactor, "apply", apply)
    return calls


@pytest.mark.parametrize("error", [MediaError, KeyboardInterrupt])
def test_render_failing_midway_leaves_no_output_and_no_temp(tmp_path, monkeypatch, error):
    src = write_video(tmp_path / "clip.mp4", frames=10)
    before = src.read_bytes()
    calls = _fail_on_third_frame(monkeypatch, error)
    with pytest.raises(error):
        pipeline.anonymise(src, None, FAST)
    assert calls["n"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
    assert src.read_bytes() == before


def test_failed_overwrite_keeps_the_previous_output(tmp_path, monkeypatch):
    src = write_video(tmp_path / "clip.mp4", frames=10)
    dst = tmp_path / "clip.blurred.mp4"
    dst.write_bytes(b"previous output")
    _fail_on_third_frame(monkeypatch)
    with pytest.raises(MediaError):
        pipeline.anonymise(src, None, FAST.merged(overwrite=True))
    assert dst.read_bytes() == b"previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.blurred.mp4", "clip.mp4"]
