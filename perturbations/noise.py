"""Noise sequences: frame 0 is the clean crop, frames 1.. are independent perturbations of it
(not cumulative), as ImageNet-P's noise kinds are made.

Each perturbed value depends on its own input level ``v`` alone, so it is drawn straight from
the distribution of the originals' quantised output given ``v`` (x = v / 255, ``trunc`` the
``np.uint8`` / ``ToPILImage`` truncation, Phi the standard normal CDF):

- gaussian_noise: ``trunc(255 clip(x + sigma n, 0, 1))``, n ~ N(0, 1) (x in float32, as
  torch's ``ToTensor``): P(out < L) = Phi((L / 255 - x) / sigma), L = 1..255.
- speckle_noise: ``trunc(255 clip(x + x sd n, 0, 1))``: P(out < L) = Phi((L / 255 - x) / (x sd));
  v = 0 stays 0.
- shot_noise: ``trunc(255 clip(K / photons, 0, 1))``, K ~ Poisson(photons x): P(out < L) =
  P(K <= the largest count whose level is below L), from ImageNet-C's Poisson tables.

Each level's probability is the difference of these cumulative probabilities rounded to
multiples of 2^-32, and a value's level is drawn with one 32-bit word through Walker's alias
tables (``_native.alias_entries``, exact in integers). The words are NumPy's ``SFC64`` seeded
from the ``rng`` passed in: a sequence's draws are that generator's 4-word state. The frames
therefore match the originals in distribution (up to float rounding at the level boundaries),
not bit for bit: gaussian_noise's original used torch's unseeded generator, and drawing the
quantised outcome costs a fraction of a float draw plus the formula.
"""
from __future__ import annotations

import functools
import sys

import cv2
import numpy as np
from scipy.special import ndtr

from corruptions.noise import poisson_tables
from corruptions.settings import NONNEGATIVE, PHOTONS

from . import _native
from .registry import register

LEVELS = 256
_BOUNDS = np.arange(1, LEVELS) / 255.0  # L / 255 for L = 1..255


def _point_masses(levels: np.ndarray) -> np.ndarray:
    """P(out < L) for outputs that are certain: ``levels[v]`` for each v."""
    return (np.arange(LEVELS + 1)[None, :] > levels[:, None]).astype(np.float64)


def _with_ends(below: np.ndarray) -> np.ndarray:
    """P(out < L) for L = 1..255 (256 x 255) framed by P(out < 0) = 0 and P(out < 256) = 1."""
    return np.hstack([np.zeros((LEVELS, 1)), below, np.ones((LEVELS, 1))])


def gaussian_cumulative(sigma: float) -> np.ndarray:
    """P(out < L), 256 x 257, for ``trunc(255 clip(x + sigma n, 0, 1))``."""
    x = np.arange(LEVELS, dtype=np.float32) / np.float32(255)
    if sigma == 0:
        return _point_masses((np.clip(x, 0, 1) * np.float32(255)).astype(np.uint8))
    return _with_ends(ndtr((_BOUNDS[None, :] - x.astype(np.float64)[:, None]) / sigma))


def speckle_cumulative(sd: float) -> np.ndarray:
    """P(out < L), 256 x 257, for ``trunc(255 clip(x + x sd n, 0, 1))``."""
    x = np.arange(LEVELS) / 255.0
    exact = _point_masses((np.clip(x, 0, 1) * 255).astype(np.uint8))
    if sd == 0:
        return exact
    with np.errstate(divide="ignore", invalid="ignore"):
        below = _with_ends(ndtr((_BOUNDS[None, :] - x[:, None]) / (x[:, None] * sd)))
    below[0] = exact[0]  # x = 0: no noise
    return below


def shot_cumulative(photons: float) -> np.ndarray:
    """P(out < L), 256 x 257, for ``trunc(255 clip(K / photons, 0, 1))``, K ~ Poisson(photons x)."""
    cdf, _, levels = poisson_tables(photons)  # cdf[v, k] = P(K <= k) for k < ceil(photons)
    counts_below = np.searchsorted(levels[:-1], np.arange(1, LEVELS), side="left")  # counts k with level(k) < L
    below = np.where(counts_below > 0, cdf[:, np.maximum(counts_below - 1, 0)], 0.0)
    return _with_ends(below)


CUMULATIVE = {"gaussian_noise": gaussian_cumulative, "speckle_noise": speckle_cumulative,
              "shot_noise": shot_cumulative}


def level_weights(below: np.ndarray) -> np.ndarray:
    """Each level's probability in units of 2^-32 (256 x 256 int64, rows summing to 2^32): the
    differences of the cumulative probabilities rounded to that grid."""
    below = np.clip(below, 0.0, 1.0)  # summed Poisson probabilities can pass 1 by an ulp
    if not np.all(np.diff(below, axis=1) >= 0):
        raise ValueError("a cumulative distribution must not decrease")
    grid = np.rint(below * 2.0 ** 32).astype(np.int64)
    grid[:, 0], grid[:, -1] = 0, 1 << 32
    return np.diff(grid, axis=1)


@functools.lru_cache(maxsize=64)
def level_table(perturbation: str, constant: float) -> np.ndarray:
    """The alias table (65,536 uint32: input level x column) of one noise and its constant."""
    table = _native.alias_entries(level_weights(CUMULATIVE[perturbation](float(constant)))).reshape(-1)
    table.setflags(write=False)
    return table


def _stream(rng, shape, params) -> np.ndarray:
    """A sequence's draws: the state (a, b, c, counter) of NumPy's SFC64 seeded from ``rng``."""
    seed = np.random.SeedSequence([int(word) for word in rng.integers(0, 2 ** 32, size=4, dtype=np.uint64)])
    return np.array(np.random.SFC64(seed).state["state"]["state"], np.uint64)


def _noisy_frames(image: np.ndarray, params, stream: np.ndarray, table: np.ndarray) -> np.ndarray:
    frames = np.empty((int(params["frames"]), *image.shape), np.uint8)
    frames[0] = image
    values = np.ascontiguousarray(image).reshape(-1)
    perturbed = len(frames) - 1
    pairs = np.empty((values.size, (perturbed + 1) // 2), np.uint16)  # written in the draws' order
    _native.sample_levels(values, table, np.array(stream, np.uint64), pairs, sys.byteorder == "little")
    cv2.transpose(pairs.view(np.uint8)[:, :perturbed], dst=frames[1:].reshape(perturbed, -1))
    return frames


@register("gaussian_noise", family="noise", levels={"sigma": NONNEGATIVE}, sample=_stream)
def gaussian_noise(image, params, stream):
    """Frame i >= 1: ``trunc(255 clip(x + sigma n_i, 0, 1))``, each value drawn from that
    output's distribution (``gaussian_cumulative``)."""
    return _noisy_frames(image, params, stream, level_table("gaussian_noise", params["sigma"]))


@register("shot_noise", family="noise", levels={"photons": PHOTONS}, sample=_stream)
def shot_noise(image, params, stream):
    """Frame i >= 1: ``trunc(255 clip(Poisson(photons x) / photons, 0, 1))``, each value drawn
    from that output's distribution (``shot_cumulative``)."""
    return _noisy_frames(image, params, stream, level_table("shot_noise", params["photons"]))


@register("speckle_noise", family="noise", levels={"sd": NONNEGATIVE}, sample=_stream)
def speckle_noise(image, params, stream):
    """Frame i >= 1: ``trunc(255 clip(x + x sd n_i, 0, 1))``, each value drawn from that
    output's distribution (``speckle_cumulative``)."""
    return _noisy_frames(image, params, stream, level_table("speckle_noise", params["sd"]))
