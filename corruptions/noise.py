"""Noise corruptions: gaussian, shot, impulse and speckle noise.

Draws come from the ``rng`` passed in (float32 where the original's float64 draws only
set a distribution), so outputs match the originals in distribution, not bit for bit.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import gammaln

from . import native
from .ops import to_unit, unit_to_uint8
from .registry import register
from .settings import FRACTION, NONNEGATIVE, PHOTONS


def standard_normal(rng, shape, params) -> np.ndarray:
    """One N(0, 1) float32 draw per value of the image."""
    return native.standard_normal_f32(rng, shape)


@register("gaussian_noise", family="noise", levels={"scale": NONNEGATIVE}, sample=standard_normal)
def gaussian_noise(image, params, noise):
    """``uint8(clip(x + scale * n, 0, 1) * 255)``, x in [0, 1], n ~ N(0, 1)."""
    return unit_to_uint8(to_unit(image) + noise * np.float32(params["scale"]))


GUIDE_BUCKETS = 64


@functools.lru_cache(maxsize=64)
def poisson_tables(photons: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per input level v: P(K <= k) for K ~ Poisson(v / 255 * photons) and k < photons; a
    guide table into it; and the output level of each k, ``uint8(clip(k / photons, 0, 1) * 255)``.
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
    # where a draw in [j / 64, (j + 1) / 64) starts looking: the first k with cdf > j / 64
    starts = np.arange(GUIDE_BUCKETS, dtype=np.float64) / GUIDE_BUCKETS
    guide = np.stack([np.searchsorted(row, starts, side="right") for row in cdf]).astype(np.int64)
    for table in (cdf, levels, guide):
        table.setflags(write=False)
    return cdf, guide, levels


def _uniforms(rng, shape, params) -> np.ndarray:
    return rng.random(int(np.prod(shape)))


@register("shot_noise", family="noise", levels={"photons": PHOTONS}, sample=_uniforms)
def shot_noise(image, params, uniforms):
    """``uint8(clip(Poisson(x * photons) / photons, 0, 1) * 255)``, sampled by inverse CDF per
    input level from the uniforms drawn (the exact Poisson distribution)."""
    cdf, guide, levels = poisson_tables(float(params["photons"]))
    return native.poisson_lookup(np.ascontiguousarray(image), uniforms, cdf, guide, levels)


def _impulse_draws(rng, shape, params) -> tuple[np.ndarray, np.ndarray]:
    return rng.random(shape, dtype=np.float32), rng.random(shape, dtype=np.float32)


@register("impulse_noise", family="noise", levels={"amount": FRACTION}, shared={"salt_vs_pepper": FRACTION},
          sample=_impulse_draws)
def impulse_noise(image, params, draws):
    """skimage ``random_noise(mode='s&p')``: each value is flipped with probability ``amount``,
    to 255 with probability ``salt_vs_pepper``, else to 0."""
    flip, salt = np.asarray(draws[0]), np.asarray(draws[1])
    # each threshold in its draws' dtype, as numpy compares an array with a Python float
    return native.salt_and_pepper(np.ascontiguousarray(image), flip, salt, flip.dtype.type(params["amount"]),
                                   salt.dtype.type(params["salt_vs_pepper"]))


@register("speckle_noise", family="noise", levels={"scale": NONNEGATIVE}, sample=standard_normal)
def speckle_noise(image, params, noise):
    """``uint8(clip(x + x * scale * n, 0, 1) * 255)``, n ~ N(0, 1)."""
    x = to_unit(image)
    return unit_to_uint8(x + x * noise * np.float32(params["scale"]))
