"""The ``blur`` command: parses options, shows progress and a summary, maps errors to exit codes.

Nothing else happens here: the work is in ``blur.pipeline``.
"""

from __future__ import annotations

import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

from . import __version__, pipeline
from .errors import BlurError, ExitStatus, UsageError
from .files import plan_outputs
from .settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Anonymise faces in photos and videos, offline. "
                       "`blur PATH...` is short for `blur run PATH...`.")
err = Console(stderr=True)
out = Console()
COMMANDS = {"run"}


class Style(str, Enum):
    blur = "blur"
    pixelate = "pixelate"
    solid = "solid"


class Shape(str, Enum):
    ellipse = "ellipse"
    box = "box"


class Audio(str, Enum):
    copy = "copy"
    drop = "drop"


class OnFrameError(str, Enum):
    fail = "fail"
    redact = "redact"


class Only(str, Enum):
    faces = "faces"
    plates = "plates"


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


class _Fps(TextColumn):
    """Frames per second of the current stage."""

    def __init__(self):
        super().__init__("")

    def render(self, task):
        from rich.text import Text
        return Text(f"{task.speed:5.1f} fps" if task.speed else "   -- fps")


class _Progress:
    """Rich progress bar per file and stage: frames, fps, ETA."""

    def __init__(self, quiet: bool):
        self.bar = None if quiet else Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TaskProgressColumn(), _Fps(),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err,
            transient=True)
        self.task = None
        self.stage = None
        self.name = ""

    def __enter__(self):
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.__exit__(*exc)

    def start(self, name: str):
        self.name = name
        self.stage = None

    def __call__(self, stage: str, done: int, total: int):
        if not self.bar:
            return
        if stage != self.stage:
            if self.task is not None:
                self.bar.remove_task(self.task)
            self.task = self.bar.add_task(f"{stage:6} {self.name}", total=total or None)
            self.stage = stage
        self.bar.update(self.task, completed=done, total=max(total, done) or None)


@app.command("run")
def run(
    paths: list[Path] = typer.Argument(..., help="Photos, videos or folders (searched recursively)."),
    # str, not Path: pathlib drops the trailing "/" that marks a folder to create.
    output: Optional[str] = typer.Option(None, "-o", "--output",
                                         help="Output file (one input) or folder (mirrored tree); "
                                              "end a new folder's name with /."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs (never an input)."),
    style: Optional[Style] = typer.Option(None, help="Redaction style (default: blur, irreversible)."),
    shape: Optional[Shape] = typer.Option(None, help="Mask shape (default: ellipse)."),
    mask_scale: Optional[float] = typer.Option(None, "--mask-scale", min=1.0, max=4.0,
                                               help="Enlarge each detected box by this factor (default 1.3)."),
    threshold: Optional[float] = typer.Option(None, min=0.01, max=0.99,
                                              help="Face detection threshold; lower finds more (default 0.2)."),
    gap: Optional[float] = typer.Option(None, "--gap", min=0.0,
                                        help="Bridge tracks missed for up to this many seconds (default 0.5)."),
    pad: Optional[float] = typer.Option(None, "--pad", min=0.0,
                                        help="Redact this many seconds before/after each track (default 0.2)."),
    crf: Optional[int] = typer.Option(None, min=0, max=51, help="H.264 quality, lower is better (default 18)."),
    preset: Optional[str] = typer.Option(None, help="x264 preset, e.g. veryfast, medium, slow (default medium)."),
    audio: Optional[Audio] = typer.Option(None, help="copy audio bit-exact (default) or drop it."),
    regions: Optional[Path] = typer.Option(None, "--regions",
                                           help="Save the planned regions (JSON) here; one input only."),
    on_frame_error: Optional[OnFrameError] = typer.Option(
        None, "--on-frame-error",
        help="If a frame cannot be analysed: fail the file (default) or redact the whole frame."),
    only: Optional[Only] = typer.Option(None, "--only",
                                        help="Redact only faces or only licence plates (default: both)."),
    text: bool = typer.Option(False, "--text",
                              help="Also redact every line of text found (signs, banners, name badges)."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress or summary; errors only."),
):
    """Anonymise PATHS: NAME.blurred.EXT beside each file, or under -o."""
    kinds = None
    if only is not None or text:
        kinds = (Settings().kinds if only is None
                 else ({"faces": "face", "plates": "plate"}[only.value],)) + (("text",) if text else ())
    settings = Settings().merged(
        kinds=kinds,
        style=style.value if style else None, shape=shape.value if shape else None,
        mask_scale=mask_scale, face_threshold=threshold, max_gap_seconds=gap, pad_seconds=pad,
        crf=crf, preset=preset, audio=audio.value if audio else None, overwrite=overwrite or None,
        fail_frame=on_frame_error.value if on_frame_error else None)
    try:
        pairs = plan_outputs(paths, output)
    except BlurError as exc:
        _fail(exc)
    if not pairs:
        _fail(UsageError("no photos or videos found in " + ", ".join(map(str, paths))))
    if regions is not None and len(pairs) != 1:
        _fail(UsageError("--regions needs exactly one input file"))
    results, failures = [], []
    with _Progress(quiet) as progress:
        for src, dst in pairs:
            progress.start(src.name)
            try:
                results.append(pipeline.anonymise(src, dst, settings, regions, progress))
            except BlurError as exc:
                failures.append(exc)
                err.print(f"[red]error:[/] {exc}", markup=True, highlight=False)
    if not quiet:
        _summary(results, failures)
    if failures:
        raise typer.Exit(max(int(f.exit_status) for f in failures))


def _fail(exc: BlurError):
    err.print(f"[red]error:[/] {exc}", markup=True, highlight=False)
    raise typer.Exit(int(exc.exit_status))


def _summary(results, failures) -> None:
    table = Table(title=None, show_edge=False)
    for col in ("file", "output", "tracks", "detections", "frames redacted", "time"):
        table.add_column(col)
    for r in results:
        table.add_row(str(r.src), str(r.dst), _per_kind(r.tracks) or "0", str(r.detections),
                      f"{r.frames_redacted}/{r.frames}", f"{r.seconds:.1f} s")
        for note in r.notes:
            table.add_row("", f"note: {note}", "", "", "", "")
    for f in failures:
        table.add_row(str(f.path or ""), "[red]failed[/]", "", "", "", "")
    out.print(table)
    totals: dict[str, int] = {}
    for r in results:
        for kind, n in r.tracks.items():
            totals[kind] = totals.get(kind, 0) + n
    out.print(f"{len(results)} file(s) done, {len(failures)} failed; "
              f"{_per_kind(totals) or 'nothing'} tracked; "
              f"{sum(r.frames_redacted for r in results)} frame(s) redacted in "
              f"{sum(r.seconds for r in results):.1f} s")


def _per_kind(tracks: dict[str, int]) -> str:
    """{"face": 2, "plate": 1} -> "2 face, 1 plate"."""
    return ", ".join(f"{n} {kind}" for kind, n in sorted(tracks.items()) if n)


def version_callback(value: bool):
    if value:
        out.print(f"blur {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=version_callback,
                                       is_eager=True, help="Show the version and exit.")):
    """Anonymise faces in photos and videos, offline."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``blur PATH...`` runs ``blur run PATH...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and argv[0] not in ("--help", "-h", "--version"):
        argv.insert(0, "run")
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    try:
        app(args=argv, prog_name="blur")
    except Stopped as stop:
        err.print(f"{stop.args[0]}: no output was kept")
        sys.exit(int(stop.status))
