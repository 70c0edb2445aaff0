"""ImageNet-C-bar and CIFAR-10-C-bar (Mintun, Kirillov & Xie 2021): ten corruptions each,
chosen to be dissimilar from common augmentations, five levels each, for every variant whose
YAML has a ``c_bar`` section.

    from corruptions.bar import corrupt_bar, bar_benchmark
    out = corrupt_bar(image, "caustic_refraction", level=3, rng=np.random.default_rng(7), variant="imagenet")
"""
from __future__ import annotations

import numpy as np

from .. import as_rgb, check_severity
from .config import BarVariant, load_bar
from .registry import BAR, bar_names

__all__ = ["corrupt_bar", "bar_benchmark", "bar_names", "load_bar", "BarVariant", "BAR"]


def _bar(variant) -> BarVariant:
    return variant if isinstance(variant, BarVariant) else load_bar(variant)


def bar_benchmark(variant: str = "imagenet") -> list[str]:
    """The variant's C-bar corruptions, in its benchmark's order (ImageNet-C-bar's ten at 224 px,
    CIFAR-10-C-bar's ten at 32 px)."""
    return list(_bar(variant).names)


def corrupt_bar(image, name: str, level: int = 1, rng=None, variant="imagenet", draws=None) -> np.ndarray:
    """Apply C-bar corruption ``name`` at ``level`` (1-5) with ``variant``'s constants.

    Parameters
    ----------
    image : numpy.ndarray
        A square HxWx3 uint8 image (grey and RGBA converted), never modified.
    name : str
        One of ``bar_benchmark(variant)``.
    level : int
        1 to 5; its float severity is the variant's (the original's CSV).
    rng : numpy.random.Generator or int, optional
        Anything ``np.random.default_rng`` takes; the only source of randomness.
    variant : str or BarVariant
    draws : mapping, optional
        The original's parameters (``sample_parameters``'s mapping) instead of drawing them.

    Returns
    -------
    numpy.ndarray
        HxWx3 uint8.
    """
    image = as_rgb(image)
    if image.shape[0] != image.shape[1]:
        raise ValueError(f"C-bar corruptions take square images (the original's im_size), got {image.shape[:2]}")
    bar = _bar(variant)
    params = bar.params_for(name, check_severity(level))
    kernel = BAR.get(name)
    if draws is None:
        draws = kernel.draw(rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng), image.shape,
                            params)
    return kernel.apply(image, params, draws)
