"""Source readers: list a validation set once (on the client), load one image anywhere.

A reader turns a source path into ``Source``: the ordered list of ``Item``s (what to load,
its output name and label) plus the class list. Items are small and picklable, so a shard
of them travels to a Dask worker, which loads the pixels itself.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import io
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
DATA_DIR = Path(__file__).resolve().parent / "data"
READERS = ("imagenet_folders", "imagenet_flat", "imagenet_tar", "tiny_imagenet", "cifar10", "cifar100")


@functools.lru_cache(maxsize=None)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k wnids in sorted order: a wnid's index is its standard class index."""
    return tuple((DATA_DIR / "imagenet_wnids.txt").read_text().split())


class SourceError(ValueError):
    """A source that cannot be listed (missing path, wrong layout)."""


@dataclass(frozen=True)
class Item:
    image_id: str  # unique within the source; seeds the image's random streams
    name: str  # output file name (e.g. ILSVRC2012_val_00000001.JPEG)
    wnid: str  # class folder name in the output tree
    label: int  # class index (-1 where the class is unknown)
    kind: str  # file, tar, cifar
    path: str  # file, tar archive or pickle batch
    offset: int = 0  # tar: data offset; cifar: row
    size: int = 0  # bytes (tar member, file); 0 for CIFAR rows

    @property
    def where(self) -> str:
        """Where the image comes from, for messages: the file, or archive:member."""
        return f"{self.path}:{self.name}" if self.kind == "tar" else self.path


@dataclass(frozen=True)
class Source:
    reader: str
    root: str
    items: tuple[Item, ...]
    classes: tuple[str, ...]  # index -> class name (wnid, or CIFAR class)

    def digest(self) -> str:
        """sha256 of the item list (ids, output names, classes, labels, sizes): part of a run's
        identity, so a re-run into the same OUT with another source is refused."""
        listing = hashlib.sha256()
        for item in self.items:
            listing.update(f"{item.image_id}\t{item.name}\t{item.wnid}\t{item.label}\t{item.size}\n".encode())
        return listing.hexdigest()


def load_pixels(item: Item) -> Image.Image:
    """The item's image; raises on unreadable or truncated data (the caller reports it)."""
    if item.kind == "cifar":
        return Image.fromarray(_cifar_images(item.path)[item.offset])
    if item.kind == "tar":
        with open(item.path, "rb") as archive:
            archive.seek(item.offset)
            data = archive.read(item.size)
        if len(data) != item.size:
            raise OSError(f"archive ended inside {item.name}")
        image = Image.open(io.BytesIO(data))
    else:
        image = Image.open(item.path)
    image.load()  # decode now: truncated files raise here, not later
    return image


def _size(path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def _label(wnid: str) -> int:
    wnids = imagenet_wnids()
    index = np.searchsorted(wnids, wnid)
    return int(index) if index < len(wnids) and wnids[index] == wnid else -1


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def class_folder_images(root: Path) -> list[tuple[str, Path]]:
    """(class folder, image path) under ``root/<class>/...`` in torchvision ImageFolder's
    order; non-image files are ignored, as ImageFolder does."""
    found = []
    for folder in sorted(e.name for e in os.scandir(root) if e.is_dir()):
        for dirpath, dirnames, filenames in os.walk(root / folder):
            dirnames.sort()
            found += [(folder, Path(dirpath) / name) for name in sorted(filenames) if _is_image(name)]
    return found


def read_imagenet_folders(root: Path) -> Source:
    """``root/<wnid>/<file>``: ImageNet validation sorted into class folders (also any
    ImageFolder tree)."""
    found = class_folder_images(root)
    # The file name identifies an image (and seeds its streams), as in the flat and tar
    # layouts, so the same validation image gets the same bytes whichever way it is stored;
    # trees whose file names repeat across folders use relative paths instead.
    unique = len({path.name for _, path in found}) == len(found)
    items = tuple(Item(path.name if unique else str(path.relative_to(root)), path.name, wnid, _label(wnid), "file",
                       str(path), size=_size(path)) for wnid, path in found)
    return Source("imagenet_folders", str(root), items, imagenet_wnids())


def _val_solution(root: Path, labels: str | None = None) -> dict[str, str]:
    """``LOC_val_solution.csv`` (ImageId, PredictionString "wnid x y x y ..."): id -> wnid;
    ``labels`` names the file, else it is looked for beside or above ``root``."""
    candidates = [Path(labels).expanduser()] if labels else [root / "LOC_val_solution.csv",
                                                             root.parent / "LOC_val_solution.csv"]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise SourceError(f"LOC_val_solution.csv not found (looked in {', '.join(map(str, candidates))}); "
                          "give its path with --labels")
    with open(path, newline="") as handle:
        return {row["ImageId"]: row["PredictionString"].split()[0] for row in csv.DictReader(handle)}


def _labelled(name: str, solution: dict[str, str], kind: str, path: str, offset=0, size=0) -> Item:
    wnid = solution.get(Path(name).stem, "unknown")
    return Item(name, name, wnid, _label(wnid), kind, path, offset, size)


def read_imagenet_flat(root: Path, labels: str | None = None) -> Source:
    """The validation set as distributed: a flat folder of ``ILSVRC2012_val_*.JPEG`` and
    ``LOC_val_solution.csv`` beside it (or at ``labels``)."""
    solution = _val_solution(root, labels)
    entries = sorted((e for e in os.scandir(root) if e.is_file() and _is_image(e.name)), key=lambda e: e.name)
    return Source("imagenet_flat", str(root), tuple(_labelled(e.name, solution, "file", str(root / e.name), 0,
                                                              e.stat().st_size) for e in entries),
                  imagenet_wnids())


def read_imagenet_tar(path: Path, labels: str | None = None) -> Source:
    """``ILSVRC2012_img_val.tar`` read in place: members are located once, then each is read
    straight from its offset, so nothing is extracted."""
    solution = _val_solution(path.parent, labels)
    with tarfile.open(path, "r:") as archive:  # uncompressed, so offsets are seekable
        members = [m for m in archive.getmembers() if m.isfile() and _is_image(m.name)]
    members.sort(key=lambda m: Path(m.name).name)
    items = tuple(_labelled(Path(m.name).name, solution, "tar", str(path), m.offset_data, m.size) for m in members)
    return Source("imagenet_tar", str(path), items, imagenet_wnids())


def read_tiny_imagenet(root: Path) -> Source:
    """Tiny ImageNet: ``val/images/*.JPEG`` with ``val/val_annotations.txt`` (file, wnid, box);
    class indices follow the sorted ``wnids.txt`` (200 classes)."""
    base = root / "val" if (root / "val").is_dir() else root
    annotations = base / "val_annotations.txt"
    if not annotations.is_file():
        raise SourceError(f"{annotations} not found: expected Tiny ImageNet's val/images and val/val_annotations.txt")
    wnids_file = base.parent / "wnids.txt"
    rows = [line.split("\t") for line in annotations.read_text().splitlines() if line.strip()]
    wnid_of = {row[0]: row[1] for row in rows}
    classes = sorted(wnids_file.read_text().split()) if wnids_file.is_file() else sorted(set(wnid_of.values()))
    index = {w: i for i, w in enumerate(classes)}
    images = base / "images"
    names = sorted(e.name for e in os.scandir(images) if e.is_file() and _is_image(e.name))
    items = tuple(Item(n, n, wnid_of.get(n, "unknown"), index.get(wnid_of.get(n, ""), -1), "file", str(images / n),
                       size=_size(images / n)) for n in names)
    return Source("tiny_imagenet", str(root), items, tuple(classes))


_CIFAR = {"cifar10": ("test_batch", b"labels", "batches.meta", b"label_names"),
          "cifar100": ("test", b"fine_labels", "meta", b"fine_label_names")}


def _cifar_batch(root: Path, reader: str) -> Path:
    batch = _CIFAR[reader][0]
    for folder in (root, root / "cifar-10-batches-py", root / "cifar-100-python"):
        if (folder / batch).is_file():
            return folder / batch
    raise SourceError(f"{reader}: {batch!r} not found under {root} (the python version of the CIFAR test set)")


@functools.lru_cache(maxsize=2)
def _cifar_images(path: str) -> np.ndarray:
    with open(path, "rb") as handle:
        batch = pickle.load(handle, encoding="bytes")
    return np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def read_cifar(root: Path, reader: str) -> Source:
    path = _cifar_batch(root, reader)
    _, label_key, meta_name, names_key = _CIFAR[reader]
    with open(path, "rb") as handle:
        labels = pickle.load(handle, encoding="bytes")[label_key]
    meta = path.parent / meta_name
    if meta.is_file():
        with open(meta, "rb") as handle:
            classes = tuple(n.decode() for n in pickle.load(handle, encoding="bytes")[names_key])
    else:
        classes = tuple(str(i) for i in range(max(labels) + 1))
    items = tuple(Item(f"{i:05d}", f"{i:05d}.png", classes[label], int(label), "cifar", str(path), i)
                  for i, label in enumerate(labels))
    return Source(reader, str(root), items, classes)


def read_source(reader: str, path: str | os.PathLike, labels: str | None = None) -> Source:
    """List the source at ``path`` with ``reader`` (one of ``READERS``); ``labels``: the
    LOC_val_solution.csv of the flat and tar layouts, where it is not beside the source."""
    path = Path(path).expanduser()
    if reader not in READERS:
        raise SourceError(f"unknown reader {reader!r}; allowed: {', '.join(READERS)}")
    if not path.exists():
        raise SourceError(f"source {path} does not exist")
    if reader == "imagenet_tar":
        if not path.is_file():
            raise SourceError(f"imagenet_tar reads a .tar file, got the folder {path}")
        return read_imagenet_tar(path, labels)
    if not path.is_dir():
        raise SourceError(f"{reader} reads a folder, got the file {path}")
    if reader == "imagenet_folders":
        return read_imagenet_folders(path)
    if reader == "imagenet_flat":
        return read_imagenet_flat(path, labels)
    if reader == "tiny_imagenet":
        return read_tiny_imagenet(path)
    return read_cifar(path, reader)
