"""Run configs: which task, source, variant, corruptions, severities, outputs, seed and cluster.

The defaults are defined once, in the models below; a shipped run config under ``configs/``
holds only what differs from them, and any key can be overridden from the command line.
Every mistake is caught here, before anything is created, with the key and the allowed
values in the message.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from dask.utils import parse_bytes
from pydantic import create_model

from corruptions import SEVERITIES, corruption_names, variant_names
from corruptions.config import parse_yaml, read_yaml
from corruptions.locations import CONFIG_DIR
from corruptions.registry import GROUPS
from corruptions.settings import ConfigError, Settings, checked, flag, integer, listed, mapping, one_of, text, validate

from .cluster import BATCH_KINDS, check_cluster
from .formats import FORMATS, formats_for, reader_mistake
from .formats import SETTINGS as FORMAT_SETTINGS
from .formats.zarr_store import CODECS
from .readers import DEFAULT_MAX_PIXELS, READERS
from .tasks import TASKS, task_spec

RunConfigError = ConfigError
CLUSTER_KINDS = ("local", "address", "slurm", "pbs")


def _memory(value):
    try:
        return value if isinstance(value, str) and parse_bytes(value) > 0 else None
    except (ValueError, TypeError):
        return None


def _safe_name(value: str) -> bool:
    """A run's name becomes file names (``<name>.zarr``, job names): one short, plain component."""
    from .files import UnsafePath, check_name
    try:
        check_name(value)
    except UnsafePath:
        return False
    return len(value.encode()) <= 100 and not any(ord(c) < 32 for c in value)


def _chosen(allowed, groups, names_of):
    """A field type's check: a group name or a list of distinct names among ``allowed`` -> the
    names, in ``allowed``'s (the paper's) order."""
    def check(value):
        if isinstance(value, str):
            return tuple(names_of(value)) if value in groups else None
        if not isinstance(value, (list, tuple)) or not value or len(set(value)) != len(value):
            return None
        if any(not isinstance(v, str) or v not in allowed for v in value):
            return None
        return tuple(n for n in allowed if n in value)
    return check


def _names(value):
    """A group name or a list of corruption names -> the names, in the paper's order."""
    return _chosen(corruption_names("all"), GROUPS, corruption_names)(value)


SEQUENCE_GROUPS = ("test", "validation", "difficulties", "all")


def _bar_names(value):
    """``benchmark`` (the variant's C-bar corruptions, resolved by the task) or a list of
    distinct C-bar corruption names."""
    from corruptions.bar import bar_names
    if value == "benchmark":
        return value
    if not isinstance(value, (list, tuple)) or not value or len(set(value)) != len(value):
        return None
    return tuple(value) if all(isinstance(v, str) and v in bar_names() for v in value) else None


def _sequences(value):
    """A group name or a list of ImageNet-P sequence kinds -> the kinds, in the paper's order."""
    from perturbations import sequence_names
    return _chosen(sequence_names("all"), SEQUENCE_GROUPS, sequence_names)(value)


def _formats(value):
    if value == "default":
        return value
    if not isinstance(value, (list, tuple)) or not value or len(set(value)) != len(value):
        return None
    return tuple(value) if all(v in FORMATS for v in value) else None


# ``outputs``: the formats to write ('default': the task's) and each format's own settings section
Outputs = create_model(
    "Outputs", __base__=Settings,
    formats=(checked(f"'default' or a list of distinct formats among {', '.join(FORMATS)}", _formats), "default"),
    **{name: (settings, settings()) for name, settings in FORMAT_SETTINGS.items()})


class Cluster(Settings):
    kind: one_of(CLUSTER_KINDS) = "local"
    workers: integer("a positive integer or null (one per core)", 1, nullable=True) = None
    threads_per_worker: integer("a positive integer", 1) = 1
    memory_limit: checked("a memory size such as 2GiB or 4GB", _memory) = "2GiB"
    address: text("a scheduler address such as tcp://host:8786", nullable=True) = None
    jobs: integer("a positive integer", 1) = 4  # slurm / pbs: how many jobs to keep running
    jobqueue: mapping("a mapping of dask_jobqueue.SLURMCluster / PBSCluster arguments") = {}
    # stop (one error line, resumable) when no worker has been connected for this long
    no_worker_timeout: integer("a positive number of seconds", 1) = 900
    # a worker silent for this long (stopped, hung, its node gone) is dropped and its work redone
    worker_ttl: integer("a number of seconds from 10", 10) = 60



class RunConfig(Settings):
    task: one_of(tuple(TASKS)) = "imagenet-c"
    name: text("a plain file name for the outputs, at most 100 bytes", _safe_name) = "imagenet-c"
    reader: one_of(READERS) = "imagenet_folders"
    source: text("a path", nullable=True) = None
    out: text("a path", nullable=True) = None
    labels: text("a path (LOC_val_solution.csv)", nullable=True) = None
    variant: one_of(variant_names()) = "imagenet"
    corruptions: checked(f"one of {', '.join(GROUPS)} or a list of distinct names among "
                         f"{', '.join(corruption_names('all'))}", _names) = "all"
    severities: listed(SEVERITIES, "a list of distinct values among 1, 2, 3, 4, 5") = SEVERITIES
    sequences: checked(f"one of {', '.join(SEQUENCE_GROUPS)} or a list of distinct ImageNet-P sequence kinds",
                       _sequences) = "all"
    bar_corruptions: checked("benchmark or a list of distinct C-bar corruption names (ImageNet-C-bar's and "
                             "CIFAR-10-C-bar's)", _bar_names) = "benchmark"
    seed: integer("a non-negative integer", 0) = 0
    # images per key: 64 for ImageNet-C, 16 for ImageNet-P (a key's block holds 16 x 41 frames)
    shard_size: integer("an integer from 1 to 1024 or null (the task's default)", 1, 1024, nullable=True) = None
    allow_failures: flag() = False
    max_pixels: integer("a positive integer (pixels of the largest source image decoded)", 1) = DEFAULT_MAX_PIXELS
    outputs: Outputs = Outputs()
    cluster: Cluster = Cluster()


def _merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "jobqueue":
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict:
    """``outputs.zarr.level=5`` -> {"outputs": {"zarr": {"level": 5}}} (values parsed as YAML)."""
    if "=" not in text or not text.split("=", 1)[0].strip():
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. outputs.zarr.level=5")
    key, value = text.split("=", 1)
    try:
        nested: Any = parse_yaml(value) if value.strip() else None
    except yaml.YAMLError:
        nested = value
    for part in reversed(key.strip().split(".")):
        nested = {part: nested}
    return nested


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A run config by path, or by the name of a shipped one (``imagenet-c``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / f"{name_or_path}.yaml"
    if shipped.is_file() and "/" not in str(name_or_path):
        return shipped
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if p.stem != "scoring")
    raise ConfigError(f"run config {str(name_or_path)!r} not found; give a YAML path or one of {', '.join(names)}")


def load_run_config(path: str | Path | None, overrides: list[dict] = (), workers: int | None = None) -> RunConfig:
    """Defaults, then the YAML file, then each override; validated, then resolved (the task's
    defaults filled in) to a frozen ``RunConfig`` that travels as it is (``as_json()`` where it
    is stored).
    ``workers`` (the command line's ``--workers``) sets ``cluster.workers`` for a local cluster and
    ``cluster.jobs`` for SLURM / PBS."""
    doc: dict = {}
    where = "run config"
    if path is not None:
        path = resolve_config_path(path)
        where = str(path)
        doc = read_yaml(path) or {}
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: expected a mapping of run settings")
    for override in overrides:
        doc = _merge(doc, override)
        where = "run config (with the command line's settings)" if path is None else f"{path} (with overrides)"
    if workers is not None:
        kind = (doc.get("cluster") or {}).get("kind", "local") if isinstance(doc.get("cluster"), dict) else "local"
        doc = _merge(doc, {"cluster": {"jobs" if kind in BATCH_KINDS else "workers": workers}})
    config = validate(RunConfig, doc, where)
    given = set(doc["cluster"]) if isinstance(doc.get("cluster"), dict) else set()
    mistake = check_cluster(config.cluster.model_dump(), given, where)
    if mistake:
        raise ConfigError(mistake)
    spec, outputs = task_spec(config.task), config.outputs
    formats = spec.default_formats if outputs.formats == "default" else outputs.formats
    allowed = formats_for(spec.dims)
    wrong = [f for f in formats if f not in allowed]
    if wrong:
        raise ConfigError(f"{where}: key 'outputs.formats': {wrong[0]!r} is not a format of {config.task}; allowed: "
                          f"{', '.join(allowed)}")
    if spec.lossless_store and outputs.zarr.codec == "jpeg":
        raise ConfigError(f"{where}: key 'outputs.zarr.codec': {config.task}'s outputs are stored losslessly; allowed: "
                          f"{', '.join(c for c in CODECS if c != 'jpeg')}")
    mistake = reader_mistake(formats, config.reader)
    if mistake:
        raise ConfigError(f"{where}: key 'outputs.formats': {mistake}")
    if config.cluster.kind == "address" and not config.cluster.address:
        raise ConfigError(f"{where}: key 'cluster.address': expected a scheduler address such as "
                          "tcp://host:8786 for kind 'address'")
    codec = outputs.zarr.codec
    if codec == "default":
        codec = "zstd" if config.variant == "cifar" or spec.lossless_store else "jpeg"
    outputs = outputs.model_copy(update={"formats": tuple(sorted(formats)),
                                         "zarr": outputs.zarr.model_copy(update={"codec": codec})})
    resolved = config.model_copy(update={
        "outputs": outputs, "severities": tuple(sorted(config.severities)),
        "shard_size": spec.default_shard_size if config.shard_size is None else config.shard_size})
    return spec.resolve(resolved)


def stored_run_config(stored) -> RunConfig:
    """The resolved run config a run recorded (``run.json``'s ``config``), as the object runs
    pass around; a record that is not one raises ``ConfigError``."""
    if not isinstance(stored, dict):
        raise ConfigError("a run's recorded config: expected a mapping")
    return validate(RunConfig, stored, "run.json config")
