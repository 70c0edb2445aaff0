"""Blur corruptions: defocus, glass, motion, zoom and gaussian blur."""
from __future__ import annotations

import numpy as np

from . import native
from .motion import BACKENDS
from .motion import motion_blur as _motion_blur
from .ops import clipped_zoom, correlate_reflect101, disk_kernel, gaussian_nearest, to_unit, unit_to_uint8
from .registry import register
from .settings import ANGLE_RANGE, ODD_SIZE, POSITIVE, POSITIVE_INT, one_of

GAUSSIAN = {"truncate": POSITIVE}  # scipy's gaussian_filter reach, in sigmas


@register("defocus_blur", family="blur", levels={"radius": POSITIVE, "alias_blur": POSITIVE},
          shared={"min_grid_radius": POSITIVE_INT, "small_alias_ksize": ODD_SIZE, "large_alias_ksize": ODD_SIZE})
def defocus_blur(image, params, draws):
    """Correlation with the originals' anti-aliased disk (their cv2.filter2D, reflect-101 border),
    in float64 as the original (float32 tips 3% of values by one level at severity 1): the disk's
    nonzero taps summed in row-major order, so the bits do not depend on the CPU."""
    kernel = disk_kernel(float(params["radius"]), float(params["alias_blur"]), int(params["min_grid_radius"]),
                         int(params["small_alias_ksize"]), int(params["large_alias_ksize"]))
    return unit_to_uint8(correlate_reflect101(image / 255.0, kernel.astype(np.float64)))


def _glass_offsets(rng, shape, params) -> np.ndarray:
    """(iterations, rows, cols, 2) offsets (dx, dy), one per visited pixel in the scan's order,
    each ``randint(-d, d)``: +d never occurs."""
    height, width = shape[:2]
    delta = int(params["max_delta"])
    rows, cols = max(height - 2 * delta, 0), max(width - 2 * delta, 0)
    return rng.integers(-delta, delta, size=(int(params["iterations"]), rows, cols, 2), dtype=np.int16)


@register("glass_blur", family="blur", levels={"sigma": POSITIVE, "max_delta": POSITIVE_INT,
                                               "iterations": POSITIVE_INT}, shared=GAUSSIAN, sample=_glass_offsets)
def glass_blur(image, params, offsets):
    """Gaussian blur (truncated to uint8), the sequential local pixel 'swaps', blur again."""
    sigma, truncate = float(params["sigma"]), float(params["truncate"])
    x = (gaussian_nearest(image / 255.0, sigma, truncate) * 255).astype(np.uint8)
    native.glass_shuffle(x, np.asarray(offsets, np.int16), int(params["max_delta"]))
    return unit_to_uint8(gaussian_nearest(x / 255.0, sigma, truncate))


def uniform_angle(rng, shape, params) -> float:
    return rng.uniform(*params["angle_range"])


MOTION = {"angle_range": ANGLE_RANGE, "backend": one_of(BACKENDS)}


@register("motion_blur", family="blur", levels={"radius": POSITIVE, "sigma": POSITIVE}, shared=MOTION,
          sample=uniform_angle)
def motion_blur(image, params, angle):
    """ImageMagick's MotionBlurImage(radius, sigma, angle)."""
    return _motion_blur(image, params["radius"], params["sigma"], angle, params["backend"])


def _zoom_mean(x: np.ndarray, params, zoomed: dict) -> np.ndarray:
    """Mean of ``x`` and its zooms by ``arange(start, stop, step)``; ``zoomed`` holds the zooms
    made so far (factor -> image), so severities that share a factor zoom once."""
    factors = np.arange(params["start"], params["stop"], params["step"])
    total = np.zeros_like(x)
    for factor in map(float, factors):
        if factor == 1:
            total += x
            continue
        if factor not in zoomed:
            zoomed[factor] = clipped_zoom(x, factor)
        total += zoomed[factor]
    return unit_to_uint8((x + total) / np.float32(len(factors) + 1))


def _zoom_blur_many(image, params_seq, draws_seq):
    """Every severity of one image: of their 58 zooms (imagenet) only 23 factors differ."""
    x, zoomed = to_unit(image), {}
    return [_zoom_mean(x, params, zoomed) for params in params_seq]


@register("zoom_blur", family="blur", levels={"stop": POSITIVE, "step": POSITIVE}, shared={"start": POSITIVE},
          apply_many=_zoom_blur_many)
def zoom_blur(image, params, draws):
    """Mean of the image and its ``clipped_zoom`` by each factor of ``arange(start, stop, step)``."""
    return _zoom_mean(to_unit(image), params, {})


@register("gaussian_blur", family="blur", levels={"sigma": POSITIVE}, shared=GAUSSIAN)
def gaussian_blur(image, params, draws):
    """skimage ``gaussian(x, sigma, channel_axis=-1)``, mode 'nearest'."""
    return unit_to_uint8(gaussian_nearest(image / 255.0, float(params["sigma"]), float(params["truncate"])))
