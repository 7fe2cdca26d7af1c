"""Outputs do not name the encoder and its settings: x264 writes "x264 - core ... options: ..."
into the first frame (an SEI unit), which blur removes, and its own check would catch."""

from __future__ import annotations

import pytest
from conftest import FAST, write_video

from blur import pipeline
from blur.media import metadata, video, video_encode


@pytest.mark.parametrize("name", ["clip.mp4", "clip.mkv"])
def test_output_has_no_x264_settings_string(tmp_path, name):
    src = write_video(tmp_path / name, frames=6, audio="aac" if name.endswith("mp4") else None)
    assert b"x264 - core" in src.read_bytes()  # the fixture, written by x264, has it
    result = pipeline.anonymise(src, None, FAST.merged(kinds=("face",)))
    data = result.dst.read_bytes()
    assert b"x264" not in data and b"options: cabac" not in data
    assert metadata.leftover(result.dst, written_by_blur=True) == []
    assert len(list(video.frames(result.dst))) == 6  # still plays, every frame


def test_leftover_check_catches_the_string(tmp_path):
    src = write_video(tmp_path / "clip.mp4", frames=3)
    assert metadata.encoder_settings(src) == ["video stream: x264 settings string (SEI)"]
    assert "video stream: x264 settings string (SEI)" in metadata.leftover(src, written_by_blur=True)
    assert not any("x264" in item for item in metadata.leftover(src))  # names no one: `blur check`
    # does not report it for files blur did not write


def test_output_is_refused_if_the_string_survives(tmp_path, monkeypatch):
    from blur.errors import MetadataLeftError

    src = write_video(tmp_path / "clip.mp4", frames=3)
    monkeypatch.setattr(video_encode._StripSei, "__call__", lambda self, packets: list(packets))
    monkeypatch.setattr(video_encode._StripSei, "drain", lambda self: [])
    with pytest.raises(MetadataLeftError, match="x264 settings string"):
        pipeline.anonymise(src, None, FAST.merged(kinds=("face",)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
