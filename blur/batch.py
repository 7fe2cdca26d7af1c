"""Several files at once: ``blur --jobs N`` runs ``pipeline.anonymise`` in N worker processes.

Each worker loads its own models and they already use every core, so on a small machine this
pays mainly for many short files (model loading and the serial parts of decoding and encoding
overlap with another file's detection). Progress comes back through a queue; a signal stops the
workers, which unwind so their temp outputs are removed.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from .errors import BlurError
from .pipeline import anonymise
from .settings import Settings
from .types import FileResult

# on_file_progress(index, stage, done, total): progress of the file pairs[index].
FileProgressFn = Callable[[int, str, int, int], None]


class _Stop(BaseException):
    """SIGTERM/SIGINT in a worker process: unwinds so the temp output is removed."""


def _worker_init(updates) -> None:
    """Worker processes: report progress through ``updates``; a signal (Ctrl-C reaches the
    whole process group; the parent sends SIGTERM when it stops) unwinds cleanly."""
    global _UPDATES
    _UPDATES = updates

    def stop(signum, frame):
        raise _Stop(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)


_UPDATES = None


def _worker_run(index: int, src: Path, dst: Path, settings: Settings) -> FileResult:
    return run_file(src, dst, settings, throttled(lambda *update: _UPDATES.put((index, *update))))


def throttled(send: Callable[[str, int, int], None]) -> Callable[[str, int, int], None]:
    """A progress callback that passes on a few updates a second (plenty for a progress bar):
    every change of stage, the last update of a stage, and one every 0.2 s in between."""
    last = [0.0, None]

    def report(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != last[1] or done >= total or now - last[0] >= 0.2:
            last[:] = [now, stage]
            send(stage, done, total)

    return report


def run_file(
    src: Path, dst: Path, settings: Settings, report=None, regions_path: Path | None = None
) -> FileResult:
    """``anonymise`` in a worker process, its result and errors made fit to send back to the
    process that asked: any failure becomes a plain BlurError (an exception class the parent
    cannot unpickle would lose the message), and the result drops its plan (the parent needs
    the counts, not every track)."""
    try:
        result = anonymise(src, dst, settings, regions_path, on_progress=report)
    except BlurError:
        raise
    except Exception as exc:
        raise BlurError(
            f"internal error: {exc.__class__.__name__}: {' '.join(str(exc).split()) or 'no details'}", src
        ) from None
    result.plan = None
    return result


def anonymise_many(
    pairs: list[tuple[Path, Path]], settings: Settings, jobs: int, on_progress: FileProgressFn | None = None
) -> Iterator[tuple[int, FileResult | BlurError]]:
    """Anonymise ``(src, dst)`` pairs in ``jobs`` worker processes at once.

    Each worker loads its own models and uses every core for them, so on a small machine
    ``jobs > 1`` pays mainly for many short files (model loading and the serial parts of
    decoding and encoding overlap). One file failing does not stop the others.

    Yields:
        (index into ``pairs``, FileResult or the BlurError it failed with), as files finish.
    """
    ctx = multiprocessing.get_context("spawn")  # no fork of a process with running threads
    updates = ctx.Queue()
    pool = ProcessPoolExecutor(
        max_workers=max(1, min(jobs, len(pairs))),
        mp_context=ctx,
        initializer=_worker_init,
        initargs=(updates,),
    )
    finished = False
    try:
        pending = {pool.submit(_worker_run, i, src, dst, settings): i for i, (src, dst) in enumerate(pairs)}
        while pending:
            done, _ = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            _drain(updates, on_progress)
            for future in done:
                index = pending.pop(future)
                src = pairs[index][0]
                try:
                    outcome = future.result()
                except BlurError as exc:
                    outcome = exc
                except BrokenProcessPool as exc:  # a worker was killed (out of memory?)
                    outcome = BlurError(f"the worker process died ({exc})", src)
                except _Stop:  # a signal sent to that worker alone
                    outcome = BlurError("the worker process was stopped by a signal", src)
                except Exception as exc:  # e.g. a result that could not be sent back
                    outcome = BlurError(f"internal error: {exc.__class__.__name__}: {exc}", src)
                yield index, outcome
        _drain(updates, on_progress)
        finished = True
    finally:
        if not finished:  # stopped (Ctrl-C, SIGTERM, the consumer gave up): stop the workers
            for process in list((pool._processes or {}).values()):  # no public API for this
                if process.is_alive():
                    process.terminate()  # SIGTERM: the worker unwinds and removes its temp file
        pool.shutdown(wait=True, cancel_futures=True)
        updates.close()


def _drain(updates, on_progress: FileProgressFn | None) -> None:
    while True:
        try:
            index, stage, done, total = updates.get_nowait()
        except queue.Empty:
            return
        if on_progress:
            on_progress(index, stage, done, total)
