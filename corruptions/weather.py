"""Weather corruptions: snow, frost, fog and spatter."""
from __future__ import annotations

import math

import cv2
import numpy as np

from . import native
from .assets import FROST_SHA256, frost_texture
from .blur import MOTION, uniform_angle
from .motion import motion_blur
from .ops import gaussian_nearest, gaussian_nearest_float32, scipy_clipped_zoom, to_unit, unit_to_uint8
from .registry import register
from .settings import (
    FRACTION,
    NONNEGATIVE,
    NUMBER,
    POSITIVE,
    POSITIVE_INT,
    RGB,
    checked,
    integer,
    listed,
    matrix,
    one_of,
)


def normal_layer(rng: np.random.Generator, shape: tuple[int, int], mean: float, std: float) -> np.ndarray:
    """An HxW float32 layer of N(mean, std) draws (snow flakes, spatter liquid)."""
    return native.standard_normal_f32(rng, shape) * np.float32(std) + np.float32(mean)


def _snow_draws(rng, shape, params):
    """The flake layer, then the blur angle (the original's order)."""
    layer = normal_layer(rng, shape[:2], params["mean"], params["std"])
    return layer, uniform_angle(rng, shape, params)


def snow_flakes(layer: np.ndarray, params, angle: float) -> np.ndarray:
    """The motion-blurred flake layer, HxWx1 float64 in [0, 1]: the layer zoomed (scipy,
    order 1), values below ``threshold`` cleared, stored as 8-bit grey, blurred at ``angle``."""
    zoomed = scipy_clipped_zoom(np.asarray(layer, np.float64), float(params["zoom"]))
    zoomed[zoomed < params["threshold"]] = 0
    flakes = unit_to_uint8(zoomed)
    return (motion_blur(flakes, params["radius"], params["sigma"], angle, params["backend"]) / 255.0)[..., None]


def snow_scene(image: np.ndarray, flakes: np.ndarray, params) -> np.ndarray:
    """``x' = b x + (1 - b) max(x, grey_scale * grey(x) + grey_offset)`` (float32, as the original),
    plus the flakes and the flakes turned by ``second_layer_quarter_turns`` x 90 degrees."""
    x = to_unit(image)
    grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)
    turned = np.ascontiguousarray(np.rot90(flakes, k=int(params["second_layer_quarter_turns"])))
    if turned.shape != flakes.shape:  # a quarter turn of a non-square image: numpy broadcasting fails as it would
        raise ValueError(f"snow: a {turned.shape[:2]} turned layer cannot be added to a {flakes.shape[:2]} image")
    return native.snow_blend_composite(x, grey, float(params["blend"]), float(params["grey_scale"]),
                                        float(params["grey_offset"]), np.ascontiguousarray(flakes[..., 0]),
                                        turned[..., 0])


@register("snow", family="weather",
          levels={"mean": NUMBER, "std": NONNEGATIVE, "zoom": POSITIVE, "threshold": NUMBER, "radius": POSITIVE,
                  "sigma": POSITIVE, "blend": FRACTION},
          shared={**MOTION, "grey_scale": NUMBER, "grey_offset": NUMBER,
                  "second_layer_quarter_turns": integer("an integer from 0 to 3", 0, 3)},
          sample=_snow_draws)
def snow(image, params, draws):
    layer, angle = draws
    return snow_scene(image, snow_flakes(layer, params, angle), params)


def _frost_texture(params, index: int, shape) -> np.ndarray:
    """Texture ``index`` of the list, enlarged (bilinear) just enough to cover an image larger
    than it (the original needs ``texture side > image side``)."""
    height, width = shape[:2]
    texture = frost_texture(params["textures"][index], float(params["texture_scale"]))
    if texture.shape[0] <= height or texture.shape[1] <= width:
        grow = max((height + 1) / texture.shape[0], (width + 1) / texture.shape[1])
        size = (math.ceil(texture.shape[1] * grow), math.ceil(texture.shape[0] * grow))
        texture = cv2.resize(texture, size, interpolation=cv2.INTER_LINEAR)
    return texture


def _frost_draws(rng, shape, params) -> tuple[int, int, int]:
    """(texture index, top, left), in the original's order."""
    index = int(rng.integers(len(params["textures"])))
    texture = _frost_texture(params, index, shape)
    top = int(rng.integers(0, texture.shape[0] - shape[0]))
    left = int(rng.integers(0, texture.shape[1] - shape[1]))
    return index, top, left


@register("frost", family="weather", levels={"image_weight": NONNEGATIVE, "frost_weight": NONNEGATIVE},
          shared={"textures": listed(FROST_SHA256, unique=False), "texture_scale": POSITIVE}, sample=_frost_draws)
def frost(image, params, draws):
    """``clip(image_weight * x + frost_weight * crop, 0, 255)`` on the 0-255 scale, float64."""
    index, top, left = draws
    height, width = image.shape[:2]
    crop = _frost_texture(params, index, image.shape)[top:top + height, left:left + width]
    return np.clip(float(params["image_weight"]) * image + float(params["frost_weight"]) * crop,
                   0, 255).astype(np.uint8)


def _power_of_two(value):
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 2 and not value & (value - 1) \
        else None


def plasma_fractal(mapsize: int, wibble_decay: float, rng, initial_wibble: float = 100.0) -> np.ndarray:
    """Diamond-square height map in [0, 1], ``mapsize`` a power of two; the original's
    draw order and its quirk ``wibble * uniform(-wibble, wibble)``. ``rng`` needs only
    ``uniform(low, high, shape)`` (a Generator, or a RandomState replaying the original)."""
    if mapsize < 2 or mapsize & (mapsize - 1):
        raise ValueError(f"fog mapsize must be a power of two, got {mapsize}")
    n = mapsize
    grid = np.empty((n, n), np.float64)
    grid[0, 0] = 0
    step, wibble = n, float(initial_wibble)
    while step >= 2:
        cells = (n // step, n // step)
        # the original draws inside each of its three means, in this order: each draw is
        # `wibble * uniform(-wibble, wibble)` added to a mean of four neighbours
        draws = [rng.uniform(-wibble, wibble, cells) for _ in range(3)]
        native.plasma_level(grid, step, wibble, *draws)
        step //= 2
        wibble /= wibble_decay
    grid -= grid.min()
    return grid / grid.max()


def fog_mapsize(params, shape) -> int:
    """The variant's map size, or the next power of two that covers a larger image (the map is
    cropped from its top-left corner)."""
    return max(int(params["mapsize"]), 1 << (max(shape[:2]) - 1).bit_length())


def _fog_draws(rng, shape, params) -> np.ndarray:
    return plasma_fractal(fog_mapsize(params, shape), params["wibble_decay"], rng, params["initial_wibble"])


@register("fog", family="weather", levels={"strength": POSITIVE, "wibble_decay": POSITIVE},
          shared={"mapsize": checked("a power of two >= 2", _power_of_two), "initial_wibble": POSITIVE},
          sample=_fog_draws)
def fog(image, params, fractal):
    """``clip((x + strength * fractal) * max(x) / (max(x) + strength), 0, 1)``, float64."""
    height, width = image.shape[:2]
    return native.fog_composite(image, np.ascontiguousarray(fractal[:height, :width]), float(params["strength"]))


def _spatter_layer(rng, shape, params) -> np.ndarray:
    return normal_layer(rng, shape[:2], params["mean"], params["std"])


SPATTER_SHARED = {
    "water_rgb": RGB, "mud_rgb": RGB, "truncate": POSITIVE,
    "canny_low": NONNEGATIVE, "canny_high": NONNEGATIVE,
    "distance_mask": one_of((0, 3, 5), "0, 3 or 5 (OpenCV's distance-transform mask)"),
    "distance_cap": POSITIVE, "box_blur": POSITIVE_INT, "ridge_kernel": matrix(3, 3),
    "mud_cutoff": FRACTION,
}


def liquid_layer(layer: np.ndarray, params) -> np.ndarray:
    """The drawn layer blurred (skimage gaussian, float64) and cleared below ``threshold``."""
    liquid = gaussian_nearest(np.asarray(layer, np.float64), float(params["sigma"]), float(params["truncate"]))
    liquid[liquid < params["threshold"]] = 0
    return liquid


def water_sheen(x: np.ndarray, liquid: np.ndarray, params, colour: np.ndarray, out: np.ndarray,
                bare: np.ndarray | None = None) -> bool:
    """Water on ``x`` (HxWx3 float32 in [0, 1]) into ``out``: the sheen m of the 8-bit layer
    (``liquid * 255`` truncated) times its ridge map, over its maximum, times ``amount``;
    ``uint8(clip(x + m colour, 0, 1) * 255)``. ``bare`` (``x`` alone as uint8) may be passed when
    it serves many frames. False, ``out`` untouched, when the layer has no edges (m is 0 / 0)."""
    layer = (liquid * 255).astype(np.uint8)
    bare = unit_to_uint8(x) if bare is None else bare
    return native.water_frame(x, bare, layer, sheen_ridges(layer, params), float(params["amount"]), colour, out)


def sheen_ridges(layer: np.ndarray, params) -> np.ndarray:
    """The water's ridge map (HxW uint8) of the 8-bit layer: its Canny edges' distance
    transform, capped, box-blurred and equalised, then the ridge filter and a box blur."""
    dist = cv2.distanceTransform(255 - cv2.Canny(layer, params["canny_low"], params["canny_high"]), cv2.DIST_L2,
                                 int(params["distance_mask"]))
    cap = float(params["distance_cap"])
    _, dist = cv2.threshold(dist, cap, cap, cv2.THRESH_TRUNC)
    box = (int(params["box_blur"]),) * 2
    dist = cv2.equalizeHist(cv2.blur(dist, box).astype(np.uint8))
    return cv2.blur(cv2.filter2D(dist, cv2.CV_8U, np.asarray(params["ridge_kernel"], np.float64)), box)


@register("spatter", family="weather",
          levels={"mean": NUMBER, "std": NONNEGATIVE, "sigma": POSITIVE, "threshold": NUMBER, "amount": POSITIVE,
                  "liquid": one_of(("water", "mud"))},
          shared=SPATTER_SHARED, sample=_spatter_layer)
def spatter(image, params, layer):
    """Water: ``x + m * water_rgb / 255`` with the sheen m; mud: ``x (1 - m) + mud_rgb / 255 * m``
    with m the blurred layer mask cleared below ``mud_cutoff``. float32 as the original."""
    x = to_unit(image)
    liquid = liquid_layer(layer, params)
    if params["liquid"] == "water":
        colour = np.asarray([c / 255.0 for c in params["water_rgb"]], np.float32)
        # The original divides by the sheen's maximum: without Canny edges it gets NaN, which
        # np.uint8 turns into a black image. Kept (the zeros stay), since the benchmark contains it.
        out = np.zeros_like(image)
        water_sheen(x, liquid, params, colour, out)
        return out
    mask = gaussian_nearest_float32((liquid > params["threshold"]).astype(np.float32), float(params["amount"]),
                                    float(params["truncate"]))
    mask[mask < params["mud_cutoff"]] = 0
    mask = mask[..., None]
    colour = np.asarray([c / 255.0 for c in params["mud_rgb"]], np.float32)
    return unit_to_uint8(x * (1 - mask) + colour * mask)
