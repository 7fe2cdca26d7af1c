"""The command line's vocabulary: the choices each option accepts (built from the registries that
define them), the options several commands share (declared once, with one help text), how the
options given become ``Settings``, and how ``--help`` is laid out. The commands themselves are in
``blur.cli`` and ``blur.cli_review``.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from .detectors import kinds as detector_kinds
from .detectors.runtime import DEVICE_NAMES
from .errors import SettingsError
from .redact import SHAPES, STYLES
from .settings import AUDIO, FAIL_FRAME, SMALL_FACE_MODELS, X264_PRESETS, Settings


class Command(typer.core.TyperCommand):
    """A command whose help names each argument by its metavar alone (``PATH...``), without
    the Python type Typer appends (``<list[Path]>``)."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        return [self.options_metavar] + [
            p.metavar or p.name.upper() for p in self.get_params(ctx) if p.param_type_name == "argument"
        ]

    def format_options(self, ctx, formatter) -> None:
        params = [p for p in self.get_params(ctx) if not getattr(p, "hidden", False)]
        arguments = [
            (p.metavar or p.name.upper(), f"{p.help or ''}" + ("  [required]" if p.required else ""))
            for p in params
            if p.param_type_name == "argument"
        ]
        options = [p.get_help_record(ctx) for p in params if p.param_type_name == "option"]
        for title, rows in (("Arguments", arguments), ("Options", [o for o in options if o])):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class Group(typer.core.TyperGroup):
    """The ``blur`` group, whose help also lists the options of ``blur PATH...`` (``run``): the
    command most people type is the one without a name."""

    def format_help(self, ctx, formatter) -> None:
        super().format_help(ctx, formatter)
        run = self.get_command(ctx, "run")
        formatter.write_paragraph()
        formatter.write_text(
            "blur PATH... (blur run PATH...) takes these options; blur COMMAND --help shows a command's own:"
        )
        run.format_options(ctx.__class__(run, info_name="run", parent=ctx), formatter)


DEFAULTS = Settings()  # the defaults, quoted in the help


def _choices(name: str, *values: str) -> type[Enum]:
    """The values an option accepts, as the Enum Typer wants (its value is the setting)."""
    return Enum(name, {value: value for value in values}, type=str)


# Every choice comes from where its values are defined (a registry or ``blur.settings``).
Style = _choices("Style", *STYLES)
Shape = _choices("Shape", *SHAPES)
Audio = _choices("Audio", *AUDIO)
OnFrameError = _choices("OnFrameError", *FAIL_FRAME)
Preset = _choices("Preset", *X264_PRESETS)
SmallFaceModel = _choices("SmallFaceModel", *SMALL_FACE_MODELS)
# --only names a kind blur looks for by default, in the plural; --text adds text lines.
_ONLY = {f"{kind}s": kind for kind in detector_kinds() if kind in DEFAULTS.kinds}
Only = _choices("Only", *_ONLY)
Device = _choices("Device", *DEVICE_NAMES)

# ---- options shared by several commands: declared once, with one help text -------------------
# Each defaults to None (a flag to False) and is merged over Settings, which holds the defaults.

Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs (never an input).")]
StyleOpt = Annotated[
    Optional[Style], typer.Option("--style", help="Redaction style (default: blur, irreversible).")
]
ShapeOpt = Annotated[Optional[Shape], typer.Option("--shape", help="Mask shape (default: ellipse).")]
MaskScale = Annotated[
    Optional[float],
    typer.Option(
        "--mask-scale",
        min=1.0,
        max=4.0,
        metavar="FACTOR",
        help=f"Enlarge each detected box by this factor (default {DEFAULTS.mask_scale}).",
    ),
]
Threshold = Annotated[
    Optional[float],
    typer.Option(
        "--threshold",
        min=0.01,
        max=0.99,
        metavar="SCORE",
        help=f"Face detection threshold; lower finds more (default {DEFAULTS.face_threshold}).",
    ),
]
Gap = Annotated[
    Optional[float],
    typer.Option(
        "--gap",
        min=0.0,
        metavar="SECONDS",
        help=f"Bridge tracks missed for up to this many seconds (default {DEFAULTS.max_gap_seconds}).",
    ),
]
Pad = Annotated[
    Optional[float],
    typer.Option(
        "--pad",
        min=0.0,
        metavar="SECONDS",
        help=f"Redact this many seconds before/after each track (default {DEFAULTS.pad_seconds}).",
    ),
]
Crf = Annotated[
    Optional[int],
    typer.Option(
        "--crf", min=0, max=51, metavar="N", help=f"H.264 quality, lower is better (default {DEFAULTS.crf})."
    ),
]
PresetOpt = Annotated[
    Optional[Preset],
    typer.Option(
        "--preset",
        metavar="NAME",
        help=f"x264 preset, e.g. veryfast, medium, slow (default {DEFAULTS.preset}).",
    ),
]
AudioOpt = Annotated[
    Optional[Audio], typer.Option("--audio", help="copy audio bit-exact (default) or drop it.")
]
OnFrameErrorOpt = Annotated[
    Optional[OnFrameError],
    typer.Option(
        "--on-frame-error",
        help="If a frame cannot be analysed: fail the file (default) or redact the whole frame.",
    ),
]
OnlyOpt = Annotated[
    Optional[Only],
    typer.Option("--only", help="Look for (and redact) only faces or only licence plates (default: both)."),
]
TextOpt = Annotated[
    bool,
    typer.Option(
        "--text", help="Also look for (and redact) every line of text: signs, banners, name badges."
    ),
]
Sideways = Annotated[
    bool,
    typer.Option(
        "--sideways",
        help="Also look for faces turned 90 degrees (people lying down, "
        "a camera on its side); about 3x slower.",
    ),
]
SmallFaceModelOpt = Annotated[
    Optional[SmallFaceModel],
    typer.Option(
        "--small-face-model",
        help="Model of the enlarged pass that finds small faces: centerface (default) or retinaface "
        "(lighter: about half the CPU time of a photo; misses a few more faces under 20 px in "
        "some pictures, fewer in others).",
    ),
]
DeviceOpt = Annotated[
    Optional[Device],
    typer.Option(
        "--device",
        case_sensitive=False,
        help="Where the models run (default auto: cuda or directml when an ONNX Runtime build for "
        "it is installed, else the CPU).",
    ),
]
KeepFormat = Annotated[
    bool, typer.Option("--keep-format", help="Write HEIC/HEIF/AVIF photos back as HEIC/AVIF (default: JPEG).")
]
NoRecord = Annotated[
    bool,
    typer.Option(
        "--no-record",
        help="Carry no record of the render in the output (by default JPEG, PNG, MP4 and MKV "
        "outputs carry the regions and what the scan saw, as boxes and scores, so that blur "
        "check needs no regions file).",
    ),
]
Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="No progress or summary; errors only.")]


def kinds_of(only: Optional[Only], text: bool) -> Optional[tuple[str, ...]]:
    """``--only`` and ``--text`` as ``Settings.kinds`` (None: the default kinds)."""
    if only is None and not text:
        return None
    base = Settings().kinds if only is None else (_ONLY[only.value],)
    return base + (("text",) if text else ())


def settings_from(**options) -> Settings:
    """The defaults with every option that was given: one left out is None (a flag, False).

    Raises:
        typer.BadParameter: a value ``Settings`` refuses (a usage error, exit 2).
    """
    try:
        return Settings().merged(
            **{
                key: value.value if isinstance(value, Enum) else value
                for key, value in options.items()
                if value is not None and value is not False
            }
        )
    except SettingsError as exc:
        raise typer.BadParameter(str(exc)) from exc
