"""Media round trips: what goes in comes out the same apart from the redacted regions.

Videos: size, frame count, every frame's timestamp (variable frame rate too), frame rate as an
exact fraction, duration, audio packets bit-exact, display rotation applied. Stills: format,
size, EXIF orientation, JPEG quality, ICC profile, PNG pixels outside regions byte-identical.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import FAST, exif_with_gps, iou, redacted_mask, shared_file, video_facts, write_video
from PIL import Image

from blur import pipeline
from blur.media import video

# name -> (write_video arguments, expected output extension and container)
CASES = {
    "mp4_aac": ("clip.mp4", dict(audio="aac"), ".mp4"),
    "ntsc_30000_1001": ("ntsc.mp4", dict(rate=Fraction(30000, 1001), frames=15), ".mp4"),
    "vfr": (
        "vfr.mp4",
        dict(pts=[0, 33, 66, 150, 170, 300, 310, 400, 433, 700], time_base=Fraction(1, 1000), audio="aac"),
        ".mp4",
    ),
    "odd_size": ("odd.mp4", dict(size=(161, 121)), ".mp4"),
    "mkv_opus": ("clip.mkv", dict(audio="libopus"), ".mkv"),
    "mkv_pcm": ("pcm.mkv", dict(audio="pcm_s16le"), ".mkv"),
    "mov_aac": ("clip.mov", dict(audio="aac"), ".mp4"),
    "avi_mpeg4_mp3": ("clip.avi", dict(video_codec="mpeg4", audio="mp3"), ".mp4"),
    "webm_vp9_opus": ("clip.webm", dict(video_codec="libvpx-vp9", audio="libopus"), ".mp4"),
    "webm_vp8": ("vp8.webm", dict(video_codec="libvpx", size=(176, 144)), ".mp4"),
    # The first frame after 0 and not on a whole millisecond (an MPEG-TS starts at ~1.4 s):
    # MP4 shows it through an empty edit, which must not round the start to a millisecond.
    "late_start": (
        "late.ts",
        dict(rate=Fraction(2997, 125), time_base=Fraction(1, 90000), pts=[3754 * i for i in range(1, 11)]),
        ".mp4",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_video_round_trip_keeps_frames_timing_and_audio(tmp_path, case):
    name, kwargs, ext = CASES[case]
    src = write_video(tmp_path / name, **kwargs)
    result = pipeline.anonymise(src, None, FAST)
    assert result.dst == tmp_path / (Path(name).stem + ".blurred" + ext)
    before, after = video_facts(src), video_facts(result.dst)

    assert after["format"].startswith("matroska" if ext == ".mkv" else "mov,mp4")
    assert (after["width"], after["height"]) == (before["width"], before["height"])
    # Same frames, in the same order, none dropped or repeated ...
    assert len(after["marks"]) == len(before["marks"]) == result.frames
    assert after["marks"] == before["marks"]
    # ... at exactly the same presentation times (variable frame rate kept) ...
    assert after["times"] == before["times"]
    assert after["duration"] == pytest.approx(before["duration"], abs=1e-3)
    # ... and the pictures themselves (no face here: nothing is redacted).
    for a, b in zip(before["images"], after["images"]):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 4
    assert after["rotations"] == {0}
    # Audio packets copied byte for byte.
    assert after["audio_codecs"] == before["audio_codecs"]
    assert after["audio_packets"] == before["audio_packets"]
    if kwargs.get("audio"):
        assert len(after["audio_packets"]) > 5


@pytest.mark.parametrize("rate", [Fraction(30000, 1001), Fraction(25), Fraction(24000, 1001)])
def test_frame_rate_stays_an_exact_fraction(tmp_path, rate):
    src = write_video(tmp_path / "rate.mp4", rate=rate, frames=10)
    info = video.probe(src)
    assert info.fps == rate and isinstance(info.fps, Fraction)
    dst = pipeline.anonymise(src, None, FAST).dst
    assert video_facts(dst)["rate"] == rate
    assert video.probe(dst).fps == rate


def test_audio_drop_removes_every_audio_stream(tmp_path):
    src = write_video(tmp_path / "a.mp4", audio="aac")
    dst = pipeline.anonymise(src, None, FAST.merged(audio="drop")).dst
    facts = video_facts(dst)
    assert facts["stream_types"] == ["video"]
    assert facts["audio_packets"] == []
    assert len(facts["marks"]) == 12


def test_audio_the_container_cannot_hold_is_reencoded_not_lost(tmp_path):
    # PCM in AVI cannot go into MP4 as it is: it becomes AAC, with a note, of the same length.
    src = write_video(tmp_path / "pcm.avi", video_codec="mpeg4", audio="pcm_s16le")
    result = pipeline.anonymise(src, None, FAST)
    assert any("re-encoded" in n for n in result.notes)
    with av.open(str(result.dst)) as c:
        (audio,) = c.streams.audio
        assert audio.codec_context.name == "aac"
        assert float(audio.duration * audio.time_base) == pytest.approx(0.4, abs=0.05)


def _rotated_face_video(path: Path, face: np.ndarray, rotation: int) -> Path:
    """Store ``face`` turned so that the display rotation brings it back upright."""
    stored = np.ascontiguousarray(np.rot90(face, -rotation // 90))
    h, w = stored.shape[:2]
    return write_video(path, frames=6, size=(w, h), image=lambda i: stored, rotation=rotation)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_video_is_analysed_and_written_upright(tmp_path, face_frame, rotation):
    src = _rotated_face_video(tmp_path / f"phone{rotation}.mp4", face_frame, rotation)
    height, width = face_frame.shape[:2]

    first = next(video.frames(src)).image
    assert first.shape == face_frame.shape
    assert np.abs(first.astype(int) - face_frame).mean() < 4  # upright, not mirrored or turned

    from blur.detectors import DETECTORS

    upright_box = DETECTORS["centerface"]().detect(face_frame).xyxy[0]
    plan = pipeline.scan(src, FAST)
    assert (plan.info.width, plan.info.height) == (width, height)
    boxes = [t.xyxy[0] for t in plan.tracks if t.frames[0] == 0]
    assert max(iou(b, upright_box) for b in boxes) > 0.5  # the face, where it is upright

    dst = tmp_path / "out.mp4"
    pipeline.render(src, dst, plan, FAST)
    facts = video_facts(dst)
    assert facts["rotations"] == {0}  # no display matrix left: pictures are stored upright
    assert (facts["width"], facts["height"]) == (width, height)
    out = facts["images"][0].astype(int)
    mask = redacted_mask(plan, 0, width, height)
    assert np.abs(out - face_frame)[~mask].mean() < 4
    assert np.abs(out - face_frame)[mask].mean() > 20


def test_rotation_sign_follows_the_quicktime_matrix(tmp_path, face_frame):
    """Independent of PyAV's writer: patch in the track matrix an iPhone writes for portrait
    video (display = stored picture turned 90 degrees clockwise)."""
    stored = np.ascontiguousarray(np.rot90(face_frame, 1))  # turned counter-clockwise
    h, w = stored.shape[:2]
    path = write_video(tmp_path / "iphone.mp4", frames=3, size=(w, h), image=lambda i: stored)
    data = bytearray(path.read_bytes())
    box = data.find(b"tkhd") - 4
    version = data[box + 8]
    matrix = box + 12 + (32 if version == 1 else 20) + 16  # after times, ids, layer, volume
    assert struct.unpack(">9i", data[matrix : matrix + 36]) == (65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)
    data[matrix : matrix + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, h << 16, 0, 1 << 30)
    path.write_bytes(bytes(data))

    assert video.probe(path).width == face_frame.shape[1]
    first = next(video.frames(path)).image
    assert np.abs(first.astype(int) - face_frame).mean() < 4


@pytest.mark.parametrize("rotation", [None, 90])
def test_non_square_pixels_keep_the_display_shape(tmp_path, rotation):
    """Anamorphic video (160x120 stored, pixels 4:3 wide -> shown 16:9) keeps its shape."""
    src = write_video(tmp_path / "wide.mp4", frames=3, sample_aspect_ratio=Fraction(4, 3), rotation=rotation)
    dst = pipeline.anonymise(src, None, FAST).dst
    with av.open(str(dst)) as c:
        stream = c.streams.video[0]
        if rotation is None:
            assert stream.sample_aspect_ratio == Fraction(4, 3)
            assert stream.display_aspect_ratio == Fraction(16, 9)
        else:  # stored upright now: 120 wide, 160 high, pixels 3:4 -> shown 9:16
            assert (stream.codec_context.width, stream.codec_context.height) == (120, 160)
            assert stream.display_aspect_ratio == Fraction(9, 16)


@pytest.mark.parametrize("size", [(161, 121), (160, 121), (161, 120), (175, 99)])
def test_odd_sizes_are_kept_exactly(tmp_path, size):
    src = write_video(tmp_path / "odd.mp4", size=size, frames=4)
    facts = video_facts(pipeline.anonymise(src, None, FAST).dst)
    assert (facts["width"], facts["height"]) == size
    assert facts["images"][0].shape[:2] == size[::-1]


def test_faces_in_a_video_are_redacted_in_every_frame(tmp_path, face_frame):
    h, w = face_frame.shape[:2]
    src = write_video(tmp_path / "face.mp4", frames=8, size=(w, h), image=lambda i: face_frame)
    result = pipeline.anonymise(src, None, FAST)
    assert result.tracks.get("face", 0) >= 1
    assert result.frames_redacted == result.frames == 8
    mask = redacted_mask(result.plan, 0, w, h)
    for out in video_facts(result.dst)["images"]:
        assert np.abs(out.astype(int) - face_frame)[mask].mean() > 20


# --- stills -------------------------------------------------------------------------------

STILL_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp"}


@pytest.mark.parametrize("fmt", sorted(STILL_FORMATS))
def test_still_keeps_format_and_size(tmp_path, face_frame, fmt):
    src = tmp_path / f"photo{STILL_FORMATS[fmt]}"
    Image.fromarray(face_frame).save(src, format=fmt)
    result = pipeline.anonymise(src, None, FAST)
    assert result.dst == tmp_path / f"photo.blurred{STILL_FORMATS[fmt]}"
    assert result.tracks.get("face", 0) >= 1
    with Image.open(result.dst) as out, Image.open(src) as inp:
        assert out.format == fmt
        assert out.size == inp.size == (face_frame.shape[1], face_frame.shape[0])
        pixels = np.asarray(out.convert("RGB")).astype(int)
        before = np.asarray(inp.convert("RGB")).astype(int)  # JPEG/WebP: after their own loss
    mask = redacted_mask(result.plan, 0, face_frame.shape[1], face_frame.shape[0])
    assert np.abs(pixels - before)[mask].mean() > 20
    assert np.abs(pixels - before)[~mask].mean() < 2


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied_before_detection(tmp_path, face_frame, orientation):
    # Orientation 6 means "turn 90 degrees clockwise to display": store the face turned the other
    # way, as a camera held sideways would.
    turns = {3: 2, 6: 1, 8: -1}[orientation]
    stored = np.ascontiguousarray(np.rot90(face_frame, turns))
    src = tmp_path / "sideways.jpg"
    Image.fromarray(stored).save(src, exif=exif_with_gps(orientation), quality=95)

    from blur.detectors import DETECTORS

    upright_box = DETECTORS["centerface"]().detect(face_frame).xyxy[0]
    result = pipeline.anonymise(src, None, FAST)
    assert max(iou(t.xyxy[0], upright_box) for t in result.plan.tracks) > 0.5
    with Image.open(result.dst) as out:
        assert out.getexif().get(0x0112) is None  # no orientation left to apply twice
        pixels = np.asarray(out).astype(int)
    assert pixels.shape == face_frame.shape
    mask = redacted_mask(result.plan, 0, face_frame.shape[1], face_frame.shape[0])
    assert np.abs(pixels - face_frame)[~mask].mean() < 3


def test_png_pixels_outside_regions_are_byte_identical(tmp_path, astronaut):
    src = tmp_path / "astronaut.png"
    image = astronaut[:300, 60:460]
    Image.fromarray(image).save(src)
    result = pipeline.anonymise(src, None, FAST)
    with Image.open(result.dst) as out:
        assert out.mode == "RGB"
        pixels = np.asarray(out)
    mask = redacted_mask(result.plan, 0, image.shape[1], image.shape[0])
    assert 0 < mask.mean() < 0.3
    assert np.array_equal(pixels[~mask], image[~mask])
    assert (pixels[mask] != image[mask]).mean() > 0.9


def test_png_alpha_is_kept(tmp_path, face_frame):
    alpha = np.tile(np.linspace(0, 255, face_frame.shape[1]).astype(np.uint8), (face_frame.shape[0], 1))
    src = tmp_path / "alpha.png"
    Image.fromarray(np.dstack([face_frame, alpha]), "RGBA").save(src)
    with Image.open(pipeline.anonymise(src, None, FAST).dst) as out:
        assert out.mode == "RGBA"
        assert np.array_equal(np.asarray(out)[..., 3], alpha)


def test_jpeg_is_written_at_quality_95(tmp_path, face_frame):
    src = tmp_path / "q.jpg"
    Image.fromarray(face_frame).save(src, quality=60)
    reference = tmp_path / "reference.jpg"
    Image.fromarray(face_frame).save(reference, quality=95)
    low = tmp_path / "low.jpg"
    Image.fromarray(face_frame).save(low, quality=80)
    with (
        Image.open(pipeline.anonymise(src, None, FAST).dst) as out,
        Image.open(reference) as ref,
        Image.open(low) as worse,
    ):
        assert out.quantization == ref.quantization
        assert out.quantization != worse.quantization  # the check can tell qualities apart


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_icc_profile_is_kept(tmp_path, face_frame, srgb_icc, fmt):
    src = tmp_path / f"icc{STILL_FORMATS[fmt]}"
    Image.fromarray(face_frame).save(src, format=fmt, icc_profile=srgb_icc)
    with Image.open(pipeline.anonymise(src, None, FAST).dst) as out:
        assert out.info.get("icc_profile") == srgb_icc


def test_16_bit_grey_png_is_scaled_not_clipped(tmp_path, face_frame):
    grey = np.asarray(Image.fromarray(face_frame).convert("L")).astype(np.uint16) * 257 + 100
    src = tmp_path / "scan16.png"
    Image.fromarray(grey).save(src)
    with Image.open(src) as im:
        assert im.mode.startswith("I")  # Pillow reads it as 16-bit
    result = pipeline.anonymise(src, None, FAST)
    assert result.tracks.get("face", 0) >= 1  # found on a picture that is not washed out
    with Image.open(result.dst) as out:
        pixels = np.asarray(out.convert("L")).astype(int)
    mask = redacted_mask(result.plan, 0, grey.shape[1], grey.shape[0])
    assert np.abs(pixels - grey // 257)[~mask].max() <= 1


def test_lossless_webp_stays_lossless(tmp_path, face_frame):
    src = tmp_path / "art.webp"
    Image.fromarray(face_frame).save(src, lossless=True)
    result = pipeline.anonymise(src, None, FAST)
    assert result.dst.read_bytes()[12:16] == b"VP8L"
    with Image.open(result.dst) as out:
        pixels = np.asarray(out.convert("RGB"))
    mask = redacted_mask(result.plan, 0, face_frame.shape[1], face_frame.shape[0])
    assert np.array_equal(pixels[~mask], face_frame[~mask])


def test_cmyk_profile_is_not_put_on_rgb_pixels(tmp_path, face_frame, srgb_icc):
    cmyk_icc = srgb_icc[:16] + b"CMYK" + srgb_icc[20:]  # header says CMYK: enough for the check
    src = tmp_path / "print.jpg"
    Image.fromarray(face_frame).convert("CMYK").save(src, icc_profile=cmyk_icc, quality=95)
    with Image.open(pipeline.anonymise(src, None, FAST).dst) as out:
        assert out.mode == "RGB"
        assert "icc_profile" not in out.info


# --- real footage ---------------------------------------------------------------------------


def _excerpt(src: Path, dst: Path, frames: int) -> Path:
    """The first ``frames`` video packets of ``src``, copied as they are (no re-encode)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        count = 0
        for packet in inp.demux(vin):
            if packet.size == 0:
                continue
            packet.stream = vout
            out.mux(packet)
            count += 1
            if count == frames:
                break
    return dst


@pytest.mark.slow
def test_real_cctv_excerpt_faces_found_and_frames_kept(tmp_path):
    clip = _excerpt(shared_file("vtest.avi"), tmp_path / "vtest20.avi", 20)
    before = video_facts(clip)
    assert len(before["marks"]) == 20
    result = pipeline.anonymise(clip, None, FAST)
    after = video_facts(result.dst)
    assert result.dst.suffix == ".mp4"
    assert len(after["images"]) == result.frames == 20
    assert after["times"] == before["times"]
    assert (after["width"], after["height"]) == (768, 576)
    # Several walkers' faces (about 10-20 px tall) are found and tracked.
    assert result.tracks.get("face", 0) >= 3
    assert result.frames_redacted == 20


@pytest.mark.slow
def test_real_photo_faces_redacted(tmp_path):
    src = shared_file("messi5.jpg")
    dst = tmp_path / "messi.jpg"
    result = pipeline.anonymise(src, dst, FAST)
    assert result.tracks.get("face", 0) >= 1
    with Image.open(src) as a, Image.open(dst) as b:
        before, after = np.asarray(a.convert("RGB")).astype(int), np.asarray(b).astype(int)
    mask = redacted_mask(result.plan, 0, before.shape[1], before.shape[0])
    assert np.abs(after - before)[mask].mean() > 15
    assert np.abs(after - before)[~mask].mean() < 3


def _presentation_times(path: Path) -> list[float | None]:
    """Every video frame's presentation time, read independently of blur: ffprobe's
    best-effort timestamps when it is installed (None where it has none: it leaves the last
    frame of Megamind.avi without one), else PyAV's frame times, sorted (a decoder hands out
    frames in presentation order, whatever times a container attached)."""
    if shutil.which("ffprobe"):
        out = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_frames",
                "-show_entries",
                "frame=best_effort_timestamp_time",
                "-of",
                "csv=p=0",
                str(path),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        values = [line.strip(",") for line in out.split()]
        return [None if v == "N/A" else float(v) for v in values]
    with av.open(str(path)) as c:
        return sorted(float(f.pts * f.time_base) for f in c.decode(c.streams.video[0]))


def _stream_duration(path: Path) -> float:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return float(v.duration * v.time_base)


@pytest.mark.slow
@pytest.mark.parametrize("name, frames", [("Megamind.avi", None), ("vtest.avi", 120)])
def test_real_avi_frames_keep_their_presentation_times(tmp_path, name, frames):
    """Megamind.avi (MPEG-4 part 2 with packed B-frames) decodes with times attached out of
    order (0.125, 0.209, 0.167, ...); frame i must still be shown at the i-th time, and the
    duration and frame count kept. vtest.avi (no B-frames) must not change."""
    src = shared_file(name)
    if frames:
        src = _excerpt(src, tmp_path / name, frames)
    expected = _presentation_times(src)
    known = [i for i, t in enumerate(expected) if t is not None]
    assert len(known) >= len(expected) - 1

    def same(times):
        assert len(times) == len(expected)
        assert [times[i] for i in known] == pytest.approx([expected[i] for i in known], abs=1e-6)
        step = np.diff(times)
        assert step.min() > 0 and step.max() < 1.5 * float(1 / info.fps)  # none left out

    info = video.probe(src)
    # What blur analyses: each frame with its time, in order.
    same([float(f.time) for f in video.frames(src)])
    # What blur writes.
    result = pipeline.render(src, tmp_path / "out.mp4", pipeline.Plan(info, len(expected), []), FAST)
    assert result.frames == len(expected)
    same(_presentation_times(result.dst))
    assert _stream_duration(result.dst) == pytest.approx(_stream_duration(src), abs=1e-6)
    assert video.probe(result.dst).fps == info.fps
