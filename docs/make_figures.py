"""Make the README's before/after pictures by running blur for real.

    python docs/make_figures.py                     # docs/street-before-after.jpg (samples/)
    python docs/make_figures.py --vtest             # also docs/vtest-before-after.jpg
                                                    # (../shared/media/vtest.avi, a few minutes)

Each picture is one frame of the input beside the same frame of blur's output (default settings),
the tracks blur found printed under it. Only media the project may redistribute is used.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

import blur
from blur.media import video

ROOT = Path(__file__).resolve().parents[1]
VTEST = ROOT.parent / "shared" / "media" / "vtest.avi"


def frame_at(path: Path, index: int) -> np.ndarray:
    for frame in video.frames(path):
        if frame.index == index:
            return frame.image
    raise SystemExit(f"{path} has no frame {index}")


def labelled(rgb: np.ndarray, text: str) -> np.ndarray:
    out = np.ascontiguousarray(rgb.copy())
    cv2.rectangle(out, (0, 0), (16 + 14 * len(text), 34), (0, 0, 0), -1)
    cv2.putText(out, text, (8, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    return out


def side_by_side(before: np.ndarray, after: np.ndarray, dst_jpg: Path) -> None:
    gap = np.full((before.shape[0], 8, 3), 255, np.uint8)
    picture = np.hstack([labelled(before, "before"), gap, labelled(after, "after: blur")])
    dst_jpg.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(dst_jpg), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])


def before_after(src: Path, dst_jpg: Path, index: int, zoom: tuple | None = None) -> dict:
    """Run blur on ``src``, save frame ``index`` before|after as ``dst_jpg`` (and, with ``zoom``
    = (x1, y1, x2, y2), that part of it enlarged 2x as ``*-zoom.jpg``); return the counts."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / (src.stem + ".blurred.mp4")
        result = blur.anonymise(src, out)
        before, after = frame_at(src, index), frame_at(out, index)
    side_by_side(before, after, dst_jpg)
    if zoom:
        x1, y1, x2, y2 = zoom
        big = [
            cv2.resize(im[y1:y2, x1:x2], None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
            for im in (before, after)
        ]
        side_by_side(*big, dst_jpg.with_name(dst_jpg.stem + "-zoom.jpg"))
    sources = Counter()
    for t in result.plan.tracks:
        sources.update(str(s) for s in t.source)
    return {
        "file": src.name,
        "frames": result.frames,
        "tracks": result.tracks,
        "frames_redacted": result.frames_redacted,
        "bridged_frames": result.bridged_frames,
        "weak_frames": result.weak_frames,
        "boxes_by_source": dict(sources),
        "seconds": round(result.seconds, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vtest", action="store_true", help="also the full vtest.avi (slow)")
    args = ap.parse_args()
    print(
        before_after(
            ROOT / "samples" / "street.mp4",
            ROOT / "docs" / "street-before-after.jpg",
            index=30,
            zoom=(340, 150, 720, 370),
        )
    )
    if args.vtest:
        if not VTEST.exists():
            print(f"skipped vtest: {VTEST} not found", file=sys.stderr)
            return 1
        print(before_after(VTEST, ROOT / "docs" / "vtest-before-after.jpg", index=400, zoom=(0, 0, 384, 288)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
