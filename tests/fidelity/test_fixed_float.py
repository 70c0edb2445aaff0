"""``corruptions.fixed_float`` against OpenCV itself: its float GaussianBlur, warpAffine and
warpPerspective restated with every rounding fixed give OpenCV's AVX2 bytes (this CPU's OpenCV
runs its AVX2 code; on any CPU the restatement gives those bytes, which
``tests/unit/test_cpu_independence.py`` shows with lowered dispatch)."""
from fractions import Fraction

import cv2
import numpy as np
import pytest

from corruptions import fixed_float
from corruptions.config import VARIANT_DIR
from perturbations.geometry import tilt_matrix

opencv_runs_avx2 = pytest.mark.skipif(not fixed_float.OPENCV_RUNS_AVX2,
                                      reason="the oracle is OpenCV's AVX2 code, which this CPU cannot run")


def test_fma_rounds_once():
    """``fma32`` is ``a * b + c`` rounded once: here every exact value is a float64 (a product of
    two 24-bit significands plus a nearby float32 fits in 53 bits), rounded once to float32."""
    rng = np.random.default_rng(0)
    a, b, c = (rng.uniform(0.5, 2, 4000).astype(np.float32) * rng.choice([-1, 1], 4000).astype(np.float32)
               for _ in range(3))
    for x, y, z in zip(a, b, c):
        exact = Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z))
        assert Fraction(float(np.float64(x) * np.float64(y) + np.float64(z))) == exact
        assert fixed_float.fma32(x, y, z) == np.float32(float(exact))
    # a case where one rounding and two differ
    one_ulp = np.float32(1 + 2 ** -12)
    assert fixed_float.fma32(one_ulp, one_ulp, -np.float32(1 + 2 ** -11)) == np.float32(2 ** -24)
    assert np.float32(one_ulp * one_ulp) - np.float32(1 + 2 ** -11) == 0


@opencv_runs_avx2
@pytest.mark.parametrize("ksize", [3, 5])
def test_gaussian_blur_is_opencvs(ksize):
    """Widths 5 to 40 cover every mix of OpenCV's vector lanes, pairs and last odd column."""
    rng = np.random.default_rng(ksize)
    for sigma in (0.1, 0.4, 0.5, 0.6, 1.5):
        for width in range(5, 41):
            image = rng.random((width // 2 + 5, width), dtype=np.float32) * np.float32(rng.choice([1e-3, 1, 300]))
            assert np.array_equal(fixed_float.gaussian_blur(image, ksize, sigma),
                                  cv2.GaussianBlur(image, (ksize, ksize), sigma)), (sigma, width)


@opencv_runs_avx2
def test_every_configured_defocus_disk_is_opencvs():
    import yaml

    from corruptions.ops import disk_kernel
    count = 0
    for path in sorted(VARIANT_DIR.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())["corruptions"]["defocus_blur"]
        shared = spec["shared"]
        for level in spec["severities"]:
            radius, blur = float(level["radius"]), float(level["alias_blur"])
            small = radius <= shared["min_grid_radius"]  # the originals' disk(): a grid of at least 8
            grid = shared["min_grid_radius"] if small else radius
            ksize = shared["small_alias_ksize"] if small else shared["large_alias_ksize"]
            coords = np.arange(-grid, grid + 1)
            xx, yy = np.meshgrid(coords, coords)
            aliased = np.array((xx ** 2 + yy ** 2) <= radius ** 2, dtype=np.float32)
            aliased /= np.sum(aliased)
            ours = disk_kernel(radius, blur, shared["min_grid_radius"], shared["small_alias_ksize"],
                               shared["large_alias_ksize"])
            assert np.array_equal(ours, cv2.GaussianBlur(aliased, (ksize, ksize), sigmaX=blur)), (path.name, level)
            count += 1
    assert count == 25


@opencv_runs_avx2
@pytest.mark.parametrize("size", [32, 50, 64, 100, 224, 299])
def test_warp_affine_is_opencvs(size):
    """Float32 RGB, reflect-101 (elastic_transform's call); sizes with and without columns after
    the last 16-column block."""
    rng = np.random.default_rng(size)
    for _ in range(3):
        image = rng.random((size, size + 7, 3), dtype=np.float32)
        matrix = np.array([[1 + rng.normal() * .05, rng.normal() * .05, rng.normal() * 5],
                           [rng.normal() * .05, 1 + rng.normal() * .05, rng.normal() * 5]])
        assert np.array_equal(fixed_float.warp_affine(image, matrix, (size + 7, size), restated=True),
                              cv2.warpAffine(image, matrix, (size + 7, size), borderMode=cv2.BORDER_REFLECT_101))


@opencv_runs_avx2
@pytest.mark.parametrize("width, height", [(32, 32), (64, 64), (299, 299), (341, 256), (256, 384)])
def test_warp_perspective_is_opencvs_and_a_window_is_its_cut(width, height):
    """uint8 RGB, black border, by the tilt matrices (tilt's call, whose pre-crop inputs are not square)."""
    rng = np.random.default_rng(width * height)
    image = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (5, 5), 2)
    for degrees in (-15, -4.5, 0, 2.25, 15):
        matrix = tilt_matrix(width, height, degrees)
        theirs = cv2.cvtColor(cv2.warpPerspective(cv2.cvtColor(image, cv2.COLOR_RGB2RGBA), matrix, (width, height)),
                              cv2.COLOR_RGBA2RGB)
        assert np.array_equal(fixed_float.warp_perspective(image, matrix, (width, height), restated=True), theirs)
        window = (3, 5, height - 9, width - 12)
        assert np.array_equal(fixed_float.warp_perspective(image, matrix, (width, height), window, restated=True),
                              theirs[3:height - 6, 5:width - 7])


def test_the_restatement_refuses_what_it_does_not_restate():
    with pytest.raises(ValueError, match="ksize"):
        fixed_float.gaussian_blur(np.zeros((9, 9), np.float32), 7, 1.0)
    with pytest.raises(ValueError, match="2-D"):
        fixed_float.gaussian_blur(np.zeros((9, 9, 3), np.float32), 3, 1.0)
