"""Settings refuse values blur would otherwise misread: a typo must not change what is hidden."""

import pytest
from typer.testing import CliRunner

from blur.cli import app
from blur.errors import SettingsError, UsageError
from blur.settings import Settings


@pytest.mark.parametrize(
    "overrides",
    [
        {"audio": "keep"},  # used to drop the audio silently
        {"fail_frame": "x"},  # used to act as "fail"
        {"style": "nope"},  # used to surface as an internal error
        {"shape": "circle"},
        {"kinds": ("face", "car")},
        {"kinds": ()},
        {"mask_scale": 0.5},  # a mask smaller than the face
        {"face_threshold": 1.5},
        {"face_threshold": float("nan")},
        {"crf": 99},
        {"crf": 18.5},
        {"preset": "fastest"},
        {"jpeg_quality": 0},
        {"text_every_n_frames": 0},
        {"pad_seconds": -1},
        {"device": "tpu"},
        {"overwrite": "yes"},
    ],
)
def test_a_bad_setting_is_refused(overrides):
    with pytest.raises(SettingsError) as info:
        Settings(**overrides)
    assert next(iter(overrides)) in str(info.value)
    # Both a usage error (exit 2 at the CLI) and a ValueError for library callers.
    assert isinstance(info.value, UsageError) and isinstance(info.value, ValueError)
    with pytest.raises(SettingsError):
        Settings().merged(**overrides)


def test_the_defaults_and_every_documented_choice_are_accepted():
    Settings()
    for style in ("blur", "pixelate", "solid"):
        for shape in ("ellipse", "box"):
            Settings(style=style, shape=shape, audio="drop", fail_frame="redact", device="CPU")
    Settings(kinds=("text",), crf=0, jpeg_quality=100, mask_scale=1.0, pad_seconds=0)


def test_the_cli_maps_a_bad_setting_to_a_usage_error(tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"not read: the settings are refused first")
    result = CliRunner().invoke(app, ["run", str(photo), "--preset", "fastest"])
    assert result.exit_code == 2, result.output
    assert "preset" in result.output and "Traceback" not in result.output
    assert not list(tmp_path.glob("*.blurred.*"))
