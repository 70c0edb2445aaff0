"""Noise corruptions: gaussian, shot, impulse and speckle noise.

Draws come from the ``rng`` passed in (float32 where the original's float64 draws only
set a distribution), so outputs match the originals in distribution, not bit for bit.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import gammaln

from . import _native
from ._ops import to_unit, unit_to_uint8
from .registry import register


@register("gaussian_noise", family="noise", severity_params=("scale",))
def gaussian_noise(image, params, rng):
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    return unit_to_uint8(to_unit(image) + noise * np.float32(params["scale"]))


@functools.lru_cache(maxsize=64)
def _poisson_tables(photons: float) -> tuple[np.ndarray, np.ndarray]:
    """Per input level v: P(K <= k) for K ~ Poisson(v / 255 * photons) and k < photons;
    and the output level of each k, ``uint8(clip(k / photons, 0, 1) * 255)``.
    Draws k >= photons all clip to 255, so the table stops there."""
    below = max(int(math.ceil(photons)), 1)
    lam = np.arange(256, dtype=np.float64) / 255.0 * photons
    k = np.arange(below, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_pmf = -lam[:, None] + k[None, :] * np.log(lam[:, None]) - gammaln(k + 1)[None, :]
    log_pmf[0] = -np.inf
    log_pmf[0, 0] = 0.0  # Poisson(0) is always 0
    cdf = np.cumsum(np.exp(log_pmf), axis=1)
    levels = unit_to_uint8(np.arange(below + 1, dtype=np.float64) / photons)
    return cdf, levels


@register("shot_noise", family="noise", severity_params=("photons",))
def shot_noise(image, params, rng):
    # np.random.poisson(x * c) / c, clipped and truncated: sampled by inverse CDF per level
    cdf, levels = _poisson_tables(float(params["photons"]))
    uniforms = rng.random(image.size)
    return _native.poisson_lookup(np.ascontiguousarray(image), uniforms, cdf, levels)


@register("impulse_noise", family="noise", severity_params=("amount",), shared_params=("salt_vs_pepper",))
def impulse_noise(image, params, rng):
    # skimage random_noise(mode='s&p'): per element, flipped with p = amount, then salt or pepper
    flipped = rng.random(image.shape, dtype=np.float32) <= params["amount"]
    salted = rng.random(image.shape, dtype=np.float32) <= params["salt_vs_pepper"]
    out = image.copy()
    out[flipped & salted] = 255
    out[flipped & ~salted] = 0
    return out


@register("speckle_noise", family="noise", severity_params=("scale",))
def speckle_noise(image, params, rng):
    x = to_unit(image)
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    return unit_to_uint8(x + x * noise * np.float32(params["scale"]))
