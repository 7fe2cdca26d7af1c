"""Licence-plate benchmark on a labelled photo set (default ../shared/eval/plates-dev).

Prints, per country folder and overall:
- coverage: share of labelled plates with >= 70 % of their box inside the redacted region
  (the detector's boxes drawn with ``blur.redact.region_masks`` and the default mask settings);
- full: share of plates covered >= 95 % (the whole plate hidden, not just most of it);
- recall@0.5: share of plates matched by a detected box with IoU >= 0.5 (boxes as detected);
- false/img: detected regions that touch no labelled plate (less than 25 % of a plate and less
  than half of the region on one), per image. Unlabelled plates count as false, so this is an
  upper bound;
- ms/img: detector time per image (median over images x repeat, after a warm-up).

    python benchmarks/plates.py
    python benchmarks/plates.py --set max_side=960 --threads 2 --misses
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

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SET = ROOT.parent / "shared" / "eval" / "plates-dev"
# Other installed model files to compare against (only used when asked for with --models).
# ppocrv6 needs `pip install --no-deps rapidocr==3.10.0` (its dependencies would add
# opencv-python-headless, a second cv2 build, so it is not a dependency of blur).
MODEL_SETS = {
    "ppocrv4": {"det": ("rapidocr-onnxruntime",
                        "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"),
                "rec": ("rapidocr-onnxruntime",
                        "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx")},
    "ppocrv6": {"det": ("rapidocr", "rapidocr/models/PP-OCRv6_det_small.onnx"),
                "rec": ("rapidocr", "rapidocr/models/PP-OCRv6_rec_small.onnx")},
}


def region_mask(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixels the renderer would redact for these boxes, with the default mask settings."""
    from blur.redact import region_masks
    from blur.settings import Settings

    s = Settings()
    mask = np.zeros((height, width), dtype=bool)
    for x1, y1, x2, y2, m in region_masks(xyxy, width, height, s.mask_scale, s.shape):
        mask[y1:y2, x1:x2] |= m
    return mask


def score_image(xyxy: np.ndarray, labels: np.ndarray, width: int, height: int) -> dict:
    """Coverage, IoU match and false regions of one image's detections against its labels."""
    from blur.boxes import iou_matrix

    mask = region_mask(xyxy, width, height)
    cover = []
    for x1, y1, x2, y2 in labels.round().astype(int):
        x1, y1 = max(x1, 0), max(y1, 0)
        x2, y2 = min(x2, width), min(y2, height)
        cover.append(mask[y1:y2, x1:x2].mean() if x2 > x1 and y2 > y1 else 1.0)
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
    return {"cover": cover, "matched": list(matched), "false": false}


def degrade(bgr: np.ndarray, labels: np.ndarray, how: str | None):
    """Make the photo harder (see --degrade); labels follow a resize."""
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
    return bgr, labels


def video_speed(path: Path, runs: int, max_frames: int) -> None:
    """Wall time of a whole ``blur`` run (scan + render) on a video: faces alone, faces + plates
    (the default) and faces + plates + text, as the ratio the plate detector costs."""
    import av

    from blur import pipeline
    from blur.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        src = path
        if max_frames:
            src = Path(tmp) / "excerpt.mp4"
            excerpt(path, src, max_frames)
        with av.open(str(src)) as c:
            v = c.streams.video[0]
            facts = f"{v.codec_context.width}x{v.codec_context.height}, {v.frames} frames, " \
                    f"{float(v.average_rate):.2f} fps"
        print(f"\n{path.name} ({facts}); median of {runs} run(s)\n")
        print("| kinds | stride | scan s | total s | CPU s | x faces alone (CPU) |")
        print("|---|---|---|---|---|---|")
        base = None
        for kinds in [("face",), ("face", "plate"), ("face", "plate", "text")]:
            settings = Settings(kinds=kinds, overwrite=True)
            pipeline.detectors_for(settings)  # model loading is not what is measured
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
            strides = [pipeline.frame_stride(d, float(plan.info.fps), settings)
                       for d in pipeline.detectors_for(settings)]
            print(f"| {'+'.join(kinds)} | {'/'.join(map(str, strides))} | "
                  f"{statistics.median(scans):.1f} | {total:.1f} | {cpu:.1f} | {cpu / base:.2f} |")


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
        for i, frame in enumerate(inp.decode(vin)):
            if i >= frames:
                break
            frame.pts = None
            out.mux(vs.encode(frame.reformat(format="yuv420p")))
        out.mux(vs.encode(None))
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="detector keyword, e.g. max_side=960 (repeatable)")
    ap.add_argument("--data", type=Path, default=DEFAULT_SET)
    ap.add_argument("--kind", default="plate", choices=["plate", "text"])
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads (0 = all)")
    ap.add_argument("--repeat", type=int, default=1, help="time each image this many times")
    ap.add_argument("--models", choices=sorted(MODEL_SETS), default=None,
                    help="compare another model pair (default: the one blur ships with)")
    ap.add_argument("--degrade", choices=["motion", "small", "jpeg"], default=None,
                    help="robustness check: horizontal motion blur (1 %% of the width), half "
                         "size, or JPEG quality 20, applied before detection")
    ap.add_argument("--misses", action="store_true", help="list plates covered < 70 %%")
    ap.add_argument("--limit", type=int, help="only the first N images")
    ap.add_argument("--video", type=Path, default=None,
                    help="instead: time whole runs on this video, faces alone vs with plates")
    ap.add_argument("--frames", type=int, default=0, help="--video: only its first N frames")
    ap.add_argument("--runs", type=int, default=1, help="--video: runs per configuration")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.video:
        video_speed(args.video, args.runs, args.frames)
        return 0

    index = args.data / "plates.json"
    if not index.exists():
        print(f"no labelled set at {args.data} (expected plates.json there)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    import cv2

    from blur.detectors import plates as plates_mod, text as text_mod
    from blur.detectors.plates import PlateDetector
    from blur.detectors.text import TextDetector, TextModel

    # Benchmarks pin the thread count so numbers are comparable across machines.
    if args.models:
        text_mod.MODELS = MODEL_SETS[args.models]
    text_mod.shared_model.cache_clear()
    model = TextModel(args.threads)
    # Both detectors take the pinned model (plates.py imported shared_model by name).
    text_mod.shared_model = plates_mod.shared_model = lambda *args, **kwargs: model
    kwargs = {}
    for item in args.overrides:
        key, value = item.split("=", 1)
        kwargs[key] = float(value) if "." in value else int(value)
    detector = (PlateDetector if args.kind == "plate" else TextDetector)(**kwargs)

    images = json.loads(index.read_text())["images"][:args.limit]
    rows: dict[str, dict] = defaultdict(lambda: {"n": 0, "cover": [], "matched": [], "false": 0})
    times = []
    first = cv2.imread(str(args.data / images[0]["file"]))
    detector.detect(np.ascontiguousarray(first[..., ::-1]))  # warm-up
    for item in images:
        bgr = cv2.imread(str(args.data / item["file"]))
        if bgr is None:
            print(f"cannot read {item['file']}", file=sys.stderr)
            return 2
        labels = np.asarray(item["boxes"], dtype=np.float64).reshape(-1, 4)
        bgr, labels = degrade(bgr, labels, args.degrade)
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        for _ in range(args.repeat):
            start = time.perf_counter()
            found = detector.detect(rgb.copy())
            times.append(time.perf_counter() - start)
        scored = score_image(found.xyxy, labels, rgb.shape[1], rgb.shape[0])
        for group in (item["file"].split("/")[0], "all"):
            row = rows[group]
            row["n"] += 1
            row["cover"] += scored["cover"]
            row["matched"] += scored["matched"]
            row["false"] += scored["false"]
        if args.misses and min(scored["cover"]) < 0.7:
            print(f"miss: {item['file']} cover={min(scored['cover']):.2f} "
                  f"boxes={np.round(found.xyxy).astype(int).tolist()}")

    print(f"\n{args.kind} detector {detector.name} {kwargs or ''} "
          f"models {Path(text_mod.MODELS['det'][1]).name} on {args.data.name} "
          f"({os.cpu_count()} CPUs, {args.threads or 'all'} ORT threads)\n")
    print("| set | images | plates | coverage | full | recall@0.5 | false/img | ms/img |")
    print("|---|---|---|---|---|---|---|---|")
    ms = 1000 * statistics.median(times)
    for group in sorted(rows, key=lambda g: (g == "all", g)):
        r = rows[group]
        cover = np.asarray(r["cover"])
        print(f"| {group} | {r['n']} | {len(cover)} | {(cover >= 0.7).mean():.3f} | "
              f"{(cover >= 0.95).mean():.3f} | {np.mean(r['matched']):.3f} | "
              f"{r['false'] / r['n']:.2f} | {ms if group == 'all' else float('nan'):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
