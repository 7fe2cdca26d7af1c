"""The benchmarks still run against the current code: each on a few items, as a smoke test (the
numbers they print are for the README, not checked here)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_video

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"


def run(*args: str, timeout: int = 240) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def labelled(name: str) -> Path:
    path = EVAL / name
    if not path.is_dir():
        pytest.skip(f"labelled set {path} is not available (../shared/eval is absent)")
    return path


def test_recall_benchmark_runs():
    out = run("benchmarks/recall.py", str(labelled("faces-dev")), "--limit", "3")
    assert "cover" in out and "3 images" in out


def test_plates_benchmark_runs():
    out = run(
        "benchmarks/plates.py",
        "--data",
        str(labelled("plates-dev")),
        "--limit",
        "3",
        "--suite",
        "dev",
        "--suite",
        "synthetic",
        "--classes",
        "vanity,dim",
        "--per-class",
        "1",
    )
    assert "| all | 3 |" in out  # the dev photos
    assert "| vanity | 1 |" in out and "| dim | 1 |" in out  # the rendered plates


def test_speed_benchmark_runs(tmp_path):
    clip = write_video(tmp_path / "clip.mp4", frames=4)
    out = run(
        "benchmarks/speed.py",
        "--files",
        str(clip),
        "--frames",
        "3",
        "--runs",
        "1",
        "--no-deface",
        "--blur",
        "default=--only faces --preset ultrafast",
    )
    assert "default/floor" in out


def test_redacted_share_benchmark_runs(tmp_path):
    clip = write_video(tmp_path / "clip.mp4", frames=4)
    out = run("benchmarks/redacted_share.py", str(clip), "--frames", "3")
    rows = [
        line.split()
        for line in out.splitlines()
        if line.split()[:2] in (["clip", "blur"], ["clip", "deface"])
    ]
    # deface is not a dependency of blur: compared only where it is installed.
    tools = ["blur", "deface"] if importlib.util.find_spec("deface") else ["blur"]
    assert [r[1] for r in rows] == tools and all(r[2] == "3" for r in rows)


def test_small_faces_benchmark_runs():
    out = run(
        "benchmarks/small_faces.py",
        str(labelled("faces-dev")),
        "--limit",
        "2",
        "--copies",
        "original",
        "half",
    )
    assert "original / retinaface" in out and "half / centerface" in out


def test_moving_clip_and_scan_cost_run(tmp_path):
    dev = labelled("faces-dev")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import moving_clip

        clip = tmp_path / "moving.mp4"
        truth = moving_clip.build(clip, dev, frames=3)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert len(truth) == 3 and all(len(faces) >= 10 for faces in truth)
    for faces in truth:
        for _, (x1, y1, x2, y2) in faces:
            assert 0 <= x1 < x2 <= moving_clip.WIDTH and 0 <= y1 < y2 <= moving_clip.HEIGHT
    out = run(
        "benchmarks/scan_cost.py",
        str(clip),
        "--variant",
        "before=analyse=every-frame",
        "--variant",
        "after=kinds=('face',)",
    )
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [r[1] for r in rows] == ["before", "after"] and all(r[2] == "3" for r in rows)
