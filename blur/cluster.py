"""Many files on a Ray cluster: ``blur FOLDER -o OUT --cluster auto|ADDRESS``.

Each file is one Ray task running the same ``anonymise`` as a local run, so what is redacted
does not depend on where it ran. Inputs and outputs are paths that every machine of the
cluster sees (shared storage); they are sent as absolute paths.

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
from collections.abc import Iterator
from pathlib import Path

from .batch import FileProgressFn, run_file, throttled
from .errors import BlurError, UsageError
from .files import temp_files
from .pipeline import FileResult
from .settings import Settings

# A task whose worker died is run this many more times before its file is reported as failed.
RETRIES = 2
# After Ctrl-C, how long running tasks have to unwind before they are killed.
GRACE_SECONDS = 10.0

_log = logging.getLogger(__name__)


def _ray():
    """The ``ray`` module, or a UsageError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError("--cluster needs Ray: pip install 'blur[ray]' (on every machine of "
                         "the cluster too)") from None
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
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        hint = ("start one with: ray start --head" if address == "auto"
                else "check the address (HOST:PORT of the head node, as ray start printed it)")
        reason = " ".join(str(exc).split())[:300]
        raise UsageError(f"no Ray cluster found at {address!r} ({reason}); {hint}") from None


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


def _run_task(index: int, src: str, dst: str, settings: Settings, regions: str | None,
              updates) -> FileResult:
    """One file, inside a Ray worker process."""
    for stale in temp_files(Path(dst)):  # an earlier attempt's, killed before it could clean up
        stale.unlink(missing_ok=True)

    def send(stage: str, done: int, total: int) -> None:
        try:
            updates.put_nowait((index, stage, done, total))
        except Exception:  # the progress bar is not worth failing a file for
            pass

    return run_file(Path(src), Path(dst), settings, throttled(send),
                    Path(regions) if regions else None)


def anonymise_on_cluster(pairs: list[tuple[Path, Path]], settings: Settings, address: str,
                         on_progress: FileProgressFn | None = None,
                         regions_path: Path | None = None
                         ) -> Iterator[tuple[int, FileResult | BlurError]]:
    """Anonymise ``(src, dst)`` pairs as tasks on the Ray cluster at ``address``.

    Args:
        pairs: inputs and outputs, on storage every machine of the cluster sees.
        settings: as for a local run.
        address: "auto" or the head node's HOST:PORT.
        on_progress: ``(index, stage, done, total)`` as files progress.
        regions_path: save the regions file here (one pair only).

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
    task = ray.remote(_run_task).options(max_retries=RETRIES, retry_exceptions=False,
                                         **resources)
    regions = os.path.abspath(regions_path) if regions_path is not None else None
    pending = {task.remote(i, os.path.abspath(src), os.path.abspath(dst), settings, regions,
                           updates): i for i, (src, dst) in enumerate(pairs)}
    finished = False
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.1)
            _drain(updates, Empty, on_progress)
            for ref in done:
                index = pending.pop(ref)
                src, dst = pairs[index]
                try:
                    outcome = ray.get(ref)
                    outcome.src, outcome.dst = src, dst  # as the user named them
                except Exception as exc:  # noqa: BLE001 -- every failure is this file's
                    outcome = _as_blur_error(ray, exc, src)
                    _remove_temps(dst)
                yield index, outcome
        _drain(updates, Empty, on_progress)
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
                _cancel(ray, pending, pairs)
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
    if isinstance(exc, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                        ray.exceptions.OutOfMemoryError)):
        return BlurError(f"the worker process died {RETRIES + 1} times (killed, out of memory "
                         f"or its machine lost): {_first_line(exc)}", src)
    if isinstance(exc, ray.exceptions.TaskCancelledError):
        return BlurError("the task was cancelled", src)
    return BlurError(f"cluster error: {exc.__class__.__name__}: {_first_line(cause or exc)}",
                     src)


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0].strip()[:300] if lines else exc.__class__.__name__


def _cancel(ray, pending: dict, pairs: list[tuple[Path, Path]]) -> None:
    """Stop the tasks still pending and remove what they left: a KeyboardInterrupt first (the
    task unwinds and removes its temp file), then, for those still running, the process is
    killed and the driver removes their temp files."""
    refs = list(pending)
    for ref in refs:
        ray.cancel(ref)
    _, running = ray.wait(refs, num_returns=len(refs), timeout=GRACE_SECONDS)
    if running:
        for ref in running:
            ray.cancel(ref, force=True)
        ray.wait(running, num_returns=len(running), timeout=GRACE_SECONDS)
    for index in pending.values():
        _remove_temps(pairs[index][1])


def _remove_temps(dst: Path) -> None:
    for stale in temp_files(dst):
        try:
            stale.unlink(missing_ok=True)
        except OSError as exc:  # reported, but the run's outcome is already decided
            _log.warning("could not remove %s: %s", stale, exc)


def _drain(updates, empty, on_progress: FileProgressFn | None) -> None:
    try:
        items = updates.get_nowait_batch(updates.qsize())
    except empty:
        return
    if on_progress:
        for index, stage, done, total in items:
            on_progress(index, stage, done, total)

