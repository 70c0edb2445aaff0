"""The 19 ImageNet-C corruptions of Hendrycks & Dietterich (ICLR 2019), for every variant.

    from corruptions import corrupt, corruption_names
    out = corrupt(image, "glass_blur", severity=3, rng=np.random.default_rng(7), variant="imagenet")
"""
from __future__ import annotations

import numpy as np

from .config import SEVERITIES, Variant, load_variant, load_variant_file, variant_names
from .registry import CORRUPTIONS, corruption_names, get
from .seeding import rng_for
from .settings import ConfigError

__all__ = ["corrupt", "corrupt_severities", "corruption_names", "variant_names", "load_variant", "load_variant_file",
           "as_rgb", "rng_for", "ConfigError", "Variant", "MIN_SIDE", "CORRUPTIONS", "SEVERITIES"]
__version__ = "0.6.0"

MIN_SIDE = 8  # smaller images leave elastic_transform's affine points degenerate


def as_rgb(image) -> np.ndarray:
    """An HxWx3 uint8 view or copy of ``image``: HxW grey and HxWx1 are repeated, HxWx4
    loses its alpha (as PIL's ``convert("RGB")``); anything else raises ValueError."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image dtype must be uint8, got {image.dtype}; allowed: uint8")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"image shape must be HxW, HxWx1, HxWx3 or HxWx4, got {image.shape}")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ValueError(f"image sides must be at least {MIN_SIDE} pixels, got {image.shape[:2]}")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def check_severity(severity) -> int:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {list(SEVERITIES)}, got {severity!r}")
    return int(severity)


def corrupt(image, name: str, severity: int = 1, rng=None, variant: str | Variant = "imagenet",
            draws=None) -> np.ndarray:
    """Apply corruption ``name`` at ``severity`` with ``variant``'s constants.

    Parameters
    ----------
    image : numpy.ndarray
        HxWx3 uint8 (HxW grey and HxWx4 are converted to RGB, alpha dropped), at least 8 x 8;
        never modified.
    name : str
        One of ``corruption_names("all")``.
    severity : int
        1 to 5.
    rng : numpy.random.Generator or int, optional
        Anything ``np.random.default_rng`` takes; the only source of randomness.
    variant : str or Variant
        Whose constants: ``imagenet``, ``inception``, ``imagenet64``, ``tiny``, ``cifar`` or a
        ``load_variant_file`` result.
    draws : optional
        Replaces what the kernel would draw from ``rng`` (an original script's draws, replayed).

    Returns
    -------
    numpy.ndarray
        A new HxWx3 uint8 array: ``apply(image, params, sample(rng, shape, params))`` of the
        kernel, quantised by truncation as the originals' ``np.uint8``.

    Raises
    ------
    ValueError
        Unknown name or variant, a severity outside 1-5, another dtype or shape.
    """
    return corrupt_severities(image, name, [severity], [rng], variant,
                              None if draws is None else [draws])[0]


def corrupt_severities(image, name: str, severities, rngs, variant: str | Variant = "imagenet",
                       draws_seq=None) -> np.ndarray:
    """``corrupt(image, name, s, rng, variant)`` for each severity, stacked.

    Parameters
    ----------
    image, name, variant
        As for ``corrupt``.
    severities : sequence of int
        Severities in 1-5.
    rngs : sequence
        One generator (or seed) per severity.
    draws_seq : sequence, optional
        One set of draws per severity, replacing the rngs' draws.

    Returns
    -------
    numpy.ndarray
        (S, H, W, 3) uint8 in new memory, each severity's bytes those of ``corrupt``; the work
        the severities share (zoom blur's zooms, the HSV conversion) is done once (the
        engine's path).
    """
    kernel = get(name)
    variant = variant if isinstance(variant, Variant) else load_variant(variant)
    severities = [check_severity(s) for s in severities]
    if len(rngs) != len(severities) or (draws_seq is not None and len(draws_seq) != len(severities)):
        raise ValueError(f"one rng (and draws) per severity: {len(severities)} severities, {len(rngs)} rngs")
    rgb = as_rgb(image)
    params_seq = [variant.params_for(name, s) for s in severities]
    if draws_seq is None:
        draws_seq = [kernel.draw(np.random.default_rng(rng), rgb.shape, p) for rng, p in zip(rngs, params_seq)]
    out = np.empty((len(severities),) + rgb.shape, np.uint8)
    for index, result in enumerate(kernel.apply_each(rgb, params_seq, draws_seq)):
        out[index] = result
    return out
