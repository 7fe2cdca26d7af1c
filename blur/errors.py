"""Errors raised by the library and the exit codes the CLI maps them to."""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitStatus(IntEnum):
    """Process exit codes of the ``blur`` command."""

    OK = 0
    ERROR = 1  # at least one file failed
    USAGE = 2  # bad command line (Typer/Click use 2 as well)
    FOUND = 3  # ``blur check`` found something identifying
    INTERRUPTED = 130  # SIGINT
    TERMINATED = 143  # SIGTERM


class BlurError(Exception):
    """Base class of every error blur raises on purpose.

    Args:
        message: one line saying what went wrong.
        path: the file it concerns, if any; the CLI prints it in front of the message.
    """

    exit_status = ExitStatus.ERROR

    def __init__(self, message: str, path: Path | str | None = None):
        super().__init__(message)
        self.message = message
        self.path = Path(path) if path is not None else None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class UsageError(BlurError):
    """The request itself is wrong (output over input, existing output, bad option)."""

    exit_status = ExitStatus.USAGE


class SettingsError(UsageError, ValueError):
    """A setting outside what blur accepts (a ValueError too, for library callers)."""


class UnsupportedMediaError(BlurError):
    """The file is not a photo or video blur can read (or is refused on purpose)."""


class MediaError(BlurError):
    """Decoding or encoding failed part-way."""


class DetectionError(BlurError):
    """A detector failed or returned garbage: the file fails closed."""


class MetadataLeftError(BlurError):
    """Re-reading the output found identifying metadata: the output is not kept."""


class RegionsError(BlurError):
    """A regions file is missing, malformed or does not fit the media: the request is wrong,
    as with a missing input (exit 2)."""

    exit_status = ExitStatus.USAGE
