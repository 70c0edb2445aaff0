"""The scoring loop: check the model and labels before the long run, then top-1 error per cell."""
from __future__ import annotations

import contextlib

import numpy as np

from ..formats import DataError
from .errors import ScoreError
from .loader import batches


def check_model(model, data, cell, config, device, normalise):
    """Run one small batch before the long run: the output must be N x num_classes.
    Returns the number of classes and the normalised batch (an example for ``optimise``)."""
    import torch
    first = next(batches(data, [cell], config.model_copy(update={"batch_size": 2, "workers": 0}), False, unreadable=[]), None)
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


def check_labels(data, cells, num_classes: int) -> None:
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
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16 if config.amp == "bf16" else torch.float16)
                if config.amp else contextlib.nullcontext())

    def account(predictions, ready, labels, positions, finite, number):
        if ready is not None:
            ready.synchronize()
        if not bool(finite):  # checked here, once the batch is back, so the device never waits
            first = cells[int(positions[0])]
            raise ScoreError(f"the model's outputs hold NaN or infinite values in batch {number} (cell "
                             f"{first[0]}/{first[1]}); a result from them would be meaningless")
        mistakes = (predictions != labels).numpy().astype(np.float64)
        wrong[:] += np.bincount(positions.numpy(), weights=mistakes, minlength=len(cells))
        total[:] += np.bincount(positions.numpy(), minlength=len(cells))
        progress.update(int(labels.numel()))

    pending = None
    for number, (images, labels, positions) in enumerate(batches(data, cells, config, device.type == "cuda",
                                                                 unreadable)):
        with torch.inference_mode(), autocast:
            logits = model(normalise(images))
            finite = torch.isfinite(logits).all()
            predictions = logits.argmax(1).to("cpu", non_blocking=True)
        finite = finite.to("cpu", non_blocking=True)
        ready = None
        if device.type == "cuda":
            ready = torch.cuda.Event()
            ready.record()
        if pending is not None:
            account(*pending)
        pending = (predictions, ready, labels, positions, finite, number)
    if pending is not None:
        account(*pending)
    for cell, count in zip(cells, total):
        if count == 0:
            raise ScoreError(f"{cell[0]}/{cell[1]}: no images")
    return [(w / t, int(t)) for w, t in zip(wrong, total)]
