"""The RetinaFace small-face pass: blur's own model file, faces found large and small, its
setting validated and recorded, and no network use."""

from __future__ import annotations

import hashlib
import re
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_detectors import ASTRONAUT_FACE, coverage

from blur import manifest
from blur.detectors import retinaface
from blur.detectors.centerface import CenterFaceDetector
from blur.errors import DetectionError, SettingsError
from blur.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
THRESHOLD = Settings().face_threshold


@pytest.fixture(scope="module")
def with_retinaface():
    return CenterFaceDetector(small_face_model="retinaface", device="cpu")


def small_face_picture(astronaut, face_px: int) -> tuple[np.ndarray, list[int]]:
    """A 320x240 picture of noise with the astronaut's head shrunk so that the face (brows to
    chin) is ``face_px`` tall, and that face's box."""
    fx1, fy1, fx2, fy2 = ASTRONAUT_FACE
    f = face_px / (fy2 - fy1)
    head = cv2.resize(astronaut[40:260, 140:320], None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(1)
    picture = np.clip(rng.normal(120, 12, (240, 320, 3)), 0, 255).astype(np.uint8)
    x, y = 150, 100
    picture[y : y + head.shape[0], x : x + head.shape[1]] = head
    face = [x + (fx1 - 140) * f, y + (fy1 - 40) * f, x + (fx2 - 140) * f, y + (fy2 - 40) * f]
    return picture, [int(round(v)) for v in face]


def confident(found):
    return found[found.score >= THRESHOLD]


def test_model_is_blurs_own_file_with_its_licence():
    path = Path(retinaface.model_path())
    assert path.parent == ROOT / "blur" / "models"
    note = (path.parent / "RETINAFACE-LICENSE.txt").read_text()
    recorded = re.search(r"SHA-256 ([0-9a-f]{64})", note).group(1)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded
    assert "MIT License" in note and "Copyright (c) 2025 ddfabbro" in note


def test_finds_the_astronaut(with_retinaface, astronaut):
    found = confident(with_retinaface.detect(astronaut))
    assert coverage(ASTRONAUT_FACE, found, 512, 512) >= 0.9


@pytest.mark.parametrize("face_px", [10, 12, 14])
def test_its_small_face_pass_finds_a_face_the_native_pass_misses(with_retinaface, astronaut, face_px):
    picture, face = small_face_picture(astronaut, face_px)
    native = confident(with_retinaface.detect(picture, small_faces=False))
    assert coverage(face, native, 320, 240) < 0.7  # so the small-face pass is what finds it
    found = confident(with_retinaface.detect(picture))
    assert coverage(face, found, 320, 240) >= 0.9
    assert len(found) == 1


def test_small_face_pass_reports_small_faces_only(astronaut):
    """The astronaut's face is ~190 px tall at 2x: the native pass's to find, not this one's."""
    model = retinaface.RetinaFace(device="cpu")
    boxes, scores = model.detect_at(astronaut, 2.0, THRESHOLD)
    assert (boxes[:, 3] - boxes[:, 1] > 128).any()
    boxes, scores = model.small_face_pass(astronaut, 2.0, THRESHOLD)
    assert (boxes[:, 3] - boxes[:, 1] < 128 / 2 * 1.2).all()


def test_scores_are_on_centerface_terms():
    mapped = retinaface.to_centerface_scores(np.array([0.0, 0.05, 0.5, 1.0]))
    assert mapped[0] == 0 and mapped[1] == pytest.approx(THRESHOLD) and mapped[3] == 1
    assert np.all(np.diff(mapped) > 0)
    assert retinaface.from_centerface_score(THRESHOLD) == pytest.approx(0.05)


def test_setting_is_validated_and_reaches_the_detector():
    with pytest.raises(SettingsError):
        Settings(face_small_model="retina")
    with pytest.raises(DetectionError):
        CenterFaceDetector(small_face_model="retina", device="cpu")
    from blur import detectors

    (det,) = detectors.build(Settings(kinds=("face",), face_small_model="retinaface", device="cpu"))
    assert det._small_pass.__self__.name == "retinaface"


def test_manifest_records_both_face_models():
    models = manifest.models(Settings(kinds=("face",), face_small_model="retinaface"))
    assert [m["detector"] for m in models] == ["centerface", "retinaface"]
    (file,) = models[1]["files"]
    digest = hashlib.sha256(Path(retinaface.model_path()).read_bytes()).hexdigest()
    assert file == {"name": "retinaface-mobilenet0.25.onnx", "sha256": digest}
    assert [m["detector"] for m in manifest.models(Settings(kinds=("face",)))] == ["centerface"]


def test_loads_and_runs_with_no_network(monkeypatch, astronaut):
    def forbid(*args, **kwargs):
        raise RuntimeError("blur tried to open a socket")

    for name in ("socket", "create_connection", "getaddrinfo"):
        monkeypatch.setattr(socket, name, forbid)
    det = CenterFaceDetector(small_face_model="retinaface", device="cpu")
    assert coverage(ASTRONAUT_FACE, confident(det.detect(astronaut)), 512, 512) >= 0.9


def test_cli_option_selects_the_model(astronaut, tmp_path, monkeypatch):
    from PIL import Image
    from typer.testing import CliRunner

    from blur import cli
    from blur.errors import ExitStatus

    picture, (x1, y1, x2, y2) = small_face_picture(astronaut, 16)
    Image.fromarray(picture[..., ::-1]).save(tmp_path / "small.png")
    seen = []
    real = cli.detectors.build
    monkeypatch.setattr(
        cli.detectors, "build", lambda settings: seen.append(settings.face_small_model) or real(settings)
    )
    monkeypatch.chdir(tmp_path)
    args = ["run", "small.png", "--only", "faces", "--device", "cpu", "-o", "out.png"]
    result = CliRunner().invoke(cli.app, args + ["--small-face-model", "retinaface"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert seen == ["retinaface"]
    with Image.open(tmp_path / "out.png") as out:
        face = np.asarray(out.convert("RGB"))[y1:y2, x1:x2]
    assert not np.array_equal(face, picture[y1:y2, x1:x2, ::-1])  # the small face was redacted
    result = CliRunner().invoke(cli.app, args + ["--overwrite", "--small-face-model", "retina"])
    assert result.exit_code == ExitStatus.USAGE and seen == ["retinaface"]
