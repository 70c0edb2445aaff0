"""Registries of kernels, one per task (ImageNet-C's corruptions here; ImageNet-P has its own),
keyed by name; a registry refuses duplicates and names outside its task's list.

A kernel is two pure functions, as albumentations splits ``get_params`` from ``apply``:

- ``sample(rng, shape, params) -> draws``: every random quantity, drawn from a
  ``numpy.random.Generator`` (``None`` for deterministic kernels). A test can instead feed the
  draws an original script made, and a sequence can hold one draw across its frames.
- ``apply(image, params, draws) -> image``: ``image`` is an HxWx3 uint8 array it must not modify,
  ``params`` the merged shared and per-severity constants of one variant's YAML.
- optionally ``apply_many(image, params_seq, draws_seq) -> [image, ...]``: several severities of
  one image at once, sharing work between them (zoom_blur's zoomed copies); it must return what
  ``apply`` returns for each.
- ``windowed`` kernels (ImageNet-P's geometric ones) also take ``window=(top, left, height,
  width)`` and return only that region of every frame, the same bytes as cropping it after.

Each kernel declares the type of every constant (``shared`` and ``levels``: name -> field type
of ``corruptions.settings``), so a variant file is checked whole when it is loaded.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from pydantic import create_model

from .settings import Settings

Apply = Callable[[np.ndarray, Mapping, Any], np.ndarray]
Sample = Callable[[np.random.Generator, tuple, Mapping], Any]
ApplyMany = Callable[[np.ndarray, Sequence[Mapping], Sequence[Any]], list]


@dataclass(frozen=True)
class Kernel:
    name: str
    family: str  # noise, blur, weather, digital (the release's tarball groups)
    apply: Apply
    sample: Sample | None
    shared: type[Settings]  # constants common to every severity (or difficulty)
    levels: type[Settings]  # constants of one severity
    apply_many: ApplyMany | None = None
    windowed: bool = False

    @property
    def stochastic(self) -> bool:
        return self.sample is not None

    def draw(self, rng: np.random.Generator, shape: tuple, params: Mapping):
        return self.sample(rng, shape, params) if self.sample else None

    def __call__(self, image: np.ndarray, params: Mapping, rng: np.random.Generator) -> np.ndarray:
        return self.apply(image, params, self.draw(rng, image.shape, params))

    def apply_each(self, image: np.ndarray, params_seq: Sequence[Mapping], draws_seq: Sequence[Any]) -> list:
        """``[apply(image, p, d) for p, d in zip(params_seq, draws_seq)]``, shared where the kernel can."""
        if self.apply_many is not None:
            return list(self.apply_many(image, params_seq, draws_seq))
        return [self.apply(image, params, draws) for params, draws in zip(params_seq, draws_seq)]


def _model(name: str, fields: Mapping[str, Any]) -> type[Settings]:
    return create_model(name, __base__=Settings, **{key: (kind, ...) for key, kind in fields.items()})


@dataclass
class Registry:
    """The kernels of one task, in the order of the paper's tables."""
    task: str
    groups: Mapping[str, tuple[str, ...]]  # e.g. benchmark, extra; "all" is their concatenation
    modules: tuple[str, ...]  # importing these runs their @register decorators
    _kernels: dict[str, Kernel] = field(default_factory=dict)

    @property
    def order(self) -> tuple[str, ...]:
        return tuple(name for names in self.groups.values() for name in names)

    def register(self, name: str, *, family: str, levels: Mapping[str, Any], shared: Mapping[str, Any] = {},
                 sample: Sample | None = None, apply_many: ApplyMany | None = None, windowed: bool = False):
        """Decorator adding ``apply`` under ``name``; a second kernel of that name is an error."""
        if name not in self.order:
            raise ValueError(f"{name!r} is not one of {self.task}'s names: {', '.join(self.order)}")

        def add(apply: Apply) -> Apply:
            if name in self._kernels:
                raise ValueError(f"{self.task}: {name!r} is already registered")
            self._kernels[name] = Kernel(name, family, apply, sample, _model(f"{name}_shared", shared),
                                         _model(f"{name}_levels", levels), apply_many, windowed)
            return apply

        return add

    def _load(self) -> None:
        for module in self.modules:
            importlib.import_module(module)

    def get(self, name: str) -> Kernel:
        self._load()
        try:
            return self._kernels[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown {self.task} name {name!r}; allowed: {', '.join(self.order)}") from None

    def kernels(self) -> dict[str, Kernel]:
        self._load()
        return {name: self._kernels[name] for name in self.order if name in self._kernels}

    def names(self, group: str = "all") -> list[str]:
        if group == "all":
            return list(self.order)
        if group in self.groups:
            return list(self.groups[group])
        raise ValueError(f"unknown {self.task} group {group!r}; allowed: {', '.join([*self.groups, 'all'])}")

    def group_names(self) -> tuple[str, ...]:
        return (*self.groups, "all")


# ImageNet-C: the order of the paper's tables (Figure 1 / Table 1), then the four extra corruptions.
BENCHMARK = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
EXTRA = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
CORRUPTIONS = Registry("imagenet-c", {"benchmark": BENCHMARK, "extra": EXTRA},
                       ("corruptions.noise", "corruptions.blur", "corruptions.weather", "corruptions.digital"))
register = CORRUPTIONS.register
GROUPS = CORRUPTIONS.group_names()


def get(name: str) -> Kernel:
    return CORRUPTIONS.get(name)


def registered() -> dict[str, Kernel]:
    return CORRUPTIONS.kernels()


def corruption_names(group: str = "benchmark") -> list[str]:
    """Names in the order of the paper's tables: ``"benchmark"`` (15), ``"extra"`` (4) or ``"all"``."""
    return CORRUPTIONS.names(group)
