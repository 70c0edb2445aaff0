"""Digital corruptions: brightness, contrast, elastic transform, pixelate, JPEG, saturate."""
from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from . import _native
from ._ops import smooth_reflect, to_unit, unit_to_uint8
from .registry import register

_VALUE, _SATURATION = 2, 1  # HSV channel indices


@register("brightness", family="digital", severity_params=("shift",), stochastic=False)
def brightness(image, params, rng):
    return _native.hsv_adjust(np.ascontiguousarray(image), _VALUE, 1.0, float(params["shift"]))


@register("saturate", family="digital", severity_params=("scale", "offset"), stochastic=False)
def saturate(image, params, rng):
    return _native.hsv_adjust(np.ascontiguousarray(image), _SATURATION, float(params["scale"]), float(params["offset"]))


@register("contrast", family="digital", severity_params=("factor",), stochastic=False)
def contrast(image, params, rng):
    x = image / 255.0
    means = x.mean(axis=(0, 1), keepdims=True)
    return unit_to_uint8((x - means) * params["factor"] + means)


@register("pixelate", family="digital", severity_params=("factor",), stochastic=False)
def pixelate(image, params, rng):
    height, width = image.shape[:2]
    factor = params["factor"]
    small = (max(int(width * factor), 1), max(int(height * factor), 1))
    pil = Image.fromarray(image).resize(small, Image.BOX).resize((width, height), Image.BOX)
    return np.asarray(pil).copy()


@register("jpeg_compression", family="digital", severity_params=("quality",), stochastic=False)
def jpeg_compression(image, params, rng):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=int(params["quality"]))
    return np.asarray(Image.open(buffer).convert("RGB")).copy()


@register("elastic_transform", family="digital", severity_params=("alpha", "sigma", "affine"), shared_params=("base",))
def elastic_transform(image, params, rng):
    base = params["base"]
    alpha, sigma, jitter = base * params["alpha"], base * params["sigma"], base * params["affine"]
    height, width = image.shape[:2]
    x = to_unit(image)
    # random affine: three points around the centre (x, y), each moved by up to `jitter` px
    cx, cy = np.float32(width // 2), np.float32(height // 2)
    half = np.float32(min(height, width) // 3)
    source = np.float32([[cx + half, cy + half], [cx + half, cy - half], [cx - half, cy - half]])
    target = source + rng.uniform(-jitter, jitter, size=source.shape).astype(np.float32)
    matrix = cv2.getAffineTransform(source, target)
    x = cv2.warpAffine(x, matrix, (width, height), borderMode=cv2.BORDER_REFLECT_101)
    # smooth random displacement fields, columns (dx) first, as the original draws them
    dx = smooth_reflect(rng.uniform(-1, 1, size=(height, width)), sigma, 3.0) * np.float32(alpha)
    dy = smooth_reflect(rng.uniform(-1, 1, size=(height, width)), sigma, 3.0) * np.float32(alpha)
    map_x = np.arange(width, dtype=np.float32)[None, :] + dx
    map_y = np.arange(height, dtype=np.float32)[:, None] + dy
    # map_coordinates(order=1, mode='reflect') == bilinear remap with half-sample mirroring
    out = cv2.remap(x, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return unit_to_uint8(out)
