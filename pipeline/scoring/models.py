"""Models for scoring: loading a spec, optimising it for inference, the device, normalisation."""
from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path

from .errors import ScoreError


def load_model(spec: str, weights: str | None = None, random_weights: bool = False):
    """``path.pt2`` (a ``torch.export`` program), ``module.py:factory``, ``path.pt`` (TorchScript,
    while torch ships it), ``torchvision:NAME`` or ``timm:NAME``.
    A library model without ``weights`` gets the library's pretrained weights; where those
    cannot be had it is refused, unless ``random_weights`` (then it is scored as initialised)."""
    import torch
    if spec.startswith(("torchvision:", "timm:")):
        library, name = spec.split(":", 1)
        try:
            module = importlib.import_module("torchvision.models" if library == "torchvision" else "timm")
        except Exception as exc:  # noqa: BLE001 - e.g. torchvision built for another torch
            raise ScoreError(f"{library} is not importable here ({exc}); use a TorchScript file or module.py:factory") \
                from None
        pretrained = not weights and not random_weights
        try:
            if library == "torchvision":
                model = module.get_model(name, weights="DEFAULT" if pretrained else None)
            else:
                model = module.create_model(name, pretrained=pretrained)
        except Exception as exc:  # noqa: BLE001 - no network, unknown name, no weights published
            if pretrained:
                raise ScoreError(f"{spec}: the library's pretrained weights could not be had ({type(exc).__name__}: "
                                 f"{exc}); give --weights FILE, or --random-weights to score it as initialised") \
                    from None
            raise ScoreError(f"{spec}: {type(exc).__name__}: {exc}") from None
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
    elif spec.endswith(".pt2"):
        if not Path(spec).is_file():
            raise ScoreError(f"model {spec} not found")
        try:
            model = torch.export.load(spec).module()
        except Exception as exc:  # noqa: BLE001 - not an exported program, or one this torch cannot read
            raise ScoreError(f"{spec} is not a torch.export program (.pt2): {type(exc).__name__}: "
                             f"{(str(exc).strip().splitlines() or [''])[0][:200]}") from None
        return model  # an exported program's module: already in inference form, no .eval() to call
    else:
        if not Path(spec).is_file():
            raise ScoreError(f"model {spec!r}: expected a torch.export program (.pt2), module.py:factory, a "
                             "TorchScript file, torchvision:NAME or timm:NAME")
        try:
            with _quiet_jit():
                model = torch.jit.load(spec, map_location="cpu")
        except RuntimeError as exc:
            raise ScoreError(f"{spec} is not a TorchScript file: {exc}") from None
    if weights:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        except (RuntimeError, OSError, KeyError, ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ScoreError(f"--weights {weights} do not fit the model {spec}: {first}") from None
    return model.eval()


@contextlib.contextmanager
def _quiet_jit():
    """TorchScript still works in torch 2.13, but warns on every call that it is deprecated."""
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        yield


EAGER = {"path": "eager", "note": "the model's own logits, as the reference evaluators compute them"}


def agreement(got, expected) -> dict:
    """How far a fast path's logits are from the eager model's on the same inputs: top-1 and
    top-5 agreement, whether every ranking is the same, the largest logit difference."""
    import torch
    got, expected = got.float(), expected.float()
    top = min(5, expected.shape[1])
    return {"images": int(expected.shape[0]),
            "top1_agreement": float((got.argmax(1) == expected.argmax(1)).float().mean()),
            "top5_agreement": float((got.topk(top, 1).indices.sort(1).values
                                     == expected.topk(top, 1).indices.sort(1).values).all(1).float().mean()),
            "same_ranking": bool((torch.sort(got, dim=1, stable=True).indices
                                  == torch.sort(expected, dim=1, stable=True).indices).all()),
            "max_abs_logit_difference": float((got - expected).abs().max()) if got.shape == expected.shape
            else float("inf")}


def optimise(model, example, say=None):
    """The opt-in fast path (``optimize: true``): ``torch.compile`` (inductor) with the weights
    frozen into the graph (batch norm folded into convolutions, weights prepacked), about twice
    as fast as eager on CPUs, **with logits that may differ from the model's own** in the last
    digits. Compiled and checked against the eager model on ``example`` (real inputs) at two
    batch sizes; kept only if top-1 agrees on all of them, else the eager model is scored.
    Returns (model to run, a record for results.json: the path taken and the agreement)."""
    import torch
    say = say or (lambda line: None)
    try:
        with torch.inference_mode():
            expected = [model(example), model(example[:1])]
        fast = _Compiled(model)
        with torch.inference_mode():
            got = [fast(example), fast(example[:1])]
        check = agreement(torch.cat([got[0], got[1]]), torch.cat([expected[0], expected[1]]))
        if all(g.shape == e.shape for g, e in zip(got, expected)) and check["top1_agreement"] == 1.0:
            say(f"optimize: on (torch.compile, weights frozen): logits may differ from the eager model's; on "
                f"{check['images']} real inputs top-1 agreement {check['top1_agreement']:.3f}, largest logit "
                f"difference {check['max_abs_logit_difference']:.2e} (recorded in results.json)")
            return fast, {"path": "torch.compile", "backend": "inductor", "freezing": True, "check": check}
        reason = "its outputs differ from the eager model's"
    except Exception as exc:  # noqa: BLE001 - any model (or machine: no C++ compiler) compile cannot handle
        reason = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}"
    say(f"optimize: scoring the eager model instead: it could not be compiled for inference ({reason})")
    return model, {**EAGER, "optimize_refused": reason}


class _Compiled:
    """``torch.compile`` of a model for inference: inductor's freezing (weights as constants,
    convolutions and batch norm fused) is a compile-time setting, so every call that may compile
    (a new batch size) runs inside it; errors surface, never a silent fall back to eager."""

    def __init__(self, model):
        import torch
        self.compiled = torch.compile(model, fullgraph=False)

    def __call__(self, x):
        import torch._inductor.config
        with torch._inductor.config.patch(freezing=True):
            return self.compiled(x)


def pretrained_inputs(model, spec: str) -> dict:
    """The inputs the model's own pretrained configuration asks for, where it has one: timm's
    ``pretrained_cfg`` (or ``default_cfg``) on the model (``input_size`` (3, H, W), ``mean``,
    ``std``, ``interpolation``, ``crop_pct``: resize = floor(H / crop_pct), timm's rule), or
    torchvision's weights transforms (``crop_size``, ``resize_size``, ``mean``, ``std``,
    ``interpolation``). A ``module.py:factory`` model may carry a ``pretrained_cfg`` likewise.
    Returns the keys found, as scoring keys (input_size, resize, mean, std, interpolation)."""
    import math
    found: dict = {}
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    if isinstance(cfg, dict):
        size = cfg.get("input_size")
        if isinstance(size, (list, tuple)) and len(size) == 3 and size[1] == size[2] and int(size[1]) > 0:
            found["input_size"] = int(size[1])
            crop = cfg.get("crop_pct")
            if isinstance(crop, (int, float)) and 0 < crop <= 1:
                found["resize"] = int(math.floor(found["input_size"] / crop))
        found.update(_mean_std(cfg.get("mean"), cfg.get("std")))
        if cfg.get("interpolation") in ("bilinear", "bicubic"):
            found["interpolation"] = cfg["interpolation"]
    elif spec.startswith("torchvision:"):
        found = _torchvision_inputs(spec.split(":", 1)[1])
    if "input_size" in found and "resize" not in found:
        found["resize"] = found["input_size"]
    return found


def _mean_std(mean, std) -> dict:
    ok = all(isinstance(v, (list, tuple)) and len(v) == 3 and all(isinstance(x, (int, float)) for x in v)
             for v in (mean, std)) and all(x > 0 for x in std)
    return {"mean": [float(x) for x in mean], "std": [float(x) for x in std]} if ok else {}


def _torchvision_inputs(name: str) -> dict:
    """torchvision's DEFAULT weights' ``transforms()`` (an ``ImageClassification``), read
    without downloading the weights."""
    try:
        import torchvision.models
        transforms = torchvision.models.get_model_weights(name).DEFAULT.transforms()
    except Exception:  # noqa: BLE001 - no weights enum for this name: no configuration to take
        return {}
    found = _mean_std(list(getattr(transforms, "mean", ()) or ()), list(getattr(transforms, "std", ()) or ()))
    crop, resize = getattr(transforms, "crop_size", None), getattr(transforms, "resize_size", None)
    if crop and resize:
        found.update(input_size=int(crop[0]), resize=int(resize[0]))
    interpolation = str(getattr(getattr(transforms, "interpolation", None), "value", "")).lower()
    if interpolation in ("bilinear", "bicubic"):
        found["interpolation"] = interpolation
    return found


def pick_device(name: str):
    import torch
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ScoreError("device 'cuda' asked for, but torch sees no CUDA device")
    return torch.device(name)


class Normaliser:
    """uint8 NHWC batch -> normalised float NCHW on the device, in the original evaluation's
    float32 steps (torchvision's ToTensor then Normalize: / 255, - mean, / std), so the model
    gets the very same inputs and its rankings tie-break alike."""

    def __init__(self, config, device):
        import torch
        self.device = device
        self.mean = torch.tensor(config.mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(config.std, device=device).view(1, 3, 1, 1)
        self.channels_last = bool(config.channels_last)

    def __call__(self, batch):
        import torch
        x = batch.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        x = (x / 255 - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()


def model_name(spec: str) -> str:
    """A short name for tables: the file stem, ``stem.factory``, or the library's model name."""
    if spec.startswith(("torchvision:", "timm:")):
        return spec.split(":", 1)[1]
    if ":" in spec and spec.rsplit(":", 1)[0].endswith(".py"):
        path, factory = spec.rsplit(":", 1)
        return f"{Path(path).stem}.{factory}"
    return Path(spec).stem
