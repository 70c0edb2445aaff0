"""The scoring loop, one for images and sequences: check the model and labels before the long
run, then run the model over batches, reduce each batch's logits on the device and take the
reductions back while the next batch runs (``run_model``); top-1 error per cell is one use of it
(``evaluate``), ImageNet-P's per-video measures the other (``sequences.evaluate_sequences``)."""
from __future__ import annotations

import contextlib

import numpy as np

from ..formats import DataError
from .errors import ScoreError
from .loader import batches


def check_logits(model, images, normalise, what: str = ""):
    """Run one small batch (uint8 N x H x W x 3) before the long run: the output must be N x
    num_classes. Returns the number of classes and the normalised batch (an example for
    ``optimise``)."""
    import torch
    example = normalise(images)
    with torch.inference_mode():
        out = model(example)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != images.shape[0]:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ScoreError(f"the model's output must be N x num_classes logits; for N = {images.shape[0]}{what} it gave "
                         f"{shape}")
    return int(out.shape[1]), example


def check_model(model, data, cell, config, device, normalise):
    """``check_logits`` on the first two readable images of ``cell``."""
    first = next(batches(data, [cell], config.model_copy(update={"batch_size": 2, "workers": 0}), False, unreadable=[]), None)
    if first is None:
        raise DataError(f"{data.kind} at {cell[0]}/{cell[1]}: no readable image")
    return check_logits(model, first[0], normalise)


def check_labels(data, cells, num_classes: int) -> None:
    """Labels outside the model's classes fail here, before any image is scored."""
    for cell in cells:
        files = data.files(cell)
        labels = np.asarray(files.labels) if files is not None else getattr(data, "labels", np.zeros(0))
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise ScoreError(f"{data.kind} at {cell[0]}/{cell[1]}: labels outside the model's {num_classes} classes "
                             f"(min {int(labels.min())}, max {int(labels.max())})")


def run_model(model, inputs, config, device, normalise, reduce, account, say_not_finite) -> None:
    """The loop: for each ``(images, context)`` of ``inputs`` (uint8 N x H x W x 3 tensors), the
    model's logits under the configured autocast, ``reduce(logits, context)`` on the device (its
    tensors copied back without blocking), then ``account(reduced, context)`` once they are back,
    a batch later, so the device never waits on the host. Logits with NaN or infinity stop the
    run (``say_not_finite(context)`` says where), checked when the batch is back."""
    import torch
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16 if config.amp == "bf16" else torch.float16)
                if config.amp else contextlib.nullcontext())

    def settle(done):
        ready, finite, reduced, context = done
        if ready is not None:
            ready.synchronize()
        if not bool(finite):
            raise ScoreError(f"the model's outputs hold NaN or infinite values {say_not_finite(context)}; a result from "
                             "them would be meaningless")
        account(reduced, context)

    pending = None
    for images, context in inputs:
        with torch.inference_mode(), autocast:
            logits = model(normalise(images))
        with torch.inference_mode():
            finite = torch.isfinite(logits).all().to("cpu", non_blocking=True)
            reduced = reduce(logits, context)
        ready = None
        if device.type == "cuda":
            ready = torch.cuda.Event()
            ready.record()
        if pending is not None:
            settle(pending)
        pending = (ready, finite, reduced, context)
    if pending is not None:
        settle(pending)


def evaluate(model, data, cells, config, device, normalise, progress,
             unreadable: list | None = None) -> list[tuple[float, int]]:
    """Top-1 error and image count of each cell (``run_model`` with a top-1 reduction)."""
    wrong, total = np.zeros(len(cells)), np.zeros(len(cells))

    def reduce(logits, context):
        return logits.argmax(1).to("cpu", non_blocking=True)

    def account(predictions, context):
        labels, positions, _ = context
        mistakes = (predictions != labels).numpy().astype(np.float64)
        wrong[:] += np.bincount(positions.numpy(), weights=mistakes, minlength=len(cells))
        total[:] += np.bincount(positions.numpy(), minlength=len(cells))
        progress.update(int(labels.numel()))

    def where(context):
        first = cells[int(context[1][0])]
        return f"in batch {context[2]} (cell {first[0]}/{first[1]})"

    inputs = ((images, (labels, positions, number)) for number, (images, labels, positions)
              in enumerate(batches(data, cells, config, device.type == "cuda", unreadable)))
    run_model(model, inputs, config, device, normalise, reduce, account, where)
    for cell, count in zip(cells, total):
        if count == 0:
            raise ScoreError(f"{cell[0]}/{cell[1]}: no images")
    return [(w / t, int(t)) for w, t in zip(wrong, total)]
