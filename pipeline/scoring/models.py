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
            raise ScoreError(f"{library} is not importable here ({exc}); use a TorchScript file or module.py:factory")
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
    """The opt-in fast path (``optimize: true``): TorchScript, frozen for inference (batch norm
    folded into convolutions, weights prepacked), about twice as fast on CPUs, **with logits
    that may differ from the model's own** in the last digits. Checked against the eager model
    on ``example`` (real inputs) at two batch sizes; kept only if top-1 agrees on all of them.
    Returns (model to run, a record for results.json: the path taken and the agreement)."""
    import torch
    say = say or (lambda line: None)
    try:
        with torch.inference_mode():
            expected = [model(example), model(example[:1])]
        with torch.no_grad(), _quiet_jit():
            scripted = model if isinstance(model, torch.jit.ScriptModule) else torch.jit.trace(
                model, example, check_trace=False)
            fast = torch.jit.optimize_for_inference(scripted)
        with torch.inference_mode():
            got = [fast(example), fast(example[:1])]
        check = agreement(torch.cat([got[0], got[1]]), torch.cat([expected[0], expected[1]]))
        if all(g.shape == e.shape for g, e in zip(got, expected)) and check["top1_agreement"] == 1.0:
            say(f"optimize: on (TorchScript frozen for inference): logits may differ from the eager model's; on "
                f"{check['images']} real inputs top-1 agreement {check['top1_agreement']:.3f}, largest logit "
                f"difference {check['max_abs_logit_difference']:.2e} (recorded in results.json)")
            return fast, {"path": "torchscript-frozen", "check": check}
        reason = "its outputs differ from the eager model's"
    except Exception as exc:  # noqa: BLE001 - any model tracing cannot handle runs eagerly
        reason = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}"
    say(f"optimize: scoring the eager model instead: it could not be optimised for inference ({reason})")
    return model, {**EAGER, "optimize_refused": reason}


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

    def __init__(self, config: dict, device):
        import torch
        self.device = device
        self.mean = torch.tensor(config["mean"], device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(config["std"], device=device).view(1, 3, 1, 1)
        self.channels_last = bool(config["channels_last"])

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
