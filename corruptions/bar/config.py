"""ImageNet-C-bar's constants, read from the ``c_bar`` section of each variant's YAML (the file
ImageNet-C's and ImageNet-P's constants live in): per corruption, ``shared`` constants and five
``severities`` (the original's float severity of each level, level 1 first), checked against the
kernel's declared types. The section's order is the variant's benchmark (the original's CSV
order); a variant without the section has no C-bar benchmark."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from ..config import SEVERITIES, VariantSection, load_variant, read_yaml
from ..settings import ConfigError, validate
from .registry import BAR


@dataclass(frozen=True)
class BarVariant(VariantSection):
    names: tuple[str, ...]  # the benchmark's corruptions, in its order
    params: Mapping[str, tuple[Mapping, ...]]  # corruption -> one mapping per level

    def params_for(self, corruption: str, level: int) -> Mapping:
        if corruption not in self.params:
            raise ValueError(f"{corruption!r} is not a C-bar corruption of variant {self.name}; allowed: "
                             f"{', '.join(self.names)}")
        return self.params[corruption][level - 1]


def check_bar_table(table, where: str) -> Mapping[str, tuple[Mapping, ...]]:
    """The ``c_bar`` table: names among the registry's, each with ``shared`` and five
    ``severities`` validated against the kernel's declared types."""
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{where}: key 'c_bar': expected a mapping from corruption name to constants")
    kernels = BAR.kernels()
    params = {}
    for name, entry in table.items():
        key = f"c_bar.{name}"
        if name not in kernels:
            raise ConfigError(f"{where}: key {key!r}: unknown; allowed: {', '.join(kernels)}")
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: key {key!r}: expected a mapping with keys 'shared' and 'severities'")
        extra = sorted(set(entry) - {"shared", "severities"})
        if extra:
            raise ConfigError(f"{where}: unknown key '{key}.{extra[0]}'; allowed: shared, severities")
        kernel = kernels[name]
        shared = validate(kernel.shared, entry.get("shared") or {}, where, prefix=f"{key}.shared.").model_dump()
        rows = entry.get("severities")
        if not (isinstance(rows, list) and len(rows) == len(SEVERITIES)):
            raise ConfigError(f"{where}: key '{key}.severities': expected a list of {len(SEVERITIES)} mappings, "
                              f"level 1 first, got {rows!r}")
        params[name] = tuple(MappingProxyType({**shared, **validate(kernel.levels, row if row is not None else {}, where,
                                                                    prefix=f"{key}.severities[{level}].").model_dump()})
                             for level, row in enumerate(rows, start=1))
    return MappingProxyType(params)


@functools.lru_cache(maxsize=None)
def load_bar(name: str) -> BarVariant:
    """The C-bar constants of variant ``name`` (ValueError naming the variants; ConfigError
    where its file has no ``c_bar`` section or a wrong one)."""
    variant = load_variant(name)
    table = read_yaml(variant.path).get("c_bar")
    if table is None:
        raise ConfigError(f"{variant.path}: has no 'c_bar' section: variant {name} has no C-bar benchmark")
    params = check_bar_table(table, str(variant.path))
    return BarVariant(variant, tuple(params), params)
