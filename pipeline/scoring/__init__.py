"""The scoring stage: top-1 error of a PyTorch model on every (corruption, severity) cell,
then CE, relative CE, mCE and relative mCE (``metrics.py``), written as JSON, CSV, a
Markdown report laid out like the paper's Tables 1 and 2, and a bar chart.

Needs only torch (torchvision / timm model specs are optional). Uses CUDA when present:
batches decoded in worker processes into pinned memory, normalised on the device,
optionally channels_last and bf16 / fp16 autocast; otherwise the CPU.

    config.py    settings          models.py   model specs, optimisation, device
    loader.py    batches           evaluate.py the loop
    report.py    results on disk
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

from .. import metrics
from ..formats import DataError, open_data
from ..progress import progress
from ..readers import imagenet_wnids
from ..tasks import scoring_kind
from .config import FAMILIES, for_family, load_baseline, load_scoring_config, wnid_class_folders
from .errors import ScoreError
from .evaluate import check_labels, check_model, evaluate
from .loader import CLEAN, CleanFolder, batches, decode
from .models import EAGER, Normaliser, load_model, model_name, optimise, pick_device, pretrained_inputs
from .report import compare, markdown_tables, p_tables, write_results

__all__ = ["score", "ScoreError", "DataError", "load_scoring_config", "compare", "markdown_tables", "p_tables", "load_model",
           "optimise", "pick_device", "Normaliser", "batches", "evaluate", "decode", "open_data"]


def data_family(data, on_the_fly) -> str:
    """The dataset family whose input convention applies (``config.FAMILIES``): CIFAR arrays or a
    CIFAR / Tiny / 64 px run config produced on the fly; ImageNet otherwise."""
    if on_the_fly is not None and on_the_fly.variant in FAMILIES:
        return on_the_fly.variant
    return data.family or "imagenet"


def default_classes(num_outputs: int, data) -> list[str] | None:
    """The class list for a model with ``num_outputs`` classes: the stored list, ImageNet's
    1000 wnids, or None (labels are already indices)."""
    if data.classes is not None:
        return data.classes
    if num_outputs == 1000:
        return list(imagenet_wnids())
    return None


def read_classes(path: str) -> list[str]:
    """A --classes file: one class name per model output, in index order; each name once (a
    repeated name would map two outputs to one label and score silently wrong)."""
    try:
        text = Path(path).read_bytes()
        if len(text) > 64 << 20:
            raise ScoreError(f"--classes {path}: larger than 64 MiB; expected one class name per line")
        names = text.decode("utf-8").split()
    except FileNotFoundError:
        raise ScoreError(f"--classes {path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScoreError(f"--classes {path}: cannot be read as text ({type(exc).__name__})") from None
    if not names:
        raise ScoreError(f"--classes {path}: holds no class names")
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            raise ScoreError(f"--classes {path}: {name!r} is listed twice (outputs {seen[name]} and {index}); each "
                             "class name must appear once")
        seen[name] = index
    return names


def score(model_spec: str, data_path: str, clean_path: str | None = None, out: str | None = None,
          weights: str | None = None, config=None, classes_file: str | None = None,
          allow_partial: bool = False, stream=sys.stderr, name: str | None = None,
          random_weights: bool = False, on_the_fly=None, mp4_round_trip: bool = False) -> dict:
    """Score ``model_spec`` on the data at ``data_path`` or, with ``on_the_fly`` (a resolved run
    config whose ``source`` is the clean set), on the benchmark produced in the loader
    (ImageNet-P: its lossless frames, or with ``mp4_round_trip`` its MP4s' pixels)."""
    import torch
    config = config or load_scoring_config(auto=True)
    device = pick_device(config.device)
    model = load_model(model_spec, weights, random_weights)
    model_inputs = pretrained_inputs(model, model_spec)
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    classes = read_classes(classes_file) if classes_file else None
    if on_the_fly is not None:
        from .on_the_fly import on_the_fly_data
        data = on_the_fly_data(on_the_fly, classes, mp4_round_trip)
        data_path = data.source.root
        if scoring_kind(data.task) == "sequences":
            clean_path = None  # the source; ImageNet-P's clean error comes from its sequences
        elif clean_path is None and on_the_fly.reader == "imagenet_folders":
            clean_path = data.source.root  # the clean set is the source itself
    else:
        data = open_data(data_path, classes, allow_partial)
    config = for_family(config, data_family(data, on_the_fly), model_inputs)
    normalise = Normaliser(config, device)
    if scoring_kind(data.task) == "sequences":
        return _score_imagenet_p(model, data, data_path, clean_path, out, config, device, normalise, classes,
                                 allow_partial, stream, _model_info(model_spec, name, weights))
    cells = data.cells()
    if not cells:
        raise DataError(f"{data_path}: no corruption cells found")
    empty = [c for c in cells if data.count(c) == 0]
    if empty and not allow_partial:
        raise ScoreError(f"{data_path}: {len(empty)} cells hold no images ({', '.join(f'{c}/{s}' for c, s in empty[:5])}"
                         f"{' ...' if len(empty) > 5 else ''}); give --allow-partial to score the rest")
    cells = [c for c in cells if c not in empty]
    num_classes, example = check_model(model, data, cells[0], config, device, normalise)
    inference = EAGER
    if config.optimize:
        model, inference = optimise(model, example, say=lambda line: print(line, file=stream, flush=True))
    if classes is None and data.class_folders:
        wnid_class_folders({os.path.basename(os.path.dirname(p)) for p in data.files(cells[0]).paths}, num_classes)
    if classes is None and data.label_counts and num_classes not in data.label_counts:
        counts = " or ".join(f"N x {n}" for n in data.label_counts)
        raise ScoreError(f"{data.family.upper() if data.family else data.kind} data, but the model gives N x "
                         f"{num_classes} outputs, not {counts}; give --classes (one class name per output) to map "
                         "its outputs")
    if classes is None:
        classes = default_classes(num_classes, data)
        if classes is not None and data.classes is None and on_the_fly is None:
            data = open_data(data_path, classes, allow_partial)
    if classes is not None and len(classes) != num_classes:
        raise ScoreError(f"the model has {num_classes} outputs but the class list has {len(classes)}")
    clean = CleanFolder(Path(clean_path), classes) if clean_path else None
    check_labels(data, cells, num_classes)
    if clean is not None:
        check_model(model, clean, CLEAN, config, device, normalise)
        check_labels(clean, [CLEAN], num_classes)
    baseline = load_baseline(config.baseline, num_classes, metrics.Baseline)  # checked before the pass
    total = sum(data.count(c) for c in cells) + (clean.count(CLEAN) if clean else 0)
    bar = progress(total, stream=stream)
    errors: dict[str, dict[str, float]] = {}
    counts = {}
    started = time.monotonic()
    clean_error = None
    unreadable: list[str] = []
    if clean is not None:
        [(clean_error, counts["clean"])] = evaluate(model, clean, [CLEAN], config, device, normalise, bar,
                                                    unreadable)
    for cell, (error, n) in zip(cells, evaluate(model, data, cells, config, device, normalise, bar, unreadable)):
        errors.setdefault(cell[0], {})[str(cell[1])] = error
        counts[f"{cell[0]}/{cell[1]}"] = n
    bar.close()
    seconds = time.monotonic() - started
    summary = metrics.summarize_c({c: {int(s): e for s, e in v.items()} for c, v in errors.items()}, clean_error,
                                  baseline, allow_partial, data.task)
    results = {
        "task": data.task, "model": _model_info(model_spec, name, weights),
        "data": {"path": str(Path(data_path).resolve()), "kind": data.kind, "images": counts,
                 "clean": str(Path(clean_path).resolve()) if clean_path else None, "unreadable": unreadable,
                 **({"on_the_fly": data.identity()} if on_the_fly is not None else {})},
        "device": str(device), "seconds": round(seconds, 3), "images_per_second": round(total / max(seconds, 1e-9), 1),
        "clean_error": clean_error, "errors": errors, **summary,
        "preprocessing": config.preprocessing, "inference": inference,
    }
    if out:
        write_results(results, Path(out))
    return results




def _score_imagenet_p(model, data, data_path, clean_path, out, config, device, normalise, classes, allow_partial,
                      stream, model_info) -> dict:
    from .sequences import score_sequences
    if clean_path:
        raise ScoreError("--clean is for ImageNet-C; on ImageNet-P the clean error is measured on the noise "
                         "sequences' first frames (the unperturbed crops)")
    results, _ = score_sequences(model, data, data_path, config, device, normalise, classes,
                                 lambda known: open_data(data_path, known, allow_partial), stream)
    if data.kind == "on_the_fly":
        results["data"]["on_the_fly"] = data.identity()
    results = {"model": model_info, **results, "preprocessing": config.preprocessing}
    if out:
        write_results(results, Path(out))
    return results


def _model_info(model_spec: str, name: str | None, weights: str | None) -> dict:
    return {"spec": model_spec, "name": name or model_name(model_spec), "weights": weights,
            "weights_sha256": _sha256(weights) if weights else None,
            "spec_sha256": _sha256(model_spec) if Path(model_spec).is_file() else None}


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
