"""Scoring without materialising the benchmark: the loader's worker processes read each clean
source image once, produce its corrupted versions (ImageNet-C) or its sequences (ImageNet-P)
through the generator's own code path (the task's ``load_shard`` and ``produce``, the same
seeds), store them as the benchmark stores them and hand them to the model.

- ImageNet-C: the JPEG quality-85 round trip of the JPEG tree, or CIFAR's raw pixels.
- ImageNet-P: the lossless frames of the Zarr store / CIFAR-P arrays (fixed shape: the
  imagenet64 / tiny motion-blur frames centre-cropped as the store records), or with
  ``mp4_round_trip`` each sequence encoded with the run config's x264 settings and decoded as
  the MP4 tree is read: the official, lossy form.

The guarantee: the model sees exactly the bytes it would see when scoring the output of
``generate`` with the same run config and seed, on the same library versions (the results
record them, with the variant file's digest).
"""
from __future__ import annotations

import numpy as np

from ..formats import DataError, images_as_stored, mp4_tree
from ..formats.common import SequenceReader, Videos, fixed_frames, jpeg_bytes
from ..readers import read_source
from ..task import SEQUENCE_DIMS, Key
from ..tasks import task_from_config, task_spec
from .loader import decode_bytes, fit


class _FromSource:
    """What both tasks share: the run config, its generation task and its clean source."""
    kind = "on_the_fly"
    family = None  # the run config's variant says it (scoring.data_family)
    class_folders = False  # labels are the source's own
    label_counts = None

    def _open(self, config, classes) -> None:
        self.config = config
        self.generator = task_from_config(config)
        self.source = read_source(config.reader, config.source, config.labels)
        if not self.source.items:
            raise DataError(f"{config.source}: no images for reader {config.reader!r}")
        self.classes = list(classes) if classes is not None else list(self.source.classes)
        self._index = None if self.classes == list(self.source.classes) else {c: i for i, c in enumerate(self.classes)}

    def label(self, item) -> int:
        """The item's class index in ``classes`` (the source's own index where it is that list)."""
        return item.label if self._index is None else self._index.get(item.wnid, -1)

    def identity(self) -> dict:
        """What decides the bytes the model saw: match it with a published run's manifest."""
        from corruptions import load_variant

        from ..engine import byte_versions
        return {"task": self.generator.name, "run_config": self.config.name, "variant": self.config.variant,
                "variant_sha256": load_variant(self.config.variant).sha256, "seed": self.config.seed,
                "source": self.source.root, "source_digest": self.source.digest(),
                "stored_as": self.stored_as(), "versions": byte_versions()}


class OnTheFly(_FromSource):
    """An ImageNet-C scorer's data source made from a run config and its clean source."""
    task = "imagenet-c"

    def __init__(self, config, classes=None):
        self._open(config, classes)
        self.task = self.generator.name  # ImageNet-C or C-bar: the benchmark made
        # what the materialised benchmark holds: JPEG files, or CIFAR's raw arrays
        self.jpeg = images_as_stored(config.outputs.formats) == "jpeg"

    def stored_as(self) -> str:
        return "jpeg" if self.jpeg else "raw"

    def cells(self) -> list[tuple[str, int]]:
        return [(name, level) for name in self.generator.names for level in self.generator.levels]

    def files(self, cell):
        return None

    def count(self, cell) -> int:
        return len(self.source.items)

    def produced_batches(self, cells: list, config):
        return _Produced(self, cells, config.input_size, config.resize, config.interpolation)


class _Produced:
    """Item i: every cell's image of source image i, one batch (decoded once, 1 x cells)."""

    def __init__(self, data: OnTheFly, cells: list, input_size: int, resize: int, interpolation: str):
        self.data, self.cells, self.input_size, self.resize = data, cells, input_size, resize
        self.interpolation = interpolation

    def __len__(self):
        return len(self.data.source.items)

    def __getitem__(self, index):
        import torch
        data, task = self.data, self.data.generator
        item = data.source.items[index]
        shard = task.load_shard([item], index)
        if not shard.ok[0]:
            return (torch.zeros((0, self.input_size, self.input_size, 3), dtype=torch.uint8),
                    torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64),
                    [f"{item.where}: {shard.failures[0]['reason']}"])
        images = np.empty((len(self.cells), self.input_size, self.input_size, 3), np.uint8)
        position = {cell: i for i, cell in enumerate(self.cells)}
        jpeg = data.config.outputs.jpeg
        for name in dict.fromkeys(name for name, _ in self.cells):
            block = task.produce(Key(name, index, index, index + 1), shard)
            for level_index, level in enumerate(block.levels):
                if (name, level) not in position:
                    continue
                # decoded by the very function that reads the JPEG tree's files
                image = (decode_bytes(np.frombuffer(jpeg_bytes(block, level_index, 0, jpeg.quality, jpeg.optimize),
                                                    np.uint8), f"{name}/{level}/{item.name}") if data.jpeg
                         else block.data[level_index, 0])
                images[position[(name, level)]] = fit(image, self.input_size, self.resize,
                                                      interpolation=self.interpolation)
        return (torch.from_numpy(images), torch.full((len(self.cells),), data.label(item), dtype=torch.int64),
                torch.arange(len(self.cells), dtype=torch.int64), [])


class OnTheFlySequences(_FromSource, SequenceReader):
    """An ImageNet-P scorer's data source: video ``index`` of a kind is source image ``index``'s
    sequence. ``by_source``: one worker gets a source image's videos of every kind together, so
    the image is decoded and staged once (the last one is kept)."""
    in_workers = True
    by_source = True

    def __init__(self, config, classes=None, mp4_round_trip: bool = False):
        if mp4_round_trip and mp4_tree.NAME not in config.outputs.formats:
            raise DataError(f"--mp4-round-trip: run config {config.name!r} stores no MP4s (formats: "
                            f"{', '.join(config.outputs.formats)}); its benchmark is the lossless frames")
        SequenceReader.__init__(self)
        self._open(config, classes)
        self.encodings = mp4_tree.encodings(config.outputs.mp4) if mp4_round_trip else None
        # named as the MP4 tree names them: <kind>/<class>/<stem>.mp4
        self._names = tuple("/".join(mp4_tree.relative_path("", item)[1:]) for item in self.source.items)
        self._labels = tuple(self.label(item) for item in self.source.items)
        self._shard = (None, None)

    def stored_as(self) -> str:
        if self.encodings is None:
            return "frames"
        temporal, noise = self.encodings
        return f"mp4 (temporal: {temporal.describe()}; noise: {noise.describe()})"

    def kinds(self):
        return list(self.generator.names)

    def videos(self, kind):
        return Videos(tuple(f"{kind}/{name}" for name in self._names), self._labels)

    def load(self, kind, index):
        """Source image ``index``'s ``kind`` sequence, as the materialised benchmark holds it."""
        task = self.generator
        if self._shard[0] != index:
            self._shard = (index, task.load_shard([self.source.items[index]], index))
        shard = self._shard[1]
        if not shard.ok[0]:
            raise DataError(f"{self.source.items[index].where}: {shard.failures[0]['reason']}")
        block = task.produce(Key(kind, index, index, index + 1), shard)
        if self.encodings is None:
            return fixed_frames(block, 0)
        temporal, noise = self.encodings
        return mp4_tree.decode(mp4_tree.encode(block.frames[0], noise if block.family == "noise" else temporal))

    def prepare(self):
        if self.encodings is not None:
            mp4_tree.yuv444_conversion()


def on_the_fly_data(config, classes=None, mp4_round_trip: bool = False):
    """The scorer's data source for a run config's task."""
    if task_spec(config.task).dims == SEQUENCE_DIMS:
        return OnTheFlySequences(config, classes, mp4_round_trip)
    if mp4_round_trip:
        raise DataError("--mp4-round-trip is for ImageNet-P run configs; ImageNet-C is stored as JPEG or raw arrays")
    return OnTheFly(config, classes)
