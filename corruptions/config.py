"""Variant configs: one YAML per variant under ``configs/variants/`` holding every constant.

A file is checked whole when it is loaded (every key present, every value of the type and
range its kernel declares), so no kernel ever runs with a missing or malformed constant;
a mistake names the file and the key.
"""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import yaml

from .locations import CONFIG_DIR
from .preprocess import STEPS, apply_step, to_rgb
from .registry import CORRUPTIONS, Registry
from .settings import ConfigError, Settings, numbers, text, validate

VARIANT_DIR = CONFIG_DIR / "variants"
VARIANTS = ("imagenet", "inception", "imagenet64", "tiny", "cifar")
SEVERITIES = (1, 2, 3, 4, 5)

__all__ = ["ConfigError", "Variant", "load_variant", "load_variant_file", "variant_names", "SEVERITIES"]


class VariantFile(Settings):
    variant: text()
    description: text()
    size: numbers(2, "[height, width] as two integers from 1 to 4096",
                  each=lambda v: isinstance(v, int) and 0 < v <= 4096)
    preprocess: Any
    corruptions: Any
    # ImageNet-P's constants (read by perturbations.config): named input and output stages, and
    # one entry per perturbation
    sequence_stages: Any = None
    perturbations: Any = None
    # ImageNet-C-bar's / CIFAR-10-C-bar's constants (read by corruptions.bar.config): the variant's
    # benchmark, one entry per corruption in its order
    c_bar: Any = None


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    size: tuple[int, int]  # nominal (height, width)
    preprocess: tuple[Mapping, ...]  # steps from a source photo to a clean input
    # corruption -> five read-only parameter mappings, severity 1 first
    params: Mapping[str, tuple[Mapping, ...]]
    path: Path
    sha256: str  # of the file's bytes: part of a run's identity

    def params_for(self, corruption: str, severity: int) -> Mapping:
        return self.params[corruption][severity - 1]


def variant_names() -> list[str]:
    return list(VARIANTS)


@dataclass(frozen=True)
class VariantSection:
    """The constants of one more benchmark in a variant's file (ImageNet-P's, C-bar's), with the
    file's ImageNet-C view (``variant``: name, nominal size, path, sha256)."""
    variant: Variant

    @property
    def name(self) -> str:
        return self.variant.name

    @property
    def size(self) -> tuple[int, int]:
        return self.variant.size


@functools.lru_cache(maxsize=None)
def load_variant(name: str) -> Variant:
    """The variant called ``name`` (one of ``VARIANTS``), read from its YAML file."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; allowed: {', '.join(VARIANTS)}")
    return load_variant_file(VARIANT_DIR / f"{name}.yaml")


MAX_YAML_NODES = 1_000_000  # values a config may hold once its aliases are expanded
MAX_YAML_BYTES = 16 << 20


class _BoundedLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing documents whose aliases expand beyond ``MAX_YAML_NODES``
    values or refer to themselves (a 'billion laughs' of a few hundred bytes would otherwise
    never finish loading, or printing)."""

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            _expanded_size(node, {}, set())
        return node


def _expanded_size(node, sizes: dict, open_nodes: set) -> int:
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise yaml.YAMLError("an alias refers to a value that contains it (a recursive document)")
    open_nodes.add(key)
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, sizes, open_nodes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, sizes, open_nodes) + _expanded_size(v, sizes, open_nodes)
                       for k, v in node.value)
    else:
        size = 1
    open_nodes.discard(key)
    if size > MAX_YAML_NODES:
        raise yaml.YAMLError(f"its aliases expand to more than {MAX_YAML_NODES} values (a 'billion laughs'?)")
    sizes[key] = size
    return size


def parse_yaml(text: str) -> Any:
    """``yaml.safe_load`` with bounded alias expansion (see ``_BoundedLoader``)."""
    if len(text) > MAX_YAML_BYTES:
        raise yaml.YAMLError(f"larger than {MAX_YAML_BYTES >> 20} MiB")
    return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass


def read_yaml(path: Path) -> Any:
    try:
        return parse_yaml(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def check_steps(steps: Any, where: str, prefix: str) -> tuple[Mapping, ...]:
    if not isinstance(steps, list):
        raise ConfigError(f"{where}: key {prefix.rstrip('.')!r}: expected a list of steps like "
                          "{op: resize_shorter, size: 256}")
    checked = []
    for index, step in enumerate(steps):
        key = f"{prefix.rstrip('.')}[{index}]"
        op = step.get("op") if isinstance(step, dict) else None
        if op not in STEPS:
            raise ConfigError(f"{where}: key '{key}.op': expected one of {', '.join(STEPS)}, got {op!r}")
        model = validate(STEPS[op], step, where, prefix=f"{key}.")
        checked.append(MappingProxyType(model.model_dump()))
    return tuple(checked)


def check_table(table: Any, registry: Registry, levels, where: str, level_word: str = "severities",
                section: str = "corruptions") -> Mapping[str, tuple[Mapping, ...]]:
    """Every kernel of ``registry`` with its shared constants and its level mappings (``levels``:
    a count, or a function of the kernel name giving it), each validated against the kernel's
    declared types. ``section`` is the table's key in the file, for messages."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: key {section!r}: expected a mapping from name to constants")
    kernels = registry.kernels()
    unknown = sorted(set(table) - set(kernels))
    if unknown:
        raise ConfigError(f"{where}: key '{section}.{unknown[0]}': unknown; allowed: {', '.join(kernels)}")
    params = {}
    for name, kernel in kernels.items():
        key = f"{section}.{name}"
        count = levels(name) if callable(levels) else levels
        entry = table.get(name)
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: key {key!r}: expected a mapping with keys 'shared' and '{level_word}'")
        extra = sorted(set(entry) - {"shared", level_word})
        if extra:
            raise ConfigError(f"{where}: unknown key '{key}.{extra[0]}'; allowed: shared, {level_word}")
        shared = validate(kernel.shared, entry.get("shared") or {}, where, prefix=f"{key}.shared.").model_dump()
        rows = entry.get(level_word)
        if not (isinstance(rows, list) and len(rows) == count):
            raise ConfigError(f"{where}: key '{key}.{level_word}': expected a list of {count} mappings, "
                              f"level 1 first, got {rows!r}")
        merged = []
        for level, row in enumerate(rows, start=1):
            values = validate(kernel.levels, row if row is not None else {}, where,
                              prefix=f"{key}.{level_word}[{level}].").model_dump()
            merged.append(MappingProxyType({**shared, **values}))
        params[name] = tuple(merged)
    return MappingProxyType(params)


def load_variant_file(path: str | os.PathLike) -> Variant:
    """A custom variant file, checked whole as the shipped ones are.

    Parameters
    ----------
    path : str or os.PathLike
        A YAML file laid out as ``configs/variants/imagenet.yaml``: ``variant``, ``size``,
        ``preprocess`` steps and a ``corruptions`` table (``shared`` constants and five
        ``severities`` per corruption).

    Returns
    -------
    Variant
        Its constants per corruption and severity (``params_for``), its preprocessing steps,
        size and the file's sha256.

    Raises
    ------
    ConfigError
        Naming the file, the key, what it must be and what it was.
    """
    path = Path(path)
    doc = read_yaml(path)
    head = validate(VariantFile, doc, str(path))
    params = check_table(head.corruptions, CORRUPTIONS, len(SEVERITIES), str(path))
    steps = check_steps(head.preprocess, str(path), "preprocess.")
    return Variant(head.variant, head.description, (head.size[0], head.size[1]), steps, params, path,
                   hashlib.sha256(path.read_bytes()).hexdigest())


def preprocess(image, variant) -> np.ndarray:
    """The clean HxWx3 uint8 input of ``variant`` (a ``Variant`` or its name) for a PIL image
    of any mode."""
    if isinstance(variant, str):
        variant = load_variant(variant)
    image = to_rgb(image)
    for step in variant.preprocess:
        image = apply_step(image, step)
    return np.asarray(image, dtype=np.uint8).copy()
