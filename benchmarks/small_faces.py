"""Small-face pass benchmark: coverage and CPU time of each small-face model, on the labelled
photos as they are and on degraded copies that nothing was fitted to.

The RetinaFace pass's box and score mapping were fitted on the even-numbered images of the set
(``blur.detectors.retinaface``); this prints the odd-numbered ones apart, and copies of every
image halved in size, saved as JPEG quality 30, and underexposed (a third of the light, gamma
1.2, a little noise). Each line is blur's still-photo path (``recall.redacted_faces``) with
``face_small_model`` set, scored as ``recall.py`` scores it.

    python benchmarks/small_faces.py                  # ../shared/eval/faces-dev, every copy
    python benchmarks/small_faces.py --limit 50 --copies original half

The images are read where they lie and never copied into the repository.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from recall import DEFAULT_SET, Result, load_set, redacted_faces, score_image  # noqa: E402

MODELS = ("centerface", "retinaface")
COPIES = ("original", "half", "jpeg30", "dim")


def degrade(rgb: np.ndarray, boxes: np.ndarray, copy: str) -> tuple[np.ndarray, np.ndarray]:
    """One degraded copy of a labelled image, with its boxes carried along."""
    if copy == "original":
        return rgb, boxes
    if copy == "half":
        height, width = rgb.shape[:2]
        size = (width // 2, height // 2)
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        return small, boxes * np.array([size[0] / width, size[1] / height] * 2, np.float32)
    if copy == "jpeg30":
        _, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 30])
        return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]), boxes
    if copy == "dim":
        light = (rgb.astype(np.float32) / 255) ** 1.2 * 255 / 3
        light += np.random.default_rng(0).normal(0, 2, light.shape)
        return np.clip(light, 0, 255).astype(np.uint8), boxes
    raise ValueError(copy)


def run(path: Path, model: str, copy: str, limit: int | None) -> tuple[Result, Result]:
    """(every image, odd-numbered images only) of one model on one copy of the set."""
    from blur.media import image
    from blur.settings import Settings

    settings = Settings(kinds=("face",), face_small_model=model)
    redacted_faces(np.zeros((64, 64, 3), dtype=np.uint8), settings)  # load the models
    every, odd = Result(), Result()
    for index, item in enumerate(load_set(path)[:limit]):
        rgb = image.read(path / item["file"]).rgb
        gt = np.asarray(item["boxes"], dtype=np.float32).reshape(-1, 4)
        rgb, gt = degrade(rgb, gt, copy)
        cpu = time.process_time()
        pred = redacted_faces(rgb, settings)
        cpu = time.process_time() - cpu
        res = score_image(gt, pred, rgb.shape[1], rgb.shape[0], settings.mask_scale, settings.shape)
        res.cpu_seconds = cpu
        every.add(res)
        if index % 2:
            odd.add(res)
    return every, odd


def line(name: str, res: Result) -> str:
    t = res.tallies
    n = max(res.images, 1)
    return (
        f"{name:<32} {t['all'].covered / max(t['all'].faces, 1):6.3f} "
        f"{t['<20'].covered / max(t['<20'].faces, 1):6.3f} {t['<20'].faces:5d} "
        f"{100 * res.area_redacted / n:7.1f}% {1000 * res.cpu_seconds / n:6.0f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "path", nargs="?", type=Path, default=DEFAULT_SET, help="labelled set (faces.json + images/)"
    )
    parser.add_argument("--limit", type=int, help="only the first N images")
    parser.add_argument("--copies", nargs="+", choices=COPIES, default=list(COPIES))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    args = parser.parse_args(argv)
    if not (args.path / "faces.json").is_file():
        print(f"no labelled set at {args.path} (expected faces.json)", file=sys.stderr)
        return 2
    print(
        f"{'copy / small-face model':<32} {'cover':>6} {'<20px':>6} {'n<20':>5} {'redacted':>8} {'ms CPU':>6}"
    )
    for copy in args.copies:
        for model in args.models:
            every, odd = run(args.path, model, copy, args.limit)
            print(line(f"{copy} / {model}", every), flush=True)
            if copy == "original":
                print(line("  odd images (held out)", odd), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
