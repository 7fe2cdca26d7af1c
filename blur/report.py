"""The review report of a scan: a JSON summary, and one self-contained HTML page to look at.

The page is a single file: crops are embedded as ``data:`` URIs, styles are inline, there is no
script, and a Content-Security-Policy forbids loading anything else, so opening it makes no
network request. It shows the file's facts, the metadata that will not be copied, a timeline of
the tracks and a contact sheet (a few crops per track with its frame range and score). A short
list of the riskiest tracks comes first, each with the reason it is there (``blur.risk``: large
weak regions, long bridges, weak-only tracks), and the cards follow the same order.

The crops are of the *unredacted* input unless ``redacted=True``, which shows each crop as the
output will show it (every planned region redacted first): that version is safe to share.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .boxes import clip_to_image
from .errors import UsageError
from .files import atomic_output
from .media import animation, image, video
from .redact import Redactor
from .risk import frame_seconds, rank_plan, short_list
from .settings import Settings
from .tracking import boxes_at

CROPS_PER_TRACK = 4
CROP_HEIGHT = 112      # px on the page; small faces are enlarged to it, large ones shrunk
CONTEXT = 1.6          # a crop shows the box grown by this factor, to see what is around it
MIN_MARGIN = 8         # px of the frame shown on each side of a box, however small the box
SOURCES = ("detected", "weak", "interpolated", "padded", "manual")
_LABEL = {"detected": "detected", "weak": "weak detection", "interpolated": "bridged",
          "padded": "padded", "manual": "drawn by hand"}


def _ranges(frames) -> list[tuple[int, int]]:
    """[3, 4, 5, 9] -> [(3, 5), (9, 9)]."""
    out: list[list[int]] = []
    for f in sorted({int(f) for f in frames}):
        if out and f == out[-1][1] + 1:
            out[-1][1] = f
        else:
            out.append([f, f])
    return [(a, b) for a, b in out]


def summary(plan, settings: Settings | None = None) -> dict:
    """What a scan found, as plain data (no pixels): the JSON report, and what the page shows."""
    from . import __version__

    settings = settings or Settings()
    info = plan.info
    times = frame_seconds(plan)
    ranked = rank_plan(plan)
    risks = {r.track: r for r in ranked}
    tracks = []
    for t in plan.tracks:
        risk = risks[int(t.id)]
        src = [str(s) for s in t.source]
        detected = t.score[np.isin(t.source, ("detected", "weak"))]
        flagged = [int(f) for f, s in zip(t.frames, src) if s in ("weak", "interpolated")]
        runs = []
        for f, s in zip(t.frames, src):
            if runs and runs[-1][2] == s and runs[-1][1] == f - 1:
                runs[-1][1] = int(f)
            else:
                runs.append([int(f), int(f), s])
        best = int(np.argmax(t.score)) if len(t) else None
        tracks.append({
            "id": int(t.id), "kind": t.kind, "keep": bool(t.keep),
            "best": None if best is None else {
                "frame": int(t.frames[best]), "box": [round(float(v), 1) for v in t.xyxy[best]]},
            "first_frame": int(t.frames[0]) if len(t) else None,
            "last_frame": int(t.frames[-1]) if len(t) else None,
            "first_time": round(times[int(t.frames[0])], 3) if times and len(t) else None,
            "last_time": round(times[int(t.frames[-1])], 3) if times and len(t) else None,
            "frames": {s: src.count(s) for s in SOURCES if s in src},
            "max_score": round(float(detected.max()), 3) if len(detected) else None,
            "mean_score": round(float(detected.mean()), 3) if len(detected) else None,
            "flagged_frames": flagged, "segments": runs,
            "risk": {"share": round(risk.share, 4), "weakness": round(risk.weakness, 3),
                     "longest_bridge": None if risk.bridge is None else {
                         "first_frame": risk.bridge[0], "last_frame": risk.bridge[1],
                         "seconds": round(risk.bridge[2], 3)},
                     "reasons": risk.reasons},
        })
    bridged, weak = [], []
    for t in plan.tracks:
        if t.keep:
            continue
        for kind, into in (("interpolated", bridged), ("weak", weak)):
            for a, b in _ranges(t.frames[t.source == kind]):
                into.append({"track": int(t.id), "first_frame": a, "last_frame": b,
                             "first_time": round(times[a], 3) if times else None,
                             "last_time": round(times[b], 3) if times else None})
    redacted = {int(f) for t in plan.tracks if not t.keep for f in t.frames}
    redacted |= set(plan.unanalysed_frames)
    size = info.path.stat().st_size if info.path.exists() else None
    return {
        "blur_version": __version__,
        "file": {"name": info.path.name, "kind": info.kind, "bytes": size,
                 "width": info.width, "height": info.height,
                 "duration": round(info.duration, 3) if info.duration else None,
                 "fps": str(info.fps) if info.fps else None, "frame_count": plan.frame_count,
                 "rotation": info.rotation, "audio_streams": list(info.audio_streams)},
        "metadata_found": list(info.metadata_found),
        "settings": {"kinds": list(settings.kinds), "face_threshold": settings.face_threshold,
                     "mask_scale": settings.mask_scale, "shape": settings.shape,
                     "style": settings.style},
        "frames_with_regions": len(redacted),
        "review_order": [r.track for r in ranked],
        "check_first": {"tracks": [{"track": r.track, "kind": r.kind, "why": r.reasons}
                                   for r in short_list(ranked)],
                        "bridged": bridged, "weak": weak,
                        "unanalysed": [{"first_frame": a, "last_frame": b}
                                       for a, b in _ranges(plan.unanalysed_frames)]},
        "tracks": tracks,
    }


def _pick_rows(t, limit: int) -> list[int]:
    """Row indices of ``t`` to show: flagged rows first, the best detection, the ends, and
    evenly spaced rows after that."""
    n = len(t)
    if n == 0:
        return []
    wanted = [i for i in range(n) if t.source[i] in ("weak", "interpolated")][:1]
    hits = np.nonzero(np.isin(t.source, ("detected", "weak")))[0]
    if len(hits):
        wanted.append(int(hits[np.argmax(t.score[hits])]))
    wanted += [0, n - 1] + [int(i) for i in np.linspace(0, n - 1, limit + 2)[1:-1].round()]
    rows: list[int] = []
    for i in wanted:
        if i not in rows:
            rows.append(i)
    return sorted(rows[:limit])


def _crop_window(box, width: int, height: int) -> tuple[int, int, int, int]:
    """The part of the frame a crop of ``box`` shows: the box clipped to the frame (what is
    redacted of it) with a margin around it (``CONTEXT`` of the box's size, at least
    ``MIN_MARGIN`` px), clipped again. A box that overhangs the frame (a padded track at the
    border) shows its visible part and what is next to it, never the whole frame."""
    x1, y1, x2, y2 = np.asarray(box, np.float64).reshape(4)
    mx = max((CONTEXT - 1) / 2 * max(x2 - x1, 0.0), MIN_MARGIN)
    my = max((CONTEXT - 1) / 2 * max(y2 - y1, 0.0), MIN_MARGIN)
    x1, x2 = min(max(x1, 0.0), width - 1.0), min(max(x2, 0.0), float(width))
    y1, y2 = min(max(y1, 0.0), height - 1.0), min(max(y2, 0.0), float(height))
    x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)  # wholly outside: the nearest pixel at the border
    grown = np.array([[x1 - mx, y1 - my, x2 + mx, y2 + my]])
    # Never empty: the grown box holds the clipped one, which holds at least one pixel.
    return tuple(int(v) for v in clip_to_image(grown, width, height)[0])


def _crop(rgb: np.ndarray, box: np.ndarray, outline: bool) -> str:
    """A JPEG data URI of the region around ``box``, optionally with the box outlined."""
    height, width = rgb.shape[:2]
    x1, y1, x2, y2 = _crop_window(box, width, height)
    im = Image.fromarray(np.ascontiguousarray(rgb[y1:y2, x1:x2]))
    scale = CROP_HEIGHT / im.height
    im = im.resize((max(1, round(im.width * scale)), CROP_HEIGHT),
                   Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)
    if outline:
        bx1, by1, bx2, by2 = ((np.asarray(box, np.float64) - [x1, y1, x1, y1]) * scale).tolist()
        ImageDraw.Draw(im).rectangle([bx1, by1, bx2 - 1, by2 - 1], outline=(255, 40, 40))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def crops(src: Path, plan, settings: Settings | None = None, redacted: bool = False,
          per_track: int = CROPS_PER_TRACK) -> dict[int, list[dict]]:
    """A few crops per track, decoded again from ``src``: {track id: [{frame, source, score,
    uri}]}. With ``redacted`` every planned region is redacted before cropping, so a crop shows
    what the output will show."""
    settings = settings or Settings()
    wanted: dict[int, list[tuple[int, object, int]]] = {}
    for t in plan.tracks:
        for row in _pick_rows(t, per_track):
            wanted.setdefault(int(t.frames[row]), []).append((int(t.id), t, row))
    out: dict[int, list[dict]] = {int(t.id): [] for t in plan.tracks}
    if not wanted:
        return out
    per_frame = boxes_at(plan.tracks, plan.frame_count) if redacted else None
    for index, rgb in _frames(Path(src), plan, set(wanted)):
        if redacted:
            rgb = _redact_frame(rgb, index, plan, per_frame, settings)
        for tid, t, row in wanted[index]:
            out[tid].append({"frame": index, "source": str(t.source[row]),
                             "score": round(float(t.score[row]), 3),
                             "uri": _crop(rgb, t.xyxy[row], outline=not redacted)})
    for items in out.values():
        items.sort(key=lambda c: c["frame"])
    return out


def _redact_frame(rgb: np.ndarray, index: int, plan, per_frame, settings: Settings) -> np.ndarray:
    """A copy of one frame with every planned region redacted, as the output will show it."""
    rgb = rgb.copy()
    redactor = Redactor(settings.style, settings.mask_scale, settings.shape)
    if index in set(plan.unanalysed_frames):
        redactor.apply_everywhere(rgb)
        return rgb
    boxes = per_frame[index]
    redactor.apply(rgb, boxes.xyxy, boxes.kind)
    return rgb


def overview(src: Path, plan, settings: Settings | None = None, redacted: bool = False,
             max_width: int = 900) -> str | None:
    """A photo with every track's box outlined and numbered (None for a video: a track's boxes
    are in different frames)."""
    if plan.info.kind != "image":
        return None
    settings = settings or Settings()
    rgb = image.read(Path(src)).rgb
    if redacted:
        rgb = _redact_frame(rgb, 0, plan, boxes_at(plan.tracks, 1), settings)
    im = Image.fromarray(rgb)
    scale = min(1.0, max_width / im.width)
    if scale < 1:
        im = im.resize((round(im.width * scale), round(im.height * scale)),
                       Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(im)
    for t in plan.tracks:
        colour = ((40, 170, 60) if t.keep else (130, 70, 200) if t.kind == "manual"
                  else (255, 40, 40))
        for box in t.xyxy[t.frames == 0]:
            x1, y1, x2, y2 = (float(v) * scale for v in box)
            draw.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=colour, width=2)
            draw.text((x1 + 2, max(0.0, y1 - 12)), str(t.id), fill=colour)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _frames(src: Path, plan, needed: set[int]):
    """(index, upright RGB) of the frames in ``needed``, decoded once, stopping after the last."""
    if plan.info.kind == "image":
        yield 0, image.read(src).rgb
        return
    last = max(needed)
    # FFmpeg cannot read animated WebP: an animation is read by its own family.
    source = animation.frames(src) if plan.info.kind == "animation" else video.frames(src)
    for frame in source:
        if frame.index in needed:
            yield frame.index, frame.image
        if frame.index >= last:
            break


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#f4f4f6}
main{max-width:1100px;margin:0 auto;padding:16px 24px 40px}
h1{font-size:22px;margin:8px 0}h2{font-size:17px;margin:26px 0 8px}
.banner{padding:10px 14px;border-radius:6px;margin:10px 0;font-weight:600}
.danger{background:#ffe3e0;border:1px solid #e0463c}.safe{background:#e3f6e6;border:1px solid #3a9d4c}
table.facts td{padding:2px 14px 2px 0;vertical-align:top}table.facts td:first-child{color:#666}
ul.first li{margin:2px 0}
.tl-row{display:flex;align-items:center;margin:3px 0}.tl-label{width:120px;font-size:12px}
.tl-bar{position:relative;flex:1;height:14px;background:#e2e2e8;border-radius:3px}
.seg{position:absolute;top:0;bottom:0;min-width:2px}
.s-detected{background:#2f6fd6}.s-weak{background:#e59a1d}.s-interpolated{background:#d6453a}
.s-padded{background:#9db5de}.s-manual{background:#7a4cc2}.kept .seg{opacity:.35}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-2px}
.track-card{background:#fff;border:1px solid #d9d9df;border-radius:8px;padding:10px 12px;
margin:10px 0}.track-card.flagged{border-color:#e59a1d;border-width:2px}
.track-card h3{font-size:15px;margin:0 0 6px}.meta{color:#555;font-size:13px}
.why{font-size:13px;color:#8a4b00;margin-top:2px}
.crops{display:flex;flex-wrap:wrap;gap:8px;margin-top:8px}
figure{margin:0;font-size:11px;color:#555}figure img{display:block;height:112px;border-radius:4px}
.tag{display:inline-block;padding:0 6px;border-radius:8px;font-size:11px;margin-left:6px;
background:#eee}.tag.keep{background:#d9f2dc}.tag.flag{background:#fde6c4}
code{background:#ececf1;padding:1px 4px;border-radius:3px}
.tl-axis{flex:1;display:flex;justify-content:space-between;font-size:11px;color:#666}
img.overview{max-width:100%;border-radius:4px}
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _when(first, last, t0, t1) -> str:
    text = f"frame {first}" if first == last else f"frames {first}–{last}"
    if t0 is not None:
        text += f" ({t0:.2f} s)" if first == last else f" ({t0:.2f}–{t1:.2f} s)"
    return text


def _figure(track_id: int, crop: dict) -> str:
    caption = f'frame {crop["frame"]} · {_LABEL.get(crop["source"], crop["source"])}'
    if crop["source"] in ("detected", "weak"):
        caption += f' · score {crop["score"]}'
    return (f'<figure><img alt="track {track_id} frame {crop["frame"]}" src="{crop["uri"]}">'
            f'<figcaption>{_e(caption)}</figcaption></figure>')


def _check_first(data: dict) -> str:
    """The short list of the riskiest tracks, each with why it is there; then, in one line, the
    other tracks that had bridged or weak frames, in the same order as the cards."""
    first = data["check_first"]
    by_id = {t["id"]: t for t in data["tracks"]}
    items = [f'<li>{_e(_when(c["first_frame"], c["last_frame"], None, None))} could not be '
             f'analysed: the whole frame is redacted</li>' for c in first["unanalysed"]]
    for c in first["tracks"]:
        t = by_id[c["track"]]
        when = _when(t["first_frame"], t["last_frame"], t["first_time"], t["last_time"])
        items.append(f'<li><a href="#track-{t["id"]}">Track {t["id"]}</a> ({_e(t["kind"])}, '
                     f'{_e(when)}): {_e("; ".join(c["why"]))}</li>')
    listed = {c["track"] for c in first["tracks"]}
    rest = [tid for tid in data["review_order"]
            if tid not in listed and by_id[tid]["flagged_frames"] and not by_id[tid]["keep"]]
    if not items and not rest:
        return "<p>Nothing was bridged or weak.</p>"
    out = []
    if items:
        out.append('<p>Riskiest first. A large region at a weak score is rarely a face, and its '
                   'mask hides part of the picture: delete the track if it is not one. A track '
                   'not detected for a while has its box interpolated: check that the box stays '
                   'on the face (widen it if not). Weak only: the detector was unsure.</p>'
                   f'<ul class="first">{"".join(items)}</ul>')
    if rest:
        links = ", ".join(f'<a href="#track-{tid}">#{tid}</a>' for tid in rest)
        out.append(f'<p class="meta">Then {len(rest)} more track(s) with bridged or weak frames, '
                   f'riskiest first (the cards below follow this order): {links}.</p>')
    return "".join(out)


def _timeline(data: dict) -> str:
    """One bar per track over the whole video, coloured by what each frame's box comes from."""
    f = data["file"]
    total = max(1, f["frame_count"])
    end = f'{f["duration"]} s' if f["duration"] else f"frame {total - 1}"
    out = ['<h2 id="timeline">Timeline</h2><div class="legend">'
           + "".join(f'<span><i class="s-{s}"></i>{_LABEL[s]}</span>' for s in SOURCES)
           + '</div><div class="tl-row"><div class="tl-label"></div><div class="tl-axis">'
           f'<span>0 s</span><span>{_e(end)}</span></div></div>']
    for t in data["tracks"]:
        segs = t["segments"] if len(t["segments"]) <= 400 else \
            [[t["first_frame"], t["last_frame"], "detected"]]
        bars = "".join(f'<div class="seg s-{_e(s)}" style="left:{100 * a / total:.3f}%;'
                       f'width:{100 * (b - a + 1) / total:.3f}%"></div>' for a, b, s in segs)
        kept = " kept" if t["keep"] else ""
        out.append(f'<div class="tl-row{kept}"><div class="tl-label"><a href="#track-{t["id"]}">'
                   f'#{t["id"]}</a> {_e(t["kind"])}{" (kept)" if t["keep"] else ""}</div>'
                   f'<div class="tl-bar">{bars}</div></div>')
    return "".join(out)


def html_page(data: dict, crop_map: dict[int, list[dict]], redacted: bool = False,
              regions_name: str | None = None, overview_uri: str | None = None) -> str:
    """The review page for ``summary`` data and ``crops``: one self-contained HTML document."""
    f = data["file"]
    out = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
           # Nothing but the page itself and its embedded images may load: no network request.
           '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
           'img-src data:; style-src \'unsafe-inline\'">',
           '<meta name="referrer" content="no-referrer">',
           f'<title>blur review: {_e(f["name"])}</title><style>{_CSS}</style></head><body><main>',
           f'<h1>blur review: {_e(f["name"])}</h1>']
    if redacted:
        out.append('<p class="banner safe">Crops are shown redacted, as in the output. '
                   'This page is meant to be shareable; still check it before you send it.</p>')
    else:
        out.append('<p class="banner danger">This page shows the faces and plates '
                   'UNREDACTED. Keep it private, never publish it or store it with the output; '
                   'delete it when the review is done.</p>')
    out.append('<h2 id="check-first">Check these frames first</h2>')
    out.append(_check_first(data))

    rows = [("file", f["name"]), ("kind", f["kind"]),
            ("size", f'{f["bytes"]:,} bytes' if f["bytes"] is not None else "?"),
            ("picture", f'{f["width"]}×{f["height"]}' + (f', rotated {f["rotation"]}°'
                                                          if f["rotation"] else ""))]
    if f["kind"] == "video":
        rows += [("duration", f'{f["duration"]} s' if f["duration"] else "?"),
                 ("frame rate", f["fps"]), ("frames", f["frame_count"]),
                 ("audio streams", ", ".join(f["audio_streams"]) or "none")]
    found = data["metadata_found"]
    rows += [("metadata found", ", ".join(found) if found else "none"),
             ("metadata in the output", "none: blur copies no metadata and re-reads its output "
              "to prove it" if found else "none"),
             ("tracks", len(data["tracks"])),
             ("frames with regions", data["frames_with_regions"])]
    out.append('<h2 id="facts">The file</h2><table class="facts">'
               + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
               + "</table>")

    if f["kind"] == "image":
        if overview_uri:
            out.append('<h2 id="overview">Overview</h2><p class="meta">Red: redacted; green: '
                       'kept visible; purple: drawn by hand. Numbers are track ids.</p>'
                       f'<img class="overview" alt="overview" src="{overview_uri}">')
    else:
        out.append(_timeline(data))

    out.append('<h2 id="tracks">Tracks</h2>')
    if not data["tracks"]:
        out.append("<p>Nothing was found to redact.</p>")
    position = {tid: i for i, tid in enumerate(data["review_order"])}
    first = {c["track"] for c in data["check_first"]["tracks"]}
    for t in sorted(data["tracks"], key=lambda t: position[t["id"]]):
        classes = "track-card" + (" flagged" if t["id"] in first else "")
        tags = ""
        if t["keep"]:
            tags += '<span class="tag keep">kept visible</span>'
        if t["id"] in first:
            tags += '<span class="tag flag">check first</span>'
        elif t["flagged_frames"]:
            tags += f'<span class="tag">{len(t["flagged_frames"])} frame(s) to check</span>'
        counts = ", ".join(f"{n} {_LABEL[s]}" for s, n in t["frames"].items())
        score = (f'score max {t["max_score"]}, mean {t["mean_score"]}'
                 if t["max_score"] is not None else "no detector score")
        if t["best"]:
            score += f' · box {t["best"]["box"]} at frame {t["best"]["frame"]}'
        figs = "".join(_figure(t["id"], c) for c in crop_map.get(t["id"], []))
        why = (f'<div class="why">{_e("; ".join(t["risk"]["reasons"]))}</div>'
               if t["risk"]["reasons"] else "")
        out.append(
            f'<article class="{classes}" id="track-{t["id"]}" data-track="{t["id"]}" '
            f'data-kind="{_e(t["kind"])}"><h3>Track {t["id"]} · {_e(t["kind"])}{tags}</h3>'
            f'<div class="meta">{_e(_when(t["first_frame"], t["last_frame"], t["first_time"], t["last_time"]))}'
            f' · {_e(counts)} · {_e(score)}</div>{why}<div class="crops">{figs}</div></article>')

    name = _e(regions_name or "the regions file")
    out.append(
        f'<h2 id="next">Correct and render</h2><p>Edit {name}: delete a track to leave it '
        f'unredacted (a false positive), set <code>"keep": true</code> to keep a consenting '
        f'person visible, widen a box, or add a region by hand, e.g. <code>{{"id": 100, "kind": '
        f'"manual", "start": 1.5, "end": 4.0, "box": [x1, y1, x2, y2]}}</code>. Then run '
        f'<code>blur render {_e(f["name"])} --regions {name} -o OUTPUT</code> and '
        f'<code>blur check OUTPUT</code>.</p></main></body></html>')
    return "\n".join(out)


def write(path: Path, src: Path, plan, settings: Settings | None = None, redacted: bool = False,
          regions_path: Path | None = None) -> Path:
    """Write the report of ``plan`` to ``path``: HTML (``.html``/``.htm``) or JSON (``.json``).

    Raises:
        UsageError: ``path`` has another extension.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".html", ".htm", ".json"):
        raise UsageError(f"a report must end in .html or .json, not {path.name}")
    data = summary(plan, settings)
    if suffix == ".json":
        text = json.dumps(data, indent=1) + "\n"
    else:
        text = html_page(data, crops(src, plan, settings, redacted), redacted,
                         Path(regions_path).name if regions_path else None,
                         overview(src, plan, settings, redacted))
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
