"""blur never opens a network connection: a full run works with sockets forbidden."""

from __future__ import annotations

import socket

import numpy as np
from conftest import FAST, write_video
from PIL import Image

import blur
import blur.detectors.text


class _NoNetwork(RuntimeError):
    pass


def _forbid(*args, **kwargs):
    raise _NoNetwork("blur tried to open a socket")


def test_full_run_opens_no_socket(tmp_path, monkeypatch, face_frame):
    """Photos and videos are anonymised with every socket constructor replaced by one that
    raises: any attempt to reach the network (model download, telemetry) fails the test."""
    monkeypatch.setattr(socket, "socket", _forbid)
    monkeypatch.setattr(socket, "create_connection", _forbid)
    monkeypatch.setattr(socket, "getaddrinfo", _forbid)
    photo = tmp_path / "face.png"
    Image.fromarray(face_frame).save(photo)
    clip = write_video(
        tmp_path / "clip.mp4", frames=6, size=(240, 180), image=lambda i: face_frame, audio="aac"
    )
    # Detector caches would hide a model load done before the patch: start from none.
    blur.detectors.release()
    photo_result = blur.anonymise(photo, settings=FAST)
    video_result = blur.anonymise(clip, settings=FAST)
    loaded = [key for key in blur.detectors.base._CACHE if key[0] == "text-model"]
    assert len(loaded) == 1  # the plate model was loaded here
    assert sum(photo_result.tracks.values()) >= 1
    assert video_result.frames == 6
    assert not np.array_equal(np.asarray(Image.open(photo_result.dst)), face_frame)
