"""Corruptions against the originals' own outputs on the golden photos.

Deterministic corruptions are compared directly. Stochastic ones are fed the draws the
original made: the golden files were drawn with ``np.random.seed(0)`` immediately before each
call, so ``np.random.RandomState(0)`` and the original's calls, in its order, replay them
(written out below from the original script's text). impulse_noise drew from scikit-image's
own unseeded generator, gaussian/speckle noise draw float64 normals our float32 kernels do not
take, and shot noise samples Poisson counts by inverse CDF: those are checked in distribution
(``test_statistics.py``).
"""
import numpy as np
import pytest

from corruptions import corrupt, load_variant
from corruptions.motion import motion_blur
from corruptions.weather import _frost_texture, plasma_fractal

from ..helpers import clean, read_png, reference_dir

GOLDEN_PHOTOS = ["astronaut", "coffee"]
# bit for bit
EXACT = ["contrast", "brightness", "saturate", "pixelate", "jpeg_compression", "gaussian_blur", "defocus_blur",
         "frost", "fog", "snow", "motion_blur", "glass_blur"]
# at most one grey level on at most this fraction of values: float sums in another order tip a
# value across an integer now and then before the originals' truncation (zoom_blur's zooms are
# scipy's bit for bit, its running float32 sum of the zooms is numpy's; elastic's affine warp is
# OpenCV's; spatter's mud mask).
NEAR = {"zoom_blur": 0.0005, "elastic_transform": 0.0005, "spatter": 0.0005}


def original_draws(name: str, severity: int, shape: tuple) -> object:
    """The random draws of the original's ``name`` after ``np.random.seed(0)``, in its order."""
    state = np.random.RandomState(0)
    params = load_variant("imagenet").params_for(name, severity)
    height, width = shape[:2]
    if name == "glass_blur":
        delta, iterations = params["max_delta"], params["iterations"]
        rows, cols = range(height - delta, delta, -1), range(width - delta, delta, -1)
        offsets = np.empty((iterations, len(rows), len(cols), 2), np.int16)
        for it in range(iterations):
            for i, _ in enumerate(rows):
                for j, _ in enumerate(cols):
                    offsets[it, i, j] = state.randint(-delta, delta, size=(2,))  # dx, dy
        return offsets
    if name == "elastic_transform":
        jitter = params["base"] * params["affine"]
        return (state.uniform(-jitter, jitter, size=(3, 2)).astype(np.float32),
                state.uniform(-1, 1, size=(height, width)), state.uniform(-1, 1, size=(height, width)))
    if name == "frost":
        index = state.randint(5)
        texture = _frost_texture(params, index, shape)
        return index, state.randint(0, texture.shape[0] - height), state.randint(0, texture.shape[1] - width)
    if name == "fog":
        return plasma_fractal(256, params["wibble_decay"], state)
    if name == "snow":
        layer = state.normal(size=(height, width), loc=params["mean"], scale=params["std"])
        return layer, state.uniform(-135, -45)
    if name == "spatter":
        return state.normal(size=(height, width), loc=params["mean"], scale=params["std"])
    if name == "motion_blur":
        return state.uniform(-45, 45)
    return None


def compare(name: str, photo: str, severity: int) -> np.ndarray:
    folder = reference_dir() / "golden" / photo
    source = read_png(folder / "clean.png")
    expected = read_png(folder / f"{name}-{severity}.png").astype(np.int16)
    draws = original_draws(name, severity, source.shape)
    return np.abs(corrupt(source, name, severity, rng=0, draws=draws).astype(np.int16) - expected)


@pytest.mark.parametrize("photo", ["astronaut", "chelsea", "coffee", "rocket"])
def test_imagenet_preprocessing_matches_golden_clean(photo):
    assert np.array_equal(clean(photo, "imagenet"), read_png(reference_dir() / "golden" / photo / "clean.png"))


@pytest.mark.parametrize("name", EXACT)
@pytest.mark.parametrize("photo", GOLDEN_PHOTOS)
def test_exact_corruptions_equal_the_originals(name, photo):
    for severity in range(1, 6):
        diff = compare(name, photo, severity)
        assert diff.max() == 0, (severity, int((diff > 0).sum()), int(diff.max()))


@pytest.mark.parametrize("name", sorted(NEAR))
@pytest.mark.parametrize("photo", GOLDEN_PHOTOS)
def test_near_corruptions_are_within_one_level_on_few_values(name, photo):
    for severity in range(1, 6):
        diff = compare(name, photo, severity)
        assert diff.max() <= 1 and (diff > 0).mean() <= NEAR[name], (severity, int((diff > 0).sum()))


def test_replay_is_not_vacuous():
    """Other draws give other images: the replayed draws are what makes them equal."""
    folder = reference_dir() / "golden" / "coffee"
    source = read_png(folder / "clean.png")
    for name in ("snow", "fog", "frost", "glass_blur", "elastic_transform", "spatter"):
        own = corrupt(source, name, 3, rng=1)
        assert not np.array_equal(own, read_png(folder / f"{name}-3.png")), name


@pytest.mark.parametrize("photo", GOLDEN_PHOTOS)
def test_motion_blur_kernel_equals_golden_at_the_originals_angle(photo):
    angle = -45 + 90 * np.random.RandomState(0).random_sample()
    folder = reference_dir() / "golden" / photo
    source = read_png(folder / "clean.png")
    for severity in range(1, 6):
        params = load_variant("imagenet").params_for("motion_blur", severity)
        out = motion_blur(source, params["radius"], params["sigma"], angle)
        assert np.array_equal(out, read_png(folder / f"motion_blur-{severity}.png")), severity
