"""What a video's scan costs, in measures a busy machine does not change: process CPU time,
pixels given to each network per frame (counted at ONNX Runtime's input), full passes of each
incremental pass, and track crops; for one or more settings side by side.

    python benchmarks/scan_cost.py ../shared/media/vtest.avi --frames 200 \\
        --variant before="analyse=every-frame follow_tracks=false" --variant after=

``--frames N`` scans a near-lossless copy of the first N frames. ``--moving`` adds the
hand-held clip of ``video_recall.py --clip moving``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from recall import DEFAULT_SET, parse_overrides  # noqa: E402
from video_recall import scan_recorded  # noqa: E402


def cost(path: Path, settings) -> dict:
    plan, seen, made, _, cpu = scan_recorded(path, settings)
    n = plan.frame_count
    full = sum(net.full_passes for s in made for net in s.networks.values())
    calls = len(made[0].networks) * n if made and made[0].networks else 0
    return {
        "frames": n,
        "cpu": cpu,
        "pixels": {k: v / n for k, v in seen.pixels.items()},
        "full": f"{full}/{calls}" if calls else "-",
        "crops": sum(s.crops for s in made) / n,
        "tracks": len(plan.tracks),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="*", type=Path)
    ap.add_argument("--frames", type=int)
    ap.add_argument("--moving", action="store_true")
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=KEY=VALUE ...",
        help="a named set of Settings overrides, space-separated (repeatable)",
    )
    args = ap.parse_args()
    from blur.settings import Settings

    variants = {}
    for spec in args.variant or ["default="]:
        name, _, rest = spec.partition("=")
        variants[name] = Settings().merged(**parse_overrides(rest.split()))
    with tempfile.TemporaryDirectory(prefix="blur-scan-cost-") as tmp:
        videos = list(args.videos)
        if args.moving:
            import moving_clip

            videos.append(Path(tmp) / "moving_1280x720.mp4")
            moving_clip.build(videos[-1], DEFAULT_SET)
        if args.frames:
            from plates import excerpt

            videos = [excerpt(v, Path(tmp) / f"{v.stem}_first{args.frames}.mp4", args.frames) for v in videos]
        print(
            f"{'video':28} {'variant':10} {'frames':>6} {'cpu ms/f':>9} {'MP/frame':>30} "
            f"{'full':>9} {'crops/f':>7} {'tracks':>6}"
        )
        for v in videos:
            for name, settings in variants.items():
                r = cost(v, settings)
                mp = ", ".join(f"{k} {p / 1e6:.2f}" for k, p in sorted(r["pixels"].items()))
                print(
                    f"{v.name[:28]:28} {name:10} {r['frames']:6d} "
                    f"{1000 * r['cpu'] / r['frames']:9.0f} {mp:>30} {r['full']:>9} "
                    f"{r['crops']:7.1f} {r['tracks']:6d}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
