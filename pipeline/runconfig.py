"""Run configs: which source, variant, corruptions, severities, outputs, seed and cluster.

A run config is a YAML file under ``configs/`` (one per dataset); any key can be
overridden from the command line. Every mistake is caught here, before any work starts,
with the key and the allowed values in the message.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from corruptions import corruption_names, variant_names
from corruptions.registry import GROUPS

from .readers import READERS

FORMATS = ("jpeg", "zarr", "cifar_npy")
COMPRESSORS = ("zstd", "blosc", "gzip", "none")
CLUSTER_KINDS = ("local", "address", "slurm", "pbs")

DEFAULTS: dict[str, Any] = {
    "name": "imagenet-c",
    "reader": "imagenet_folders",
    "source": None,
    "out": None,
    "variant": "imagenet",
    "corruptions": "all",
    "severities": [1, 2, 3, 4, 5],
    "seed": 0,
    "shard_size": 64,
    "allow_failures": False,
    "outputs": {
        "formats": ["jpeg", "zarr"],
        "jpeg": {"quality": 85, "optimize": True},
        "zarr": {"compressor": "zstd", "level": 1},
    },
    "cluster": {
        "kind": "local",
        "workers": None,  # local: one per core
        "threads_per_worker": 1,
        "memory_limit": "2GiB",
        "address": None,
        "jobs": 4,  # slurm / pbs: how many jobs to scale to
        "jobqueue": {},  # keyword arguments of dask_jobqueue.SLURMCluster / PBSCluster
    },
}
# keys that change the bytes written: a resumed run must agree on all of them
IDENTITY_KEYS = ("reader", "variant", "corruptions", "severities", "seed", "shard_size", "outputs")


class RunConfigError(ValueError):
    pass


def _merge(base: dict, update: dict, where: str) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        path = f"{where}{key}"
        if key not in base:
            raise RunConfigError(f"unknown key {path!r}; allowed: {', '.join(base)}")
        if isinstance(base[key], dict) and key != "jobqueue":
            if not isinstance(value, dict):
                raise RunConfigError(f"key {path!r}: expected a mapping with keys {', '.join(base[key])}")
            out[key] = _merge(base[key], value, path + ".")
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict:
    """``outputs.zarr.level=5`` -> {"outputs": {"zarr": {"level": 5}}} (values parsed as YAML)."""
    if "=" not in text:
        raise RunConfigError(f"override {text!r}: expected KEY=VALUE, e.g. outputs.zarr.level=5")
    key, value = text.split("=", 1)
    nested: dict = yaml.safe_load(value) if value.strip() else None
    for part in reversed(key.strip().split(".")):
        nested = {part: nested}
    return nested


def load_run_config(path: str | Path | None, overrides: list[dict] = ()) -> dict:
    """Defaults, then the YAML file, then each override; validated and resolved."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise RunConfigError(f"run config {path} not found")
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise RunConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(doc, dict):
            raise RunConfigError(f"{path}: expected a mapping of run settings")
        try:
            config = _merge(config, doc, "")
        except RunConfigError as exc:
            raise RunConfigError(f"{path}: {exc}") from None
    for override in overrides:
        config = _merge(config, override, "")
    return validate(config)


def _fail(key: str, expected: str, got: Any) -> RunConfigError:
    return RunConfigError(f"key {key!r}: expected {expected}, got {got!r}")


def validate(config: dict) -> dict:
    if config["reader"] not in READERS:
        raise _fail("reader", f"one of {', '.join(READERS)}", config["reader"])
    if config["variant"] not in variant_names():
        raise _fail("variant", f"one of {', '.join(variant_names())}", config["variant"])
    names = config["corruptions"]
    if isinstance(names, str):
        if names not in GROUPS:
            raise _fail("corruptions", f"one of {', '.join(GROUPS)} or a list of corruption names", names)
        names = corruption_names(names)
    if not isinstance(names, list) or not names:
        raise _fail("corruptions", "a non-empty list of corruption names", names)
    for name in names:
        if name not in corruption_names("all"):
            raise _fail("corruptions", f"names among {', '.join(corruption_names('all'))}", name)
    if len(set(names)) != len(names):
        raise _fail("corruptions", "each name once", names)
    config["corruptions"] = [n for n in corruption_names("all") if n in names]  # the paper's order
    severities = config["severities"]
    if (not isinstance(severities, list) or not severities or len(set(severities)) != len(severities)
            or any(isinstance(s, bool) or s not in (1, 2, 3, 4, 5) for s in severities)):
        raise _fail("severities", "a list of distinct values among 1, 2, 3, 4, 5", severities)
    config["severities"] = sorted(severities)
    for key in ("seed", "shard_size"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "seed" else 1):
            raise _fail(key, "a non-negative integer" if key == "seed" else "a positive integer", value)
    if not isinstance(config["allow_failures"], bool):
        raise _fail("allow_failures", "true or false", config["allow_failures"])
    outputs = config["outputs"]
    formats = outputs["formats"]
    if isinstance(formats, str):
        formats = outputs["formats"] = [formats]
    if not formats or any(f not in FORMATS for f in formats):
        raise _fail("outputs.formats", f"a list among {', '.join(FORMATS)}", formats)
    if "cifar_npy" in formats and config["reader"] not in ("cifar10", "cifar100"):
        raise _fail("outputs.formats", "cifar_npy only with the cifar10 / cifar100 readers", formats)
    quality = outputs["jpeg"]["quality"]
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise _fail("outputs.jpeg.quality", "an integer from 1 to 100", quality)
    if not isinstance(outputs["jpeg"]["optimize"], bool):
        raise _fail("outputs.jpeg.optimize", "true or false", outputs["jpeg"]["optimize"])
    if outputs["zarr"]["compressor"] not in COMPRESSORS:
        raise _fail("outputs.zarr.compressor", f"one of {', '.join(COMPRESSORS)}", outputs["zarr"]["compressor"])
    level = outputs["zarr"]["level"]
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 22:
        raise _fail("outputs.zarr.level", "an integer from 0 to 22", level)
    cluster = config["cluster"]
    if cluster["kind"] not in CLUSTER_KINDS:
        raise _fail("cluster.kind", f"one of {', '.join(CLUSTER_KINDS)}", cluster["kind"])
    if cluster["kind"] == "address" and not cluster["address"]:
        raise _fail("cluster.address", "a scheduler address such as tcp://host:8786 for kind 'address'", None)
    for key in ("workers", "jobs", "threads_per_worker"):
        value = cluster[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise _fail(f"cluster.{key}", "a positive integer", value)
    if not isinstance(cluster["jobqueue"], dict):
        raise _fail("cluster.jobqueue", "a mapping of dask-jobqueue arguments", cluster["jobqueue"])
    if not isinstance(config["name"], str) or not config["name"] or "/" in config["name"]:
        raise _fail("name", "a file name for the outputs", config["name"])
    return config


def identity(config: dict) -> dict:
    return {key: config[key] for key in IDENTITY_KEYS}


def identity_digest(config: dict) -> str:
    return hashlib.sha256(json.dumps(identity(config), sort_keys=True).encode()).hexdigest()
