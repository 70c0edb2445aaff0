"""perturb()'s contract: the input is never modified; mistakes are ValueErrors naming what is allowed."""
import numpy as np
import pytest

from perturbations import perturb, sequence_names


def test_sequence_groups():
    assert len(sequence_names("test")) == 10 and len(sequence_names("validation")) == 4
    assert len(sequence_names("all")) == 20 and len(sequence_names("difficulties")) == 6
    with pytest.raises(ValueError, match="allowed: test, validation"):
        sequence_names("train")


@pytest.mark.parametrize("kind", sequence_names("all"))
def test_every_kind_keeps_its_input_and_returns_uint8_frames(kind):
    photo = np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8)
    before = photo.copy()
    frames = perturb(photo, kind, np.random.default_rng(1), "cifar")
    assert np.array_equal(photo, before)
    assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[1:] == (32, 32, 3)


@pytest.mark.parametrize("photo, kind, variant, message", [
    (np.zeros((64, 64, 3), np.uint8), "wobble", "imagenet", "allowed: gaussian_noise"),
    (np.zeros((64, 64, 3), np.uint8), "rotate", "imagenet128", "allowed: imagenet, inception"),
    (np.zeros((64, 64, 3), np.float32), "rotate", "imagenet", "allowed: uint8"),
    (np.zeros((64, 64, 5), np.uint8), "rotate", "imagenet", "HxW, HxWx1, HxWx3 or HxWx4"),
    ([[1, 2], [3, 4]], "rotate", "imagenet", "numpy array"),
])
def test_mistakes_name_what_is_allowed(photo, kind, variant, message):
    with pytest.raises(ValueError, match=message):
        perturb(photo, kind, 0, variant)


def test_grey_and_rgba_photos_are_converted():
    grey = np.random.default_rng(2).integers(0, 256, (300, 280), dtype=np.uint8)
    rgba = np.dstack([np.repeat(grey[..., None], 3, axis=2), np.full_like(grey, 7)])
    assert np.array_equal(perturb(grey, "tilt", 0, "imagenet"), perturb(rgba, "tilt", 0, "imagenet"))
