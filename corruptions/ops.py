"""Shared image operations, written to reproduce the library calls of the originals.

Each says which original call it stands for; they work on any HxW, not only the nominal size.
"""
from __future__ import annotations

import decimal
import functools
import math

import numpy as np

from . import fixed_float, native


def to_unit(image: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [0, 1] (the originals' ``np.array(x) / 255.``, in float32)."""
    return image.astype(np.float32) * np.float32(1 / 255)


def unit_to_uint8(values: np.ndarray) -> np.ndarray:
    """``np.uint8(np.clip(x, 0, 1) * 255)`` for x on the [0, 1] scale."""
    return (np.clip(values, 0, 1) * 255).astype(np.uint8)


def correctly_rounded_exp(x: float) -> float:
    """exp(x) rounded once to the nearest float64. NumPy's exp (its AVX-512 code differs from
    the others in the last bit of 1 value in 20 here) and the C library's (FMA and non-FMA
    versions differ on 1 value in 1,400) depend on the CPU; this does not (50 digits, then one
    correctly rounded conversion)."""
    with decimal.localcontext() as context:
        context.prec = 50
        return float(decimal.Decimal(x).exp())


@functools.lru_cache(maxsize=256)
def gaussian_kernel(sigma: float, truncate: float) -> np.ndarray:
    """scipy.ndimage's 1-D Gaussian: radius ``int(truncate * sigma + 0.5)``, ``exp(-x^2 / (2
    sigma^2))`` normalised by its sum (numpy's pairwise sum, exact order for these lengths)."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.array([correctly_rounded_exp(value) for value in (-0.5 / (float(sigma) * float(sigma))) * (x * x)])
    weights /= weights.sum()
    weights.setflags(write=False)
    return weights


def _correlate2d(image: np.ndarray, weights: np.ndarray, reflect: bool, store=None) -> np.ndarray:
    """scipy's separable correlation of a float64 H x W (x C) image by ``weights`` along axis 0,
    then axis 1 (``store``: the dtype each pass's result is stored in, as scipy stores it)."""
    height, width = image.shape[:2]
    channels = image.shape[2] if image.ndim == 3 else 1
    source = np.ascontiguousarray(image, np.float64).reshape(height, width * channels)
    down = np.empty_like(source)
    native.correlate_down(source, weights, reflect, down)
    if store is not None:
        down = down.astype(store).astype(np.float64)
    out = np.empty_like(source)
    native.correlate_across(down, weights, channels, reflect, out)
    return out.reshape(image.shape)


def gaussian_nearest(image: np.ndarray, sigma: float, truncate: float) -> np.ndarray:
    """skimage ``gaussian(image, sigma, channel_axis=-1)`` (scipy, mode 'nearest') in float64,
    scipy's passes bit for bit: down the columns, then along the rows, each in scipy's order."""
    image = np.asarray(image, np.float64)
    if sigma <= 0:
        return image.copy()
    return _correlate2d(image, gaussian_kernel(float(sigma), float(truncate)), reflect=False)


def gaussian_nearest_float32(image: np.ndarray, sigma: float, truncate: float) -> np.ndarray:
    """skimage ``gaussian`` of a float32 image as scipy computes it: each axis in float64,
    the result of each pass stored as float32."""
    weights = gaussian_kernel(float(sigma), float(truncate))
    return _correlate2d(image, weights, reflect=False, store=np.float32).astype(np.float32)


@functools.lru_cache(maxsize=64)
def reflect_smoothing_matrix(n: int, sigma: float, truncate: float) -> np.ndarray:
    """The n x n matrix of scipy's ``gaussian_filter1d(mode='reflect')`` along one axis.

    'reflect' extends a signal by mirroring about its edges (d c b a | a b c d | d c b a),
    which is periodic with period 2n, so a kernel of any length (elastic_transform's reach
    several times the image size) folds onto n columns exactly.
    """
    weights = gaussian_kernel(float(sigma), float(truncate))
    radius = weights.size // 2
    matrix = np.zeros((n, n), np.float64)
    rows = np.arange(n)
    for offset, weight in zip(range(-radius, radius + 1), weights):
        source = (rows + offset) % (2 * n)
        source = np.where(source >= n, 2 * n - 1 - source, source)
        np.add.at(matrix, (rows, source), weight)
    matrix.setflags(write=False)
    return matrix


def smooth_reflect(field: np.ndarray, sigma: float, truncate: float) -> np.ndarray:
    """skimage ``gaussian(field, sigma, mode='reflect', truncate=...)`` of a 2-D float64 field,
    in float64 as the original (the elastic displacement fields)."""
    field = np.asarray(field, np.float64)
    if sigma <= 0:
        return field
    weights = gaussian_kernel(float(sigma), float(truncate))
    if weights.size // 2 <= 16:
        # a short kernel: scipy's passes; long ones, reaching past the field's edges too, are
        # cheaper as the folded matrices below (each product summed in a fixed order, not by BLAS)
        return _correlate2d(field, weights, reflect=True)
    rows = reflect_smoothing_matrix(field.shape[0], float(sigma), float(truncate))
    cols = reflect_smoothing_matrix(field.shape[1], float(sigma), float(truncate))
    return native.ordered_matmul(native.ordered_matmul(rows, field), np.ascontiguousarray(cols.T))


def correlate_reflect101(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``cv2.filter2D(image, -1, kernel)`` (correlation, BORDER_REFLECT_101) of an H x W x C float64
    image by an odd square float64 kernel, its nonzero taps summed in row-major order (adding a
    zero tap changes no sum)."""
    radius = kernel.shape[0] // 2
    height, width, channels = image.shape
    padded = np.pad(image, ((radius, radius), (radius, radius), (0, 0)), mode="reflect")  # numpy's reflect is 101
    rows, cols = np.nonzero(kernel)
    out = native.correlate2d_taps(padded.reshape(padded.shape[0], -1), rows, cols, kernel[rows, cols], height, width,
                                   channels)
    return out.reshape(image.shape)


def clipped_zoom(image: np.ndarray, factor: float) -> np.ndarray:
    """The originals' ``clipped_zoom`` of an H x W x C float32 image, as scipy computes it: central
    ceil(n / z) crop, ``scipy.ndimage.zoom(crop, (z, z, 1), order=1)`` (float64 inside, float32
    out), central trim to n; each axis uses its own length (the originals' images are square)."""
    height, width = image.shape[:2]
    crop_h, crop_w = int(math.ceil(height / factor)), int(math.ceil(width / factor))
    zoomed_h, zoomed_w = int(round(crop_h * factor)), int(round(crop_w * factor))
    if factor == 1 or zoomed_h < height or zoomed_w < width:
        return np.stack([scipy_clipped_zoom(image[..., c].astype(np.float64), factor)
                         for c in range(image.shape[2])], axis=-1).astype(np.float32)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    crop = np.ascontiguousarray(image[top:top + crop_h, left:left + crop_w], np.float32)
    return native.linear_zoom_window_channels(crop, zoomed_h, zoomed_w, (zoomed_h - height) // 2,
                                               (zoomed_w - width) // 2, height, width)


@functools.lru_cache(maxsize=64)
def disk_kernel(radius: float, alias_blur: float, min_grid_radius: int, small_ksize: int,
                large_ksize: int) -> np.ndarray:
    """The originals' ``disk``: an aliased disk on a grid of at least ``min_grid_radius``,
    normalised, then a Gaussian blur (``small_ksize`` up to that radius, ``large_ksize`` above)."""
    if radius <= min_grid_radius:
        coords = np.arange(-min_grid_radius, min_grid_radius + 1)
        ksize = (small_ksize, small_ksize)
    else:
        coords = np.arange(-radius, radius + 1)
        ksize = (large_ksize, large_ksize)
    xx, yy = np.meshgrid(coords, coords)
    aliased = np.array((xx ** 2 + yy ** 2) <= radius ** 2, dtype=np.float32)
    aliased /= np.sum(aliased)
    # the originals' cv2.GaussianBlur, as OpenCV's AVX2 code rounds it, on any CPU
    kernel = fixed_float.gaussian_blur(aliased, ksize[0], alias_blur)
    kernel.setflags(write=False)
    return kernel


def scipy_clipped_zoom(layer: np.ndarray, factor: float) -> np.ndarray:
    """The originals' ``clipped_zoom`` of a 2-D float layer with scipy itself (order 1), as the
    snow layer is made: central ceil(n / z) crop, ``scipy.ndimage.zoom``, central trim to n.
    Each axis uses its own length (the originals' images are square)."""
    height, width = layer.shape
    crop_h, crop_w = int(math.ceil(height / factor)), int(math.ceil(width / factor))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    crop = np.ascontiguousarray(layer[top:top + crop_h, left:left + crop_w], np.float64)
    zoomed_h, zoomed_w = (int(round(side * factor)) for side in crop.shape)  # scipy's output shape
    if factor == 1 or zoomed_h < height or zoomed_w < width:
        from scipy.ndimage import zoom  # the rare shapes: scipy itself
        zoomed = zoom(crop, (factor, factor), order=1)
        trim_top, trim_left = (zoomed.shape[0] - height) // 2, (zoomed.shape[1] - width) // 2
        return zoomed[trim_top:trim_top + height, trim_left:trim_left + width]
    # only the kept window of scipy's zoom, computed as scipy computes it (tested bit for bit)
    return native.linear_zoom_window(crop, zoomed_h, zoomed_w, (zoomed_h - height) // 2, (zoomed_w - width) // 2,
                                      height, width)
