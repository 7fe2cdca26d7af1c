"""Licence-plate benchmark: labelled photos, degraded copies of them, and synthetic plates.

Three suites (``--suite``, default all):
- dev: the labelled photo set (default ../shared/eval/plates-dev), per country folder and overall;
- degraded: the same photos dimmed to x0.3, saved as JPEG quality 20, halved in size, and smeared
  by horizontal motion blur (1 % of the width), one row each;
- synthetic: plates rendered from scratch (``plate_synth.py``: vanity plates, digits only, two
  lines, state headers, dealer frames, EU band, both polarities, dim, low contrast, JPEG q20,
  motion blur, tilt, perspective), pasted over the dev photos' plates or onto generated cars with
  a fixed seed, one row per class. Nothing in them was fitted to the dev photos.

Columns:
- whole: share of plates with >= 95 % of their pixels inside the redacted region, the region
  drawn with ``blur.redact.region_masks`` as rectangles (``--shape box``, the plate default)
  grown by the default ``mask_scale``. A partly covered plate counts as missed;
- >=70%: share of plates at least 70 % covered (most of it hidden);
- recall@0.5: share of plates matched by a detected box with IoU >= 0.5 (boxes as detected);
- false/img: detected regions that touch no labelled plate (less than 25 % of a plate and less
  than half of the region on one), per image. Unlabelled plates in the photos count as false, so
  this is an upper bound;
- non-plate px: share of the pixels outside labelled plates that are redacted;
- ms/img: detector time per image (median), wall clock, on whatever else the machine runs.

    python benchmarks/plates.py                      # all suites
    python benchmarks/plates.py --suite synthetic --per-class 20 --misses
    python benchmarks/plates.py --set max_side=960 --threads 2
    python benchmarks/plates.py --kind text          # the --text detector instead
    python benchmarks/plates.py --video ../shared/media/vtest.avi   # faces alone vs + plates
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from masks import redaction_mask

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SET = ROOT.parent / "shared" / "eval" / "plates-dev"
# Other installed model files to compare against (only used when asked for with --models).
# ppocrv6 needs `pip install --no-deps rapidocr==3.10.0` in a separate environment: the 3.9 and
# 3.10 wheels carry PP-OCRv6 small det/rec inside; no 3.x wheel carries PP-OCRv5 (3.x fetches
# it at run time), and 3.x requires opencv-python-headless, a second cv2 build beside blur's.
MODEL_SETS = {
    "ppocrv4": {
        "det": ("rapidocr-onnxruntime", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"),
        "rec": ("rapidocr-onnxruntime", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx"),
    },
    "ppocrv6": {
        "det": ("rapidocr", "rapidocr/models/PP-OCRv6_det_small.onnx"),
        "rec": ("rapidocr", "rapidocr/models/PP-OCRv6_rec_small.onnx"),
    },
}


def box_masks(labels: np.ndarray, width: int, height: int) -> list[np.ndarray]:
    """One pixel mask per labelled xyxy box."""
    out = []
    for x1, y1, x2, y2 in labels.round().astype(int):
        m = np.zeros((height, width), bool)
        m[max(y1, 0) : min(y2, height), max(x1, 0) : min(x2, width)] = True
        out.append(m)
    return out


def score_image(xyxy: np.ndarray, labels: np.ndarray, plates: list[np.ndarray], shape: str = "box") -> dict:
    """Coverage, IoU match, false regions and redacted background of one image.

    Args:
        xyxy: detected boxes.
        labels: (N, 4) xyxy boxes around the labelled plates.
        plates: N pixel masks of the plates (the plate's own pixels; a tilted plate's quad).
    """
    from blur.boxes import iou_matrix
    from blur.settings import Settings

    height, width = plates[0].shape
    mask = redaction_mask(xyxy, width, height, Settings().mask_scale, shape)
    cover = [float(mask[p].mean()) if p.any() else 1.0 for p in plates]
    ious = iou_matrix(labels.astype(np.float32), xyxy.astype(np.float32))
    matched = ious.max(axis=1) >= 0.5 if len(xyxy) else np.zeros(len(labels), bool)
    false = 0
    for box in xyxy:
        ix = np.clip(np.minimum(box[2], labels[:, 2]) - np.maximum(box[0], labels[:, 0]), 0, None)
        iy = np.clip(np.minimum(box[3], labels[:, 3]) - np.maximum(box[1], labels[:, 1]), 0, None)
        inter = ix * iy
        label_area = (labels[:, 2] - labels[:, 0]) * (labels[:, 3] - labels[:, 1])
        own_area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)
        if not ((inter >= 0.25 * label_area) | (inter >= 0.5 * own_area)).any():
            false += 1
    background = ~np.logical_or.reduce(plates)
    return {
        "cover": cover,
        "matched": list(matched),
        "false": false,
        "background": float(mask[background].mean()) if background.any() else 0.0,
    }


DEGRADATIONS = ["dim", "jpeg", "small", "motion"]


def degrade(bgr: np.ndarray, labels: np.ndarray, how: str | None):
    """Make the photo harder (see DEGRADATIONS); labels follow a resize."""
    import cv2

    if how == "motion":
        k = max(3, int(0.01 * bgr.shape[1]) | 1)
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        bgr = cv2.filter2D(bgr, -1, kernel)
    elif how == "small":
        bgr = cv2.resize(bgr, (bgr.shape[1] // 2, bgr.shape[0] // 2), interpolation=cv2.INTER_AREA)
        labels = labels / 2
    elif how == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 20])
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    elif how == "dim":
        bgr = (bgr.astype(np.float32) * 0.3).round().astype(np.uint8)
    return bgr, labels


def dev_images(data: Path, images: list[dict], how: str | None = None):
    """(group, name, rgb, labels, plate masks) for each labelled photo, degraded by ``how``."""
    import cv2

    for item in images:
        bgr = cv2.imread(str(data / item["file"]))
        if bgr is None:
            raise SystemExit(f"cannot read {item['file']}")
        labels = np.asarray(item["boxes"], dtype=np.float64).reshape(-1, 4)
        bgr, labels = degrade(bgr, labels, how)
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        group = {"dim": "dim x0.3", "jpeg": "JPEG q20", "small": "half size", "motion": "motion blur"}.get(
            how, item["file"].split("/")[0]
        )
        yield group, item["file"], rgb, labels, box_masks(labels, rgb.shape[1], rgb.shape[0])


def synthetic_images(
    data: Path | None, images: list[dict] | None, per_class: int, seed: int, classes: list[str] | None = None
):
    """(class, name, rgb, labels, plate masks) of ``per_class`` synthetic images per class."""
    import plate_synth

    for cls in classes or plate_synth.CLASSES:
        for i in range(per_class):
            s = plate_synth.sample(cls, i, seed, images, data)
            yield cls, f"{cls}#{i}", s.rgb, s.box, [s.plate_mask]


def evaluate(detector, suite: str, samples, shape: str, misses: Path | bool | None) -> None:
    """Run the detector over ``samples`` and print one table row per group and overall."""
    rows: dict[str, dict] = defaultdict(
        lambda: {"n": 0, "cover": [], "matched": [], "false": 0, "background": [], "ms": []}
    )
    for group, name, rgb, labels, plates in samples:
        start = time.perf_counter()
        found = detector.detect(rgb.copy())
        ms = 1000 * (time.perf_counter() - start)
        scored = score_image(found.xyxy, labels, plates, shape)
        for g in (group, "all"):
            row = rows[g]
            row["n"] += 1
            row["ms"].append(ms)
            for key in ("cover", "matched"):
                row[key] += scored[key]
            row["false"] += scored["false"]
            row["background"].append(scored["background"])
        if misses and min(scored["cover"]) < 0.95:
            print(
                f"miss: {name} cover={min(scored['cover']):.2f} "
                f"plate={np.round(labels).astype(int).tolist()} "
                f"boxes={np.round(found.xyxy).astype(int).tolist()}"
            )
            if isinstance(misses, Path):
                _save_miss(misses / f"{suite}-{name.replace('/', '_')}.jpg", rgb, labels, found.xyxy)
    print(f"\n{suite}\n")
    print("| set | images | plates | whole | >=70% | recall@0.5 | false/img | non-plate px | ms/img |")
    print("|---|---|---|---|---|---|---|---|---|")
    for group in sorted(rows, key=lambda g: g == "all"):
        r = rows[group]
        cover = np.asarray(r["cover"])
        print(
            f"| {group} | {r['n']} | {len(cover)} | {(cover >= 0.95).mean():.3f} | "
            f"{(cover >= 0.7).mean():.3f} | {np.mean(r['matched']):.3f} | "
            f"{r['false'] / r['n']:.2f} | {100 * np.mean(r['background']):.2f} % | "
            f"{statistics.median(r['ms']):.0f} |"
        )


def _save_miss(path: Path, rgb: np.ndarray, labels: np.ndarray, found: np.ndarray) -> None:
    import cv2

    img = np.ascontiguousarray(rgb[..., ::-1])
    for x1, y1, x2, y2 in np.round(labels).astype(int):
        cv2.rectangle(img, (x1, y1), (x2, y2), (0, 255, 0), 1)
    for x1, y1, x2, y2 in np.round(found).astype(int):
        cv2.rectangle(img, (x1, y1), (x2, y2), (0, 0, 255), 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)


def video_speed(path: Path, runs: int, max_frames: int) -> None:
    """Wall time of a whole ``blur`` run (scan + render) on a video: faces alone, faces + plates
    (the default) and faces + plates + text, as the ratio the plate detector costs."""
    import av

    from blur import detectors, pipeline
    from blur.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        src = path
        if max_frames:
            src = Path(tmp) / "excerpt.mp4"
            excerpt(path, src, max_frames)
        with av.open(str(src)) as c:
            v = c.streams.video[0]
            facts = (
                f"{v.codec_context.width}x{v.codec_context.height}, {v.frames} frames, "
                f"{float(v.average_rate):.2f} fps"
            )
        print(f"\n{path.name} ({facts}); median of {runs} run(s)\n")
        print("| kinds | stride | scan s | total s | CPU s | x faces alone (CPU) |")
        print("|---|---|---|---|---|---|")
        base = None
        for kinds in [("face",), ("face", "plate"), ("face", "plate", "text")]:
            settings = Settings(kinds=kinds, overwrite=True)
            detectors.build(settings)  # model loading is not what is measured
            scans, totals, cpus = [], [], []
            for _ in range(runs):
                cpu0 = _cpu()
                start = time.perf_counter()
                plan = pipeline.scan(src, settings)
                scanned = time.perf_counter()
                pipeline.render(src, Path(tmp) / "out.mp4", plan, settings)
                scans.append(scanned - start)
                totals.append(time.perf_counter() - start)
                cpus.append(_cpu() - cpu0)
            total = statistics.median(totals)
            # CPU time (all threads) is the fairer measure on a shared, busy machine.
            cpu = statistics.median(cpus)
            base = base or cpu
            strides = [
                pipeline.frame_stride(d, float(plan.info.fps), settings) for d in detectors.build(settings)
            ]
            print(
                f"| {'+'.join(kinds)} | {'/'.join(map(str, strides))} | "
                f"{statistics.median(scans):.1f} | {total:.1f} | {cpu:.1f} | {cpu / base:.2f} |"
            )


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def excerpt(src: Path, dst: Path, frames: int) -> Path:
    """The first ``frames`` frames of ``src`` re-encoded nearly losslessly (x264 CRF 10)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vs = out.add_stream("libx264", rate=vin.average_rate or 25)
        vs.width, vs.height = vin.codec_context.width, vin.codec_context.height
        vs.pix_fmt = "yuv420p"
        vs.options = {"crf": "10", "preset": "veryfast"}
        # Frames keep their own times: other tools (deface) read a clip by its frame rate and
        # duration, and a clip whose times were dropped lasts a few frames for them.
        vs.time_base = vin.time_base
        for i, frame in enumerate(inp.decode(vin)):
            if i >= frames:
                break
            out.mux(vs.encode(frame.reformat(format="yuv420p")))
        out.mux(vs.encode(None))
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="detector keyword, e.g. max_side=960 (repeatable)",
    )
    ap.add_argument("--data", type=Path, default=DEFAULT_SET)
    ap.add_argument(
        "--suite",
        action="append",
        choices=["dev", "degraded", "synthetic"],
        help="which suites to run (repeatable; default all three)",
    )
    ap.add_argument(
        "--degrade",
        action="append",
        choices=DEGRADATIONS,
        help="degraded suite: only these degradations (repeatable)",
    )
    ap.add_argument("--per-class", type=int, default=50, help="synthetic images per class")
    ap.add_argument("--seed", type=int, default=12, help="seed of the synthetic plates")
    ap.add_argument("--classes", help="synthetic suite: only these classes (comma-separated)")
    ap.add_argument("--kind", default="plate", choices=["plate", "text"])
    ap.add_argument(
        "--shape",
        default="box",
        choices=["box", "ellipse"],
        help="mask shape the coverage is computed with (plates are boxes)",
    )
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads (0 = all)")
    ap.add_argument(
        "--models",
        choices=sorted(MODEL_SETS),
        default=None,
        help="compare another model pair (default: the one blur ships with)",
    )
    ap.add_argument("--misses", action="store_true", help="list plates covered < 95 %%")
    ap.add_argument("--save-misses", type=Path, help="also draw each miss into this folder")
    ap.add_argument("--limit", type=int, help="only the first N dev images, and N synthetic images per class")
    ap.add_argument(
        "--video",
        type=Path,
        default=None,
        help="instead: time whole runs on this video, faces alone vs with plates",
    )
    ap.add_argument("--frames", type=int, default=0, help="--video: only its first N frames")
    ap.add_argument("--runs", type=int, default=1, help="--video: runs per configuration")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.video:
        video_speed(args.video, args.runs, args.frames)
        return 0
    suites = args.suite or ["dev", "degraded", "synthetic"]

    index = args.data / "plates.json"
    images = json.loads(index.read_text())["images"][: args.limit] if index.exists() else None
    if images is None and suites != ["synthetic"]:
        print(
            f"no labelled set at {args.data} (expected plates.json there); "
            "only --suite synthetic runs without it",
            file=sys.stderr,
        )
        return 2

    from blur import detectors
    from blur.detectors import plates as plates_mod
    from blur.detectors import text as text_mod
    from blur.detectors.plates import PlateDetector
    from blur.detectors.text import TextDetector, TextModel

    # Benchmarks pin the thread count so numbers are comparable across machines.
    if args.models:
        text_mod.MODELS = MODEL_SETS[args.models]
    detectors.release()
    model = TextModel(args.threads)
    # Both detectors take the pinned model (plates.py imported shared_model by name).
    text_mod.shared_model = plates_mod.shared_model = lambda *args, **kwargs: model
    kwargs = {}
    for item in args.overrides:
        key, value = item.split("=", 1)
        kwargs[key] = float(value) if "." in value else int(value)
    detector = (PlateDetector if args.kind == "plate" else TextDetector)(**kwargs)
    detector.detect(np.full((480, 640, 3), 128, np.uint8))  # warm-up

    print(
        f"\n{args.kind} detector {detector.name} {kwargs or ''} "
        f"models {Path(text_mod.MODELS['det'][1]).name}, {args.shape} masks "
        f"({os.cpu_count()} CPUs, {args.threads or 'all'} ORT threads)"
    )
    misses = args.save_misses or args.misses
    if "dev" in suites:
        evaluate(detector, f"dev: {args.data.name}", dev_images(args.data, images), args.shape, misses)
    if "degraded" in suites:
        chain = (s for how in (args.degrade or DEGRADATIONS) for s in dev_images(args.data, images, how))
        evaluate(detector, f"degraded: {args.data.name}", chain, args.shape, misses)
    if "synthetic" in suites:
        per_class = min(args.per_class, args.limit or args.per_class)
        evaluate(
            detector,
            f"synthetic: {per_class} per class, seed {args.seed}",
            synthetic_images(
                args.data if images else None,
                images,
                per_class,
                args.seed,
                args.classes.split(",") if args.classes else None,
            ),
            args.shape,
            misses,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
