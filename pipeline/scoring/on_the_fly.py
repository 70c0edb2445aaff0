"""Scoring without materialising the benchmark: the loader's worker processes read each clean
source image once, produce its corrupted versions through the generator's own code path (the
task's ``produce``, the same seeds), store them as the benchmark stores them (the JPEG
quality-85 round trip of the JPEG tree, or CIFAR's raw pixels) and hand them to the model.

The guarantee: the model sees exactly the bytes it would see when scoring the output of
``generate`` with the same run config and seed, on the same library versions (the results
record them, with the variant file's digest).
"""
from __future__ import annotations

import numpy as np

from ..formats.zarr_codecs import decode_jpeg
from ..imagenet_c import task_from_config
from ..readers import read_source
from ..task import Key
from .loader import fit


class OnTheFly:
    """A scorer's data source made from a run config and its clean source, in place of a tree."""
    kind = "on_the_fly"

    def __init__(self, config: dict, classes=None):
        self.config = config
        self.task = task_from_config(config)
        self.source = read_source(config["reader"], config["source"], config.get("labels"))
        if not self.source.items:
            raise ValueError(f"{config['source']}: no images for reader {config['reader']!r}")
        self.classes = list(classes) if classes is not None else list(self.source.classes)
        # what the materialised benchmark holds: JPEG files, or CIFAR's raw arrays
        self.jpeg = "cifar_npy" not in config["outputs"]["formats"]

    def cells(self) -> list[tuple[str, int]]:
        return [(name, level) for name in self.task.names for level in self.task.levels]

    def files(self, cell):
        return None

    def count(self, cell) -> int:
        return len(self.source.items)

    def identity(self) -> dict:
        from corruptions import load_variant

        from ..engine import byte_versions
        return {"task": self.task.name, "run_config": self.config["name"], "variant": self.config["variant"],
                "variant_sha256": load_variant(self.config["variant"]).sha256, "seed": self.config["seed"],
                "source": self.source.root, "source_digest": self.source.digest(),
                "stored_as": "jpeg" if self.jpeg else "raw", "versions": byte_versions()}

    def produced_batches(self, cells: list, config: dict):
        return _Produced(self, cells, config["input_size"], config["resize"])


class _Produced:
    """Item i: every cell's image of source image i, one batch (decoded once, 1 x cells)."""

    def __init__(self, data: OnTheFly, cells: list, input_size: int, resize: int):
        self.data, self.cells, self.input_size, self.resize = data, cells, input_size, resize

    def __len__(self):
        return len(self.data.source.items)

    def __getitem__(self, index):
        import torch
        data, task = self.data, self.data.task
        item = data.source.items[index]
        shard = task.load_shard([item], index)
        if not shard.ok[0]:
            return (torch.zeros((0, self.input_size, self.input_size, 3), dtype=torch.uint8),
                    torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64),
                    [f"{item.where}: {shard.failures[0]['reason']}"])
        images = np.empty((len(self.cells), self.input_size, self.input_size, 3), np.uint8)
        position = {cell: i for i, cell in enumerate(self.cells)}
        jpeg = data.config["outputs"]["jpeg"]
        for name in dict.fromkeys(name for name, _ in self.cells):
            block = task.produce(Key(name, index, index, index + 1), shard)
            for level_index, level in enumerate(block.levels):
                if (name, level) not in position:
                    continue
                image = (decode_jpeg(block.jpeg(level_index, 0, jpeg["quality"], jpeg["optimize"])) if data.jpeg
                         else block.data[level_index, 0])
                images[position[(name, level)]] = fit(image, self.input_size, self.resize)
        return (torch.from_numpy(images), torch.full((len(self.cells),), item.label, dtype=torch.int64),
                torch.arange(len(self.cells), dtype=torch.int64), [])
