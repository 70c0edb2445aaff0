"""Variant configs: one YAML per variant under ``configs/variants/`` holding every constant.

A malformed or incomplete file fails here, at load time, naming the file, the key and
what was expected, so that no corruption ever runs with a missing constant.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import yaml

from .registry import corruption_names, registered

CONFIG_DIR = Path(os.environ.get("CORRUPTIONS_CONFIG_DIR", Path(__file__).resolve().parents[1] / "configs"))
VARIANT_DIR = CONFIG_DIR / "variants"
VARIANTS = ("imagenet", "inception", "imagenet64", "tiny", "cifar")
SEVERITIES = (1, 2, 3, 4, 5)
# preprocessing steps a variant may list, with the keys each takes
PREPROCESS_OPS = {"resize_shorter": ("size",), "center_crop": ("size",),
                  "center_crop_fraction": ("fraction",), "resize": ("size",)}


class ConfigError(ValueError):
    """A config file that is malformed or incomplete."""


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    size: tuple[int, int]  # nominal (height, width)
    preprocess: tuple[Mapping, ...]  # steps from a source photo to a clean input
    # corruption -> five read-only parameter mappings, severity 1 first
    params: Mapping[str, tuple[Mapping, ...]]
    path: Path

    def params_for(self, corruption: str, severity: int) -> Mapping:
        return self.params[corruption][severity - 1]


def variant_names() -> list[str]:
    return list(VARIANTS)


@functools.lru_cache(maxsize=None)
def load_variant(name: str) -> Variant:
    """The variant called ``name`` (one of ``VARIANTS``), read from its YAML file."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; allowed: {', '.join(VARIANTS)}")
    return load_variant_file(VARIANT_DIR / f"{name}.yaml")


def load_variant_file(path: str | os.PathLike) -> Variant:
    path = Path(path)

    def fail(key: str, expected: str) -> ConfigError:
        return ConfigError(f"{path}: key {key!r}: expected {expected}")

    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: variant config not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise fail("<top level>", "a mapping with keys variant, description, size, corruptions")
    for key in ("variant", "description", "size", "preprocess", "corruptions"):
        if key not in doc:
            raise fail(key, "to be present")
    size = doc["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size)):
        raise fail("size", "[height, width] as two positive integers")
    steps = doc["preprocess"]
    if not isinstance(steps, list):
        raise fail("preprocess", "a list of steps like {op: resize_shorter, size: 256}")
    for index, step in enumerate(steps):
        op = step.get("op") if isinstance(step, dict) else None
        if op not in PREPROCESS_OPS:
            raise fail(f"preprocess[{index}].op", f"one of {', '.join(PREPROCESS_OPS)}")
        if set(step) != {"op", *PREPROCESS_OPS[op]}:
            raise fail(f"preprocess[{index}]", f"exactly the keys {['op', *PREPROCESS_OPS[op]]}, got {sorted(step)}")
    table = doc["corruptions"]
    if not isinstance(table, dict):
        raise fail("corruptions", "a mapping from corruption name to its constants")
    kernels = registered()
    unknown = sorted(set(table) - set(kernels))
    if unknown:
        raise fail(f"corruptions.{unknown[0]}", f"one of {', '.join(corruption_names('all'))}")
    params = {}
    for name in corruption_names("all"):
        spec = kernels[name]
        where = f"corruptions.{name}"
        entry = table.get(name)
        if not isinstance(entry, dict):
            raise fail(where, "a mapping with keys 'shared' and 'severities'")
        extra = sorted(set(entry) - {"shared", "severities"})
        if extra:
            raise fail(f"{where}.{extra[0]}", "only 'shared' and 'severities'")
        shared = entry.get("shared") or {}
        if not isinstance(shared, dict) or set(shared) != set(spec.shared_params):
            raise fail(f"{where}.shared", f"exactly the keys {list(spec.shared_params)}, got {_keys(shared)}")
        levels = entry.get("severities")
        if not (isinstance(levels, list) and len(levels) == len(SEVERITIES)):
            raise fail(f"{where}.severities", "a list of 5 mappings, severity 1 first")
        merged = []
        for severity, level in zip(SEVERITIES, levels):
            if not isinstance(level, dict) or set(level) != set(spec.severity_params):
                raise fail(f"{where}.severities[{severity}]",
                           f"exactly the keys {list(spec.severity_params)}, got {_keys(level)}")
            for key, value in level.items():
                if not isinstance(value, (int, float, str, list)) or isinstance(value, bool):
                    raise fail(f"{where}.severities[{severity}].{key}", "a number, a string or a list")
            merged.append(MappingProxyType({**shared, **level}))
        params[name] = tuple(merged)
    return Variant(str(doc["variant"]), str(doc["description"]), (size[0], size[1]),
                   tuple(MappingProxyType(step) for step in steps), MappingProxyType(params), path)


def _keys(value) -> list:
    return sorted(value) if isinstance(value, dict) else [type(value).__name__]
