"""The ``blur`` command: parses options, maps errors to exit codes.

Nothing else happens here: the work is in ``blur.pipeline``; the options and their choices are
declared in ``blur.cli_options``; what is shown (progress, the summary, error lines) is in
``blur.cli_display``; errors become exit codes in ``blur.cli_errors``. This module holds
``blur run`` (``blur PATH...``) and the entry point; the review commands (scan, render, check)
are in ``blur.cli_review``.
"""

from __future__ import annotations

import os
import signal
import sys
from contextlib import closing
from pathlib import Path
from typing import Optional

import typer

from . import __version__, batch, cli_review, detectors, pipeline
from . import cli_display as show
from .cli_errors import Stopped, fail, on_signal, unexpected
from .cli_options import (
    AudioOpt,
    Command,
    Crf,
    DeviceOpt,
    Gap,
    Group,
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
    SmallFaceModelOpt,
    StyleOpt,
    TextOpt,
    Threshold,
    kinds_of,
    settings_from,
)
from .errors import BlurError, ExitStatus, UsageError
from .files import plan_outputs
from .settings import Settings

app = typer.Typer(
    cls=Group,
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Anonymise faces in photos and videos, offline. `blur PATH...` is short for `blur run PATH...`.",
)
COMMANDS = {"run", "scan", "render", "check"}


@app.command("run", cls=Command)
def run(
    paths: list[Path] = typer.Argument(
        ..., metavar="PATH...", help="Photos, videos or folders (searched recursively)."
    ),
    # str, not Path: pathlib drops the trailing "/" that marks a folder to create.
    output: Optional[str] = typer.Option(
        None,
        "-o",
        "--output",
        metavar="PATH",
        help="Output file (one input) or folder (mirrored tree); end a new folder's name with /.",
    ),
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
    regions: Optional[Path] = typer.Option(
        None, "--regions", metavar="FILE", help="Save the planned regions (JSON) here; one input only."
    ),
    on_frame_error: OnFrameErrorOpt = None,
    only: OnlyOpt = None,
    text: TextOpt = False,
    sideways: Sideways = False,
    small_face_stride: Optional[int] = typer.Option(
        None,
        "--small-face-stride",
        min=1,
        max=6,
        metavar="N",
        help="Videos: run the costly small-face pass on every N-th frame, tracking in between "
        "(default 1; 2-3 scan about a third to a half faster, at some risk to tiny faces).",
    ),
    small_face_model: SmallFaceModelOpt = None,
    analyse: Optional[str] = typer.Option(
        None,
        "--analyse",
        metavar="WHAT",
        help="Videos: 'changes' (default: each frame is analysed where it changed, in full at "
        "keyframes and cuts) or 'every-frame' (every frame in full; slower, to compare).",
    ),
    jobs: int = typer.Option(
        1,
        "-j",
        "--jobs",
        min=1,
        metavar="N",
        help="Process this many files at once, in separate processes "
        "(default 1; each one already uses every core).",
    ),
    cluster: Optional[str] = typer.Option(
        None,
        "--cluster",
        metavar="ADDRESS",
        help="Run each file as a task on a running Ray cluster: auto (the one ray start began "
        "on this machine) or the head's HOST:PORT. Paths must be on storage every machine "
        "sees; existing outputs are skipped unless --overwrite.",
    ),
    split: float = typer.Option(
        60.0,
        "--split",
        min=0.0,
        metavar="SECONDS",
        help="With --cluster: cut videos at keyframes into segments of at least this long, "
        "scanned and rendered in parallel, then joined (default 60; 0: whole files).",
    ),
    device: DeviceOpt = None,
    keep_format: KeepFormat = False,
    no_record: NoRecord = False,
    quiet: Quiet = False,
):
    """Anonymise each PATH: NAME.blurred.EXT beside each file, or under -o."""
    settings = settings_from(
        kinds=kinds_of(only, text),
        style=style,
        shape=shape,
        mask_scale=mask_scale,
        face_threshold=threshold,
        max_gap_seconds=gap,
        pad_seconds=pad,
        crf=crf,
        preset=preset,
        audio=audio,
        overwrite=overwrite,
        fail_frame=on_frame_error,
        face_rotate=sideways,
        device=device,
        face_small_every_n_frames=small_face_stride,
        face_small_model=small_face_model,
        keep_format=keep_format,
        analyse=analyse,
    )
    if no_record:
        settings = settings.merged(record=False)
    try:
        if cluster is None:  # on a cluster, the workers' ONNX Runtime is the one that counts
            detectors.check_device(settings.device)
    except BlurError as exc:
        fail(exc)
    try:
        pairs = plan_outputs(paths, output, settings.keep_format)
    except BlurError as exc:
        fail(exc)
    except OSError as exc:
        fail(UsageError(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)))
    if not pairs:
        fail(UsageError("no photos or videos found in " + ", ".join(map(str, paths))))
    if regions is not None and len(pairs) != 1:
        fail(UsageError("--regions needs exactly one input file"))
    if cluster is not None:
        results, failures = _run_on_cluster(pairs, settings, cluster, regions, split, quiet)
    elif jobs > 1 and len(pairs) > 1:
        results, failures = _run_parallel(
            pairs, quiet, jobs, lambda progress: batch.anonymise_many(pairs, settings, jobs, progress)
        )
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
                    failures.append(unexpected(exc, src))
                    show.error(failures[-1])
    if not quiet:
        show.summary(results, failures, settings.kinds)
    if failures:  # one failed file means a non-zero exit, after the others finished
        raise typer.Exit(max(int(f.exit_status) for f in failures))


def _run_on_cluster(
    pairs, settings: Settings, address: str, regions: Optional[Path], split: float, quiet: bool
) -> tuple[list, list]:
    """``--cluster``: each file a Ray task; outputs that exist are skipped unless --overwrite,
    so a re-run after a crash does only what is missing."""
    from . import cluster

    if not settings.overwrite:
        skipped = [dst for _, dst in pairs if dst.exists()]
        pairs = [(src, dst) for src, dst in pairs if not dst.exists()]
        if skipped and not quiet:
            show.skipped(skipped)
        if not pairs:
            return [], []
    try:
        cluster.connect(address)
        _, at_once = cluster.task_resources(settings)
    except BlurError as exc:
        fail(exc)
    return _run_parallel(
        pairs,
        quiet,
        at_once,
        lambda progress: cluster.anonymise_on_cluster(pairs, settings, address, progress, regions, split),
    )


def _run_parallel(pairs, quiet: bool, at_once: int, outcomes) -> tuple[list, list]:
    """Files in worker processes (``--jobs``) or cluster tasks (``--cluster``), ``at_once`` at
    a time; ``outcomes(on_progress)`` yields (index, FileResult or BlurError) as files finish.
    The summary keeps the order of the inputs."""
    done: dict[int, object] = {}
    with (
        show.BatchProgress(quiet, [src.name for src, _ in pairs], at_once) as progress,
        closing(outcomes(progress.update)) as finished,
    ):
        for index, outcome in finished:
            done[index] = outcome
            if isinstance(outcome, BlurError):
                show.error(outcome)
            progress.finished(index)
    ordered = [done[i] for i in sorted(done)]
    return (
        [r for r in ordered if not isinstance(r, BlurError)],
        [r for r in ordered if isinstance(r, BlurError)],
    )


# The review commands, after run: --help lists the commands in this order.
app.command("scan", cls=Command)(cli_review.scan_command)
app.command("render", cls=Command)(cli_review.render_command)
app.command("check", cls=Command)(cli_review.check_command)


def version_callback(value: bool):
    if value:
        show.out.print(f"blur {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=version_callback, is_eager=True, help="Show the version and exit."
    ),
):
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
        show.error(UsageError(f"the name looks like an option; write ./{dashed} or put -- before it", dashed))
        sys.exit(int(ExitStatus.USAGE))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        app(args=argv, prog_name="blur")
    except Stopped as stop:
        show.err.print(f"{stop.args[0]}: no output was kept")
        sys.exit(int(stop.status))
