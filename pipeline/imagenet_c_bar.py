"""ImageNet-C-bar (and CIFAR-10-C-bar, its 32 px variant) as a task: one key per (shard,
corruption), a block of every level of that corruption for the shard's images (dims severity,
image, y, x, channel), as ImageNet-C's; its kernels are ``corruptions.bar``'s and its corruptions
the variant's ``c_bar`` table. Levels are 1-5 as the released datasets name their folders (the
original script's float severities are each level's ``severity`` in the table)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corruptions.bar import BAR, corrupt_bar, load_bar
from corruptions.settings import ConfigError

from .imagenet_c import ImageNetC
from .task import IMAGE_DIMS, Block, CardText, Key, Shard, TaskSpec

DIMS = IMAGE_DIMS
NAME = "imagenet-c-bar"


@dataclass(frozen=True)
class ImageNetCBar(ImageNetC):
    """ImageNet-C's task (keys, shard load, streams) with C-bar's kernels and constants."""
    name = NAME
    registry = BAR

    def produce(self, key: Key, shard: Shard) -> Block:
        """Every level of ``key.name`` for the shard's readable images; no I/O."""
        bar = load_bar(self.variant)
        data = np.zeros((len(self.levels),) + shard.images.shape, np.uint8)
        for index, item in enumerate(shard.items):
            if shard.ok[index]:
                for row, level in enumerate(self.levels):
                    data[row, index] = corrupt_bar(shard.images[index], key.name, level,
                                                   self.rng(key.name, level, item), bar)
        return Block(key, self.dims, self.levels, data, shard.items, shard.ok)


def _resolve(config):
    """``bar_corruptions``: ``benchmark`` is the variant's ten, in its order; a list must be
    among them (kept in that order)."""
    try:
        benchmark = load_bar(config.variant).names
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"key 'variant': {exc}") from None
    chosen = config.bar_corruptions
    if chosen == "benchmark":
        return config.model_copy(update={"bar_corruptions": benchmark})
    wrong = [name for name in chosen if name not in benchmark]
    if wrong:
        raise ConfigError(f"key 'bar_corruptions': {wrong[0]!r} is not a C-bar corruption of variant {config.variant}; "
                          f"allowed: benchmark or a list among {', '.join(benchmark)}")
    return config.model_copy(update={"bar_corruptions": tuple(n for n in benchmark if n in chosen)})


CARD = CardText(
    about=("the companion benchmark of ImageNet-C by Mintun, Kirillov & Xie (NeurIPS 2021), ten corruptions "
           "chosen to be dissimilar from common augmentations (CIFAR-10-C-bar: its ten at 32 px),"),
    fidelity="""Every corruption, fed the original generator's own draws, equals its output bit for bit on
every golden image (facebookresearch/augmentation-corruption, imagenet_c_bar/corrupt.py), and the
original's statistics (PSNR, mean shift, gradient ratio over four photos and six seeds) are
reproduced; this generator's own draws follow the original's distributions.""",
    differences="""- Random draws come from NumPy Generators derived from (seed, variant, corruption, level, image
  id), not the original's global RandomState (whose draws in the released files depended on the
  DataLoader's workers and cannot be replayed): the images match the official files in
  distribution, not pixel for pixel.
- Level folders are 1-5, as the released dataset names them; the original script wrote each
  level's float severity (`caustic_refraction/2.35`); the variant file maps one to the other.""",
    citation="""@inproceedings{mintun2021interaction,
  title={On Interaction Between Augmentations and Corruptions in Natural Corruption Robustness},
  author={Eric Mintun and Alexander Kirillov and Saining Xie},
  booktitle={Advances in Neural Information Processing Systems},
  year={2021}
}""",
    url="https://github.com/facebookresearch/augmentation-corruption", released=("imagenet", "cifar"),
    creators=("Eric Mintun", "Alexander Kirillov", "Saining Xie"), published="2021-12-06")

SPEC = TaskSpec(
    name=NAME, dims=DIMS, default_formats=("jpeg", "zarr"),
    default_shard_size=64, lossless_store=False, names_key="bar_corruptions", severities=True,
    noun="corrupted images", scoring="images", title="ImageNet-C-bar",
    build=lambda config: ImageNetCBar(config.variant, tuple(config.bar_corruptions), tuple(config.severities),
                                      config.seed, config.max_pixels),
    resolve=_resolve, card=CARD)

__all__ = ["ImageNetCBar", "DIMS", "SPEC"]
