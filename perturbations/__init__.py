"""The ImageNet-P perturbation sequences of Hendrycks & Dietterich (ICLR 2019), every variant.

    from perturbations import perturb, sequence_names
    frames = perturb(photo, "rotate", rng=np.random.default_rng(7), variant="imagenet")  # (T, H, W, 3) uint8

``photo`` is the decoded source image at full resolution (the 32 x 32 image for cifar); the
variant's input stage for that sequence runs inside (the clean crop, or the pre-crop image
for the geometric kinds), and its output stage (a crop, or a resize) runs on every frame.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from corruptions import as_rgb
from corruptions.config import VARIANTS
from corruptions.preprocess import apply_step, crop_box

from .config import SequenceVariant, load_sequences
from .registry import (
    ALL_KINDS,
    DIFFICULTIES,
    NOISES,
    PERTURBATIONS,
    TEST,
    VALIDATION,
    difficulties,
    kind_name,
    sequence_names,
    split_kind,
)

__all__ = ["perturb", "sequence_names", "load_sequences", "stage_image", "stage_images", "frames_from_input",
           "split_kind", "kind_name", "difficulties", "family", "ALL_KINDS", "DIFFICULTIES", "NOISES", "PERTURBATIONS", "TEST",
           "VALIDATION", "SequenceVariant"]


def _sequences(variant) -> SequenceVariant:
    if isinstance(variant, SequenceVariant):
        return variant
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; allowed: {', '.join(VARIANTS)}")
    return load_sequences(variant)


def family(kind: str) -> str:
    """``noise`` (frames compared with frame 0) or ``temporal`` (with the previous frame)."""
    return PERTURBATIONS.get(split_kind(kind)[0]).family


def _through(image: np.ndarray, steps) -> np.ndarray:
    """An HxWx3 uint8 image through preprocessing steps (PIL, as the originals)."""
    if not steps:
        return image
    pil = Image.fromarray(image)
    for step in steps:
        pil = apply_step(pil, step)
    return np.asarray(pil, np.uint8)


def stage_image(photo: np.ndarray, stage: str, variant) -> np.ndarray:
    """``photo`` (HxWx3 uint8) through the variant's named stage."""
    return _through(photo, _sequences(variant).stages[stage])


def stage_images(photo: np.ndarray, stages, variant) -> dict[str, np.ndarray]:
    """``{stage: stage_image(photo, stage, variant)}`` for the named stages, each step run once
    for the stages that share it (``clean``'s resize is ``precrop``)."""
    sequences = _sequences(variant)
    done = [((), photo)]  # (steps so far, image); steps are mappings, compared by content
    out = {}
    for stage in stages:
        steps = tuple(sequences.stages[stage])
        made, image = max(((p, i) for p, i in done if steps[:len(p)] == p), key=lambda pair: len(pair[0]))
        for n in range(len(made), len(steps)):
            image = _through(image, steps[n:n + 1])
            done.append((steps[:n + 1], image))
        out[stage] = image
    return out


def leading_window(shape: tuple[int, ...], steps) -> tuple[tuple[int, int, int, int] | None, tuple]:
    """The region (top, left, height, width) of an H x W frame that an output stage's leading
    crop steps keep, and the steps after them; (None, steps) where a crop reaches outside."""
    height, width = shape[:2]
    top = left = 0
    for index, step in enumerate(steps):
        box = crop_box(width, height, step)
        if box is None:
            return (top, left, height, width), tuple(steps[index:])
        if box[0] < 0 or box[1] < 0 or box[2] > width or box[3] > height:
            return None, tuple(steps)
        top, left, height, width = top + box[1], left + box[0], box[3] - box[1], box[2] - box[0]
    return (top, left, height, width), ()


def frames_from_input(image: np.ndarray, kind: str, rng=None, variant="imagenet", draws=None) -> np.ndarray:
    """The frames of ``kind`` from its input-stage image (see ``stage_image``), the output stage
    applied: (T, H, W, 3) uint8. ``draws`` replaces what the kernel would draw from ``rng``.
    Windowed kernels make only the region the output stage's crops keep."""
    sequences = _sequences(variant)
    perturbation, _ = split_kind(kind)
    kernel = PERTURBATIONS.get(perturbation)
    params = sequences.params_for(kind)
    if draws is None:
        draws = kernel.draw(np.random.default_rng(rng), image.shape, params)
    output = sequences.stages[params["output"]]
    window, steps = leading_window(image.shape, output)
    if window is not None and kernel.windowed:
        frames = kernel.apply(image, params, draws, window=window)
    else:
        frames = kernel.apply(image, params, draws)
        window, steps = leading_window(frames.shape[1:], output)
        if window is not None and window != (0, 0, *frames.shape[1:3]):
            top, left, height, width = window
            frames = np.ascontiguousarray(frames[:, top:top + height, left:left + width])
    return np.stack([_through(frame, steps) for frame in frames]) if steps else frames


def perturb(photo, kind: str, rng=None, variant="imagenet", draws=None) -> np.ndarray:
    """The frames of ImageNet-P sequence ``kind`` for ``photo`` with ``variant``'s constants.

    Parameters
    ----------
    photo : numpy.ndarray
        HxWx3 uint8 (HxW grey and HxWx4 are converted to RGB); never modified. It goes through
        the kind's input stage first (the variant's resize and crop, or the full photo).
    kind : str
        One of ``sequence_names("all")``: a perturbation, with ``_2`` / ``_3`` for the noise
        kinds' difficulties.
    rng : numpy.random.Generator or int, optional
        The only source of randomness.
    variant : str or SequenceVariant
        Whose constants (``configs/variants/<variant>.yaml``, its ``perturbations`` section).
    draws : optional
        Replaces what the kernel would draw from ``rng`` (an original script's draws, replayed).

    Returns
    -------
    numpy.ndarray
        (T, H, W, 3) uint8 frames, frame 0 first.

    Raises
    ------
    ValueError
        Unknown kind or variant, wrong dtype or shape, naming what is allowed.
    """
    sequences = _sequences(variant)
    stage = sequences.params_for(kind)["input"]  # an unknown kind fails here, naming the 20
    rgb = as_rgb(photo)
    return frames_from_input(stage_image(rgb, stage, sequences), kind, rng, sequences, draws)
