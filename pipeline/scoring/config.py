"""Scoring settings: ``configs/scoring.yaml`` holds the defaults, a user's YAML and the command
line override them; checked by the same mechanism as run and variant configs."""
from __future__ import annotations

from pathlib import Path

import yaml

from corruptions.config import parse_yaml
from corruptions.locations import CONFIG_DIR
from corruptions.settings import _NULL, ConfigError, Settings, checked, flag, integer, one_of, validate

from .errors import ScoreError

SCORING_DEFAULTS = CONFIG_DIR / "scoring.yaml"


def _three(positive: bool):
    def check(value):
        if value is None:
            return _NULL
        if (not isinstance(value, (list, tuple)) or len(value) != 3
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and (v > 0 or not positive)
                           for v in value)):
            return None
        return tuple(value)
    return check


class ScoringConfig(Settings):
    # null: the dataset family's (``FAMILIES``), decided once the data are known
    input_size: integer("null or an integer from 1 to 4096", 1, 4096, nullable=True)
    resize: integer("null or an integer from 1 to 4096", 1, 4096, nullable=True)
    mean: checked("null or a list of 3 numbers", _three(False))
    std: checked("null or a list of 3 positive numbers", _three(True))
    interpolation: checked("null, bilinear or bicubic",
                           lambda v: _NULL if v is None else (v if v in ("bilinear", "bicubic") else None))
    batch_size: integer("an integer from 1 to 65536", 1, 65536)
    workers: integer("null (one per core) or an integer >= 0", 0, nullable=True)
    device: one_of(("auto", "cuda", "cpu"), "auto, cuda or cpu")
    channels_last: flag()
    amp: checked("null, bf16 or fp16", lambda v: _NULL if v is None else (v if v in ("bf16", "fp16") else None))
    optimize: flag()
    baseline: checked("'alexnet' or the path of a results.json", lambda v: v if isinstance(v, str) and v else None)
    # what the preprocessing keys were resolved to and from where (``for_family``), not a setting
    preprocessing: checked("null (the scorer records it)", lambda v: _NULL if v is None else None) = None


def load_scoring_config(path=None, overrides: dict | None = None, auto: bool = False) -> ScoringConfig:
    """configs/scoring.yaml, then the YAML at ``path``, then ``overrides`` (None values
    ignored); every key checked before any work, the message naming it and what it must be.
    Preprocessing keys left null are the dataset family's: with ``auto`` they stay null for
    ``score`` to fill once it knows the data (``for_family``); else ImageNet's."""
    config = yaml.safe_load(SCORING_DEFAULTS.read_text())
    where = str(SCORING_DEFAULTS)
    if path is not None:
        if not Path(path).is_file():
            raise ScoreError(f"scoring config {path} not found")
        try:
            update = parse_yaml(Path(path).read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
            raise ScoreError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(update, dict):
            raise ScoreError(f"{path}: expected a mapping of scoring settings")
        config.update(update)
        where = str(path)
    config.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        checked_config = validate(ScoringConfig, config, where)
    except ConfigError as exc:
        raise ScoreError(str(exc).replace("key '", "scoring key '").replace("unknown key", "unknown scoring key")) \
            from None
    return checked_config if auto else for_family(checked_config, "imagenet")


IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
# The inputs each dataset family's reference evaluation feeds a model, where the scoring config
# leaves them null. ImageNet (ImageNet-C/test.py, ImageNet-P/test.py): Resize(256) bilinear,
# CenterCrop(224), the ImageNet mean and std. CIFAR (RobustBench's CIFAR-10-C / -100-C
# evaluation, the field's reference for CIFAR): the 32 px arrays as they are, in [0, 1], no
# mean or std (models normalise inside). Tiny ImageNet and ImageNet 64x64: 64 px as they are,
# the ImageNet mean and std.
FAMILIES = {
    "imagenet": {"input_size": 224, "resize": 256, "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
    "cifar": {"input_size": 32, "resize": 32, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
    "tiny": {"input_size": 64, "resize": 64, "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
    "imagenet64": {"input_size": 64, "resize": 64, "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
}
for _family in FAMILIES.values():
    _family["interpolation"] = "bilinear"  # the generator's clean stage (PIL bilinear)
PREPROCESSING = ("input_size", "resize", "mean", "std", "interpolation")
PIXEL_STAGE = ("input_size", "resize", "interpolation")


def for_family(config: ScoringConfig, family: str, model_inputs: dict | None = None) -> ScoringConfig:
    """``config`` with its null preprocessing keys filled, recorded under ``preprocessing``
    (what was used, and which keys came from where). Each key: the scoring config's if given;
    else the model's pretrained configuration's (``models.pretrained_inputs``: timm's
    ``pretrained_cfg``, torchvision's weights transforms); else ``family``'s convention.
    The model's mean and std always apply; its pixel stage (input size, resize, filter) only
    where its input size differs from the data's, since the corrupted images were made from the
    family's clean stage and the clean images must take that same stage to be comparable."""
    defaults = FAMILIES.get(family, FAMILIES["imagenet"])
    set_keys = {k: getattr(config, k) for k in PREPROCESSING if getattr(config, k) is not None}
    model_inputs = model_inputs or {}
    from_model = [k for k in ("mean", "std") if k in model_inputs]
    if model_inputs.get("input_size") not in (None, defaults["input_size"]) and "input_size" not in set_keys:
        from_model += [k for k in PIXEL_STAGE if k in model_inputs]
    from_model = [k for k in from_model if k not in set_keys]
    resolved = {**defaults, **{k: model_inputs[k] for k in from_model}, **set_keys}
    resolved = {k: list(v) if isinstance(v, tuple) else v for k, v in resolved.items() if k in PREPROCESSING}
    record = {**resolved, "family": family, "from_config": list(set_keys), "from_model": from_model,
              **({"model_config": model_inputs} if model_inputs else {})}
    return config.model_copy(update={**resolved, "preprocessing": record})


def load_baseline(setting: str | None, num_classes: int, kind):
    """The values a model is normalised by: ``kind.alexnet()`` (``metrics.Baseline`` for
    ImageNet-C, ``metrics.FlipBaseline`` for ImageNet-P) for ImageNet models; none for CIFAR or
    Tiny ImageNet (the paper gives no AlexNet figures for them: results stay unnormalised),
    unless ``setting`` is another model's results.json of the same benchmark."""
    if setting in (None, "alexnet"):
        return kind.alexnet() if num_classes == 1000 else None
    from .report import read_results
    path = Path(setting)
    if not path.is_file():
        raise ScoreError(f"key 'baseline': expected 'alexnet' or a results.json, got {setting!r}")
    results = read_results(str(path))  # its structure, and every value a finite number
    try:
        baseline = kind.from_results(results)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ScoreError(f"baseline {path}: not a results.json of this benchmark written by `score` "
                         f"({type(exc).__name__}: {exc})") from None
    zero = [name for name, mean in getattr(baseline, "mean_errors", {}).items() if not mean > 0]
    if zero:
        raise ScoreError(f"baseline {path}: {', '.join(zero[:3])} has zero error: nothing to normalise by (CE would "
                         "divide by zero)")
    clean = getattr(baseline, "clean_error", None)
    if clean is not None and any(mean == clean for mean in getattr(baseline, "mean_errors", {}).values()):
        raise ScoreError(f"baseline {path}: a corruption's error equals the clean error: relative CE would divide "
                         "by zero")
    if not (getattr(baseline, "mean_errors", None) or getattr(baseline, "values", None)):
        raise ScoreError(f"baseline {path}: holds no complete corruption or perturbation to normalise by")
    return baseline


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

