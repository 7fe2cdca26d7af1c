"""Synthetic licence plates for ``plates.py``: rendered, warped and composited onto cars.

Nothing here was fitted to the development photos: plates are drawn from scratch with fonts from
packages (DejaVu from Debian's ``fonts-dejavu-core`` when installed, and the FreeType font bundled
in the Pillow wheel, always there), in classes that each stress one thing the detector must cope
with. Each plate is warped to a quad and pasted either over the labelled plate of a development
photo (whose own plate is inpainted away first) or onto a plain generated car. A fixed seed makes
every run draw the same images.

The label of a synthetic plate is its quad (the plate's metal rectangle, frame excluded), as a
pixel mask: a tilted plate is scored on its own pixels, not on its bounding box.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/TTF")]
FONT_NAMES = [
    "DejaVuSans-Bold.ttf",
    "DejaVuSansCondensed-Bold.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSerifCondensed-Bold.ttf",
    "DejaVuSansMono.ttf",
]

CLASSES = [
    "vanity",
    "digits",
    "two_line",
    "header",
    "dealer",
    "eu_band",
    "dark_on_light",
    "light_on_dark",
    "dim",
    "low_contrast",
    "jpeg20",
    "motion",
    "tilt",
    "perspective",
]

WORDS = [
    "FREEDOM",
    "GOBUCKS",
    "LUCKY",
    "MYTOY",
    "SURFER",
    "NOWAY",
    "BOSS",
    "MAMA",
    "HEIDI",
    "TESLA",
    "COFFEE",
    "ROCKET",
    "KATKA",
    "JOHNNY",
    "GRANDMA",
    "ZOOM",
    "NINJA",
    "SUNNY",
]
STATES = ["California", "TEXAS", "New York", "FLORIDA", "Ohio", "ARIZONA", "Nevada", "OREGON"]
DEALERS = [
    ("SMITH TOYOTA", "smithtoyota.com"),
    ("AUTO WORLD", "CALL 555 0199"),
    ("HONDA OF DOVER", "HONDAOFDOVER.COM"),
    ("BEST CARS", "BESTCARS.NET"),
]
BADGES = ["COROLLA", "HYBRID", "GOLF", "CIVIC", "4MATIC", "SPORT", "ASTRA"]


@dataclass
class Sample:
    """One synthetic image: RGB pixels, the plate's pixel mask and its bounding box."""

    group: str
    rgb: np.ndarray
    plate_mask: np.ndarray
    box: np.ndarray  # (1, 4) xyxy of the plate quad


def fonts(size: int) -> list:
    """The plate fonts available on this machine at ``size`` px (Pillow's own font always)."""
    found = [ImageFont.truetype(str(d / n), size) for d in FONT_DIRS for n in FONT_NAMES if (d / n).is_file()]
    return found + [ImageFont.load_default(size=size)]


def _serial(rng) -> str:
    letters, digits = string.ascii_uppercase, string.digits
    pick = lambda pool, n: "".join(rng.choice(list(pool), n))  # noqa: E731
    forms = [
        lambda: f"{pick(letters, 3)} {pick(digits, 4)}",
        lambda: f"{pick(digits, 1)}{pick(letters, 3)}{pick(digits, 3)}",
        lambda: f"{pick(letters, 2)}-{pick(digits, 3)}-{pick(letters, 2)}",
        lambda: f"{pick(letters, 1)} {pick(letters, 2)} {pick(digits, 3)}",
    ]
    return forms[rng.integers(len(forms))]()


def _vanity(rng) -> str:
    if rng.random() < 0.6:
        return str(rng.choice(WORDS))
    return "".join(rng.choice(list(string.ascii_uppercase), rng.integers(3, 8)))


def _digits(rng) -> str:
    n = int(rng.integers(4, 8))
    s = "".join(rng.choice(list(string.digits), n))
    return s if rng.random() < 0.5 else f"{s[: n // 2]} {s[n // 2 :]}"


def _fit_text(draw, text: str, font_px: int, box_w: int, rng):
    """A random plate font for ``text``, shrunk until the text fits ``box_w`` px."""
    options = fonts(font_px)
    font = options[rng.integers(len(options))]
    while font.getbbox(text)[2] > box_w and font.size > 8:
        font = font.font_variant(size=int(font.size * 0.92))
    return font


def _text(draw, text: str, centre, font, fill):
    x1, y1, x2, y2 = draw.textbbox((0, 0), text, font=font)
    draw.text((centre[0] - (x1 + x2) / 2, centre[1] - (y1 + y2) / 2), text, font=font, fill=fill)


def render_plate(cls: str, rng) -> tuple[np.ndarray, np.ndarray | None]:
    """A flat plate of class ``cls`` as RGB, and the dealer frame (or None) to paste around it."""
    bg, fg = (235, 235, 228), (20, 20, 25)
    if cls == "light_on_dark":
        bg = [(20, 20, 22), (15, 30, 90), (20, 70, 35), (110, 20, 20)][rng.integers(4)]
        fg = [(240, 240, 240), (245, 210, 40)][rng.integers(2)]
    elif cls == "low_contrast":
        level = int(rng.integers(120, 190))
        bg, fg = (level,) * 3, (level - int(rng.integers(35, 55)),) * 3
    if cls == "eu_band":
        w, h = 520, 112
    elif cls == "two_line":
        w, h = 300, int(300 / rng.uniform(1.4, 2.0))
    elif cls in ("header", "dealer"):
        w, h = 480, 240
    else:
        w, h = [(480, 240), (520, 112), (400, 130)][rng.integers(3)]
    img = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(img)
    border = max(3, h // 30)
    draw.rectangle([0, 0, w - 1, h - 1], outline=fg, width=border)
    text = _vanity(rng) if cls == "vanity" else _digits(rng) if cls == "digits" else _serial(rng)
    left = border + 4
    if cls == "eu_band":
        band = int(0.085 * w)
        draw.rectangle([0, 0, band, h - 1], fill=(0, 51, 153))
        for k in range(12):  # the ring of stars
            a = 2 * np.pi * k / 12
            cx, cy, r = band / 2 + 0.28 * band * np.cos(a), 0.3 * h + 0.28 * band * np.sin(a), 2.5
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(255, 204, 0))
        code = str(rng.choice(["D", "F", "NL", "SK", "CZ", "PL"]))
        _text(
            draw, code, (band / 2, 0.75 * h), _fit_text(draw, code, int(0.3 * h), band, rng), (255, 255, 255)
        )
        left = band + 6
    if cls == "two_line":
        top, bottom = (
            text.replace("-", " ").split(" ", 1) if " " in text.replace("-", " ") else (text[:3], text[3:])
        )
        for line, cy in ((top, 0.3 * h), (bottom, 0.72 * h)):
            font = _fit_text(draw, line, int(0.36 * h), w - 2 * left, rng)
            _text(draw, line, (w / 2, cy), font, fg)
    elif cls == "header":
        state = str(rng.choice(STATES))
        colour = [(170, 20, 30), (20, 40, 130), fg][rng.integers(3)]
        _text(draw, state, (w / 2, 0.17 * h), _fit_text(draw, state, int(0.2 * h), w - 80, rng), colour)
        _text(draw, text, (w / 2, 0.56 * h), _fit_text(draw, text, int(0.42 * h), w - 2 * left, rng), fg)
        slogan = str(rng.choice(["Sunshine State", "LAND OF LINCOLN", "dmv.ca.gov", "Great Lakes"]))
        _text(draw, slogan, (w / 2, 0.88 * h), _fit_text(draw, slogan, int(0.1 * h), w - 80, rng), colour)
    else:
        font_px = int((0.42 if h / w > 0.4 else 0.7) * h)
        _text(
            draw,
            text,
            ((left + w - border) / 2, h / 2),
            _fit_text(draw, text, font_px, w - left - border - 8, rng),
            fg,
        )
    frame = None
    if cls == "dealer":  # the plate inside a dealer's frame with text above and below
        fw, fh = int(w * 1.1), int(h * 1.32)
        fimg = Image.new("RGB", (fw, fh), [(15, 15, 15), (190, 190, 195)][rng.integers(2)])
        fdraw = ImageDraw.Draw(fimg)
        top_text, bottom_text = DEALERS[rng.integers(len(DEALERS))]
        ink = (240, 240, 240) if fimg.getpixel((0, 0))[0] < 100 else (20, 20, 20)
        for line, cy in ((top_text, 0.08 * fh), (bottom_text, 0.92 * fh)):
            _text(fdraw, line, (fw / 2, cy), _fit_text(fdraw, line, int(0.1 * fh), fw - 40, rng), ink)
        frame = np.asarray(fimg)
    return np.asarray(img), frame


def _plain_car(rng, size=(640, 480)) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The back of a generated car; returns the image and (centre x, centre y, plate width)."""
    w, h = size
    body = rng.integers(20, 230, 3)
    img = np.empty((h, w, 3), np.float32)
    img[:] = body + np.linspace(-30, 30, h)[:, None, None]
    img += rng.normal(0, 4, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    cv2.rectangle(
        img, (int(0.15 * w), int(0.05 * h)), (int(0.85 * w), int(0.35 * h)), (35, 40, 45), -1
    )  # rear window
    for x in (int(0.04 * w), int(0.8 * w)):
        cv2.rectangle(img, (x, int(0.42 * h)), (x + int(0.16 * w), int(0.52 * h)), (190, 25, 25), -1)
    cv2.rectangle(img, (0, int(0.82 * h)), (w, int(0.95 * h)), (25, 25, 25), -1)  # bumper
    pw = float(rng.uniform(0.12, 0.34) * w)
    cx, cy = float(rng.uniform(0.4, 0.6) * w), float(rng.uniform(0.62, 0.72) * h)
    if rng.random() < 0.6:  # a chrome badge above the plate: text that is not a plate
        word = str(rng.choice(BADGES))
        pil = Image.fromarray(img)
        draw = ImageDraw.Draw(pil)
        font = _fit_text(draw, word, int(pw * 0.16), int(pw * 0.9), rng)
        _text(draw, word, (cx + rng.uniform(-0.3, 0.3) * pw, cy - 0.55 * pw), font, (205, 205, 210))
        img = np.asarray(pil).copy()
    return img, (cx, cy, pw)


def _dev_car(item: dict, data: Path, rng) -> tuple[np.ndarray, tuple[float, float, float]] | None:
    """A development photo with its labelled plate inpainted away; the plate's place and width."""
    bgr = cv2.imread(str(data / item["file"]))
    if bgr is None:
        return None
    x1, y1, x2, y2 = np.asarray(item["boxes"][0], float)
    bw, bh = x2 - x1, y2 - y1
    mask = np.zeros(bgr.shape[:2], np.uint8)
    cv2.rectangle(
        mask, (int(x1 - 0.12 * bw), int(y1 - 0.15 * bh)), (int(x2 + 0.12 * bw), int(y2 + 0.15 * bh)), 255, -1
    )
    bgr = cv2.inpaint(bgr, mask, 5, cv2.INPAINT_TELEA)
    return bgr[..., ::-1].copy(), ((x1 + x2) / 2, (y1 + y2) / 2, bw * rng.uniform(0.95, 1.3))


def _quad(cls: str, cx: float, cy: float, w: float, h: float, rng) -> np.ndarray:
    """Corners (tl, tr, br, bl) of a plate of w x h centred at (cx, cy), posed for ``cls``."""
    pts = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    if cls == "perspective":  # turned about the vertical axis: one side nearer, shorter width
        near = rng.uniform(0.6, 0.8)
        side = 1 if rng.random() < 0.5 else 0
        pts[:, 0] *= rng.uniform(0.6, 0.85)
        for i in (1, 2) if side else (0, 3):
            pts[i, 1] *= near
        pts[:, 1] += rng.uniform(-0.1, 0.1) * h * np.sign(pts[:, 0])
    angle = rng.uniform(10, 20) * rng.choice([-1, 1]) if cls == "tilt" else rng.uniform(-3, 3)
    t = np.deg2rad(angle)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return (pts @ rot.T + [cx, cy]).astype(np.float32)


def _paste(img: np.ndarray, flat: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Warp ``flat`` onto ``quad`` of ``img`` (anti-aliased edges); returns the coverage mask."""
    h, w = flat.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    m = cv2.getPerspectiveTransform(src, quad)
    size = (img.shape[1], img.shape[0])
    warped = cv2.warpPerspective(flat, m, size, flags=cv2.INTER_AREA)
    alpha = cv2.warpPerspective(np.ones((h, w), np.float32), m, size, flags=cv2.INTER_LINEAR)
    img[:] = (img * (1 - alpha[..., None]) + warped * alpha[..., None]).astype(np.uint8)
    return alpha > 0.5


def _finish(cls: str, img: np.ndarray, plate_w: float, rng) -> np.ndarray:
    """Photometric class effects applied to the whole image after compositing."""
    if cls == "dim":  # dusk: the whole scene dark, with sensor noise
        img = img.astype(np.float32) * rng.uniform(0.15, 0.3) + rng.normal(0, 2.5, img.shape)
        return np.clip(img, 0, 255).astype(np.uint8)
    if cls == "jpeg20":
        _, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 20])
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()
    if cls == "motion":
        k = max(3, int(rng.uniform(0.04, 0.08) * plate_w) | 1)
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(-15, 15), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (k, k))
        return cv2.filter2D(img, -1, kernel / kernel.sum())
    return img


def sample(cls: str, index: int, seed: int, dev: list[dict] | None, data: Path | None) -> Sample:
    """The ``index``-th synthetic image of class ``cls`` (same seed, same image)."""
    rng = np.random.default_rng([seed, CLASSES.index(cls), index])
    flat, frame = render_plate(cls, rng)
    car = None
    if dev and index % 3 != 2:  # two thirds on real cars, one third on generated ones
        car = _dev_car(dev[int(rng.integers(len(dev)))], data, rng)
    img, (cx, cy, pw) = car if car is not None else _plain_car(rng)
    img = np.ascontiguousarray(img)
    ph = pw * flat.shape[0] / flat.shape[1]
    if frame is not None:
        fh, fw = frame.shape[:2]
        _paste(
            img,
            frame,
            _quad(
                cls,
                cx,
                cy,
                pw * fw / flat.shape[1],
                ph * fh / flat.shape[0],
                np.random.default_rng([seed, 99, index]),
            ),
        )
    quad = _quad(cls, cx, cy, pw, ph, np.random.default_rng([seed, 99, index]))
    mask = _paste(img, flat, quad)
    img = _finish(cls, img, pw, rng)
    ys, xs = np.nonzero(mask)
    box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float64)
    return Sample(cls, np.ascontiguousarray(img), mask, box)
