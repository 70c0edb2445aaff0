"""ImageNet-P's native loops against their oracles: Pillow, OpenCV, scipy, numpy and the real
ImageMagick, on odd sizes and arbitrary inputs, and the noise sampler against literal numpy
restatements of its stream and of the originals' formulas."""
import sys

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.special import ndtr

from corruptions.motion import motion_blur, motion_blur_angles, motion_taps
from corruptions.ops import gaussian_kernel
from perturbations import PERTURBATIONS, _native
from perturbations.geometry import affine, bilinear_affine_frames, tilt_matrix
from perturbations.noise import CUMULATIVE, level_table, level_weights

from ..helpers import clean

ODD_SIZES = [(5, 9), (37, 61), (256, 341), (299, 200)]


def test_bilinear_affine_is_pillows_transform_bit_for_bit():
    """rotate, shear, scale and zoom blur frames: Pillow's own bilinear affine transform is the
    oracle, whole and in windows, on odd sizes and arbitrary maps (edges, outside, flips), for
    the general path and the separable one (maps without rotation or shear)."""
    rng = np.random.default_rng(8)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ODD_SIZES]
    images.append(np.array(clean("coffee", "imagenet")))
    for image in images:
        pil = Image.fromarray(image)
        height, width = image.shape[:2]
        transforms = [{"angle": rng.uniform(-20, 20)}, {"shear": rng.uniform(-20, 20)}, {"scale": rng.uniform(0.5, 2)},
                      {"scale": rng.uniform(0.3, 0.9)},
                      {"angle": 7.0, "translate": (3, -2), "scale": 1.3, "shear": -11.0}, {}]
        expected = [np.asarray(affine(pil, **t, resample=Image.BILINEAR)) for t in transforms]
        for frame, oracle in zip(bilinear_affine_frames(image, transforms), expected):
            assert np.array_equal(frame, oracle)
        for _ in range(3):
            top, left = int(rng.integers(0, height)), int(rng.integers(0, width))
            rows, cols = int(rng.integers(1, height - top + 1)), int(rng.integers(1, width - left + 1))
            windowed = bilinear_affine_frames(image, transforms, (top, left, rows, cols))
            for frame, oracle in zip(windowed, expected):
                assert np.array_equal(frame, oracle[top:top + rows, left:left + cols])
        arbitrary = rng.uniform(-2, 2, (4, 6)) * [1, 1, 50, 1, 1, 50]
        arbitrary[1, [1, 3]] = 0.0  # separable
        arbitrary[2, [1, 3]] = -0.0
        ours = np.empty((4, height, width, 3), np.uint8)
        _native.pil_affine_bilinear(image, arbitrary, 0, 0, ours)
        for frame, coefficients in zip(ours, arbitrary):
            assert np.array_equal(frame, np.asarray(pil.transform(pil.size, Image.AFFINE, list(coefficients),
                                                                  Image.BILINEAR)))


@pytest.mark.parametrize("size", [(7, 5), (256, 341), (64, 64)])
def test_translate_is_the_originals_nearest_affine(size):
    """translate's whole-pixel copy equals torchvision 0.2.1's NEAREST affine through Pillow,
    shifts past the image's width included, whole and in a window."""
    image = np.random.default_rng(1).integers(0, 256, (*size, 3), dtype=np.uint8)
    params = {"frames": 2 * size[1] + 5, "centre": size[1] + 2}
    kernel = PERTURBATIONS.get("translate")
    frames = kernel.apply(image, params, None)
    pil = Image.fromarray(image)
    for i, frame in enumerate(frames):
        assert np.array_equal(frame, np.asarray(affine(pil, translate=(i - params["centre"], 0)))), i
    window = (1, 2, size[0] - 2, size[1] - 3)
    top, left, rows, cols = window
    assert np.array_equal(kernel.apply(image, params, None, window=window), frames[:, top:top + rows, left:left + cols])


@pytest.mark.parametrize("size", [(256, 341), (33, 47), (500, 375)])
def test_tilt_is_opencvs_three_channel_warp(size):
    """tilt warps the image with a fourth channel (OpenCV's faster path): the frames equal
    ``cv2.warpPerspective`` of the three-channel image itself."""
    image = np.random.default_rng(2).integers(0, 256, (*size, 3), dtype=np.uint8)
    params = {"frames": 7, "centre": 3, "angle_scale": 5.0}
    frames = PERTURBATIONS.get("tilt").apply(image, params, None)
    for i, frame in enumerate(frames):
        matrix = tilt_matrix(size[1], size[0], params["angle_scale"] * (i - params["centre"]))
        assert np.array_equal(frame, cv2.warpPerspective(image, matrix, (size[1], size[0])))


def literal_levels(values: np.ndarray, table: np.ndarray, state: np.ndarray, frames: int) -> np.ndarray:
    """``sample_levels`` as its docstring states it (positions x frames), with NumPy's own
    SFC64: position k takes ceil(F / 2) words; frame f uses word f // 2, low half when f is even;
    column = top 8 bits, kept when the low 24 bits fall under the entry's threshold, else the
    entry's alias."""
    per_position = (frames + 1) // 2
    generator = np.random.SFC64()
    words = generator.state
    words["state"]["state"] = state.copy()
    generator.state = words
    raw = generator.random_raw(len(values) * per_position).reshape(len(values), per_position)
    halves = np.stack([raw & np.uint64(0xFFFFFFFF), raw >> np.uint64(32)], axis=2).reshape(len(values), -1)
    draws = halves[:, :frames].T.astype(np.uint32)
    column = draws >> np.uint32(24)
    entry = table[(values.astype(np.uint32)[None, :] << np.uint32(8)) | column]
    return np.where((draws & np.uint32(0xFFFFFF)) < (entry >> np.uint32(8)), column, entry & np.uint32(0xFF)).astype(
        np.uint8).T


@pytest.mark.parametrize("positions, frames", [(105, 30), (104, 7), (1, 1), (3, 2)])
def test_noise_draws_are_numpys_sfc64_through_the_alias_table(positions, frames):
    rng = np.random.default_rng(positions)
    values = rng.integers(0, 256, positions).astype(np.uint8)
    table = level_table("shot_noise", 60.0)
    state = PERTURBATIONS.get("shot_noise").draw(rng, (positions,), {})
    out = np.empty((positions, (frames + 1) // 2), np.uint16)
    advanced = state.copy()
    _native.sample_levels(values, table, advanced, out, sys.byteorder == "little")
    assert np.array_equal(out.view(np.uint8)[:, :frames], literal_levels(values, table, state, frames))
    other_order = np.empty_like(out)  # the packing a big-endian machine uses: the same bytes there
    _native.sample_levels(values, table, state.copy(), other_order, sys.byteorder != "little")
    assert np.array_equal(other_order.byteswap(), out)
    assert not np.array_equal(advanced, state)


@pytest.mark.parametrize("perturbation, constant", [("gaussian_noise", 0.03), ("gaussian_noise", 0.0),
                                                    ("speckle_noise", 0.15), ("shot_noise", 300.0),
                                                    ("shot_noise", 0.7)])
def test_alias_tables_give_each_level_its_weight_exactly(perturbation, constant):
    """A column drawn uniformly (1 / 256) keeps its own level with threshold / 2^24, else gives
    its alias: summed over columns, each level's probability is its weight / 2^32, exactly."""
    weights = level_weights(CUMULATIVE[perturbation](constant))
    assert np.all(weights.sum(axis=1) == 1 << 32) and np.all(weights >= 0)
    table = level_table(perturbation, constant).reshape(256, 256).astype(np.int64)
    threshold, alias = table >> 8, table & 0xFF
    implied = np.zeros((256, 256), np.int64)
    rows = np.repeat(np.arange(256), 256)
    np.add.at(implied, (rows, np.tile(np.arange(256), 256)), threshold.ravel())
    np.add.at(implied, (rows, alias.ravel()), (1 << 24) - threshold.ravel())
    assert np.array_equal(implied, weights)


def test_alias_tables_refuse_weights_that_are_not_a_distribution():
    for row in ([1 << 31, 1 << 30], [1 << 32, 1]):  # short of 2^32, and over it
        weights = np.zeros((1, 256), np.int64)
        weights[0, :2] = row
        with pytest.raises(ValueError, match="2\\^32"):
            _native.alias_entries(weights)


def _formula_draws(perturbation: str, constant: float, value: int, count: int, rng) -> np.ndarray:
    """The originals' formulas, literally, with NumPy's draws (torch's randn_like for gaussian
    noise: float32 normals)."""
    if perturbation == "gaussian_noise":
        x = np.float32(value) / np.float32(255)
        noisy = x + np.float32(constant) * rng.standard_normal(count, dtype=np.float32)
        return (np.clip(noisy, 0, 1) * np.float32(255)).astype(np.uint8)
    x = value / 255.0
    if perturbation == "speckle_noise":
        return (255 * np.clip(x + x * rng.normal(size=count, scale=constant), 0, 1)).astype(np.uint8)
    return (255 * np.clip(rng.poisson(x * constant, count) / constant, 0, 1)).astype(np.uint8)


@pytest.mark.parametrize("perturbation, constant", [("gaussian_noise", 0.03), ("gaussian_noise", 0.08),
                                                    ("speckle_noise", 0.05), ("speckle_noise", 0.15),
                                                    ("shot_noise", 300.0), ("shot_noise", 60.0)])
def test_level_distributions_are_the_originals_formulas(perturbation, constant):
    """For input levels across the range (clipped ends included), the levels the kernel draws
    and the originals' formulas fed NumPy's draws have the same distribution: both histograms
    within 5 binomial standard deviations (+ 1e-4) of the tabulated probabilities."""
    count = 200_000
    rng = np.random.default_rng(11)
    cumulative = CUMULATIVE[perturbation](constant)
    table = level_table(perturbation, constant)
    for value in (0, 3, 40, 128, 200, 251, 255):
        expected = np.clip(np.diff(cumulative[value]), 0, 1)
        tolerance = 5 * np.sqrt(expected * (1 - expected) / count) + 1e-4
        formula = np.bincount(_formula_draws(perturbation, constant, value, count, rng), minlength=256) / count
        state = PERTURBATIONS.get(perturbation).draw(rng, (1,), {})
        out = np.empty((1, count // 2), np.uint16)  # one position, count frames: count independent draws
        _native.sample_levels(np.array([value], np.uint8), table, state, out, sys.byteorder == "little")
        out = out.view(np.uint8)
        ours = np.bincount(out.ravel(), minlength=256) / count
        assert np.all(np.abs(formula - expected) <= tolerance), (perturbation, value, "formula vs table")
        assert np.all(np.abs(ours - expected) <= tolerance), (perturbation, value, "draws vs table")
    if perturbation != "shot_noise":  # the formulas' own points: x + 0 noise
        sigma_zero = CUMULATIVE[perturbation](0.0)
        assert np.array_equal(np.argmax(np.diff(sigma_zero, axis=1), axis=1), np.arange(256))


def test_gaussian_levels_follow_the_normal_cdf():
    """P(out < L) = Phi((L / 255 - x) / sigma), x = v / 255 in float32, from 0 to 1."""
    below = CUMULATIVE["gaussian_noise"](0.05)
    x = float(np.float32(100) / np.float32(255))
    assert below[100, 0] == 0 and below[100, 256] == 1
    assert below[100, 101] == pytest.approx(ndtr((101 / 255 - x) / 0.05), abs=1e-15)


@pytest.mark.parametrize("kernel", [[0.05, 0.1, 0.15, 0.7], [0.2, 0.8], [1.0], [0.3, 0.3, 0.4],
                                    [-0.5, 1.0, 0.5, 0.1, 2.0]])
def test_drip_is_numpys_same_convolution(kernel):
    """Bit for bit against np.convolve(mode='same') restated with numpy's elementwise float64
    operations (each rounded once, on any CPU): the full convolution's centre, taps added from
    the reversed kernel's first. np.convolve itself sums through the BLAS dot of the machine,
    whose order depends on the CPU, so against it the bound is the rounding of a short sum:
    (taps + 1) ulp of the sum of |terms|."""
    liquid = np.random.default_rng(3).random((23, 17))
    liquid[liquid < 0.6] = 0
    out = np.empty_like(liquid)
    _native.drip(liquid, np.asarray(kernel), out)
    size, height = len(kernel), liquid.shape[0]
    shift = size - 1 - (size - 1) // 2
    padded = np.vstack([np.zeros((size, liquid.shape[1])), liquid, np.zeros((size, liquid.shape[1]))])
    expected = np.zeros_like(liquid)
    magnitude = np.zeros_like(liquid)
    for tap, weight in enumerate(kernel[::-1]):
        rows = padded[size + tap - shift:size + tap - shift + height]
        expected = expected + rows * weight
        magnitude = magnitude + np.abs(rows * weight)
    assert np.array_equal(out, expected)
    numpys = np.apply_along_axis(lambda column: np.convolve(column, kernel, mode="same"), 0, liquid)
    assert np.all(np.abs(out - numpys) <= (size + 1) * np.finfo(float).eps * magnitude)


@pytest.mark.parametrize("shape, sigma", [((224, 224, 3), 0.25), ((37, 61, 3), 1.3), ((8, 5, 3), 0.9),
                                          ((64, 64, 3), 0.77)])
def test_gaussian_blur_levels_are_scipys_filter(shape, sigma):
    x = np.random.default_rng(4).integers(0, 256, shape).astype(np.uint8) / 255.0
    out = np.empty(shape, np.uint8)
    _native.gaussian_blur_levels(x, gaussian_kernel(sigma, 6.0), out)
    expected = (255 * gaussian_filter(x, (sigma, sigma, 0), mode="nearest", truncate=6.0)).astype(np.uint8)
    assert np.array_equal(out, expected)


def test_sparse_motion_blur_is_the_dense_sum_and_imagemagick(wand):
    """A sparse one-channel layer (snow's flakes) is blurred by scattering its nonzero pixels:
    the same bytes as the dense sum, and as ImageMagick itself, at every angle of a sweep."""
    from corruptions import native as shared
    rng = np.random.default_rng(5)
    layer = ((rng.random((70, 45)) > 0.985) * rng.integers(128, 256, (70, 45))).astype(np.uint8)
    layer[0, :3] = 255  # nonzero at the edge: the padding repeats it
    angles = [-150.0, -97.3, -45.0, 0.0, 31.0]
    sparse = motion_blur_angles(layer, 14, 4, angles)
    padded = np.pad(layer[..., None], ((29, 29), (29, 29), (0, 0)), mode="edge").astype(np.float64)
    padded = padded.reshape(padded.shape[0], -1)
    for frame, angle in zip(sparse, angles):
        dense = np.empty((*layer.shape, 1), np.uint8)
        shared.motion_blur_q16(padded, 29, *motion_taps(14, 4, angle), dense)
        assert np.array_equal(frame, dense[..., 0]), angle
        assert np.array_equal(frame, motion_blur(layer, 14, 4, angle, "imagemagick")), angle
