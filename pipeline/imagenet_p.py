"""ImageNet-P as a task: one key per (shard, sequence kind); its block holds that kind's frames
for every readable image of the shard (dims image, frame, y, x, channel).

A shard's load decodes each source image once and makes the input stages its kinds need (the
clean crop, the pre-crop image, the full-resolution photo): every kind of the shard then starts
from them. Frames whose size depends on the image (imagenet64 / tiny motion blur: shorter side
64, no crop, as the originals) stay so in ``frames``; fixed-shape formats crop them to the
variant's size (``formats.common.fixed_frames``, whose rule they record in their attributes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from corruptions import rng_for
from corruptions.preprocess import to_rgb
from perturbations import family, frames_from_input, load_sequences, stage_images

from .imagenet_c import CARD as IMAGENET_C_CARD
from .readers import DEFAULT_MAX_PIXELS, Item, deterministic, load_pixels, source_digest
from .task import SEQUENCE_DIMS as DIMS
from .task import CardText, Key, Shard, TaskSpec, shard_keys


@dataclass
class SequenceBlock:
    key: Key
    dims: tuple[str, ...]
    size: tuple[int, int]  # the variant's frame size
    frame_count: int
    frames: list  # per row: (T, h, w, 3) uint8, or None where the source could not be read
    items: tuple[Item, ...]
    ok: np.ndarray
    family: str  # noise or temporal: the encoder settings differ
    cropped: dict = field(default_factory=dict, repr=False)  # formats' cache (formats.common.fixed_frames)


@dataclass(frozen=True)
class ImageNetP:
    variant: str
    names: tuple[str, ...]  # sequence kinds, in the paper's order
    seed: int
    max_pixels: int = DEFAULT_MAX_PIXELS
    name = "imagenet-p"
    dims = DIMS
    levels = (1,)  # one sequence per image and kind

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(load_sequences(self.variant).size)

    def frame_count(self, kind: str) -> int:
        return load_sequences(self.variant).frames(kind)

    def keys(self, count: int, shard_size: int) -> list[Key]:
        return shard_keys(self.names, count, shard_size)

    def stages(self) -> tuple[str, ...]:
        sequences = load_sequences(self.variant)
        return tuple(dict.fromkeys(sequences.params_for(kind)["input"] for kind in self.names))

    def load_shard(self, items: Sequence[Item], start: int = 0) -> Shard:
        """Decode each image once and make every input stage the run's kinds start from."""
        sequences = load_sequences(self.variant)
        inputs: list = [None] * len(items)
        ok = np.zeros(len(items), bool)
        failures, sources = [], [""] * len(items)
        for index, item in enumerate(items):
            try:
                photo = np.asarray(to_rgb(load_pixels(item, self.max_pixels)), np.uint8)
                inputs[index] = stage_images(photo, self.stages(), sequences)
                sources[index] = source_digest(item)
                ok[index] = True
            except Exception as exc:  # noqa: BLE001 - any decoder error is this file's failure, not the run's
                failures.append({"image_id": item.image_id, "row": start + index, "path": item.where,
                                 "reason": deterministic(f"{type(exc).__name__}: {exc}")})
        return Shard(tuple(items), inputs, ok, tuple(failures), tuple(sources))

    def family(self, name: str) -> str:
        return family(name)

    def rng(self, kind: str, item: Item) -> np.random.Generator:
        return rng_for(self.seed, self.variant, kind, 1, item.image_id, task=self.name)

    def produce(self, key: Key, shard: Shard) -> SequenceBlock:
        """The frames of ``key.name`` for the shard's readable images; no I/O."""
        sequences = load_sequences(self.variant)
        stage = sequences.params_for(key.name)["input"]
        frames = [frames_from_input(shard.images[i][stage], key.name, self.rng(key.name, item), sequences)
                  if shard.ok[i] else None for i, item in enumerate(shard.items)]
        return SequenceBlock(key, self.dims, self.image_size, self.frame_count(key.name), frames, shard.items,
                             shard.ok, family(key.name))


def _resolve(config):
    """``noise_tune: none`` is x264 without a tune (None), for the noise kinds' videos."""
    mp4 = config.outputs.mp4
    if mp4.noise_tune != "none":
        return config
    outputs = config.outputs.model_copy(update={"mp4": mp4.model_copy(update={"noise_tune": None})})
    return config.model_copy(update={"outputs": outputs})


CARD = CardText(
    about="the perturbation-robustness benchmark of Hendrycks & Dietterich (ICLR 2019), ImageNet-P",
    fidelity="""Every frame is the original ImageNet-P script's (constants, order of operations, the noise
difficulties' cumulative draws, truncation), encoded as the originals' ffmpeg command encoded them
(H.264, 1 frame per second, yuv444p, CRF 20 / the noise kinds' grain tuning); the frames match the
originals' statistics and golden frames (see the generator's docs/fidelity.md).""",
    differences="""- Random draws come from NumPy Generators derived from (seed, variant, kind, image id), not the
  original's global RandomState: stochastic sequences match the official files in distribution.
- x264 runs with `cpu-independent` so the bytes do not depend on the CPU: the bitstreams are
  not the official files' (another x264 build), the decoded frames are as close as any re-encode.""",
    citation=IMAGENET_C_CARD.citation, url=IMAGENET_C_CARD.url, creators=IMAGENET_C_CARD.creators,
    published=IMAGENET_C_CARD.published, released=("imagenet", "tiny", "cifar"))

SPEC = TaskSpec(
    name="imagenet-p", dims=DIMS, default_formats=("mp4", "zarr"),
    default_shard_size=16, lossless_store=True, names_key="sequences", severities=False, noun="sequences",
    scoring="sequences", title="ImageNet-P",
    build=lambda config: ImageNetP(config.variant, tuple(config.sequences), config.seed, config.max_pixels),
    resolve=_resolve, card=CARD)

__all__ = ["ImageNetP", "SequenceBlock", "DIMS", "SPEC"]
