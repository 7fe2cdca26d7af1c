"""The ``blur`` command: parses options, maps errors to exit codes.

Nothing else happens here: the work is in ``blur.pipeline``; the options and their choices are
declared in ``blur.cli_options``; what is shown (progress, the summary, error lines) is in
``blur.cli_display``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from contextlib import closing
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from . import __version__, batch, detectors, pipeline
from . import cli_display as show
from .cli_options import (
    DEFAULTS,
    AudioOpt,
    Command,
    Crf,
    DeviceOpt,
    Gap,
    Group,
    KeepFormat,
    MaskScale,
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
)
from .errors import BlurError, ExitStatus, RegionsError, SettingsError, UsageError
from .files import plan_outputs
from .settings import Settings

app = typer.Typer(cls=Group, add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Anonymise faces in photos and videos, offline. "
                       "`blur PATH...` is short for `blur run PATH...`.")
COMMANDS = {"run", "scan", "render", "check"}


def _settings(**options) -> Settings:
    """The defaults with every option that was given: one left out is None (a flag, False)."""
    try:
        return Settings().merged(**{key: value.value if isinstance(value, Enum) else value
                                    for key, value in options.items()
                                    if value is not None and value is not False})
    except SettingsError as exc:
        raise typer.BadParameter(str(exc)) from exc


class Stopped(BaseException):
    """Ctrl-C or SIGTERM, raised in the main thread so every cleanup (temp files) runs.

    Not a KeyboardInterrupt: Typer would swallow that into a silent exit.
    """

    def __init__(self, what: str, status: ExitStatus):
        super().__init__(what)
        self.status = status


def _on_signal(signum, frame):
    if signum == signal.SIGTERM:
        raise Stopped("terminated", ExitStatus.TERMINATED)
    raise Stopped("interrupted", ExitStatus.INTERRUPTED)


def _fail(exc: BlurError):
    show.error(exc)
    raise typer.Exit(int(exc.exit_status))


def _unexpected(exc: Exception, src: Path) -> BlurError:
    """A failure blur did not foresee, as a one-line error for that file (the atomic output
    has already removed its temp file). The traceback goes to the debug log."""
    logging.getLogger(__name__).debug("unexpected failure on %s", src, exc_info=exc)
    if isinstance(exc, MemoryError):
        return BlurError("out of memory (internal error: MemoryError)", src)
    detail = " ".join(str(exc).split()) or "no details"
    return BlurError(f"internal error: {exc.__class__.__name__}: {detail}", src)


def _failure(exc: Exception, path: Path, os_error) -> BlurError:
    """Why ``blur scan``, ``render`` or ``check`` failed on ``path``, as one BlurError naming it.

    Args:
        os_error: makes the error for an OSError (the system, not the media: disk full,
            unwritable folder). Anything else unforeseen is a bug: one clear line instead of
            a traceback, and the atomic output left nothing behind.
    """
    if isinstance(exc, BlurError):
        exc.path = exc.path or path
        return exc
    if isinstance(exc, OSError):
        return os_error(exc)
    return _unexpected(exc, path)


@app.command("run", cls=Command)
def run(
    paths: list[Path] = typer.Argument(..., metavar="PATH...",
                                       help="Photos, videos or folders (searched recursively)."),
    # str, not Path: pathlib drops the trailing "/" that marks a folder to create.
    output: Optional[str] = typer.Option(None, "-o", "--output", metavar="PATH",
                                         help="Output file (one input) or folder (mirrored tree); "
                                              "end a new folder's name with /."),
    overwrite: Overwrite = False,
    style: StyleOpt = None,
    shape: ShapeOpt = None,
    mask_scale: MaskScale = None,
    threshold: Threshold = None,
    gap: Gap = None,
    pad: Pad = None,
    crf: Crf = None,
    preset: PresetOpt = None,
    audio: AudioOpt = None,
    regions: Optional[Path] = typer.Option(None, "--regions", metavar="FILE",
                                           help="Save the planned regions (JSON) here; one input only."),
    on_frame_error: OnFrameErrorOpt = None,
    only: OnlyOpt = None,
    text: TextOpt = False,
    sideways: Sideways = False,
    small_face_stride: Optional[int] = typer.Option(
        None, "--small-face-stride", min=1, max=6, metavar="N",
        help="Videos: run the costly small-face pass on every N-th frame, tracking in between "
             "(default 1; 2-3 scan about a third to a half faster, at some risk to tiny faces)."),
    jobs: int = typer.Option(1, "-j", "--jobs", min=1, metavar="N",
                             help="Process this many files at once, in separate processes "
                                  "(default 1; each one already uses every core)."),
    device: DeviceOpt = None,
    keep_format: KeepFormat = False,
    quiet: Quiet = False,
):
    """Anonymise each PATH: NAME.blurred.EXT beside each file, or under -o."""
    settings = _settings(
        kinds=kinds_of(only, text), style=style, shape=shape, mask_scale=mask_scale,
        face_threshold=threshold, max_gap_seconds=gap, pad_seconds=pad, crf=crf, preset=preset,
        audio=audio, overwrite=overwrite, fail_frame=on_frame_error, face_rotate=sideways,
        device=device, face_small_every_n_frames=small_face_stride, keep_format=keep_format)
    try:
        detectors.check_device(settings.device)
    except BlurError as exc:
        _fail(exc)
    try:
        pairs = plan_outputs(paths, output, settings.keep_format)
    except BlurError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(UsageError(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)))
    if not pairs:
        _fail(UsageError("no photos or videos found in " + ", ".join(map(str, paths))))
    if regions is not None and len(pairs) != 1:
        _fail(UsageError("--regions needs exactly one input file"))
    if jobs > 1 and len(pairs) > 1:
        results, failures = _run_parallel(pairs, settings, jobs, quiet)
    else:
        results, failures = [], []
        with show.FileProgress(quiet) as progress:
            for src, dst in pairs:
                progress.start(src.name)
                try:
                    results.append(pipeline.anonymise(src, dst, settings, regions, progress))
                except BlurError as exc:
                    failures.append(exc)
                    show.error(exc)
                except Exception as exc:  # a bug or the system failing: the others go on
                    failures.append(_unexpected(exc, src))
                    show.error(failures[-1])
    if not quiet:
        show.summary(results, failures, settings.kinds)
    if failures:  # one failed file means a non-zero exit, after the others finished
        raise typer.Exit(max(int(f.exit_status) for f in failures))


def _run_parallel(pairs, settings: Settings, jobs: int, quiet: bool) -> tuple[list, list]:
    """``--jobs N``: files in N worker processes; the summary keeps the order of the inputs."""
    done: dict[int, object] = {}
    with show.BatchProgress(quiet, [src.name for src, _ in pairs], jobs) as progress, \
            closing(batch.anonymise_many(pairs, settings, jobs, progress.update)) as finished:
        for index, outcome in finished:
            done[index] = outcome
            if isinstance(outcome, BlurError):
                show.error(outcome)
            progress.finished(index)
    ordered = [done[i] for i in sorted(done)]
    return ([r for r in ordered if not isinstance(r, BlurError)],
            [r for r in ordered if isinstance(r, BlurError)])


# ---- review: scan, render, check (issue 5) ---------------------------------------------------

def _free(path: Path, overwrite: bool, *taken: Path) -> None:
    """Refuse to write ``path`` over an input or another output, or over a file unless told."""
    for other in taken:
        if other is not None and path.resolve() == Path(other).resolve():
            _fail(UsageError(f"{path} would replace {other}"))
    if path.exists() and not overwrite:
        _fail(UsageError(f"{path} already exists (use --overwrite to replace it)"))


@app.command("scan", cls=Command)
def scan_command(
    path: Path = typer.Argument(..., metavar="FILE", help="A photo or video."),
    regions: Optional[Path] = typer.Option(None, "--regions", metavar="FILE",
                                           help="Write the regions file here (default: "
                                                "NAME.regions.json beside the input)."),
    report: Optional[Path] = typer.Option(None, "--report", metavar="FILE",
                                          help="Also write a review page (.html) or summary "
                                               "(.json). The page shows unredacted faces."),
    report_redacted: bool = typer.Option(False, "--report-redacted",
                                         help="Show the page's crops redacted, as in the output "
                                              "(safe to share with an editor)."),
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

    settings = _settings(kinds=kinds_of(only, text), face_threshold=threshold, max_gap_seconds=gap,
                         pad_seconds=pad, fail_frame=on_frame_error, face_rotate=sideways,
                         device=device)
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
        _fail(_failure(exc, path, lambda e: BlurError(f"{e.strerror or e}: {e.filename or path}")))
    if not quiet:
        show.scanned(path, plan, regions, report, report_redacted)


@app.command("render", cls=Command)
def render_command(
    path: Path = typer.Argument(..., metavar="FILE", help="The photo or video that was scanned."),
    regions: Path = typer.Option(..., "--regions", metavar="FILE",
                                 help="The regions file to honour, exactly."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", metavar="FILE",
                                          help="Output file (default NAME.blurred.EXT)."),
    overwrite: Overwrite = False,
    style: StyleOpt = None,
    shape: ShapeOpt = None,
    mask_scale: MaskScale = None,
    crf: Crf = None,
    preset: PresetOpt = None,
    audio: AudioOpt = None,
    manifest: Optional[Path] = typer.Option(None, "--manifest", metavar="FILE",
                                            help="Write a JSON manifest: versions, model and "
                                                 "file hashes, settings."),
    keep_format: KeepFormat = False,
    quiet: Quiet = False,
):
    """Redact FILE exactly as a regions file says (after blur scan and your corrections)."""
    from . import manifest as manifest_file
    from .errors import MediaError
    from .files import default_output, describe_os_error

    settings = _settings(style=style, shape=shape, mask_scale=mask_scale, crf=crf, preset=preset,
                         audio=audio, overwrite=overwrite)
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
            manifest_file.write(manifest, manifest_file.build(path, dst, settings, result,
                                                              regions))
    except Exception as exc:
        _fail(_failure(exc, path, lambda e: MediaError(describe_os_error(e, dst), path)))
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


@app.command("check", cls=Command)
def check_command(
    paths: list[Path] = typer.Argument(..., metavar="PATH...",
                                       help="Photos, videos or folders to check."),
    regions: Optional[Path] = typer.Option(None, "--regions", metavar="FILE",
                                           help="The regions file the output was rendered from "
                                                "(one file): detections on its redacted or kept "
                                                "regions do not count."),
    # Not the shared options: these describe the re-scan and the file rendered, and check
    # prints its verdicts even when quiet.
    threshold: Optional[float] = typer.Option(
        None, "--threshold", min=0.01, max=0.99, metavar="SCORE",
        help=f"Face threshold of the re-scan (default {DEFAULTS.check_face_threshold})."),
    mask_scale: Optional[float] = typer.Option(None, "--mask-scale", min=1.0, max=4.0,
                                               metavar="FACTOR",
                                               help="Mask scale the output was rendered with."),
    device: DeviceOpt = None,
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Only the verdict per file."),
):
    """Re-scan files sensitively: exit 0 only if no face, plate or identifying metadata is found."""
    from . import check as checker
    from . import regions as regions_file
    from .files import walk

    settings = _settings(check_face_threshold=threshold, mask_scale=mask_scale, device=device)
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            try:
                files += walk(p, outputs=True)
            except BlurError as exc:
                _fail(exc)
        elif p.exists():
            files.append(p)
        else:
            _fail(UsageError("no such file or folder", p))
    if regions is not None and len(files) != 1:
        _fail(UsageError("--regions needs exactly one file to check"))
    if not files:
        _fail(UsageError("no photos or videos found in " + ", ".join(map(str, paths))))
    data = None
    if regions is not None:
        try:
            data = regions_file.load(regions)
        except BlurError as exc:
            _fail(exc)
    status = ExitStatus.OK
    with show.FileProgress(quiet) as progress:
        for f in files:
            progress.start(f.name)
            try:
                result = checker.check(f, settings, data, progress)
            except Exception as exc:  # this file fails (never "clean"), the others go on
                if isinstance(exc, RegionsError) and exc.path is None:
                    exc.path = regions  # the regions file does not fit this file
                failure = _failure(exc, f, lambda e, f=f: BlurError(f"{e.strerror or e}", f))
                show.error(failure)
                status = max(status, failure.exit_status)
                continue
            if not result.clean:
                status = ExitStatus.FOUND
            show.checked(result, quiet, regions is not None)
    raise typer.Exit(int(status))


def version_callback(value: bool):
    if value:
        show.out.print(f"blur {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=version_callback,
                                       is_eager=True, help="Show the version and exit.")):
    """Anonymise faces in photos and videos, offline."""


def _option_like_file(argv: list[str]) -> str | None:
    """An existing file whose name starts with "-" and is no option: Click would reject it as
    an unknown option without saying that it is a file."""
    command = typer.main.get_command(app).commands.get(argv[0] if argv else "run")
    if command is None:
        return None
    known = {name for param in command.params for name in param.opts + param.secondary_opts}
    for arg in argv[1:]:
        if arg == "--":
            return None
        if arg.startswith("-") and arg.split("=", 1)[0] not in known and os.path.lexists(arg):
            return arg
    return None


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``blur PATH...`` runs ``blur run PATH...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and argv[0] not in ("--help", "-h", "--version"):
        argv.insert(0, "run")
    dashed = _option_like_file(argv)
    if dashed is not None:
        show.error(UsageError(f"the name looks like an option; write ./{dashed} or put -- "
                              "before it", dashed))
        sys.exit(int(ExitStatus.USAGE))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    try:
        app(args=argv, prog_name="blur")
    except Stopped as stop:
        show.err.print(f"{stop.args[0]}: no output was kept")
        sys.exit(int(stop.status))
