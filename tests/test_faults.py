"""Faults: a detector that fails or talks garbage, bugs, memory and a full disk.

Each file that meets a fault fails alone (one error line; the batch goes on), leaves no output
and no temp file, and never gets written with a frame nobody analysed, unless the user asked
for such a frame to be redacted whole (``--on-frame-error redact``).
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import FAST, frame_index, write_video
from PIL import Image
from typer.testing import CliRunner

from blur import cli, detectors, files, pipeline
from blur.errors import DetectionError, ExitStatus, MediaError
from blur.media import image as image_module
from blur.media import video as video_module
from blur.types import Detections

FACES = FAST.merged(kinds=("face",))
BAD_FRAME = 3


def blur(*args):
    return CliRunner().invoke(cli.app, ["run", *map(str, args)])


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def marked(face_frame: np.ndarray, index: int) -> np.ndarray:
    """The face picture with its frame number written into the top-left block (``frame_index``
    reads it back), so a fault can be aimed at one frame whatever the call order."""
    image = face_frame.copy()
    image[:16, :16] = 15 + 14 * (index % 16)
    return image


@pytest.fixture
def clip(tmp_path, face_frame):
    return write_video(
        tmp_path / "clip.mp4", frames=8, size=(240, 180), image=lambda i: marked(face_frame, i)
    )


def _face_detector():
    # The detector the scan runs (it records weaker face candidates than it tracks).
    return next(d for d in detectors.build(pipeline.scan_settings(FACES)) if d.kind == "face")


# What a broken detector does on the bad frame.
def _raises(found):
    raise RuntimeError("CUDA error: an illegal memory access was encountered")


def _nan_boxes(found):
    return Detections.of([[np.nan, 10, 50, 60]], [0.9], "face")


def _inf_boxes(found):
    return Detections.of([[10, 10, np.inf, 60]], [0.9], "face")


def _inverted_box(found):  # would redact nothing
    return Detections.of([[120, 90, 40, 20]], [0.9], "face")


def _nan_score(found):  # could fall out of a threshold or NMS
    return Detections.of([[40, 20, 120, 90]], [np.nan], "face")


def _wrong_type(found):
    return [(40, 20, 120, 90)]


def _none(found):
    return None


MISBEHAVIOUR = {
    "raises": _raises,
    "nan_boxes": _nan_boxes,
    "inf_boxes": _inf_boxes,
    "inverted_box": _inverted_box,
    "nan_score": _nan_score,
    "wrong_type": _wrong_type,
    "none": _none,
}


@pytest.fixture
def broken_on_one_frame(monkeypatch):
    """Make the face detector misbehave on frame BAD_FRAME only; returns the frames it saw."""

    def install(misbehave):
        detector = _face_detector()
        real = detector.detect
        seen = []

        def detect(image):
            seen.append(frame_index(image))
            found = real(image)
            return misbehave(found) if frame_index(image) == BAD_FRAME else found

        monkeypatch.setattr(detector, "detect", detect)
        return seen

    return install


@pytest.mark.parametrize("how", MISBEHAVIOUR)
def test_detector_fault_fails_the_file(tmp_path, clip, broken_on_one_frame, how):
    before = clip.read_bytes()
    seen = broken_on_one_frame(MISBEHAVIOUR[how])
    with pytest.raises(
        DetectionError,
        match=rf"frame {BAD_FRAME}: centerface "
        rf"(failed: CUDA error|returned invalid boxes)",
    ):
        pipeline.anonymise(clip, None, FACES)
    assert BAD_FRAME in seen
    assert listing(tmp_path) == ["clip.mp4"]
    assert clip.read_bytes() == before


def _detail(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return (grey - cv2.GaussianBlur(grey, (0, 0), 2.0)).ravel()


def _detail_correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(_detail(a), _detail(b))[0, 1])


@pytest.mark.parametrize("how", ["raises", "nan_boxes", "wrong_type"])
def test_detector_fault_redacts_the_whole_frame_when_asked(
    tmp_path, clip, face_frame, broken_on_one_frame, how
):
    broken_on_one_frame(MISBEHAVIOUR[how])
    result = pipeline.anonymise(clip, None, FACES.merged(fail_frame="redact"))
    assert result.plan.unanalysed_frames == [BAD_FRAME]
    with av.open(str(result.dst)) as c:
        out = [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]
    assert len(out) == 8
    for i, frame in enumerate(out):
        original = marked(face_frame, i)
        lower_right = (slice(120, None), slice(160, None))  # away from the face
        detail = _detail_correlation(frame[lower_right], original[lower_right])
        if i == BAD_FRAME:
            # Nothing of the picture's detail is left anywhere, and almost no pixel is close
            # to the original: the whole frame was replaced.
            assert abs(_detail_correlation(frame, original)) < 0.1
            assert abs(detail) < 0.15
            close = (np.abs(frame.astype(int) - original).max(axis=2) <= 6).mean()
            assert close < 0.05, f"{close:.0%} of the pixels kept their value"
        else:
            assert detail > 0.8, f"frame {i} lost detail away from the face"


def test_detector_fault_on_a_photo(tmp_path, face_frame, monkeypatch):
    src = tmp_path / "face.png"
    Image.fromarray(face_frame).save(src)
    monkeypatch.setattr(_face_detector(), "detect", _raises)
    with pytest.raises(DetectionError, match="centerface failed"):
        pipeline.anonymise(src, None, FACES)
    assert listing(tmp_path) == ["face.png"]
    result = pipeline.anonymise(src, None, FACES.merged(fail_frame="redact"))
    with Image.open(result.dst) as out:
        assert abs(_detail_correlation(np.asarray(out.convert("RGB")), face_frame)) < 0.1


def test_detector_fault_through_the_cli(tmp_path, clip, broken_on_one_frame, monkeypatch):
    monkeypatch.chdir(tmp_path)
    broken_on_one_frame(_nan_boxes)
    result = blur("clip.mp4", "-q", "--only", "faces", "--preset", "ultrafast")
    assert result.exit_code == ExitStatus.ERROR
    line = one_error_line(result.stderr)
    assert "clip.mp4" in line and f"frame {BAD_FRAME}" in line and "invalid boxes" in line
    assert listing(tmp_path) == ["clip.mp4"]
    result = blur("clip.mp4", "-q", "--only", "faces", "--preset", "ultrafast", "--on-frame-error", "redact")
    assert result.exit_code == 0, result.stderr
    assert listing(tmp_path) == ["clip.blurred.mp4", "clip.mp4"]


# ------------------------------------------------------- bugs and the system failing


@pytest.fixture
def three_photos(tmp_path, face_frame):
    names = ["a.png", "b.png", "c.png"]
    for name in names:
        Image.fromarray(face_frame).save(tmp_path / name)
    return [tmp_path / n for n in names]


def _fail_writing(monkeypatch, victim: str, error: BaseException):
    """Make writing one photo fail after half of it reached the temp file."""
    real = image_module.write

    def write(still, path, quality=95):
        if path.name.startswith(f".{victim}"):
            real(still, path, quality)
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
            raise error
        return real(still, path, quality)

    monkeypatch.setattr(image_module, "write", write)


@pytest.mark.parametrize(
    "error, message",
    [
        (ZeroDivisionError("division by zero"), r"internal error: ZeroDivisionError: division by zero"),
        (KeyError("missing"), r"internal error: KeyError: 'missing'"),
        (MemoryError(), r"out of memory"),
        (OSError(errno.EIO, "Input/output error"), r"input/output error"),
    ],
)
def test_unexpected_failure_fails_one_file_and_the_batch_goes_on(
    tmp_path, three_photos, monkeypatch, error, message
):
    _fail_writing(monkeypatch, "b.blurred.png", error)
    result = blur(*three_photos, "--only", "faces")
    assert result.exit_code == ExitStatus.ERROR
    line = one_error_line(result.stderr)
    assert str(three_photos[1]) in line
    assert re.search(message, line, re.IGNORECASE), line
    assert listing(tmp_path) == ["a.blurred.png", "a.png", "b.png", "c.blurred.png", "c.png"]
    assert "2 file(s) done, 1 failed" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def _no_space(path) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", str(path))


def test_disk_full_while_writing_a_photo(tmp_path, three_photos, monkeypatch):
    _fail_writing(monkeypatch, "b.blurred.png", _no_space(tmp_path / ".b.blurred.png.x.part"))
    result = blur(*three_photos, "--only", "faces", "-q")
    assert result.exit_code == ExitStatus.ERROR
    line = one_error_line(result.stderr)
    assert (
        f"{three_photos[1]}: no space left on the device while writing {tmp_path / 'b.blurred.png'}" in line
    )
    assert ".part" not in line  # the temp file is not what the user asked for
    assert listing(tmp_path) == ["a.blurred.png", "a.png", "b.png", "c.blurred.png", "c.png"]


class _FillsUp:
    """An output container whose disk fills up after a few packets."""

    def __init__(self, real, packets: int):
        self._real, self._left = real, packets

    def mux(self, packets):
        packets = packets if isinstance(packets, list) else [packets]
        for packet in packets:
            if self._left == 0:
                raise _no_space(self._real.name)
            self._left -= 1
            self._real.mux(packet)

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_disk_full_while_writing_a_video(tmp_path, monkeypatch):
    src = write_video(tmp_path / "clip.mp4", frames=12, audio="aac")
    before = src.read_bytes()
    real_open = av.open

    def open_(file, mode="r", **kwargs):
        container = real_open(file, mode, **kwargs)
        return _FillsUp(container, packets=5) if mode == "w" else container

    monkeypatch.setattr(video_module.av, "open", open_)
    with pytest.raises(
        MediaError,
        match=r"no space left on the device while writing .*"
        r"clip\.blurred\.mp4",
    ):
        pipeline.anonymise(src, None, FACES)
    assert listing(tmp_path) == ["clip.mp4"]
    assert src.read_bytes() == before


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("kind", ["photo", "video"])
def test_real_disk_full_through_dev_full(tmp_path, face_frame, monkeypatch, kind):
    """The kernel's own ENOSPC: the temp file is a link to /dev/full, where every write fails.
    Covers what a mock cannot: FFmpeg's buffered writes, and Pillow's."""
    if kind == "photo":
        src = tmp_path / "face.png"
        Image.fromarray(face_frame).save(src)
    else:
        src = write_video(tmp_path / "clip.mp4", frames=30, size=(320, 240))
    dst = tmp_path / "out" / ("x.png" if kind == "photo" else "x.mp4")
    dst.parent.mkdir()

    class FixedId:
        hex = "feedfacefeedface"

    monkeypatch.setattr(files.uuid, "uuid4", lambda: FixedId)
    (dst.parent / f".{dst.name}.feedface.part").symlink_to("/dev/full")
    with pytest.raises(MediaError, match="no space left on the device"):
        pipeline.anonymise(src, dst, FACES)
    assert listing(dst.parent) == []  # the link was removed like any temp file


def test_one_line_even_for_a_multi_line_exception(tmp_path, three_photos, monkeypatch):
    _fail_writing(monkeypatch, "a.blurred.png", ValueError("first line\nsecond line"))
    result = blur(three_photos[0], "--only", "faces", "-q")
    assert one_error_line(result.stderr).endswith("ValueError: first line second line")


@pytest.mark.parametrize(
    "error, message",
    [
        (_no_space("x"), r"no space left on the device while writing .*a\.blurred\.png"),
        (ZeroDivisionError("division by zero"), r"internal error: ZeroDivisionError"),
    ],
)
def test_render_command_fails_in_one_line_and_leaves_nothing(
    tmp_path, three_photos, monkeypatch, error, message
):
    """``blur render`` maps a full disk and a bug to one clear line, like ``blur run``."""
    regions = tmp_path / "a.regions.json"
    scanned = CliRunner().invoke(
        cli.app, ["scan", str(three_photos[0]), "--regions", str(regions), "--only", "faces", "-q"]
    )
    assert scanned.exit_code == 0, scanned.stderr
    _fail_writing(monkeypatch, "a.blurred.png", error)
    result = CliRunner().invoke(cli.app, ["render", str(three_photos[0]), "--regions", str(regions), "-q"])
    assert result.exit_code == ExitStatus.ERROR
    assert re.search(message, one_error_line(result.stderr)), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not any(n.startswith(("a.blurred", ".a.blurred")) for n in listing(tmp_path))
