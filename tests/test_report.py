"""The review report: JSON summary and the self-contained HTML page, in a real browser too."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import socket
import subprocess
import threading
from fractions import Fraction

import cv2
import numpy as np
import pytest
from conftest import FAST, SAMPLES, write_video
from PIL import Image
from typer.testing import CliRunner

from blur import cli, cli_display, pipeline, report, risk
from blur.detectors.centerface import CenterFaceDetector
from blur.errors import ExitStatus
from blur.media import video
from blur.types import MediaInfo, Track

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Requests Chromium makes by itself (clock, component updates, sign-in), whatever the page.
BROWSER_OWN_HOSTS = {
    "clients2.google.com",
    "update.googleapis.com",
    "accounts.google.com",
    "edgedl.me.gvt1.com",
    "redirector.gvt1.com",
}


def blur(*args):
    return CliRunner().invoke(cli.app, [*map(str, args)])


@pytest.fixture
def video_plan(tmp_path, face_frame):
    """A 12-frame clip of a face, with a hand-made plan: a track from frame 1, bridged at frames
    4-5 and weak at 8; a kept track from frame 0; a manual region. The file name needs escaping
    in HTML."""
    small = cv2.resize(face_frame, (160, 120), interpolation=cv2.INTER_AREA)
    src = write_video(tmp_path / "a<b>&c.mp4", frames=12, rate=10, image=lambda i: small)
    info = video.probe(src)
    face = [55, 20, 85, 62]
    sources = ["detected"] * 11  # frames 1 to 11
    sources[3:5] = ["interpolated"] * 2
    sources[7] = "weak"
    scores = [{"interpolated": 0, "detected": 0.9, "weak": 0.15}[s] for s in sources]
    tracks = [
        Track(1, "face", range(1, 12), [face] * 11, scores, sources),
        Track(2, "face", range(6), [[5, 5, 40, 40]] * 6, [0.8] * 6, ["detected"] * 6, keep=True),
        Track(3, "manual", range(6, 10), [[100, 80, 150, 110]] * 4, [0] * 4, ["manual"] * 4),
    ]
    times = [Fraction(i, 10) for i in range(12)]
    return src, pipeline.Plan(info, 12, tracks, [], times)


def _images(page: str) -> list[np.ndarray]:
    return [
        np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))).convert("RGB"))
        for uri in re.findall(r'src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', page)
    ]


def test_summary_lists_bridged_and_weak_frames_first(video_plan):
    src, plan = video_plan
    data = report.summary(plan, FAST)
    assert data["check_first"]["bridged"] == [
        {"track": 1, "first_frame": 4, "last_frame": 5, "first_time": 0.4, "last_time": 0.5}
    ]
    assert data["check_first"]["weak"] == [
        {"track": 1, "first_frame": 8, "last_frame": 8, "first_time": 0.8, "last_time": 0.8}
    ]
    t1, t2, t3 = data["tracks"]
    assert t1["frames"] == {"detected": 8, "weak": 1, "interpolated": 2}
    assert t1["max_score"] == 0.9 and t1["flagged_frames"] == [4, 5, 8]
    assert t1["segments"][:3] == [[1, 3, "detected"], [4, 5, "interpolated"], [6, 7, "detected"]]
    assert t2["keep"] and t3["first_time"] == 0.6 and t3["last_time"] == 0.9
    assert data["file"]["frame_count"] == 12 and data["file"]["fps"] == "10"
    assert data["frames_with_regions"] == 11  # frame 0 has only the kept face
    json.dumps(data)  # plain data


def test_html_is_self_contained_and_lists_every_track(tmp_path, video_plan):
    src, plan = video_plan
    path = report.write(tmp_path / "review.html", src, plan, FAST)
    page = path.read_text()
    assert "<title>blur review: a&lt;b&gt;&amp;c.mp4</title>" in page
    assert "<b>" not in page.replace("<body>", "")
    assert "default-src 'none'; img-src data:" in page  # the browser may load nothing else
    # Every reference in the page is embedded or to an anchor inside it.
    refs = re.findall(r'\b(?:src|href|action|poster|srcset)\s*=\s*"([^"]*)"', page)
    assert refs and all(r.startswith(("data:image/jpeg;base64,", "#track-")) for r in refs)
    assert not re.search(r"url\(|@import|<script|<link|<iframe", page, re.I)
    cards = re.findall(r'<article class="track-card[^"]*" id="track-(\d+)"', page)
    assert cards == ["1", "2", "3"]  # the flagged track first; kept and hand-drawn ones last
    crops = {tid: len(re.findall(rf'alt="track {tid} frame', page)) for tid in "123"}
    assert crops == {"1": 4, "2": 4, "3": 4}
    assert all(im.shape[0] == report.CROP_HEIGHT for im in _images(page))
    assert "UNREDACTED" in page


def test_redacted_report_shows_no_face(tmp_path, astronaut):
    src = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(src)
    plan = pipeline.scan(src, FAST.merged(kinds=("face",)))
    assert len(plan.tracks) == 1
    plain = report.html_page(report.summary(plan), report.crops(src, plan, FAST))
    shared = report.html_page(
        report.summary(plan), report.crops(src, plan, FAST, redacted=True), redacted=True
    )
    (face,), (blob,) = _images(plain), _images(shared)
    detector = CenterFaceDetector(threshold=0.1)
    assert detector.detect(face).score.max() > 0.8  # the crop shows the face ...
    found = detector.detect(blob)
    assert not len(found) or found.score.max() < 0.5  # ... the shareable one does not
    assert np.abs(face.astype(int) - blob).mean() > 20
    assert "UNREDACTED" not in shared and "redacted, as in the output" in shared


def test_scan_writes_reports_and_says_the_page_is_sensitive(tmp_path, face_frame):
    src = tmp_path / "face.png"
    Image.fromarray(face_frame).save(src)
    result = blur("scan", src, "--report", tmp_path / "review.html")
    assert result.exit_code == 0, result.output
    assert "UNREDACTED" in result.stderr and "never publish it" in result.stderr
    assert (tmp_path / "face.regions.json").is_file()  # default: beside the input
    page = (tmp_path / "review.html").read_text()
    assert page.count('<article class="track-card') == len(
        json.loads((tmp_path / "face.regions.json").read_text())["tracks"]
    )
    # An existing report is not replaced without --overwrite.
    result = blur("scan", src, "--report", tmp_path / "review.html", "--overwrite", "--report-redacted")
    assert result.exit_code == 0 and "crops shown redacted" in result.stderr
    result = blur("scan", src, "--report", tmp_path / "review.html")
    assert result.exit_code == ExitStatus.USAGE and "already exists" in result.stderr
    result = blur("scan", src, "--regions", tmp_path / "r2.json", "--report", tmp_path / "summary.json")
    assert result.exit_code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["file"]["name"] == "face.png" and len(summary["tracks"]) >= 1
    result = blur("scan", src, "--regions", tmp_path / "r3.json", "--report", tmp_path / "x.pdf")
    assert result.exit_code == ExitStatus.USAGE and "must end in .html or .json" in result.stderr


def _busy_plan(tmp_path) -> pipeline.Plan:
    """A 5 s clip at 10 fps, 768x576, shaped like the street sample: one giant face box at a
    weak score (a false track over bystanders), one giant square "plate" on a sign at a high text
    score, one face not detected for 0.8 s, one weak-only face, and 40 small confident faces,
    half of them with a short bridge or a weak frame."""
    info = MediaInfo(
        path=tmp_path / "busy.mp4",
        kind="video",
        width=768,
        height=576,
        fps=Fraction(10),
        frame_count=50,
        duration=5.0,
    )

    def track(tid, kind, frames, box, sources, score):
        scores = [score if s in ("detected", "weak") else 0 for s in sources]
        return Track(tid, kind, frames, [box] * len(frames), scores, sources)

    tracks = []
    for i in range(40):  # small, confident; every other one bridged for 0.1 s or weak once
        sources = ["detected"] * 20
        if i % 2:
            sources[10] = "interpolated" if i % 4 == 1 else "weak"
        x = 10 + 18 * i
        tracks.append(track(i + 1, "face", range(i % 25, i % 25 + 20), [x, 200, x + 12, 216], sources, 0.6))
    bridged = ["detected"] * 10 + ["interpolated"] * 8 + ["detected"] * 12
    tracks.append(track(41, "face", range(5, 35), [300, 100, 312, 116], bridged, 0.5))
    tracks.append(track(42, "face", range(40, 44), [600, 50, 612, 66], ["weak"] * 4, 0.11))
    tracks.append(
        track(
            43,
            "plate",
            range(37, 42),
            [346, 162, 484, 283],
            ["padded", "padded", "detected", "padded", "padded"],
            0.88,
        )
    )
    tracks.append(
        track(44, "face", range(47, 50), [470, 232, 712, 439], ["padded", "padded", "detected"], 0.137)
    )
    return pipeline.Plan(info, 50, tracks, [], [Fraction(i, 10) for i in range(50)])


def test_review_puts_large_weak_regions_and_long_bridges_first(tmp_path):
    plan = _busy_plan(tmp_path)
    data = report.summary(plan, FAST)
    first = data["check_first"]["tracks"]
    # The giant weak face, the giant "plate", then the long bridge and the weak-only face:
    # the four worth a person's first look, each with the reason, out of 44 tracks.
    assert [c["track"] for c in first] == [44, 43, 41, 42]
    assert "11.3 % of the frame at score 0.14" in first[0]["why"][0]
    assert "3.8 % of the frame" in first[1]["why"][0]
    assert "not detected for 0.8 s (frames 15–22)" in first[2]["why"][0]
    assert "only weak detections" in first[3]["why"][0]
    assert data["review_order"][:4] == [44, 43, 41, 42]
    # The small confident tracks follow: those with something to check before the others.
    rest = data["review_order"][4:]
    flagged = [i + 1 for i in range(40) if i % 2]
    assert sorted(rest[:20]) == flagged
    assert sorted(rest[20:]) == [i + 1 for i in range(40) if not i % 2]
    page = report.html_page(data, {})
    listed = re.search(r'<ul class="first">(.*?)</ul>', page, re.S).group(1)
    assert re.findall(r'href="#track-(\d+)"', listed) == ["44", "43", "41", "42"]
    assert "Then 20 more track(s)" in page
    cards = re.findall(r'<article class="track-card[^"]*" id="track-(\d+)"', page)
    assert cards == [str(t) for t in data["review_order"]]
    # The command line's summary names the same tracks first.
    result = pipeline.FileResult(
        plan.info.path,
        tmp_path / "o.mp4",
        "video",
        {"face": 43},
        0,
        50,
        50,
        1.0,
        [],
        plan=plan,
        bridged_frames=18,
        weak_frames=14,
    )
    assert cli_display._look_at(result) == (
        "#44 large at 4.7 s, #43 large at 3.7 s, #41 gap 0.8 s at 1.5 s, +1 more"
    )


def test_short_list_stays_short_when_many_tracks_qualify(tmp_path):
    plan = _busy_plan(tmp_path)
    for t in plan.tracks[:40]:  # every small face now also goes unseen for 0.6 s
        t.source[5:11] = "interpolated"
    ranked = risk.rank_plan(plan)
    first = risk.short_list(ranked)
    assert len(first) == risk.SHORT_LIST
    assert [r.track for r in first[:3]] == [44, 43, 41]  # the riskiest still lead
    assert sum(r.check_first for r in ranked) == 44  # the others are not lost: they come next
    assert [r.track for r in ranked[: len(first)]] == [r.track for r in first]
    # The command line's summary points at the riskiest and says how many more there are, not
    # how many frames hold some bridge somewhere (in a busy clip: nearly all of them).
    result = pipeline.FileResult(
        plan.info.path,
        tmp_path / "o.mp4",
        "video",
        {"face": 43},
        0,
        50,
        50,
        1.0,
        [],
        plan=plan,
        bridged_frames=50,
        weak_frames=30,
    )
    assert cli_display._look_at(result) == (
        "#44 large at 4.7 s, #43 large at 3.7 s, #41 gap 0.8 s at 1.5 s, +41 more"
    )


def test_confident_large_face_is_not_listed_as_a_risk(tmp_path):
    """A close-up face seen clearly is what a large box should be: nothing to check first."""
    plan = _busy_plan(tmp_path)
    plan.tracks[-1].score[-1] = 0.95
    assert 44 not in [r.track for r in risk.short_list(risk.rank_plan(plan))]


def test_photo_ranks_a_large_weak_face_first_without_times(tmp_path):
    info = MediaInfo(path=tmp_path / "p.jpg", kind="image", width=640, height=480)
    tracks = [
        Track(1, "face", [0], [[10, 10, 40, 50]], [0.9], ["detected"]),
        Track(2, "face", [0], [[200, 100, 420, 380]], [0.2], ["detected"]),
    ]
    (first,) = risk.short_list(risk.rank_plan(pipeline.Plan(info, 1, tracks)))
    assert first.track == 2 and first.label() == "#2 large" and first.at is None


def test_card_crop_of_a_box_overhanging_the_frame_shows_the_box():
    """The sample's padded track 24 runs off the right edge at frame 9 (box [772.99, 303.77,
    781.03, 322.69] in a 768x576 frame): its crop is the frame's edge next to it, not the whole
    frame."""
    src = SAMPLES / "street.mp4"
    info = video.probe(src)
    box = [772.99, 303.77, 781.03, 322.69]
    overhang = [700.0, 250.0, 800.0, 370.0]  # partly inside
    tracks = [
        Track(1, "face", [9], [box], [0], ["padded"]),
        Track(2, "face", [9], [overhang], [0], ["padded"]),
    ]
    plan = pipeline.Plan(info, 10, tracks, [], [Fraction(i, 10) for i in range(10)])
    crops = report.crops(src, plan, FAST)
    frame = next(f.image for f in video.frames(src) if f.index == 9)
    # The box clipped to the frame, with a margin of 30 % of its size (at least 8 px) each side.
    for tid, (x1, y1, x2, y2) in ((1, (759, 295, 768, 331)), (2, (670, 214, 768, 406))):
        (shown,) = _images(f'src="{crops[tid][0]["uri"]}"')
        assert shown.shape[1] < report.CROP_HEIGHT * 768 / 576 / 2  # far narrower than the frame
        expected = np.asarray(Image.fromarray(frame[y1:y2, x1:x2]).resize(shown.shape[1::-1]))
        assert np.abs(shown.astype(int) - expected).mean() < 12  # the same pixels (JPEG, outline)


class _Proxy:
    """An HTTP proxy that answers nothing and remembers which hosts were asked for.

    Only requests count: Chromium also opens connections to its proxy ahead of need
    (preconnects) and closes some of them without sending anything; such a connection asks
    for no host (counting it as the host "" made the browser test fail now and then).
    """

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.hosts: set[str] = set()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                host = self._host(conn)
                if host is None:
                    continue
                self.hosts.add(host)
                try:
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    @staticmethod
    def _host(conn) -> str | None:
        """The host of the request on ``conn``, or None when it sent no request line."""
        conn.settimeout(2)
        data = b""
        try:
            while b"\r\n" not in data and len(data) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return None  # nothing, or not HTTP: no request
        return re.sub(r"^\w+://", "", parts[1]).split("/")[0].split(":")[0]

    def close(self):
        self.sock.close()


def test_proxy_counts_requests_not_idle_connections():
    proxy = _Proxy()
    try:
        socket.create_connection(("127.0.0.1", proxy.port)).close()  # a preconnect, unused
        with socket.create_connection(("127.0.0.1", proxy.port)) as conn:
            conn.sendall(b"GET http://example.invalid/a.png HTTP/1.1\r\nHost: example.invalid\r\n\r\n")
            conn.recv(100)
        with socket.create_connection(("127.0.0.1", proxy.port)) as conn:
            conn.sendall(b"CONNECT tls.invalid:443 HTTP/1.1\r\n\r\n")
            conn.recv(100)
    finally:
        proxy.close()
    assert proxy.hosts == {"example.invalid", "tls.invalid"}


def _chromium(tmp_path, page, *args, proxy: _Proxy) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"  # fresh each time
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--proxy-server=http://127.0.0.1:{proxy.port}",
            "--proxy-bypass-list=<-loopback>",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium'; .ci/run installs it)"
)
def test_report_renders_in_headless_chromium_without_network(tmp_path, video_plan):
    src, plan = video_plan
    page = report.write(tmp_path / "review.html", src, plan, FAST)
    proxy = _Proxy()
    try:
        # The instrument works: a page that does load something from the web is caught.
        control = tmp_path / "control.html"
        control.write_text('<!DOCTYPE html><title>c</title><img src="http://blur-test.invalid/a.png">')
        _chromium(tmp_path, control, "--dump-dom", proxy=proxy)
        assert "blur-test.invalid" in proxy.hosts
        proxy.hosts.clear()

        dom = _chromium(tmp_path, page, "--dump-dom", proxy=proxy)
        assert dom.returncode == 0, dom.stderr[-2000:]
        shot = tmp_path / "shot.png"
        run = _chromium(
            tmp_path,
            page,
            f"--screenshot={shot}",
            "--window-size=1000,1400",
            "--hide-scrollbars",
            proxy=proxy,
        )
        assert run.returncode == 0, run.stderr[-2000:]
    finally:
        proxy.close()
    assert proxy.hosts <= BROWSER_OWN_HOSTS, proxy.hosts  # the page itself asked for nothing
    title = re.search(r"<title>(.*?)</title>", dom.stdout).group(1)
    assert title == "blur review: a&lt;b&gt;&amp;c.mp4"
    assert len(re.findall(r'<article class="track-card', dom.stdout)) == 3
    assert len(re.findall(r'<img [^>]*src="data:image/jpeg', dom.stdout)) == 12
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape[:2] == (1400, 1000)
    # The page rendered: the warning banner's red border and text, not a blank screen.
    assert image.std() > 20
    banner = np.all(np.abs(image.astype(int) - (224, 70, 60)) < 30, axis=2)
    assert banner.sum() > 500
