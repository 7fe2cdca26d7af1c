"""A small JSON record of how an output was made, for a newsroom to keep beside what it publishes.

It names blur's version, the models (with the SHA-256 of each model file), the settings, and
the SHA-256 of the input, the regions file and the output. With it anyone holding the original can
show that this output came from it, while the manifest itself reveals nothing of the original:
no pixels, no file name (names often say who or where), no metadata.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import platform
from pathlib import Path

from . import detectors
from .files import atomic_output
from .settings import Settings

FORMAT = "blur-manifest/1"


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (videos can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def models(settings: Settings) -> list[dict]:
    """The detectors a run with ``settings`` uses, with their weight files' hashes."""
    out = []
    for kind in settings.kinds:
        cls = detectors.for_kind(kind)
        entries = [cls]
        if kind == "face" and settings.face_small_model == "retinaface":
            from .detectors.retinaface import RetinaFace  # the model of the small-face pass

            entries.append(RetinaFace)
        for entry in entries:
            dist, files = entry.weights()  # where the detector itself loads them from
            out.append(
                {
                    "kind": kind,
                    "detector": entry.name,
                    "package": dist,
                    "package_version": _version(dist),
                    "files": [{"name": f.name, "sha256": sha256(f)} for f in files],
                }
            )
    return out


def build(src: Path, dst: Path, settings: Settings, result=None, regions_path: Path | None = None) -> dict:
    """The manifest of one rendered file.

    Args:
        src: the input (hashed only).
        dst: the output as written.
        settings: the settings it was rendered with.
        result: the ``FileResult`` of the render, for its counts.
        regions_path: the regions file rendered from, if any (hashed only).
    """
    import onnxruntime

    from . import __version__

    settings_dict = dataclasses.asdict(settings)
    settings_dict.pop("overwrite", None)  # how the file was written, not how it was made
    data = {
        "format": FORMAT,
        "blur_version": __version__,
        "libraries": {name: _version(name) for name in ("av", "opencv-python", "onnx", "numpy", "pillow")},
        # The build that is imported (the CPU one, onnxruntime-gpu, ...), by what it provides.
        "onnxruntime": {
            "version": onnxruntime.__version__,
            "providers": onnxruntime.get_available_providers(),
        },
        "python": platform.python_version(),
        "models": models(settings),
        "settings": settings_dict,
        "input": {"sha256": sha256(src), "bytes": Path(src).stat().st_size},
        "output": {"sha256": sha256(dst), "bytes": Path(dst).stat().st_size},
    }
    if regions_path is not None:
        data["regions"] = {"sha256": sha256(regions_path)}
    if result is not None:
        plan = getattr(result, "plan", None)
        data["redaction"] = {
            "frames": result.frames,
            "frames_redacted": result.frames_redacted,
            "tracks_redacted": result.tracks,
            "tracks_kept": sum(1 for t in plan.tracks if t.keep) if plan else None,
            "metadata_removed": list(result.metadata_removed),
        }
    return data


def write(path: Path, data: dict) -> Path:
    """Write a manifest atomically."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
    return path
