"""The detector registry and the one model cache.

Add a detector with its file (a ``base.Detector`` subclass) and one line in ``DETECTORS``. The
first registered detector of a kind serves that kind; every kind registered can be asked for
(``Settings.kinds``, ``--only``). Loaded detectors, and what they load (the face model as
rewritten for ONNX Runtime, the text model plates and text lines share), are kept in one cache
per process and reused across files until ``release()``.
"""

from __future__ import annotations

import ctypes
import gc

from ..errors import UsageError
from . import runtime
from .base import _CACHE, Detector, cached, cached_result
from .centerface import CenterFaceDetector
from .plates import PlateDetector
from .text import TextDetector

DETECTORS: dict[str, type[Detector]] = {
    cls.name: cls
    for cls in (
        CenterFaceDetector,
        PlateDetector,
        TextDetector,
    )
}

# Optional detectors whose dependencies may be missing are added in guarded imports, e.g.
# try: from .other import OtherDetector  except ImportError: pass  else: register(OtherDetector)

__all__ = [
    "DETECTORS",
    "Detector",
    "build",
    "cached",
    "cached_result",
    "check_device",
    "for_kind",
    "kinds",
    "register",
    "release",
]


def register(cls: type[Detector]) -> type[Detector]:
    """Add a detector to the registry under its ``name`` (usable as a class decorator)."""
    DETECTORS[cls.name] = cls
    return cls


def kinds() -> tuple[str, ...]:
    """Every kind some registered detector finds, in registration order."""
    return tuple(dict.fromkeys(cls.kind for cls in DETECTORS.values()))


def for_kind(kind: str) -> type[Detector]:
    """The detector that serves ``kind``: the first one registered for it.

    Raises:
        UsageError: no registered detector finds ``kind``.
    """
    for cls in DETECTORS.values():
        if cls.kind == kind:
            return cls
    raise UsageError(f"no detector available for {kind!r}")


def check_device(device: str) -> str:
    """The ONNX Runtime provider that ``device`` ("cpu", "auto", "cuda", ...) runs the models on.

    Raises:
        UsageError: an unknown name, or a provider this ONNX Runtime build does not have.
    """
    return runtime.providers(device)[0]


def build(settings) -> list[Detector]:
    """One detector per kind in ``settings.kinds``, built once per process and reused."""
    check_device(settings.device)
    classes = [for_kind(kind) for kind in settings.kinds]
    # Each group runs on a thread of its own in a video scan, and side by side on a photo.
    threads = runtime.share_cores(len({cls.model_group or cls.name for cls in classes}))
    out = []
    for cls in classes:
        options = cls.options(settings)
        out.append(
            cached(
                (cls.name, threads, tuple(sorted(options.items()))),
                lambda cls=cls, options=options: cls(**options),
            )
        )
    return out


def release() -> None:
    """Forget every cached detector and model, and hand the freed memory back to the system
    (glibc keeps freed blocks, decoder threads' ones included, unless asked to trim)."""
    _CACHE.clear()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to trim
        pass
