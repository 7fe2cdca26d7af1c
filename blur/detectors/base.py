"""What every detector is: a class that finds one kind of thing in an upright RGB image, and
declares what the rest of blur needs to know about it.

A detector declares, as class attributes and class methods:

- ``name`` (its key in the registry) and ``kind`` (what it finds: "face", "plate", ...);
- ``small_face_pass``: ``detect`` takes ``small_faces=False`` to leave out a costly pass for
  small things (videos run that pass on every few frames only);
- ``every_n_frames`` (an instance attribute): in videos it runs on every n-th frame and the
  tracker bridges the others (lowered where tracking could not bridge it);
- ``options(settings)``: the constructor arguments it takes from ``Settings`` (the registry
  builds and caches one instance per distinct set of options);
- ``weights()``: the distribution carrying its model files, and those files, for the manifest.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..boxes import clip_xyxy
from ..errors import DetectionError
from ..types import Detections

if TYPE_CHECKING:
    from ..settings import Settings

T = TypeVar("T")

# The one cache of loaded models: detector instances and models shared between detectors.
# ``blur.detectors.release`` empties it.
_CACHE: dict[tuple, Any] = {}


def cached(key: tuple, make: Callable[[], T]) -> T:
    """The object cached under ``key``, made by ``make()`` the first time it is asked for."""
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def cached_result(key: tuple) -> Callable[[Callable[[], T]], Callable[[], T]]:
    """Decorator: the function's result is made once and kept in the one cache under ``key``,
    so ``blur.detectors.release`` frees it with the detectors (a model rewritten on loading)."""

    def decorate(make: Callable[[], T]) -> Callable[[], T]:
        @functools.wraps(make)
        def get() -> T:
            return cached(key, make)

        return get

    return decorate


class Detector:
    """Base of every detector: subclasses set ``name`` and ``kind`` and implement ``detect``."""

    name: str = ""
    kind: str = ""
    small_face_pass: bool = False
    every_n_frames: int = 1
    # Detectors that share a model (the text detector behind plates and text) name the same
    # group: a video scan runs each group on a thread of its own (``blur.schedule``).
    model_group: str = ""

    def detect(self, image: np.ndarray) -> Detections:
        """Everything of ``kind`` in one upright RGB uint8 image (boxes in its pixels)."""
        raise NotImplementedError

    @classmethod
    def options(cls, settings: Settings) -> dict:
        """The constructor arguments this detector takes from ``settings``."""
        return {"device": settings.device}

    @classmethod
    def from_settings(cls, settings: Settings) -> Detector:
        """A new instance built with ``options(settings)`` (the registry caches them)."""
        return cls(**cls.options(settings))

    @classmethod
    def weights(cls) -> tuple[str, list[Path]]:
        """(distribution carrying the model files, the files), as the detector loads them."""
        return "blur", []

    def run(self, image: np.ndarray, small_faces: bool = True, **options) -> Detections:
        """``detect``, checked: fail closed on any failure or garbage output, boxes clipped.

        Args:
            image: upright RGB uint8.
            small_faces: False leaves out the small-face pass of a detector that has one.
            **options: passed on to ``detect`` (``incremental``: see ``blur.schedule``).

        Raises:
            DetectionError: the detector raised, or returned anything but valid Detections.
        """
        if not small_faces and self.small_face_pass:
            options["small_faces"] = False
        try:
            found = self.detect(image, **options)
        except DetectionError:
            raise
        except Exception as exc:  # fail closed: an unanalysed frame must never pass unredacted
            raise DetectionError(f"{self.name} failed: {exc}") from exc
        if not isinstance(found, Detections) or not found.validate():
            raise DetectionError(f"{self.name} returned invalid boxes")
        # Detectors grow their boxes (a chin, a plate around its text), which may run off the
        # picture: every box is clipped to the full image where it is made.
        found.xyxy = clip_xyxy(found.xyxy, image.shape[1], image.shape[0])
        return found
