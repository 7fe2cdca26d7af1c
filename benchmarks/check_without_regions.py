"""Can ``blur check`` pass blur's own outputs without the regions file, and still fail every
face left visible? Measured on real photos, with a perfect fill detector as the upper bound.

Each photo is scanned and rendered by blur in every style and shape (the outputs that should
pass), and rendered wrongly: its best-scoring face left clear, or with one half of it (top,
bottom, left or right) left out of the redaction (the outputs that must fail). Every output is
checked with ``blur check`` and no regions file twice: as blur wrote it, carrying its record
(``blur.record``: the regions it was rendered from and the scan's record), and with the record
taken out, as every output was checked before outputs carried it. Each face finding of the
second is then placed against the pixels the render really filled (known here, not to the
check):

* ``on``: the central part of its box (65 %) lies >= 0.8 on the fill: the redaction seen again;
* ``edge``: partly on the fill; ``off``: not on it (``near`` when a fill lies within 3 boxes);
* ``half`` / ``clear``: on the face left (half) visible, in a wrong render.

Then rules that tell a fill from a face are scored as if the check knew the filled pixels
exactly (an oracle: no measurement of the pixels can do better than knowing them):
``on`` passes below ``CLEAR``, ``edge`` below a score cap, ``off`` and ``near`` below
``BESIDE``. And the measurements a check without the oracle could use:

* a fill signature (``signature``): every half of the box's central part is one colour, a
  mosaic of constant blocks, or smooth with chroma that a quadratic surface explains;
* survival: the filled pixels inpainted (the redaction taken away, not undone) and the face
  detector run again: does the finding survive at the check's threshold?

    python benchmarks/check_without_regions.py --set dev --photos 14
    python benchmarks/check_without_regions.py --set held --photos 12
    python benchmarks/check_without_regions.py --set q70 --photos 10     # outputs re-saved q70
    python benchmarks/check_without_regions.py --set small --photos 10   # and halved
    python benchmarks/check_without_regions.py --set dev --record-only --compare-regions
    python benchmarks/check_without_regions.py --video 48   # the sample clip, every style
    python benchmarks/check_without_regions.py --record-sizes

Photos are read where they lie (../shared) and never copied; outputs go to a temporary folder.

Measured (dev: the two samples and 14 faces-dev photos, 96 correct outputs, 64 with half a face
left visible; held-out: 12 other photos, 72 and 48; fresh: 10 more photos, outputs re-saved at
JPEG q70, 60 and 40, or halved and then q70, 60 and 40):

* today, blur's outputs pass 5/96 (dev), 7/72 (held), 4/60 (q70), 4/60 (halved); renders
  with half a face visible pass 2/64, 1/48, 0/40, 3/40 (the two dev ones: the detector finds
  no face at all, e.g. half the astronaut's face beside a black box; the scan's record
  catches it, see ``blur.check_seen.partly_covered``);
* the findings on blur's correct outputs (dev; held): on the fill 595, scoring up to 0.62;
  437, 0.69 -- on its edge 249, 0.60; 194, 0.57 -- beside it 231, 0.47; 174, 0.42 -- away from
  it 35, 0.23; 28, 0.19. Half-covered faces score 0.12-0.89 (medians 0.24 with the top half
  covered, 0.33-0.39 left or right, 0.77 bottom): the edge of a fill and half a face are the
  same to the detector, and no score separates them;
* with the filled pixels known exactly (no check knows them), the rule that passes most
  outputs passes 70/96 and lets 27 of 64 half-covered faces pass (held 55/72 and 17/48; q70
  40/60 and 14/40; halved 45/60 and 19/40, where one face left clear passes too); requiring
  that a finding not survive inpainting protects more half-covered faces (61/64, 40/48,
  37/40, 31/40 fail) but passes 32/96, 27/72, 19/60, 23/60 outputs;
* the fill signature, in all four halves, recognises 39 % of the findings fully on a fill
  (dev and held; 25 % at q70, 17 % halved) and 1 of 196 unredacted faces (0/277 held), but also
  16 of the 20 faces blur redacts in messi5.jpg (out-of-focus spectators), unredacted: a blur
  fill and a small defocused face are made alike, so what it passes, it passes for both.

On video the gap is wider: on 2 s of ``samples/street.mp4`` in blur's default style, the check
without the regions file has 42 visible findings scoring 0.12-0.87; with it, 1 (a plate).
What tells a face blur chose not to redact, or a fill's edge, from a face left visible is what
the scan saw there: the regions file's record (``blur.seen``).

So the outputs carry it. Checked as written, with no regions file (``--record-only``): blur's
outputs pass 90-91/96 (dev, two runs) and 69/72 (held-out), where without the record 5/96 and
7/72 did; every wrong render fails, 80/80 and 60/60 (a face left clear, or half of it: top,
bottom, left, right). Re-saved at q70 (OpenCV writes no comment) the record is gone and the
check behaves as before: 5/60 pass, 50/50 wrong renders fail. The sample clip's first 48 frames
(``--video 48``, shown at 25 fps as in the tests): 6/6 styles and shapes pass, 5/5 wrong
renders fail; the whole 5 s clip in the default style has one visible finding (a plate in its
last frame), as it has given the regions file. The outputs that still fail, fail given the
regions file too: the record carries exactly what the check reads from it
(``--compare-regions``: the same verdict on 176/176 dev outputs).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blur import check, detectors, pipeline  # noqa: E402
from blur.boxes import iou_matrix  # noqa: E402
from blur.media import embedded  # noqa: E402
from blur.redact import union_mask  # noqa: E402
from blur.settings import Settings  # noqa: E402

FACES = ROOT.parent / "shared" / "eval" / "faces-dev"
STYLES = [(s, sh) for s in ("blur", "pixelate", "solid") for sh in ("ellipse", "box")]
WRONG = [
    ("clear", "blur", "ellipse"),
    ("top", "blur", "ellipse"),
    ("bottom", "pixelate", "ellipse"),
    ("left", "solid", "box"),
    ("right", "blur", "box"),
]
CLEAR, BESIDE, REACH, ON = 0.75, 0.5, 3.0, 0.8


def central(box, width, height, frac=0.65):
    x1, y1, x2, y2 = box
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * frac / 2, (y2 - y1) * frac / 2
    return (
        max(int(cx - hw), 0),
        max(int(cy - hh), 0),
        min(int(np.ceil(cx + hw)), width),
        min(int(np.ceil(cy + hh)), height),
    )


def _quadratic_residual(plane):
    h, w = plane.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx, yy = xx / max(w - 1, 1) - 0.5, yy / max(h - 1, 1) - 0.5
    basis = np.stack([np.ones_like(xx), xx, yy, xx * xx, yy * yy, xx * yy], -1).reshape(-1, 6)
    coef, *_ = np.linalg.lstsq(basis, plane.reshape(-1), rcond=None)
    return float(np.sqrt(np.mean((basis @ coef - plane.reshape(-1)) ** 2)))


def fill_like(part):
    """One of blur's fill signatures in a (h, w, 3) Y/Cr/Cb part: one colour (spread <= 2.5
    levels), a mosaic (>= 90 % of rows and columns with a median neighbour step <= 1.5), or
    smooth (quadratic residual: chroma <= 1.0 level, luma <= 5)."""
    if max(part[..., k].std() for k in range(3)) <= 2.5:
        return True
    luma = part[..., 0]
    cols = np.median(np.abs(np.diff(luma, axis=1)), axis=0)
    rows = np.median(np.abs(np.diff(luma, axis=0)), axis=1)
    if (np.sum(cols <= 1.5) + np.sum(rows <= 1.5)) / max(len(cols) + len(rows), 1) >= 0.9:
        return True
    chroma = np.hypot(_quadratic_residual(part[..., 1]), _quadratic_residual(part[..., 2]))
    return chroma <= 1.0 and _quadratic_residual(luma) <= 5.0


def signature(ycc, box):
    """Every half of the box's central part carries a fill signature (None: too small)."""
    a, b, c, d = central(box, ycc.shape[1], ycc.shape[0])
    mx, my = (a + c) // 2, (b + d) // 2
    spans = [(a, b, mx, d), (mx, b, c, d), (a, b, c, my), (a, my, c, d)]
    if any(x2 - x1 < 4 or y2 - y1 < 4 for x1, y1, x2, y2 in spans):
        return None
    return all(fill_like(ycc[y1:y2, x1:x2]) for x1, y1, x2, y2 in spans)


def edited(plan, track_id, part):
    """The plan with one face track deleted ("clear") or cut to the half ``part`` NOT named
    (``top``: the top half is redacted, the bottom half left visible, and so on)."""
    plan = copy.deepcopy(plan)
    if part == "clear":
        plan.tracks = [t for t in plan.tracks if t.id != track_id]
        return plan
    for t in plan.tracks:
        if t.id == track_id:
            centre = (t.xyxy[:, :2] + t.xyxy[:, 2:]) / 2
            side = {"top": 3, "bottom": 1, "left": 2, "right": 0}[part]
            t.xyxy[:, side] = centre[:, side % 2]
    return plan


def degrade(path: Path, how: str) -> None:
    """Re-save an output as a sharing site might: JPEG quality 70, or halved and then q70."""
    if how not in ("q70", "small"):
        return
    bgr = cv2.imread(str(path))
    if how == "small":
        bgr = cv2.resize(bgr, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 70])


def strip_record(path: Path) -> None:
    """Take blur's record (its comment segments) out of a JPEG, leaving every other byte."""
    data = path.read_bytes()
    kept, last = bytearray(), 0
    for marker, start, end in embedded._jpeg_segments(data):
        if marker == 0xFE:
            kept += data[last:start]
            last = end
    path.write_bytes(bytes(kept + data[last:]))


def measure(
    src: Path,
    folder: Path,
    n: int,
    how: str,
    face_detector,
    labels,
    pixels: bool = True,
    compare: bool = False,
) -> list[dict]:
    """Every face finding of ``blur check`` on the outputs of one photo, placed and measured
    (``pixels``: with the record taken out, as the check saw them before outputs carried it);
    and the verdict of ``blur check`` on each output as blur wrote it, record included."""
    plan = pipeline.scan(src, Settings())
    faces = [t for t in plan.tracks if t.kind == "face"]
    renders = [("good", s, sh, plan) for s, sh in STYLES]
    if faces:
        best = max(faces, key=lambda t: float(t.score.max()))
        target = best.xyxy[int(np.argmax(best.score))]
        renders += [(part, s, sh, edited(plan, best.id, part)) for part, s, sh in WRONG]
    rows = []
    original = check.check(src, Settings()) if pixels else None
    for f in original.findings if pixels else []:
        if f.kind == "face":
            is_face = bool(len(labels)) and iou_matrix(np.array([f.box], np.float32), labels).max() >= 0.3
            rows.append(
                dict(
                    case="original",
                    style="-",
                    output=f"{n}.original",
                    score=f.score,
                    place="face" if is_face or f.score >= 0.3 else "other",
                    signature=signature(_ycc(cv2.imread(str(src))), f.box),
                )
            )
    for case, style, shape, drawn in renders:
        settings = Settings(style=style, shape=shape, overwrite=True)
        dst = folder / f"{n}.{case}.{style}-{shape}.jpg"
        pipeline.render(src, dst, drawn, settings)
        degrade(dst, how)  # a re-saved file loses the record
        carried = check.check(dst, settings)
        row = dict(case=case, style=f"{style}-{shape}", carried=carried.clean, judged=carried.regions)
        if compare:  # the same file checked against the regions file it was rendered from
            row["given"] = check.check(dst, settings, drawn.to_dict()).clean
        rows.append(row)
        if not pixels:
            continue
        strip_record(dst)
        bgr = cv2.imread(str(dst))
        h, w = bgr.shape[:2]
        k = w / plan.info.width
        boxes = tracks_at(drawn) * k
        kinds = [t.kind for t in drawn.tracks]
        mask = union_mask(boxes, w, h, settings.mask_scale, shape, kinds)
        inpainted = cv2.inpaint(
            bgr, cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)), 3, cv2.INPAINT_TELEA
        )
        after = face_detector.detect(cv2.cvtColor(inpainted, cv2.COLOR_BGR2RGB))
        ycc = _ycc(bgr)
        result = check.check(dst, settings)
        rows.append(dict(case=case, style=f"{style}-{shape}", output=dst.name, clean=result.clean))
        for f in result.findings:
            if f.kind != "face":
                continue
            box = np.array(f.box, np.float32)
            a, b, c, d = central(box, w, h)
            on = float(mask[b:d, a:c].mean()) if c > a and d > b else 0.0
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            rw, rh = (box[2] - box[0]) * REACH / 2, (box[3] - box[1]) * REACH / 2
            near = bool(
                mask[max(int(cy - rh), 0) : int(cy + rh) + 1, max(int(cx - rw), 0) : int(cx + rw) + 1].any()
            )
            hit = iou_matrix(box[None], after.xyxy).reshape(-1) >= 0.3 if len(after) else []
            survives = float(after.score[hit].max()) if np.any(hit) else 0.0
            on_target = case != "good" and iou_matrix(box[None], target[None] * k)[0, 0] >= 0.25
            place = "on" if on >= ON else "edge" if on > 0.05 else "near" if near else "off"
            rows.append(
                dict(
                    case=case,
                    style=f"{style}-{shape}",
                    output=dst.name,
                    score=f.score,
                    place=place,
                    survives=survives,
                    target=on_target,
                    signature=signature(ycc, box),
                )
            )
    return rows


def tracks_at(plan) -> np.ndarray:
    return np.array([t.xyxy[0] for t in plan.tracks], np.float32).reshape(-1, 4)


def _ycc(bgr):
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb).astype(np.float32)


def passes(f, cap, survival=None):
    """Does a finding pass the oracle rule with an ``edge`` score cap (and, when given, only
    when it does not survive inpainting from that score)?"""
    if f["score"] >= CLEAR:
        return False
    if f["place"] == "on":
        return True
    if f["place"] == "near":
        return f["score"] < BESIDE
    if f["place"] == "off":
        return False
    return f["score"] < cap and (survival is None or f["survives"] < survival)


def report_carried(rows: list[dict]) -> None:
    """``blur check OUTPUT`` on the files as blur wrote them, each carrying its record."""
    rows = [r for r in rows if "carried" in r]
    judged = {}
    for r in rows:
        judged[r["judged"]] = judged.get(r["judged"], 0) + 1
    print("blur check without --regions, on the outputs as written (the record carried in them):")
    print("  judged against: " + ", ".join(f"{k} {v}" for k, v in sorted(judged.items())))
    good = [r for r in rows if r["case"] == "good"]
    print(f"  blur's outputs pass            {sum(r['carried'] for r in good)}/{len(good)}")
    for case in ("clear", "top", "bottom", "left", "right"):
        bad = [r for r in rows if r["case"] == case]
        if bad:
            print(f"  {case:6} renders fail           {sum(not r['carried'] for r in bad)}/{len(bad)}")
    bad = [r for r in rows if r["case"] != "good"]
    print(f"  all wrong renders fail         {sum(not r['carried'] for r in bad)}/{len(bad)}")
    both = [r for r in rows if "given" in r]
    if both:
        same = sum(r["given"] == r["carried"] for r in both)
        print(f"  same verdict given the regions file it was rendered from: {same}/{len(both)}")


def report(rows: list[dict]) -> None:
    report_carried(rows)
    print()
    outputs = {r["output"]: r for r in rows if "clean" in r}
    if not outputs:
        return
    findings = defaultdict(list)
    for r in rows:
        if "place" in r and r["case"] != "original":
            findings[r["output"]].append(r)
    print("blur check without regions, the record taken out (outputs clean / all):")
    for key in sorted({(o["case"], o["style"]) for o in outputs.values()}):
        group = [o for o in outputs.values() if (o["case"], o["style"]) == key]
        print(f"  {key[0]:7} {key[1]:17} {sum(o['clean'] for o in group)}/{len(group)}")
    good = [r for r in rows if r.get("case") == "good" and "place" in r]
    print("\nface findings on blur's correct outputs, by place (count, highest score):")
    for place in ("on", "edge", "near", "off"):
        s = [r["score"] for r in good if r["place"] == place]
        print(f"  {place:5} {len(s):5d} {max(s) if s else 0:.2f}")
    for part in ("clear", "top", "bottom", "left", "right"):
        s = [r["score"] for r in rows if r.get("target") and r["case"] == part]
        if s:
            print(
                f"  {part:6} (face left visible) {len(s):3d} findings, scores "
                f"{min(s):.2f}-{max(s):.2f}, median {np.median(s):.2f}"
            )
    print(
        "\nwith the filled pixels known exactly (oracle), rule: on < "
        f"{CLEAR}, near < {BESIDE}, edge < cap [and not surviving inpainting]:"
    )
    print("  cap   survival  blur's outputs pass   half-covered faces fail   clear faces fail")
    for cap in (0.2, 0.3, 0.45, 0.6):
        for survival in (None, 0.12, 0.2):
            ok = bad = halves = clears = nclear = 0
            for name, o in outputs.items():
                fs = findings.get(name, [])
                fail = any(not passes(f, cap, survival) for f in fs)
                if o["case"] == "good":
                    ok += not fail
                elif o["case"] == "clear":
                    nclear += 1
                    clears += fail
                else:
                    bad += 1
                    halves += fail
            n_good = sum(o["case"] == "good" for o in outputs.values())
            print(
                f"  {cap:<5} {str(survival):8}  {ok:>6}/{n_good:<12} {halves:>6}/{bad:<17} {clears}/{nclear}"
            )
    print("\nfill signature in all four halves (judged a fill / measured):")
    for label, pick in (
        ("findings fully on a fill (any render)", lambda r: r["place"] == "on"),
        (
            "faces in the originals (labelled or >= 0.3)",
            lambda r: r["case"] == "original" and r["place"] == "face",
        ),
        ("other detections in the originals", lambda r: r["case"] == "original" and r["place"] == "other"),
        ("half-covered faces", lambda r: r.get("target") and r["case"] != "clear"),
    ):
        s = [r["signature"] for r in rows if "place" in r and pick(r) and r["signature"] is not None]
        print(f"  {label:46} {sum(s)}/{len(s)}")
    faces = [r["score"] for r in rows if r["case"] == "original" and r["place"] == "face"]
    if faces:
        print(
            "\nfaces caught in the originals, by score: "
            + ", ".join(f"< {m}: {sum(s < m for s in faces)}" for m in (0.2, 0.3, 0.5))
            + f" of {len(faces)}"
        )


def excerpt(src: Path, dst: Path, frames: int, rate: int = 25) -> Path:
    """The first ``frames`` frames of a clip, re-encoded nearly losslessly at ``rate`` frames a
    second (25, as ``tests/test_check_regions.py`` does: the sample's 10 fps frames shown faster,
    so that tracks bridge and pad over more frames)."""
    import av

    from blur.media import video

    with av.open(str(dst), "w") as out:
        stream = None
        for frame in video.frames(src):
            if frame.index >= frames:
                break
            if stream is None:
                stream = out.add_stream("libx264", rate=rate)
                stream.height, stream.width = frame.image.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.options = {"preset": "ultrafast", "crf": "12"}
            image = np.ascontiguousarray(frame.image)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    return dst


def measure_video(folder: Path, frames: int) -> list[dict]:
    """blur's outputs of the sample clip's first ``frames`` frames in every style and shape,
    and wrong renders (the best face track deleted, or cut to one half), checked as written."""
    src = excerpt(ROOT / "samples" / "street.mp4", folder / "street.mp4", frames)
    plan = pipeline.scan(src, Settings())
    faces = [t for t in plan.tracks if t.kind == "face"]
    best = max(faces, key=lambda t: float(t.score.max()))
    renders = [("good", s, sh, plan) for s, sh in STYLES]
    renders += [(part, s, sh, edited(plan, best.id, part)) for part, s, sh in WRONG]
    rows = []
    for case, style, shape, drawn in renders:
        settings = Settings(style=style, shape=shape, overwrite=True, preset="ultrafast")
        dst = folder / f"{case}.{style}-{shape}.mp4"
        pipeline.render(src, dst, drawn, settings)
        result = check.check(dst, settings)
        visible = [f"{f.kind} {f.score:.2f} frame {f.frame}" for f in result.visible]
        print(f"  {case:6} {style}-{shape:8} clean={result.clean} {visible}", file=sys.stderr, flush=True)
        rows.append(dict(case=case, style=f"{style}-{shape}", carried=result.clean, judged=result.regions))
    return rows


def record_sizes() -> None:
    """The record's size (as carried: base64 of zlib of JSON) on the samples, per frame, and
    an hour of such footage at 25 fps."""
    from blur import record

    for name in ("messi5.jpg", "street.mp4"):
        plan = pipeline.scan(ROOT / "samples" / name, Settings())
        text = record.encode(record.record_of(plan, Settings().mask_scale))
        candidates = sum(len(d) for d in plan.seen)
        per_frame = len(text) / plan.frame_count
        print(
            f"  {name:12} {plan.frame_count:4d} frame(s), {len(plan.tracks):3d} tracks, "
            f"{candidates:5d} candidates: {len(text):7,d} bytes, {per_frame:6.0f} a frame"
            + (f", an hour at 25 fps: {per_frame * 25 * 3600 / 1e6:.0f} MB" if plan.frame_count > 1 else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=("dev", "held", "q70", "small"), default="dev")
    parser.add_argument("--photos", type=int, default=14)
    parser.add_argument(
        "--record-only", action="store_true", help="only the check of the outputs as written (faster)"
    )
    parser.add_argument(
        "--compare-regions", action="store_true", help="also check each output given its regions file"
    )
    parser.add_argument(
        "--video", type=int, metavar="FRAMES", help="samples/street.mp4's first FRAMES frames"
    )
    parser.add_argument("--record-sizes", action="store_true", help="the record's size on the samples")
    args = parser.parse_args()
    if args.record_sizes:
        return record_sizes()
    if args.video:
        with tempfile.TemporaryDirectory() as folder:
            return report_carried(measure_video(Path(folder), args.video))
    if not FACES.exists():
        sys.exit(f"{FACES} not found")
    images = json.loads((FACES / "faces.json").read_text())["images"]
    # dev: the samples and every fifth faces-dev photo from the third (the photos of
    # benchmarks/check.py --outputs); held: from the fifth; fresh (q70, small): from the second.
    start = {"dev": 2, "held": 4, "q70": 1, "small": 1}[args.set]
    picked = images[start::5][: args.photos]
    photos = [(FACES / i["file"], np.array(i["boxes"], np.float32).reshape(-1, 4)) for i in picked]
    if args.set == "dev":
        photos = [
            (ROOT / "samples" / n, np.zeros((0, 4), np.float32)) for n in ("messi5.jpg", "astronaut.jpg")
        ] + photos
    face_detector = detectors.build(check.check_settings(Settings(kinds=("face",))))[0]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for n, (src, labels) in enumerate(photos):
            rows += measure(
                src,
                Path(folder),
                n,
                args.set,
                face_detector,
                labels,
                not args.record_only,
                args.compare_regions,
            )
            print(f"  {n + 1}/{len(photos)} {src.name}", file=sys.stderr, flush=True)
    report(rows)


if __name__ == "__main__":
    main()
