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

from . import cifar_npy, jpeg_tree, zarr_store
from .common import DataError, Files, Reader

FORMATS = {"jpeg": jpeg_tree, "zarr": zarr_store, "cifar_npy": cifar_npy}
__all__ = ["FORMATS", "Writer", "open_data", "DataError", "Files", "Reader", "cifar_npy", "jpeg_tree", "zarr_store"]


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
    for module in (zarr_store, cifar_npy, jpeg_tree):
        if module.recognise(path):
            return module.Reader(path, classes, allow_partial=allow_partial)
    raise DataError(f"{path}: not an ImageNet-C JPEG tree (<corruption>/<severity>/<class>/), "
                    "a Zarr store, or a CIFAR-10-C folder (<corruption>.npy + labels.npy)")
