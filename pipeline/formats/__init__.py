"""Output formats. Each is one module holding its writer and its reader, so a layout is
written and read by the same code: ``jpeg_tree`` (the official ImageNet-C tree), ``zarr_store``
(sharded Zarr v3, one image per chunk) and ``cifar_npy`` (the official CIFAR-10-C arrays).

Writers share one protocol, in phases: ``prepare(plan)`` once on the client, ``write(block)``
on a worker for each key (the region follows from the key alone; returns the sha256 of every
file or chunk it wrote), ``finalise(plan, failures)`` once at the end. Each format declares the
block dimensions it stores.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from . import cifar_npy, jpeg_tree, mp4_tree, zarr_store
from .common import DataError, Files, Reader

FORMATS = {"jpeg": jpeg_tree, "zarr": zarr_store, "cifar_npy": cifar_npy, "mp4": mp4_tree}
# which formats each task writes (ImageNet-C's are images, ImageNet-P's frame sequences)
TASK_FORMATS = {"imagenet-c": ("jpeg", "zarr", "cifar_npy"), "imagenet-p": ("mp4", "zarr", "cifar_npy")}
DEFAULT_FORMATS = {"imagenet-c": ("jpeg", "zarr"), "imagenet-p": ("mp4", "zarr")}
__all__ = ["FORMATS", "TASK_FORMATS", "DEFAULT_FORMATS", "Writer", "open_data", "DataError", "Files", "Reader",
           "cifar_npy", "jpeg_tree", "mp4_tree", "zarr_store"]


class Writer(Protocol):
    format: str
    dims: tuple[str, ...]

    def prepare(self, plan) -> None: ...

    def write(self, block) -> dict[str, str]: ...

    def finalise(self, plan, failures: list[dict], complete: bool = True) -> list[str]: ...


def open_data(path: str | os.PathLike, classes=None, allow_partial: bool = False):
    """The reader of the layout found at ``path``: a Zarr store (or a folder holding one), a
    CIFAR-10-C folder, or a JPEG tree."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"data {path} does not exist")
    if mp4_tree.recognise(path) or _imagenet_p_arrays(path):
        raise DataError(f"{path}: ImageNet-P data; scoring reads ImageNet-C layouts only so far")
    for module in (zarr_store, cifar_npy, jpeg_tree):
        if module.recognise(path):
            return module.Reader(path, classes, allow_partial=allow_partial)
    raise DataError(f"{path}: not an ImageNet-C JPEG tree (<corruption>/<severity>/<class>/), "
                    "a Zarr store, or a CIFAR-10-C folder (<corruption>.npy + labels.npy)")


def _imagenet_p_arrays(path: Path) -> bool:
    """A Zarr store or CIFAR-P folder written by the ImageNet-P task."""
    import json
    for meta in [path / "zarr.json", *path.glob("*.zarr/zarr.json")]:
        try:
            attrs = json.loads(meta.read_text()).get("attributes", {})
        except (OSError, ValueError):
            continue
        if attrs.get("task") == "imagenet-p":
            return True
    if (path / "labels.npy").is_file():
        import numpy as np
        for array in path.glob("*.npy"):
            if array.name != "labels.npy" and np.load(array, mmap_mode="r").ndim == 5:
                return True
    return False
