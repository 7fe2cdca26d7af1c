"""The regions file on disk: written one box row per line (editable by hand), atomically, and
read back with errors that name the file and say what is wrong."""

from __future__ import annotations

import json
import math
import re
import uuid
from pathlib import Path

from .errors import RegionsError


def outward(box) -> list[float]:
    """``box`` (x1, y1, x2, y2) rounded to 0.01 px outwards, as the regions file holds it.

    Rounding to the nearest would shrink a box by up to 0.005 px a side, and turn a sliver at
    the frame's edge (x1 = 1279.996 in a 1280 px frame) into an empty box that ``from_dict``
    refuses: the scan would write what the render will not read back. Outwards, the box only
    grows (by less than 0.01 px) and stays inside the frame when it was.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    return [
        math.floor(x1 * 100) / 100,
        math.floor(y1 * 100) / 100,
        math.ceil(x2 * 100) / 100,
        math.ceil(y2 * 100) / 100,
    ]


def dumps(data: dict) -> str:
    """JSON a person can edit: one box row or keyframe per line, not one number per line."""
    rows: dict[str, str] = {}

    def compact(value):
        if (
            isinstance(value, list)
            and value
            and all(isinstance(v, (int, float, str, bool)) or v is None for v in value)
        ):
            token = f"@@{uuid.uuid4().hex}@@"
            rows[f'"{token}"'] = json.dumps(value)
            return token
        if isinstance(value, list):
            return [compact(v) for v in value]
        if isinstance(value, dict):
            if "box" in value and set(value) <= {"frame", "time", "box"}:  # a keyframe
                token = f"@@{uuid.uuid4().hex}@@"
                rows[f'"{token}"'] = json.dumps(value)
                return token
            return {k: compact(v) for k, v in value.items()}
        return value

    text = json.dumps(compact(data), indent=1)
    # One pass (a replace per row is quadratic: minutes for a long video's rows).
    text = re.sub(r'"@@[0-9a-f]{32}@@"', lambda m: rows[m.group(0)], text)
    return text + "\n"


def save(path: Path, data: dict) -> None:
    """Write a regions file (atomically: a half-written plan must never be rendered)."""
    from .files import atomic_output  # files imports media; keep this module light to import

    with atomic_output(Path(path)) as tmp:
        tmp.write_text(dumps(data))


def load(path: Path) -> dict:
    """The JSON of a regions file.

    Raises:
        RegionsError: naming the file and saying what is wrong with it (missing, a folder,
            empty, not text, not JSON and where).
    """
    path = Path(path)
    what = "it should be the JSON file blur scan writes"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RegionsError("no such regions file", path) from exc
    except IsADirectoryError as exc:
        raise RegionsError(f"is a folder, not a regions file ({what})", path) from exc
    except UnicodeDecodeError as exc:
        raise RegionsError(f"not a regions file: not UTF-8 text ({what})", path) from exc
    except OSError as exc:
        raise RegionsError(f"cannot read the regions file: {exc.strerror or exc}", path) from exc
    if not text.strip():
        raise RegionsError(f"the regions file is empty ({what})", path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegionsError(
            f"not a regions file: invalid JSON at line {exc.lineno}, column "
            f"{exc.colno} ({exc.msg.lower()}); {what}",
            path,
        ) from exc
