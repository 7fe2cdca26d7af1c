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


class Recorder:
    """Wraps a network: remembers the last output of each pass key (for comparison)."""

    def __init__(self, margin: int, context: int):
        from blur.schedule import ChangeDrivenNetwork

        self.cls, self.margin, self.context = ChangeDrivenNetwork, margin, context
        self.nets: dict = {}
        self.full: dict = {}

    def incremental(self, key, forward, levels=1.0):
        net = self.nets.get(key)
        if net is None:
            net = self.nets[key] = self.cls(forward, levels, self.margin, self.context)
        return net


def compare(
    path: Path, limit: int, margin: int, context: int, text: bool, small_face_model: str = "centerface"
) -> list[str]:
    from blur.boxes import iou_matrix
    from blur.detectors.centerface import CenterFaceDetector
    from blur.detectors.text import TextDetector

    dets = [CenterFaceDetector(threshold=0.12, candidate_threshold=0.1, small_face_model=small_face_model)]
    if text:
        dets.append(TextDetector())
    rec = [Recorder(margin, context) for _ in dets]
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
                    full_pixels[k] += blob.shape[2] * blob.shape[3]
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--margin", type=int, default=1)
    ap.add_argument("--context", type=int, default=2)
    ap.add_argument("--text", action="store_true", help="also the text detector's map")
    ap.add_argument("--small-face-model", default="centerface", choices=["centerface", "retinaface"])
    ap.add_argument("--no-noise", action="store_true")
    ap.add_argument("--only-noise", action="store_true", help="the codec-noise line only")
    args = ap.parse_args()
    for path in args.videos:
        print(f"{path.name} (first {args.frames} frames, margin {args.margin}, context {args.context} tiles)")
        if not args.no_noise:
            print("  " + noise(path, args.frames))
        if args.only_noise:
            continue
        for line in compare(path, args.frames, args.margin, args.context, args.text, args.small_face_model):
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
