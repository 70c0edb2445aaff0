"""What every format's reader offers the scorer, and the error it raises."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corruptions import SEVERITIES

LEVEL_NAMES = tuple(map(str, SEVERITIES))  # severity folders and array names: exactly these


class DataError(ValueError):
    """Data that cannot be read as any known layout, or that is incomplete."""


@dataclass(frozen=True)
class Files:
    """A list of image files with their labels (a cell of a JPEG tree, or a clean folder)."""
    paths: tuple[str, ...]
    labels: tuple[int, ...]


class Reader:
    """Common interface: ``kind``, ``cells()`` [(name, level)], ``classes``, and per cell either
    ``files(cell)`` (image files to decode) or ``slices(cell, batch)`` and ``read(cell, start,
    stop)`` (stored arrays). Either way the scorer reads them in worker processes."""
    task = "imagenet-c"
    kind = "?"
    classes: list[str] | None = None

    def cells(self) -> list[tuple[str, int]]:
        raise NotImplementedError

    def files(self, cell) -> Files | None:
        return None

    def slices(self, cell, batch_size: int) -> list[tuple[int, int]]:
        raise NotImplementedError

    def read(self, cell, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Images [start, stop) of ``cell`` (uint8 N x H x W x 3) and their int64 labels."""
        raise NotImplementedError

    def count(self, cell) -> int:
        raise NotImplementedError


@dataclass(frozen=True)
class Videos:
    """The sequences of one ImageNet-P kind: a name each (a file, or ``store:kind[row]``) and
    its label."""
    names: tuple[str, ...]
    labels: tuple[int, ...]


class SequenceReader:
    """What an ImageNet-P reader offers the scorer: ``kinds()`` present (sequence kind names),
    ``videos(kind)``, ``load(kind, index)`` -> T x H x W x 3 uint8 (raises ``DataError`` for a
    video that cannot be read), and ``problems``: what listing found wrong (empty folders,
    folders that are no sequence kind), left out and reported. ``in_workers``: loading is
    decoding (MP4), worth worker processes; stored arrays are read where they are needed.
    ``by_source``: video ``index`` of every kind comes from one source item, so the loader
    hands a worker all of an index's videos together (produced on the fly)."""
    task = "imagenet-p"
    kind = "?"
    classes: list[str] | None = None
    in_workers = False
    by_source = False

    def __init__(self):
        self.problems: list[str] = []

    def kinds(self) -> list[str]:
        raise NotImplementedError

    def videos(self, kind: str) -> Videos:
        raise NotImplementedError

    def count(self, kind: str) -> int:
        return len(self.videos(kind).names)

    def load(self, kind: str, index: int) -> np.ndarray:
        raise NotImplementedError

    def prepare(self) -> None:
        """Made once before loading starts (before worker processes fork, so they share it)."""
