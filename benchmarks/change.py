"""Change-driven analysis, measured: codec noise, and incremental against full passes.

For each video it prints

1. codec noise: the share of 32-pixel tiles in which some pixel's grey level moved by more than
   N levels between consecutive decoded frames, for several N (real motion is what remains at
   large N; the gap below it is noise);
2. for each pass of the face detector: how many input pixels the incremental network
   (``blur.schedule.ChangeDrivenNetwork``) analysed against a full pass on every frame, the
   largest difference of the patched heatmap from a full pass's, and detections lost: boxes a
   full pass finds at or above the candidate threshold that the incremental pass does not
   (IoU < 0.5 with all its boxes); with ``--text``, the same for the text detector's map.

    python benchmarks/change.py ../shared/media/vtest.avi samples/street.mp4 --frames 150
    python benchmarks/change.py clip.mp4 --margin 0 --context 1      # another geometry
    python benchmarks/change.py ../shared/media/vtest.avi samples/street.mp4 --frames 300 \
        --only-noise                                                 # the noise table only
    python benchmarks/change.py ../shared/media/vtest.avi --frames 100 --reach
                                        # how far the map depends on the input (no noise)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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
    text: bool,
    small_face_model: str = "centerface",
    noise_pixels: int | None = None,
) -> list[str]:
    from blur.boxes import iou_matrix
    from blur.detectors.centerface import CenterFaceDetector
    from blur.detectors.text import TextDetector

    dets = [CenterFaceDetector(threshold=0.12, candidate_threshold=0.1, small_face_model=small_face_model)]
    if text:
        dets.append(TextDetector())
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--margin", type=int, default=1)
    ap.add_argument("--context", type=int, default=2)
    ap.add_argument("--noise-pixels", type=int, help="changed pixels that make a tile changed")
    ap.add_argument("--text", action="store_true", help="also the text detector's map")
    ap.add_argument("--small-face-model", default="centerface", choices=["centerface", "retinaface"])
    ap.add_argument("--no-noise", action="store_true")
    ap.add_argument("--only-noise", action="store_true", help="the codec-noise line only")
    ap.add_argument("--reach", action="store_true", help="how far the face map depends on the input")
    args = ap.parse_args()
    for path in args.videos:
        if args.reach:
            print(f"{path.name} (every 10th of the first {args.frames} frames): small-face pass on windows")
            for line in reach(path, args.frames):
                print("  " + line)
            continue
        print(
            f"{path.name} (first {args.frames} frames, margin {args.margin}, context {args.context} tiles, "
            f"noise pixels {args.noise_pixels or 'default'})"
        )
        if not args.no_noise:
            print("  " + noise(path, args.frames))
            print("  " + noise_at_input(path, args.frames))
        if args.only_noise:
            continue
        lines = compare(
            path, args.frames, args.margin, args.context, args.text, args.small_face_model, args.noise_pixels
        )
        for line in lines:
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
