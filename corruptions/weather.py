"""Weather corruptions: snow, frost, fog and spatter."""
from __future__ import annotations

import math

import cv2
import numpy as np

from ._ops import clipped_zoom, gaussian_nearest, to_uint8, to_unit, unit_to_uint8
from .assets import frost_texture
from .motion import motion_blur
from .registry import register


def normal_layer(rng: np.random.Generator, shape: tuple[int, int], mean: float, std: float) -> np.ndarray:
    """An HxW float32 layer of N(mean, std) draws (snow flakes, spatter liquid)."""
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(std) + np.float32(mean)


@register("snow", family="weather",
          severity_params=("mean", "std", "zoom", "threshold", "radius", "sigma", "blend"),
          shared_params=("angle_range", "backend"))
def snow(image, params, rng):
    height, width = image.shape[:2]
    x = to_unit(image)
    layer = clipped_zoom(normal_layer(rng, (height, width), params["mean"], params["std"]), float(params["zoom"]))
    layer[layer < params["threshold"]] = 0
    flakes = unit_to_uint8(layer)
    angle = rng.uniform(*params["angle_range"])
    flakes = to_unit(motion_blur(flakes, params["radius"], params["sigma"], angle, params["backend"]))[..., None]
    grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., None]
    blend = np.float32(params["blend"])
    x = blend * x + (1 - blend) * np.maximum(x, grey * np.float32(1.5) + np.float32(0.5))
    return unit_to_uint8(x + flakes + np.rot90(flakes, k=2))


def _frost_crop(textures, scale, shape, rng) -> np.ndarray:
    """A random crop of one of ``textures`` (the original's draw order: texture, row, column).

    For an image larger than the texture, the texture is first enlarged (bilinear) just
    enough to hold it: the original needs ``texture side > image side``.
    """
    height, width = shape
    texture = frost_texture(textures[rng.integers(len(textures))], float(scale))
    if texture.shape[0] <= height or texture.shape[1] <= width:
        grow = max((height + 1) / texture.shape[0], (width + 1) / texture.shape[1])
        size = (math.ceil(texture.shape[1] * grow), math.ceil(texture.shape[0] * grow))
        texture = cv2.resize(texture, size, interpolation=cv2.INTER_LINEAR)
    top = rng.integers(0, texture.shape[0] - height)
    left = rng.integers(0, texture.shape[1] - width)
    return texture[top:top + height, left:left + width]


@register("frost", family="weather", severity_params=("image_weight", "frost_weight"),
          shared_params=("textures", "texture_scale"))
def frost(image, params, rng):
    crop = _frost_crop(params["textures"], params["texture_scale"], image.shape[:2], rng)
    return to_uint8(np.float32(params["image_weight"]) * image + np.float32(params["frost_weight"]) * crop)


def plasma_fractal(mapsize: int, wibble_decay: float, rng: np.random.Generator) -> np.ndarray:
    """Diamond-square height map in [0, 1], ``mapsize`` a power of two; the original's
    draw order and its quirk ``wibble * uniform(-wibble, wibble)``."""
    if mapsize < 2 or mapsize & (mapsize - 1):
        raise ValueError(f"fog mapsize must be a power of two, got {mapsize}")
    n = mapsize
    grid = np.empty((n, n), np.float64)
    grid[0, 0] = 0
    step, wibble = n, 100.0

    def wibbled_mean(total):
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = grid[0:n:step, 0:n:step]
        squares = corners + np.roll(corners, -1, axis=0)
        squares += np.roll(squares, -1, axis=1)
        grid[half:n:step, half:n:step] = wibbled_mean(squares)
        centres = grid[half:n:step, half:n:step]
        corners = grid[0:n:step, 0:n:step]
        across = centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1)
        grid[0:n:step, half:n:step] = wibbled_mean(across)
        down = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0)
        grid[half:n:step, 0:n:step] = wibbled_mean(down)
        step //= 2
        wibble /= wibble_decay
    grid -= grid.min()
    return grid / grid.max()


@register("fog", family="weather", severity_params=("strength", "wibble_decay"), shared_params=("mapsize",))
def fog(image, params, rng):
    height, width = image.shape[:2]
    # The map is cropped from its top-left corner; an image larger than the variant's map
    # gets the next power of two that covers it.
    mapsize = max(int(params["mapsize"]), 1 << (max(height, width) - 1).bit_length())
    strength = params["strength"]
    x = image / 255.0
    peak = x.max()
    x = x + strength * plasma_fractal(mapsize, params["wibble_decay"], rng)[:height, :width, None]
    return unit_to_uint8(x * peak / (peak + strength))


@register("spatter", family="weather", severity_params=("mean", "std", "sigma", "threshold", "amount", "liquid"),
          shared_params=("water_rgb", "mud_rgb"))
def spatter(image, params, rng):
    height, width = image.shape[:2]
    x = to_unit(image)
    liquid = gaussian_nearest(normal_layer(rng, (height, width), params["mean"], params["std"]), float(params["sigma"]))
    liquid[liquid < params["threshold"]] = 0
    if params["liquid"] == "water":
        layer = unit_to_uint8(liquid)
        dist = cv2.distanceTransform(255 - cv2.Canny(layer, 50, 150), cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
        ridge = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float32)
        dist = cv2.blur(cv2.filter2D(dist, cv2.CV_8U, ridge), (3, 3)).astype(np.float32)
        sheen = liquid * dist
        peak = sheen.max()
        if peak == 0:
            # The original divides by this maximum: without Canny edges it gets NaN, which
            # np.uint8 turns into a black image. Kept, since the benchmark contains it.
            return np.zeros_like(image)
        sheen *= np.float32(params["amount"]) / peak
        colour = np.asarray(params["water_rgb"], np.float32) / 255
        return unit_to_uint8(x + sheen[..., None] * colour)
    if params["liquid"] == "mud":
        mask = gaussian_nearest((liquid > params["threshold"]).astype(np.float32), float(params["amount"]))
        mask[mask < 0.8] = 0
        mask = mask[..., None]
        colour = np.asarray(params["mud_rgb"], np.float32) / 255
        return unit_to_uint8(x * (1 - mask) + colour * mask)
    raise ValueError(f"spatter liquid must be 'water' or 'mud', got {params['liquid']!r}")
