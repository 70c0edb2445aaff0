"""ImageNet-P's constants, read from the ``sequence_stages`` and ``perturbations`` sections of
each variant's YAML (the file ImageNet-C's constants live in; one file per variant).

- ``sequence_stages``: named lists of preprocessing steps (``corruptions.preprocess``): each
  perturbation names its ``input`` stage (photo -> kernel input: the clean crop, or the
  pre-crop image for the geometric ones) and its ``output`` stage (applied to every frame).
- ``perturbations``: per perturbation, ``shared`` constants and ``difficulties`` (three
  mappings for the noises, one for the others), checked against the kernel's declared types.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from corruptions.config import VariantSection, check_steps, check_table, load_variant, read_yaml
from corruptions.settings import ConfigError

from .registry import PERTURBATIONS, difficulties, split_kind


@dataclass(frozen=True)
class SequenceVariant(VariantSection):
    stages: Mapping[str, tuple[Mapping, ...]]
    params: Mapping[str, tuple[Mapping, ...]]  # perturbation -> one mapping per difficulty

    def params_for(self, kind: str) -> Mapping:
        perturbation, difficulty = split_kind(kind)
        return self.params[perturbation][difficulty - 1]

    def frames(self, kind: str) -> int:
        return int(self.params_for(kind)["frames"])


@functools.lru_cache(maxsize=None)
def load_sequences(name: str) -> SequenceVariant:
    """The ImageNet-P constants of variant ``name`` (ValueError naming the variants)."""
    variant = load_variant(name)
    doc = read_yaml(variant.path)
    where = str(variant.path)
    raw_stages = doc.get("sequence_stages")
    if not isinstance(raw_stages, dict) or not raw_stages:
        raise ConfigError(f"{where}: key 'sequence_stages': expected a mapping from stage name to a list of steps")
    stages = MappingProxyType({stage: check_steps(steps, where, f"sequence_stages.{stage}.")
                               for stage, steps in raw_stages.items()})
    params = check_table(doc.get("perturbations"), PERTURBATIONS, lambda p: len(difficulties(p)), where,
                         level_word="difficulties", section="perturbations")
    for perturbation, rows in params.items():
        for key in ("input", "output"):
            if rows[0][key] not in stages:
                raise ConfigError(f"{where}: key 'perturbations.{perturbation}.shared.{key}': expected one of "
                                  f"{', '.join(stages)}, got {rows[0][key]!r}")
    return SequenceVariant(variant, stages, params)
