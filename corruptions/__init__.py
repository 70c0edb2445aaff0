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
__version__ = "0.4.0"

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
    """Apply corruption ``name`` at ``severity`` (1-5) with ``variant``'s constants.

    ``rng`` is a ``numpy.random.Generator`` or anything ``np.random.default_rng`` takes
    (an int seed); it is the only source of randomness. ``draws`` replaces what the kernel
    would draw from ``rng`` (e.g. an original script's own draws, replayed). Returns a new
    HxWx3 uint8 array; ``image`` is never modified.
    """
    return corrupt_severities(image, name, [severity], [rng], variant,
                              None if draws is None else [draws])[0]


def corrupt_severities(image, name: str, severities, rngs, variant: str | Variant = "imagenet",
                       draws_seq=None) -> np.ndarray:
    """``corrupt(image, name, s, rng, variant)`` for each severity and its own ``rng`` (or its
    ``draws``), stacked (S x H x W x 3): new memory, with the work the severities share done
    once (the engine's path)."""
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
