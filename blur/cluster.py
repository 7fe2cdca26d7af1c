"""Many files on a Ray cluster: ``blur FOLDER -o OUT --cluster auto|ADDRESS``.

Each file is one Ray task running the same ``anonymise`` as a local run, so what is redacted
does not depend on where it ran. A video that can be cut exactly (``blur.split``) into segments
of at least ``segment_seconds`` runs as a chain of tasks instead: the cut points (one task),
one scan per segment, the tracks built once over all frames (one task), one render per segment,
and the lossless join (one task); Ray starts each as soon as what it needs is ready. Inputs and
outputs are paths that every machine of the cluster sees (shared storage); they are sent as
absolute paths.

blur only connects, as a Ray driver, to a cluster that is already running: it never starts
one (``ray.init`` without an address would), so blur itself opens no listening port; the ports
are Ray's, opened by ``ray start``.

Faults:
- A task whose worker process dies (killed, out of memory, its machine lost) is run again by
  Ray, up to ``RETRIES`` more times. A killed worker cannot remove its temp file, so every
  attempt first removes the temp files an earlier attempt left beside its output.
- A file that fails is reported with its error; the other files go on.
- When the driver stops (Ctrl-C, SIGTERM, an error), the tasks are cancelled: a running one
  gets a KeyboardInterrupt and unwinds, removing its temp file; one that does not stop within
  ``GRACE_SECONDS`` is killed, and its temp file is removed by the driver. Outputs already
  complete are kept (each is whole: temp file + rename), so a re-run does only what is missing.

The CPUs a task asks for are those of the smallest machine of the cluster: each task loads
the models and runs them on every core, as a local run does, so one file per machine at a
time. With ``--device cuda`` a task asks for one GPU (and one CPU) instead.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from . import split
from .batch import FileProgressFn, run_file, throttled
from .errors import BlurError, UsageError
from .files import check_output, temp_files
from .media import probe
from .settings import Settings
from .types import FileResult

# A task whose worker died is run this many more times before its file is reported as failed.
RETRIES = 2
# After Ctrl-C, how long running tasks have to unwind before they are killed.
GRACE_SECONDS = 10.0
# Videos are cut into segments of at least this long (``blur.split``), run in parallel.
SEGMENT_SECONDS = 60.0

_log = logging.getLogger(__name__)


def _ray():
    """The ``ray`` module, or a UsageError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(
            "--cluster needs Ray: pip install 'blur[ray]' (on every machine of the cluster too)"
        ) from None
    return ray


def connect(address: str) -> None:
    """Join the running Ray cluster at ``address`` ("auto": the one started on this machine
    by ``ray start``, or ``RAY_ADDRESS``) as a driver.

    Raises:
        UsageError: Ray is not installed, or no cluster answers there.
    """
    ray = _ray()
    if ray.is_initialized():
        return
    unreachable = _unreachable(address)
    if unreachable:  # else Ray waits for minutes, printing its retries
        raise UsageError(
            f"no Ray cluster answers at {address!r} ({unreachable}); check the "
            f"address (HOST:PORT of the head node, as ray start printed it)"
        )
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        hint = (
            "start one with: ray start --head"
            if address == "auto"
            else "check the address (HOST:PORT of the head node, as ray start printed it)"
        )
        reason = " ".join(str(exc).split())[:300]
        raise UsageError(f"no Ray cluster found at {address!r} ({reason}); {hint}") from None


def _unreachable(address: str) -> str | None:
    """Why a TCP connection to a HOST:PORT address fails (None: it connects, or the address
    is "auto" or a ray:// URL, which Ray resolves itself)."""
    if address == "auto" or "://" in address:
        return None
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except ValueError:
        return "not HOST:PORT"
    except OSError as exc:
        return (exc.strerror or str(exc) or exc.__class__.__name__).lower()
    return None


def task_resources(settings: Settings) -> tuple[dict, int]:
    """The resources each file's task asks for, and how many such tasks fit in the cluster."""
    ray = _ray()
    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU")]
    if not nodes:
        raise UsageError("the Ray cluster has no machine with a CPU to run on")
    if settings.device.lower() == "cuda":
        gpus = sum(int(n["Resources"].get("GPU", 0)) for n in nodes)
        if not gpus:
            raise UsageError("--device cuda: no machine of the Ray cluster has a GPU")
        return {"num_cpus": 1, "num_gpus": 1}, gpus
    per_task = max(1, int(min(n["Resources"]["CPU"] for n in nodes)))
    at_once = sum(int(n["Resources"]["CPU"] // per_task) for n in nodes)
    return {"num_cpus": per_task}, max(1, at_once)


def _sender(updates, index: int, part: int):
    """A progress callback sending ``(index, part, stage, done, total)`` to the driver."""

    def send(stage: str, done: int, total: int) -> None:
        try:
            updates.put_nowait((index, part, stage, done, total))
        except Exception:  # noqa: BLE001 -- the progress bar is not worth failing a file for
            pass

    return throttled(send)


def _clear(dst: str, part: str | None = None) -> None:
    """Remove the temp files an earlier attempt of this task left (killed before it could)."""
    for stale in temp_files(Path(dst), part):
        stale.unlink(missing_ok=True)


def _run_task(index: int, src: str, dst: str, settings: Settings, regions: str | None, updates) -> FileResult:
    """One whole file, inside a Ray worker process."""
    _clear(dst)
    return run_file(
        Path(src), Path(dst), settings, _sender(updates, index, -1), Path(regions) if regions else None
    )


def _segments_task(src: str, dst: str, settings: Settings, min_seconds: float):
    """(MediaInfo, segments) of a video to split; no segments when it cannot be cut."""
    check_output(Path(src), Path(dst), settings.overwrite)  # before the long work, not after
    segments = split.plan_segments(Path(src), min_seconds)
    return (probe(Path(src)) if len(segments) > 1 else None), segments


def _scan_task(index: int, src: str, segment, info, settings: Settings, updates):
    return split.scan_segment(Path(src), segment, info, settings, _sender(updates, index, segment.number))


def _join_task(info, settings: Settings, regions: str | None, *scans):
    plan = split.join_scans(info, settings, list(scans))
    if regions:
        from . import regions as regions_file

        regions_file.save(Path(regions), plan.to_dict())
    return plan


def _render_task(index: int, src: str, dst: str, segment, plan, settings: Settings, updates):
    _clear(dst, split.segment_part(segment))
    return split.render_segment(
        Path(src), Path(dst), segment, plan, settings, _sender(updates, index, segment.number)
    )


def _concat_task(src: str, dst: str, plan, settings: Settings, *rendered) -> FileResult:
    _clear(dst, "")
    return split.join_segments(Path(src), Path(dst), plan, settings, list(rendered))


class _Progress:
    """Progress of each file, summed over its segments, for ``on_progress``."""

    def __init__(self, on_progress: FileProgressFn | None):
        self.on_progress = on_progress
        self.parts: dict[tuple[int, str], dict[int, tuple[int, int]]] = {}

    def expect(self, index: int, segments) -> None:
        for stage in ("scan", "render"):
            self.parts[(index, stage)] = {s.number: (0, s.stop - s.start) for s in segments}

    def __call__(self, index: int, part: int, stage: str, done: int, total: int) -> None:
        parts = self.parts.setdefault((index, stage), {})
        parts[part] = (done, total)
        if self.on_progress:
            self.on_progress(
                index, stage, sum(d for d, _ in parts.values()), sum(t for _, t in parts.values())
            )


def anonymise_on_cluster(
    pairs: list[tuple[Path, Path]],
    settings: Settings,
    address: str,
    on_progress: FileProgressFn | None = None,
    regions_path: Path | None = None,
    segment_seconds: float = SEGMENT_SECONDS,
) -> Iterator[tuple[int, FileResult | BlurError]]:
    """Anonymise ``(src, dst)`` pairs as tasks on the Ray cluster at ``address``.

    Args:
        pairs: inputs and outputs, on storage every machine of the cluster sees.
        settings: as for a local run.
        address: "auto" or the head node's HOST:PORT.
        on_progress: ``(index, stage, done, total)`` as files progress.
        regions_path: save the regions file here (one pair only).
        segment_seconds: videos are cut into segments of at least this many seconds, scanned
            and rendered in parallel (``blur.split``); 0: every file runs whole.

    Yields:
        (index into ``pairs``, FileResult or the BlurError it failed with), as files finish.

    Raises:
        UsageError: Ray missing, no cluster at ``address``, or no resources for the tasks.
    """
    connect(address)
    ray = _ray()
    from ray.util.queue import Empty, Queue

    resources, _ = task_resources(settings)
    updates = Queue(actor_options={"num_cpus": 0})
    progress = _Progress(on_progress)

    def remote(fn, **options):
        return ray.remote(fn).options(max_retries=RETRIES, retry_exceptions=False, **(options or resources))

    whole, scan, render = remote(_run_task), remote(_scan_task), remote(_render_task)
    light = {"num_cpus": 1}  # reading packets, tracking, copying packets: one core
    segments_of, join, concat = (
        remote(_segments_task, **light),
        remote(_join_task, **light),
        remote(_concat_task, **light),
    )
    regions = os.path.abspath(regions_path) if regions_path is not None else None
    paths = [(os.path.abspath(src), os.path.abspath(dst)) for src, dst in pairs]
    # Every task of a file (to cancel them all), and the one whose result is the file's.
    tasks: dict[int, list] = {}
    pending: dict = {}  # ref -> (index, "file" or "segments")
    started: dict[int, float] = {}

    def submit_whole(i: int) -> None:
        ref = whole.remote(i, *paths[i], settings, regions, updates)
        tasks.setdefault(i, []).append(ref)
        pending[ref] = (i, "file")

    def submit_split(i: int, info, segments) -> None:
        src, dst = paths[i]
        progress.expect(i, segments)
        scans = [scan.remote(i, src, s, info, settings, updates) for s in segments]
        plan = join.remote(info, settings, regions, *scans)
        rendered = [render.remote(i, src, dst, s, plan, settings, updates) for s in segments]
        ref = concat.remote(src, dst, plan, settings, *rendered)
        tasks[i] += [*scans, plan, *rendered, ref]
        pending[ref] = (i, "file")

    for i, (src, _) in enumerate(pairs):
        started[i] = time.monotonic()
        if segment_seconds > 0 and split.can_split(src, settings):
            ref = segments_of.remote(*paths[i], settings, segment_seconds)
            tasks[i] = [ref]
            pending[ref] = (i, "segments")
        else:
            submit_whole(i)
    finished = False
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.1)
            _drain(updates, Empty, progress)
            for ref in done:
                index, what = pending.pop(ref)
                src, dst = pairs[index]
                try:
                    outcome = ray.get(ref)
                    if what == "segments":
                        info, segments = outcome
                        if len(segments) > 1:
                            submit_split(index, info, segments)
                        else:
                            submit_whole(index)
                        continue
                    outcome.src, outcome.dst = src, dst  # as the user named them
                    outcome.seconds = time.monotonic() - started[index]
                except Exception as exc:  # noqa: BLE001 -- every failure is this file's
                    outcome = _as_blur_error(ray, exc, src)
                    _cancel(ray, tasks.get(index, []))
                    _remove_temps(dst)
                tasks.pop(index, None)
                yield index, outcome
        _drain(updates, Empty, progress)
        finished = True
    except SystemError as exc:
        # A signal handler's exception (Ctrl-C, SIGTERM) raised while Ray's compiled code was
        # waiting comes out wrapped in a SystemError: pass on the signal's own.
        if isinstance(exc.__cause__, BaseException) and not isinstance(exc.__cause__, Exception):
            raise exc.__cause__ from None
        raise
    finally:
        try:
            if not finished:
                _cancel(ray, [ref for refs in tasks.values() for ref in refs])
                for index in tasks:
                    _remove_temps(pairs[index][1])
        finally:
            try:
                ray.kill(updates.actor)
            except Exception:  # noqa: BLE001 -- already gone with the cluster
                pass
            ray.shutdown()  # disconnects this driver; the cluster keeps running


def _as_blur_error(ray, exc: Exception, src: Path) -> BlurError:
    """What a failed task's exception means, as a BlurError naming ``src``."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BlurError):
        return cause
    if isinstance(exc, BlurError) and not isinstance(exc, ray.exceptions.RayError):
        return exc
    if isinstance(
        exc,
        (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.OutOfMemoryError),
    ):
        return BlurError(
            f"the worker process died {RETRIES + 1} times (killed, out of memory "
            f"or its machine lost): {_first_line(exc)}",
            src,
        )
    if isinstance(exc, ray.exceptions.TaskCancelledError):
        return BlurError("the task was cancelled", src)
    return BlurError(f"cluster error: {exc.__class__.__name__}: {_first_line(cause or exc)}", src)


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0].strip()[:300] if lines else exc.__class__.__name__


def _cancel(ray, refs: list) -> None:
    """Stop these tasks: a KeyboardInterrupt first (a task unwinds and removes its temp file),
    then the process of any still running is killed (the caller removes its temp files)."""
    if not refs:
        return
    for ref in refs:
        ray.cancel(ref)
    _, running = ray.wait(refs, num_returns=len(refs), timeout=GRACE_SECONDS)
    if running:
        for ref in running:
            ray.cancel(ref, force=True)
        ray.wait(running, num_returns=len(running), timeout=GRACE_SECONDS)


def _remove_temps(dst: Path) -> None:
    for stale in temp_files(dst):
        try:
            stale.unlink(missing_ok=True)
        except OSError as exc:  # reported, but the run's outcome is already decided
            _log.warning("could not remove %s: %s", stale, exc)


def _drain(updates, empty, progress: _Progress) -> None:
    try:
        items = updates.get_nowait_batch(updates.qsize())
    except empty:
        return
    for item in items:
        progress(*item)
