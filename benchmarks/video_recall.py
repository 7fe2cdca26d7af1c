"""Video recall benchmark: a generated clip in which every frame has known face boxes.

The clip is made from labelled photos of the development set (``../shared/eval/faces-dev``):
a virtual camera pans and zooms across two labelled crowd photos (a scene cut between them),
with motion blur during a fast pan, and two faces cut from other labelled photos move across
the frame, leave it and come back; a pole sweeps across and briefly hides faces. Each labelled
box is carried through the same geometry, so every frame has its true face boxes.

blur's own ``scan`` (detection + tracking) runs on the encoded clip; for each frame the benchmark
prints how many visible faces are covered (>= 70 % of the box inside the redaction masks, drawn
as ``blur.redact.region_masks`` draws them) and, per face, the longest run of frames in which it
was left unredacted. A face counts in a frame when at least half of its box is inside the
picture and at most half of it is behind the pole.

    python benchmarks/video_recall.py                        # both clips, Settings()
    python benchmarks/video_recall.py --clip moving          # the hand-held 1280x720 clip
    python benchmarks/video_recall.py --set face_threshold=0.3 --frames
    python benchmarks/video_recall.py --clip moving --photo-set 1  # other photos, other jitter

A second clip, ``--clip moving`` (see ``moving_clip.py``), films prints of labelled photos with
a panning, zooming and shaking camera, and holds a still stretch where one photo drifts by.
Besides coverage, each clip prints the scan's CPU time and how many pixels each network was
given per frame (counted at ONNX Runtime's input), which do not depend on what else the machine
runs.

The clip is written to a temporary folder and deleted; nothing is copied into the repository.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from masks import covered_share, redaction_mask  # noqa: E402
from recall import DEFAULT_SET, load_set, parse_overrides  # noqa: E402

WIDTH, HEIGHT, FPS = 640, 360, 25
SCENE_A, SCENE_B = 48, 24  # frames per scene; the cut is at frame SCENE_A
COVERED, VISIBLE = 0.7, 0.5


@dataclass
class Sprite:
    """A face cut from a labelled photo (with its hair and shoulders), pasted with soft edges."""

    patch: np.ndarray  # (h, w, 3) RGB
    alpha: np.ndarray  # (h, w) float32 in [0, 1]
    face: np.ndarray  # (4,) face box in patch pixels


def _read(path: Path) -> np.ndarray:
    from blur.media import image

    return image.read(path).rgb


def choose_sources(items: list[dict]) -> tuple[list[dict], list[dict]]:
    """Two crowd photos with small faces (backgrounds) and two single-face photos (sprites),
    chosen by file name so the clip is the same on every run."""
    items = sorted(items, key=lambda it: it["file"])
    crowds = [
        it
        for it in items
        if len(it["boxes"]) >= 10
        and it["width"] > it["height"]
        and np.median([b[3] - b[1] for b in it["boxes"]]) <= 20
    ]
    singles = [it for it in items if len(it["boxes"]) == 1 and it["boxes"][0][3] - it["boxes"][0][1] >= 60]
    return crowds[:2], singles[:2]


def make_sprite(path: Path, box: list[float], face_height: float) -> Sprite:
    """The face and its surroundings (2.2 face heights square), scaled so the face is
    ``face_height`` px tall, with an elliptical feathered alpha."""
    rgb = _read(path)
    x1, y1, x2, y2 = box
    side = 2.2 * (y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + 0.2 * (y2 - y1)
    scale = face_height / (y2 - y1)
    out = max(8, int(round(side * scale)))
    warp = np.array([[scale, 0, out / 2 - cx * scale], [0, scale, out / 2 - cy * scale]], np.float32)
    patch = cv2.warpAffine(rgb, warp, (out, out), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    yy, xx = np.mgrid[0:out, 0:out].astype(np.float32) + 0.5
    r = ((xx - out / 2) / (out * 0.48)) ** 2 + ((yy - out / 2) / (out * 0.5)) ** 2
    alpha = np.clip((1 - r) * 4, 0, 1).astype(np.float32)
    face = np.array([x1, y1, x2, y2], np.float32)
    face = (face.reshape(2, 2) * scale + [out / 2 - cx * scale, out / 2 - cy * scale]).reshape(4)
    return Sprite(patch, alpha, face.astype(np.float32))


def camera(t: int) -> tuple[int, float, float, float]:
    """Scene index and crop window (x0, y0, width) in source pixels, as fractions of the
    source width, at frame ``t``: scene A zooms in while panning left to right (fast in the
    middle, with motion blur), scene B slowly zooms out."""
    if t < SCENE_A:
        u = t / (SCENE_A - 1)
        width = 0.95 - 0.4 * u  # zoom in: faces grow ~1.7x
        pan = 0.5 - 0.5 * np.cos(np.pi * u)  # slow, fast, slow
        return 0, pan * (1 - width), 0.5, width
    u = (t - SCENE_A) / (SCENE_B - 1)
    width = 0.6 + 0.3 * u
    return 1, 0.5 * (1 - width), 0.5, width


def pan_speed(t: int, src_width: int) -> float:
    """Output pixels the background moves between frame t-1 and t (for motion blur)."""
    if t == 0 or t == SCENE_A:
        return 0.0
    s0, x0, _, w0 = camera(t - 1)
    s1, x1, _, w1 = camera(t)
    return abs(x1 - x0) * src_width * WIDTH / (w1 * src_width)


def sprite_path(t: int, k: int) -> tuple[float, float] | None:
    """Top-left corner of sprite ``k`` in frame t, or None when it is off screen. Sprite 0
    walks right, leaves the frame, and walks back in; sprite 1 crosses right to left."""
    if k == 0:
        if t < 30:
            return -40 + 26.0 * t, 150.0  # exits past the right edge at ~t=26
        if t < 38:
            return None  # off screen for 8 frames
        return WIDTH - 20.0 * (t - 38), 150.0  # comes back in
    if SCENE_A - 20 <= t < SCENE_A + SCENE_B:
        return WIDTH - 14.0 * (t - (SCENE_A - 20)), 60.0
    return None


def pole_x(t: int) -> float | None:
    """Left edge of a 44 px wide pole sweeping right to left over frames 8..40."""
    if 8 <= t <= 40:
        return WIDTH - (t - 8) * 22.0
    return None


POLE_W = 44


def build_clip(path: Path, dev: Path) -> list[list[tuple[str, np.ndarray]]]:
    """Write the clip to ``path`` (H.264 MP4, 25 fps) and return, for every frame, the visible
    faces as (face id, xyxy box in frame pixels)."""
    import av

    items = load_set(dev)
    crowds, singles = choose_sources(items)
    if len(crowds) < 2 or len(singles) < 2:
        raise SystemExit("the labelled set has too few suitable photos for the clip")
    backgrounds = [(_read(dev / it["file"]), np.asarray(it["boxes"], np.float32)) for it in crowds]
    sprites = [
        make_sprite(dev / singles[0]["file"], singles[0]["boxes"][0], 44.0),
        make_sprite(dev / singles[1]["file"], singles[1]["boxes"][0], 26.0),
    ]
    truth = []
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for t in range(SCENE_A + SCENE_B):
            frame, faces = render_frame(t, backgrounds, sprites)
            truth.append(faces)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return truth


def render_frame(t: int, backgrounds, sprites) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    scene, fx0, fcy, fw = camera(t)
    src, boxes = backgrounds[scene]
    sh, sw = src.shape[:2]
    crop_w = fw * sw
    scale = WIDTH / crop_w
    crop_h = HEIGHT / scale
    x0 = fx0 * sw
    y0 = np.clip(fcy * sh - crop_h / 2, 0, max(0.0, sh - crop_h))
    warp = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
    frame = cv2.warpAffine(src, warp, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    faces = [
        (f"{'AB'[scene]}{i}", (b.reshape(2, 2) * scale - [x0 * scale, y0 * scale]).reshape(4))
        for i, b in enumerate(boxes)
    ]
    for k, sp in enumerate(sprites):
        pos = sprite_path(t, k)
        if pos is None:
            continue
        px, py = int(round(pos[0])), int(round(pos[1]))
        h, w = sp.alpha.shape
        fx1, fy1, fx2, fy2 = max(px, 0), max(py, 0), min(px + w, WIDTH), min(py + h, HEIGHT)
        if fx2 <= fx1 or fy2 <= fy1:
            continue
        a = sp.alpha[fy1 - py : fy2 - py, fx1 - px : fx2 - px, None]
        region = frame[fy1:fy2, fx1:fx2].astype(np.float32)
        patch = sp.patch[fy1 - py : fy2 - py, fx1 - px : fx2 - px].astype(np.float32)
        frame[fy1:fy2, fx1:fx2] = (a * patch + (1 - a) * region).astype(np.uint8)
        # Faces pasted before (the scene's, an earlier sprite's) are hidden where this sprite
        # is opaque.
        cover = np.zeros((HEIGHT, WIDTH), np.float32)
        cover[fy1:fy2, fx1:fx2] = a[..., 0]
        faces = [(fid, box) for fid, box in faces if _hidden(box, cover) <= VISIBLE]
        faces.append((f"S{k}", sp.face + [px, py, px, py]))
    speed = pan_speed(t, sw)
    if speed > 3:  # a shutter open for about half the frame interval
        length = int(round(speed * 0.5)) | 1
        kernel = np.zeros((1, length), np.float32)
        kernel[0, :] = 1.0 / length
        frame = cv2.filter2D(frame, -1, kernel, borderType=cv2.BORDER_REFLECT)
    px = pole_x(t)
    if px is not None:
        x1, x2 = int(max(px, 0)), int(min(px + POLE_W, WIDTH))
        if x2 > x1:
            frame[:, x1:x2] = (70, 72, 75)
    visible = []
    for fid, box in faces:
        clipped, inside = clipped_to_frame(box, WIDTH, HEIGHT)
        if inside < VISIBLE:
            continue
        if px is not None:
            hidden = max(0.0, min(clipped[2], px + POLE_W) - max(clipped[0], px))
            if hidden / max(clipped[2] - clipped[0], 1e-6) > VISIBLE:
                continue
        visible.append((fid, clipped))
    return frame, visible


def _hidden(box: np.ndarray, cover: np.ndarray) -> float:
    """Share of a box (clipped to the frame) hidden behind opaque pasted pixels."""
    x1, y1 = int(max(np.floor(box[0]), 0)), int(max(np.floor(box[1]), 0))
    x2, y2 = int(min(np.ceil(box[2]), WIDTH)), int(min(np.ceil(box[3]), HEIGHT))
    if x2 <= x1 or y2 <= y1:
        return 0.0
    return float((cover[y1:y2, x1:x2] > 0.5).mean())


def score(truth, per_frame_boxes, settings, size=(WIDTH, HEIGHT)) -> dict:
    """Per-frame coverage and, per face, the longest run of visible but unredacted frames."""
    rows, runs, longest, heights = [], {}, {}, {}
    for t, (faces, boxes) in enumerate(zip(truth, per_frame_boxes)):
        mask = redaction_mask(boxes, *size, settings.mask_scale, settings.shape)
        covered = 0
        seen = set()
        for fid, (x1, y1, x2, y2) in faces:
            ok = covered_share(mask, (x1, y1, x2, y2)) >= COVERED
            covered += ok
            seen.add(fid)
            heights.setdefault(fid, []).append(y2 - y1)
            runs[fid] = 0 if ok else runs.get(fid, 0) + 1
            longest[fid] = max(longest.get(fid, 0), runs[fid])
        for fid in list(runs):
            if fid not in seen:  # not visible: a run of misses does not continue through it
                runs[fid] = 0
        # Redacted boxes on no labelled face (IoU < 0.3 with all): false alarms, or faces the
        # photo's labels miss (the labels are not exhaustive).
        from blur.boxes import iou_matrix

        gt = np.array([b for _, b in faces], np.float32).reshape(-1, 4)
        stray = int((iou_matrix(boxes, gt).max(axis=1, initial=0) < 0.3).sum()) if len(boxes) else 0
        rows.append((t, len(faces), covered, len(boxes), mask.mean(), stray))
    median_h = {fid: float(np.median(h)) for fid, h in heights.items()}
    return {"rows": rows, "longest": longest, "height": median_h, "size": size}


def report(result: dict, seconds: float, show_frames: bool) -> str:
    rows, longest, height = result["rows"], result["longest"], result["height"]
    lines = []
    if show_frames:
        lines.append("frame faces covered boxes stray redacted%")
        for t, n, c, b, a, x in rows:
            lines.append(f"{t:5d} {n:5d} {c:7d} {b:5d} {x:5d} {100 * a:8.1f}")
    per = np.array([r[2] / r[1] for r in rows if r[1]])
    faces = sum(r[1] for r in rows)
    cov = sum(r[2] for r in rows) / max(faces, 1)
    lines.append(
        f"per-frame coverage: pooled {cov:.3f}, mean {per.mean():.3f}, "
        f"min {per.min():.3f}; frames below 0.98: {(per < 0.98).sum()} of {len(per)}"
    )
    lines.append(f"{'faces':>9} {'ids':>4} {'face-frames':>11} {'cover':>6} {'longest miss':>13}")
    for name, sel in (("<20 px", lambda h: h < 20), (">=20 px", lambda h: h >= 20), ("all", lambda h: True)):
        ids = [f for f in height if sel(height[f])]
        lines.append(
            f"{name:>9} {len(ids):4d} {_face_frames(result, ids):11d} "
            f"{_coverage(result, ids):6.3f} {max([longest[f] for f in ids] or [0]):13d}"
        )
    worst = sorted(longest.items(), key=lambda kv: -kv[1])[:5]
    lines.append("longest misses: " + ", ".join(f"{f} ({height[f]:.0f} px) {n}" for f, n in worst))
    width, height = result["size"]
    lines.append(
        f"{len(rows)} frames {width}x{height}, "
        f"scan {1000 * seconds / len(rows):.0f} ms/frame, "
        f"mean redacted {100 * np.mean([r[4] for r in rows]):.1f}% of pixels, "
        f"{np.mean([r[3] for r in rows]):.1f} boxes/frame of which "
        f"{np.mean([r[5] for r in rows]):.1f} on no labelled face"
    )
    return "\n".join(lines)


def _face_frames(result, ids) -> int:
    return sum(result["per_face"][f][0] for f in ids)


def _coverage(result, ids) -> float:
    n = sum(result["per_face"][f][0] for f in ids)
    return sum(result["per_face"][f][1] for f in ids) / max(n, 1)


def per_face(truth, per_frame_boxes, settings, size=(WIDTH, HEIGHT)) -> dict[str, tuple[int, int]]:
    """(visible frames, covered frames) per face id."""
    out: dict[str, list[int]] = {}
    for faces, boxes in zip(truth, per_frame_boxes):
        mask = redaction_mask(boxes, *size, settings.mask_scale, settings.shape)
        for fid, (x1, y1, x2, y2) in faces:
            ok = covered_share(mask, (x1, y1, x2, y2)) >= COVERED
            v = out.setdefault(fid, [0, 0])
            v[0] += 1
            v[1] += int(ok)
    return {k: (v[0], v[1]) for k, v in out.items()}


class NetworkPixels:
    """Counts the pixels each ONNX model is given (batch x height x width of its image input),
    by wrapping ONNX Runtime's ``run``: what the networks see, whatever code asked."""

    def __init__(self):
        self.pixels: dict[str, int] = {}
        self.calls: dict[str, int] = {}

    def __enter__(self):
        from onnxruntime.capi.onnxruntime_inference_collection import Session

        self._session, self._run = Session, Session.run
        counter = self

        def run(session, output_names, input_feed, *args, **kwargs):
            for value in input_feed.values():
                shape = getattr(value, "shape", ())
                if len(shape) == 4:
                    model = _model_name(session)
                    counter.pixels[model] = counter.pixels.get(model, 0) + int(shape[0] * shape[2] * shape[3])
                    counter.calls[model] = counter.calls.get(model, 0) + 1
            return counter._run(session, output_names, input_feed, *args, **kwargs)

        Session.run = run
        return self

    def __exit__(self, *exc):
        self._session.run = self._run


def _model_name(session) -> str:
    outputs = [o.name for o in session.get_outputs()]
    if "537" in outputs:
        return "face"
    if "loc" in outputs:
        return "face-retinaface"
    shape = session.get_inputs()[0].shape
    return "text-rec" if len(shape) == 4 and shape[2] == 48 else "text-det"


CLIPS = ("pan", "moving")


def scan_recorded(path: Path, settings):
    """Scan ``path`` with ``settings``, recording the network input and the schedules made.

    Returns:
        (plan, NetworkPixels, the Schedule objects the scan made, wall seconds, CPU seconds).
    """
    from blur import detectors, pipeline, schedule

    detectors.build(settings)  # loading the models is not what is measured
    made = []

    class Recorded(schedule.Schedule):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    original, schedule.Schedule = schedule.Schedule, Recorded
    try:
        with NetworkPixels() as seen:
            start, cpu = time.perf_counter(), time.process_time()
            plan = pipeline.scan(path, settings)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        schedule.Schedule = original
    return plan, seen, made, seconds, cpu


def clipped_to_frame(box, width: int, height: int) -> tuple[np.ndarray, float]:
    """``box`` (x1, y1, x2, y2) clipped to the frame, and the share of its area inside it."""
    clipped = np.array([max(box[0], 0), max(box[1], 0), min(box[2], width), min(box[3], height)], np.float32)
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)
    inside = max(clipped[2] - clipped[0], 0) * max(clipped[3] - clipped[1], 0)
    return clipped, inside / area


def run_clip(
    name: str, dev: Path, settings, show_frames: bool, keep: Path | None, photo_set: int = 0
) -> None:
    """Generate clip ``name``, scan it with ``settings`` and print its tables (``photo_set``:
    which photos the moving clip films, see ``moving_clip.py``)."""
    from blur import risk, tracking

    with tempfile.TemporaryDirectory(prefix="blur-video-recall-") as tmp:
        clip = Path(tmp) / "clip.mp4"
        if name == "moving":
            import moving_clip

            truth = moving_clip.build(clip, dev, photo_set=photo_set)
            size = (moving_clip.WIDTH, moving_clip.HEIGHT)
        else:
            truth = build_clip(clip, dev)
            size = (WIDTH, HEIGHT)
        plan, seen, made, seconds, cpu = scan_recorded(clip, settings)
        if keep:
            keep.mkdir(parents=True, exist_ok=True)
            (keep / f"{name}.mp4").write_bytes(clip.read_bytes())
    if plan.frame_count != len(truth):
        raise SystemExit(f"scanned {plan.frame_count} frames, wrote {len(truth)}")
    boxes = [d.xyxy[d.kind == "face"] for d in tracking.boxes_at(plan.tracks, plan.frame_count)]
    result = score(truth, boxes, settings, size)
    result["per_face"] = per_face(truth, boxes, settings, size)
    print(f"clip: {name}")
    print(report(result, seconds, show_frames))
    n = plan.frame_count
    print(
        f"scan CPU {cpu:.1f} s ({1000 * cpu / n:.0f} ms/frame); network input per frame: "
        + ", ".join(f"{k} {v / n / 1e6:.2f} MP" for k, v in sorted(seen.pixels.items()))
    )
    for sched in made:
        passes = ", ".join(
            f"{key[1][0]} x{key[1][2]:.2f}: {net.full_passes} full" for key, net in sched.networks.items()
        )
        print(f"schedule: {passes or 'no incremental pass'}; {sched.crops} track crops")
    flags = plan.to_dict()["flags"]
    ranked = risk.rank_plan(plan)
    short = risk.short_list(ranked)
    print(
        f"tracks: {sum(t.kind == 'face' for t in plan.tracks)}, flagged frames: "
        + ", ".join(f"{k} {len(v)}" for k, v in flags.items() if isinstance(v, list))
        + f"; look at: {len(short)} track(s)"
        + (" (" + ", ".join(r.label() for r in short) + ")" if short else "")
        + f", {sum(r.check_first for r in ranked)} with a reason"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "path", nargs="?", type=Path, default=DEFAULT_SET, help="labelled photo set the clip is made from"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a Settings field (repeatable)",
    )
    parser.add_argument(
        "--clip",
        choices=CLIPS + ("all",),
        default="all",
        help="pan: 640x360 pans, a cut, walking faces, a pole (72 frames); "
        "moving: 1280x720 hand-held camera over prints (200 frames)",
    )
    parser.add_argument("--frames", action="store_true", help="print every frame's line")
    parser.add_argument(
        "--photo-set",
        type=int,
        default=0,
        help="moving clip: film photo set N (0: the reported clip; others check on faces not tuned on)",
    )
    parser.add_argument("--keep", type=Path, help="also save the clips here")
    args = parser.parse_args(argv)
    if not (args.path / "faces.json").is_file():
        print(f"no labelled set at {args.path} (expected faces.json)", file=sys.stderr)
        return 2
    from blur.settings import Settings

    settings = Settings().merged(**parse_overrides(args.overrides)).merged(kinds=("face",))
    changed = {
        f.name: getattr(settings, f.name)
        for f in fields(settings)
        if getattr(settings, f.name) != getattr(Settings(), f.name)
    }
    print(f"Settings({', '.join(f'{k}={v!r}' for k, v in changed.items())})")
    for name in CLIPS if args.clip == "all" else (args.clip,):
        run_clip(name, args.path, settings, args.frames, args.keep, args.photo_set)
    return 0


if __name__ == "__main__":
    sys.exit(main())
