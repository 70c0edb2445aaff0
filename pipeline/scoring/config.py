"""Scoring settings: ``configs/scoring.yaml`` holds the defaults, a user's YAML and the command
line override them; checked by the same mechanism as run and variant configs."""
from __future__ import annotations

from pathlib import Path

import yaml

from corruptions.settings import ConfigError, Settings, checked, flag, integer, numbers, one_of, validate

from .errors import ScoreError

from corruptions.locations import CONFIG_DIR  # noqa: E402

SCORING_DEFAULTS = CONFIG_DIR / "scoring.yaml"


class ScoringConfig(Settings):
    input_size: integer("a positive integer", 1)
    resize: integer("a positive integer", 1)
    mean: numbers(3, "a list of 3 numbers")
    std: numbers(3, "a list of 3 positive numbers", each=lambda v: v > 0)
    batch_size: integer("a positive integer", 1)
    workers: integer("null (one per core) or an integer >= 0", 0, nullable=True)
    device: one_of(("auto", "cuda", "cpu"), "auto, cuda or cpu")
    channels_last: flag()
    amp: checked("null, bf16 or fp16", lambda v: "none" if v is None else (v if v in ("bf16", "fp16") else None))
    optimize: flag()
    baseline: checked("'alexnet' or the path of a results.json", lambda v: v if isinstance(v, str) and v else None)


def load_scoring_config(path=None, overrides: dict | None = None) -> dict:
    """configs/scoring.yaml, then the YAML at ``path``, then ``overrides`` (None values
    ignored); every key checked before any work, the message naming it and what it must be."""
    config = yaml.safe_load(SCORING_DEFAULTS.read_text())
    where = str(SCORING_DEFAULTS)
    if path is not None:
        if not Path(path).is_file():
            raise ScoreError(f"scoring config {path} not found")
        try:
            update = yaml.safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as exc:
            raise ScoreError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(update, dict):
            raise ScoreError(f"{path}: expected a mapping of scoring settings")
        config.update(update)
        where = str(path)
    config.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        checked_config = validate(ScoringConfig, config, where).model_dump()
    except ConfigError as exc:
        raise ScoreError(str(exc).replace("key '", "scoring key '").replace("unknown key", "unknown scoring key")) \
            from None
    checked_config["amp"] = None if checked_config["amp"] == "none" else checked_config["amp"]
    checked_config["mean"], checked_config["std"] = list(checked_config["mean"]), list(checked_config["std"])
    return checked_config


def load_baseline(setting: str | None, num_classes: int, kind):
    """The values a model is normalised by: ``kind.alexnet()`` (``metrics.Baseline`` for
    ImageNet-C, ``metrics.FlipBaseline`` for ImageNet-P) for ImageNet models; none for CIFAR or
    Tiny ImageNet (the paper gives no AlexNet figures for them: results stay unnormalised),
    unless ``setting`` is another model's results.json of the same benchmark."""
    import json
    if setting in (None, "alexnet"):
        return kind.alexnet() if num_classes == 1000 else None
    path = Path(setting)
    if not path.is_file():
        raise ScoreError(f"key 'baseline': expected 'alexnet' or a results.json, got {setting!r}")
    try:
        return kind.from_results(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ScoreError(f"baseline {path}: not a results.json of this benchmark written by `score` "
                         f"({type(exc).__name__}: {exc})") from None


def wnid_class_folders(folders: set[str], num_classes: int) -> bool:
    """Whether data in class folders are labelled by ImageNet wnids (standard indices 0-999);
    such data and a model without 1000 outputs are refused (give --classes instead)."""
    from ..readers import imagenet_wnids
    if not folders or not folders <= set(imagenet_wnids()):
        return False
    if num_classes != 1000:
        raise ScoreError(f"the data's class folders are ImageNet wnids (standard indices 0-999) but the model gives "
                         f"N x {num_classes} outputs, not N x 1000; give --classes for another class list")
    return True

