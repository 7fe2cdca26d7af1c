"""What the ``blur`` command shows: progress bars, error lines, the summary table, the results of
``scan``, ``render`` and ``check``. Only Rich output; ``blur.cli`` parses and decides exit codes.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from .errors import BlurError

err = Console(stderr=True)
out = Console()

REPORT_WARNING = (
    "it shows the faces and plates UNREDACTED: keep it private, never publish it or "
    "put it next to the output, delete it after the review (--report-redacted "
    "writes one that shows only redacted crops)"
)


def printable(text: str) -> str:
    """A file name that is not valid UTF-8 (from an old disk or camera) holds surrogates that
    no UTF-8 stream accepts: show its stray bytes as \\xNN instead of crashing."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def error(exc: BlurError) -> None:
    """One line on stderr, however long: file names are not markup, and a wrapped line would
    split the message in logs and scripts."""
    line = " ".join(printable(str(exc)).splitlines())
    err.print(f"[red]error:[/] {escape(line)}", markup=True, highlight=False, soft_wrap=True)


def _line(text: str) -> None:
    """One line on stdout, never wrapped, with no highlighting guessed into it."""
    out.print(text, highlight=False, soft_wrap=True)


# ---- progress --------------------------------------------------------------------------------


class _Fps(TextColumn):
    """Frames per second of the current stage."""

    def __init__(self):
        super().__init__("")

    def render(self, task):
        return Text(f"{task.speed:5.1f} fps" if task.speed else "   -- fps")


def _bar(quiet: bool) -> Progress | None:
    return (
        None
        if quiet
        else Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            _Fps(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
    )


class _Stages:
    """One file's line in a progress bar: a new task for each stage (scan, render, ...)."""

    def __init__(self, bar: Progress, name: str):
        self.bar = bar
        self.task = None
        self.start(name)

    def start(self, name: str) -> None:
        """The next file on this line: its first stage replaces the last file's."""
        self.name = escape(printable(name))  # a file name is not markup
        self.stage = None

    def update(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.remove()
            self.task = self.bar.add_task(f"{stage:6} {self.name}", total=total or None)
            self.stage = stage
        self.bar.update(self.task, completed=done, total=max(total, done) or None)

    def remove(self) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None


class FileProgress:
    """Rich progress bar per file and stage: frames, fps, ETA. Call ``start(name)`` for each
    file, then pass the object as the library's ``on_progress(stage, done, total)``."""

    def __init__(self, quiet: bool):
        self.bar = _bar(quiet)
        self.file = _Stages(self.bar, "") if self.bar else None

    def __enter__(self):
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.__exit__(*exc)

    def start(self, name: str):
        if self.file:
            self.file.start(name)

    def __call__(self, stage: str, done: int, total: int):
        if self.file:
            self.file.update(stage, done, total)


class BatchProgress:
    """``--jobs N``: one progress line per running file and one for the batch."""

    def __init__(self, quiet: bool, names: list[str], jobs: int):
        self.bar = _bar(quiet)
        self.names = names
        self.jobs = jobs
        self.files: dict[int, _Stages] = {}
        self.overall = None

    def __enter__(self):
        if self.bar:
            self.bar.__enter__()
            self.overall = self.bar.add_task(f"files  ({self.jobs} at once)", total=len(self.names))
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.__exit__(*exc)

    def update(self, index: int, stage: str, done: int, total: int) -> None:
        """``on_file_progress`` of ``blur.batch``: progress of the file ``names[index]``."""
        if self.bar:
            if index not in self.files:
                self.files[index] = _Stages(self.bar, self.names[index])
            self.files[index].update(stage, done, total)

    def finished(self, index: int) -> None:
        if self.bar:
            if index in self.files:
                self.files.pop(index).remove()
            self.bar.advance(self.overall)


# ---- blur run --------------------------------------------------------------------------------


def skipped(outputs) -> None:
    """Outputs that exist and were left alone (``--cluster`` without ``--overwrite``)."""
    out.print(f"{len(outputs)} file(s) skipped: the output exists (--overwrite replaces it)")
    for path in outputs:
        out.print(f"  {path}", markup=False, highlight=False)


_KIND_COLUMNS = {"face": "faces", "plate": "plates", "text": "text"}


def summary(results, failures, searched: tuple[str, ...] = ("face", "plate")) -> None:
    """The table of a run: one row per file (and per note), failures last, then the totals.

    One column per kind looked for, counting tracks: how many faces, plates and lines of text a
    person will see redacted. A kind not looked for has no column (a 0 there would read as
    "none in the file")."""
    found = sorted({k for r in results for k, n in r.tracks.items() if n} - set(searched))
    kinds = list(searched) + found
    columns = ["file", "output"] + [_KIND_COLUMNS.get(k, k) for k in kinds] + ["redacted", "look at", "time"]
    # Names are shown whole (a path cut short may name another file), folded onto more lines
    # when the terminal is narrow; a rule between rows then keeps one file's lines together.
    # Numbers are never wrapped.
    rows_apart = any(_wraps(str(p), out.width) for r in results for p in (r.src, r.dst))
    table = Table(title=None, show_edge=False, show_lines=rows_apart)
    for col in columns:
        name = col in ("file", "output")
        table.add_column(
            col,
            no_wrap=not name and col != "look at",
            overflow="fold" if name else "ellipsis",
            min_width=7 if col == "look at" else None,
            justify="left" if name or col == "look at" else "right",
        )
    blank = [""] * (len(columns) - 2)
    for r in results:
        table.add_row(
            escape(printable(str(r.src))),
            escape(printable(str(r.dst))),
            *(str(r.tracks.get(k, 0)) for k in kinds),
            f"{r.frames_redacted}/{r.frames}",
            _look_at(r, "\n"),
            f"{r.seconds:.1f} s",
        )
        for note in r.notes:
            table.add_row("", f"note: {escape(note)}", *blank)
    for f in failures:
        table.add_row(
            escape(printable(str(f.path or ""))), f"[red]failed:[/] {escape(printable(f.message))}", *blank
        )
    out.print(table)
    totals: dict[str, int] = {}
    for r in results:
        for kind, n in r.tracks.items():
            totals[kind] = totals.get(kind, 0) + n
    out.print(
        f"{len(results)} file(s) done, {len(failures)} failed; "
        f"{_per_kind(totals) or 'nothing'} tracked; "
        f"{sum(r.frames_redacted for r in results)} frame(s) redacted in "
        f"{sum(r.seconds for r in results):.1f} s"
    )


def _wraps(name: str, width: int) -> bool:
    """Might a file name fold onto a second line of the summary table (``width`` columns)?
    Roughly: when both names do not fit in what the number columns leave."""
    return len(name) > max(10, (width - 50) // 2)


def _look_at(result, sep: str = ", ", most: int = 3) -> str:
    """What a person should check first: the riskiest tracks as the review page ranks them (large
    weak regions, long bridges, weak-only tracks) when the plan is at hand. Only when none
    qualifies, the counts of frames bridged without a detection and of frames redacted on weak
    detections only: in a busy or moving clip nearly every frame has some short bridge or weak
    box somewhere, and a count of them all points nowhere."""
    plan = getattr(result, "plan", None)
    risky = []
    if plan is not None:
        from .risk import rank_plan  # the review page's ranking: both say the same

        risky = [r for r in rank_plan(plan) if r.check_first]
    parts = [r.label() for r in risky[:most]]
    if len(risky) > most:
        parts.append(f"+{len(risky) - most} more")
    if not parts:
        parts = [
            f"{n} {what}"
            for n, what in ((result.bridged_frames, "bridged"), (result.weak_frames, "weak"))
            if n
        ]
    return sep.join(parts) or "-"


def _per_kind(tracks: dict[str, int]) -> str:
    """{"face": 2, "plate": 1} -> "2 face, 1 plate"."""
    return ", ".join(f"{n} {kind}" for kind, n in sorted(tracks.items()) if n)


# ---- blur scan, render, check ----------------------------------------------------------------


def scanned(path: Path, plan, regions: Path, report: Path | None, report_redacted: bool) -> None:
    """What ``blur scan`` found, where it went, and the next step."""
    kinds: dict[str, int] = {}
    for t in plan.tracks:
        kinds[t.kind] = kinds.get(t.kind, 0) + 1
    _line(
        f"{escape(str(path))}: {_per_kind(kinds) or 'nothing'} found in "
        f"{plan.frame_count} frame(s); regions written to {escape(str(regions))}"
    )
    if report is not None and report.suffix.lower() != ".json":
        note = "crops shown redacted" if report_redacted else REPORT_WARNING
        err.print(f"review page: {escape(str(report))} ({note})", highlight=False, soft_wrap=True)
    _line(
        f"next: edit the regions file, then: blur render {escape(str(path))} --regions "
        f"{escape(str(regions))} -o OUTPUT"
    )


def rendered(dst: Path, plan, result, manifest: Path | None) -> None:
    """What ``blur render`` redacted and kept, and its notes."""
    kept = sum(1 for t in plan.tracks if t.keep)
    _line(
        f"{escape(str(dst))}: {_per_kind(result.tracks) or 'nothing'} redacted"
        f"{f', {kept} kept visible' if kept else ''}; {result.frames_redacted}/"
        f"{result.frames} frame(s) redacted in {result.seconds:.1f} s"
        + (f"; manifest {escape(str(manifest))}" if manifest else "")
    )
    for note in result.notes:
        _line(f"note: {escape(note)}")


def checked(result, quiet: bool, with_regions: bool) -> None:
    """The verdict of ``blur check`` on one file and, unless quiet, what it found."""
    name = escape(str(result.path))
    if result.clean:
        _line(f"{name}: [green]clean[/]")
    else:
        what = []
        if result.visible:
            what.append(f"{len(result.visible)} face/plate finding(s)")
        if result.metadata:
            what.append(f"{len(result.metadata)} metadata item(s)")
        _line(f"{name}: [red]NOT clean[/]: " + ", ".join(what))
    if quiet:
        return
    for item in result.metadata:
        _line(f"  metadata: {escape(item)}")
    for f in result.findings:
        frames = (
            f"frame {f.frames[0]}"
            if len(f.frames) == 1
            else f"frames {f.frames[0]}-{f.frames[-1]} ({len(f.frames)} seen)"
        )
        where = {
            "visible": "",
            "redacted": " [on a redacted region: not counted]",
            "kept": " [on a region kept visible: not counted]",
            "blank": " [no face detail: not counted]",
            "weak at scan": " [weak when blur scanned the original, not redacted by choice: not counted]",
            "beside a redaction": " [beside a redaction, nothing there when blur scanned "
            "the original: not counted]",
        }[f.status]
        box = ", ".join(f"{v:.0f}" for v in f.box)
        _line(
            f"  {f.kind}: {frames}, score {f.score:.2f}, best at frame {f.frame} box [{box}]{escape(where)}"
        )
    regions = getattr(result, "regions", "regions file" if with_regions else "none")
    if regions == "record carried in the file":
        _line("  judged against the record blur carried in the file (its regions and scan)")
    elif regions.startswith("refused: "):
        _line(f"  blur's record in this file was not used: {escape(regions[len('refused: ') :])}")
    if result.visible and regions != "regions file" and regions != "record carried in the file":
        _line(
            "  (the file carries no usable blur record: if blur made it, give the regions file "
            "it was rendered from with --regions; the redacted regions themselves look like "
            "heads to the detector)"
        )
