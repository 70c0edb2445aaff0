"""Temporal sequences whose parameter sweeps with the frame: motion blur, snow, brightness,
gaussian blur and spatter. Snow holds one flake layer and spatter one liquid layer across the
whole sequence (drawn once from the ``rng`` passed in, as the originals draw them once)."""
from __future__ import annotations

import cv2
import numpy as np

from corruptions import native as shared_native
from corruptions.motion import BACKENDS, motion_blur_angles
from corruptions.ops import gaussian_kernel, gaussian_nearest, scipy_clipped_zoom, unit_to_uint8
from corruptions.settings import FRACTION, NONNEGATIVE, NUMBER, POSITIVE, integer, numbers, one_of
from corruptions.weather import SPATTER_SHARED, normal_layer, water_sheen

from . import _native
from .geometry import CENTRE
from .registry import register

WATER = {key: kind for key, kind in SPATTER_SHARED.items() if not key.startswith("mud_")}  # ImageNet-P has no mud

MOTION = {"radius": POSITIVE, "sigma": POSITIVE, "backend": one_of(BACKENDS)}


@register("motion_blur", family="temporal", shared={**MOTION, "centre": CENTRE, "angle_step": NUMBER})
def motion_blur(image, params, draws):
    """Frame i: ImageMagick's MotionBlurImage(radius, sigma, angle) at angle
    ``(i - centre) * angle_step`` degrees; every frame is blurred, only the direction turns."""
    angles = [(i - params["centre"]) * params["angle_step"] for i in range(params["frames"])]
    return motion_blur_angles(image, params["radius"], params["sigma"], angles, params["backend"])


def _snow_layer(rng, shape, params) -> np.ndarray:
    return normal_layer(rng, shape[:2], params["mean"], params["std"])


@register("snow", family="temporal",
          shared={**MOTION, "mean": NUMBER, "std": NONNEGATIVE, "zoom": POSITIVE, "threshold": NUMBER,
                  "blend": FRACTION, "grey_scale": NUMBER, "grey_offset": NUMBER,
                  "second_layer_quarter_turns": integer("an integer from 0 to 3", 0, 3),
                  "angle_start": NUMBER, "angle_step": NUMBER},
          sample=_snow_layer)
def snow(image, params, layer):
    """One flake layer per sequence: N(mean, std), zoomed (scipy order 1), cleared below
    ``threshold``, stored as 8-bit grey. Frame i: the layer motion-blurred at ``angle_start +
    angle_step * i`` degrees (s, on [0, 1]), then ``trunc(255 clip(b x + (1 - b) max(x,
    grey_scale grey(x) + grey_offset) + s + rot(s), 0, 1))``, x in float64 as the original."""
    zoomed = scipy_clipped_zoom(np.asarray(layer, np.float64), float(params["zoom"]))
    zoomed[zoomed < params["threshold"]] = 0
    flakes = unit_to_uint8(zoomed)
    x = image / 255.0
    grey = cv2.cvtColor(np.float32(x), cv2.COLOR_RGB2GRAY)[..., None]
    blend = params["blend"]
    scene = np.ascontiguousarray(blend * x + (1 - blend) * np.maximum(
        x, grey * params["grey_scale"] + params["grey_offset"]))
    angles = [i * params["angle_step"] + params["angle_start"] for i in range(params["frames"])]
    moving = motion_blur_angles(flakes, params["radius"], params["sigma"], angles, params["backend"])
    turned = np.ascontiguousarray(np.rot90(moving, k=params["second_layer_quarter_turns"], axes=(1, 2)))
    if turned.shape != moving.shape:  # a quarter turn of a non-square layer: numpy broadcasting fails as it would
        raise ValueError(f"snow: a {turned.shape[1:]} turned layer cannot be added to a {moving.shape[1:]} image")
    frames = np.empty((params["frames"], *image.shape), np.uint8)
    _native.snow_frames(scene, moving, turned, frames)
    return frames


@register("brightness", family="temporal", shared={"centre": CENTRE, "step": NUMBER, "divisor": POSITIVE})
def brightness(image, params, draws):
    """Frame i: skimage rgb2hsv, ``V = clip(V + c, 0, 1)`` with ``c = (i - centre) * step /
    divisor``, hsv2rgb, truncation (float64). Even c = 0 loses a level on some pixels."""
    shifts = np.array([(i - params["centre"]) * params["step"] / params["divisor"] for i in range(params["frames"])])
    return shared_native.hsv_adjust_many(np.ascontiguousarray(image), 2, np.ones(params["frames"]), shifts)


@register("gaussian_blur", family="temporal", shared={"sigma_start": POSITIVE, "sigma_step": NUMBER,
                                                      "truncate": POSITIVE})
def gaussian_blur(image, params, draws):
    """Frame i: ``trunc(255 gaussian(x, sigma_start + sigma_step i, truncate))``, skimage's
    filter (mode 'nearest') in float64 with scipy's summation order (at sigma 0.25 other orders
    tip 0.1% of values by a level); frame 0 is already blurred."""
    x = image / 255.0
    frames = np.empty((params["frames"], *image.shape), np.uint8)
    for i, frame in enumerate(frames):
        _native.gaussian_blur_levels(x, gaussian_kernel(params["sigma_start"] + params["sigma_step"] * i,
                                                        params["truncate"]), frame)
    return frames


def _liquid_layer(rng, shape, params) -> np.ndarray:
    return normal_layer(rng, shape[:2], params["mean"], params["std"])


@register("spatter", family="temporal",
          shared={**WATER, "mean": NUMBER, "std": NONNEGATIVE, "sigma": POSITIVE, "threshold": NUMBER,
                  "amount": POSITIVE, "drip": numbers(None, "a list of numbers (the drip kernel)")},
          sample=_liquid_layer)
def spatter(image, params, layer):
    """One liquid layer per sequence: N(mean, std), blurred (skimage gaussian, sigma), cleared
    below ``threshold``. Frame i: the water sheen m of the layer (as ImageNet-C's water
    spatter; ``amount`` its strength), ``trunc(255 clip(x + m water_rgb / 255, 0, 1))``
    (float32); then the layer drips (``drip``). A layer without Canny edges gives black frames:
    the original divides 0 by 0 and ``np.uint8(NaN)`` is 0 (kept: it is in the data)."""
    liquid = gaussian_nearest(np.asarray(layer, np.float64), float(params["sigma"]), float(params["truncate"]))
    liquid[liquid < params["threshold"]] = 0
    dripped = np.empty_like(liquid)
    x = image.astype(np.float32) / np.float32(255)
    bare = unit_to_uint8(x)
    colour = np.asarray([c / 255.0 for c in params["water_rgb"]], np.float32)
    kernel = np.asarray(params["drip"], np.float64)
    frames = np.zeros((params["frames"], *image.shape), np.uint8)
    for frame in frames:
        water_sheen(x, liquid, params, colour, frame, bare)
        _native.drip(liquid, kernel, dripped)
        liquid, dripped = dripped, liquid
    return frames
