"""Noise sequences: frame 0 is the clean crop, frames 1.. are independent perturbations of it
(not cumulative), as ImageNet-P's noise kinds are made. Draws come from the ``rng`` passed in,
so frames match the originals in distribution (gaussian_noise's original used torch's
unseeded generator; none could be matched bit for bit)."""
from __future__ import annotations

import numpy as np

from corruptions import _native
from corruptions.noise import _poisson_tables
from corruptions.settings import NONNEGATIVE, POSITIVE

from .registry import register


def to_tensor_scale(image: np.ndarray) -> np.ndarray:
    """torchvision's ``ToTensor`` values: uint8 / 255 in float32 (a division, as torch does)."""
    return image.astype(np.float32) / np.float32(255)


def _normals(rng, shape, params) -> np.ndarray:
    """One float32 N(0, 1) per value of every perturbed frame: (frames - 1, H, W, 3)."""
    return _native.standard_normal_f32(rng, (int(params["frames"]) - 1, *shape))


def _with_clean(image: np.ndarray, perturbed: np.ndarray) -> np.ndarray:
    out = np.empty((perturbed.shape[0] + 1, *image.shape), np.uint8)
    out[0] = image
    out[1:] = perturbed
    return out


@register("gaussian_noise", family="noise", levels={"sigma": NONNEGATIVE}, sample=_normals)
def gaussian_noise(image, params, normals):
    """Frame i >= 1: ``trunc(255 * clip(x + sigma * n_i, 0, 1))``, float32 (torch's arithmetic)."""
    x = to_tensor_scale(image)
    noisy = x + np.float32(params["sigma"]) * normals
    np.clip(noisy, 0, 1, out=noisy)
    noisy *= np.float32(255)
    return _with_clean(image, noisy.astype(np.uint8))


def _uniforms(rng, shape, params) -> np.ndarray:
    return rng.random((int(params["frames"]) - 1, int(np.prod(shape))))


@register("shot_noise", family="noise", levels={"photons": POSITIVE}, sample=_uniforms)
def shot_noise(image, params, uniforms):
    """Frame i >= 1: ``trunc(255 * clip(Poisson(photons * x) / photons, 0, 1))``, each value's
    count drawn by inverse CDF from one uniform (the exact Poisson distribution)."""
    cdf, guide, levels = _poisson_tables(float(params["photons"]))
    image = np.ascontiguousarray(image)
    frames = np.empty((uniforms.shape[0], *image.shape), np.uint8)
    for index, draws in enumerate(uniforms):
        frames[index] = _native.poisson_lookup(image, draws, cdf, guide, levels)
    return _with_clean(image, frames)


@register("speckle_noise", family="noise", levels={"sd": NONNEGATIVE}, sample=_normals)
def speckle_noise(image, params, normals):
    """Frame i >= 1: ``trunc(255 * clip(x + x * sd * n_i, 0, 1))`` (float32; the original's
    float64 draws only set the distribution)."""
    x = to_tensor_scale(image)
    noisy = normals * np.float32(params["sd"])
    noisy *= x
    noisy += x
    np.clip(noisy, 0, 1, out=noisy)
    noisy *= np.float32(255)
    return _with_clean(image, noisy.astype(np.uint8))
