"""blur: offline anonymisation of faces (and plates) in photos and videos.

Library use::

    import blur
    result = blur.anonymise("clip.mp4")                      # -> clip.blurred.mp4
    plan = blur.scan("clip.mp4")                              # detect + track only
    blur.render("clip.mp4", "out.mp4", plan)                  # redact as planned
"""

from .errors import BlurError, ExitStatus
from .pipeline import anonymise, render, scan
from .settings import Settings
from .types import Detections, FileResult, Frame, MediaInfo, Plan, Source, Track

__version__ = "0.1.0"

__all__ = [
    "BlurError",
    "Detections",
    "ExitStatus",
    "FileResult",
    "Frame",
    "MediaInfo",
    "Plan",
    "Settings",
    "Source",
    "Track",
    "anonymise",
    "render",
    "scan",
    "__version__",
]
