"""The scoring stage: top-1 error of a PyTorch model on every (corruption, severity) cell,
then CE, relative CE, mCE and relative mCE (``metrics.py``), written as JSON, CSV, a
Markdown report laid out like the paper's Tables 1 and 2, and a bar chart.

Needs only torch (torchvision / timm model specs are optional). Uses CUDA when present:
batches decoded in worker processes into pinned memory, normalised on the device,
optionally channels_last and bf16 / fp16 autocast; otherwise the CPU.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from corruptions import corruption_names

from . import metrics
from .readers import imagenet_wnids
from .scoring_data import CLEAN, DataError, ScoringData, decode, default_classes, open_data

SCORING_DEFAULTS = Path(__file__).resolve().parents[1] / "configs" / "scoring.yaml"
class ScoreError(ValueError):
    pass


def _integer(value, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _three_numbers(value, positive: bool) -> bool:
    return (isinstance(value, list) and len(value) == 3
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and (v > 0 or not positive) for v in value))


# every scoring key: (what it must be, the check)
SCORING_KEYS = {
    "input_size": ("a positive integer", lambda v: _integer(v, 1)),
    "resize": ("a positive integer", lambda v: _integer(v, 1)),
    "mean": ("a list of 3 numbers", lambda v: _three_numbers(v, False)),
    "std": ("a list of 3 positive numbers", lambda v: _three_numbers(v, True)),
    "batch_size": ("a positive integer", lambda v: _integer(v, 1)),
    "workers": ("null (one per core) or an integer >= 0", lambda v: v is None or _integer(v, 0)),
    "device": ("auto, cuda or cpu", lambda v: v in ("auto", "cuda", "cpu")),
    "channels_last": ("true or false", lambda v: isinstance(v, bool)),
    "amp": ("null, bf16 or fp16", lambda v: v in (None, "bf16", "fp16")),
    "optimize": ("true or false", lambda v: isinstance(v, bool)),
    "baseline": ("'alexnet' or the path of a results.json", lambda v: isinstance(v, str) and bool(v)),
}


def load_scoring_config(path=None, overrides: dict | None = None) -> dict:
    """configs/scoring.yaml, then the YAML at ``path``, then ``overrides`` (None values
    ignored); every key checked before any work, the message naming it and what it must be."""
    config = yaml.safe_load(SCORING_DEFAULTS.read_text())
    if path is not None:
        if not Path(path).is_file():
            raise ScoreError(f"scoring config {path} not found")
        update = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(update, dict):
            raise ScoreError(f"{path}: expected a mapping of scoring settings")
        config.update(update)
    config.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = sorted(set(config) - set(SCORING_KEYS))
    if unknown:
        raise ScoreError(f"unknown scoring key {unknown[0]!r}; allowed: {', '.join(SCORING_KEYS)}")
    for key, (expected, check) in SCORING_KEYS.items():
        if key not in config or not check(config[key]):
            raise ScoreError(f"scoring key {key!r}: expected {expected}, got {config.get(key)!r}")
    return config


# ------------------------------------------------------------------ models

def load_model(spec: str, weights: str | None = None):
    """``path.pt`` (TorchScript), ``module.py:factory``, ``torchvision:NAME`` or ``timm:NAME``."""
    import torch
    if spec.startswith(("torchvision:", "timm:")):
        library, name = spec.split(":", 1)
        try:
            module = importlib.import_module("torchvision.models" if library == "torchvision" else "timm")
        except Exception as exc:  # noqa: BLE001 - e.g. torchvision built for another torch
            raise ScoreError(f"{library} is not importable here ({exc}); use a TorchScript file or module.py:factory")
        model = module.get_model(name, weights=None) if library == "torchvision" else module.create_model(name)
    elif ":" in spec and spec.rsplit(":", 1)[0].endswith(".py"):
        path, factory = spec.rsplit(":", 1)
        if not Path(path).is_file():
            raise ScoreError(f"model module {path} not found")
        module_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        if not hasattr(module, factory):
            raise ScoreError(f"{path} has no {factory!r}")
        model = getattr(module, factory)()
    else:
        if not Path(spec).is_file():
            raise ScoreError(f"model {spec!r}: expected a TorchScript file, module.py:factory, torchvision:NAME "
                             "or timm:NAME")
        try:
            with _quiet_jit():
                model = torch.jit.load(spec, map_location="cpu")
        except RuntimeError as exc:
            raise ScoreError(f"{spec} is not a TorchScript file: {exc}") from None
    if weights:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    return model.eval()


@contextlib.contextmanager
def _quiet_jit():
    """TorchScript still works in torch 2.13, but warns on every call that it is deprecated."""
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        yield


def optimise(model, example):
    """TorchScript, frozen for inference (batch norm folded into convolutions, weights
    prepacked): about twice as fast on CPUs. Kept only if it agrees with the eager model on
    ``example`` at two batch sizes; otherwise the eager model is used, with a warning."""
    import warnings

    import torch
    try:
        with torch.inference_mode():
            expected = [model(example), model(example[:1])]
        with torch.no_grad(), _quiet_jit():
            scripted = model if isinstance(model, torch.jit.ScriptModule) else torch.jit.trace(
                model, example, check_trace=False)
            fast = torch.jit.optimize_for_inference(scripted)
        with torch.inference_mode():
            got = [fast(example), fast(example[:1])]
        if all(g.shape == e.shape and torch.allclose(g.float(), e.float(), rtol=1e-3, atol=1e-3)
               for g, e in zip(got, expected)):
            return fast
        reason = "its outputs differ from the eager model's"
    except Exception as exc:  # noqa: BLE001 - any model tracing cannot handle runs eagerly
        reason = f"{type(exc).__name__}: {exc}"
    warnings.warn(f"scoring the eager model: could not optimise it for inference ({reason})", stacklevel=2)
    return model


def pick_device(name: str):
    import torch
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ScoreError("device 'cuda' asked for, but torch sees no CUDA device")
    return torch.device(name)


class Normaliser:
    """uint8 NHWC batch -> normalised float NCHW on the device."""

    def __init__(self, config: dict, device):
        import torch
        self.device = device
        self.mean = torch.tensor(config["mean"], device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(config["std"], device=device).view(1, 3, 1, 1) * 255
        self.channels_last = bool(config["channels_last"])

    def __call__(self, batch):
        import torch
        x = batch.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()


# ------------------------------------------------------------------ batches

class _FileBatches:
    """Items are whole batches of image files (of several cells), decoded in worker processes
    straight into one array: no per-image tensors, no collation. Files that cannot be decoded
    are left out of the batch and named in its fourth element."""

    def __init__(self, files: list[tuple[str, int, int]], batch_size: int, input_size: int, resize: int):
        self.files, self.batch_size = files, batch_size  # (path, label, cell position)
        self.input_size, self.resize = input_size, resize

    def __len__(self):
        return -(-len(self.files) // self.batch_size)

    def __getitem__(self, index):
        import torch
        files = self.files[index * self.batch_size:(index + 1) * self.batch_size]
        images = np.empty((len(files), self.input_size, self.input_size, 3), np.uint8)
        read, unreadable = [], []
        for path, label, position in files:
            try:
                images[len(read)] = decode(path, self.input_size, self.resize)
                read.append((label, position))
            except DataError as exc:
                unreadable.append(str(exc))
        return (torch.from_numpy(images[:len(read)]), torch.tensor([r[0] for r in read], dtype=torch.int64),
                torch.tensor([r[1] for r in read], dtype=torch.int64), unreadable)


class _SliceBatches:
    """Items are whole batches read from a store (Zarr chunks, .npy rows)."""

    def __init__(self, data: ScoringData, pieces: list[tuple[int, tuple, int, int]]):
        self.data, self.pieces = data, pieces  # (cell position, cell, start, stop)

    def __len__(self):
        return len(self.pieces)

    def __getitem__(self, index):
        import torch
        position, cell, start, stop = self.pieces[index]
        images, labels = self.data.read(cell, start, stop)
        images = np.ascontiguousarray(images)
        return (torch.from_numpy(images if images.flags.writeable else images.copy()), torch.from_numpy(labels),
                torch.full((len(labels),), position, dtype=torch.int64), [])


def batches(data: ScoringData, cells: list, config: dict, pin: bool, unreadable: list | None = None):
    """Yield (uint8 NHWC tensor, int64 labels, int64 cell indices) over ``cells``. All cells go
    through one loader, so its worker processes start once per run. Files are decoded in
    worker processes; stored arrays are read there only for a GPU, since on a CPU the model
    needs every core and reading a chunk costs next to nothing. Files that cannot be decoded
    are appended to ``unreadable`` ("path: reason") and skipped; without that list, the
    first one raises ``DataError``."""
    import torch
    workers = config["workers"] if config["workers"] is not None else (os.cpu_count() or 1)
    if data.files(cells[0]) is None:
        dataset = _SliceBatches(data, [(position, cell, start, stop) for position, cell in enumerate(cells)
                                       for start, stop in data.slices(cell, config["batch_size"])])
        workers = workers if pin else 0
    else:
        dataset = _FileBatches([(path, label, position) for position, cell in enumerate(cells)
                                for path, label in zip(data.files(cell).paths, data.files(cell).labels)],
                               config["batch_size"], config["input_size"], config["resize"])
    workers = min(workers, len(dataset))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, num_workers=workers, pin_memory=pin, shuffle=False,
        prefetch_factor=4 if workers else None,
        multiprocessing_context="fork" if workers and sys.platform == "linux" else None)
    for images, labels, positions, failed in loader:
        if failed and unreadable is None:
            raise DataError(failed[0])
        if failed:
            unreadable.extend(failed)
        if len(labels):
            yield images, labels, positions


# ------------------------------------------------------------------ the run

def check_model(model, data: ScoringData, cell, config, device, normalise):
    """Run one small batch before the long run: the output must be N x num_classes.
    Returns the number of classes and the normalised batch (an example for ``optimise``)."""
    import torch
    first = next(batches(data, [cell], dict(config, batch_size=2, workers=0), False, unreadable=[]), None)
    if first is None:
        raise DataError(f"{data.kind} at {cell[0]}/{cell[1]}: no readable image")
    images = first[0]
    example = normalise(images)
    with torch.inference_mode():
        out = model(example)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != images.shape[0]:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ScoreError(f"the model's output must be N x num_classes logits; for N = {images.shape[0]} it gave {shape}")
    return int(out.shape[1]), example


def check_labels(data: ScoringData, cells, num_classes: int) -> None:
    """Labels outside the model's classes fail here, before any image is scored."""
    for cell in cells:
        files = data.files(cell)
        labels = np.asarray(files.labels) if files is not None else getattr(data, "labels", np.zeros(0))
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise ScoreError(f"{data.kind} at {cell[0]}/{cell[1]}: labels outside the model's {num_classes} classes "
                             f"(min {int(labels.min())}, max {int(labels.max())})")


def evaluate(model, data, cells, config, device, normalise, progress,
             unreadable: list | None = None) -> list[tuple[float, int]]:
    """Top-1 error and image count of each cell. The predictions of a batch are copied back
    while the next batch is read and launched, so the device never waits on the host."""
    import torch
    wrong, total = np.zeros(len(cells)), np.zeros(len(cells))
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16 if config["amp"] == "bf16" else torch.float16)
                if config["amp"] else contextlib.nullcontext())

    def account(predictions, ready, labels, positions):
        if ready is not None:
            ready.synchronize()
        mistakes = (predictions != labels).numpy().astype(np.float64)
        wrong[:] += np.bincount(positions.numpy(), weights=mistakes, minlength=len(cells))
        total[:] += np.bincount(positions.numpy(), minlength=len(cells))
        progress(int(labels.numel()))

    pending = None
    for images, labels, positions in batches(data, cells, config, device.type == "cuda", unreadable):
        with torch.inference_mode(), autocast:
            predictions = model(normalise(images)).argmax(1).to("cpu", non_blocking=True)
        ready = None
        if device.type == "cuda":
            ready = torch.cuda.Event()
            ready.record()
        if pending is not None:
            account(*pending)
        pending = (predictions, ready, labels, positions)
    if pending is not None:
        account(*pending)
    for cell, count in zip(cells, total):
        if count == 0:
            raise ScoreError(f"{cell[0]}/{cell[1]}: no images")
    return [(w / t, int(t)) for w, t in zip(wrong, total)]


class Bar:
    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.done, self.stream = total, 0, stream
        self.started = self.last = time.monotonic()

    def __call__(self, count: int):
        self.done += count
        now = time.monotonic()
        if now - self.last >= 1.0 or self.done >= self.total:
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            print(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} images  {rate:.0f} images/s",
                  end="\n" if self.done >= self.total else "", file=self.stream, flush=True)


def score(model_spec: str, data_path: str, clean_path: str | None = None, out: str | None = None,
          weights: str | None = None, config: dict | None = None, classes_file: str | None = None,
          allow_partial: bool = False, stream=sys.stderr, name: str | None = None) -> dict:
    import torch
    config = config or load_scoring_config()
    device = pick_device(config["device"])
    model = load_model(model_spec, weights).to(device)
    if config["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    normalise = Normaliser(config, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    classes = Path(classes_file).read_text().split() if classes_file else None
    data = open_data(data_path, classes)
    cells = data.cells()
    if not cells:
        raise DataError(f"{data_path}: no corruption cells found")
    num_classes, example = check_model(model, data, cells[0], config, device, normalise)
    if config["optimize"]:
        model = optimise(model, example)
    if classes is None and num_classes != 1000 and data.kind == "jpeg_tree":
        folders = {os.path.basename(os.path.dirname(p)) for p in data.files(cells[0]).paths}
        if folders and folders <= set(imagenet_wnids()):
            raise ScoreError(f"the data's class folders are ImageNet wnids (standard indices 0-999) but the model "
                             f"gives N x {num_classes} outputs, not N x 1000; give --classes for another class list")
    if classes is None:
        classes = default_classes(num_classes, data)
        if classes is not None and data.classes is None:
            data = open_data(data_path, classes)
    if classes is not None and len(classes) != num_classes:
        raise ScoreError(f"the model has {num_classes} outputs but the class list has {len(classes)}")
    clean = open_data(clean_path, classes, clean=True) if clean_path else None
    check_labels(data, cells, num_classes)
    if clean is not None:
        check_model(model, clean, CLEAN, config, device, normalise)
        check_labels(clean, [CLEAN], num_classes)
    total = sum(data.count(c) for c in cells) + (clean.count(CLEAN) if clean else 0)
    bar = Bar(total, stream)
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
    seconds = time.monotonic() - started
    baseline = _baseline(config["baseline"])
    summary = metrics.summarize_c({c: {int(s): e for s, e in v.items()} for c, v in errors.items()}, clean_error,
                                  baseline, allow_partial)
    results = {
        "model": {"spec": model_spec, "name": name or model_name(model_spec), "weights": weights,
                  "weights_sha256": _sha256(weights) if weights else None,
                  "spec_sha256": _sha256(model_spec) if Path(model_spec).is_file() else None},
        "data": {"path": str(Path(data_path).resolve()), "kind": data.kind, "images": counts,
                 "clean": str(Path(clean_path).resolve()) if clean_path else None, "unreadable": unreadable},
        "device": str(device), "seconds": round(seconds, 3), "images_per_second": round(total / max(seconds, 1e-9), 1),
        "clean_error": clean_error, "errors": errors, **summary,
    }
    if out:
        write_results(results, Path(out))
    return results


def model_name(spec: str) -> str:
    """A short name for tables: the file stem, ``stem.factory``, or the library's model name."""
    if spec.startswith(("torchvision:", "timm:")):
        return spec.split(":", 1)[1]
    if ":" in spec and spec.rsplit(":", 1)[0].endswith(".py"):
        path, factory = spec.rsplit(":", 1)
        return f"{Path(path).stem}.{factory}"
    return Path(spec).stem


def _baseline(setting: str) -> metrics.Baseline:
    if setting in (None, "alexnet"):
        return metrics.Baseline.alexnet()
    path = Path(setting)
    if not path.is_file():
        raise ScoreError(f"key 'baseline': expected 'alexnet' or a results.json, got {setting!r}")
    return metrics.Baseline.from_results(json.loads(path.read_text()))


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------ outputs

SHORT = {"gaussian_noise": "Gauss.", "shot_noise": "Shot", "impulse_noise": "Impulse", "defocus_blur": "Defocus",
         "glass_blur": "Glass", "motion_blur": "Motion", "zoom_blur": "Zoom", "snow": "Snow", "frost": "Frost",
         "fog": "Fog", "brightness": "Bright", "contrast": "Contrast", "elastic_transform": "Elastic",
         "pixelate": "Pixel", "jpeg_compression": "JPEG", "speckle_noise": "Speckle", "gaussian_blur": "G. Blur",
         "spatter": "Spatter", "saturate": "Saturate"}


def _fmt(value, digits=0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_tables(results_list: list[dict]) -> str:
    """Rows like the paper's Table 1 (CE, mCE) and Table 2 (relative CE, relative mCE)."""
    names = corruption_names("benchmark")
    extras = [n for n in corruption_names("extra") if any(n in r["ce"] for r in results_list)]
    header = ["Network", "Error", "{m}"] + [SHORT[n] for n in names + extras]
    out = []
    for title, key, mean_key in (("Corruption Error (CE) and mCE", "ce", "mce"),
                                 ("Relative CE and relative mCE", "relative_ce", "relative_mce")):
        out.append(f"### {title} (AlexNet = 100)\n")
        head = [h.replace("{m}", "mCE" if key == "ce" else "Rel. mCE") for h in header]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        out.append("| AlexNet | 43.5 | 100.0 | " + " | ".join("100" for _ in names + extras) + " |")
        for results in results_list:
            clean = None if results["clean_error"] is None else 100 * results["clean_error"]
            row = [results["model"]["name"], _fmt(clean, 1), _fmt(results[mean_key], 1)]
            row += [_fmt(results[key].get(n)) for n in names + extras]
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    notes = []
    for results in results_list:
        if results["missing"]:
            notes.append(f"- {results['model']['name']}: missing cells {', '.join(results['missing'])}; "
                         + ("means over the corruptions present (--allow-partial)." if results["partial"]
                            else "mCE left out."))
        unreadable = results["data"].get("unreadable") or []
        if unreadable:
            notes.append(f"- {results['model']['name']}: {len(unreadable)} unreadable files skipped, e.g. "
                         f"{unreadable[0]} (all of them under data.unreadable in results.json).")
        if results["clean_error"] is None:
            notes.append(f"- {results['model']['name']}: no clean set scored (--clean), so no relative CE.")
    return "\n".join(out + notes) + "\n"


def bar_chart(results_list: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [n for n in corruption_names("all") if any(n in r["ce"] for r in results_list)]
    width = 0.8 / max(len(results_list), 1)
    figure, axes = plt.subplots(figsize=(max(8, 0.7 * len(names)), 4.2))
    x = np.arange(len(names))
    for index, results in enumerate(results_list):
        axes.bar(x + index * width - 0.4 + width / 2, [results["ce"].get(n, np.nan) for n in names], width,
                 label=f"{results['model']['name']} (mCE {_fmt(results['mce'], 1)})")
    axes.axhline(100, color="black", linewidth=1, linestyle="--", label="AlexNet = 100")
    axes.set_xticks(x, [SHORT[n] for n in names], rotation=45, ha="right")
    axes.set_ylabel("Corruption Error (%)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_results(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True))
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["corruption", "severity", "top1_error", "ce", "relative_ce"])
        if results["clean_error"] is not None:
            writer.writerow(["clean", 0, f"{results['clean_error']:.6f}", "", ""])
        for name in corruption_names("all"):
            for severity, error in sorted(results["errors"].get(name, {}).items()):
                writer.writerow([name, severity, f"{error:.6f}", _fmt(results["ce"].get(name), 3),
                                 _fmt(results["relative_ce"].get(name), 3)])
    report = [f"# ImageNet-C results: {results['model']['name']}\n",
              f"Data: `{results['data']['path']}` ({results['data']['kind']}); device {results['device']}; "
              f"{results['images_per_second']} images/s.\n", markdown_tables([results]),
              "![CE per corruption](ce.png)\n"]
    (out / "report.md").write_text("\n".join(report))
    bar_chart([results], out / "ce.png")


def compare(paths: list[str], out: str | None) -> str:
    results_list = [json.loads(Path(p).read_text()) for p in paths]
    table = markdown_tables(results_list)
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        bar_chart(results_list, Path(out) / "comparison.png")
        (Path(out) / "comparison.md").write_text("# ImageNet-C comparison\n\n" + table + "\n![CE](comparison.png)\n")
    return table
