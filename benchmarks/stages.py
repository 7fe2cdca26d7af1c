"""Where a video's CPU time goes, stage by stage: decode, the face detector's large-face and
upscaled small-face passes, the plate/text detector, track crops, tracking, redaction, encode.

Each stage is timed with the process's CPU time (all its threads, ONNX Runtime's included)
around the calls that make it up, with frames decoded in turn (no decoding ahead, so no other
thread runs meanwhile): a busy machine changes wall time, much less these numbers. Decode is
timed on its own pass over the file; encode is the render's CPU time less redaction and a
second decode. Network megapixels per frame are counted at ONNX Runtime's input.

    python benchmarks/stages.py ../shared/media/vtest.avi --frames 200
    python benchmarks/stages.py --moving --frames 100 --set analyse=every-frame

``--moving`` adds the hand-held clip of ``video_recall.py --clip moving``.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from recall import DEFAULT_SET, parse_overrides  # noqa: E402
from video_recall import NetworkPixels  # noqa: E402


class Stages:
    """CPU seconds per named stage, with nested stages subtracted from their parent."""

    def __init__(self):
        self.cpu: dict[str, float] = defaultdict(float)
        self.stack: list[str] = []
        self.undo: list = []

    def wrap(self, owner, attr: str, name):
        """Time every call of ``owner.attr`` as stage ``name`` (or ``name(args)``)."""
        original = getattr(owner, attr)
        stages = self

        @functools.wraps(original)  # keeps the signature the schedule inspects
        def timed(*args, **kwargs):
            label = name(*args, **kwargs) if callable(name) else name
            stages.stack.append(label)
            start = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.process_time() - start
                stages.stack.pop()
                stages.cpu[label] += spent
                if stages.stack:
                    stages.cpu[stages.stack[-1]] -= spent

        setattr(owner, attr, timed)
        self.undo.append((owner, attr, original))

    def restore(self):
        for owner, attr, original in reversed(self.undo):
            setattr(owner, attr, original)


def _face_pass(detector, image, scale, *args, **kwargs) -> str:
    from blur.detectors.centerface import pass_scales

    scales = pass_scales(image.shape[1], image.shape[0], max_upscale=detector.max_upscale)
    return "face: large-face pass" if scale == scales[0] else "face: small-face pass"


def profile(path: Path, settings) -> tuple[dict[str, float], int, dict]:
    """CPU seconds per stage for one scan + render of ``path`` (output to a temporary file)."""
    from blur import detectors, media, pipeline, schedule
    from blur.detectors.centerface import CenterFaceDetector
    from blur.detectors.plates import PlateDetector
    from blur.detectors.text import TextDetector

    settings = settings.merged(decode_ahead=0, overwrite=True)
    detectors.build(pipeline.scan_settings(settings))  # loading is not measured
    info = media.probe(path)
    start = time.process_time()
    frames = sum(1 for _ in media.frames(info))
    decode = time.process_time() - start
    stages = Stages()
    stages.wrap(CenterFaceDetector, "detect", "face: merge, calibrate")
    stages.wrap(CenterFaceDetector, "_detect_at", _face_pass)
    stages.wrap(CenterFaceDetector, "look_around", "face: track crops")
    stages.wrap(PlateDetector, "detect", "plates/text")
    stages.wrap(TextDetector, "detect", "plates/text")
    stages.wrap(schedule.Schedule, "detect", "schedule (change tests, memo)")
    stages.wrap(pipeline, "scan", "scan: rest")
    stages.wrap(pipeline.tracking, "build_tracks", "tracking")
    stages.wrap(pipeline, "redact_frame", "redact")
    stages.wrap(pipeline, "render", "encode (render less redact and decode)")
    try:
        with NetworkPixels() as seen, tempfile.TemporaryDirectory() as tmp:
            pipeline.anonymise(path, Path(tmp) / "out.mp4", settings)
    finally:
        stages.restore()
    cpu = dict(stages.cpu)
    # The scan decoded every frame once (inside "scan: rest"), the render once more.
    cpu["scan: rest"] -= decode
    cpu["encode (render less redact and decode)"] -= decode
    cpu = {"decode (x2: scan and render)": 2 * decode, **cpu}
    return cpu, frames, {k: v / frames / 1e6 for k, v in seen.pixels.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="*", type=Path)
    ap.add_argument("--frames", type=int, help="a near-lossless copy of the first N frames")
    ap.add_argument("--moving", action="store_true")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    from blur.settings import Settings

    settings = Settings().merged(**parse_overrides(args.overrides))
    with tempfile.TemporaryDirectory(prefix="blur-stages-") as tmp:
        videos = list(args.videos)
        if args.moving:
            import moving_clip

            videos.append(Path(tmp) / "moving_1280x720.mp4")
            moving_clip.build(videos[-1], DEFAULT_SET)
        if args.frames:
            from plates import excerpt

            videos = [excerpt(v, Path(tmp) / f"{v.stem}_first{args.frames}.mp4", args.frames) for v in videos]
        for v in videos:
            cpu, n, mp = profile(v, settings)
            total = sum(cpu.values())
            print(
                f"{v.name}: {n} frames, {1000 * total / n:.0f} ms CPU/frame; network MP/frame: "
                + ", ".join(f"{k} {p:.2f}" for k, p in sorted(mp.items()))
            )
            print(f"  {'stage':42} {'ms/frame':>9} {'share':>6}")
            for name, sec in sorted(cpu.items(), key=lambda kv: -kv[1]):
                print(f"  {name:42} {1000 * sec / n:9.1f} {100 * sec / total:5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
