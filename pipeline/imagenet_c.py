"""ImageNet-C as a task: one key per (shard, corruption), a block of every severity of that
corruption for the shard's images (dims severity, image, y, x, channel)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from corruptions import CORRUPTIONS, corrupt_severities, load_variant, rng_for
from corruptions.config import preprocess

from .readers import DEFAULT_MAX_PIXELS, Item, deterministic, load_pixels, source_digest
from .task import IMAGE_DIMS, Block, CardText, Key, Shard, TaskSpec, shard_keys

DIMS = IMAGE_DIMS


def load_clean(items: Sequence[Item], variant: str, start: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS) -> Shard:
    """Decode and preprocess a shard once for all its keys; unreadable images are reported."""
    size = tuple(load_variant(variant).size)
    images = np.zeros((len(items),) + size + (3,), np.uint8)
    ok = np.zeros(len(items), bool)
    failures, sources = [], [""] * len(items)
    for index, item in enumerate(items):
        try:
            clean = preprocess(load_pixels(item, max_pixels), variant)
            if clean.shape[:2] != size:
                raise ValueError(f"preprocessed to {clean.shape[:2]}, expected {size}")
            sources[index] = source_digest(item)
            images[index], ok[index] = clean, True
        except Exception as exc:  # noqa: BLE001 - any decoder error is this file's failure, not the run's
            failures.append({"image_id": item.image_id, "row": start + index, "path": item.where,
                             "reason": deterministic(f"{type(exc).__name__}: {exc}")})
    return Shard(tuple(items), images, ok, tuple(failures), tuple(sources))


@dataclass(frozen=True)
class ImageNetC:
    variant: str
    names: tuple[str, ...]  # corruptions, in the paper's order
    levels: tuple[int, ...]  # severities
    seed: int
    max_pixels: int = DEFAULT_MAX_PIXELS
    name = "imagenet-c"
    dims = DIMS
    registry = CORRUPTIONS

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(load_variant(self.variant).size)

    def keys(self, count: int, shard_size: int) -> list[Key]:
        return shard_keys(self.names, count, shard_size)

    def load_shard(self, items: Sequence[Item], start: int = 0) -> Shard:
        return load_clean(items, self.variant, start, self.max_pixels)

    def family(self, name: str) -> str:
        return self.registry.get(name).family

    def rng(self, name: str, level: int, item: Item) -> np.random.Generator:
        return rng_for(self.seed, self.variant, name, level, item.image_id, task=self.name)

    def produce(self, key: Key, shard: Shard) -> Block:
        """Every severity of ``key.name`` for the shard's readable images; no I/O."""
        variant = load_variant(self.variant)
        data = np.zeros((len(self.levels),) + shard.images.shape, np.uint8)
        for index, item in enumerate(shard.items):
            if shard.ok[index]:
                rngs = [self.rng(key.name, level, item) for level in self.levels]
                data[:, index] = corrupt_severities(shard.images[index], key.name, self.levels, rngs, variant)
        return Block(key, self.dims, self.levels, data, shard.items, shard.ok)


CARD = CardText(
    about="the corruption-robustness benchmark of Hendrycks & Dietterich (ICLR 2019), ImageNet-C",
    fidelity="""Deterministic corruptions and, fed the original's own random draws, frost, fog, snow and motion
blur equal the original script's outputs bit for bit; glass blur, elastic transform, spatter and
zoom blur within one grey level on at most 0.05% of values; every corruption x severity matches
the originals' statistics within their seed-to-seed spread (see the generator's README).""",
    differences="""- Random draws come from NumPy Generators derived from (seed, variant, corruption, severity,
  image id), not the original's global RandomState: stochastic corruptions match the official
  files in distribution, not pixel for pixel.
- Library versions differ from 2018's (resampling, ImageMagick's motion blur is reimplemented
  bit-exactly for ImageMagick 6), which can move single values by a level.""",
    citation="""@inproceedings{hendrycks2019robustness,
  title={Benchmarking Neural Network Robustness to Common Corruptions and Perturbations},
  author={Dan Hendrycks and Thomas Dietterich},
  booktitle={Proceedings of the International Conference on Learning Representations},
  year={2019}
}""",
    url="https://github.com/hendrycks/robustness", creators=("Dan Hendrycks", "Thomas Dietterich"),
    published="2019-05-06")

SPEC = TaskSpec(
    name="imagenet-c", dims=DIMS, default_formats=("jpeg", "zarr"),
    default_shard_size=64, lossless_store=False, names_key="corruptions", severities=True, noun="corrupted images",
    scoring="images", title="ImageNet-C",
    build=lambda config: ImageNetC(config.variant, tuple(config.corruptions), tuple(config.severities), config.seed,
                                   config.max_pixels),
    card=CARD)
