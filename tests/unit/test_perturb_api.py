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


WINDOWED = [name for name, kernel in __import__("perturbations").PERTURBATIONS.kernels().items() if kernel.windowed]


def test_the_geometric_kernels_are_windowed():
    assert sorted(WINDOWED) == ["rotate", "scale", "shear", "tilt", "translate", "zoom_blur"]


@pytest.mark.parametrize("name", WINDOWED)
@pytest.mark.parametrize("variant", ["imagenet", "cifar"])
def test_a_window_is_the_same_bytes_as_cropping_the_frames(name, variant):
    """A windowed kernel's frames of a region equal its whole frames cropped after: odd sizes,
    windows at the edges, one pixel, the whole frame."""
    from perturbations import PERTURBATIONS, load_sequences
    kernel = PERTURBATIONS.get(name)
    params = load_sequences(variant).params_for(name)
    rng = np.random.default_rng(3)
    for shape in [(41, 57, 3), (64, 64, 3), (13, 9, 3)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        whole = kernel.apply(image, params, None)
        height, width = shape[:2]
        windows = [(0, 0, height, width), (3, 5, height - 7, width - 6), (height - 1, width - 1, 1, 1),
                   (0, width // 2, height, width - width // 2)]
        for top, left, rows, cols in windows:
            part = kernel.apply(image, params, None, window=(top, left, rows, cols))
            assert part.shape == (whole.shape[0], rows, cols, 3)
            assert np.array_equal(part, whole[:, top:top + rows, left:left + cols]), (shape, top, left)


def test_leading_window_composes_the_output_stages_crops():
    from perturbations import leading_window
    crop = {"op": "center_crop", "size": 224}
    assert leading_window((256, 341), [crop]) == ((16, 58, 224, 224), ())
    fraction = {"op": "center_crop_fraction", "fraction": 0.875}
    resize = {"op": "resize", "size": [299, 299]}
    assert leading_window((375, 500), [fraction, resize]) == ((24, 32, 328, 437), (resize,))  # 23.5, 31.5 round to even
    assert leading_window((64, 64), []) == ((0, 0, 64, 64), ())
    assert leading_window((100, 90), [crop]) == (None, (crop,))  # reaches outside: PIL fills black
    assert leading_window((300, 300), [crop, {"op": "center_crop", "size": 100}]) == ((100, 100, 100, 100), ())


@pytest.mark.parametrize("variant", ["imagenet", "inception", "imagenet64", "tiny", "cifar"])
def test_stages_made_together_are_each_stage_alone(variant):
    """``stage_images`` runs a step shared by stages once (clean's resize is precrop) and gives
    what each stage gives alone."""
    from perturbations import load_sequences, stage_image, stage_images
    sequences = load_sequences(variant)
    photo = np.random.default_rng(4).integers(0, 256, (300, 410, 3), dtype=np.uint8)
    together = stage_images(photo, list(sequences.stages), sequences)
    assert list(together) == list(sequences.stages)
    for stage, image in together.items():
        assert np.array_equal(image, stage_image(photo, stage, sequences)), stage
