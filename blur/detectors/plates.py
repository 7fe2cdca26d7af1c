"""Licence plates: text lines that look like a plate, grown to cover the whole plate.

A plate is text on a rectangle, so a text detector finds plates of any country. A missed plate is
a leak and a redacted sign is a small loss, so the rules are fail closed: every text line with
the geometry of a plate's characters is a plate unless there is strong evidence that it is not.

Geometry (``candidates``): one short, near-horizontal line of large characters: length / height
1.2-10, tilt at most 30 degrees, height at least ``min_height_px`` in the analysed image and at
most ``max_height`` of the frame. Plates of every class in ``benchmarks/plates.py`` (tilted by 20
degrees, in perspective, two lines, under a state name) fit it.

Strong evidence that a line is not a plate (``not_a_plate``), read by the recogniser with at
least ``read_conf`` mean confidence:

- a clock time or a date (dashcam and CCTV overlays); a number of eight or more digits (phone
  numbers, timestamps: all-digit plates are at most seven long); digits only, ending in a colon
  and the two digits of the seconds (a clock whose other colons were misread, "07825:13"). A
  colon elsewhere is not such evidence: an all-digit plate's separator reads as one ("480:4979",
  a motion-blurred EU plate that was dropped as a clock);
- lower-case letters that have no capital look-alike (``a b d e g h n q r t``), at least two
  of them: plates are written in capitals in every country, signs, shop fronts and the state
  name or web address around a US plate are not. The state line is dropped, not the plate: the
  plate's own line is kept and grown over the plate;
- more than ten letters and digits: longer than any plate, however the line was cut;
- no Latin letter or digit at all (a logo, a symbol, another script): every plate this tool
  targets carries some.

Two more pieces of evidence: three or more rows of words (lines read confidently with letters
and no digit) of the same size stacked in one column are a sign or a banner (``text_block``; a
two-line plate has two rows, a state name and a slogan are much smaller than the number, and
lines with digits never count, so a plate under a badge word is not taken for a banner); and a
line shorter than 1.5 times its height, at least 40 px tall in the analysed image, that the
recogniser cannot read is a block of small text seen as one blob (a "Fire assembly point" sign
in the street sample, aspect 1.1), not a plate: characters that large on a plate are read. A
limit of 2 was measured: it also dropped a group of people in vtest.avi read as a 1.75:1 "line"
(grown to 28-45 % of the frame), but lost motion-blurred plates (dev photos smeared by 1 % of
their width: 0.703 -> 0.622 wholly covered), so 1.5 stays: recall first.

A large line the recogniser cannot read needs a plate rectangle (``bare_height_px``,
``rect_long``, ``rect_short``): a kept line at least 40 px tall in the analysed image that is not
read (confidence at least ``read_conf``) as at least three letters and digits is a plate only
when ``plate_extent`` finds a closed plate rectangle around it no wider than twice and no taller
than three times the line's box; otherwise it is dropped. A plate is a rectangle of one colour
around its characters, and a real large plate that blur cannot read still shows it (the
motion-blurred plate in ``../shared/media/licenseplate_motion.jpg``: a 143 px line read as "E" at
0.15, inside a plate rectangle 1.05 x 1.15 times its box, stays covered). Groups of people in
CCTV (vtest.avi frames 56-71 and 134-144: 85-120 px "lines" read as a few random characters at
0.2-0.6) show either no closed rectangle or one 2.2-3.2 times the line, and were grown to
20-39 % of the frame. Measured (``benchmarks/plates.py --per-class 20``): plates-dev, dim, JPEG
q20, half size and every synthetic class unchanged; motion blur 0.703 -> 0.694: one photo whose
plate was never detected and was covered only by the padding of a 337 x 180 px unreadable blob
beside it with no rectangle. Real footage (``benchmarks/redacted_share.py``, changed share,
median / p95): vtest 0.5 / 23.7 -> 0.4 / 7.0 %, Megamind 12.3 / 22.3 -> 11.6 / 19.9 %. Drawing a
kept large unreadable line as its rectangle only, without the fixed padding, lost more
motion-blurred plates (0.703 -> 0.676), all covered by a padded neighbour, so the padding stays.
Tighter rectangles were measured and not used: at most 2 times the line's height would clean
vtest further (p95 7.0 -> 1.2 %) but
lost another motion-blurred plate (0.694 -> 0.685); the real unreadable plates of the benchmark
have rectangles up to 1.9 times the line's width (a bumper of the plate's colour beside it) and
1.5 times its height. The top row of a two-line plate ("MQ", two letters) counts as unread and
is dropped when its rectangle is larger; the plate's second row covers it (two_line 1.000).

Unless it is smeared along its length (see below), such a line must also show characters: across
the middle half of its height, a row crosses on average at least ``min_strokes`` (4) edges
between its dark and light parts (``plate_rect.strokes``: two edges per stroke, two characters
at least). Dark film frames (``../shared/media/Megamind.avi``) show the text detector shapes
that are no text at all as one large unreadable line inside a closed rectangle of one colour: a
cheek against dark hair (frames 112-146, rectangles up to 171 x 187 px, taller than wide), a
bare shoulder above a candle (frames 158-163), the rim of a tablecloth (frames 5-37); their rows
cross 1.5-3.7 edges. Unreadable lines on real plates in sharp photos cross many more (a JPEG q20
plate: 20). But a plate smeared by motion merges its characters into one dark bar: of the
development photos smeared by 1 % of their width, 3 plates kept only as such a line
(wts-lg-000026, -000069, -000159) cross 2.0-3.2 edges, and would be lost. A smeared line is told
by its own gradients (``smear`` of the line's pixels below ``smear_ratio``; those plates measure
0.16-0.44, the cheek and shoulder 0.59-2.4), and it keeps the benefit of the doubt: a car
passing a still camera smears its plate and not the frame, so the frame's smear cannot decide.
The tablecloth's rim is a horizontal edge, as smeared by that measure as a plate (0.30-0.50),
and stays: no measure tried (the rectangle's shape, its size relative to the line, where the
dark part lies in the line) told it from those three plates. A rectangle's shape alone (wider
than tall) would drop only the largest cheek rectangles, all of which the strokes rule drops.

The same benefit of the doubt decides how close the rectangle must fit: a line that is not
smeared needs a rectangle at most ``sharp_rect_short`` (2) times its box's height (the sharp
unreadable plate lines of the benchmark measure 1.0-1.5), a smeared one ``rect_short`` (3). In
vtest.avi a small sign among walking people reads as one large unreadable line with strokes
(the people) inside a closed grey rectangle, the pavement, 2.6-3 times its height, and was grown
to 9-27 % of the frame (frames 76-92, 133-146). Measured: 2 for every line lost a
motion-blurred plate (degraded motion 0.829 -> 0.820), 2 for sharp lines only loses none.

Measured with both rules (``benchmarks/plates.py``): plates-dev, every synthetic class (seeds
777 and 4242, 20 per class) and the degraded suite unchanged (dim 0.991, JPEG q20 1.000, half
0.991, motion 0.829; motion's non-plate share 7.61 -> 7.59 %); the redacted share of real
footage falls (``benchmarks/redacted_share.py``, its table).

What is *not* such evidence: reading as a word (personalised plates are words: "FREEDOM",
"HEIDI"), having no digit, having no letter, being short (the top line of a two-line plate holds
two letters), or reading nothing at all (motion blur, dirt, a tiny or dim plate: a plate that
cannot be read must still be hidden). These were the reasons earlier rules dropped real plates.

Each kept line is grown to the plate around it, in two ways whose union is kept: by a fixed
padding (characters are about half a plate's height, so ``pad_y`` line heights up and down and
``pad_x`` along the line), and to the plate's own rectangle when one is found around the line
(``plate_rect.plate_extent``: the plate's background colour, closed on all four sides), which
reaches the corners of a plate whose number is short, off-centre, under a state name or above a slogan, or
in a dealer's frame. Boxes lying mostly inside another (the lines of a two-line plate, each
grown to the same plate) are merged. The renderer draws plates as rectangles grown by the mask
scale.

Dim plates: a dark frame (median luminance under ``dark_level``) is shown to the text detector
after CLAHE on the luminance (see ``text.equalised``), which finds grey characters on a grey
plate at dusk that the plain frame hides. Daylight frames are not equalised: there it cost
plates that the plain frame shows (measured on the development photos).

Smeared plates: a frame smeared by horizontal motion (``smear``: its horizontal luminance
gradient under ``smear_ratio`` times its vertical one) is analysed once more, on a copy with its
local contrast stretched and its edges restored by an unsharp mask (``sharpened``). The plain
frame's text detector sees nothing at all on most plates smeared by 1 % of the frame's width
(probability 0.00 over the plate), yet many stay partly legible. Measured on the development
photos smeared that way, the 34 plates missed: CLAHE alone found a plate line on 6, a second
scale (640 px) 4, a lower ``box_thresh`` (0.3) none, the sharpened copy 15 (14 whole after
classification). Plain photos measure a gradient ratio of 0.45-1.15, smeared ones 0.18-0.62,
the film and CCTV clips 0.71-1.16, so the pass runs on smeared frames only and costs nothing
elsewhere. ``benchmarks/plates.py --suite degraded --degrade motion``: whole plates 0.694 ->
0.829, at a cost: non-plate share 9.4 -> 12.0 % and about twice the time on those frames. The
plates still missed are those the sharpened copy shows no line on either.
"""

from __future__ import annotations

import re

import cv2
import numpy as np

from ..types import Detections
from .plate_rect import merge_nested, plate_extent, plate_like, strokes
from .text import TextModelDetector, analysis_scale, equalised, rect_xyxy, shared_model, upright_crop

_ALNUM = re.compile(r"[0-9A-Za-z]")
# Lower-case letters whose capitals look different: a recogniser reads a capital plate letter as
# one of these only rarely (c o s u v w x z and l i j k p y are left out: they look alike).
_LOWER_ONLY = re.compile(r"[abdeghnqrt]")
# Clock times and dates: overlays of dashcams and CCTV, never a plate.
# A sticker between groups often reads as ":" (Czech "1Z7:5233"), hence the digit guards.
_CLOCK = re.compile(
    r"(?<!\d)(\d{1,2}[:.]\d{2}[:.]\d{2}|\d{1,2}:\d{2}|\d{4}[-/.:]\d{1,2}[-/.:]\d{1,2}"
    r"|\d{2}[-/]\d{2}[-/]\d{2})(?!\d)"
)


# A clock whose other colons were misread ("07825:13"): digits, a colon, the two digits of the
# seconds at the end. A plate's separator read as a colon ("480:4979") has longer groups.
_MISREAD_CLOCK = re.compile(r"\d:\d{2}\s*$")


def not_a_plate(text: str) -> str | None:
    """Why a confidently read line cannot be (part of) a licence plate, or None if it can be."""
    if _CLOCK.search(text):
        return "clock or date"
    chars = _ALNUM.findall(text)
    digits = sum(c.isdigit() for c in chars)
    if digits == len(chars) and (digits >= 8 or _MISREAD_CLOCK.search(text)):
        return "long number"
    if text.strip() and not chars:
        return "no letters or digits"  # a logo, a symbol, a script no plate is written in
    if len(_LOWER_ONLY.findall(text)) >= 2:
        return "lower case"
    if len(chars) > 10:
        return "too long"
    return None


class PlateDetector(TextModelDetector):
    """Licence plates found by the PP-OCR text detector, checked by its recogniser.

    Args:
        max_side: the image is analysed with its long side at most this many pixels.
        upscale: smaller images are enlarged up to this factor towards ``max_side``.
        box_thresh: minimum mean text probability of a line.
        dark_level: frames whose median luminance (0-255) is below this are equalised
            before the text detector (0: never; 256: always).
        min_height_px: lines shorter than this (in the analysed image) are not plates.
        max_height: lines taller than this share of the image height are not plates.
        min_aspect / max_aspect: allowed length / height of a line.
        max_angle: largest tilt of a line from horizontal, in degrees.
        read_conf: a line read with at least this confidence as something that cannot be a
            plate (``not_a_plate``) is dropped; lines read with less confidence are kept.
        pad_x / pad_y: the line's box grows by this many line heights left/right and up/down
            to reach the plate's edges and frame.
        square_aspect / square_height_px: an unreadable line shorter than ``square_aspect``
            times its height and at least ``square_height_px`` tall in the analysed image is a
            block of text (a sign), not a plate.
        bare_height_px / bare_chars: a kept line at least ``bare_height_px`` tall in the
            analysed image, not read as at least ``bare_chars`` letters and digits, is a plate
            only inside a plate rectangle at most ``rect_long`` times the width and
            ``rect_short`` times the height of the line's box.
        min_strokes / sharp_rect_short: a large unreadable line that is not smeared along its
            length (see ``smear_ratio``) must also show characters (a row across it crosses at
            least ``min_strokes`` dark/light edges on average, ``plate_rect.strokes``) and lie
            in a plate rectangle at most ``sharp_rect_short`` times its box's height.
        second_side: also analyse the image at this long side (0: one scale only); measured and
            off by default (see docs/benchmarks.md).
        every_n_frames: in videos, run on every n-th frame; the tracker bridges the others.
        device: where ONNX Runtime runs the text model (see ``runtime.providers``).
    """

    name = "ppocr-plates"
    kind = "plate"
    model_group = "ppocr"

    def __init__(
        self,
        max_side: int = 1280,
        box_thresh: float = 0.5,
        dark_level: float = 80.0,
        min_height_px: float = 8.0,
        min_aspect: float = 1.2,
        max_aspect: float = 10.0,
        max_angle: float = 30.0,
        read_conf: float = 0.4,
        pad_x: float = 0.6,
        pad_y: float = 0.55,
        max_height: float = 0.35,
        upscale: float = 2.0,
        square_aspect: float = 1.5,
        second_side: int = 0,
        square_height_px: float = 40.0,
        bare_height_px: float = 40.0,
        bare_chars: int = 3,
        rect_long: float = 2.0,
        rect_short: float = 3.0,
        smear_ratio: float = 0.55,
        min_strokes: float = 4.0,
        sharp_rect_short: float = 2.0,
        every_n_frames: int = 1,
        device: str = "auto",
        **_ignored,
    ):
        self.max_side = max_side
        self.upscale = upscale
        self.max_height = max_height
        self.box_thresh = box_thresh
        self.dark_level = dark_level
        self.min_height_px = min_height_px
        self.min_aspect = min_aspect
        self.max_aspect = max_aspect
        self.max_angle = max_angle
        self.read_conf = read_conf
        self.pad_x = pad_x
        self.pad_y = pad_y
        self.square_aspect = square_aspect
        self.second_side = second_side
        self.square_height_px = square_height_px
        self.bare_height_px = bare_height_px
        self.bare_chars = bare_chars
        self.rect_long = rect_long
        self.rect_short = rect_short
        self.smear_ratio = smear_ratio
        self.min_strokes = min_strokes
        self.sharp_rect_short = sharp_rect_short
        self.every_n_frames = every_n_frames
        self._model = shared_model(device)

    def candidates(self, image: np.ndarray, incremental=None):
        """Text lines whose geometry fits a plate: (rects, scores), from every analysed scale
        (``incremental``: see ``TextModel.find``)."""
        height, width = image.shape[:2]
        dark = is_dark(image, self.dark_level)
        passes = [(image, side, dark, incremental) for side in (self.max_side, self.second_side) if side]
        if smear(image) < self.smear_ratio:
            # A smeared frame: once more with its edges restored (not incremental: it runs on
            # some frames only).
            scale = analysis_scale(width, height, self.max_side, self.upscale)
            passes.append((sharpened(image, 3.0 / scale), self.max_side, False, None))
        rects, scores = [], []
        for picture, side, equalise, changes in passes:
            lines = self._model.find(picture, side, self.box_thresh, self.upscale, equalise, changes)
            if not len(lines):
                continue
            scale = analysis_scale(width, height, side, self.upscale)
            _, _, lng, sht, ang = lines.rects.T
            ok = (
                (sht * scale >= self.min_height_px)
                & (sht <= self.max_height * height)
                & (lng >= self.min_aspect * sht)
                & (lng <= self.max_aspect * sht)
                & (np.abs(ang) <= self.max_angle)
            )
            rects.append(lines.rects[ok])
            scores.append(lines.score[ok])
        if not rects:
            return np.zeros((0, 5), np.float32), np.zeros(0, np.float32)
        return np.concatenate(rects), np.concatenate(scores)

    def classify(self, image: np.ndarray, rects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which candidate lines are plates, and which of those need a plate rectangle.

        Returns:
            keep: lines that are plates: all but those with strong evidence against (see the
                module docstring); unreadable lines are kept, except large square blobs.
            bare: kept lines at least ``bare_height_px`` tall in the analysed image that the
                recogniser does not read as at least ``bare_chars`` letters and digits: such a
                line is a plate only inside a plate rectangle (see ``detect``).
        """
        height, width = image.shape[:2]
        scale = analysis_scale(width, height, self.max_side, self.upscale)
        keep = np.ones(len(rects), dtype=bool)
        word = np.zeros(len(rects), dtype=bool)
        read = np.zeros(len(rects), dtype=bool)
        for i, (text, conf) in enumerate(self._model.read(image, rects)):
            if conf >= self.read_conf:
                keep[i] = not_a_plate(text) is None
                letters = _ALNUM.findall(text)
                word[i] = len(letters) >= 2 and not any(c.isdigit() for c in letters)
                read[i] = len(letters) >= self.bare_chars
            else:
                _, _, lng, sht, _ = rects[i]
                keep[i] = not (lng < self.square_aspect * sht and sht * scale >= self.square_height_px)
        # Words stacked three rows deep are a sign or a banner.
        keep[np.flatnonzero(word)[text_block(rects[word])]] = False
        bare = keep & ~read & (rects[:, 3] * scale >= self.bare_height_px)
        return keep, bare

    def detect(self, image: np.ndarray, incremental=None) -> Detections:
        """Plates in one upright RGB uint8 image, boxes grown to the whole plate
        (``incremental``: see ``TextModel.find``)."""
        rects, score = self.candidates(image, incremental)
        bare = np.zeros(len(rects), dtype=bool)
        if len(rects):
            keep, bare = self.classify(image, rects)
            rects, score, bare = rects[keep], score[keep], bare[keep]
        xyxy = rect_xyxy(rects, self.pad_x, self.pad_y)
        found = np.ones(len(rects), dtype=bool)
        for i, rect in enumerate(rects):
            plate = plate_extent(image, rect)
            if bare[i]:
                # A large line the recogniser cannot read: a plate only inside a plate
                # rectangle of a plate's proportions, and redacted as that rectangle. Unless
                # motion smeared it, it must show characters and fit its rectangle closely.
                line = rect_xyxy(rect)[0]
                band = upright_crop(image, rect)
                smeared = smear(band) < self.smear_ratio
                short = self.rect_short if smeared else self.sharp_rect_short
                if (
                    plate is None
                    or not plate_like(plate, line, self.rect_long, short)
                    or not (smeared or strokes(band) >= self.min_strokes)
                ):
                    found[i] = False
                    continue
                # Its rectangle's edges are known: padding by line heights would reach far
                # past them (a 180 px "line" on a photo print grew to a third of the frame).
                xyxy[i] = line
            if plate is not None:  # only ever grows the box
                xyxy[i, :2] = np.minimum(xyxy[i, :2], plate[:2])
                xyxy[i, 2:] = np.maximum(xyxy[i, 2:], plate[2:])
        xyxy, score = merge_nested(xyxy[found], score[found])
        return Detections.of(xyxy, score, "plate")


def text_block(rects: np.ndarray, min_lines: int = 3) -> np.ndarray:
    """Boolean mask of lines in a stack of at least ``min_lines`` rows of the same size.

    Lines are stacked when their heights differ by at most 40 %, their centres are at most 3
    line heights apart vertically, and they overlap horizontally by at least a third of the
    shorter. Three or more equal rows of words in one column are a sign, a banner or a page.
    """
    n = len(rects)
    if n < min_lines:
        return np.zeros(n, dtype=bool)
    boxes = rect_xyxy(rects)
    sht = rects[:, 3]
    linked = np.zeros((n, n), dtype=bool)
    for i in range(n):
        for j in range(i + 1, n):
            small, big = sorted((sht[i], sht[j]))
            overlap = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0])
            shorter = min(boxes[i, 2] - boxes[i, 0], boxes[j, 2] - boxes[j, 0])
            if big <= 1.4 * small and abs(rects[i, 1] - rects[j, 1]) <= 3.0 * big and overlap >= shorter / 3:
                linked[i, j] = linked[j, i] = True
    # Connected groups of linked lines.
    group = np.arange(n)
    for _ in range(n):
        for i, j in zip(*np.nonzero(linked)):
            group[i] = group[j] = min(group[i], group[j])
    block = np.zeros(n, dtype=bool)
    for g in np.unique(group):
        members = group == g
        # Overlapping detections of one line are one row, not a stack.
        cy = np.sort(rects[members, 1])
        rows = 1 + int((np.diff(cy) >= 0.7 * np.median(sht[members])).sum())
        block[members] = rows >= min_lines
    return block


def is_dark(image: np.ndarray, level: float) -> bool:
    """Is the frame's median luminance below ``level``? (Measured on a 64 px thumbnail.)"""
    if level <= 0:
        return False
    if level > 255:
        return True
    height, width = image.shape[:2]
    scale = 64 / max(height, width)
    thumb = cv2.resize(
        image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
    )
    return float(np.median(cv2.cvtColor(thumb, cv2.COLOR_RGB2GRAY))) < level


def smear(image: np.ndarray) -> float:
    """Mean horizontal over mean vertical luminance gradient, on a 640 px thumbnail.

    A frame smeared by horizontal motion (a passing car, a panning camera) loses its vertical
    edges: development photos measure 0.45-1.15 (5th percentile 0.50), the same photos smeared
    by 1 % of their width 0.18-0.62 (median 0.39).
    """
    height, width = image.shape[:2]
    scale = min(1.0, 640 / max(height, width))
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if scale < 1:
        grey = cv2.resize(
            grey, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )
    grey = grey.astype(np.float32)
    along = float(np.abs(np.diff(grey, axis=1)).mean()) if grey.shape[1] > 1 else 0.0
    across = float(np.abs(np.diff(grey, axis=0)).mean()) if grey.shape[0] > 1 else 0.0
    return along / across if across > 0 else 1.0


def sharpened(image: np.ndarray, sigma: float, amount: float = 1.5) -> np.ndarray:
    """Local contrast stretched (``text.equalised``), then edges restored by an unsharp mask of
    ``sigma`` px: the smeared strokes of a motion-blurred plate stand out again."""
    flat = equalised(np.ascontiguousarray(image[..., ::-1]))[..., ::-1]
    soft = cv2.GaussianBlur(flat, (0, 0), sigma)
    return np.ascontiguousarray(cv2.addWeighted(flat, 1 + amount, soft, -amount, 0))
