"""The review page: one self-contained HTML document built from a report's summary data and
crops (see ``blur.report``)."""

from __future__ import annotations

import html

from ..types import SOURCES

LABEL = {
    "detected": "detected",
    "weak": "weak detection",
    "interpolated": "bridged",
    "padded": "padded",
    "manual": "drawn by hand",
}

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
    caption = f"frame {crop['frame']} · {LABEL.get(crop['source'], crop['source'])}"
    if crop["source"] in ("detected", "weak"):
        caption += f" · score {crop['score']}"
    return (
        f'<figure><img alt="track {track_id} frame {crop["frame"]}" src="{crop["uri"]}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _check_first(data: dict) -> str:
    """The short list of the riskiest tracks, each with why it is there; then, in one line, the
    other tracks that had bridged or weak frames, in the same order as the cards."""
    first = data["check_first"]
    by_id = {t["id"]: t for t in data["tracks"]}
    items = [
        f"<li>{_e(_when(c['first_frame'], c['last_frame'], None, None))} could not be "
        f"analysed: the whole frame is redacted</li>"
        for c in first["unanalysed"]
    ]
    for c in first["tracks"]:
        t = by_id[c["track"]]
        when = _when(t["first_frame"], t["last_frame"], t["first_time"], t["last_time"])
        items.append(
            f'<li><a href="#track-{t["id"]}">Track {t["id"]}</a> ({_e(t["kind"])}, '
            f"{_e(when)}): {_e('; '.join(c['why']))}</li>"
        )
    listed = {c["track"] for c in first["tracks"]}
    rest = [
        tid
        for tid in data["review_order"]
        if tid not in listed and by_id[tid]["flagged_frames"] and not by_id[tid]["keep"]
    ]
    if not items and not rest:
        return "<p>Nothing was bridged or weak.</p>"
    out = []
    if items:
        out.append(
            "<p>Riskiest first. A large region at a weak score is rarely a face, and its "
            "mask hides part of the picture: delete the track if it is not one. A track "
            "not detected for a while has its box interpolated: check that the box stays "
            "on the face (widen it if not). Weak only: the detector was unsure.</p>"
            f'<ul class="first">{"".join(items)}</ul>'
        )
    if rest:
        links = ", ".join(f'<a href="#track-{tid}">#{tid}</a>' for tid in rest)
        out.append(
            f'<p class="meta">Then {len(rest)} more track(s) with bridged or weak frames, '
            f"riskiest first (the cards below follow this order): {links}.</p>"
        )
    return "".join(out)


def _timeline(data: dict) -> str:
    """One bar per track over the whole video, coloured by what each frame's box comes from."""
    f = data["file"]
    total = max(1, f["frame_count"])
    end = f"{f['duration']} s" if f["duration"] else f"frame {total - 1}"
    out = [
        '<h2 id="timeline">Timeline</h2><div class="legend">'
        + "".join(f'<span><i class="s-{s}"></i>{LABEL[s]}</span>' for s in SOURCES)
        + '</div><div class="tl-row"><div class="tl-label"></div><div class="tl-axis">'
        f"<span>0 s</span><span>{_e(end)}</span></div></div>"
    ]
    for t in data["tracks"]:
        segs = (
            t["segments"] if len(t["segments"]) <= 400 else [[t["first_frame"], t["last_frame"], "detected"]]
        )
        bars = "".join(
            f'<div class="seg s-{_e(s)}" style="left:{100 * a / total:.3f}%;'
            f'width:{100 * (b - a + 1) / total:.3f}%"></div>'
            for a, b, s in segs
        )
        kept = " kept" if t["keep"] else ""
        out.append(
            f'<div class="tl-row{kept}"><div class="tl-label"><a href="#track-{t["id"]}">'
            f"#{t['id']}</a> {_e(t['kind'])}{' (kept)' if t['keep'] else ''}</div>"
            f'<div class="tl-bar">{bars}</div></div>'
        )
    return "".join(out)


def html_page(
    data: dict,
    crop_map: dict[int, list[dict]],
    redacted: bool = False,
    regions_name: str | None = None,
    overview_uri: str | None = None,
) -> str:
    """The review page for ``summary`` data and ``crops``: one self-contained HTML document."""
    f = data["file"]
    out = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        # Nothing but the page itself and its embedded images may load: no network request.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">",
        '<meta name="referrer" content="no-referrer">',
        f"<title>blur review: {_e(f['name'])}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>blur review: {_e(f['name'])}</h1>",
    ]
    if redacted:
        out.append(
            '<p class="banner safe">Crops are shown redacted, as in the output. '
            "This page is meant to be shareable; still check it before you send it.</p>"
        )
    else:
        out.append(
            '<p class="banner danger">This page shows the faces and plates '
            "UNREDACTED. Keep it private, never publish it or store it with the output; "
            "delete it when the review is done.</p>"
        )
    out.append('<h2 id="check-first">Check these frames first</h2>')
    out.append(_check_first(data))

    rows = [
        ("file", f["name"]),
        ("kind", f["kind"]),
        ("size", f"{f['bytes']:,} bytes" if f["bytes"] is not None else "?"),
        ("picture", f"{f['width']}×{f['height']}" + (f", rotated {f['rotation']}°" if f["rotation"] else "")),
    ]
    if f["kind"] == "video":
        rows += [
            ("duration", f"{f['duration']} s" if f["duration"] else "?"),
            ("frame rate", f["fps"]),
            ("frames", f["frame_count"]),
            ("audio streams", ", ".join(f["audio_streams"]) or "none"),
        ]
    found = data["metadata_found"]
    left = data.get("metadata_in_output")
    rows += [
        ("metadata found", ", ".join(found) if found else "none"),
        (
            "metadata in the output",
            "no output yet: blur copies no metadata, and render "
            "re-reads its output and refuses to finish if any is left"
            if left is None
            else ", ".join(left) or "none (re-read from the output)",
        ),
        ("tracks", len(data["tracks"])),
        ("frames with regions", data["frames_with_regions"]),
    ]
    out.append(
        '<h2 id="facts">The file</h2><table class="facts">'
        + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
        + "</table>"
    )

    if f["kind"] == "image":
        if overview_uri:
            out.append(
                '<h2 id="overview">Overview</h2><p class="meta">Red: redacted; green: '
                "kept visible; purple: drawn by hand. Numbers are track ids.</p>"
                f'<img class="overview" alt="overview" src="{overview_uri}">'
            )
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
        counts = ", ".join(f"{n} {LABEL[s]}" for s, n in t["frames"].items())
        score = (
            f"score max {t['max_score']}, mean {t['mean_score']}"
            if t["max_score"] is not None
            else "no detector score"
        )
        if t["best"]:
            score += f" · box {t['best']['box']} at frame {t['best']['frame']}"
        figs = "".join(_figure(t["id"], c) for c in crop_map.get(t["id"], []))
        why = f'<div class="why">{_e("; ".join(t["risk"]["reasons"]))}</div>' if t["risk"]["reasons"] else ""
        out.append(
            f'<article class="{classes}" id="track-{t["id"]}" data-track="{t["id"]}" '
            f'data-kind="{_e(t["kind"])}"><h3>Track {t["id"]} · {_e(t["kind"])}{tags}</h3>'
            f'<div class="meta">'
            f"{_e(_when(t['first_frame'], t['last_frame'], t['first_time'], t['last_time']))}"
            f' · {_e(counts)} · {_e(score)}</div>{why}<div class="crops">{figs}</div></article>'
        )

    name = _e(regions_name or "the regions file")
    out.append(
        f'<h2 id="next">Correct and render</h2><p>Edit {name}: delete a track to leave it '
        f'unredacted (a false positive), set <code>"keep": true</code> to keep a consenting '
        f'person visible, widen a box, or add a region by hand, e.g. <code>{{"id": 100, "kind": '
        f'"manual", "start": 1.5, "end": 4.0, "box": [x1, y1, x2, y2]}}</code>. Then run '
        f"<code>blur render {_e(f['name'])} --regions {name} -o OUTPUT</code> and "
        f"<code>blur check OUTPUT</code>.</p></main></body></html>"
    )
    return "\n".join(out)
