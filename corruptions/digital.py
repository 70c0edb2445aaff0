"""Digital corruptions: brightness, contrast, elastic transform, pixelate, JPEG, saturate."""
from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from . import fixed_float, native
from .ops import smooth_reflect, to_unit, unit_to_uint8
from .registry import register
from .settings import FRACTION, NONNEGATIVE, NUMBER, POSITIVE, POSITIVE_INT, integer

_VALUE, _SATURATION = 2, 1  # HSV channel indices


def _hsv_levels(channel: int, scale_key: str | None, offset_key: str):
    """apply_many of an HSV kernel: the image's HSV computed once for every severity."""
    def apply_many(image, params_seq, draws_seq):
        scales = np.array([1.0 if scale_key is None else float(p[scale_key]) for p in params_seq])
        offsets = np.array([float(p[offset_key]) for p in params_seq])
        return list(native.hsv_adjust_many(np.ascontiguousarray(image), channel, scales, offsets))
    return apply_many


@register("brightness", family="weather", levels={"shift": NUMBER}, apply_many=_hsv_levels(_VALUE, None, "shift"))
def brightness(image, params, draws):
    """skimage rgb2hsv, ``V = clip(V + shift, 0, 1)``, hsv2rgb (float64)."""
    return native.hsv_adjust(np.ascontiguousarray(image), _VALUE, 1.0, float(params["shift"]))


@register("saturate", family="digital", levels={"scale": NONNEGATIVE, "offset": NUMBER},
          apply_many=_hsv_levels(_SATURATION, "scale", "offset"))
def saturate(image, params, draws):
    """skimage rgb2hsv, ``S = clip(S * scale + offset, 0, 1)``, hsv2rgb (float64)."""
    return native.hsv_adjust(np.ascontiguousarray(image), _SATURATION, float(params["scale"]), float(params["offset"]))


@register("contrast", family="digital", levels={"factor": NONNEGATIVE})
def contrast(image, params, draws):
    """``(x - mean) * factor + mean``, per-channel means, float64."""
    means = native.unit_channel_means(image)
    return native.contrast_stretch(image, means, float(params["factor"]))


@register("pixelate", family="digital", levels={"factor": FRACTION})
def pixelate(image, params, draws):
    """PIL box downsampling by ``factor`` and box upsampling back."""
    height, width = image.shape[:2]
    factor = params["factor"]
    small = (max(int(width * factor), 1), max(int(height * factor), 1))
    pil = Image.fromarray(image).resize(small, Image.BOX).resize((width, height), Image.BOX)
    return np.asarray(pil).copy()


@register("jpeg_compression", family="digital", levels={"quality": integer("an integer from 1 to 100", 1, 100)})
def jpeg_compression(image, params, draws):
    """A PIL JPEG round trip at ``quality``."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=int(params["quality"]))
    return np.asarray(Image.open(buffer).convert("RGB")).copy()


def _elastic_draws(rng, shape, params):
    """The original's order: the affine jitter (3 x 2, float32), then the dx and dy fields
    (uniform in +-field_range, float64)."""
    height, width = shape[:2]
    jitter = params["base"] * params["affine"]
    moves = rng.uniform(-jitter, jitter, size=(3, 2)).astype(np.float32)
    reach = params["field_range"]
    return moves, rng.uniform(-reach, reach, size=(height, width)), rng.uniform(-reach, reach, size=(height, width))


@register("elastic_transform", family="digital", levels={"alpha": NONNEGATIVE, "sigma": NONNEGATIVE,
                                                         "affine": NONNEGATIVE},
          shared={"base": POSITIVE, "smoothing_truncate": POSITIVE, "field_range": POSITIVE,
                  "affine_square_divisor": POSITIVE_INT},
          sample=_elastic_draws)
def elastic_transform(image, params, draws):
    """A random affine warp of three points around the centre (reflect-101 border), then a
    displacement by smoothed random fields times ``alpha`` (bilinear, mode 'reflect').
    ``alpha``, ``sigma`` and ``affine`` are multiples of ``base`` pixels."""
    moves, field_x, field_y = draws
    base = params["base"]
    alpha, sigma = base * params["alpha"], base * params["sigma"]
    height, width = image.shape[:2]
    x = to_unit(image)
    cx, cy = np.float32(width // 2), np.float32(height // 2)
    half = np.float32(min(height, width) // int(params["affine_square_divisor"]))
    source = np.float32([[cx + half, cy + half], [cx + half, cy - half], [cx - half, cy - half]])
    matrix = cv2.getAffineTransform(source, source + moves)
    x = fixed_float.warp_affine(x, matrix, (width, height))  # cv2.warpAffine, reflect-101, as its AVX2 code rounds
    truncate = float(params["smoothing_truncate"])
    dx = (smooth_reflect(field_x, sigma, truncate) * alpha).astype(np.float32)
    dy = (smooth_reflect(field_y, sigma, truncate) * alpha).astype(np.float32)
    return unit_to_uint8(native.bilinear_reflect(np.ascontiguousarray(x), dy, dx))
