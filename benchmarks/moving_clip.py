"""A moving-camera clip with known face boxes in every frame, made from labelled photos.

Six labelled crowd photos of the development set (``../shared/eval/faces-dev``) are laid out
as prints on a textured wall; a virtual 1280x720 camera films the wall (200 frames, 25 fps):

* frames 0-49: a slow pan to the right while zooming in (faces grow ~1.6x);
* frames 50-99: the camera is still and a seventh photo drifts across the frame (a local
  change in a fixed view, the case change-driven analysis is about);
* frames 100-149: hand-held shake: a few pixels of jitter and a slight wobble of zoom on every
  frame while drifting down-left;
* frames 150-199: a fast pan back to the left while zooming out, motion-blurred.

Each labelled box is carried through the same geometry, so every frame has its true boxes.
A face counts in a frame when at least half of its box is inside the picture and at most half
of it is hidden under the drifting photo. Used by ``video_recall.py`` (recall) and
``speed.py`` (time). The clip is generated into a temporary folder; nothing is copied into the
repository.

``photo_set`` picks another seven photos (set k: the crowd photos 7k..7k+6 in file-name order)
and another hand-held jitter, to check on faces a change was not tuned on; set 0 is the clip
the benchmarks report.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from video_recall import clipped_to_frame

WIDTH, HEIGHT, FPS, FRAMES = 1280, 720, 25, 200
PRINT_SCALE = 1.0  # photo pixels -> wall pixels
GAP = 40  # wall pixels between prints
VISIBLE = 0.5


def _read(path: Path) -> np.ndarray:
    from blur.media import image

    return image.read(path).rgb


def choose_photos(items: list[dict], photo_set: int = 0) -> tuple[list[dict], dict]:
    """Six landscape crowd photos (five or more faces) for the wall and one more to drift,
    chosen by file name so the clip is the same on every run (``photo_set``: which seven)."""
    items = sorted(items, key=lambda it: it["file"])
    crowds = [it for it in items if len(it["boxes"]) >= 5 and it["width"] > it["height"]]
    first = 7 * photo_set
    if len(crowds) < first + 7:
        raise SystemExit(f"the labelled set has no photo set {photo_set} ({len(crowds)} crowd photos)")
    return crowds[first : first + 6], crowds[first + 6]


def build_wall(dev: Path, photos: list[dict]) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """The wall (RGB) with the prints on it in a 3x2 grid, and every face box in wall pixels."""
    cells = [
        cv2.resize(
            _read(dev / it["file"]), None, fx=PRINT_SCALE, fy=PRINT_SCALE, interpolation=cv2.INTER_CUBIC
        )
        for it in photos
    ]
    cell_w = max(c.shape[1] for c in cells)
    cell_h = max(c.shape[0] for c in cells)
    wall_w, wall_h = 3 * cell_w + 4 * GAP, 2 * cell_h + 3 * GAP
    rng = np.random.default_rng(7)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (wall_h // 8, wall_w // 8)).astype(np.float32), (0, 0), 1.5)
    noise = cv2.resize(noise, (wall_w, wall_h), interpolation=cv2.INTER_CUBIC)
    wall = np.clip(np.array([150, 140, 125], np.float32) + 25 * noise[..., None], 0, 255)
    wall = wall.astype(np.uint8)
    faces = []
    for k, (cell, it) in enumerate(zip(cells, photos)):
        x0 = GAP + (k % 3) * (cell_w + GAP) + (cell_w - cell.shape[1]) // 2
        y0 = GAP + (k // 3) * (cell_h + GAP) + (cell_h - cell.shape[0]) // 2
        wall[y0 : y0 + cell.shape[0], x0 : x0 + cell.shape[1]] = cell
        for i, box in enumerate(it["boxes"]):
            faces.append((f"P{k}.{i}", np.asarray(box, np.float32) * PRINT_SCALE + [x0, y0, x0, y0]))
    return wall, faces


def camera(t: int, wall_w: int, wall_h: int, seed: int = 0) -> tuple[float, float, float, float]:
    """(zoom, left, top, blur px) at frame t: the wall point (left, top) is the frame's top-left
    corner, one wall pixel is ``zoom`` frame pixels; blur is the horizontal motion blur.
    ``seed`` varies the hand-held jitter."""
    fit = min(WIDTH / wall_w, HEIGHT / wall_h)  # the whole wall in view
    rng = np.random.default_rng(1000 * (seed + 1) + t)
    if t < 50:
        u = t / 49
        zoom = fit * (1.0 + 0.6 * u)
        cx = wall_w * (0.35 + 0.3 * (0.5 - 0.5 * np.cos(np.pi * u)))
        cy = wall_h * 0.45
        blur = 0.0
    elif t < 100:
        zoom, cx, cy, blur = fit * 1.6, wall_w * 0.65, wall_h * 0.45, 0.0
    elif t < 150:
        u = (t - 100) / 49
        zoom = fit * 1.6 * (1 + 0.015 * rng.uniform(-1, 1))
        cx = wall_w * (0.65 - 0.08 * u) + rng.uniform(-6, 6) / zoom
        cy = wall_h * (0.45 + 0.1 * u) + rng.uniform(-6, 6) / zoom
        blur = 0.0
    else:
        u = (t - 150) / 49
        s = 0.5 - 0.5 * np.cos(np.pi * u)
        zoom = fit * (1.6 - 0.55 * s)
        cx = wall_w * (0.57 - 0.3 * s)
        cy = wall_h * (0.55 - 0.05 * s)
        speed = 0.3 * np.pi / 2 * np.sin(np.pi * u) / 49 * wall_w * zoom  # frame px per frame
        blur = 0.5 * speed
    return zoom, cx - WIDTH / 2 / zoom, cy - HEIGHT / 2 / zoom, blur


def drifter_position(t: int) -> tuple[float, float] | None:
    """Top-left corner (frame pixels) of the drifting photo, or None when it is not in the clip."""
    if 50 <= t < 100:
        return WIDTH - 14.0 * (t - 50), 330.0
    return None


def render(
    t: int, wall, wall_faces, drifter, drifter_faces, seed: int = 0
) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """Frame t (RGB) and its visible faces (id, xyxy clipped to the frame)."""
    zoom, left, top, blur = camera(t, wall.shape[1], wall.shape[0], seed)
    warp = np.array([[zoom, 0, -left * zoom], [0, zoom, -top * zoom]], np.float32)
    frame = cv2.warpAffine(
        wall,
        warp,
        (WIDTH, HEIGHT),
        flags=cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    faces = [
        (fid, (box.reshape(2, 2) * zoom - [left * zoom, top * zoom]).reshape(4)) for fid, box in wall_faces
    ]
    pos = drifter_position(t)
    if pos is not None:
        px, py = int(round(pos[0])), int(round(pos[1]))
        h, w = drifter.shape[:2]
        x1, y1, x2, y2 = max(px, 0), max(py, 0), min(px + w, WIDTH), min(py + h, HEIGHT)
        if x2 > x1 and y2 > y1:
            frame[y1:y2, x1:x2] = drifter[y1 - py : y2 - py, x1 - px : x2 - px]
            faces = [(fid, b) for fid, b in faces if _hidden(b, (x1, y1, x2, y2)) <= VISIBLE]
            faces += [(fid, b + [px, py, px, py]) for fid, b in drifter_faces]
    if blur > 1.5:
        length = int(round(blur)) | 1
        kernel = np.full((1, length), 1.0 / length, np.float32)
        frame = cv2.filter2D(frame, -1, kernel, borderType=cv2.BORDER_REFLECT)
    visible = []
    for fid, box in faces:
        clipped, inside = clipped_to_frame(box, WIDTH, HEIGHT)
        if inside >= VISIBLE:
            visible.append((fid, clipped))
    return frame, visible


def _hidden(box: np.ndarray, rect: tuple[int, int, int, int]) -> float:
    """Share of ``box`` under the rectangle ``rect`` (x1, y1, x2, y2)."""
    ix = max(0.0, min(box[2], rect[2]) - max(box[0], rect[0]))
    iy = max(0.0, min(box[3], rect[3]) - max(box[1], rect[1]))
    return ix * iy / max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)


def build(
    path: Path, dev: Path, frames: int = FRAMES, photo_set: int = 0
) -> list[list[tuple[str, np.ndarray]]]:
    """Write the clip to ``path`` (H.264 MP4) and return every frame's visible faces
    (``photo_set``: see the module docstring)."""
    import av
    from recall import load_set

    photos, drifting = choose_photos(load_set(dev), photo_set)
    wall, wall_faces = build_wall(dev, photos)
    drifter = cv2.resize(
        _read(dev / drifting["file"]), None, fx=PRINT_SCALE, fy=PRINT_SCALE, interpolation=cv2.INTER_CUBIC
    )
    drifter_faces = [
        (f"D.{i}", np.asarray(b, np.float32) * PRINT_SCALE) for i, b in enumerate(drifting["boxes"])
    ]
    truth = []
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        for t in range(frames):
            frame, faces = render(t, wall, wall_faces, drifter, drifter_faces, photo_set)
            truth.append(faces)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return truth
