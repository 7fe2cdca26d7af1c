"""Make the README's plate pictures by running blur for real on synthetic plates.

    python docs/make_plate_figures.py       # docs/plate-vanity.jpg, docs/plate-dim.jpg

Each picture is a generated car (``benchmarks/plate_synth.py``, no photo of a real car) beside
blur's output with default settings and plates drawn as rectangles. The dim picture is shown
brightened 3x on both sides, so that the plate can be seen at all; blur analysed the dark one.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import plate_synth  # noqa: E402

import blur  # noqa: E402
from blur.settings import Settings  # noqa: E402


def redacted(rgb: np.ndarray) -> np.ndarray:
    """blur's output for one picture: plates only, drawn as rectangles."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "car.png", Path(tmp) / "car.blurred.png"
        Image.fromarray(rgb).save(src)
        blur.anonymise(src, dst, Settings(kinds=("plate",), shape="box"))
        return np.asarray(Image.open(dst).convert("RGB"))


def picture(cls: str, index: int, dst: Path, brighten: float = 1.0) -> None:
    """Synthetic image ``index`` of class ``cls``, before | after, cropped around the car."""
    sample = plate_synth.sample(cls, index, seed=12, dev=None, data=None)
    after = redacted(sample.rgb)
    x1, y1, x2, y2 = sample.box[0].astype(int)
    h, w = sample.rgb.shape[:2]
    pad_x, pad_y = 2 * (x2 - x1), 3 * (y2 - y1)
    crop = (slice(max(0, y1 - pad_y), min(h, y2 + pad_y)), slice(max(0, x1 - pad_x), min(w, x2 + pad_x)))
    panels = []
    note = f" (shown {brighten:g}x brighter)" if brighten != 1 else ""
    for rgb, label in ((sample.rgb, "before" + note), (after, "after: blur" + note)):
        part = np.clip(rgb[crop].astype(np.float32) * brighten, 0, 255).astype(np.uint8)
        part = np.ascontiguousarray(part)
        cv2.rectangle(part, (0, 0), (12 + 11 * len(label), 28), (0, 0, 0), -1)
        cv2.putText(part, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        panels += [part, np.full((part.shape[0], 6, 3), 255, np.uint8)]
    dst.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(
        str(dst), cv2.cvtColor(np.hstack(panels[:-1]), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88]
    )
    print(dst)


def main() -> int:
    picture("vanity", 2, ROOT / "docs" / "plate-vanity.jpg")
    picture("dim", 3, ROOT / "docs" / "plate-dim.jpg", brighten=3.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
