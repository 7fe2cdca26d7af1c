"""The review commands: ``blur scan`` (find what to redact, write a regions file to look at and
edit), ``blur render`` (redact exactly as a regions file says) and ``blur check`` (re-scan any
file sensitively). ``blur.cli`` registers them beside ``blur run``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import cli_display as show
from . import pipeline
from .cli_errors import fail, failure
from .cli_options import (
    DEFAULTS,
    AudioOpt,
    Crf,
    DeviceOpt,
    Gap,
    KeepFormat,
    MaskScale,
    NoRecord,
    OnFrameErrorOpt,
    OnlyOpt,
    Overwrite,
    Pad,
    PresetOpt,
    Quiet,
    ShapeOpt,
    Sideways,
    StyleOpt,
    TextOpt,
    Threshold,
    kinds_of,
    settings_from,
)
from .errors import BlurError, ExitStatus, RegionsError, UsageError


def _free(path: Path, overwrite: bool, *taken: Path) -> None:
    """Refuse to write ``path`` over an input or another output, or over a file unless told."""
    for other in taken:
        if other is not None and path.resolve() == Path(other).resolve():
            fail(UsageError(f"{path} would replace {other}"))
    if path.exists() and not overwrite:
        fail(UsageError(f"{path} already exists (use --overwrite to replace it)"))


def scan_command(
    path: Path = typer.Argument(..., metavar="FILE", help="A photo or video."),
    regions: Optional[Path] = typer.Option(
        None,
        "--regions",
        metavar="FILE",
        help="Write the regions file here (default: NAME.regions.json beside the input).",
    ),
    report: Optional[Path] = typer.Option(
        None,
        "--report",
        metavar="FILE",
        help="Also write a review page (.html) or summary (.json). The page shows unredacted faces.",
    ),
    report_redacted: bool = typer.Option(
        False,
        "--report-redacted",
        help="Show the page's crops redacted, as in the output (safe to share with an editor).",
    ),
    overwrite: Overwrite = False,
    threshold: Threshold = None,
    gap: Gap = None,
    pad: Pad = None,
    only: OnlyOpt = None,
    text: TextOpt = False,
    sideways: Sideways = False,
    on_frame_error: OnFrameErrorOpt = None,
    device: DeviceOpt = None,
    quiet: Quiet = False,
):
    """Find what to redact and write it to a regions file to look at and edit; no output yet."""
    from . import regions as regions_file
    from . import report as review

    settings = settings_from(
        kinds=kinds_of(only, text),
        face_threshold=threshold,
        max_gap_seconds=gap,
        pad_seconds=pad,
        fail_frame=on_frame_error,
        face_rotate=sideways,
        device=device,
    )
    regions = regions or path.with_name(f"{path.stem}.regions.json")
    _free(regions, overwrite, path)
    if report is not None:
        _free(report, overwrite, path, regions)
    try:
        with show.FileProgress(quiet) as progress:
            progress.start(path.name)
            plan = pipeline.scan(path, settings, progress)
        regions_file.save(regions, plan.to_dict())
        if report is not None:
            review.write(report, path, plan, settings, report_redacted, regions)
    except Exception as exc:
        fail(failure(exc, path, lambda e: BlurError(f"{e.strerror or e}: {e.filename or path}")))
    if not quiet:
        show.scanned(path, plan, regions, report, report_redacted)


def render_command(
    path: Path = typer.Argument(..., metavar="FILE", help="The photo or video that was scanned."),
    regions: Path = typer.Option(
        ..., "--regions", metavar="FILE", help="The regions file to honour, exactly."
    ),
    output: Optional[Path] = typer.Option(
        None, "-o", "--output", metavar="FILE", help="Output file (default NAME.blurred.EXT)."
    ),
    overwrite: Overwrite = False,
    style: StyleOpt = None,
    shape: ShapeOpt = None,
    mask_scale: MaskScale = None,
    crf: Crf = None,
    preset: PresetOpt = None,
    audio: AudioOpt = None,
    manifest: Optional[Path] = typer.Option(
        None,
        "--manifest",
        metavar="FILE",
        help="Write a JSON manifest: versions, model and file hashes, settings.",
    ),
    keep_format: KeepFormat = False,
    no_record: NoRecord = False,
    quiet: Quiet = False,
):
    """Redact FILE exactly as a regions file says (after blur scan and your corrections)."""
    from . import manifest as manifest_file
    from .errors import MediaError
    from .files import default_output, describe_os_error

    settings = settings_from(
        style=style,
        shape=shape,
        mask_scale=mask_scale,
        crf=crf,
        preset=preset,
        audio=audio,
        overwrite=overwrite,
    )
    if no_record:
        settings = settings.merged(record=False)
    dst = output or default_output(path, keep_format)
    _free(dst, overwrite, path, regions)
    if manifest is not None:
        _free(manifest, overwrite, path, regions, dst)
    try:
        plan = _plan_from(path, regions)
        with show.FileProgress(quiet) as progress:
            progress.start(path.name)
            result = pipeline.render(path, dst, plan, settings, progress)
        if manifest is not None:
            manifest_file.write(manifest, manifest_file.build(path, dst, settings, result, regions))
    except Exception as exc:
        fail(failure(exc, path, lambda e: MediaError(describe_os_error(e, dst), path)))
    if not quiet:
        show.rendered(dst, plan, result, manifest)


def _plan_from(path: Path, regions: Path):
    """The plan in the regions file ``regions``, for ``path``; its errors name that file."""
    from . import regions as regions_file

    try:
        return pipeline.load_plan(path, regions_file.load(regions))
    except RegionsError as exc:
        exc.path = exc.path or regions
        raise


def check_command(
    paths: list[Path] = typer.Argument(..., metavar="PATH...", help="Photos, videos or folders to check."),
    regions: Optional[Path] = typer.Option(
        None,
        "--regions",
        metavar="FILE",
        help="The regions file the output was rendered from "
        "(one file): detections on its redacted or kept "
        "regions do not count.",
    ),
    # Not the shared options: these describe the re-scan and the file rendered, and check
    # prints its verdicts even when quiet.
    threshold: Optional[float] = typer.Option(
        None,
        "--threshold",
        min=0.01,
        max=0.99,
        metavar="SCORE",
        help=f"Face threshold of the re-scan (default {DEFAULTS.check_face_threshold}).",
    ),
    mask_scale: Optional[float] = typer.Option(
        None,
        "--mask-scale",
        min=1.0,
        max=4.0,
        metavar="FACTOR",
        help="Mask scale the output was rendered with.",
    ),
    device: DeviceOpt = None,
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Only the verdict per file."),
):
    """Re-scan files sensitively: exit 0 only if no face, plate or identifying metadata is found."""
    from . import check as checker
    from . import regions as regions_file
    from .files import walk

    settings = settings_from(check_face_threshold=threshold, mask_scale=mask_scale, device=device)
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            try:
                files += walk(p, outputs=True)
            except BlurError as exc:
                fail(exc)
        elif p.exists():
            files.append(p)
        else:
            fail(UsageError("no such file or folder", p))
    if regions is not None and len(files) != 1:
        fail(UsageError("--regions needs exactly one file to check"))
    if not files:
        fail(UsageError("no photos or videos found in " + ", ".join(map(str, paths))))
    data = None
    if regions is not None:
        try:
            data = regions_file.load(regions)
        except BlurError as exc:
            fail(exc)
    status = ExitStatus.OK
    with show.FileProgress(quiet) as progress:
        for f in files:
            progress.start(f.name)
            try:
                result = checker.check(f, settings, data, progress)
            except Exception as exc:  # this file fails (never "clean"), the others go on
                if isinstance(exc, RegionsError) and exc.path is None:
                    exc.path = regions  # the regions file does not fit this file
                why = failure(exc, f, lambda e, f=f: BlurError(f"{e.strerror or e}", f))
                show.error(why)
                status = max(status, why.exit_status)
                continue
            if not result.clean:
                status = ExitStatus.FOUND
            show.checked(result, quiet, regions is not None)
    raise typer.Exit(int(status))
