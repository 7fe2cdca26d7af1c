"""A video in segments (``blur.split``): cut at keyframes, scanned and rendered one segment at a
time, joined losslessly; the regions, frame count, timestamps and audio equal a whole-file run.

These run the segmented path in one process (no cluster needed); ``test_cluster.py`` runs it
on a real Ray cluster.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import FAST, _write_tone, video_facts, write_video

from blur import pipeline, record, split
from blur.media import embedded


def moving_face_clip(
    path: Path,
    face_frame: np.ndarray,
    *,
    frames: int = 48,
    gop: int = 12,
    audio: str | None = "aac",
    container_format: str | None = None,
) -> Path:
    """A face that walks across the picture, out of sight for a few frames around one cut and
    first seen just after another, in an H.264 clip with a keyframe every ``gop`` frames."""
    face = cv2.resize(face_frame[10:130, 40:160], (60, 60), interpolation=cv2.INTER_AREA)
    height, width = 180, 320
    out = av.open(str(path), "w", format=container_format)
    video = out.add_stream("libx264", rate=30)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.codec_context.gop_size = gop
    video.options = {"preset": "ultrafast", "crf": "16", "sc_threshold": "0"}
    video.time_base = video.codec_context.time_base = Fraction(1, 30)
    sound = None
    if audio:
        sound = out.add_stream(audio, rate=44100)
        sound.layout = "stereo"
    for i in range(frames):
        picture = np.full((height, width, 3), 60, np.uint8)
        picture[:, :, 1] = np.linspace(40, 200, width, dtype=np.uint8)[None, :]
        hidden = gop * 2 - 2 <= i < gop * 2 + 2  # a gap the tracker bridges, across a cut
        if i >= 3 and not hidden:  # appears after the first frames: padded back in time
            x = 10 + (i * 5) % (width - 70)
            picture[20:80, x : x + 60] = face
        if i >= gop * 3 + 1:  # a second face, first seen just after a cut: padded across it
            picture[110:170, 240:300] = face
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame.pts = i
        out.mux(video.encode(frame))
    out.mux(video.encode(None))
    if sound is not None:
        _write_tone(out, sound, seconds=frames / 30)
    out.close()
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory, face_frame):
    return moving_face_clip(tmp_path_factory.mktemp("split") / "walk.mp4", face_frame)


def test_cuts_only_at_clean_keyframes(clip):
    segments = split.plan_segments(clip, 0.3)
    assert [(s.start, s.stop) for s in segments] == [(0, 12), (12, 24), (24, 36), (36, 48)]
    assert segments[-1].last and not segments[0].last
    assert [len(split.plan_segments(clip, seconds)) for seconds in (0.5, 1.0, 10)] == [2, 2, 0]


def test_segments_decode_the_pictures_of_a_whole_decode(clip):
    whole = [f.image for f in pipeline.media_frames(pipeline.probe(clip))]
    parts = [f for s in split.plan_segments(clip, 0.3) for f in split.segment_frames(clip, s, 0)]
    assert [f.index for f in parts] == list(range(len(whole)))
    assert all(np.array_equal(a, b.image) for a, b in zip(whole, parts))


def test_split_run_redacts_exactly_what_a_whole_run_does(tmp_path, clip):
    whole_regions, split_regions = tmp_path / "whole.json", tmp_path / "split.json"
    # Segments are analysed in full on every frame (change-driven analysis cannot start cold).
    pipeline.anonymise(clip, tmp_path / "whole.mp4", FAST.merged(analyse="every-frame"), whole_regions)
    result = split.anonymise_in_segments(clip, tmp_path / "split.mp4", FAST, 0.3, split_regions)
    assert "rendered in 4 segments" in " ".join(result.notes)
    regions = json.loads(split_regions.read_text())
    assert regions == json.loads(whole_regions.read_text())
    # The face is one track through the hidden frames around the second cut, padded back
    # before its first sight: the tracks cross the cuts.
    spans = [{(box[0], box[-1]) for box in t["boxes"]} for t in regions["tracks"] if t["kind"] == "face"]
    assert any({(23, "interpolated"), (24, "interpolated"), (12, "detected")} <= s for s in spans), (
        "the first face is not one track bridged across the cut at 24"
    )
    assert any({(35, "padded"), (37, "detected")} <= s for s in spans), (
        "the second face is not padded back across the cut at 36"
    )
    src, whole, parted = (video_facts(p) for p in (clip, tmp_path / "whole.mp4", tmp_path / "split.mp4"))
    assert parted["times"] == src["times"] == whole["times"]  # every frame, at its time
    assert parted["duration"] == pytest.approx(src["duration"], abs=1e-3)
    assert parted["audio_packets"] == src["audio_packets"]  # copied once, bit-exact
    assert not list(tmp_path.glob(".*.part"))
    # Both carry blur's record of the render (``blur.record``), the same one.
    carried = [record.decode(embedded.carried(tmp_path / n).text) for n in ("whole.mp4", "split.mp4")]
    assert carried[0] == carried[1] and carried[0]["frames"] == len(parted["times"])


def test_mkv_output_and_no_audio(tmp_path, face_frame):
    clip = moving_face_clip(tmp_path / "walk.mkv", face_frame, audio=None, gop=16)
    result = split.anonymise_in_segments(
        clip, tmp_path / "new" / "out.mkv", FAST, 0.5, tmp_path / "split.json"
    )  # into a folder to create
    assert result.frames == 48
    pipeline.anonymise(
        clip, tmp_path / "whole.mkv", FAST.merged(analyse="every-frame"), tmp_path / "whole.json"
    )
    assert json.loads((tmp_path / "split.json").read_text()) == json.loads(
        (tmp_path / "whole.json").read_text()
    )
    assert video_facts(tmp_path / "new" / "out.mkv")["times"] == video_facts(clip)["times"]


def test_not_cut_where_it_would_not_be_exact(tmp_path):
    # MPEG-4 part 2 in AVI: timestamps guessed by the demuxer, no IDR pictures to check.
    avi = write_video(tmp_path / "old.avi", frames=30, video_codec="mpeg4")
    assert split.plan_segments(avi, 0.1) == []
    # The small-face pass on every other frame: a whole-file scan reuses analyses across cuts.
    assert not split.can_split(avi, FAST.merged(face_small_every_n_frames=2))
