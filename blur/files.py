"""Where outputs go, and how they appear: only complete, never over an input."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UsageError
from .media import is_media, kind_of, video

OUTPUT_TAG = ".blurred"


def default_output(src: Path) -> Path:
    """``NAME.blurred.EXT`` beside the input (videos become .mp4, or .mkv for MKV input)."""
    ext = video.output_format(src)[1] if kind_of(src) == "video" else src.suffix
    return src.with_name(f"{src.stem}{OUTPUT_TAG}{ext}")


def _mirrored(src: Path, root: Path, out_root: Path) -> Path:
    rel = src.relative_to(root)
    ext = video.output_format(src)[1] if kind_of(src) == "video" else src.suffix
    return out_root / rel.with_suffix(ext)


def walk(folder: Path) -> Iterator[Path]:
    """Media files below ``folder``, sorted; symlinked folders are not followed (no loops),
    hidden files and earlier blur outputs (``*.blurred.*``) are skipped."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and not d.endswith(OUTPUT_TAG))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.startswith(".") or OUTPUT_TAG + "." in name:
                continue
            if is_media(path):
                yield path


def plan_outputs(inputs: list[Path], output: Path | None) -> list[tuple[Path, Path]]:
    """Pair every input file with its output path.

    Args:
        inputs: files and folders as the user gave them.
        output: ``-o``: a file (one input file), or a folder (several inputs, or a folder input,
            whose tree is mirrored). None: beside each input (``NAME.blurred.EXT``), and
            ``FOLDER.blurred/`` for a folder.
    """
    pairs: list[tuple[Path, Path]] = []
    several = len(inputs) > 1
    for item in inputs:
        if not item.exists():
            raise UsageError("no such file or folder", item)
        if item.is_dir():
            root = item.resolve()
            out_root = output if output is not None else root.with_name(root.name + OUTPUT_TAG)
            if several and output is not None:
                out_root = output / root.name
            pairs += [(src, _mirrored(src, item, out_root)) for src in walk(item)]
        elif output is None:
            pairs.append((item, default_output(item)))
        elif several or output.is_dir() or str(output).endswith(os.sep):
            dst = _mirrored(item, item.parent, output)
            pairs.append((item, default_output(item) if dst.resolve() == item.resolve() else dst))
        else:
            pairs.append((item, output))
    return pairs


def check_output(src: Path, dst: Path, overwrite: bool) -> None:
    """Refuse to write over the input, and over an existing file unless ``overwrite``."""
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise UsageError(f"output {dst} is the input itself; refusing to overwrite it", src)
    if dst.resolve() == src.resolve():
        raise UsageError(f"output {dst} is the input itself; refusing to overwrite it", src)
    if dst.exists() and not overwrite:
        raise UsageError(f"output {dst} already exists (use --overwrite to replace it)", src)
    if dst.exists() and dst.is_dir():
        raise UsageError(f"output {dst} is a folder", src)


@contextmanager
def atomic_output(dst: Path) -> Iterator[Path]:
    """Yield a temp path beside ``dst``; rename it to ``dst`` only if the block succeeds.

    On any exception (KeyboardInterrupt included) the temp file is removed, so no partial
    output ever exists under the final name or lingers under the temp name.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        yield tmp
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
