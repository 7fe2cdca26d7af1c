"""The registries: adding a detector is its class and one registry entry, and everything else
(settings, scan, tracking, render, manifest) follows from what it declares."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from blur import detectors, manifest, pipeline, report
from blur.detectors import Detector
from blur.settings import Settings
from blur.types import KINDS, Detections


# The example detector of docs/design.md, as written there.
class BrightSquares(Detector):
    """Boxes around pure-white areas: a stand-in for a real model."""

    name = "bright-squares"
    kind = "square"

    def __init__(self, level: int = 250, device: str = "auto"):
        self.level = level

    def detect(self, image: np.ndarray) -> Detections:
        ys, xs = np.nonzero((image >= self.level).all(axis=-1))
        if not len(xs):
            return Detections.empty()
        box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        return Detections.of([box], [1.0], self.kind)


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(detectors.DETECTORS, BrightSquares.name, BrightSquares)
    return BrightSquares


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 200, (120, 160, 3), dtype=np.uint8)
    rgb[30:60, 40:90] = 255
    path = tmp_path / "square.png"
    Image.fromarray(rgb).save(path)
    return path, rgb


def test_the_built_in_kinds_are_the_registry_s(registered):
    assert detectors.kinds()[:3] == ("face", "plate", "text")
    assert set(KINDS) == {"face", "plate", "text", "manual"}
    with pytest.raises(ValueError, match="square"):  # before: an unknown kind
        Settings(kinds=("squares",))


def test_a_registered_detector_runs_through_scan_and_render(tmp_path, photo, registered):
    path, rgb = photo
    settings = Settings(kinds=("square",))  # accepted: the registry knows the kind now
    plan = pipeline.scan(path, settings)
    assert [(t.kind, t.xyxy.tolist()) for t in plan.tracks] == [("square", [[40, 30, 90, 60]])]
    result = pipeline.render(path, tmp_path / "out.png", plan, settings.merged(shape="box"))
    out = np.asarray(Image.open(result.dst).convert("RGB"))
    assert (out[30:60, 40:90] != 255).any(axis=-1).mean() > 0.9  # redacted
    assert np.array_equal(out[:20], rgb[:20])  # nothing else touched
    again = pipeline.load_plan(path, plan.to_dict())  # the regions file knows the kind too
    assert [t.kind for t in again.tracks] == ["square"]
    [model] = manifest.models(settings)  # what the manifest records comes from the class
    assert (model["kind"], model["detector"], model["files"]) == ("square", "bright-squares", [])


def test_a_detector_that_returns_garbage_fails_closed(photo, registered, monkeypatch):
    from blur.errors import DetectionError

    monkeypatch.setattr(
        BrightSquares, "detect", lambda self, image: Detections.of([[5, 5, 1, 1]], [1.0], "square")
    )
    with pytest.raises(DetectionError, match="bright-squares returned invalid boxes"):
        pipeline.scan(photo[0], Settings(kinds=("square",)))


def test_the_report_does_not_vouch_for_an_output_that_does_not_exist(tmp_path, photo, registered):
    path, _ = photo
    settings = Settings(kinds=("square",))
    plan = pipeline.scan(path, settings)
    data = report.summary(plan, settings)
    assert data["metadata_in_output"] is None
    page = report.html_page(data, {})
    assert "<td>metadata in the output</td><td>none" not in page
    assert "no output yet" in page
    result = pipeline.render(path, tmp_path / "out.png", plan, settings)
    assert report.summary(plan, settings, output=result.dst)["metadata_in_output"] == []


def test_release_frees_every_loaded_model():
    """One cache: the face model as rewritten for ONNX Runtime is kept where the detectors are,
    so ``release()`` frees it too, and it is made again when a detector needs it."""
    from blur.detectors import base, centerface

    detectors.release()
    try:
        detectors.build(Settings(kinds=("face",), device="cpu"))
        model = centerface.model_bytes()
        assert any(value is model for value in base._CACHE.values())
        detectors.release()
        assert not base._CACHE
        again = centerface.model_bytes()
        assert again == model and again is not model
    finally:
        detectors.release()
