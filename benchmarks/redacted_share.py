"""Redacted share: how much of each video frame blur hides, beside deface on the same frames.

Over-redaction has a cost too: a frame blanked around every face is not publishable. For each
clip this prints, per tool, the median and 95th percentile over frames of the share of a frame's
pixels that are redacted, measured two ways:

- ``changed``: pixels of the redacted frame that differ from the input by more than 40 levels in
  some channel (measured in memory, before any encoding, so codec noise does not count). It is
  the same measure for both tools, but it undercounts smooth areas whose fill is close to them.
- ``planned``: pixels inside the masks the tool draws (blur: ``blur.redact.region_masks`` of the
  planned regions; deface: its grown boxes' ellipses, as ``deface.deface.draw_det`` draws them).

blur runs as it does by default: ``scan`` (detection and tracking of faces and plates), then each
frame redacted as the output shows it. deface (if importable) runs with its defaults: threshold
0.2, mask scale 1.3, ellipse, blur. The clips are read where they lie; ``--frames N`` analyses the
first N frames only (re-encoded almost losslessly into a temporary file).

    python benchmarks/redacted_share.py                           # sample, Megamind, vtest (150)
    python benchmarks/redacted_share.py CLIP ... --frames 100 --no-deface
    python benchmarks/redacted_share.py --only face         # like for like: deface hides faces only

Measured with ``--only face`` (median / 95th percentile over frames, %), before and after a large
face box at a low score stopped continuing a track across a cut (``blur.shots``):

    clip (frames)        blur before     blur after      deface
                         changed planned changed planned changed planned
    sample (50)          0.2/0.4 0.6/0.9 0.2/0.4 0.6/0.9 0.0/0.0 0.0/0.1
    Megamind (270)       9.3/19.8 19.5/31.5 9.3/19.8 15.5/30.0 9.0/25.3 17.8/45.1
    vtest (150)          0.3/0.4 0.7/0.9 0.3/0.4 0.7/0.9 0.0/0.0 0.0/0.1

The sample and vtest have no cut, so nothing changes there; their faces are 10-25 px tall and
deface (no upscaled pass, threshold 0.2) finds almost none of them. On Megamind the masks now
hold less than deface's, but ``changed`` stays: the hair and dark background no longer
redacted were close in colour to their fill, and blur's fill (brightness noise over a 3x3
colour average) changes more of the pixels inside a mask than deface's Gaussian blur does.

Faces and plates (the default), before and after a large unreadable plate line that is not
smeared had to show characters and fit its rectangle closely (``blur.detectors.plates``):

    clip (frames)        blur before     blur after      deface
                         changed planned changed planned changed planned
    sample (50)          0.5/1.3 1.1/1.8 0.5/1.3 1.1/1.8 0.0/0.0 0.0/0.1
    Megamind (270)       10.3/24.3 21.4/39.0 9.3/23.8 18.9/38.6 9.0/25.3 17.8/45.1
    vtest (150)          0.5/13.7 0.9/29.6 0.4/3.4 0.8/8.9 0.0/0.0 0.0/0.1

On Megamind the plates now add nothing to the median (faces alone: 9.3); what stays of them is
the rim of a tablecloth (frames 5-37) and lines on eyes, inside the face masks. What keeps the
faces' ``changed`` above deface's is the fill, not the masks: on the same frames blur's face
masks hold less than deface's (median 16.0 vs 17.8 %), blur's fill inside deface's masks would
change 10.4 %, deface's box blur inside blur's masks 8.0 %. Smaller masks were measured and not
used: mask scale 1.2 brings the faces to 7.5 % but lowers faces-dev coverage below 0.98
(``benchmarks/recall.py --limit 40``: 0.985 -> 0.978, under 20 px 0.974 -> 0.963).

A 4x4 colour grid in place of the 3x3 one was measured (``blur.redact``; same
plans, so "planned" does not move; deface unchanged; blur's noise is drawn afresh, so a rerun
moves "changed" by about 0.1):

    clip (frames)        blur before     blur after      deface
                         changed planned changed planned changed planned
    sample (50)          0.5/1.3 1.2/1.8 0.5/1.1 1.2/1.8 0.0/0.0 0.0/0.1
    Megamind (270)       9.0/24.2 17.7/38.4 7.8/19.2 17.7/38.4 9.0/25.3 17.8/45.1
    vtest (150)          0.4/3.4 0.8/8.9 0.3/3.2 0.8/8.9 0.0/0.0 0.0/0.1

A 3x3 grid follows a face's colours less closely than deface's blur of the face does: inside the
same masks it changed more pixels by over 40 levels. Replaying the same Megamind plan with three
noise seeds: 3x3 9.1-9.2 / 23.6-24.0, 4x4 7.8-7.9 / 18.6-19.1, 5x5 (one seed) 7.2 / 17.6 (not taken: its
fill starts to follow the face's features, see ``tests/test_redact.py``); dropping the noise
moves none of them by more than 0.1. Faces alone with the 4x4 grid: 7.6 / 19.6; what the plates
add is mostly a table setting in the blurred background (frames 4-35, x 560-718, y 286-420).
The 4x4 grid was not kept: ``blur check`` re-found its fill over Messi's face in messi5.jpg at
0.55 in 1 render of 16 (0 of 16 with 3x3) and failed blur's own output; the fill stays 3x3.

To measure another version of blur, put it first on the path (``PYTHONPATH=that/checkout``):
the script only falls back to its own checkout when ``blur`` is not importable.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
from masks import redaction_mask

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
DEFAULT_CLIPS = [
    (ROOT / "samples" / "street.mp4", 0),
    (MEDIA / "Megamind.avi", 0),
    (MEDIA / "vtest.avi", 150),
]
CHANGED = 40  # levels


def _blur_path() -> None:
    try:
        import blur  # noqa: F401
    except ImportError:
        sys.path.append(str(ROOT))


def changed_share(before: np.ndarray, after: np.ndarray) -> float:
    diff = np.abs(before.astype(np.int16) - after.astype(np.int16)).max(axis=-1)
    return float((diff > CHANGED).mean())


def run_blur(clip: Path, kinds: tuple[str, ...] | None = None) -> tuple[list[float], list[float]]:
    """Per-frame (changed, planned) shares of blur's default run (of ``kinds`` only, if given)."""
    from blur import pipeline, tracking
    from blur.media import video
    from blur.redact import Redactor, redact_frame
    from blur.settings import Settings

    settings = Settings().merged(kinds=kinds)
    plan = pipeline.scan(clip, settings)
    per_frame = tracking.boxes_at(plan.tracks, plan.frame_count)
    changed, planned = [], []
    for frame in video.frames(clip):
        rgb = frame.image
        # The review page's copy of a frame is redacted exactly as the output is.
        out = rgb.copy()
        redact_frame(
            out,
            Redactor(settings.style, settings.mask_scale, settings.shape),
            per_frame[frame.index],
            frame.index in set(plan.unanalysed_frames),
        )
        changed.append(changed_share(rgb, out))
        boxes = per_frame[frame.index]
        planned.append(
            float(
                redaction_mask(
                    boxes.xyxy, rgb.shape[1], rgb.shape[0], settings.mask_scale, settings.shape, boxes.kind
                ).mean()
            )
        )
    return changed, planned


def deface_masks(dets: np.ndarray, width: int, height: int, mask_scale: float) -> np.ndarray:
    """The pixels deface's ``anonymize_frame`` replaces (its box growth, clipping and ellipse)."""
    from deface.deface import scale_bb

    mask = np.zeros((height, width), dtype=bool)
    for det in dets:
        x1, y1, x2, y2 = scale_bb(*det[:4].astype(int), mask_scale)
        y1, y2 = max(0, y1), min(height - 1, y2)
        x1, x2 = max(0, x1), min(width - 1, x2)
        if x2 <= x1 or y2 <= y1:
            continue
        h, w = y2 - y1, x2 - x1
        yy, xx = np.mgrid[0:h, 0:w]
        # skimage.draw.ellipse(h // 2, w // 2, h // 2, w // 2): centre and radii in whole pixels
        r, c, rr, rc = h // 2, w // 2, max(h // 2, 1), max(w // 2, 1)
        mask[y1:y2, x1:x2] |= ((yy - r) / rr) ** 2 + ((xx - c) / rc) ** 2 < 1
    return mask


def run_deface(clip: Path) -> tuple[list[float], list[float]]:
    """Per-frame (changed, planned) shares of deface with its defaults."""
    from deface.centerface import CenterFace
    from deface.deface import anonymize_frame

    from blur.media import video

    with contextlib.redirect_stdout(io.StringIO()):  # it prints the provider it chose
        centerface = CenterFace(in_shape=None, backend="auto")
    changed, planned = [], []
    for frame in video.frames(clip):
        rgb = np.ascontiguousarray(frame.image)
        dets, _ = centerface(rgb, threshold=0.2)
        out = rgb.copy()
        anonymize_frame(
            dets,
            out,
            mask_scale=1.3,
            replacewith="blur",
            ellipse=True,
            draw_scores=False,
            replaceimg=None,
            mosaicsize=20,
        )
        changed.append(changed_share(rgb, out))
        planned.append(float(deface_masks(dets, rgb.shape[1], rgb.shape[0], 1.3).mean()))
    return changed, planned


def _row(name: str, tool: str, changed: list[float], planned: list[float]) -> str:
    c, p = 100 * np.asarray(changed), 100 * np.asarray(planned)
    return (
        f"{name:<14} {tool:<7} {len(c):6d} {np.median(c):8.1f} {np.percentile(c, 95):6.1f} "
        f"{np.median(p):8.1f} {np.percentile(p, 95):6.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "clips",
        nargs="*",
        type=Path,
        help="videos (default: the sample, Megamind.avi, vtest.avi's first 150 frames)",
    )
    parser.add_argument(
        "--frames", type=int, default=None, help="only the first N frames of each clip (0: all)"
    )
    parser.add_argument("--no-deface", action="store_true", help="blur only")
    parser.add_argument(
        "--only",
        choices=["face", "plate"],
        default=None,
        help="blur redacts this kind only (deface redacts faces only)",
    )
    args = parser.parse_args(argv)
    _blur_path()
    import blur

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from plates import excerpt

    clips = (
        [(c, args.frames or 0) for c in args.clips]
        if args.clips
        else [(c, n if args.frames is None else args.frames) for c, n in DEFAULT_CLIPS]
    )
    try:
        import deface  # noqa: F401

        tools = ["blur"] if args.no_deface else ["blur", "deface"]
    except ImportError:
        print("deface is not importable (pip install deface==1.5.0 to compare): blur only", file=sys.stderr)
        tools = ["blur"]
    print(
        f"blur from {Path(blur.__file__).parent.parent} ({args.only or 'faces and plates'}); "
        f"share of frame pixels, %: "
        f"changed = differs by more than {CHANGED} levels, planned = inside the masks"
    )
    print(f"{'clip':<14} {'tool':<7} {'frames':>6} {'changed':>8} {'p95':>6} {'planned':>8} {'p95':>6}")
    status = 0
    for clip, frames in clips:
        if not clip.exists():
            print(f"skipped {clip}: not found", file=sys.stderr)
            status = 1
            continue
        with tempfile.TemporaryDirectory(prefix="blur-share-") as tmp:
            src = excerpt(clip, Path(tmp) / "excerpt.mp4", frames) if frames else clip
            for tool in tools:
                changed, planned = (
                    run_blur(src, (args.only,) if args.only else None) if tool == "blur" else run_deface(src)
                )
                print(_row(clip.stem[:14], tool, changed, planned), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
