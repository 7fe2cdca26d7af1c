"""Recall benchmark: blur's own face detection path on a labelled photo set.

For every labelled face it asks the question that matters for anonymisation: is the face hidden?
A face counts as *covered* when at least 70 % of its labelled box lies inside the union of the
regions blur would redact (detected boxes grown by ``Settings.mask_scale`` and drawn in
``Settings.shape``, with the very masks ``blur.redact.region_masks`` produces). Recall at IoU 0.3
and 0.5 and precision at IoU 0.3 (one-to-one greedy matching) are printed beside it, by face
height. The labelled boxes are not exhaustive, so precision is a lower bound.

    python benchmarks/recall.py                          # ../shared/eval/faces-dev, Settings()
    python benchmarks/recall.py PATH --set face_threshold=0.3 --set face_flip=true

The images are read where they lie and never copied into the repository.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from masks import covered_share, redaction_mask

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SET = ROOT.parent / "shared" / "eval" / "faces-dev"
BINS = (("<20", 0, 20), ("20-50", 20, 50), (">50", 50, 1e9), ("all", 0, 1e9))
COVERED = 0.7


@dataclass
class Tally:
    """Counts for one bin of face heights."""

    faces: int = 0
    covered: int = 0
    hit30: int = 0
    hit50: int = 0
    preds: int = 0
    preds_ok: int = 0


@dataclass
class Result:
    tallies: dict[str, Tally] = field(default_factory=lambda: {b[0]: Tally() for b in BINS})
    images: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # process CPU time (all threads): steadier than wall time on a busy machine
    area_redacted: float = 0.0  # share of all image pixels inside some redaction mask
    area_faces: float = 0.0  # share of all image pixels inside some labelled box

    def add(self, other: Result) -> None:
        for name, t in other.tallies.items():
            mine = self.tallies[name]
            for f in fields(Tally):
                setattr(mine, f.name, getattr(mine, f.name) + getattr(t, f.name))
        self.images += other.images
        self.seconds += other.seconds
        self.cpu_seconds += other.cpu_seconds
        self.area_redacted += other.area_redacted
        self.area_faces += other.area_faces


def load_set(path: Path) -> list[dict]:
    """The labelled images of a set in the faces-dev format (see its README)."""
    data = json.loads((path / "faces.json").read_text())
    return data["images"]


def greedy_match(gt: np.ndarray, pred: np.ndarray, threshold: float) -> np.ndarray:
    """One-to-one matching, best IoU first: for each prediction, the labelled box it matched or -1."""
    from blur.boxes import iou_matrix

    match = np.full(len(pred), -1, dtype=np.int64)
    if len(gt) == 0 or len(pred) == 0:
        return match
    iou = iou_matrix(gt.astype(np.float32), pred.astype(np.float32))
    pairs = np.argwhere(iou >= threshold)
    order = np.argsort(-iou[pairs[:, 0], pairs[:, 1]], kind="stable")
    gt_ok = np.zeros(len(gt), dtype=bool)
    for g, p in pairs[order]:
        if not gt_ok[g] and match[p] < 0:
            gt_ok[g] = True
            match[p] = g
    return match


def score_image(
    gt: np.ndarray, pred: np.ndarray, width: int, height: int, scale: float, shape: str
) -> Result:
    """Tallies of one image: ``gt`` labelled boxes, ``pred`` detected boxes (both xyxy)."""
    from blur.boxes import clip_to_image

    res = Result(images=1)
    mask = redaction_mask(pred, width, height, scale, shape)
    faces = np.zeros((height, width), dtype=bool)
    covered = np.zeros(len(gt), dtype=bool)
    for i, (x1, y1, x2, y2) in enumerate(clip_to_image(gt.astype(np.float32), width, height)):
        if x2 > x1 and y2 > y1:
            covered[i] = covered_share(mask, (x1, y1, x2, y2)) >= COVERED
            faces[y1:y2, x1:x2] = True
    res.area_redacted = mask.mean()
    res.area_faces = faces.mean()
    m30, m50 = greedy_match(gt, pred, 0.3), greedy_match(gt, pred, 0.5)
    hit30 = np.isin(np.arange(len(gt)), m30)
    hit50 = np.isin(np.arange(len(gt)), m50)
    ok30 = m30 >= 0
    gt_h = gt[:, 3] - gt[:, 1]
    # A prediction is binned by the height of the face it matched; an unmatched one by its own
    # height scaled to a tight label (CenterFace boxes run from the hairline, labels from the brows).
    pred_h = (pred[:, 3] - pred[:, 1]) * 0.8
    pred_h[ok30] = gt_h[m30[ok30]]
    for name, lo, hi in BINS:
        sel = (gt_h >= lo) & (gt_h < hi)
        t = res.tallies[name]
        t.faces += int(sel.sum())
        t.covered += int(covered[sel].sum())
        t.hit30 += int(hit30[sel].sum())
        t.hit50 += int(hit50[sel].sum())
        psel = (pred_h >= lo) & (pred_h < hi)
        t.preds += int(psel.sum())
        t.preds_ok += int(ok30[psel].sum())
    return res


def redacted_faces(rgb: np.ndarray, settings) -> np.ndarray:
    """The face boxes blur redacts in one still: the pipeline's own detection and planning
    (``detectors.build`` + ``detect``, then the still-photo tracking step that drops weak
    candidates, and large face boxes scoring low), faces only."""
    from blur import detectors, pipeline, tracking

    found = pipeline.detect(detectors.build(settings), rgb)
    # (Older versions had no weak detections and no per-kind thresholds: this still measures them.)
    options = {"thresholds": pipeline._thresholds(settings)} if hasattr(pipeline, "_thresholds") else {}
    if "frame_height" in inspect.signature(tracking.build_tracks).parameters:
        options["frame_height"] = rgb.shape[0]  # the large-face rule, as pipeline.scan applies it
    tracks = tracking.build_tracks([found], [None], 1.0, 0, 0, **options)
    boxes = tracking.boxes_at(tracks, 1)[0]
    return boxes.xyxy[boxes.kind == "face"]


def run(path: Path, settings, limit: int | None = None) -> Result:
    """Run blur's still-photo path on every image of the set and score it."""
    from blur.media import image

    settings = settings.merged(kinds=("face",))  # plates are not what is measured here
    total = Result()
    items = load_set(path)[:limit]
    # Warm up once so model loading and first-call allocation are not timed.
    redacted_faces(np.zeros((64, 64, 3), dtype=np.uint8), settings)
    for item in items:
        rgb = image.read(path / item["file"]).rgb
        start, cpu = time.perf_counter(), time.process_time()
        pred = redacted_faces(rgb, settings)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        gt = np.asarray(item["boxes"], dtype=np.float32).reshape(-1, 4)
        height, width = rgb.shape[:2]
        res = score_image(gt, pred, width, height, settings.mask_scale, settings.shape)
        res.seconds, res.cpu_seconds = elapsed, cpu
        total.add(res)
    return total


def table(res: Result, title: str = "") -> str:
    rows = [title] if title else []
    rows.append(f"{'height':>7} {'faces':>6} {'cover':>6} {'R@.3':>6} {'R@.5':>6} {'preds':>6} {'P@.3':>6}")
    for name, *_ in BINS:
        t = res.tallies[name]
        f = max(t.faces, 1)
        p = t.preds_ok / t.preds if t.preds else float("nan")
        rows.append(
            f"{name:>7} {t.faces:6d} {t.covered / f:6.3f} {t.hit30 / f:6.3f} "
            f"{t.hit50 / f:6.3f} {t.preds:6d} {p:6.3f}"
        )
    n = max(res.images, 1)
    rows.append(
        f"{res.images} images, {1000 * res.seconds / n:.0f} ms/image "
        f"({1000 * res.cpu_seconds / n:.0f} ms CPU), "
        f"redacted {100 * res.area_redacted / n:.1f}% of pixels "
        f"(labelled faces {100 * res.area_faces / n:.1f}%)"
    )
    return "\n".join(rows)


def parse_overrides(items: list[str]) -> dict:
    """``key=value`` pairs; values are Python literals (0.3, True, (1, 2)) or plain strings."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = {"true": True, "false": False}.get(value.lower(), value)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "path", nargs="?", type=Path, default=DEFAULT_SET, help="labelled set (faces.json + images/)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a Settings field (repeatable)",
    )
    parser.add_argument("--limit", type=int, help="only the first N images")
    args = parser.parse_args(argv)
    if not (args.path / "faces.json").is_file():
        print(f"no labelled set at {args.path} (expected faces.json)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from blur.settings import Settings

    settings = Settings().merged(**parse_overrides(args.overrides))
    res = run(args.path, settings, args.limit)
    changed = {
        f.name: getattr(settings, f.name)
        for f in fields(settings)
        if getattr(settings, f.name) != getattr(Settings(), f.name)
    }
    print(table(res, f"{args.path.name}: Settings({', '.join(f'{k}={v!r}' for k, v in changed.items())})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
