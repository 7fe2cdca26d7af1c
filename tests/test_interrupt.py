"""Ctrl-C and SIGTERM in the middle of a video: quick exit (130/143), no output, no temp file."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from conftest import write_video


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    # Tiny frames (cheap to scan) but many of them, rendered with a slow preset, so the
    # render stage lasts a few seconds and the signal arrives while the temp file is open.
    return write_video(tmp_path_factory.mktemp("long") / "long.mp4", frames=300, size=(160, 120))


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_render_leaves_nothing(tmp_path, long_clip, sig, code):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "long.blurred.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "blur", str(long_clip), "-o", str(out), "-q", "--preset", "veryslow"],
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not any(p.name.endswith(".part") for p in out_dir.iterdir()):
        assert proc.poll() is None, "blur finished before the render started; use a longer clip"
        assert time.monotonic() < deadline, "no temp file appeared"
        time.sleep(0.02)
    time.sleep(0.3)  # well inside the render
    proc.send_signal(sig)
    sent = time.monotonic()
    proc.wait(timeout=10)
    elapsed = time.monotonic() - sent
    stderr = proc.stderr.read().decode()
    assert proc.returncode == code, stderr
    assert elapsed < 2.5, f"took {elapsed:.1f} s to stop"
    assert list(out_dir.iterdir()) == [], "an output or temp file was left behind"
    assert "no output was kept" in stderr
