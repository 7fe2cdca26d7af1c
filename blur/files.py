"""Where outputs go, and how they appear: only complete, never over an input."""

from __future__ import annotations

import errno
import glob
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UsageError
from .media import heif, is_media, is_video, kind_of, video

OUTPUT_TAG = ".blurred"
# Extensions naming the same still format: the output is written in the input's format, so its
# name must say so (photo.jpg -o out.png would be a JPEG named .png).
_SAME_FORMAT = [{".jpg", ".jpeg"}, {".tif", ".tiff"}, {".png", ".apng"}, {".webp"}, {".bmp"}, {".gif"}]
# Video outputs are MP4 (Matroska for .mkv); these names suit what is written.
_VIDEO_OUTPUTS = {".mp4", ".m4v", ".mov", ".mkv"}


def output_suffix(src: Path, keep_format: bool = False) -> str:
    """The extension of what is written for ``src``: videos become .mp4 (.mkv for MKV input),
    HEIC/HEIF/AVIF photos .jpg (their own with ``keep_format``), the rest keep theirs."""
    if is_video(src):
        return video.output_format(src)[1]
    if heif.is_heif(src):
        return heif.default_suffix(src, keep_format)
    return src.suffix


def default_output(src: Path, keep_format: bool = False) -> Path:
    """``NAME.blurred.EXT`` beside the input, EXT as ``output_suffix`` says."""
    return src.with_name(f"{src.stem}{OUTPUT_TAG}{output_suffix(src, keep_format)}")


def _mirrored(src: Path, root: Path, out_root: Path, keep_format: bool = False) -> Path:
    rel = src.relative_to(root)
    return out_root / rel.with_suffix(output_suffix(src, keep_format))


def walk(folder: Path, outputs: bool = False) -> Iterator[Path]:
    """Media files below ``folder``, sorted; symlinked folders are not followed (no loops),
    hidden files and folders are skipped, and so are earlier blur outputs (``*.blurred.*``,
    ``FOLDER.blurred/``) unless ``outputs`` (``blur check`` looks at them too).

    Raises:
        UsageError: a folder cannot be listed.
    """
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False, onerror=_unreadable):
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and (outputs or not d.endswith(OUTPUT_TAG))
        )
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.startswith(".") or (not outputs and OUTPUT_TAG + "." in name):
                continue
            if is_media(path):
                yield path


def _unreadable(exc: OSError) -> None:
    """A folder that cannot be listed fails the run: skipping it would leave its photos out
    without a word."""
    raise UsageError(f"cannot read this folder: {exc.strerror or exc}", exc.filename)


def plan_outputs(
    inputs: list[Path], output: Path | str | None, keep_format: bool = False
) -> list[tuple[Path, Path]]:
    """Pair every input file with its output path.

    Args:
        inputs: files and folders as the user gave them.
        output: ``-o``: a file (one input file), or a folder (several inputs, a folder input
            whose tree is mirrored, an existing folder, or a name ending in "/"). None: beside
            each input (``NAME.blurred.EXT``), and ``FOLDER.blurred/`` for a folder.
        keep_format: HEIC/HEIF/AVIF outputs keep their format (else they become JPEG).

    Raises:
        UsageError: a missing input, or two inputs that would share an output, or an output
            that is one of the inputs.
    """
    # A str keeps a trailing "/" that pathlib drops: "-o new/" means a folder to create.
    as_folder = isinstance(output, str) and output.endswith(("/", os.sep))
    output = Path(output) if output is not None else None
    pairs: list[tuple[Path, Path]] = []
    several = len(inputs) > 1
    for item in inputs:
        item = Path(item)
        if not item.exists():
            raise UsageError("no such file or folder", item)
        if item.is_dir():
            root = _real(item)
            out_root = output if output is not None else root.with_name(root.name + OUTPUT_TAG)
            if several and output is not None:
                out_root = output / root.name
            pairs += [
                (src, _mirrored(src, item, out_root, keep_format))
                for src in walk(item)
                if not _inside(src, out_root)
            ]  # outputs of an earlier run, not inputs
        elif output is None:
            pairs.append((item, default_output(item, keep_format)))
        elif several or as_folder or output.is_dir():
            dst = _mirrored(item, item.parent, output, keep_format)
            pairs.append((item, default_output(item, keep_format) if _real(dst) == _real(item) else dst))
        else:
            pairs.append((item, output))
    _check_distinct(pairs, keep_format)
    return pairs


def _real(path: Path) -> Path:
    """The absolute path with symlinks resolved; a symlink loop resolves to itself instead of
    raising (``Path.resolve`` raises RuntimeError on loops before Python 3.13)."""
    return Path(os.path.realpath(path))


def _inside(path: Path, folder: Path) -> bool:
    return _real(path).is_relative_to(_real(folder))


def _check_distinct(pairs: list[tuple[Path, Path]], keep_format: bool = False) -> None:
    """No output may be written twice in one run, or land on another input."""
    inputs = {_real(src) for src, _ in pairs}
    seen: dict[Path, Path] = {}
    for src, dst in pairs:
        key = _real(dst)
        if key == _real(src):
            raise UsageError(f"output {dst} is the input itself; refusing to overwrite it", src)
        if key in inputs:
            raise UsageError(f"output {dst} would replace an input file", src)
        if key in seen:
            hint = ""
            if not keep_format and output_suffix(seen[key], True) != output_suffix(src, True):
                # X.HEIC and X.JPG both become X.jpg unless each keeps its own format.
                hint = " (--keep-format writes each in its own format)"
            raise UsageError(f"{seen[key]} and {src} would both be written to {dst}{hint}", src)
        seen[key] = src


def check_output(src: Path, dst: Path, overwrite: bool) -> None:
    """Refuse to write over the input, and over an existing file unless ``overwrite``."""
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise UsageError(f"output {dst} is the input itself; refusing to overwrite it", src)
    if _real(dst) == _real(src):
        raise UsageError(f"output {dst} is the input itself; refusing to overwrite it", src)
    if dst.exists() and not overwrite:
        raise UsageError(f"output {dst} already exists (use --overwrite to replace it)", src)
    if dst.exists() and dst.is_dir():
        raise UsageError(f"output {dst} is a folder", src)
    suffix = dst.suffix.lower()
    if kind_of(src) == "video":
        expected = _VIDEO_OUTPUTS
    elif heif.is_heif(src):
        expected = heif.output_suffixes(src)
    else:
        expected = next(
            (group for group in _SAME_FORMAT if src.suffix.lower() in group), {src.suffix.lower()}
        )
    if suffix not in expected:
        raise UsageError(
            f"output {dst} must end in {' or '.join(sorted(expected))} (the format "
            f"written); to write into a folder, end the name with /",
            src,
        )


_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NOT_ALLOWED = {errno.EACCES, errno.EPERM, errno.EROFS}


def describe_os_error(exc: OSError, dst: Path) -> str:
    """One line saying what the system refused while ``dst`` was being written (or its input
    read), naming the output rather than its hidden temp file."""
    where = str(exc.filename) if exc.filename else None
    if where and Path(where).name.startswith(f".{dst.name}.") and where.endswith(".part"):
        where = str(dst)  # the temp file is an implementation detail
    reason = (exc.strerror or str(exc) or exc.__class__.__name__).rstrip(".")
    if exc.errno in _NO_SPACE:
        return f"no space left on the device while writing {dst} ({reason.lower()})"
    if exc.errno in _NOT_ALLOWED:
        folder = dst.parent if where in (None, str(dst)) else where
        return f"cannot write to {folder}: {reason.lower()}"
    return f"{reason.lower()}: {where}" if where else reason.lower()


@contextmanager
def atomic_output(dst: Path) -> Iterator[Path]:
    """Yield a temp path beside ``dst``; rename it to ``dst`` only if the block succeeds.

    On any exception (KeyboardInterrupt included) the temp file is removed, so no partial
    output ever exists under the final name or lingers under the temp name.
    """
    for folder in (dst.parent, *dst.parent.parents):  # mkdir would say just "File exists"
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                raise UsageError(f"cannot write {dst}: {folder} is a file, not a folder")
            break
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(dst)
    try:
        yield tmp
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()


def temp_path(dst: Path, part: str | None = None) -> Path:
    """A new hidden temp file name beside ``dst``; ``part`` names a piece of it (a segment)."""
    piece = f"{part}." if part else ""
    return dst.with_name(f".{dst.name}.{piece}{uuid.uuid4().hex[:8]}.part")


def temp_files(dst: Path, part: str | None = None) -> list[Path]:
    """The temp files ``temp_path`` named for ``dst`` that exist: after a process was killed
    while writing, the only trace it leaves. ``part``: only that piece's ("": only those of
    the output itself); None: all of them."""
    piece = (re.escape(f"{part}.") if part else "") if part is not None else r"(?:seg\d+\.)?"
    name = re.compile(rf"\.{re.escape(dst.name)}\.{piece}[0-9a-f]{{8}}\.part")
    found = glob.glob(os.path.join(glob.escape(str(dst.parent)), f".{glob.escape(dst.name)}.*"))
    return sorted(Path(p) for p in found if name.fullmatch(os.path.basename(p)))
