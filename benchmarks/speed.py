"""Speed benchmark: blur vs the peer tool deface vs the encoder floor, on the same files.

Prints wall time (median of --runs), frames per second, CPU time (user + system of the process
and its threads), peak RSS, and the ratios blur/deface and blur/floor, by wall and by CPU time
(on a shared machine wall time depends on what else runs; CPU time much less). The floor is
decode + re-encode with blur's encoder settings and no detection. deface runs from its own
virtual environment (created on first use with ``pip install deface==1.5.0 onnxruntime``), so it
never shares packages with blur.

    python benchmarks/speed.py                       # vtest.avi + a generated 1080p clip
    python benchmarks/speed.py --files ../shared/media/vtest.avi --runs 1 --no-deface
    python benchmarks/speed.py --generate 4k:3 --no-deface --no-floor      # peak memory at 4K
    python benchmarks/speed.py --files ../shared/media/vtest.avi --no-deface \
        --blur default= --blur stride3="--small-face-stride 3"   # compare blur variants
    python benchmarks/speed.py --files ../shared/media/vtest.avi --frames 100 --runs 1   # quick
    python benchmarks/speed.py --moving --runs 1 --no-deface \
        --blur changes= --blur every="--analyse every-frame"   # the hand-held clip, both ways

``--moving`` adds the hand-held 1280x720 clip of ``video_recall.py --clip moving`` (made from
the labelled photos in ``../shared/eval/faces-dev``, in a temporary folder). On a shared machine
compare the ``cpu s`` column (the process's CPU time), not wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFACE_VENV = Path(os.environ.get("BLUR_DEFACE_VENV", Path(tempfile.gettempdir()) / "blur-bench-deface"))


def run(cmd: list[str]) -> dict:
    """Run a command; wall time, CPU time (user+sys) and peak RSS of that child alone."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({status}):\n{err[-2000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024}


def floor_script(src: Path, dst: Path, crf: int, preset: str) -> list[str]:
    code = f"""
import av
from fractions import Fraction
inp = av.open({str(src)!r}); vin = inp.streams.video[0]; vin.thread_type = "AUTO"
out = av.open({str(dst)!r}, "w", format="mp4")
vs = None
for f in inp.decode(vin):
    img = f.to_ndarray(format="rgb24")
    if vs is None:
        vs = out.add_stream("libx264", rate=vin.average_rate or 25)
        vs.width, vs.height = img.shape[1], img.shape[0]
        vs.pix_fmt = "yuv420p"; vs.time_base = vin.time_base
        vs.codec_context.time_base = vin.time_base
        vs.options = {{"crf": "{crf}", "preset": "{preset}"}}
    nf = av.VideoFrame.from_ndarray(img, format="rgb24"); nf.pts = f.pts; nf.time_base = vin.time_base
    out.mux(vs.encode(nf))
out.mux(vs.encode(None)); out.close()
"""
    return [sys.executable, "-c", code]


def deface_python() -> Path:
    py = DEFACE_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(DEFACE_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "deface==1.5.0", "onnxruntime"], check=True)
    return py


SIZES = {"1080p": (1920, 1080), "4k": (3840, 2160), "720p": (1280, 720)}


def generated_1080p(
    path: Path, seconds: float = 20, fps: int = 25, size: tuple[int, int] = (1920, 1080)
) -> Path:
    """A clip with faces from the astronaut (samples/astronaut.jpg) moving over a textured
    background."""
    from PIL import Image

    width, height = size
    astronaut = np.asarray(Image.open(ROOT / "samples" / "astronaut.jpg").convert("RGB"))
    face = astronaut[20:260, 120:330]
    rng = np.random.default_rng(0)
    background = (rng.random((height, width, 3)) * 60 + 90).astype(np.uint8)
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=fps)
    vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
    vs.options = {"crf": "20", "preset": "veryfast"}
    for i in range(int(seconds * fps)):
        img = background.copy()
        for k, scale in enumerate((1.0, 0.5, 0.25)):
            f = face if scale == 1 else np.ascontiguousarray(face[:: int(1 / scale), :: int(1 / scale)])
            x = int((i * (4 + 3 * k) + 300 * k) % (width - f.shape[1]))
            y = (150 + 300 * k) * height // 1080
            img[y : y + f.shape[0], x : x + f.shape[1]] = f
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i
        frame.time_base = Fraction(1, fps)
        out.mux(vs.encode(frame))
    out.mux(vs.encode(None))
    out.close()
    return path


def frame_count(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", nargs="*", type=Path, help="videos (default: vtest.avi + generated 1080p)")
    ap.add_argument(
        "--generate",
        action="append",
        default=[],
        metavar="SIZE:SECONDS",
        help=f"add a generated clip, SIZE one of {', '.join(SIZES)} (e.g. 4k:3)",
    )
    ap.add_argument(
        "--moving", action="store_true", help="add the hand-held camera clip made from the labelled photos"
    )
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--frames", type=int, help="time only the first N frames of each file (a near-lossless copy)"
    )
    ap.add_argument("--no-deface", action="store_true")
    ap.add_argument("--no-floor", action="store_true")
    ap.add_argument("--blur-args", default="", help="extra arguments for blur, e.g. '--jobs 2'")
    ap.add_argument(
        "--blur",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="a blur variant to time (repeatable), e.g. stride3='--small-face-stride 3'",
    )
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--preset", default="medium")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="blur-speed-"))
    files = list(args.files or [])
    if args.moving:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import moving_clip

        moving_clip.build(work / "moving_1280x720.mp4", SHARED / "eval" / "faces-dev")
        files.append(work / "moving_1280x720.mp4")
    if not files and not args.generate and not args.moving:
        files = [SHARED / "media" / "vtest.avi"] if (SHARED / "media" / "vtest.avi").exists() else []
        files.append(generated_1080p(work / "moving_faces_1080p.mp4"))
    for spec in args.generate:
        size, _, seconds = spec.partition(":")
        files.append(
            generated_1080p(work / f"moving_faces_{size}.mp4", float(seconds or 20), size=SIZES[size])
        )
    if args.frames:
        from plates import excerpt  # benchmarks/ is on the path: this script's own folder

        files = [excerpt(f, work / f"{f.stem}_first{args.frames}.mp4", args.frames) for f in files]
    variants = dict(v.split("=", 1) for v in args.blur) or {"blur": ""}
    blur_cmd = [sys.executable, "-m", "blur"]
    rows = []
    for src in files:
        n = frame_count(src)
        cmds = {
            name: blur_cmd
            + [
                str(src),
                "-o",
                str(work / f"{name}.mp4"),
                "--overwrite",
                "-q",
                "--crf",
                str(args.crf),
                "--preset",
                args.preset,
            ]
            + args.blur_args.split()
            + extra.split()
            for name, extra in variants.items()
        }
        if not args.no_floor:
            cmds["floor"] = floor_script(src, work / "floor.mp4", args.crf, args.preset)
        if not args.no_deface:
            deface = deface_python().with_name("deface")
            cmds["deface"] = [str(deface), str(src), "-o", str(work / "deface.mp4")]
        results = {}
        for name, cmd in cmds.items():
            runs = [run(cmd) for _ in range(args.runs)]
            results[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            r = results[name]
            rows.append((src.name, name, r["wall"], n / r["wall"], r["cpu"], r["rss_mb"]))
        for name in variants:
            b = results[name]
            for other in ("floor", "deface"):
                if other in results:
                    o = results[other]
                    rows.append(
                        (
                            src.name,
                            f"{name}/{other}: wall {b['wall'] / o['wall']:.2f}, "
                            f"cpu {b['cpu'] / o['cpu']:.2f}",
                            None,
                            None,
                            None,
                            None,
                        )
                    )
    print(f"{'file':28} {'tool':10} {'wall s':>8} {'fps':>7} {'cpu s':>8} {'peak MB':>8}")
    for f, tool, wall, fps, cpu, rss in rows:
        if wall is None:
            print(f"{f:28} {tool}")
        else:
            print(f"{f:28} {tool:10} {wall:8.1f} {fps:7.1f} {cpu:8.1f} {rss:8.0f}")
    print(
        f"machine: {os.cpu_count()} cores; runs per command: {args.runs} (median); "
        f"x264 --crf {args.crf} --preset {args.preset}; load average at the end "
        f"{os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
