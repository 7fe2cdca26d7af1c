"""``blur --cluster``: files as tasks on a real local Ray cluster (``ray start --head``).

The cluster is started once for the module with two CPUs and stopped after; the tests skip
with a reason when Ray is not installed (``pip install '.[ray]'``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import FAST, write_video

from blur import cluster, pipeline
from blur.cli import main
from blur.errors import UsageError

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_address():
    """HOST:PORT of a local Ray cluster with 2 CPUs, its workers importing this checkout."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install '.[ray]')")
    ray_cli = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
    if ray_cli is None:
        pytest.skip("the ray command is not installed (pip install '.[ray]')")
    # A short private temp folder (Ray's socket paths must stay under ~100 characters).
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    port = _free_port()
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        ),
        RAY_USAGE_STATS_ENABLED="0",
    )
    # --block: this process owns the cluster, and stopping it stops what it started (``ray
    # stop`` would stop every Ray cluster of this user on the machine).
    head = subprocess.Popen(
        [
            ray_cli,
            "start",
            "--head",
            "--block",
            "--num-cpus",
            "2",
            "--port",
            str(port),
            "--node-ip-address",
            "127.0.0.1",
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
            "--temp-dir",
            temp,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    raylet = Path(temp) / "session_latest" / "sockets" / "raylet"
    deadline = time.monotonic() + 120
    while not raylet.exists():
        if head.poll() is not None or time.monotonic() > deadline:
            head.kill()
            shutil.rmtree(temp, ignore_errors=True)
            pytest.fail(f"ray start failed: {head.stderr.read().decode()[-2000:]}")
        time.sleep(0.2)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def _run(capsys, *args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_.value.code, captured.out + captured.err


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


def test_without_ray_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(UsageError, match=r"pip install 'blur\[ray\]'"):
        cluster.connect("auto")


def test_no_cluster_at_the_address_is_a_usage_error(tmp_path, capsys):
    pytest.importorskip("ray", reason="Ray is not installed (pip install '.[ray]')")
    write_video(tmp_path / "a.mp4", frames=2)
    code, text = _run(capsys, tmp_path / "a.mp4", "--cluster", f"127.0.0.1:{_free_port()}")
    assert code == 2 and "no Ray cluster answers at" in text, text
    assert not list(tmp_path.glob("a.blurred*"))


def test_folder_on_cluster_failure_reported_rerun_skips(ray_address, tmp_path, capsys, face_frame):
    footage = tmp_path / "footage"
    (footage / "day2").mkdir(parents=True)
    write_video(footage / "a.mp4", frames=8)
    write_video(footage / "day2" / "face.mp4", frames=6, size=(240, 180), image=lambda i: face_frame)
    (footage / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    out = tmp_path / "out"

    code, text = _run(capsys, footage, "-o", f"{out}/", "--cluster", ray_address, "--preset", "ultrafast")
    assert code == 1, text  # one file failed, after the others finished
    assert "broken.mp4" in text and "cannot read it as a video" in text
    assert (out / "a.mp4").is_file() and (out / "day2" / "face.mp4").is_file()
    assert not (out / "broken.mp4").exists() and not _temps(out)
    assert "face.mp4" in text and "a.mp4" in text  # the summary names them as a local run does

    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}
    code, text = _run(capsys, footage, "-o", f"{out}/", "--cluster", ray_address, "--preset", "ultrafast")
    assert code == 1 and "2 file(s) skipped: the output exists" in text, text
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")} == before


def _long_render_clip(path: Path) -> Path:
    """600 identical flat frames: quick to scan (a repeated picture is analysed once) and a few
    seconds to render with x264's slowest preset, long enough to be stopped while rendering."""
    flat = np.full((120, 160, 3), 90, np.uint8)
    return write_video(path, frames=600, image=lambda i: flat)


def _holder(path_part: str) -> int | None:
    """The process that has a file whose name contains ``path_part`` open (Linux /proc)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if path_part in os.readlink(f"/proc/{pid}/fd/{fd}"):
                    return int(pid)
        except OSError:
            continue
    return None


def _when_rendering(out_dir: Path, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while True:
        temps = _temps(out_dir) if out_dir.exists() else []
        if temps:
            return temps[0]
        assert time.monotonic() < deadline, "no temp output appeared"
        time.sleep(0.02)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("split", [0, 1.0], ids=["whole", "segments"])
def test_killed_worker_is_retried_and_leaves_no_temp(ray_address, tmp_path, split):
    import threading

    clip = _long_render_clip(tmp_path / "long.mp4")
    out_dir = tmp_path / "out"
    killed = []

    def kill_the_renderer():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for temp in _temps(out_dir) if out_dir.exists() else []:
                pid = _holder(temp.name)  # being written (a finished segment is closed)
                if pid is not None:
                    time.sleep(0.2)
                    os.kill(pid, signal.SIGKILL)
                    killed.append((pid, temp))
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_renderer, daemon=True)
    killer.start()
    settings = FAST.merged(preset="veryslow")  # a render long enough to be killed in
    # Split: three segments (x264's default keyframe interval is 250 frames); the one killed
    # is then a segment's render, whose retry must replace its own temp file only.
    outcomes = list(
        cluster.anonymise_on_cluster(
            [(clip, out_dir / "long.mp4")], settings, ray_address, segment_seconds=split
        )
    )
    killer.join(timeout=5)
    assert killed, "the worker was not killed while rendering"
    assert not killed[0][1].exists()  # the killed attempt's temp file was removed
    [(index, result)] = outcomes
    assert not isinstance(result, Exception), result
    assert result.frames == 600 and (out_dir / "long.mp4").is_file()
    assert ("rendered in 3 segments on the cluster" in result.notes) == bool(split)
    assert (".seg" in killed[0][1].name) == bool(split)
    assert _temps(out_dir) == []


def test_ctrl_c_cancels_tasks_and_leaves_no_output(ray_address, tmp_path):
    clip = _long_render_clip(tmp_path / "long.mp4")
    out_dir = tmp_path / "out"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        ),
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "blur",
            str(clip),
            "-o",
            f"{out_dir}/",
            "-q",
            "--preset",
            "veryslow",
            "--cluster",
            ray_address,
        ],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        _when_rendering(out_dir)
    finally:
        proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    stderr = proc.stderr.read().decode()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert list(out_dir.iterdir()) == [], "an output or temp file was left"


def test_long_video_in_segments_on_cluster(ray_address, tmp_path, capsys, face_frame):
    from test_split import moving_face_clip

    clip = moving_face_clip(tmp_path / "walk.mp4", face_frame)
    out = tmp_path / "out.mp4"
    code, text = _run(
        capsys,
        clip,
        "-o",
        out,
        "--regions",
        tmp_path / "split.json",
        "--cluster",
        ray_address,
        "--split",
        "0.6",
        "--preset",
        "ultrafast",
    )
    assert code == 0, text
    assert re.search(r"rendered in 2[\s│]*segments", text), text  # the note, maybe folded
    whole = tmp_path / "whole.json"
    pipeline.anonymise(clip, tmp_path / "whole.mp4", FAST.merged(analyse="every-frame"), whole)
    assert json.loads((tmp_path / "split.json").read_text()) == json.loads(whole.read_text())
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames == 48
    assert not _temps(tmp_path)
