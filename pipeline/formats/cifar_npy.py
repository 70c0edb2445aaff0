"""The official CIFAR-10-C / CIFAR-100-C layout: ``<corruption>.npy`` of shape (L N, 32, 32, 3)
uint8, severity-major (all images at the first severity, then the next), and ``labels.npy``
(the labels repeated L times). The official files hold L = 5 severities; a run over a subset
also writes ``severities.json`` saying which, and the reader follows it."""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corruptions import SEVERITIES

from ..files import atomic_write_bytes, inside, sha256
from ..task import IMAGE_DIMS, SEQUENCE_DIMS
from .common import DataError
from .common import Reader as BaseReader
from .common import SequenceReader as BaseSequenceReader
from .common import Videos

DIMS = IMAGE_DIMS
LEVELS_FILE = "severities.json"
OFFICIAL_LEVELS = SEVERITIES  # what the official files hold


@dataclass(frozen=True)
class Writer:
    root: str
    format = "cifar_npy"
    dims = DIMS

    def _path(self, name: str, part: bool) -> Path:
        return inside(Path(self.root), f".{name}.npy.part" if part else f"{name}.npy")

    def prepare(self, plan) -> None:
        Path(self.root).mkdir(parents=True, exist_ok=True)
        levels = plan.task.levels
        n, rows = len(plan.items), len(plan.items) * len(levels)
        height, width = plan.task.image_size
        for name in plan.task.names:
            if not self._path(name, False).exists() and not self._path(name, True).exists():
                np.lib.format.open_memmap(self._path(name, True), mode="w+", dtype=np.uint8,
                                          shape=(rows, height, width, 3)).flush()
        labels = np.tile(np.asarray([i.label for i in plan.items], np.int64), len(levels))
        buffer = io.BytesIO()
        np.save(buffer, labels)
        atomic_write_bytes(Path(self.root) / "labels.npy", buffer.getvalue())
        if tuple(levels) != OFFICIAL_LEVELS:
            atomic_write_bytes(Path(self.root) / LEVELS_FILE,
                               json.dumps({"severities": list(levels), "images": n}).encode())

    def write(self, block) -> dict[str, str]:
        key = block.key
        path = self._path(key.name, True)
        if not path.exists():  # finalised already: a retried unit of a finished corruption
            path = self._path(key.name, False)
        array = np.load(path, mmap_mode="r+")
        total = array.shape[0] // len(block.levels)
        digests = {}
        for level_index, level in enumerate(block.levels):
            row = total * level_index + key.start
            array[row:row + len(block.items)] = block.data[level_index]
            digests[f"{key.name}.npy[{level}][{key.start}:{key.stop}]"] = sha256(
                np.ascontiguousarray(block.data[level_index]).tobytes())
        array.flush()
        return digests

    def finalise(self, plan, failures, complete: bool = True) -> list[str]:
        done = []
        for name in plan.task.names:
            part, final = self._path(name, True), self._path(name, False)
            if part.exists():
                os.replace(part, final)
            done.append(str(final))
        return done


@dataclass(frozen=True)
class SequenceWriter(Writer):
    """CIFAR-10-P / CIFAR-100-P, as ``make_cifar_p.py`` saves them: ``<sequence kind>.npy`` of
    shape (N, T, 32, 32, 3) uint8 and ``labels.npy`` (N,). Files are finalised as ``Writer``'s."""
    dims = SEQUENCE_DIMS

    def prepare(self, plan) -> None:
        Path(self.root).mkdir(parents=True, exist_ok=True)
        height, width = plan.task.image_size
        for kind in plan.task.names:
            if not self._path(kind, False).exists() and not self._path(kind, True).exists():
                np.lib.format.open_memmap(self._path(kind, True), mode="w+", dtype=np.uint8,
                                          shape=(len(plan.items), plan.task.frame_count(kind), height, width, 3)).flush()
        buffer = io.BytesIO()
        np.save(buffer, np.asarray([i.label for i in plan.items], np.int64))
        atomic_write_bytes(Path(self.root) / "labels.npy", buffer.getvalue())

    def write(self, block) -> dict[str, str]:
        key = block.key
        path = self._path(key.name, True)
        if not path.exists():
            path = self._path(key.name, False)
        array = np.load(path, mmap_mode="r+")
        data = np.stack([block.fixed(row) if good else np.zeros(array.shape[1:], np.uint8)
                         for row, good in enumerate(block.ok)])
        array[key.start:key.stop] = data
        array.flush()
        return {f"{key.name}.npy[{key.start}:{key.stop}]": sha256(data.tobytes())}


def recognise(path: Path) -> bool:
    return (path / "labels.npy").is_file()


def stored_levels(root: Path, rows: int) -> tuple[int, ...]:
    """The severities a folder holds: ``severities.json`` where present, else the official five."""
    sidecar = root / LEVELS_FILE
    if sidecar.is_file():
        levels = tuple(json.loads(sidecar.read_text())["severities"])
    else:
        levels = OFFICIAL_LEVELS
    if rows % len(levels):
        raise DataError(f"{root}: {rows} rows are not {len(levels)} severities of equal size")
    return levels


class Reader(BaseReader):
    kind = "cifar_npy"

    def __init__(self, root: Path, classes, allow_partial: bool = False):
        from corruptions import corruption_names
        self.root, self.classes = Path(root), classes
        self.labels = np.load(self.root / "labels.npy")
        self.levels = stored_levels(self.root, len(self.labels))
        self._cells = []
        for name in corruption_names("all"):
            if (self.root / f"{name}.npy").exists():
                rows = np.load(self.root / f"{name}.npy", mmap_mode="r").shape[0]
                if rows != len(self.labels):
                    raise DataError(f"{self.root / name}.npy holds {rows} rows but labels.npy {len(self.labels)}")
                self._cells += [(name, s) for s in self.levels]

    def cells(self):
        return list(self._cells)

    def count(self, cell):
        return len(self.labels) // len(self.levels)

    def slices(self, cell, batch_size):
        n = self.count(cell)
        return [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]

    def read(self, cell, start, stop):
        data = np.load(self.root / f"{cell[0]}.npy", mmap_mode="r")
        offset = self.levels.index(cell[1]) * self.count(cell)
        return (np.array(data[offset + start:offset + stop]),
                np.asarray(self.labels[offset + start:offset + stop], np.int64))


def holds_sequences(root: Path) -> bool:
    """A CIFAR-10-P / CIFAR-100-P folder: ``labels.npy`` beside (N, T, H, W, 3) arrays."""
    from perturbations import sequence_names
    return (root / "labels.npy").is_file() and any(
        (root / f"{kind}.npy").is_file() and len(_shape(root / f"{kind}.npy") or ()) == 5 for kind in sequence_names("all"))


def _shape(path: Path) -> tuple[int, ...] | None:
    """The array's shape, or None where the file is no readable .npy array."""
    try:
        return np.load(path, mmap_mode="r").shape
    except (OSError, ValueError, EOFError):
        return None


class SequenceReader(BaseSequenceReader):
    """``<sequence kind>.npy`` (N, T, 32, 32, 3) uint8 and ``labels.npy`` (N,), as
    ``make_cifar_p.py`` saved them (ours alike)."""
    kind = "cifar_npy"

    def __init__(self, root: Path, classes, allow_partial: bool = False):
        from perturbations import sequence_names
        super().__init__()
        self.root, self.classes = Path(root), classes
        self.labels = np.asarray(np.load(self.root / "labels.npy"), np.int64).reshape(-1)
        self._kinds = []
        for kind in sequence_names("all"):
            path = self.root / f"{kind}.npy"
            if not path.is_file():
                continue
            shape = _shape(path)
            if shape is None:
                self.problems.append(f"{path}: not a readable .npy array; left out")
            elif len(shape) != 5 or shape[-1] != 3:
                self.problems.append(f"{path}: shape {shape}, expected (videos, frames, height, width, 3); left out")
            elif shape[0] != len(self.labels):
                self.problems.append(f"{path}: {shape[0]} videos but labels.npy holds {len(self.labels)}; left out")
            else:
                self._kinds.append(kind)

    def kinds(self):
        return list(self._kinds)

    def videos(self, kind):
        return Videos(tuple(f"{kind}.npy[{i}]" for i in range(len(self.labels))), tuple(map(int, self.labels)))

    def load(self, kind, index):
        return np.array(np.load(self.root / f"{kind}.npy", mmap_mode="r")[index])
