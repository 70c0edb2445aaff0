"""Deterministic corruptions against the originals' outputs on the golden photos."""
import numpy as np
import pytest

from corruptions import corrupt, load_variant
from corruptions.motion import motion_blur

from .conftest import clean, read_png, reference_dir

DETERMINISTIC = ["gaussian_blur", "defocus_blur", "zoom_blur", "contrast", "brightness", "saturate",
                 "pixelate", "jpeg_compression"]
GOLDEN_PHOTOS = ["astronaut", "coffee"]


@pytest.mark.parametrize("photo", ["astronaut", "chelsea", "coffee", "rocket"])
def test_imagenet_preprocessing_matches_golden_clean(photo):
    assert np.array_equal(clean(photo, "imagenet"), read_png(reference_dir() / "golden" / photo / "clean.png"))


@pytest.mark.parametrize("name", DETERMINISTIC)
@pytest.mark.parametrize("photo", GOLDEN_PHOTOS)
def test_deterministic_corruptions_match_golden(name, photo):
    folder = reference_dir() / "golden" / photo
    source = read_png(folder / "clean.png")
    for severity in range(1, 6):
        expected = read_png(folder / f"{name}-{severity}.png").astype(np.int16)
        diff = np.abs(corrupt(source, name, severity, rng=0).astype(np.int16) - expected)
        assert diff.mean() <= 0.5, (severity, diff.mean())
        assert np.percentile(diff, 99.9) <= 3, (severity, np.percentile(diff, 99.9))


@pytest.mark.parametrize("photo", GOLDEN_PHOTOS)
def test_motion_blur_equals_golden_at_the_originals_angle(photo):
    # np.random.seed(0); np.random.uniform(-45, 45) is the angle the golden files were drawn with
    angle = -45 + 90 * np.random.RandomState(0).random_sample()
    folder = reference_dir() / "golden" / photo
    source = read_png(folder / "clean.png")
    for severity in range(1, 6):
        params = load_variant("imagenet").params_for("motion_blur", severity)
        out = motion_blur(source, params["radius"], params["sigma"], angle)
        assert np.array_equal(out, read_png(folder / f"motion_blur-{severity}.png")), severity
