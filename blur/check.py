"""``blur check``: is a photo or video safe to publish? Works on any file, not only blur's.

Two questions are asked of the file as it is:

1. **Faces and plates still detectable.** The file is scanned again with blur's own face
   threshold (``Settings.check_face_threshold``: a check more sensitive than blur would fail
   every output blur makes on faces it chose not to redact), on every frame, unpadded, plates
   looked for on every frame. Every detection is a
   finding.
2. **Identifying metadata left.** The same reader that proves blur's own outputs clean lists what
   remains: EXIF (camera, time, GPS), XMP, IPTC, comments, embedded thumbnails and previews,
   data after the end of the image; video container and stream tags, chapters, subtitle, data
   and attachment streams, extra video streams.

A detector fires on head-shaped blobs too, and a redaction is one: re-detected fills score
up to 0.70 (pixelation), as much as many real faces. What tells them apart is detail: an
identifiable face has eyes, brows, a mouth; a redaction has none. ``blur.detail.measure`` takes
the central part of a detection's box at the scale of a face's features (12 x 12 cells, at any
face size) and keeps, over the box's four halves, the largest median *fine* detail (the residue
after a one-cell blur: a ramp of a few average colours leaves none) and the smallest share of
*flat* pixel pairs at the file's own resolution (a mosaic or flat fill is flat almost
everywhere). Halves, so that a face with half of it covered keeps the detail of the other half.

Each detection is then judged, most specific first:

1. **On a redacted region** (given the regions file; ``ON_REGION_SHARE`` of its box on the region
   grown by ``ON_REGION_MARGIN``): it is the redaction seen again ("redacted") when it scores
   below ``ON_REGION_MAX_SCORE``, or when the pixels the region covers under it hold no face
   detail (``blank_fill``: fine < ``FILL_FINE`` or flat >= ``FILL_FLAT``), whatever its score,
   or when its box is too small to measure (``detail.judgeable``) and it scores below
   ``CLEAR_FACE_SCORE``. Plates too (a box-shaped fill reads as a plate), and a plate whose
   box lies wholly under the fill (``check_seen.COVERED``) is the fill. Not when the scan saw
   a face there whose central part the regions do not wholly cover (a track edited smaller).
2. **Anywhere**: a face detection scoring below ``CLEAR_FACE_SCORE`` whose box holds no face
   detail (``blank``: fine < ``BLANK_FINE`` or flat >= ``BLANK_FLAT``) is listed as "blank".
3. **What the scan saw** (given a regions file that carries the scan's record, ``blur.seen``;
   see ``blur.check_seen``): a face detection scoring below ``ON_REGION_MAX_SCORE`` off the
   redactions is "weak at scan" when the scan saw a face candidate there below its threshold
   (blur did not redact it, by choice: the fills and re-encoding move scores by up to 0.3
   around them), and "beside a redaction" when the scan saw nothing there from the record's
   floor up and a redacted region lies within ``check_seen.BESIDE_REACH`` (the fill changed
   what the detector sees: hair above a black ellipse reads as a head), or when the face the
   scan saw there lies under the regions and what covers it is a fill. A plate off the
   redactions is "beside a redaction" likewise. A face the scan saw there at its threshold
   that the regions do not cover, or a plate it saw there, still counts: a track deleted from
   the regions file, or edited smaller.
4. On a region kept visible on purpose: "kept". Everything else fails the check.
5. Given the record, a face the scan saw at its threshold whose central part the regions cover
   only in part (``check_seen.partly_covered``) is a visible finding even when the re-scan
   does not find it: half a face beside a black box is no face to the detector.

Without the regions, blur's own outputs fail, and no measurement of the pixels tried so far
changes that without passing faces left half visible (``benchmarks/check_without_regions.py``
has the numbers): a half-covered face is a weak detection partly on a fill, like the edge of a
re-detected fill; even knowing the filled pixels exactly, the best rule passed 70 of 96 outputs
and let 27 of 64 half-covered faces pass; a blur fill and a small defocused face are made alike.
So blur's outputs carry the regions and the scan's record themselves (``blur.record``, in JPEG,
PNG, MP4 and MKV outputs; ``blur.media.embedded``): given no regions file, the check reads that
record and judges the file exactly as it would given the regions file (a regions file given
wins). A record that does not fit the file (another frame count or size; a photo's bytes changed
since blur wrote it: edited, or re-saved by a program that keeps comments) is not used, and
the check says so; a file re-encoded or re-saved elsewhere has lost it, and the check says
that it carries none. The record explains detections; it never hides a face: the pixels under
its regions are still measured, a face the scan saw and the regions do not cover still fails.

Measured (``python benchmarks/check.py``: the samples, 40 faces-dev photos alternating dev and
held-out, 6 Megamind frames; blur's three styles in both shapes plus three stand-in fills that
are no style of blur -- flat grey, a heavy Gaussian blur, luminance noise -- and faces covered
by half; every detection of the check's detector, JPEG quality 95 for stills):

* unredacted faces (labelled boxes, or scoring >= 0.3): none judged blank, dev or held-out; the
  lowest fine detail of one is 1.6 (a defocused spectator in messi5.jpg; street faces of 12 px:
  2.7), so ``BLANK_FINE`` = 1.0 leaves a margin of 1.6x. Their flat share reaches 0.64 (a
  computer-animated face in Megamind), under ``BLANK_FLAT`` = 0.8; clear faces of any
  smoothness are kept by ``CLEAR_FACE_SCORE`` (no re-detected fill scored above 0.70).
* faces covered by half (left half black, top or bottom half in blur's fill): 16 of 731
  detections judged blank (they lie on the covered half), and no picture with a half-covered
  face that the detector finds is judged clean (the 6 of 141 "clean" ones are pictures where the
  detector found nothing at all).
* re-detected fills, without a regions file: 447 of 1,224 judged blank (dev), 391 of 987
  (held-out): flat grey 229/268, black ellipse 275/374, heavy blur 143/220, blur's default fill
  76/311, pixelation 35/518, the luminance-noise stand-in 0/319 (its fine noise is detail to
  this measure). The rest are boxes that take in the hair, neck or background beside the
  fill (detail that is really there), pixelation's block edges, and fine noise.
* other detections (torsos, background): 95 of 2,985 judged blank.

So the rule never passes a face that the check finds, and it removes part of the noise, but it
does not make blur's outputs pass without a regions file: on 2,211 re-detected fills and 258
faces, no threshold on these measures passes most fills while failing every face (an
exploration that also tried the face model's second-look score and a fitted linear combination
of all of them did no better); the smallest faces (10-25 px, defocused crowds) have as little
detail as a fill's edge. Given the regions file, a
strong re-detection on a fill passes when the fill under it is blank, where the old score cap
failed it. Boxes smaller than about 18 px cannot be measured either way: on
``samples/street.mp4`` (768x576, faces of 10-14 px, H.264) blur's fill over a head measures a
fine detail of up to 3.4 after compression (the pixels under the same masks in the original:
from 1.1), and the detector scores two such fills 0.51 and 0.55; on a region they are judged by
score. The weak detections beside the fills there (torsos, hands, bollards, 0.10-0.28) are
what the scan's record explains.

Limits: the check trusts the regions file (or the carried record) for faint detections, so a
faint face on a region that was in fact never redacted (the regions file given with the wrong
file, or a render that did not follow it: of 8 faces-dev faces rendered half covered under
regions that say whole, 1 or 2 fail the check, as the fill's noise varies) passes, and so does
a face under 18 px scoring below ``CLEAR_FACE_SCORE`` there; a weak face the scan saw below its
threshold is blur's choice, not the check's; and the check sees only what its detectors see, at
its own threshold: a clean result is evidence, not proof. A photo's binding is a plain hash,
which guards against accidents, not forgery: someone who writes a record into a file of their
own choosing (or a video, whose record is bound only to its frame count and size) gets the same
trust as a regions file given with the wrong file, and no more.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import check_seen, detail, pipeline
from .boxes import clip_to_image, iou_matrix, scale_about_centre
from .errors import RegionsError
from .media import embedded, frames_at, leftover
from .redact import region_masks
from .seen import Seen
from .settings import Settings
from .tracking import boxes_at
from .types import HITS, CheckResult, Detections, Finding, Track

# A detection counts as a redacted region seen again when this share of its box lies on the
# region grown by ON_REGION_MARGIN: the detector's box for a blob takes in the neck and shoulders
# around it. Measured on blur's outputs (astronaut, messi5, a 240x180 face; 4 renders each):
# re-detected blobs had >= 0.69 of their box there, unrelated detections <= 0.5.
ON_REGION_MARGIN = 1.25
ON_REGION_SHARE = 0.6
# Face detail (see ``blur.detail``) below which a detection is no face: thresholds measured,
# see the module docstring.
BLANK_FINE = 1.0
BLANK_FLAT = 0.8
# The same, judged only on the pixels a regions file says were redacted under a detection.
FILL_FINE = 1.0
FILL_FLAT = 0.65
# A detection scoring this much is never judged blank off a redacted region: no re-detected
# fill scored above 0.70 (see the module docstring), and a smooth, clear face (animation, a
# soft-focus portrait) must still fail.
CLEAR_FACE_SCORE = 0.75
# A detection on a region's margin (the neck and shoulders the detector's box takes in around
# a blob) but hardly on its fill cannot be judged on the fill: below this score it is taken as
# the redaction seen again. Re-detected blobs scored at most 0.44 on blur's own renders of the
# samples, an unredacted face there 0.84 or more.
ON_REGION_MAX_SCORE = 0.5


def check_settings(settings: Settings | None = None) -> Settings:
    """The high-sensitivity settings of a check: see ``Settings.check_face_threshold``."""
    settings = settings or Settings()
    threshold = min(settings.check_face_threshold, settings.face_threshold)
    overrides = {
        "face_threshold": threshold,
        "text_every_n_frames": 1,
        "fail_frame": "fail",
        "pad_seconds": 0.0,
    }
    if hasattr(settings, "face_candidate_threshold"):
        overrides["face_candidate_threshold"] = min(settings.face_candidate_threshold, threshold)
    return settings.merged(**overrides)


def _regions_by_frame(path: Path, data: dict, frame_count: int):
    """Per frame, the boxes a regions file redacts and those it keeps."""
    given = pipeline.load_plan(path, data)  # checks the kind and size of the media
    if given.frame_count != frame_count:
        raise RegionsError(
            f"the regions file is for {given.frame_count} frame(s), this file has {frame_count}", path
        )
    kept = [Track(t.id, t.kind, t.frames, t.xyxy, t.score, t.source) for t in given.tracks if t.keep]
    return (boxes_at(given.tracks, frame_count), boxes_at(kept, frame_count), set(given.unanalysed_frames))


def _share_on(
    box: np.ndarray, regions_xyxy: np.ndarray, kinds: np.ndarray, mask_scale: float, width: int, height: int
) -> float:
    """Share of ``box``'s area covered by the regions as rendered, grown by the margin."""
    if not len(regions_xyxy):
        return 0.0
    manual = (kinds == "manual")[:, None]
    grown = np.where(
        manual,
        scale_about_centre(regions_xyxy, ON_REGION_MARGIN),
        scale_about_centre(regions_xyxy, mask_scale * ON_REGION_MARGIN),
    )
    grown = clip_to_image(grown, width, height)
    x1, y1, x2, y2 = (int(np.floor(v)) for v in box)
    x1, y1 = max(x1, 0), max(y1, 0)
    x2, y2 = min(max(x2, x1 + 1), width), min(max(y2, y1 + 1), height)
    if x2 <= x1 or y2 <= y1:
        return 0.0
    covered = np.zeros((y2 - y1, x2 - x1), dtype=bool)
    for rx1, ry1, rx2, ry2 in grown:
        covered[max(ry1 - y1, 0) : max(ry2 - y1, 0), max(rx1 - x1, 0) : max(rx2 - x1, 0)] = True
    return float(covered.mean())


def _region_mask(regions: Detections, mask_scale: float, width: int, height: int) -> np.ndarray:
    """The pixels the regions were rendered over. Ellipses are assumed: an ellipse lies inside
    the box of the same region, so a file rendered with boxes is judged on pixels it did fill."""
    mask = np.zeros((height, width), dtype=bool)
    manual = regions.kind == "manual"
    for rows, scale, shape in ((~manual, mask_scale, "ellipse"), (manual, 1.0, "box")):
        for x1, y1, x2, y2, m in region_masks(regions.xyxy[rows], width, height, scale, shape):
            mask[y1:y2, x1:x2] |= m
    return mask


def blank(found: detail.Detail) -> bool:
    """No face detail: every half of the box is smooth, or all of it is flat (a fill or mosaic)."""
    return 0 <= found.fine < BLANK_FINE or found.flat >= BLANK_FLAT


def blank_fill(found: detail.Detail) -> bool:
    """The pixels a region covers under a detection hold no face detail: it was redacted."""
    return 0 <= found.fine < FILL_FINE or found.flat >= FILL_FLAT


def _partly_covered(
    record: Seen, redacted, kept, unanalysed: set[int], findings: list[Finding], size: tuple
) -> list[Finding]:
    """Faces the scan saw at its threshold that the regions cover only in part (a track cut
    to a part of the face), as visible findings, one per face followed over frames; the
    re-scan may not find them (half a face beside a black box). Not where the re-scan already
    has a visible finding, nor on a region kept visible."""
    shown: dict[int, list] = {}
    for f in findings:
        if f.status == "visible" and f.kind == "face":
            shown.setdefault(f.frame, []).append(f.box)
    groups: list[Finding] = []
    last: list[np.ndarray] = []
    for frame in sorted({f for f, kind in record.per_frame if kind == "face"}):
        if frame >= len(redacted) or frame in unanalysed or not len(redacted[frame]):
            continue
        mask = _region_mask(redacted[frame], *size)
        for box, score in check_seen.partly_covered(record, frame, mask, size[2]):
            if (
                kept is not None
                and _share_on(box, kept[frame].xyxy, kept[frame].kind, *size) >= ON_REGION_SHARE
            ):
                continue
            if (
                frame in shown
                and iou_matrix(box.reshape(1, 4), np.asarray(shown[frame], np.float32).reshape(-1, 4)).max()
                >= check_seen.SAME_PLACE
            ):
                continue
            # Followed over frames: the same face within two frames, overlapping its last box.
            near = [
                k
                for k, g in enumerate(groups)
                if frame - g.frames[-1] <= 2
                and iou_matrix(box.reshape(1, 4), last[k].reshape(1, 4))[0, 0] >= check_seen.SAME_PLACE
            ]
            rounded = [round(float(v), 1) for v in box]
            if near:
                g = groups[near[0]]
                g.frames.append(frame)
                last[near[0]] = box
                if score > g.score:
                    g.score, g.frame, g.box = round(score, 3), frame, rounded
            else:
                groups.append(
                    Finding(kind="face", frames=[frame], score=round(score, 3), frame=frame, box=rounded)
                )
                last.append(box)
    return groups


def check(
    path: Path, settings: Settings | None = None, regions_data: dict | None = None, on_progress=None
) -> CheckResult:
    """Re-scan ``path`` sensitively and list what identifies anyone.

    Args:
        path: any photo or video.
        settings: the base settings; the check lowers the face threshold (see
            ``check_settings``). ``mask_scale`` should be the one the file was rendered with.
        regions_data: the regions file the output was rendered from, if it was; detections on
            its redacted regions whose pixels there hold no face detail, and detections on its
            kept regions, then do not fail the check. None: the record the file carries
            (``blur.record``), if it carries one that fits it.
        on_progress: progress callback, as for ``pipeline.scan``.

    Raises:
        BlurError: the file cannot be read (``UnsupportedMediaError``, ``MediaError``) or a
            detector failed.
    """
    path = Path(path)
    base = settings or Settings()
    left = leftover(path)
    source = "regions file"
    if regions_data is None:
        regions_data, source, scale = embedded.regions_in(path)
        if scale is not None:
            base = base.merged(mask_scale=scale)
    plan = pipeline.scan(path, check_settings(base), on_progress)
    info = plan.info
    redacted = kept = record = None
    unanalysed: set[int] = set()
    if regions_data is not None:
        try:
            redacted, kept, unanalysed = _regions_by_frame(path, regions_data, plan.frame_count)
            record = Seen.from_dict(regions_data, plan.frame_count)
        except RegionsError as exc:
            if source == "regions file":
                raise
            # A record that does not fit the file it rides in: the file was changed after blur.
            redacted = kept = record = None
            unanalysed = set()
            source = f"refused: it does not fit this file ({exc.message})"
    size = (base.mask_scale, info.width, info.height)

    # Every face detection's detail, measured on the file's own pixels; plates too when there
    # are redacted regions to judge them on.
    hits = [np.nonzero(np.isin(t.source, HITS))[0] for t in plan.tracks]
    wanted: dict[int, list[tuple[int, int]]] = {}
    for k, t in enumerate(plan.tracks):
        if t.kind == "face" or (redacted is not None and t.kind == "plate"):
            for i in hits[k]:
                wanted.setdefault(int(t.frames[i]), []).append((k, int(i)))
    status: dict[tuple[int, int], str] = {}
    for f, rgb in frames_at(info, set(wanted)):
        luma = detail.grey(rgb)
        mask = None
        if redacted is not None and len(redacted[f]):
            mask = _region_mask(redacted[f], *size)
        for k, i in wanted[f]:
            t = plan.tracks[k]
            box = t.xyxy[i]
            on_region = redacted is not None and (
                f in unanalysed
                or _share_on(box, redacted[f].xyxy, redacted[f].kind, *size) >= ON_REGION_SHARE
            )
            # On a redacted region: a weak detection is the redaction seen again; a strong one
            # too when the pixels the region covers under it hold no face detail (a fill or
            # mosaic can score as high as 0.7), else it is a face the render left visible.
            # A "plate" there is a box-shaped fill when the pixels under it hold no detail, or
            # when all of it lies under the fill (a mosaic's block edges are detail, not text).
            # A face the scan saw there that the regions do not wholly cover (a track edited
            # smaller) is never the redaction seen again.
            weak = t.kind == "face" and t.score[i] < ON_REGION_MAX_SCORE
            # Too small to measure (see ``detail.judgeable``): judged by its score alone.
            unsure = t.kind == "face" and t.score[i] < CLEAR_FACE_SCORE and not detail.judgeable(box)
            if on_region and f in unanalysed:
                status[k, i] = "redacted"
                continue
            if on_region and not (
                record is not None and t.kind == "face" and check_seen.uncovered(record, f, box, mask)
            ):
                under = check_seen.under(box, mask)
                if (
                    weak
                    or unsure
                    or (t.kind != "face" and under >= check_seen.COVERED)
                    or blank_fill(detail.measure(luma, box, mask))
                ):
                    status[k, i] = "redacted"
                    continue
            if t.kind == "face" and t.score[i] < CLEAR_FACE_SCORE and blank(detail.measure(luma, box)):
                status[k, i] = "blank"
            elif record is not None and (weak or t.kind == "plate"):
                seen_as = check_seen.as_scanned(
                    record, f, box, t.kind, redacted[f], luma, mask, size, blank_fill
                )
                if seen_as:
                    status[k, i] = seen_as

    def _status(k: int, i: int, box: np.ndarray, f: int) -> str:
        if (k, i) in status:
            return status[k, i]
        if kept is not None and (_share_on(box, kept[f].xyxy, kept[f].kind, *size) >= ON_REGION_SHARE):
            return "kept"  # a person chose to show it, however clear it is
        return "visible"

    findings = []
    for k, t in enumerate(plan.tracks):
        rows_of = hits[k]
        if not len(rows_of):
            continue
        status_rows: dict[str, list[int]] = {}
        for i in rows_of:
            status_rows.setdefault(_status(k, int(i), t.xyxy[i], int(t.frames[i])), []).append(int(i))
        for state, rows in status_rows.items():
            best = rows[int(np.argmax(t.score[rows]))]
            findings.append(
                Finding(
                    kind=t.kind,
                    frames=[int(t.frames[i]) for i in rows],
                    score=round(float(t.score[best]), 3),
                    frame=int(t.frames[best]),
                    box=[round(float(v), 1) for v in t.xyxy[best]],
                    status=state,
                )
            )
    if record is not None:
        findings += _partly_covered(record, redacted, kept, unanalysed, findings, size)
    findings.sort(key=lambda f: (f.status != "visible", f.frames[0], -f.score))
    return CheckResult(
        path=path,
        kind=info.kind,
        frame_count=plan.frame_count,
        metadata=left,
        findings=findings,
        regions=source,
    )
