"""Change-driven analysis, measured: codec noise, and incremental against full passes.

For each video it prints

1. codec noise: the share of 32-pixel tiles in which some pixel's grey level moved by more than
   N levels between consecutive decoded frames, for several N (real motion is what remains at
   large N; the gap below it is noise), and at the small-face pass's input the share of tiles
   holding at least P pixels that moved by more than ``NOISE_LEVELS``;
2. for each pass of the face detector: how many input pixels the incremental network
   (``blur.schedule.ChangeDrivenNetwork``) analysed against a full pass on every frame, the
   largest difference of the patched heatmap from a full pass's, and detections lost: boxes a
   full pass finds at or above the candidate threshold that the incremental pass does not
   (IoU < 0.5 with all its boxes);
3. with ``--text``, the text detector behind plates (``blur.text_changes``): on every
   ``--every``-th frame, the lines found by re-detecting only in crops around changed tiles
   against a full pass on the same frame: lines lost (a full pass's line matched by no line at
   IoU >= 0.5), lines uncovered (a full pass's line box less than 99 % covered by the crop-driven
   lines' boxes grown as ``--text`` redacts them), and the share of a full pass's input pixels
   used. ``--plates`` also compares the plate detector's boxes (a plate box less than 90 %
   covered by the crop-driven plate boxes counts; a pixel or two of jitter at a plate's edge
   does not).
   ``plates`` in place of a video path is a generated clip: cars with plates drawn by
   ``plate_synth.py`` driving across a still frame of vtest.avi, H.264-encoded; with
   ``--plates`` it is also scanned as ``blur`` does (tracks bridging the frames between text
   passes), both ways (``--analyse changes`` and ``every-frame``), and every drawn plate less
   than 95 % covered on a frame is counted.

    python benchmarks/change.py ../shared/media/vtest.avi samples/street.mp4 --frames 150
    python benchmarks/change.py clip.mp4 --margin 0 --context 1      # another geometry
    python benchmarks/change.py ../shared/media/vtest.avi samples/street.mp4 --frames 300 \
        --only-noise                                                 # the noise table only
    python benchmarks/change.py ../shared/media/vtest.avi plates --frames 90 --text --no-faces
    python benchmarks/change.py ../shared/media/vtest.avi --frames 60 --noise-pixels 16
                                        # another rule for a changed tile (default NOISE_PIXELS)
    python benchmarks/change.py ../shared/media/vtest.avi --frames 60 --reach
                                        # how far the face map depends on the input (no noise)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
VTEST = ROOT.parent / "shared" / "media" / "vtest.avi"

LEVELS = (4, 8, 12, 16, 24, 32)


def frames(path: Path, limit: int):
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i >= limit:
                return
            yield f.to_ndarray(format="rgb24")


def noise(path: Path, limit: int) -> str:
    prev, counts = None, {n: [] for n in LEVELS}
    for rgb in frames(path, limit):
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.int16)
        if prev is not None:
            d = np.abs(grey - prev)
            h, w = d.shape[0] // 32 * 32, d.shape[1] // 32 * 32
            tiles = d[:h, :w].reshape(h // 32, 32, w // 32, 32).max(axis=(1, 3))
            for n in LEVELS:
                counts[n].append((tiles > n).mean())
        prev = grey
    return "tiles changed beyond N grey levels: " + ", ".join(
        f"N={n} {np.mean(counts[n]):.3f}" for n in LEVELS
    )


def noise_at_input(path: Path, limit: int, pixels=(1, 4, 8, 16, 32)) -> str:
    """At the small-face pass's input (resized as the network sees it, 32-pixel tiles): the
    share of tiles in which at least P pixels have a channel that moved by more than
    ``NOISE_LEVELS`` between consecutive frames."""
    from blur.detectors.centerface import pass_scales
    from blur.detectors.centerface_maps import network_input
    from blur.incremental import NOISE_LEVELS, TILE

    prev, shares = None, {p: [] for p in pixels}
    for rgb in frames(path, limit):
        scale = pass_scales(rgb.shape[1], rgb.shape[0])[-1]
        resized = network_input(rgb, scale)[0]
        if prev is not None:
            moved = cv2.absdiff(resized, prev).max(axis=2) > NOISE_LEVELS
            h, w = moved.shape
            count = moved.reshape(h // TILE, TILE, w // TILE, TILE).sum(axis=(1, 3))
            for p in pixels:
                shares[p].append((count >= p).mean())
        prev = resized
    return f"small-face pass input, tiles with >= P pixels moved beyond {NOISE_LEVELS} levels: " + ", ".join(
        f"P={p} {np.mean(shares[p]):.3f}" for p in pixels
    )


class Recorder:
    """Wraps a network: remembers the last output of each pass key (for comparison)."""

    def __init__(self, margin: int, context: int, noise_pixels: int | None = None):
        from blur.schedule import ChangeDrivenNetwork

        self.cls, self.margin, self.context = ChangeDrivenNetwork, margin, context
        self.noise_pixels = noise_pixels
        self.nets: dict = {}
        self.full: dict = {}

    def incremental(self, key, forward, levels=1.0):
        net = self.nets.get(key)
        if net is None:
            net = self.nets[key] = self.cls(forward, levels, self.margin, self.context, self.noise_pixels)
        return net


def compare(
    path: Path,
    limit: int,
    margin: int,
    context: int,
    small_face_model: str = "centerface",
    noise_pixels: int | None = None,
) -> list[str]:
    from blur.boxes import iou_matrix
    from blur.detectors.centerface import CenterFaceDetector

    dets = [CenterFaceDetector(threshold=0.12, candidate_threshold=0.1, small_face_model=small_face_model)]
    rec = [Recorder(margin, context, noise_pixels) for _ in dets]
    full_pixels = [0] * len(dets)
    lost = [0] * len(dets)
    found = [0] * len(dets)
    worst = [0.0] * len(dets)
    best_lost = [0.0] * len(dets)
    n = 0
    for rgb in frames(path, limit):
        n += 1
        for k, det in enumerate(dets):
            seen = {}

            def full_forward(key, forward, levels=1.0, seen=seen, k=k):
                def run(blob):
                    out = forward(blob)
                    seen[key] = out
                    full_pixels[k] += (
                        blob.shape[0] * blob.shape[1] if blob.ndim == 3 else blob.shape[2] * blob.shape[3]
                    )
                    return out

                return run

            a = det.detect(rgb, incremental=full_forward)
            # A copy: the text model reuses its last answer for the same image object.
            b = det.detect(rgb.copy(), incremental=rec[k].incremental)
            for key, out in seen.items():
                patched = rec[k].nets[key].outputs
                worst[k] = max(worst[k], float(np.abs(out[0] - patched[0]).max()))
            found[k] += len(a)
            if len(a):
                match = iou_matrix(a.xyxy, b.xyxy).max(axis=1, initial=0) if len(b) else np.zeros(len(a))
                lost[k] += int((match < 0.5).sum())
                if (match < 0.5).any():
                    best_lost[k] = max(best_lost[k], float(a.score[match < 0.5].max()))
    lines = []
    for k, det in enumerate(dets):
        used = sum(net.pixels for net in rec[k].nets.values())
        fulls = sum(net.full_passes for net in rec[k].nets.values())
        lines.append(
            f"{det.name}: input pixels {used / max(full_pixels[k], 1):.3f} of full "
            f"passes ({fulls} full pass(es) over {n} frames x {len(rec[k].nets)} "
            f"pass(es)), largest map difference {worst[k]:.3f}, detections lost "
            f"{lost[k]} of {found[k]} (best score lost {best_lost[k]:.2f})"
        )
    return lines


def reach(
    path: Path, limit: int, contexts=(0, 1, 2, 3), every: int = 10, threshold: float = 0.1
) -> list[str]:
    """How far the face network's map depends on the input, without codec noise: on every
    ``every``-th frame, the small-face pass's heatmap recomputed on windows of 1-3 tiles
    (centred on each heatmap peak above half ``threshold``, and on a few places at random)
    from a crop with ``context`` tiles around them, against the full pass's map on the same
    window. Prints, per context, the largest difference, the largest difference at cells
    scoring at least half ``threshold`` in either map, and the cells that cross ``threshold``
    (one map above it, the other below: a candidate that would be lost or gained)."""
    from blur.detectors.centerface import CenterFaceDetector, pass_scales
    from blur.detectors.centerface_maps import _blob, network_input
    from blur.incremental import TILE

    det = CenterFaceDetector()
    rng = np.random.default_rng(0)
    worst = {c: [0.0, 0.0, 0, 0, 0] for c in contexts}  # max diff, near faces, lost, gained, cells
    windows = 0
    for t, rgb in enumerate(frames(path, limit)):
        if t % every:
            continue
        scale = pass_scales(rgb.shape[1], rgb.shape[0], max_upscale=det.max_upscale)[-1]
        resized, spans = network_input(rgb, scale)
        if len(spans) > 1:
            resized = resized[: spans[0][3], : spans[0][2]]
        full = det._forward(_blob(resized))[0][0, 0]
        rows, cols = resized.shape[0] // TILE, resized.shape[1] // TILE
        s = resized.shape[0] // full.shape[0]
        peaks = np.argwhere(full >= threshold / 2) * s // TILE
        places = [tuple(p) for p in peaks[rng.permutation(len(peaks))[:12]]]
        places += [(rng.integers(rows), rng.integers(cols)) for _ in range(4)]
        for r, c0 in places:
            size = int(rng.integers(1, 4))
            y0, x0 = max(0, r - size // 2), max(0, c0 - size // 2)
            y1, x1 = min(rows, y0 + size), min(cols, x0 + size)
            windows += 1
            for c in contexts:
                cy0, cx0, cy1, cx1 = max(0, y0 - c), max(0, x0 - c), min(rows, y1 + c), min(cols, x1 + c)
                crop = resized[cy0 * TILE : cy1 * TILE, cx0 * TILE : cx1 * TILE]
                heat = det._forward(_blob(crop))[0][0, 0]
                k = TILE // s
                part = heat[(y0 - cy0) * k : (y1 - cy0) * k, (x0 - cx0) * k : (x1 - cx0) * k]
                ref = full[y0 * k : y1 * k, x0 * k : x1 * k]
                diff = np.abs(part - ref)
                near = np.maximum(part, ref) >= threshold / 2
                w = worst[c]
                w[0] = max(w[0], float(diff.max()))
                w[1] = max(w[1], float(diff[near].max(initial=0)))
                w[2] += int(((ref >= threshold) & (part < threshold)).sum())
                w[3] += int(((ref < threshold) & (part >= threshold)).sum())
                w[4] += int((ref >= threshold).sum())
    return [
        f"context {c} tile(s): largest map difference {w[0]:.3f}, near faces {w[1]:.3f}; cells crossing "
        f"{threshold}: {w[2]} lost, {w[3]} gained of {w[4]} ({windows} windows)"
        for c, w in worst.items()
    ]


def plate_clip(path: Path, count: int, seed: int = 3, boxes: list | None = None) -> Path:
    """A fixed camera (the first frame of vtest.avi, still) and cars' plates driving across it,
    one left to right, one right to left and slower, one entering from the bottom; plates drawn
    by ``plate_synth.render_plate``, H.264 at CRF 18 (codec noise on every frame). ``boxes``,
    if given, receives each frame's plate boxes (xyxy, the part inside the frame)."""
    import plate_synth

    with av.open(str(VTEST)) as c:
        still = next(c.decode(video=0)).to_ndarray(format="rgb24")
    height, width = still.shape[:2]
    rng = np.random.default_rng(seed)
    plates = []
    for cls, plate_w in (("digits", 90), ("eu_band", 110), ("dark_on_light", 70)):
        flat, _ = plate_synth.render_plate(cls, rng)
        h = max(8, round(plate_w * flat.shape[0] / flat.shape[1]))
        plates.append(cv2.resize(flat, (plate_w, h), interpolation=cv2.INTER_AREA))
    paths = [
        lambda t: (-90 + 9 * t, 380),  # fast, left to right
        lambda t: (width - 4 * t, 450),  # slower, right to left
        lambda t: (300, height - 3 * t),  # from the bottom, upwards
    ]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"crf": "18", "preset": "veryfast"}
        for t in range(count):
            image = still.copy()
            inside = []
            for plate, where in zip(plates, paths):
                x, y = where(t)
                _paste(image, plate, x, y)
                x1, y1 = max(0, x), max(0, y)
                x2, y2 = min(width, x + plate.shape[1]), min(height, y + plate.shape[0])
                if x2 > x1 and y2 > y1:
                    inside.append((x1, y1, x2, y2))
            if boxes is not None:
                boxes.append(inside)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
    return path


def _paste(image: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    h, w = patch.shape[:2]
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(image.shape[1], x + w), min(image.shape[0], y + h)
    if x1 > x0 and y1 > y0:
        image[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]


def covered(boxes: np.ndarray, by: np.ndarray, shape: tuple) -> np.ndarray:
    """Share of each box's pixels inside the union of ``by`` (boxes clipped to the frame)."""
    height, width = shape[:2]
    mask = np.zeros((height, width), bool)
    for x1, y1, x2, y2 in np.asarray(by).reshape(-1, 4):
        ya, xa = max(0, int(np.floor(y1))), max(0, int(np.floor(x1)))
        mask[ya : int(np.ceil(y2)), xa : int(np.ceil(x2))] = True
    out = []
    for x1, y1, x2, y2 in np.asarray(boxes).reshape(-1, 4):
        xa, ya = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
        xb, yb = min(width, int(np.ceil(x2))), min(height, int(np.ceil(y2)))
        out.append(mask[ya:yb, xa:xb].mean() if xb > xa and yb > ya else 1.0)
    return np.asarray(out, float)


def compare_text(
    path: Path, limit: int, every: int, margin_px: int, plates: bool, own_means: bool
) -> list[str]:
    """Crop-driven text lines (and plates) against full passes on the same frames."""
    from blur.boxes import iou_matrix
    from blur.detectors.plates import PlateDetector
    from blur.detectors.text import TextDetector, shared_model
    from blur.text_changes import TextPasses

    with av.open(str(path)) as c:
        fps = float(c.streams.video[0].average_rate or 25)
    model = shared_model()
    text = TextDetector()
    keyframes = max(1, int(round(2.0 * fps)))
    passes = TextPasses(keyframes, margin_px, not own_means)
    plate_det, plate_passes = PlateDetector(), TextPasses(keyframes, margin_px, not own_means)
    found = lost = uncovered = runs = 0
    plates_found = plates_uncovered = 0
    plates_worst = 1.0
    missed = []
    worst, worst_at = 1.0, None
    full_pixels = 0
    for index, rgb in enumerate(frames(path, limit)):
        if index % every:
            continue
        runs += 1
        full = model.find(rgb.copy(), text.max_side, text.box_thresh, text.upscale)
        x = model.network_input(rgb, text.max_side, text.upscale)
        full_pixels += x.shape[2] * x.shape[3]
        mine = model.find(
            rgb.copy(), text.max_side, text.box_thresh, text.upscale, incremental=passes.hook(0, index)
        )
        a, b = full.xyxy(), mine.xyxy(text.pad, text.pad)
        found += len(a)
        if len(a):
            match = iou_matrix(a, mine.xyxy()).max(axis=1, initial=0) if len(mine) else np.zeros(len(a))
            lost += int((match < 0.5).sum())
            share = covered(a, b, rgb.shape)
            uncovered += int((share < 0.99).sum())
            if share.min() < worst:
                worst, worst_at = float(share.min()), index
            for k in np.flatnonzero(share < 0.99):
                w, h = a[k, 2] - a[k, 0], a[k, 3] - a[k, 1]
                missed.append(
                    f"frame {index}: {w:.0f}x{h:.0f} px line scoring {full.score[k]:.2f}, {share[k]:.2f}"
                )
        if plates:
            p_full = plate_det.detect(rgb.copy())
            p_mine = plate_det.detect(rgb.copy(), incremental=plate_passes.hook(0, index))
            plates_found += len(p_full)
            if len(p_full):
                share = covered(p_full.xyxy, p_mine.xyxy, rgb.shape)
                plates_uncovered += int((share < 0.9).sum())
                plates_worst = min(plates_worst, float(share.min()))
    run = next(iter(passes.passes.values()))
    lines = [
        f"text lines (every {every} frames, margin {margin_px} px, crops with their "
        f"{'own' if own_means else 'frame' + chr(39) + 's'} channel means): {found} found by full "
        f"passes over {runs} frames, lost {lost} (no line at IoU >= 0.5), uncovered {uncovered} (worst "
        f"{worst:.3f}{f' at frame {worst_at}' if worst_at is not None else ''}); input pixels "
        f"{run.pixels / max(full_pixels, 1):.3f} of full passes ({run.full_passes} full passes, "
        f"{run.crop_calls} crops)"
    ]
    lines += ["  uncovered (share covered): " + m for m in missed]
    if plates:
        p_run = next(iter(plate_passes.passes.values()))
        lines.append(
            f"plates: {plates_found} found by full passes, less than 90 % covered {plates_uncovered} "
            f"(worst {plates_worst:.3f}); input pixels "
            f"{p_run.pixels / max(full_pixels, 1):.3f} of full passes ({p_run.full_passes} full passes)"
        )
    return lines


def plates_covered(path: Path, boxes: list, analyse: str) -> str:
    """Scan the generated plate clip as ``blur`` does (plates only, default settings: tracks
    bridge the frames between text passes) and count plates less than 95 % covered."""
    from blur import pipeline, tracking
    from blur.settings import Settings

    settings = Settings(kinds=("plate",), analyse=analyse)
    plan = pipeline.scan(path, settings)
    per_frame = tracking.boxes_at(plan.tracks, plan.frame_count)
    shape = (plan.info.height, plan.info.width)
    seen = missed = 0
    worst = 1.0
    for t, inside in enumerate(boxes[: plan.frame_count]):
        if not inside:
            continue
        share = covered(np.array(inside, np.float32), per_frame[t].xyxy, shape)
        seen += len(inside)
        missed += int((share < 0.95).sum())
        worst = min(worst, float(share.min()))
    return (
        f"scanned with tracking (analyse={settings.analyse}): {seen} plate-frames, "
        f"{missed} less than 95 % covered (worst {worst:.3f})"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--margin", type=int, default=1)
    ap.add_argument("--context", type=int, default=2)
    ap.add_argument("--text", action="store_true", help="also the text detector, crops against full passes")
    ap.add_argument("--every", type=int, default=3, help="--text: analyse every n-th frame")
    ap.add_argument("--text-margin", type=int, default=None, help="--text: crop margin, input px")
    ap.add_argument("--plates", action="store_true", help="--text: the plate detector's boxes too")
    ap.add_argument("--own-means", action="store_true", help="--text: crops with their own channel means")
    ap.add_argument("--no-faces", action="store_true", help="skip the face detector's comparison")
    ap.add_argument("--small-face-model", default="centerface", choices=["centerface", "retinaface"])
    ap.add_argument("--no-noise", action="store_true")
    ap.add_argument("--only-noise", action="store_true", help="the codec-noise line only")
    ap.add_argument("--noise-pixels", type=int, help="changed pixels that make a tile changed")
    ap.add_argument("--reach", action="store_true", help="how far the face map depends on the input")
    args = ap.parse_args()
    from blur.text_changes import MARGIN_PX

    tmp = tempfile.TemporaryDirectory(prefix="blur-change-")
    for path in args.videos:
        if str(path) == "plates":
            drawn: list = []
            path = plate_clip(Path(tmp.name) / "plates.mp4", args.frames, boxes=drawn)
        if args.reach:
            print(f"{path.name} (every 10th of the first {args.frames} frames): small-face pass on windows")
            for line in reach(path, args.frames):
                print("  " + line)
            continue
        print(f"{path.name} (first {args.frames} frames, margin {args.margin}, context {args.context} tiles)")
        if path.name == "plates.mp4" and args.plates:
            for analyse in ("changes", "every-frame"):
                print("  " + plates_covered(path, drawn, analyse))
        if not args.no_noise:
            print("  " + noise(path, args.frames))
            print("  " + noise_at_input(path, args.frames))
        if args.only_noise:
            continue
        if not args.no_faces:
            lines = compare(
                path, args.frames, args.margin, args.context, args.small_face_model, args.noise_pixels
            )
            for line in lines:
                print("  " + line)
        if args.text:
            margin = MARGIN_PX if args.text_margin is None else args.text_margin
            for line in compare_text(path, args.frames, args.every, margin, args.plates, args.own_means):
                print("  " + line)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
