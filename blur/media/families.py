"""The three media families as one interface: probe, frames, write, leftover.

A family reads a file's facts (``probe``), decodes its frames upright (``frames``), writes a
fresh output from frames passed through a redaction (``write``) and lists what identifying
metadata a file of its kind has left (``leftover``: the one ``metadata.leftover``, which also
looks for the encoder's settings string in blur's own outputs). ``probe``
and ``render`` pick the family from ``FAMILIES``; a new format is a module here and one entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import MediaError
from ..types import Frame, MediaInfo
from . import animation, embedded, image, metadata, video, video_encode

# process(frame) -> the redacted RGB pixels of that frame, same size.
ProcessFn = Callable[[Frame], np.ndarray]


@dataclass
class Written:
    """What ``write`` produced: frames processed, and what is worth telling about the output."""

    frames: int
    notes: list[str] = field(default_factory=list)


class Family(Protocol):
    """How one family of files is read, written and proven clean."""

    kind: str

    def probe(self, path: Path) -> MediaInfo: ...

    def frames(self, path: Path, ahead: int = 0) -> Iterator[Frame]: ...

    def write(
        self,
        src: Path,
        out: Path,
        name: Path,
        process: ProcessFn,
        settings,
        on_frame: Callable[[int], None] | None = None,
        info: MediaInfo | None = None,
        record: dict | None = None,
    ) -> Written:
        """Write ``out`` from ``src``'s frames passed through ``process``.

        Args:
            name: the output's final name (``out`` is a temp file): its format follows it.
            info: what ``probe`` found in ``src``, so that it need not be read again.
            record: blur's record of the render (``blur.record.record_of``), carried in the
                output where its format can (``embedded``); None: none.
        """
        ...

    def leftover(self, path: Path, written_by_blur: bool = False) -> list[str]: ...


class _Family:
    """What every family shares: clean means what ``metadata.leftover`` says for its kind."""

    kind: str

    def leftover(self, path: Path, written_by_blur: bool = False) -> list[str]:
        return metadata.leftover(path, self.kind, written_by_blur)


class Still(_Family):
    """Photos (JPEG, PNG, WebP, TIFF, BMP, HEIC/HEIF, AVIF): one frame."""

    kind = "image"

    def probe(self, path: Path) -> MediaInfo:
        return image.probe(path)

    def frames(self, path: Path, ahead: int = 0) -> Iterator[Frame]:
        yield Frame(image.read(path).rgb, 0)

    def write(self, src, out, name, process, settings, on_frame=None, info=None, record=None) -> Written:
        still = image.read(src)
        still.rgb = process(Frame(still.rgb, 0))
        still.format = image.output_format(still, name)  # HEIC: JPEG unless kept
        image.write(still, out, settings.jpeg_quality)
        if record is not None:  # JPEG and PNG: bound to the file as written (``embedded``)
            out.write_bytes(embedded.bind_photo(out.read_bytes(), still.format, record))
        if on_frame:
            on_frame(1)
        return Written(1)


class Animation(_Family):
    """GIF, animated WebP and APNG: frames with their own durations, written in their format."""

    kind = "animation"

    def probe(self, path: Path) -> MediaInfo:
        return animation.probe(path)

    def frames(self, path: Path, ahead: int = 0) -> Iterator[Frame]:
        return animation.frames(path)  # decoded in the caller's thread

    def write(self, src, out, name, process, settings, on_frame=None, info=None, record=None) -> Written:
        # An animation carries no record (``embedded``): checked, it needs the regions file.
        stats = animation.transcode(src, out, process, quality=settings.jpeg_quality, on_frame=on_frame)
        return Written(stats["frames"], [])


class Video(_Family):
    """Videos: H.264 in MP4 (MKV stays MKV), audio copied bit-exact or dropped."""

    kind = "video"

    def probe(self, path: Path) -> MediaInfo:
        return video.probe(path)

    def frames(self, path: Path, ahead: int = 0) -> Iterator[Frame]:
        return video.frames(path, ahead=ahead)

    def write(self, src, out, name, process, settings, on_frame=None, info=None, record=None) -> Written:
        muxer = video.output_format(name)[0] if name.suffix.lower() == ".mkv" else "mp4"
        geometry = (info.rotation, info.width, info.height) if info is not None else None
        stats = video_encode.transcode(
            src,
            out,
            muxer,
            process,
            crf=settings.crf,
            preset=settings.preset,
            audio=settings.audio,
            on_frame=on_frame,
            geometry=geometry,
            record=record,
        )
        notes = []
        if stats["audio_reencoded"]:
            notes.append(
                "audio re-encoded to AAC (the output container cannot hold "
                + ", ".join(stats["audio_reencoded"])
                + ")"
            )
        return Written(stats["frames"], notes)


FAMILIES: dict[str, Family] = {family.kind: family for family in (Still(), Animation(), Video())}


def family_of(info: MediaInfo) -> Family:
    """The family that reads and writes the file ``info`` describes."""
    try:
        return FAMILIES[info.kind]
    except KeyError:
        raise MediaError(f"no media family for {info.kind!r}", info.path) from None
