"""The ``blur`` command: exit codes, messages, outputs, never over an input."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import video_facts, write_video
from PIL import Image
from typer.testing import CliRunner, Result

from blur import cli, cli_display
from blur.errors import ExitStatus

FAST = ["--preset", "ultrafast"]


def blur(*args) -> Result:
    """Run ``blur run ARGS`` in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(cli.app, ["run", *map(str, args)])


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    """Work where the files are, with short relative names (the summary table is 80 wide)."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def photo(tmp_path, face_frame):
    path = tmp_path / "face.png"
    Image.fromarray(face_frame).save(path)
    return path


def test_photo_default_output_and_summary(photo):
    result = blur("face.png")
    assert result.exit_code == ExitStatus.OK, result.stderr
    out = photo.with_name("face.blurred.png")
    assert out.is_file()
    assert "face.png" in result.stdout and "1 file(s) done, 0 failed" in result.stdout
    # One column per kind found, faces always: the header names it, the row counts the face.
    header = next(line for line in result.stdout.splitlines() if "output" in line)
    cells = [c.strip() for c in header.replace("┃", "|").split("|")]
    row = next(line for line in result.stdout.splitlines() if line.lstrip().startswith("face.png"))
    values = [c.strip() for c in row.replace("│", "|").split("|")]
    assert cells[:3] == ["file", "output", "faces"] and "look at" in cells
    assert values[2] == "1" and values[cells.index("redacted")] == "1/1"
    with Image.open(out) as a, Image.open(photo) as b:
        assert a.size == b.size and np.asarray(a).tobytes() != np.asarray(b).tobytes()


def test_summary_has_no_column_for_a_kind_not_looked_for(photo):
    """With --only plates, faces were not searched: no "faces 0" that reads as "no faces"."""
    result = blur(photo, "--only", "plates")
    assert result.exit_code == ExitStatus.OK, result.stderr
    header = next(line for line in result.stdout.splitlines() if "output" in line)
    assert "plates" in header and "faces" not in header


def test_quiet_prints_nothing_on_success(photo):
    result = blur(photo, "--quiet")
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr == ""
    assert photo.with_name("face.blurred.png").is_file()


def test_output_file_option(photo, tmp_path):
    result = blur(photo, "-o", tmp_path / "sub" / "clean.png", "-q")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "sub" / "clean.png").is_file()


def test_output_folder_option(photo, tmp_path):
    result = blur(photo, "-o", f"{tmp_path}/new/", "-q")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "new" / "face.png").is_file()


def test_refuses_existing_output_without_overwrite(photo):
    out = photo.with_name("face.blurred.png")
    out.write_bytes(b"keep me")
    result = blur(photo, "-q")
    assert result.exit_code == ExitStatus.USAGE
    assert "already exists" in result.stderr and "--overwrite" in result.stderr
    assert out.read_bytes() == b"keep me"
    assert blur(photo, "-q", "--overwrite").exit_code == 0
    assert out.read_bytes() != b"keep me"


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_never_overwrites_the_input(photo, overwrite):
    before = photo.read_bytes()
    result = blur(photo, "-o", photo, *overwrite)
    assert result.exit_code == ExitStatus.USAGE
    assert "input itself" in result.stderr
    assert photo.read_bytes() == before
    assert [p.name for p in photo.parent.iterdir()] == ["face.png"]


def test_usage_errors_exit_2(tmp_path, photo):
    assert blur(tmp_path / "missing.jpg").exit_code == ExitStatus.USAGE
    assert blur(photo, "--style", "swirl").exit_code == ExitStatus.USAGE
    assert blur(photo, "--crf", "99").exit_code == ExitStatus.USAGE
    empty = tmp_path / "empty"
    empty.mkdir()
    result = blur(empty)
    assert result.exit_code == ExitStatus.USAGE and "no photos or videos" in result.stderr


def test_folder_input_mirrored_with_photos_and_videos(tmp_path, face_frame):
    root = tmp_path / "footage"
    (root / "day1" / "cam").mkdir(parents=True)
    Image.fromarray(face_frame).save(root / "a.jpg")
    Image.fromarray(face_frame).save(root / "day1" / "b.png")
    write_video(root / "day1" / "cam" / "c.mov", frames=5)
    write_video(root / "d.mkv", frames=5)
    result = blur(root, "-o", tmp_path / "clean", *FAST)
    assert result.exit_code == 0, result.stderr
    got = sorted(
        p.relative_to(tmp_path / "clean").as_posix() for p in (tmp_path / "clean").rglob("*") if p.is_file()
    )
    assert got == ["a.jpg", "d.mkv", "day1/b.png", "day1/cam/c.mp4"]
    assert "4 file(s) done, 0 failed" in result.stdout
    # Without -o: FOLDER.blurred beside it.
    assert blur(root, "-q", *FAST).exit_code == 0
    assert (tmp_path / "footage.blurred" / "day1" / "cam" / "c.mp4").is_file()


def test_batch_with_one_bad_file_finishes_the_others(tmp_path, face_frame):
    Image.fromarray(face_frame).save(tmp_path / "a.png")
    (tmp_path / "broken.jpg").write_bytes(b"this is not a jpeg")
    write_video(tmp_path / "c.mp4", frames=5)
    result = blur("a.png", "broken.jpg", "c.mp4", *FAST)
    assert result.exit_code == ExitStatus.ERROR
    assert (tmp_path / "a.blurred.png").is_file() and (tmp_path / "c.blurred.mp4").is_file()
    assert not (tmp_path / "broken.blurred.jpg").exists()
    assert "broken.jpg" in result.stderr and "error" in result.stderr  # one line naming it
    assert "2 file(s) done, 1 failed" in result.stdout
    assert "failed" in result.stdout.split("broken.jpg", 1)[1].splitlines()[0]
    assert not list(tmp_path.glob(".*.part"))


def test_huge_image_header_is_refused_and_the_batch_goes_on(tmp_path, face_frame):
    """A PNG whose header claims 30000x30000 pixels: a clear error, not a crash."""

    def chunk(kind, data):
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    (tmp_path / "bomb.png").write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    Image.fromarray(face_frame).save(tmp_path / "ok.png")
    result = blur("bomb.png", "ok.png", "-q")
    assert result.exit_code == ExitStatus.ERROR
    assert "bomb.png" in result.stderr and "too large" in result.stderr
    assert (tmp_path / "ok.blurred.png").is_file()
    assert not (tmp_path / "bomb.blurred.png").exists()


def test_failure_midway_leaves_no_output_and_no_temp_file(tmp_path, monkeypatch):
    src = write_video(tmp_path / "clip.mp4", frames=10)
    from blur import redact
    from blur.errors import MediaError

    real, calls = redact.Redactor.apply, []

    def apply(self, image, *boxes):
        calls.append(1)
        if len(calls) == 4:
            raise MediaError("simulated encoder failure")
        return real(self, image, *boxes)

    monkeypatch.setattr(redact.Redactor, "apply", apply)
    result = blur(src, *FAST)
    assert len(calls) == 4
    assert result.exit_code == ExitStatus.ERROR
    assert "simulated encoder failure" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_blur_path_shorthand_and_python_m(tmp_path, photo):
    # `blur PATH` means `blur run PATH`, through the real entry point.
    proc = subprocess.run(
        [sys.executable, "-m", "blur", str(photo), "-q"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    assert photo.with_name("face.blurred.png").is_file()
    help_text = subprocess.run(
        [sys.executable, "-m", "blur", "--help"], capture_output=True, text=True, timeout=60
    )
    assert help_text.returncode == 0 and "Anonymise" in help_text.stdout
    run_help = subprocess.run(
        [sys.executable, "-m", "blur", "run", "--help"], capture_output=True, text=True, timeout=60
    )
    assert run_help.returncode == 0
    assert "--overwrite" in run_help.stdout and "--audio" in run_help.stdout


def test_usage_exit_code_through_the_entry_point(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "blur", str(tmp_path / "nope.jpg")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == ExitStatus.USAGE
    assert "nope.jpg" in proc.stderr and "no such file" in proc.stderr


def test_summary_says_where_to_look(tmp_path, face_frame):
    """A face hidden for a few frames (a grey card over it) is bridged by the tracker, and the
    summary's "look at" column counts those frames so a person knows to check them."""
    grey = np.full_like(face_frame, 128)
    write_video(
        tmp_path / "blink.mp4",
        frames=12,
        size=(240, 180),
        image=lambda i: grey if 4 <= i <= 6 else face_frame,
    )
    result = blur("blink.mp4", "--only", "faces", *FAST)
    assert result.exit_code == 0, result.stderr
    assert "3 bridged" in result.stdout.split("blink.mp4", 1)[1]


def test_look_at_column_is_a_dash_when_nothing_needs_a_look():
    class Result:
        bridged_frames = weak_frames = 0

    assert cli_display._look_at(Result()) == "-"
    Result.weak_frames = 2
    assert cli_display._look_at(Result()) == "2 weak"


@pytest.mark.parametrize("command", ["run", "scan"])
def test_sideways_option_turns_on_the_rotated_face_passes(photo, monkeypatch, command):
    seen = []
    real = cli.detectors.build
    monkeypatch.setattr(
        cli.detectors, "build", lambda settings: seen.append(settings.face_rotate) or real(settings)
    )
    args = [command, "face.png", "--sideways", "--only", "faces"]
    assert CliRunner().invoke(cli.app, args).exit_code == 0
    assert (
        CliRunner()
        .invoke(
            cli.app,
            [command, "face.png", "--only", "faces", "--overwrite"]
            + (["-o", "other.png"] if command == "run" else []),
        )
        .exit_code
        == 0
    )
    assert seen == [True, False]


# ---- what the command shows ------------------------------------------------------------------


@pytest.mark.parametrize("width", [160, 80])
def test_summary_shows_the_output_path_whole(photo, monkeypatch, width):
    from rich.console import Console

    monkeypatch.setattr(cli_display, "out", Console(width=width))
    out = "out dir/a fairly long name for the output.png"
    result = blur(photo, "-o", out, "--only", "faces")
    assert result.exit_code == 0, result.stderr
    assert "…" not in result.stdout
    if width == 160:
        assert out in result.stdout
    else:  # folded onto more lines of the output column, every character kept
        column = [line.split("│")[1].strip() for line in result.stdout.splitlines() if line.count("│") > 2]
        assert " ".join(c for c in column if c) == out


def test_main_help_lists_the_options_of_blur_path():
    result = CliRunner().invoke(cli.app, ["--help"])
    assert result.exit_code == 0
    for text in (
        "Commands:",
        "scan",
        "render",
        "check",
        "--overwrite",
        "--style",
        "-o, --output",
        "--regions",
        "--jobs",
    ):
        assert text in result.stdout, text


@pytest.mark.parametrize("command", ["run", "scan", "render", "check"])
def test_help_placeholders_are_readable(command):
    text = CliRunner().invoke(cli.app, [command, "--help"]).stdout
    for raw in ("<list[", "<str>", "<path>", "<float", "<int", "{"):
        assert raw not in text, (raw, text)
    usage = {"run": "PATH...", "scan": "FILE", "render": "FILE", "check": "PATH..."}[command]
    assert f"{command} [OPTIONS] {usage}\n" in text


REGIONS_MISTAKES = {
    "missing": (None, "no such regions file"),
    "empty": ("\n", "the regions file is empty"),
    "not JSON": ("{not json", "not a regions file: invalid JSON at line 1, column 2"),
    "a folder": ("folder", "is a folder, not a regions file"),
}


@pytest.mark.parametrize("mistake", REGIONS_MISTAKES)
@pytest.mark.parametrize("command", ["render", "check"])
def test_a_bad_regions_file_is_a_usage_error_naming_the_file(tmp_path, photo, mistake, command):
    content, message = REGIONS_MISTAKES[mistake]
    path = tmp_path / "my.regions.json"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    args = [command, "face.png", "--regions", path.name] + (["-o", "o.png"] * (command == "render"))
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == ExitStatus.USAGE, result.stderr
    line = " ".join(result.stderr.split())
    assert line.startswith(f"error: my.regions.json: {message}"), line
    assert not (tmp_path / "o.png").exists()


def test_readme_sample_output_is_not_shown_by_git_status():
    """``blur samples/street.mp4`` writes samples/street.blurred.mp4: not to be committed."""
    root = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    for name in ("samples/street.blurred.mp4", "samples/messi5.blurred.jpg"):
        ignored = subprocess.run(["git", "-C", str(root), "check-ignore", "-q", name])
        assert ignored.returncode == 0, name


def test_a_video_is_opened_once_per_step(tmp_path, monkeypatch):
    """``blur clip.mp4`` opens its input three times (probe, scan, render) and its output twice
    (written, then re-read once to prove it clean): the geometry found by the probe is handed to
    the writer instead of being decoded again, and the leftover check reads the output once."""
    clip = write_video(tmp_path / "clip.mp4", frames=6, rotation=90, audio="aac")
    opened: list[tuple[str, str]] = []
    real_open = av.open

    def counting_open(file, mode="r", *args, **kwargs):
        opened.append((Path(str(file)).name, mode))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(av, "open", counting_open)
    result = blur("clip.mp4", *FAST)
    assert result.exit_code == ExitStatus.OK, result.stderr
    monkeypatch.setattr(av, "open", real_open)
    reads = [name for name, mode in opened if mode == "r"]
    writes = [name for name, mode in opened if mode == "w"]
    assert reads.count("clip.mp4") == 3, opened
    assert len(writes) == 1 and reads.count(writes[0]) == 1, opened
    assert len(opened) == 5, opened
    # Upright size and audio as before: the probe's geometry is the one the output got.
    out, src = video_facts(tmp_path / "clip.blurred.mp4"), video_facts(clip)
    assert (out["width"], out["height"]) == (src["height"], src["width"]) == (120, 160)
    assert len(out["times"]) == 6 and out["audio_packets"] == src["audio_packets"]
