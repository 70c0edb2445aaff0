"""What the scorer reads: an ImageNet-C JPEG tree (ours or the official download), our Zarr
store, or a CIFAR-10-C folder of ``.npy`` files; plus a clean set. Each yields, per
(corruption, severity) cell, batches of uint8 HxWx3 images with their class indices."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from corruptions import corruption_names

from .readers import class_folder_images, imagenet_wnids

CLEAN = ("clean", 0)


class DataError(ValueError):
    pass


@dataclass(frozen=True)
class Files:
    """A list of image files with their labels (a cell of a JPEG tree, or a clean folder)."""
    paths: tuple[str, ...]
    labels: tuple[int, ...]


def class_index(wnids: list[str], classes: list[str] | None) -> dict[str, int]:
    """Folder name -> class index: ``classes`` when given (e.g. the 1000 ImageNet wnids,
    so a tree holding only some classes keeps the standard indices), else sorted folders."""
    if classes is None:
        return {w: i for i, w in enumerate(sorted(set(wnids)))}
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(wnids) - set(index))
    if unknown:
        raise DataError(f"class folders not in the class list: {', '.join(unknown[:5])}"
                        f"{' ...' if len(unknown) > 5 else ''} (give --classes, or use folders named by class)")
    return index


def list_folder(root: Path, classes: list[str] | None) -> Files:
    """``root/<class>/<image>``, sorted as torchvision's ImageFolder."""
    found = class_folder_images(root)
    index = class_index([e.name for e in os.scandir(root) if e.is_dir()], classes)
    return Files(tuple(str(path) for _, path in found), tuple(index[folder] for folder, _ in found))


# OpenCV >= 4.10 decodes straight to RGB; reversing BGR afterwards costs as much again.
_READ_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)


def decode(path: str, input_size: int, resize: int) -> np.ndarray:
    """RGB uint8, resized (shorter side, bilinear) and centre-cropped unless already square at
    size. Any file that cannot be read or decoded raises ``DataError`` naming it."""
    try:
        image = cv2.imdecode(np.fromfile(path, np.uint8), _READ_RGB if _READ_RGB is not None else cv2.IMREAD_COLOR)
    except (OSError, cv2.error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if image is None:
        raise DataError(f"cannot decode {path}: not an image, or its data are damaged")
    if _READ_RGB is None:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    height, width = image.shape[:2]
    if (height, width) != (input_size, input_size):
        from PIL import Image

        from .preprocess import apply_step
        pil = Image.fromarray(image)
        pil = apply_step(pil, {"op": "resize_shorter", "size": resize})
        pil = apply_step(pil, {"op": "center_crop", "size": input_size})
        return np.array(pil)
    return image


class ScoringData:
    """Common interface: ``kind``, ``cells()``, ``classes``, and per cell either ``files(cell)``
    (image files) or ``slices(cell, batch)`` and ``read(cell, start, stop)`` (stored arrays);
    either way they are read in worker processes."""
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


class JpegTreeData(ScoringData):
    """``root/<corruption>/<severity>/<class>/<image>`` (ImageNet-C's published layout)."""
    kind = "jpeg_tree"

    def __init__(self, root: Path, classes: list[str] | None):
        self.root, self.classes = root, classes
        self._cells = [(c, int(s.name)) for c in corruption_names("all") if (root / c).is_dir()
                       for s in sorted((root / c).iterdir()) if s.is_dir() and s.name in "12345"]
        self._files: dict = {}

    def cells(self):
        return list(self._cells)

    def files(self, cell):
        if cell not in self._files:
            self._files[cell] = list_folder(self.root / cell[0] / str(cell[1]), self.classes)
        return self._files[cell]

    def count(self, cell):
        return len(self.files(cell).paths)


class CleanFolderData(JpegTreeData):
    """A clean validation set in class folders: the single cell ``("clean", 0)``."""
    kind = "clean_folder"

    def __init__(self, root: Path, classes):
        self.root, self.classes, self._files = root, classes, {}
        self._cells = [CLEAN]

    def files(self, cell):
        if cell not in self._files:
            self._files[cell] = list_folder(self.root, self.classes)
        return self._files[cell]


class ZarrData(ScoringData):
    """Our Zarr store: read a chunk of images at a time, nothing to decode."""
    kind = "zarr"

    def __init__(self, path: Path, classes):
        import zarr
        self.group = zarr.open_group(path, mode="r")
        self.labels = np.asarray(self.group["labels"][...], np.int64)
        stored = self.group.attrs.get("classes")
        self.classes = classes if classes is not None else (list(stored) if stored else None)
        self._cells = [(c, int(s)) for c in corruption_names("all") if c in self.group
                       for s in sorted(self.group[c].array_keys()) if s in "12345"]

    def cells(self):
        return list(self._cells)

    def count(self, cell):
        return int(self.group[f"{cell[0]}/{cell[1]}"].shape[0])

    def slices(self, cell, batch_size):
        array = self.group[f"{cell[0]}/{cell[1]}"]
        step = max(array.chunks[0], batch_size // array.chunks[0] * array.chunks[0])  # whole chunks
        return [(start, min(start + step, array.shape[0])) for start in range(0, array.shape[0], step)]

    def read(self, cell, start, stop):
        return self.group[f"{cell[0]}/{cell[1]}"][start:stop], self.labels[start:stop]


class CifarNpyData(ScoringData):
    """CIFAR-10-C / CIFAR-100-C: ``<corruption>.npy`` (5N, 32, 32, 3), ``labels.npy``."""
    kind = "cifar_npy"

    def __init__(self, root: Path, classes):
        self.root, self.classes = root, classes
        self.labels = np.load(root / "labels.npy")
        self._cells = []
        for name in corruption_names("all"):
            if (root / f"{name}.npy").exists():
                rows = np.load(root / f"{name}.npy", mmap_mode="r").shape[0]
                if rows % 5:
                    raise DataError(f"{root / name}.npy holds {rows} rows, not 5 severities of equal size")
                self._cells += [(name, s) for s in range(1, 6)]

    def cells(self):
        return list(self._cells)

    def count(self, cell):
        return np.load(self.root / f"{cell[0]}.npy", mmap_mode="r").shape[0] // 5

    def slices(self, cell, batch_size):
        n = self.count(cell)
        return [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]

    def read(self, cell, start, stop):
        data = np.load(self.root / f"{cell[0]}.npy", mmap_mode="r")
        offset = (cell[1] - 1) * (data.shape[0] // 5)
        return (np.array(data[offset + start:offset + stop]),
                np.asarray(self.labels[offset + start:offset + stop], np.int64))


def open_data(path: str | os.PathLike, classes: list[str] | None, clean: bool = False) -> ScoringData:
    """Recognise the layout at ``path``."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"data {path} does not exist")
    if clean:
        return CleanFolderData(path, classes)
    if (path / "zarr.json").exists():
        return ZarrData(path, classes)
    if (path / "labels.npy").exists():
        return CifarNpyData(path, classes)
    if any((path / c).is_dir() for c in corruption_names("all")):
        return JpegTreeData(path, classes)
    zarrs = sorted(path.glob("*.zarr"))
    if len(zarrs) == 1:
        return ZarrData(zarrs[0], classes)
    raise DataError(f"{path}: not an ImageNet-C JPEG tree (<corruption>/<severity>/<class>/), "
                    "a Zarr store, or a CIFAR-10-C folder (<corruption>.npy + labels.npy)")


def default_classes(num_outputs: int, data: ScoringData) -> list[str] | None:
    """The class list for a model with ``num_outputs`` classes: the stored list, ImageNet's
    1000 wnids, or None (labels are already indices)."""
    if data.classes is not None:
        return data.classes
    if num_outputs == 1000:
        return list(imagenet_wnids())
    return None
