"""Cluster benchmark: a folder of clips and one long clip on 1 vs 2 workers of a local Ray cluster.

Needs Ray (``pip install '.[ray]'``). Generates the media (a face walking across a gradient,
H.264 with a keyframe every 2 s, AAC audio) into a temp folder, starts a local Ray cluster of
one or two one-CPU nodes (each a "worker": a task asks for the CPUs of the smallest node, so
one file or segment per node at a time), and prints:

- the folder: wall time of ``blur FOLDER -o OUT --cluster`` on 1 and 2 workers;
- the long clip: wall time of a single-process run, of the segmented path run in one process
  (the split overhead: cutting, joining the detections, rendering segments, concatenating),
  and of ``--cluster --split`` on 1 and 2 workers; whether every regions file equals the
  single-process one.

On a machine shared with other work, wall times are "under load"; the regions comparison is
not affected.

    python benchmarks/cluster.py                                # 4 clips of 5 s, one of 180 s
    python benchmarks/cluster.py --clips 2 --clip-seconds 3 --long-seconds 20 --split 5  # quick
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blur import pipeline, split  # noqa: E402
from blur.settings import Settings  # noqa: E402


def make_clip(path: Path, seconds: float, seed: int, size=(320, 240), rate: int = 25) -> Path:
    """A face walking across a moving gradient, H.264 (keyframe every 2 s) with AAC audio."""
    astronaut = np.asarray(Image.open(ROOT / "samples" / "astronaut.jpg").convert("RGB"))
    face = cv2.resize(astronaut[20:260, 140:380], (64, 64), interpolation=cv2.INTER_AREA)
    width, height = size
    rng = np.random.default_rng(seed)
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=rate)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.codec_context.gop_size = 2 * rate
    video.options = {"preset": "veryfast", "crf": "20", "sc_threshold": "0"}
    sound = out.add_stream("aac", rate=44100)
    sound.layout = "stereo"
    frames = int(seconds * rate)
    x, y, dx, dy = 20.0, 40.0, *rng.uniform(1.5, 3.5, 2)
    for i in range(frames):
        picture = np.empty((height, width, 3), np.uint8)
        picture[:] = (np.linspace(30, 220, width)[None, :, None] + i) % 255
        visible = (i // rate) % 7 != 3  # out of sight one second in seven
        if visible:
            picture[int(y) : int(y) + 64, int(x) : int(x) + 64] = face
        x, y = x + dx, y + dy
        if not 0 <= x <= width - 64:
            dx, x = -dx, min(max(x, 0), width - 64)
        if not 0 <= y <= height - 64:
            dy, y = -dy, min(max(y, 0), height - 64)
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame.pts = i
        out.mux(video.encode(frame))
    out.mux(video.encode(None))
    chunk = sound.codec_context.frame_size or 1024
    for start in range(0, int(seconds * 44100), chunk):
        wave = 0.2 * np.sin(2 * np.pi * 440 * np.arange(start, start + chunk) / 44100)
        samples = np.repeat(wave[None, :], 2, axis=0).astype(np.float32)
        audio = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
        audio.sample_rate, audio.pts, audio.time_base = 44100, start, Fraction(1, 44100)
        out.mux(sound.encode(audio))
    out.mux(sound.encode(None))
    out.close()
    return path


class LocalCluster:
    """``ray start --block`` processes this script owns: a head and ``nodes - 1`` more nodes,
    each with one CPU, all on this machine and this machine's loopback address."""

    def __init__(self, nodes: int):
        self.temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.env = dict(
            os.environ,
            RAY_USAGE_STATS_ENABLED="0",
            PYTHONPATH=os.pathsep.join(
                [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            ),
        )
        ray = shutil.which("ray", path=os.path.dirname(sys.executable)) or "ray"
        common = ["--block", "--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
        self.procs = [
            self._start(
                [
                    ray,
                    "start",
                    "--head",
                    "--port",
                    str(self.port),
                    "--include-dashboard",
                    "false",
                    "--temp-dir",
                    self.temp,
                    *common,
                ]
            )
        ]
        self._wait(lambda: (Path(self.temp) / "session_latest" / "sockets" / "raylet").exists())
        for _ in range(nodes - 1):
            self.procs.append(self._start([ray, "start", "--address", self.address, *common]))
        import ray as ray_module

        ray_module.init(address=self.address, logging_level="ERROR", log_to_driver=False)
        self._wait(lambda: sum(n["Alive"] for n in ray_module.nodes()) >= nodes)
        ray_module.shutdown()

    def _start(self, cmd):
        return subprocess.Popen(
            cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )

    @staticmethod
    def _wait(ready, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise RuntimeError("the local Ray cluster did not start")
            time.sleep(0.2)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(self.temp, ignore_errors=True)


def blur_cli(*args) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "blur", *map(str, args), "-q", "--overwrite"],
        check=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--clip-seconds", type=float, default=5)
    parser.add_argument("--long-seconds", type=float, default=180)
    parser.add_argument("--split", type=float, default=30, help="segment length, seconds")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--preset", default="veryfast")
    args = parser.parse_args()
    settings = Settings(preset=args.preset, overwrite=True)
    work = Path(tempfile.mkdtemp(prefix="blur-cluster-bench-"))
    try:
        folder = work / "footage"
        folder.mkdir()
        for i in range(args.clips):
            make_clip(folder / f"clip{i}.mp4", args.clip_seconds, seed=i)
        long = make_clip(work / "long.mp4", args.long_seconds, seed=99)
        segments = split.plan_segments(long, args.split)
        print(
            f"folder: {args.clips} clips of {args.clip_seconds:g} s; long clip: "
            f"{args.long_seconds:g} s, {len(segments)} segments of >= {args.split:g} s; "
            f"320x240, {os.cpu_count()} CPUs on this machine"
        )
        rows = []
        started = time.perf_counter()
        pipeline.anonymise(long, work / "single.mp4", settings, work / "single.json")
        single = time.perf_counter() - started
        rows.append(("long clip, one process, whole", single, "reference"))
        reference = json.loads((work / "single.json").read_text())
        started = time.perf_counter()
        split.anonymise_in_segments(long, work / "parts.mp4", settings, args.split, work / "parts.json")
        parts = time.perf_counter() - started
        rows.append(
            (
                "long clip, one process, in segments",
                parts,
                f"regions equal: {json.loads((work / 'parts.json').read_text()) == reference}"
                f"; split overhead {parts / single - 1:+.0%}",
            )
        )
        for n in map(int, args.workers.split(",")):
            cluster = LocalCluster(n)
            try:
                seconds = blur_cli(
                    folder,
                    "-o",
                    f"{work / f'out{n}'}/",
                    "--cluster",
                    cluster.address,
                    "--split",
                    "0",
                    "--preset",
                    args.preset,
                )
                rows.append((f"folder, {n} worker(s)", seconds, ""))
                regions = work / f"cluster{n}.json"
                seconds = blur_cli(
                    long,
                    "-o",
                    work / f"long{n}.mp4",
                    "--regions",
                    regions,
                    "--cluster",
                    cluster.address,
                    "--split",
                    args.split,
                    "--preset",
                    args.preset,
                )
                equal = json.loads(regions.read_text()) == reference
                rows.append(
                    (f"long clip, {n} worker(s), --split {args.split:g}", seconds, f"regions equal: {equal}")
                )
            finally:
                cluster.stop()
        print("\n| run | wall s | |\n|---|---:|---|")
        for name, seconds, note in rows:
            print(f"| {name} | {seconds:.1f} | {note} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
