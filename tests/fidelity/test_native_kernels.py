"""Native kernels against their oracles: the real ImageMagick, and literal Python loops."""
import numpy as np
import pytest

from corruptions import native as _native
from corruptions.motion import motion_blur

from ..helpers import clean


@pytest.mark.parametrize("radius, sigma, angle", [
    (10, 3, 4.39), (15, 5, -44.9), (20, 15, 31.7), (12, 4, -12.0), (6, 1, 38.0), (8, 2, -35.5),
    (10, 1.5, 0.0), (14, 4, -90.0), (12, 8, -131.3), (10, 4, -45.0), (22, 16, 17.2)])
@pytest.mark.parametrize("photo, variant", [("astronaut", "imagenet"), ("coffee", "cifar"), ("rocket", "tiny")])
def test_native_motion_blur_is_imagemagick(wand, photo, variant, radius, sigma, angle):
    image = clean(photo, variant)
    assert np.array_equal(motion_blur(image, radius, sigma, angle, "native"),
                          motion_blur(image, radius, sigma, angle, "imagemagick"))


def test_native_motion_blur_is_imagemagick_on_grey_and_non_square(wand):
    rng = np.random.default_rng(0)
    grey = (rng.random((45, 70)) > 0.8).astype(np.uint8) * 255  # a snow-like layer
    colour = np.ascontiguousarray(clean("chelsea", "imagenet")[:100, :161])
    for angle in (-135.0, -100.2, -45.0, 60.0):
        assert np.array_equal(motion_blur(grey, 12, 8, angle), motion_blur(grey, 12, 8, angle, "imagemagick"))
        assert np.array_equal(motion_blur(colour, 15, 5, angle), motion_blur(colour, 15, 5, angle, "imagemagick"))


def test_imagemagick_backend_can_be_selected_in_the_config(wand, tmp_path):
    import yaml

    from corruptions import corrupt, load_variant_file
    from corruptions.config import VARIANT_DIR
    doc = yaml.safe_load((VARIANT_DIR / "imagenet.yaml").read_text())
    doc["corruptions"]["motion_blur"]["shared"]["backend"] = "imagemagick"
    doc["corruptions"]["snow"]["shared"]["backend"] = "imagemagick"
    path = tmp_path / "im.yaml"
    path.write_text(yaml.safe_dump(doc))
    custom = load_variant_file(path)
    image = clean("coffee", "imagenet")
    for name in ("motion_blur", "snow"):
        assert np.array_equal(corrupt(image, name, 3, 9, custom), corrupt(image, name, 3, 9, "imagenet"))
    doc["corruptions"]["motion_blur"]["shared"]["backend"] = "gimp"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ValueError, match="native, imagemagick"):
        corrupt(image, "motion_blur", 1, 0, load_variant_file(path))


def literal_glass_shuffle(image, offsets, d):
    """The original's loop, written out, with numpy's view semantics of the 'swap'."""
    x = image.copy()
    height, width = x.shape[:2]
    for it in range(offsets.shape[0]):
        for i, h in enumerate(range(height - d, d, -1)):
            for j, w in enumerate(range(width - d, d, -1)):
                dx, dy = offsets[it, i, j]
                h_prime, w_prime = h + dy, w + dx
                x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]
    return x


@pytest.mark.parametrize("delta, iterations", [(1, 2), (2, 1), (4, 3)])
def test_glass_shuffle_keeps_the_originals_sequential_semantics(delta, iterations):
    rng = np.random.default_rng(delta)
    image = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    offsets = rng.integers(-delta, delta, size=(iterations, 23 - 2 * delta, 31 - 2 * delta, 2), dtype=np.int16)
    expected = literal_glass_shuffle(image, offsets, delta)
    fast = image.copy()
    _native.glass_shuffle(fast, offsets, delta)
    assert np.array_equal(fast, expected)
    # order matters: the same offsets applied to pixels in another order give another image
    reordered = image[::-1, ::-1].copy()
    _native.glass_shuffle(reordered, offsets, delta)
    assert not np.array_equal(reordered[::-1, ::-1], expected)


def test_poisson_lookup_has_the_poisson_distribution():
    from corruptions.noise import poisson_tables
    photons = 12.0
    cdf, guide, levels = poisson_tables(photons)
    level = 128
    image = np.full((400, 500), level, np.uint8)
    out = _native.poisson_lookup(image, np.random.default_rng(0).random(image.size), cdf, guide, levels)
    draws = np.random.default_rng(1).poisson(level / 255 * photons, image.size)
    expected = (np.clip(draws / photons, 0, 1) * 255).astype(np.uint8)
    ours = np.bincount(out.ravel(), minlength=256) / out.size
    theirs = np.bincount(expected, minlength=256) / expected.size
    assert np.abs(ours - theirs).max() < 0.005
    assert set(np.unique(out)) <= set(levels)


@pytest.mark.parametrize("photons", [60.0, 25.0, 12.0, 5.0, 3.0, 0.7, 500.0])
def test_poisson_lookup_is_the_literal_inverse_cdf(photons):
    """The guided search returns the smallest k with u < cdf[v, k], as a plain search does,
    for every input level, on random draws and on draws placed at and beside the CDF steps."""
    from corruptions.noise import poisson_tables
    cdf, guide, levels = poisson_tables(photons)
    rng = np.random.default_rng(int(photons))
    image = np.repeat(np.arange(256, dtype=np.uint8), 400)
    steps = cdf[image, rng.integers(0, cdf.shape[1], image.size)]
    draws = np.concatenate([rng.random(image.size), np.minimum(steps, np.nextafter(1, 0)),
                            np.nextafter(steps, 0), np.arange(64) / 64])
    values = np.concatenate([image, image, image, np.full(64, 200, np.uint8)])
    expected = levels[[np.searchsorted(cdf[v], u, side="right") for v, u in zip(values, draws)]]
    assert np.array_equal(_native.poisson_lookup(values, draws, cdf, guide, levels), expected)


def test_hsv_round_trip_is_skimages():
    from skimage.color import hsv2rgb, rgb2hsv
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    image[:8] = image[:8, :, :1]  # greys: delta == 0
    image[8:16, :, 1] = image[8:16, :, 0]  # ties between channels
    for channel, scale, offset in ((2, 1.0, 0.3), (1, 5.0, 0.1), (1, 0.1, 0.0)):
        hsv = rgb2hsv(image / 255.0)
        hsv[..., channel] = np.clip(hsv[..., channel] * scale + offset, 0, 1)
        expected = (np.clip(hsv2rgb(hsv), 0, 1) * 255).astype(np.uint8)
        assert np.array_equal(_native.hsv_adjust(image, channel, scale, offset), expected)


@pytest.mark.parametrize("spread", [0.5, 7.0, 400.0])
def test_bilinear_reflect_is_scipys_map_coordinates(spread):
    """The elastic transform's remap against scipy itself (the original's call), including
    displacements that reflect several times."""
    from scipy.ndimage import map_coordinates
    rng = np.random.default_rng(int(spread))
    image = rng.random((37, 53, 3), dtype=np.float32)
    dy = (rng.standard_normal((37, 53)) * spread).astype(np.float32)
    dx = (rng.standard_normal((37, 53)) * spread).astype(np.float32)
    x, y, z = np.meshgrid(np.arange(53), np.arange(37), np.arange(3))
    indices = (np.reshape(y + dy[..., None], (-1, 1)), np.reshape(x + dx[..., None], (-1, 1)), np.reshape(z, (-1, 1)))
    expected = map_coordinates(image, indices, order=1, mode="reflect").reshape(image.shape)
    assert np.array_equal(_native.bilinear_reflect(image, dy, dx), expected)


def test_unit_channel_means_are_numpys_mean_bit_for_bit():
    """contrast's means: NumPy's own reduction order, so no mean differs in its last bit."""
    rng = np.random.default_rng(3)
    for height, width in [(224, 224), (299, 299), (32, 32), (37, 501), (640, 480), (8, 8)]:
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        assert np.array_equal(_native.unit_channel_means(image), (image / 255.0).mean(axis=(0, 1)))
    photo = clean("coffee", "inception")
    assert np.array_equal(_native.unit_channel_means(photo), (photo / 255.0).mean(axis=(0, 1)))


def test_contrast_is_the_literal_formula():
    from corruptions import corrupt, load_variant
    for photo, variant in [("chelsea", "imagenet"), ("rocket", "tiny"), ("astronaut", "cifar")]:
        image = clean(photo, variant)
        for severity in range(1, 6):
            factor = load_variant(variant).params_for("contrast", severity)["factor"]
            x = np.array(image) / 255.0
            means = np.mean(x, axis=(0, 1), keepdims=True)
            expected = np.uint8(np.clip((x - means) * factor + means, 0, 1) * 255)
            assert np.array_equal(corrupt(image, "contrast", severity, 0, variant), expected)


@pytest.mark.parametrize("factor", [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 4.5, 0.8, 3.3])
def test_snow_layer_zoom_is_scipys_bit_for_bit(factor):
    """The snow layer's clipped zoom computes only the kept window of scipy's order-1 zoom;
    scipy.ndimage.zoom itself is the oracle."""
    import math

    from scipy.ndimage import zoom

    from corruptions.ops import scipy_clipped_zoom
    rng = np.random.default_rng(int(factor * 10))
    for height, width in [(224, 224), (299, 299), (64, 64), (32, 32), (57, 90), (5, 7)]:
        layer = rng.normal(0.05, 0.3, (height, width))
        crop_h, crop_w = math.ceil(height / factor), math.ceil(width / factor)
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        full = zoom(layer[top:top + crop_h, left:left + crop_w], (factor, factor), order=1)
        trim_top, trim_left = (full.shape[0] - height) // 2, (full.shape[1] - width) // 2
        expected = full[trim_top:trim_top + height, trim_left:trim_left + width]
        assert np.array_equal(scipy_clipped_zoom(layer, factor), expected), (height, width)


def test_jpeg_bytes_are_pils_whichever_library_writes_them():
    """The JPEG tree's bytes are PIL's `save(quality=85, optimize=True)` (the originals'),
    also where OpenCV's faster encoder writes them: on every kernel's output, odd sizes too."""
    from corruptions import corrupt, corruption_names
    from pipeline.formats.zarr_codecs import encode_jpeg, opencv_writes_pils_bytes, pil_jpeg
    assert isinstance(opencv_writes_pils_bytes(), bool)
    for photo, variant in [("astronaut", "imagenet"), ("coffee", "tiny"), ("rocket", "cifar")]:
        image = clean(photo, variant)
        for name in corruption_names("all"):
            out = corrupt(image, name, 5, 1, variant)
            assert encode_jpeg(out, 85, True) == pil_jpeg(out, 85, True), (name, variant)
    rng = np.random.default_rng(2)
    for shape in [(1, 1, 3), (9, 31, 3), (375, 500, 3)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        for quality, optimize in [(85, True), (20, False), (100, True)]:
            assert encode_jpeg(image, quality, optimize) == pil_jpeg(image, quality, optimize)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_impulse_noise_is_the_literal_masks(dtype):
    """skimage's s&p as numpy masks: flipped where flip <= amount, to 255 where salt <= share."""
    from corruptions import load_variant
    from corruptions.registry import get
    image = clean("chelsea", "imagenet")
    rng = np.random.default_rng(4)
    for severity in range(1, 6):
        params = load_variant("imagenet").params_for("impulse_noise", severity)
        flip, salt = rng.random(image.shape).astype(dtype), rng.random(image.shape).astype(dtype)
        flip[0, :3] = dtype(params["amount"])  # exactly at the threshold
        expected = image.copy()
        flipped, salted = flip <= params["amount"], salt <= params["salt_vs_pepper"]
        expected[flipped & salted], expected[flipped & ~salted] = 255, 0
        assert np.array_equal(get("impulse_noise").apply(image, params, (flip, salt)), expected)
