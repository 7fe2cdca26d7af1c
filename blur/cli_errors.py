"""How a failure reaches the user: one error line and an exit code, decided only here at the edge.

The library raises ``BlurError`` (with its ``ExitStatus``) and never prints or exits; the
commands in ``blur.cli`` and ``blur.cli_review`` turn what they catch into the line
``cli_display.error`` prints and the status ``blur`` exits with.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import typer

from . import cli_display as show
from .errors import BlurError, ExitStatus


class Stopped(BaseException):
    """Ctrl-C or SIGTERM, raised in the main thread so every cleanup (temp files) runs.

    Not a KeyboardInterrupt: Typer would swallow that into a silent exit.
    """

    def __init__(self, what: str, status: ExitStatus):
        super().__init__(what)
        self.status = status


def on_signal(signum, frame):
    """Signal handler for SIGINT and SIGTERM: stop with the status each one means."""
    if signum == signal.SIGTERM:
        raise Stopped("terminated", ExitStatus.TERMINATED)
    raise Stopped("interrupted", ExitStatus.INTERRUPTED)


def fail(exc: BlurError) -> NoReturn:
    """Print ``exc`` as one error line and exit with its status."""
    show.error(exc)
    raise typer.Exit(int(exc.exit_status))


def unexpected(exc: Exception, src: Path) -> BlurError:
    """A failure blur did not foresee, as a one-line error for that file (the atomic output
    has already removed its temp file). The traceback goes to the debug log."""
    logging.getLogger(__name__).debug("unexpected failure on %s", src, exc_info=exc)
    if isinstance(exc, MemoryError):
        return BlurError("out of memory (internal error: MemoryError)", src)
    detail = " ".join(str(exc).split()) or "no details"
    return BlurError(f"internal error: {exc.__class__.__name__}: {detail}", src)


def failure(exc: Exception, path: Path, os_error: Callable[[OSError], BlurError]) -> BlurError:
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
    return unexpected(exc, path)
