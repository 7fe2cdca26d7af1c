"""The ``blur`` command: parses options, shows progress and a summary, maps errors to exit codes.

Nothing else happens here: the work is in ``blur.pipeline``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from contextlib import closing, nullcontext as _nothing
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

from . import __version__, batch, pipeline
from .errors import BlurError, ExitStatus, UsageError
from .files import plan_outputs
from .settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Anonymise faces in photos and videos, offline. "
                       "`blur PATH...` is short for `blur run PATH...`.")
err = Console(stderr=True)
out = Console()
COMMANDS = {"run", "scan", "render", "check"}
_D = Settings()  # the defaults, quoted in the help


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
        self.name = escape(_printable(name))  # a file name is not markup
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
                                               help=f"Enlarge each detected box by this factor (default {_D.mask_scale})."),
    threshold: Optional[float] = typer.Option(None, min=0.01, max=0.99,
                                              help=f"Face detection threshold; lower finds more (default {_D.face_threshold})."),
    gap: Optional[float] = typer.Option(None, "--gap", min=0.0,
                                        help=f"Bridge tracks missed for up to this many seconds (default {_D.max_gap_seconds})."),
    pad: Optional[float] = typer.Option(None, "--pad", min=0.0,
                                        help=f"Redact this many seconds before/after each track (default {_D.pad_seconds})."),
    crf: Optional[int] = typer.Option(None, min=0, max=51, help=f"H.264 quality, lower is better (default {_D.crf})."),
    preset: Optional[str] = typer.Option(None, help=f"x264 preset, e.g. veryfast, medium, slow (default {_D.preset})."),
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
    sideways: bool = typer.Option(False, "--sideways",
                                  help="Also look for faces turned 90 degrees (people lying down, "
                                       "a camera on its side); about 3x slower."),
    small_face_stride: Optional[int] = typer.Option(
        None, "--small-face-stride", min=1, max=6,
        help="Videos: run the costly small-face pass on every N-th frame, tracking in between "
             "(default 1; 2-3 scan about a third to a half faster, at some risk to tiny faces)."),
    jobs: int = typer.Option(1, "-j", "--jobs", min=1,
                             help="Process this many files at once, in separate processes "
                                  "(default 1; each one already uses every core)."),
    device: Optional[str] = typer.Option(None, "--device",
                                         help="Where the models run: cpu (default) or auto "
                                              "(the CPU today); cuda, coreml and directml are "
                                              "refused with the reason (not wired up yet)."),
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
        fail_frame=on_frame_error.value if on_frame_error else None, face_rotate=sideways or None,
        device=device, face_small_every_n_frames=small_face_stride)
    try:
        pipeline.check_device(settings.device)
    except BlurError as exc:
        _fail(exc)
    try:
        pairs = plan_outputs(paths, output)
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
        if not quiet:
            _summary(results, failures)
        if failures:
            raise typer.Exit(max(int(f.exit_status) for f in failures))
        return
    results, failures = [], []
    with _Progress(quiet) as progress:
        for src, dst in pairs:
            progress.start(src.name)
            try:
                results.append(pipeline.anonymise(src, dst, settings, regions, progress))
            except BlurError as exc:
                failures.append(exc)
                _error(exc)
            except Exception as exc:  # a bug or the system failing: this file fails, others go on
                failures.append(_unexpected(exc, src))
                _error(failures[-1])
    if not quiet:
        _summary(results, failures)
    if failures:
        raise typer.Exit(max(int(f.exit_status) for f in failures))


def _run_parallel(pairs, settings: Settings, jobs: int, quiet: bool) -> tuple[list, list]:
    """``--jobs N``: files in N worker processes, one progress bar per running file and one for
    the batch; the summary keeps the order of the inputs."""
    done: dict[int, object] = {}
    bar = None if quiet else Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
        _Fps(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err,
        transient=True)
    tasks: dict[int, tuple[str, object]] = {}

    def on_progress(index: int, stage: str, count: int, total: int) -> None:
        if bar is None:
            return
        stage_task = tasks.get(index)
        if stage_task is None or stage_task[0] != stage:
            if stage_task is not None:
                bar.remove_task(stage_task[1])
            name = escape(_printable(pairs[index][0].name))
            stage_task = tasks[index] = (stage, bar.add_task(f"{stage:6} {name}",
                                                            total=total or None))
        bar.update(stage_task[1], completed=count, total=max(total, count) or None)

    with bar if bar is not None else _nothing():
        overall = bar.add_task(f"files  ({jobs} at once)", total=len(pairs)) if bar else None
        with closing(batch.anonymise_many(pairs, settings, jobs, on_progress)) as finished:
            for index, outcome in finished:
                done[index] = outcome
                if isinstance(outcome, BlurError):
                    _error(outcome)
                if bar is not None:
                    if index in tasks:
                        bar.remove_task(tasks.pop(index)[1])
                    bar.advance(overall)
    ordered = [done[i] for i in sorted(done)]
    return ([r for r in ordered if not isinstance(r, BlurError)],
            [r for r in ordered if isinstance(r, BlurError)])


def _error(exc: BlurError) -> None:
    """One line on stderr, however long: file names are not markup, and a wrapped line would
    split the message in logs and scripts."""
    line = " ".join(_printable(str(exc)).splitlines())
    err.print(f"[red]error:[/] {escape(line)}", markup=True, highlight=False, soft_wrap=True)


def _printable(text: str) -> str:
    """A file name that is not valid UTF-8 (from an old disk or camera) holds surrogates that
    no UTF-8 stream accepts: show its stray bytes as \\xNN instead of crashing."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _unexpected(exc: Exception, src: Path) -> BlurError:
    """A failure blur did not foresee, as a one-line error for that file (the atomic output
    has already removed its temp file). The traceback goes to the debug log."""
    logging.getLogger(__name__).debug("unexpected failure on %s", src, exc_info=exc)
    if isinstance(exc, MemoryError):
        return BlurError("out of memory (internal error: MemoryError)", src)
    detail = " ".join(str(exc).split()) or "no details"
    return BlurError(f"internal error: {exc.__class__.__name__}: {detail}", src)


def _fail(exc: BlurError):
    _error(exc)
    raise typer.Exit(int(exc.exit_status))


def _summary(results, failures) -> None:
    table = Table(title=None, show_edge=False)
    for col in ("file", "output", "tracks", "detections", "frames redacted", "look at", "time"):
        # Names are cut short rather than wrapped (a wrapped name reads as several files), and
        # leave the numbers their room.
        name = col in ("file", "output")
        table.add_column(col, no_wrap=name or col in ("look at", "time"), overflow="ellipsis",
                         max_width=13 if name else None)
    for r in results:
        table.add_row(escape(_printable(str(r.src))), escape(_printable(str(r.dst))),
                      _per_kind(r.tracks) or "0",
                      str(r.detections),
                      f"{r.frames_redacted}/{r.frames}", _look_at(r), f"{r.seconds:.1f} s")
        for note in r.notes:
            table.add_row("", f"note: {escape(note)}", "", "", "", "", "")
    for f in failures:
        table.add_row(escape(_printable(str(f.path or ""))),
                      f"[red]failed:[/] {escape(_printable(f.message))}",
                      "", "", "", "", "")
    out.print(table)
    totals: dict[str, int] = {}
    for r in results:
        for kind, n in r.tracks.items():
            totals[kind] = totals.get(kind, 0) + n
    out.print(f"{len(results)} file(s) done, {len(failures)} failed; "
              f"{_per_kind(totals) or 'nothing'} tracked; "
              f"{sum(r.frames_redacted for r in results)} frame(s) redacted in "
              f"{sum(r.seconds for r in results):.1f} s")


def _look_at(result) -> str:
    """Frames a person should check first: tracks bridged without a detection, weak-only faces."""
    parts = [f"{n} {what}" for n, what in ((result.bridged_frames, "bridged"),
                                           (result.weak_frames, "weak")) if n]
    return ", ".join(parts) or "-"


def _per_kind(tracks: dict[str, int]) -> str:
    """{"face": 2, "plate": 1} -> "2 face, 1 plate"."""
    return ", ".join(f"{n} {kind}" for kind, n in sorted(tracks.items()) if n)


# ---- review: scan, render, check (issue 5) ---------------------------------------------------

_REPORT_WARNING = ("it shows the faces and plates UNREDACTED: keep it private, never publish it or "
                   "put it next to the output, delete it after the review (--report-redacted "
                   "writes one that shows only redacted crops)")


def _kinds(only: Optional[Only], text: bool) -> Optional[tuple[str, ...]]:
    if only is None and not text:
        return None
    base = Settings().kinds if only is None else ({"faces": "face", "plates": "plate"}[only.value],)
    return base + (("text",) if text else ())


def _free(path: Path, overwrite: bool, *taken: Path) -> None:
    """Refuse to write ``path`` over an input or another output, or over a file unless told."""
    for other in taken:
        if other is not None and path.resolve() == Path(other).resolve():
            _fail(UsageError(f"{path} would replace {other}"))
    if path.exists() and not overwrite:
        _fail(UsageError(f"{path} already exists (use --overwrite to replace it)"))


@app.command("scan")
def scan_command(
    path: Path = typer.Argument(..., help="A photo or video."),
    regions: Optional[Path] = typer.Option(None, "--regions",
                                           help="Write the regions file here (default: "
                                                "NAME.regions.json beside the input)."),
    report: Optional[Path] = typer.Option(None, "--report",
                                          help="Also write a review page (.html) or summary "
                                               "(.json). The page shows unredacted faces."),
    report_redacted: bool = typer.Option(False, "--report-redacted",
                                         help="Show the page's crops redacted, as in the output "
                                              "(safe to share with an editor)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing regions file "
                                                              "or report."),
    threshold: Optional[float] = typer.Option(None, min=0.01, max=0.99,
                                              help=f"Face detection threshold (default {_D.face_threshold})."),
    gap: Optional[float] = typer.Option(None, "--gap", min=0.0, help="Bridge gaps (seconds)."),
    pad: Optional[float] = typer.Option(None, "--pad", min=0.0, help="Pad tracks (seconds)."),
    only: Optional[Only] = typer.Option(None, "--only", help="Only faces or only plates."),
    text: bool = typer.Option(False, "--text", help="Also find every line of text."),
    sideways: bool = typer.Option(False, "--sideways", help="Also faces turned 90 degrees."),
    on_frame_error: Optional[OnFrameError] = typer.Option(None, "--on-frame-error",
                                                          help="fail (default) or redact the frame."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Errors only."),
):
    """Find what to redact and write it to a regions file to look at and edit; no output yet."""
    from . import regions as regions_file, report as review

    settings = Settings().merged(kinds=_kinds(only, text), face_threshold=threshold,
                                 max_gap_seconds=gap, pad_seconds=pad,
                                 fail_frame=on_frame_error.value if on_frame_error else None,
                                 face_rotate=sideways or None)
    regions = regions or path.with_name(f"{path.stem}.regions.json")
    _free(regions, overwrite, path)
    if report is not None:
        _free(report, overwrite, path, regions)
    try:
        with _Progress(quiet) as progress:
            progress.start(path.name)
            plan = pipeline.scan(path, settings, progress)
        regions_file.save(regions, plan.to_dict())
        if report is not None:
            review.write(report, path, plan, settings, report_redacted, regions)
    except BlurError as exc:
        exc.path = exc.path or path
        _fail(exc)
    except OSError as exc:
        _fail(BlurError(f"{exc.strerror or exc}: {exc.filename or path}"))
    except Exception as exc:  # a bug: one clear line instead of a traceback
        _fail(_unexpected(exc, path))
    if quiet:
        return
    found = [t for t in plan.tracks]
    kinds: dict[str, int] = {}
    for t in found:
        kinds[t.kind] = kinds.get(t.kind, 0) + 1
    out.print(f"{escape(str(path))}: {_per_kind(kinds) or 'nothing'} found in "
              f"{plan.frame_count} frame(s); regions written to {escape(str(regions))}",
              highlight=False, soft_wrap=True)
    if report is not None and report.suffix.lower() != ".json":
        note = ("crops shown redacted" if report_redacted else _REPORT_WARNING)
        err.print(f"review page: {escape(str(report))} ({note})", highlight=False, soft_wrap=True)
    out.print(f"next: edit the regions file, then: blur render {escape(str(path))} --regions "
              f"{escape(str(regions))} -o OUTPUT", highlight=False, soft_wrap=True)


@app.command("render")
def render_command(
    path: Path = typer.Argument(..., help="The photo or video that was scanned."),
    regions: Path = typer.Option(..., "--regions", help="The regions file to honour, exactly."),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="Output file (default NAME.blurred.EXT)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    style: Optional[Style] = typer.Option(None, help="Redaction style (default: blur)."),
    shape: Optional[Shape] = typer.Option(None, help="Mask shape (default: ellipse)."),
    mask_scale: Optional[float] = typer.Option(None, "--mask-scale", min=1.0, max=4.0,
                                               help=f"Enlarge detected boxes (default {_D.mask_scale})."),
    crf: Optional[int] = typer.Option(None, min=0, max=51, help=f"H.264 quality (default {_D.crf})."),
    preset: Optional[str] = typer.Option(None, help=f"x264 preset (default {_D.preset})."),
    audio: Optional[Audio] = typer.Option(None, help="copy (default) or drop audio."),
    manifest: Optional[Path] = typer.Option(None, "--manifest",
                                            help="Write a JSON manifest: versions, model and "
                                                 "file hashes, settings."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Errors only."),
):
    """Redact PATH exactly as a regions file says (after blur scan and your corrections)."""
    from . import manifest as manifest_file, regions as regions_file
    from .errors import MediaError
    from .files import default_output, describe_os_error

    settings = Settings().merged(
        style=style.value if style else None, shape=shape.value if shape else None,
        mask_scale=mask_scale, crf=crf, preset=preset, audio=audio.value if audio else None,
        overwrite=overwrite or None)
    dst = output or default_output(path)
    _free(dst, overwrite, path, regions)
    if manifest is not None:
        _free(manifest, overwrite, path, regions, dst)
    try:
        plan = pipeline.load_plan(path, regions_file.load(regions))
        with _Progress(quiet) as progress:
            progress.start(path.name)
            result = pipeline.render(path, dst, plan, settings, progress)
        if manifest is not None:
            manifest_file.write(manifest, manifest_file.build(path, dst, settings, result,
                                                              regions))
    except BlurError as exc:
        exc.path = exc.path or path
        _fail(exc)
    except OSError as exc:  # the system, not the media: disk full, unwritable folder
        _fail(MediaError(describe_os_error(exc, dst), path))
    except Exception as exc:  # a bug: one clear line, the atomic output left nothing behind
        _fail(_unexpected(exc, path))
    if not quiet:
        kept = sum(1 for t in plan.tracks if t.keep)
        out.print(f"{escape(str(dst))}: {_per_kind(result.tracks) or 'nothing'} redacted"
                  f"{f', {kept} kept visible' if kept else ''}; {result.frames_redacted}/"
                  f"{result.frames} frame(s) redacted in {result.seconds:.1f} s"
                  + (f"; manifest {escape(str(manifest))}" if manifest else ""),
                  highlight=False, soft_wrap=True)
        for note in result.notes:
            out.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)


@app.command("check")
def check_command(
    paths: list[Path] = typer.Argument(..., help="Photos, videos or folders to check."),
    regions: Optional[Path] = typer.Option(None, "--regions",
                                           help="The regions file the output was rendered from "
                                                "(one file): detections on its redacted or kept "
                                                "regions do not count."),
    threshold: Optional[float] = typer.Option(None, min=0.01, max=0.99,
                                              help="Face threshold of the re-scan (default 0.1)."),
    mask_scale: Optional[float] = typer.Option(None, "--mask-scale", min=1.0, max=4.0,
                                               help="Mask scale the output was rendered with."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Only the verdict per file."),
):
    """Re-scan files sensitively: exit 0 only if no face, plate or identifying metadata is found."""
    from . import check as checker, regions as regions_file
    from .media import is_media

    settings = Settings().merged(check_face_threshold=threshold, mask_scale=mask_scale)
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and is_media(f)
                            and not any(part.startswith(".") for part in f.relative_to(p).parts))
        elif p.exists():
            files.append(p)
        else:
            _fail(UsageError("no such file or folder", p))
    if regions is not None and len(files) != 1:
        _fail(UsageError("--regions needs exactly one file to check"))
    if not files:
        _fail(UsageError("no photos or videos found in " + ", ".join(map(str, paths))))
    status = ExitStatus.OK
    with _Progress(quiet) as progress:
        for f in files:
            progress.start(f.name)
            try:
                data = regions_file.load(regions) if regions is not None else None
                result = checker.check(f, settings, data, progress)
            except (BlurError, OSError) as exc:
                if isinstance(exc, OSError):
                    exc = BlurError(f"{exc.strerror or exc}", f)
                exc.path = exc.path or f
                _error(exc)
                status = max(status, exc.exit_status)
                continue
            except Exception as exc:  # a bug: this file fails (never "clean"), the others go on
                failure = _unexpected(exc, f)
                _error(failure)
                status = max(status, failure.exit_status)
                continue
            if not result.clean:
                status = ExitStatus.FOUND
            _print_check(result, quiet, regions is not None)
    raise typer.Exit(int(status))


def _print_check(result, quiet: bool, with_regions: bool) -> None:
    name = escape(str(result.path))
    if result.clean:
        out.print(f"{name}: [green]clean[/]", highlight=False, soft_wrap=True)
    else:
        what = []
        if result.visible:
            what.append(f"{len(result.visible)} face/plate finding(s)")
        if result.metadata:
            what.append(f"{len(result.metadata)} metadata item(s)")
        out.print(f"{name}: [red]NOT clean[/]: " + ", ".join(what), highlight=False,
                  soft_wrap=True)
    if quiet:
        return
    for item in result.metadata:
        out.print(f"  metadata: {escape(item)}", highlight=False, soft_wrap=True)
    for f in result.findings:
        frames = (f"frame {f.frames[0]}" if len(f.frames) == 1
                  else f"frames {f.frames[0]}-{f.frames[-1]} ({len(f.frames)} seen)")
        where = {"visible": "", "redacted": " [on a redacted region: not counted]",
                 "kept": " [on a region kept visible: not counted]"}[f.status]
        box = ", ".join(f"{v:.0f}" for v in f.box)
        out.print(f"  {f.kind}: {frames}, score {f.score:.2f}, best at frame {f.frame} "
                  f"box [{box}]{escape(where)}", highlight=False, soft_wrap=True)
    if result.visible and not with_regions:
        out.print("  (if blur made this file, give the regions file it was rendered from with "
                  "--regions: the redacted regions themselves look like heads to the detector)",
                  highlight=False, soft_wrap=True)


def version_callback(value: bool):
    if value:
        out.print(f"blur {__version__}")
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
        _error(UsageError(f"the name looks like an option; write ./{dashed} or put -- before it",
                          dashed))
        sys.exit(int(ExitStatus.USAGE))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    try:
        app(args=argv, prog_name="blur")
    except Stopped as stop:
        err.print(f"{stop.args[0]}: no output was kept")
        sys.exit(int(stop.status))
