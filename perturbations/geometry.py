"""Geometric sequences (translate, rotate, tilt, scale, shear) and zoom blur: transforms of the
pre-crop image (the variant's ``input`` stage), cropped after by the ``output`` stage.

Affine maps are torchvision 0.2.1's ``functional.affine`` as the originals called it: PIL's
``Image.transform(size, AFFINE, inverse matrix, resample)``, output size = input size, black
outside, centre ``(W/2 + 0.5, H/2 + 0.5)`` in PIL coordinates, and the 0.2.1 shear (a
horizontal shear plus a ``cos(shear)`` vertical squeeze). Later torchvision releases changed
the centre and the shear; they are not the model.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from corruptions import fixed_float
from corruptions.settings import NUMBER, POSITIVE, integer

from . import _native
from .registry import register

CENTRE = integer("an integer (the frame index of the sweep's zero)", 0)


def inverse_affine(size: tuple[int, int], angle: float, translate: tuple[float, float], scale: float,
                   shear: float) -> list[float]:
    """The six coefficients PIL maps output to input pixels with, as torchvision 0.2.1 builds
    them: ``(1 / scale) / cos(shear) * [[cos(a + s), sin(a + s)], [-sin a, cos a]]`` plus offsets
    that keep the centre ``C`` fixed and move it by ``translate``."""
    centre_x, centre_y = size[0] * 0.5 + 0.5, size[1] * 0.5 + 0.5
    a, s = math.radians(angle), math.radians(shear)
    inverse_scale = 1.0 / scale
    d = math.cos(a + s) * math.cos(a) + math.sin(a + s) * math.sin(a)
    m = [math.cos(a + s), math.sin(a + s), 0, -math.sin(a), math.cos(a), 0]
    m = [inverse_scale / d * v for v in m]
    m[2] += m[0] * (-centre_x - translate[0]) + m[1] * (-centre_y - translate[1])
    m[5] += m[3] * (-centre_x - translate[0]) + m[4] * (-centre_y - translate[1])
    m[2] += centre_x
    m[5] += centre_y
    return m


def affine(image: Image.Image, angle: float = 0.0, translate=(0, 0), scale: float = 1.0, shear: float = 0.0,
           resample=Image.NEAREST) -> Image.Image:
    """torchvision 0.2.1 ``functional.affine`` (NEAREST unless told, as its default)."""
    return image.transform(image.size, Image.AFFINE, inverse_affine(image.size, angle, translate, scale, shear),
                           resample)


def full_window(image: np.ndarray, window) -> tuple[int, int, int, int]:
    """``window`` (top, left, height, width) of a frame, or the whole frame when it is None."""
    return (0, 0, *image.shape[:2]) if window is None else tuple(int(v) for v in window)


def bilinear_affine_frames(image: np.ndarray, transforms, window=None) -> np.ndarray:
    """``affine(pil, **t, resample=BILINEAR)`` for each ``t`` of ``transforms``, only the
    ``window`` (top, left, height, width; default the whole frame): F x h x w x 3. Pillow's
    bilinear transform reproduced in numba (tested bit for bit against Pillow)."""
    size = (image.shape[1], image.shape[0])
    coefficients = np.array([inverse_affine(size, t.get("angle", 0.0), t.get("translate", (0, 0)), t.get("scale", 1.0),
                                            t.get("shear", 0.0)) for t in transforms], np.float64)
    top, left, height, width = full_window(image, window)
    out = np.empty((len(coefficients), height, width, image.shape[2]), np.uint8)
    _native.pil_affine_bilinear(np.ascontiguousarray(image), coefficients.reshape(-1, 6), top, left, out)
    return out


@register("translate", family="temporal", shared={"centre": CENTRE}, windowed=True)
def translate(image, params, draws, window=None):
    """Frame i: shifted right by ``s = i - centre`` pixels, black fill: torchvision 0.2.1's
    NEAREST affine, whose whole-pixel shift is a copy (tested against Pillow)."""
    top, left, height, width = full_window(image, window)
    frames = np.zeros((params["frames"], height, width, image.shape[2]), np.uint8)
    rows = image[top:top + height]
    for i in range(params["frames"]):
        shift = i - params["centre"]
        first = min(max(shift - left, 0), width)  # output columns x with 0 <= left + x - shift < W
        last = max(min(image.shape[1] + shift - left, width), first)
        frames[i, :, first:last] = rows[:, left + first - shift:left + last - shift]
    return frames


@register("rotate", family="temporal", shared={"centre": CENTRE}, windowed=True)
def rotate(image, params, draws, window=None):
    """Frame i: turned ``i - centre`` degrees (clockwise on screen), bilinear, black corners."""
    return bilinear_affine_frames(image, [{"angle": i - params["centre"]} for i in range(params["frames"])], window)


@register("shear", family="temporal", shared={"centre": CENTRE}, windowed=True)
def shear(image, params, draws, window=None):
    """Frame i: torchvision 0.2.1 shear of ``i - centre`` degrees, bilinear, black fill."""
    return bilinear_affine_frames(image, [{"shear": i - params["centre"]} for i in range(params["frames"])], window)


@register("scale", family="temporal", shared={"step": NUMBER, "offset": NUMBER, "divisor": POSITIVE}, windowed=True)
def scale(image, params, draws, window=None):
    """Frame i: scaled by ``(i * step + offset) / divisor`` about the centre, bilinear, black fill."""
    step, offset, divisor = params["step"], params["offset"], params["divisor"]
    return bilinear_affine_frames(image, [{"scale": (i * step + offset) / divisor} for i in range(params["frames"])],
                                  window)


def tilt_matrix(width: int, height: int, degrees: float) -> np.ndarray:
    """The originals' 3x3 perspective ``P2 T RX(t) RY(t) P1``, t = ``degrees``, focal length
    ``f = sqrt(w^2 + h^2)``. P1 sends (x, y) to (x - w/2, y - h/2, 1, 1): z = 1, not 0, so even
    t = 0 is a shrink by f / (f + 1) about (w/2, h/2), not the identity (kept: it is the data)."""
    theta = phi = np.deg2rad(degrees)
    w, h = width, height
    f = np.sqrt(w ** 2 + h ** 2)
    p1 = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1], [0, 0, 1]])
    rx = np.array([[1, 0, 0, 0], [0, np.cos(theta), -np.sin(theta), 0], [0, np.sin(theta), np.cos(theta), 0],
                   [0, 0, 0, 1]])
    ry = np.array([[np.cos(phi), 0, -np.sin(phi), 0], [0, 1, 0, 0], [np.sin(phi), 0, np.cos(phi), 0], [0, 0, 0, 1]])
    t = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, f], [0, 0, 0, 1]])
    p2 = np.array([[f, 0, w / 2, 0], [0, f, h / 2, 0], [0, 0, 1, 0]])
    return p2 @ t @ rx @ ry @ p1


@register("tilt", family="temporal", shared={"centre": CENTRE, "angle_scale": NUMBER}, windowed=True)
def tilt(image, params, draws, window=None):
    """Frame i: ``cv2.warpPerspective`` (bilinear, black border) by the tilt matrix at
    ``angle_scale * (i - centre)`` degrees about both the x and y axes, as OpenCV's AVX2 code
    rounds it (``corruptions.fixed_float``: the same bytes on any CPU). Its result at a pixel
    depends on the whole output's width, which the window is computed within."""
    height, width = image.shape[:2]
    top, left, rows, cols = full_window(image, window)
    frames = np.empty((params["frames"], rows, cols, 3), np.uint8)
    for i in range(len(frames)):
        matrix = tilt_matrix(width, height, params["angle_scale"] * (i - params["centre"]))
        frames[i] = fixed_float.warp_perspective(image, matrix, (width, height), (top, left, rows, cols))
    return frames


@register("zoom_blur", family="temporal", shared={"step": POSITIVE}, windowed=True)
def zoom_blur(image, params, draws, window=None):
    """Frame 0 is the image; frame i the running mean, in float32, of the image and i copies
    zoomed by ``1 + step * k`` (k = 1..i, bilinear affine about the centre), truncated to uint8
    at every frame (torchvision's ``ToTensor`` / ``ToPILImage`` arithmetic)."""
    top, left, height, width = full_window(image, window)
    zooms = bilinear_affine_frames(image, [{"scale": 1 + params["step"] * i} for i in range(1, params["frames"])],
                                   window)
    frames = np.empty((params["frames"], height, width, image.shape[2]), np.uint8)
    _native.running_means(np.ascontiguousarray(image[top:top + height, left:left + width]), zooms, frames)
    return frames
