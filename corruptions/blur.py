"""Blur corruptions: defocus, glass, motion, zoom and gaussian blur."""
from __future__ import annotations

import cv2
import numpy as np

from . import _native
from ._ops import clipped_zoom, disk_kernel, gaussian_nearest, to_unit, unit_to_uint8
from .motion import motion_blur as _motion_blur
from .registry import register


@register("defocus_blur", family="blur", severity_params=("radius", "alias_blur"), stochastic=False)
def defocus_blur(image, params, rng):
    kernel = disk_kernel(float(params["radius"]), float(params["alias_blur"]))
    # cv2.filter2D's default border (reflect 101), as the original
    return unit_to_uint8(cv2.filter2D(to_unit(image), -1, kernel))


@register("glass_blur", family="blur", severity_params=("sigma", "max_delta", "iterations"))
def glass_blur(image, params, rng):
    sigma, delta, iterations = float(params["sigma"]), int(params["max_delta"]), int(params["iterations"])
    height, width = image.shape[:2]
    x = (gaussian_nearest(to_unit(image), sigma) * 255).astype(np.uint8)
    # one (dx, dy) per visited pixel, drawn with randint(-d, d): +d never occurs
    rows, cols = max(height - 2 * delta, 0), max(width - 2 * delta, 0)
    offsets = rng.integers(-delta, delta, size=(iterations, rows, cols, 2), dtype=np.int16)
    _native.glass_shuffle(x, offsets, delta)
    return unit_to_uint8(gaussian_nearest(to_unit(x), sigma))


@register("motion_blur", family="blur", severity_params=("radius", "sigma"), shared_params=("angle_range", "backend"))
def motion_blur(image, params, rng):
    angle = rng.uniform(*params["angle_range"])
    return _motion_blur(image, params["radius"], params["sigma"], angle, params["backend"])


@register("zoom_blur", family="blur", severity_params=("stop", "step"), shared_params=("start",), stochastic=False)
def zoom_blur(image, params, rng):
    factors = np.arange(params["start"], params["stop"], params["step"])
    x = to_unit(image)
    total = np.zeros_like(x)
    for factor in factors:
        total += x if factor == 1 else clipped_zoom(x, float(factor))
    return unit_to_uint8((x + total) / np.float32(len(factors) + 1))


@register("gaussian_blur", family="blur", severity_params=("sigma",), stochastic=False)
def gaussian_blur(image, params, rng):
    return unit_to_uint8(gaussian_nearest(to_unit(image), float(params["sigma"])))
