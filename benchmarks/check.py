"""Face-detail benchmark of ``blur check``: is a redaction told from a face by measurement?

Every picture is redacted here with blur's own ``Redactor`` in each style and shape, and with
three stand-in fills that are no style of blur (flat grey, a heavy Gaussian blur of the face,
luminance noise over a few average colours), so the measure is not tuned to one fill. Faces are
also covered by half (left half black, top or bottom half in blur's fill). Then the check's
face detector (at the check's threshold) looks at each picture, and every detection is measured
with ``blur.detail.measure`` and judged with ``blur.check.blank``. Labels:

* ``fill``: the detection's centre lies on a redacted pixel (the redaction seen again; a box
  that takes in the neck or the background beside the fill counts here too);
* ``face``: an unredacted face (a labelled face box in faces-dev, or a detection scoring 0.3 or
  more in the unredacted samples and video frames) -- none may be judged blank;
* ``half``: a detection on a half-covered face -- a picture with one must still fail;
* ``other``: anything else (torsos, background): judged by the same rule.

Pictures alternate between a "dev" and a "held" split (the thresholds were set on dev).

    python benchmarks/check.py         # samples, 40 faces-dev photos, 6 Megamind frames
    python benchmarks/check.py --limit 10 --frames 2

With ``--outputs N`` it also does what a user does, on N more faces-dev photos (not those of
the detail table: the photos between them) and the two sample photos: ``blur scan``, then
``blur render`` in every style and shape, then ``blur check`` with and without the regions file,
and it counts the outputs that pass. Then, to be sure that passing is not blindness, it renders
each photo again with its best-scoring face left clear, or half of it covered, and counts
how many of those the check fails, given the regions file the render should have followed, the
regions file with that face's track deleted (as a person might), and none:

    python benchmarks/check.py --limit 0 --frames 0 --outputs 30

Images are read where they lie (../shared) and never copied into the repository; outputs are
written to a temporary folder.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
from masks import redaction_mask

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blur import check, detail, detectors, pipeline, tracking  # noqa: E402
from blur.media import video  # noqa: E402
from blur.redact import STYLES, Redactor  # noqa: E402
from blur.settings import Settings  # noqa: E402

SHARED = ROOT.parent / "shared"
FACES = SHARED / "eval" / "faces-dev"
MEGAMIND = SHARED / "media" / "Megamind.avi"


class FlatGrey:
    """Stand-in fill: flat mid-grey."""

    def __init__(self, rng=None):
        pass

    def fill(self, roi):
        return np.full_like(roi, 128)


class HeavyBlur:
    """Stand-in fill: the face itself under a Gaussian blur of a quarter of its size."""

    def __init__(self, rng=None):
        pass

    def fill(self, roi):
        sigma = max(2.0, 0.25 * max(roi.shape[:2]))
        return cv2.GaussianBlur(roi, (0, 0), sigma)


class LumaNoise:
    """Stand-in fill: a few average colours, smoothed, with fine noise in luminance only."""

    def __init__(self, rng=None):
        self.rng = rng or np.random.default_rng(0)

    def fill(self, roi):
        h, w = roi.shape[:2]
        coarse = cv2.resize(roi, (3, 3), interpolation=cv2.INTER_AREA).astype(np.float32)
        out = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
        out = cv2.GaussianBlur(out, (0, 0), max(1.0, 0.06 * max(w, h)))
        noise = cv2.GaussianBlur(self.rng.normal(0, 10, (h, w)).astype(np.float32), (0, 0), 0.7)
        return np.clip(out + noise[..., None], 0, 255).astype(np.uint8)


STAND_INS = {"flatgrey": FlatGrey, "heavyblur": HeavyBlur, "lumanoise": LumaNoise}
RENDERS = [(s, sh) for s in ("blur", "pixelate", "solid") for sh in ("ellipse", "box")] + [
    (name, "ellipse") for name in STAND_INS
]


def jpeg(rgb: np.ndarray) -> np.ndarray:
    """Through JPEG quality 95, as blur writes a JPEG still."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def is_face(box, faces) -> bool:
    """Does a detection match a face box (IoU >= 0.25, or the face's centre inside it with
    areas within a factor of 5)?"""
    for g in faces:
        ix = max(0.0, min(box[2], g[2]) - max(box[0], g[0]))
        iy = max(0.0, min(box[3], g[3]) - max(box[1], g[1]))
        ga = (g[2] - g[0]) * (g[3] - g[1])
        ba = (box[2] - box[0]) * (box[3] - box[1])
        if ix * iy / (ga + ba - ix * iy + 1e-9) >= 0.25:
            return True
        cx, cy = (g[0] + g[2]) / 2, (g[1] + g[3]) / 2
        if box[0] <= cx <= box[2] and box[1] <= cy <= box[3] and 0.2 < ga / max(ba, 1) < 5:
            return True
    return False


class Bench:
    def __init__(self):
        self.redact_with = detectors.build(Settings(kinds=("face",)))[0]
        self.checker = detectors.build(check.check_settings(Settings(kinds=("face",))))[0]
        # (family, variant, label, split) -> [detections, judged blank]; files likewise.
        self.found = defaultdict(lambda: [0, 0])
        self.files = defaultdict(lambda: [0, 0, 0])  # pictures, clean, clean with no detection
        self.floor = defaultdict(lambda: np.inf)  # lowest fine detail of an unredacted face
        self.top = defaultdict(float)  # highest score per label

    def look(self, rgb, family, variant, split, faces, mask=None, half=False):
        found = self.checker.detect(rgb)
        luma = detail.grey(rgb)
        h, w = rgb.shape[:2]
        clean, seen = True, False
        for box, score in zip(found.xyxy, found.score):
            if score < 0.1:
                continue
            box = [float(v) for v in box]
            seen = True
            cx = int(min(w - 1, max(0, (box[0] + box[2]) / 2)))
            cy = int(min(h - 1, max(0, (box[1] + box[3]) / 2)))
            face = is_face(box, faces)
            if half:
                label = "half" if face else "other"
            elif mask is not None and mask[cy, cx]:
                label = "fill"
            else:
                label = "face" if face else "other"
            measured = detail.measure(luma, box)
            blank = check.blank(measured)
            clean &= blank
            self.top[label] = max(self.top[label], float(score))
            tally = self.found[family, variant, label, split]
            tally[0] += 1
            tally[1] += blank
            if label == "face":
                self.floor[split] = min(self.floor[split], measured.fine)
        files = self.files[family, variant, split]
        files[0] += 1
        files[1] += clean
        files[2] += clean and not seen

    def picture(self, rgb, family, split, faces, still=True):
        h, w = rgb.shape[:2]
        self.look(rgb, family, "unredacted", split, faces)
        dets = self.redact_with.detect(rgb)
        tracks = tracking.build_tracks([dets], [None], 1.0, 0, 0, thresholds={"face": 0.12})
        boxes = tracking.boxes_at(tracks, 1)[0].xyxy
        for style, shape in RENDERS:
            out = rgb.copy()
            Redactor(style, 1.3, shape, rng=np.random.default_rng(1)).apply(out, boxes)
            mask = redaction_mask(boxes, w, h, 1.3, shape)
            self.look(jpeg(out) if still else out, family, f"{style}-{shape}", split, faces, mask)
        if not len(faces):
            return
        face = np.asarray(faces, dtype=np.float32).reshape(-1, 4)
        cx, cy = (face[:, 0] + face[:, 2]) / 2, (face[:, 1] + face[:, 3]) / 2
        hw, hh = (face[:, 2] - face[:, 0]) * 0.65, (face[:, 3] - face[:, 1]) * 0.65
        for part, style in (("left", "solid"), ("top", "blur"), ("bottom", "blur")):
            cover = np.stack([cx - hw, cy - hh, cx + hw, cy + hh], axis=1)
            cover[:, {"left": 2, "top": 3, "bottom": 1}[part]] = cx if part == "left" else cy
            out = rgb.copy()
            Redactor(style, 1.0, "box", rng=np.random.default_rng(2)).apply(out, cover)
            self.look(jpeg(out) if still else out, family, f"half-{part}", split, faces, half=True)

    def clear_faces(self, rgb):
        found = self.redact_with.detect(rgb)
        return found.xyxy[found.score >= 0.3].tolist()


def _without(plan, track_id, half=False):
    """A copy of ``plan`` with one track deleted, or with its boxes cut to their top half."""
    plan = copy.deepcopy(plan)
    if not half:
        plan.tracks = [t for t in plan.tracks if t.id != track_id]
        return plan
    for t in plan.tracks:
        if t.id == track_id:
            t.xyxy[:, 3] = (t.xyxy[:, 1] + t.xyxy[:, 3]) / 2
    return plan


def outputs(photos: list[Path], folder: Path) -> None:
    """Scan, render in every style and shape, check: see the module docstring."""
    from blur.settings import Settings

    passing = defaultdict(lambda: [0, 0])  # (style-shape, with regions?) -> [clean, outputs]
    flagged = defaultdict(lambda: [0, 0])  # (case, regions given) -> [failed, outputs]
    for n, src in enumerate(photos):
        plan = pipeline.scan(src, Settings())
        data = plan.to_dict()
        faces = [t for t in plan.tracks if t.kind == "face"]
        for style, shape in RENDERS[:6]:
            settings = Settings(style=style, shape=shape, overwrite=True)
            dst = folder / f"{n}.{style}-{shape}.jpg"
            pipeline.render(src, dst, plan, settings)
            for given in (True, False):
                clean = check.check(dst, settings, data if given else None).clean
                passing[f"{style}-{shape}", given][0] += clean
                passing[f"{style}-{shape}", given][1] += 1
            if not faces or style != "blur":
                continue
            best = max(faces, key=lambda t: float(t.score.max()))
            for case, half in (("one face left clear", False), ("one face half covered", True)):
                wrong = _without(plan, best.id, half)
                bad = folder / f"{n}.{case[-5:]}.{shape}.jpg"
                pipeline.render(src, bad, wrong, settings)
                for given, regions in (
                    ("the regions rendered", data),
                    ("the edited regions", wrong.to_dict()),
                    ("none", None),
                ):
                    failed = not check.check(bad, settings, regions).clean
                    flagged[case, given][0] += failed
                    flagged[case, given][1] += 1
        print(f"  {n + 1}/{len(photos)} {src.name}", file=sys.stderr, flush=True)
    print("blur's outputs that pass blur check (clean / outputs):")
    print(f"  {'style-shape':18} {'with --regions':>15} {'without':>9}")
    for name in sorted({k[0] for k in passing}):
        yes, no = passing[name, True], passing[name, False]
        print(f"  {name:18} {yes[0]:>8}/{yes[1]:<6} {no[0]:>4}/{no[1]:<4}")
    total = [sum(v[i] for k, v in passing.items() if k[1] == g) for g in (True, False) for i in (0, 1)]
    print(f"  {'all':18} {total[0]:>8}/{total[1]:<6} {total[2]:>4}/{total[3]:<4}")
    print("outputs with a face blur should have redacted that fail blur check (failed / outputs):")
    for case in ("one face left clear", "one face half covered"):
        cells = [
            f"{given}: {flagged[case, given][0]}/{flagged[case, given][1]}"
            for given in ("the regions rendered", "the edited regions", "none")
        ]
        print(f"  {case:22} regions given -- " + ", ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=40, help="faces-dev photos (spread evenly)")
    parser.add_argument("--frames", type=int, default=6, help="Megamind frames (spread evenly)")
    parser.add_argument(
        "--outputs",
        type=int,
        default=0,
        help="faces-dev photos (besides the samples) to scan, render and check",
    )
    args = parser.parse_args()
    if args.outputs:
        photos = [ROOT / "samples" / "messi5.jpg", ROOT / "samples" / "astronaut.jpg"]
        if FACES.exists():
            images = json.loads((FACES / "faces.json").read_text())["images"]
            # Every fifth photo from the third: none of the detail table's (every fifth from
            # the first), none of those the scan record's floor was chosen on.
            photos += [FACES / item["file"] for item in images[2::5][: args.outputs]]
        with tempfile.TemporaryDirectory() as folder:
            outputs(photos, Path(folder))
        if not args.limit and not args.frames:
            return
    for name, cls in STAND_INS.items():
        STYLES.setdefault(name, cls)
    bench = Bench()
    for name in ("messi5.jpg", "astronaut.jpg"):
        rgb = cv2.cvtColor(cv2.imread(str(ROOT / "samples" / name)), cv2.COLOR_BGR2RGB)
        bench.picture(rgb, "samples", "dev", bench.clear_faces(rgb))
    if FACES.exists() and args.limit:
        images = json.loads((FACES / "faces.json").read_text())["images"]
        step = max(1, len(images) // args.limit)
        for k, item in enumerate(images[::step][: args.limit]):
            bgr = cv2.imread(str(FACES / item["file"]))
            bench.picture(
                cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), "faces-dev", ("dev", "held")[k % 2], item["boxes"]
            )
    elif args.limit:
        print(f"({FACES} not found: faces-dev left out)")
    if MEGAMIND.exists() and args.frames:
        count = sum(1 for _ in video.frames(MEGAMIND))
        step = max(1, count // args.frames)
        for frame in video.frames(MEGAMIND):
            if frame.index % step == 0 and frame.index // step < args.frames:
                rgb = np.ascontiguousarray(frame.image)
                bench.picture(
                    rgb,
                    "megamind",
                    ("dev", "held")[(frame.index // step) % 2],
                    bench.clear_faces(rgb),
                    still=False,
                )
    print(f"check.blank: fine < {check.BLANK_FINE} or flat >= {check.BLANK_FLAT}\n")
    print(
        f"{'source':10} {'picture':20} {'split':5} {'files':>7} {'clean':>6}  "
        f"{'fill':>11} {'face':>9} {'half':>9} {'other':>11}   (detections: blank/all)"
    )
    for (family, variant, split), (n, clean, _) in sorted(bench.files.items()):
        cells = []
        for label in ("fill", "face", "half", "other"):
            total, blank = bench.found[family, variant, label, split]
            cells.append(f"{blank}/{total}" if total else "-")
        print(
            f"{family:10} {variant:20} {split:5} {n:7d} {clean:6d}  {cells[0]:>11} "
            f"{cells[1]:>9} {cells[2]:>9} {cells[3]:>11}"
        )
    print()
    for label in ("fill", "face", "half", "other"):
        for split in ("dev", "held"):
            total = sum(v[0] for k, v in bench.found.items() if k[2] == label and k[3] == split)
            blank = sum(v[1] for k, v in bench.found.items() if k[2] == label and k[3] == split)
            print(f"{label:6} {split:5} judged blank {blank}/{total}")
    print("highest score: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(bench.top.items())))
    for split in ("dev", "held"):
        print(f"lowest fine detail of an unredacted face ({split}): {bench.floor[split]:.2f}")
    halves = [(k, v) for k, v in bench.files.items() if k[1].startswith("half")]
    print(
        f"pictures with a half-covered face judged clean: {sum(v[1] for _, v in halves)}/"
        f"{sum(v[0] for _, v in halves)}, of which the detector found nothing in "
        f"{sum(v[2] for _, v in halves)}"
    )


if __name__ == "__main__":
    main()
