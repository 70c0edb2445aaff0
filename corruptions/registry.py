"""The registry of corruption kernels, keyed by name; it refuses duplicates.

A kernel is a pure function ``kernel(image, params, rng) -> image``: ``image`` is an
HxWx3 uint8 array it must not modify, ``params`` the merged shared and per-severity
constants of one variant's YAML, ``rng`` a ``numpy.random.Generator``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Kernel = Callable[[np.ndarray, dict, np.random.Generator], np.ndarray]

# Order of the paper's tables (Figure 1 / Table 1), then the four extra corruptions.
BENCHMARK = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
EXTRA = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
GROUPS = ("benchmark", "extra", "all")


@dataclass(frozen=True)
class Corruption:
    name: str
    family: str  # noise, blur, weather, digital
    kernel: Kernel
    severity_params: tuple[str, ...]
    shared_params: tuple[str, ...]
    stochastic: bool


_REGISTRY: dict[str, Corruption] = {}


def register(name: str, *, family: str, severity_params: tuple[str, ...],
             shared_params: tuple[str, ...] = (), stochastic: bool = True):
    """Decorator adding a kernel under ``name``; a second kernel of that name is an error."""
    if name not in BENCHMARK + EXTRA:
        raise ValueError(f"{name!r} is not one of the benchmark's corruptions: {BENCHMARK + EXTRA}")

    def add(kernel: Kernel) -> Kernel:
        if name in _REGISTRY:
            raise ValueError(f"corruption {name!r} is already registered")
        _REGISTRY[name] = Corruption(name, family, kernel, tuple(severity_params),
                                     tuple(shared_params), stochastic)
        return kernel

    return add


def get(name: str) -> Corruption:
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown corruption {name!r}; allowed: {', '.join(corruption_names('all'))}") from None


def registered() -> dict[str, Corruption]:
    _load_families()
    return dict(_REGISTRY)


def corruption_names(group: str = "benchmark") -> list[str]:
    """Names in the order of the paper's tables: ``"benchmark"`` (15), ``"extra"`` (4) or ``"all"``."""
    if group == "benchmark":
        return list(BENCHMARK)
    if group == "extra":
        return list(EXTRA)
    if group == "all":
        return list(BENCHMARK + EXTRA)
    raise ValueError(f"unknown corruption group {group!r}; allowed: {', '.join(GROUPS)}")


def _load_families() -> None:
    # Importing the family modules runs their @register decorators.
    from . import blur, digital, noise, weather  # noqa: F401
